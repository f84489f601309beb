"""Answers written by an independent learner from the statements alone (tests/learner_answers/).

Every RIGHT answer must be judged correct and every WRONG one must be refused with a message: the checkers
accept correct code they have never seen and reject realistic mistakes. Lessons 01 to 16 and appendix A1.
"""

import importlib

import pytest

from course_utils.exercises import framework, get
from course_utils.exercises.framework import exec_answer, run_check

LESSONS = ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12a", "12b", "12c", "12d", "13",
           "14", "15", "16", "A1"]
# tests/ is on sys.path (pytest puts the folder of a test file there), so learner_answers imports as a package
MODULES = [importlib.import_module(f"learner_answers.lesson_{lesson}") for lesson in LESSONS]
FLOAT64 = importlib.import_module("learner_answers.once_misjudged").FLOAT64
SEED_DEPENDENT = importlib.import_module("learner_answers.once_misjudged").SEED_DEPENDENT
RIGHT = [(eid, n, code) for m in MODULES for eid, codes in m.RIGHT.items() for n, code in enumerate(codes)]
WRONG = [(eid, n, code) for m in MODULES for eid, codes in m.WRONG.items() for n, code in enumerate(codes)]
# a few quick checks also run with other random inputs; the first right answer of each
SEEDED = ["01.2", "02.1", "03.1", "03.2", "04.1", "04.3", "05.3", "06.1", "07.2", "07.3", "08.3", "08.4", "09.1",
          "09.3", "10.1", "11.3", "12a.2", "12a.4", "12b.2", "12b.3", "12c.3", "12d.1", "12d.4", "13.1",
          "14.1", "14.2", "15.2", "15.3", "16.1", "16.2", "16.3", "A1.1", "A1.2", "A1.3"]


def check(eid, code):
    exercise = get(eid)
    return run_check(exercise, exec_answer(code, exercise.name, label=f"learner {eid}"))


def test_every_exercise_of_the_lessons_has_answers():
    from course_utils.exercises import EXERCISES
    # a challenge trains on the lesson's data: the lesson judges it (its check cell), not this set
    ids = {eid for eid, e in EXERCISES.items() if eid.split(".")[0] in LESSONS and not e.challenge}
    for m in MODULES:
        assert set(m.RIGHT) == set(m.WRONG), m.__name__
    covered = {eid for m in MODULES for eid in m.RIGHT}
    assert covered == ids
    assert all(len(codes) >= 2 for m in MODULES for codes in m.WRONG.values())


@pytest.mark.parametrize("eid, n, code", RIGHT, ids=[f"{eid}-{n}" for eid, n, _ in RIGHT])
def test_right_answer_is_correct(eid, n, code):
    result = check(eid, code)
    assert result.status == "correct", f"{eid} right answer {n}: {result.status}: {result.message}"


@pytest.mark.parametrize("eid, n, code", WRONG, ids=[f"{eid}-{n}" for eid, n, _ in WRONG])
def test_wrong_answer_is_refused(eid, n, code):
    result = check(eid, code)
    assert result.status in ("mistake", "error"), f"{eid} wrong answer {n} judged {result.status}: {result.message}"
    assert result.message.strip()


@pytest.mark.parametrize("seed", ["1", "7"])
@pytest.mark.parametrize("eid", SEEDED)
def test_right_answer_with_other_seeds(eid, seed, monkeypatch):
    monkeypatch.setenv(framework.SEED_ENV, seed)
    code = next(code for e, _, code in RIGHT if e == eid)
    result = check(eid, code)
    assert result.status == "correct", f"{eid} with seed {seed}: {result.status}: {result.message}"


@pytest.mark.parametrize("eid", sorted(FLOAT64))
def test_float64_result_is_refused_with_a_message(eid):
    result = check(eid, FLOAT64[eid])
    assert result.status == "mistake" and "float64" in result.message, f"{eid}: {result.status}: {result.message}"


@pytest.mark.parametrize("eid, seed, code, kind", SEED_DEPENDENT, ids=[f"{e}-seed{s}" for e, s, _, _ in SEED_DEPENDENT])
def test_seed_dependent_verdict(eid, seed, code, kind, monkeypatch):
    monkeypatch.setenv(framework.SEED_ENV, str(seed))
    result = check(eid, code)
    if kind == "right":
        assert result.status == "correct", f"{eid} seed {seed}: {result.status}: {result.message}"
    else:
        assert result.status in ("mistake", "error"), f"{eid} seed {seed}: {result.status}: {result.message}"
