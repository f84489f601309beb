import os
import stat

import pytest

from course_utils.core import checkpoints, files


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_permissions_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = files.atomic_write(tmp_path / "sub" / "out.txt", "text")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert path.read_text() == "text"


def test_bytes_text_and_writer_functions(tmp_path):
    target = tmp_path / "out"
    assert files.atomic_write(target, b"\x00\x01").read_bytes() == b"\x00\x01"
    assert files.atomic_write(target, "é").read_bytes() == "é".encode()
    files.atomic_write(target, lambda f: f.write(b"from a function"))
    assert target.read_bytes() == b"from a function"


def test_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "out"
    target.write_text("old")

    def half_then_fail(f):
        f.write(b"half of the new")
        raise RuntimeError("disk full (test)")

    with pytest.raises(RuntimeError, match="disk full"):
        files.atomic_write(target, half_then_fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_every_module_that_writes_atomically_uses_the_one_writer():
    import course_utils.exercises.__main__ as exercises_cli
    from course_utils.core import report
    from course_utils.tools import report_html, runner, workspace

    for module in (checkpoints, report, runner, report_html, workspace, exercises_cli):
        assert module.atomic_write is files.atomic_write, module.__name__
