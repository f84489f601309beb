"""The modules moved into subpackages; the names lessons and learners use still work."""
import importlib
import subprocess
import sys

import pytest

import course_utils


def test_every_old_name_is_the_same_module_as_its_new_home():
    for old, home in course_utils.MOVED.items():
        new = importlib.import_module(f"course_utils.{home}")
        assert importlib.import_module(f"course_utils.{old}") is new, old
        assert getattr(course_utils, old) is new, old
        assert new.__spec__.name == new.__name__, old  # the alias left the real module's spec alone


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'trainin'"):
        course_utils.trainin


def test_python_dash_m_runs_a_moved_module_under_its_old_name():
    result = subprocess.run([sys.executable, "-m", "course_utils.predict", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
