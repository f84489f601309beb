"""requirements.txt, environment.yml and the README describe one environment."""

import re

import yaml

from course_utils.datasets.sources import PROJECT_ROOT
from course_utils.tools import doctor


def _requirements() -> dict[str, str]:
    pins = {}
    for pin in doctor.pins(doctor.REQUIREMENTS):  # the parser the doctor compares the installed packages with
        [spec] = pin.specifier
        assert spec.operator == "==", f"requirements.txt pins exact versions; {pin} does not"
        pins[pin.name.lower()] = spec.version
    assert pins, "requirements.txt is missing or empty"
    return pins


def test_torch_pins_match_the_machine():
    pins = _requirements()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_environment_yml_installs_requirements_txt_on_python_311():
    env = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps
    pip_section = next(d["pip"] for d in deps if isinstance(d, dict))
    assert "-r requirements.txt" in pip_section
    conda_names = {re.split(r"[=<>]", d)[0] for d in deps if isinstance(d, str)}
    assert conda_names <= {"python", "pip"}, "packages belong in requirements.txt, not twice"


def test_installed_versions_are_the_pinned_ones():
    from importlib.metadata import version
    for name, pinned in _requirements().items():
        assert version(name) == pinned, f"{name}: installed {version(name)}, pinned {pinned}"
