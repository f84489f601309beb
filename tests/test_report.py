import json
import os
import stat

import pytest

from course_utils.core import report


def test_record_merges_into_the_metrics_file(tmp_path, monkeypatch, capsys):
    target = tmp_path / "m.json"
    monkeypatch.setenv(report.METRICS_ENV, str(target))
    report.record(test_accuracy=0.9)
    report.record(test_loss=0.25, epochs=3)
    assert json.loads(target.read_text()) == {"test_accuracy": 0.9, "test_loss": 0.25, "epochs": 3}
    assert "test_accuracy: 0.9000" in capsys.readouterr().out


def test_record_without_runner_only_prints(monkeypatch, tmp_path):
    monkeypatch.delenv(report.METRICS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    report.record(x=1.0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", [0.5, float("nan")])
def test_require_at_least_fails_below_floor_and_on_nan(value):
    with pytest.raises(AssertionError, match="below the floor"):
        report.require_at_least("accuracy", value, 0.8)


def test_checks_pass_on_the_right_side(capsys):
    report.require_at_least("accuracy", 0.9, 0.8)
    report.require_at_most("loss", 1.5, 2.0)
    with pytest.raises(AssertionError, match="above the ceiling"):
        report.require_at_most("loss", 2.5, 2.0)
    assert capsys.readouterr().out.count("check passed") == 2


def test_small_numbers_stay_readable(capsys):
    report.record(row_sum_error=1.8e-07, accuracy=0.8921)
    report.require_at_most("softmax error", 4.5e-08, 1e-5)
    out = capsys.readouterr().out
    assert "row_sum_error: 1.80e-07" in out and "accuracy: 0.8921" in out  # not 0.0000
    assert "softmax error = 4.50e-08 <= 1e-05" in out


def test_metrics_file_is_written_atomically_with_ordinary_permissions(tmp_path, monkeypatch):
    target = tmp_path / "m.json"
    monkeypatch.setenv(report.METRICS_ENV, str(target))
    old_umask = os.umask(0o022)
    try:
        report.record(accuracy=0.5)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # not mkstemp's 0600
    with pytest.raises(TypeError):
        report.record(model=object())  # not JSON: the write fails
    assert json.loads(target.read_text()) == {"accuracy": 0.5}  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # and no temporary file is left


def test_the_old_names_still_work_and_say_the_new_one():
    with pytest.warns(DeprecationWarning, match="use report.require_at_least"):
        report.check_at_least("accuracy", 0.9, 0.8)
    with pytest.warns(DeprecationWarning, match="use report.require_at_most"), pytest.raises(AssertionError):
        report.check_at_most("loss", 2.5, 2.0)
