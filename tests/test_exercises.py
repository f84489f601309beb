import ast
import contextlib
import copy
import io
import linecache
import re
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from course_utils import exercises
from course_utils.exercises import EXERCISES, framework, notebooks, rules
from course_utils.exercises import __main__ as cli
from course_utils.exercises.framework import STRICT_ENV, exec_answer, run_check
from course_utils.tools import runner

NOTEBOOKS = sorted(p for p in runner.NOTEBOOKS_DIR.glob("*.ipynb") if p.stem[0].isalnum())
ALL = list(EXERCISES.values())


@pytest.fixture(autouse=True)
def not_strict(monkeypatch):
    """A $COURSE_EXERCISES_STRICT from the caller must not reach these tests: they choose it themselves."""
    monkeypatch.delenv(STRICT_ENV, raising=False)
    monkeypatch.delenv(framework.SEED_ENV, raising=False)


def result_of(exercise, code, label="test"):
    return run_check(exercise, exec_answer(code, exercise.name, label))


def printed(exercise_id, answer) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exercises.check(exercise_id, answer)
    return out.getvalue()


# ---------------------------------------------------------------- every exercise

@pytest.mark.parametrize("exercise", ALL, ids=lambda e: e.id)
def test_exercise_follows_every_rule_verify_checks(exercise):
    # the rules live in course_utils.exercises.rules (what `verify` prints): solution and alternatives correct,
    # every wrong answer caught with its message and a hint, the template not attempted, the statement a contract
    report = rules.check_exercise(exercise)
    assert report.failures == []
    assert report.passed == 4 + len(exercise.alternatives) + len(exercise.wrong_answers)


def test_the_course_follows_the_rules_across_exercises():
    assert rules.check_course(ALL, (p.stem for p in NOTEBOOKS)).failures == []


@pytest.mark.parametrize("module", exercises.MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_every_exercise_module_has_the_one_layout(module):
    assert rules.check_module(module).failures == []


def test_no_solution_retypes_a_lesson_cell():
    # an exercise asks to use an idea on a new case: no reference solution is a near-copy of a code cell
    assert rules.check_originality(ALL, notebooks.lesson_code_cells(NOTEBOOKS)).failures == []


def test_the_transcription_measure_finds_a_copy_inside_a_longer_cell_and_passes_a_new_case():
    cell = "import torch\nx = torch.rand(3, 4)\ntotals = x.sum(dim=1, keepdim=True)\nprint(x / totals)\n"
    copy_ = "def f(x):\n    totals = x.sum(dim=1, keepdim=True)\n    return x / totals\n"
    new_case = "def f(x):\n    low = x.amin(dim=0)\n    return (x - low) / (x.amax(dim=0) - low)\n"
    assert rules.transcription(copy_, {"c": cell})[0] >= rules.TRANSCRIPTION
    assert rules.transcription(new_case, {"c": cell})[0] < rules.TRANSCRIPTION


def test_hint_gives_the_tiers_in_order_then_points_at_the_solution(monkeypatch):
    monkeypatch.setattr(exercises, "_hints_given", {})
    tiers = EXERCISES["01.1"].hints()
    shown = []
    for _ in range(len(tiers) + 1):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exercises.hint("01.1")
        shown.append(out.getvalue())
    assert [tier in text for tier, text in zip(tiers, shown)] == [True] * len(tiers)
    assert tiers[-1] in shown[-1] and "exercises.solution('01.1')" in shown[-1]
    assert "solution" not in shown[0]


def test_every_lesson_notebook_with_a_module_has_exercises():
    for notebook in NOTEBOOKS:
        module = Path(framework.__file__).with_name(f"lesson_{notebook.stem.split('_')[0]}.py")
        assert not module.exists() or notebooks.lesson_exercises(notebook.stem), notebook.stem


def test_ids_are_lesson_dot_number_and_unique():
    assert len(EXERCISES) == len(ALL)
    for exercise_id, exercise in EXERCISES.items():
        assert exercise_id == exercise.id and exercise.lesson.startswith(exercise_id.split(".")[0] + "_")


# ---------------------------------------------------------------- what check() prints

def test_check_prints_correct_and_mistakes_with_a_hint():
    ex = EXERCISES["01.1"]
    assert printed("01.1", exec_answer(ex.solution, ex.name)).startswith("01.1 correct: ")
    global_range = "def scale_rows(x):\n    return (x - x.min()) / (x.max() - x.min())\n"
    wrong = printed("01.1", exec_answer(global_range, ex.name))
    first, second, third = wrong.splitlines()
    assert first.startswith("01.1 not yet: ") and "is wrong at index" in first and "expected" in first
    assert second.startswith("hint: section 5")
    assert "exercises.hint('01.1')" in third


def test_a_learners_exception_is_reported_with_its_line_not_raised():
    code = "def scale_rows(x):\n    total = x.sum(dim=1, keepdim=True)\n    return x / (total - total) / 0\n"
    answer = exec_answer(code.replace("/ 0", "/ int('oops')"), "scale_rows")
    text = printed("01.1", answer)
    assert "not yet: your code raised ValueError: invalid literal for int()" in text
    assert "(line 3: return x / (total - total) / int('oops'))" in text
    assert "Traceback" not in text


def test_a_notebook_cell_answer_is_reported_with_its_line():
    # IPython compiles each cell under its own file name and puts its source in linecache
    source, namespace = "import torch\n\ndef scale_rows(x):\n    return x.nope()\n", {}
    linecache.cache["cell-7"] = (len(source), None, source.splitlines(keepends=True), "cell-7")
    exec(compile(source, "cell-7", "exec"), namespace)
    assert "AttributeError" in printed("01.1", namespace["scale_rows"])
    assert "(line 4: return x.nope())" in printed("01.1", namespace["scale_rows"])


def test_an_exception_in_a_learners_class_is_reported_with_its_line():
    code = EXERCISES["04.2"].solution.replace("features = self.body(x) ", "features = self.body(x.view(7, -1)) ")
    text = printed("04.2", exec_answer(code, "ClassifierWithFeatures"))
    assert "your code raised RuntimeError" in text and "features = self.body(x.view(7, -1))" in text


def test_a_failing_checker_is_a_crash_not_the_learners_fault(monkeypatch):
    broken = copy.copy(EXERCISES["01.1"])
    broken.checker = lambda answer: {}["missing"]
    result = run_check(broken, exec_answer(broken.solution, broken.name))
    assert result.status == "crash" and "the checker itself failed (KeyError" in result.message
    monkeypatch.setattr(cli, "EXERCISES", {"01.1": broken})
    assert cli.main(["verify"]) == 1


def test_an_answer_that_is_not_callable_or_returns_nothing_gets_plain_words():
    assert "returned None (did you forget `return`?)" in printed("01.1", lambda x: None)
    assert "your code raised TypeError" not in printed("01.1", lambda x: x.tolist())
    assert "should be a tensor" in printed("01.1", lambda x: x.tolist())


def test_strict_mode_raises_unless_correct(monkeypatch):
    monkeypatch.setenv(STRICT_ENV, "1")
    ex = EXERCISES["01.1"]
    with pytest.raises(AssertionError, match="01.1 not attempted yet"):
        exercises.check("01.1", exec_answer(ex.template, ex.name))
    with pytest.raises(AssertionError, match="not yet: .*column j was scaled"):
        exercises.check("01.1", exec_answer(ex.wrong_answers[0][0], ex.name))
    assert printed("01.1", exec_answer(ex.solution, ex.name)).startswith("01.1 correct")


def test_unknown_id_is_a_plain_error():
    with pytest.raises(ValueError, match="no exercise '99.1'; known: 01.1"):
        exercises.check("99.1", print)


def test_solution_prints_the_reference(capsys):
    exercises.solution("01.2")
    out = capsys.readouterr().out
    assert EXERCISES["01.2"].solution.strip() in out


def test_variant_applies_each_replacement_once_in_turn():
    code = "def f(x):\n    return x.sum(dim=0)\n"
    assert framework.variant(code, ("dim=0", "dim=1")) == "def f(x):\n    return x.sum(dim=1)\n"
    # later replacements see the earlier ones' result
    assert framework.variant(code, ("sum", "mean"), ("mean(dim=0)", "mean()")) == "def f(x):\n    return x.mean()\n"
    assert framework.variant(code) == code


@pytest.mark.parametrize("old, count", [("dim=2", 0), ("x", 2), ("", 0)])
def test_variant_refuses_a_text_that_is_not_there_exactly_once(old, count):
    with pytest.raises(ValueError, match=f"{old!r} occurs {count} times"):
        framework.variant("def f(x):\n    return x.sum(dim=0)\n", (old, "y"))


def test_template_of_keeps_signatures_and_docstrings_and_empties_every_body():
    solution = ('\nimport math\n\n\nclass Scaler:\n    """Multiplies by a factor."""\n\n'
                '    def __init__(self, factor):\n        self.factor = factor\n\n'
                '    def __call__(self, x):\n        """x -> factor * x."""\n        return self.factor * x\n')
    assert framework.template_of(solution) == (
        '\nimport math\n\n\nclass Scaler:\n    """Multiplies by a factor."""\n\n'
        '    def __init__(self, factor):\n        raise NotImplementedError  # your code here\n\n'
        '    def __call__(self, x):\n        """x -> factor * x."""\n'
        '        raise NotImplementedError  # your code here\n')


def test_checks_leave_the_global_rng_and_forbidden_functions_alone():
    ex, original = EXERCISES["01.2"], torch.cdist
    torch.manual_seed(3)
    expected = torch.rand(3)
    torch.manual_seed(3)
    assert "called torch.cdist" in printed("01.2", exec_answer(ex.wrong_answers[1][0], ex.name))
    assert torch.equal(torch.rand(3), expected)
    assert torch.cdist is original


def test_inputs_are_fresh_per_seed_and_repeatable(monkeypatch):
    ex = EXERCISES["01.2"]
    answer = exec_answer(ex.solution, ex.name)
    first, again = run_check(ex, answer).message, run_check(ex, answer).message
    monkeypatch.setenv(framework.SEED_ENV, "1")
    other = run_check(ex, answer).message
    assert first == again and other != first


# ---------------------------------------------------------------- notebooks: inject, fill, run the cells

def lesson_notebook(stem: str) -> nbformat.NotebookNode:
    return nbformat.read(runner.NOTEBOOKS_DIR / f"{stem}.ipynb", as_version=4)


def run_section(notebook, skip: tuple[str, ...] = ()) -> list[str]:
    """Execute the generated cells in one namespace, as a kernel would; return each check cell's output.

    A challenge's check cell passes the notebook's settings: the namespace holds the values the rules use. Cells of
    the exercises in `skip` are not run.
    """
    namespace, outputs = {}, []
    for exercise in ALL:
        namespace |= {parameter: exercise.rule_settings[keyword] for keyword, parameter in exercise.settings.items()}
    for cell in notebook.cells:
        if cell.cell_type != "code" or notebooks.SECTION_TAG not in cell.metadata.get("tags", []):
            continue
        if any(cell.get("id", "").startswith(f"exercise-{i.replace('.', '-')}-") for i in skip):
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(cell.source, f"<{cell.id}>", "exec"), namespace)
        if cell.source.startswith("exercises.check("):
            outputs.append(out.getvalue())
    return outputs


@pytest.mark.parametrize("stem", sorted({e.lesson for e in ALL}))
def test_generated_section_runs_unattempted_and_correct_with_solutions(stem):
    """A challenge's solution trains on the lesson's data: the lesson runs it (nbval at ci, the course at default)."""
    injected = notebooks.inject(lesson_notebook(stem), stem)
    ids = [e.id for e in notebooks.lesson_exercises(stem)]
    assert run_section(injected) == [f"{i} not attempted yet\n" for i in ids]
    challenges = tuple(e.id for e in notebooks.lesson_exercises(stem) if e.challenge)
    filled = exercises.fill_solutions(copy.deepcopy(injected))
    outputs = run_section(filled, skip=challenges)
    assert [o.split(" ")[:2] for o in outputs] == [[i, "correct:"] for i in ids if i not in challenges]


def test_inject_writes_the_section_once_at_the_end_with_stable_ids():
    stem = "01_tensors"
    original = lesson_notebook(stem)
    kept = [c for c in original.cells if notebooks.SECTION_TAG not in c.metadata.get("tags", [])]
    once = notebooks.inject(original, stem)
    twice = notebooks.inject(once, stem)
    assert [c.id for c in once.cells] == [c.id for c in twice.cells]
    assert [c.source for c in once.cells[:len(kept)]] == [c.source for c in kept]
    section = once.cells[len(kept):]
    assert section[0].source.startswith("## Exercises") and "exercises.solution(" in section[0].source
    assert "from course_utils import exercises" in section[1].source
    answer = next(c for c in section if c.id == "exercise-01-2-answer")
    assert answer.metadata == {"tags": ["exercises", "exercise"], "exercise_id": "01.2"}
    assert answer.source == EXERCISES["01.2"].template.strip()
    assert next(c for c in section if c.id == "exercise-01-2-check").source == \
        'exercises.check("01.2", pairwise_distances)'
    assert next(c for c in section if c.id == "exercise-01-2-statement").source.startswith(
        "### 01.2 Pairwise distances")
    nbformat.validate(once)
    assert notebooks.up_to_date(once, stem)


def test_fill_solutions_fills_every_answer_cell_makes_every_check_strict_and_nothing_else():
    stem = "01_tensors"
    injected = notebooks.inject(lesson_notebook(stem), stem)
    filled = exercises.fill_solutions(copy.deepcopy(injected))
    changed = [b.source for a, b in zip(injected.cells, filled.cells) if a.source != b.source]
    expected = []
    for e in notebooks.lesson_exercises(stem):
        expected += [e.solution.strip(), f'exercises.check("{e.id}", {e.name}, strict=True)']
    assert changed == expected


def test_strict_argument_overrides_the_environment(monkeypatch, capsys):
    monkeypatch.delenv(STRICT_ENV, raising=False)
    template = exec_answer(EXERCISES["01.1"].template, EXERCISES["01.1"].name)
    with pytest.raises(AssertionError, match="not attempted"):
        exercises.check("01.1", template, strict=True)
    monkeypatch.setenv(STRICT_ENV, "1")
    exercises.check("01.1", template, strict=False)
    assert "01.1 not attempted yet" in capsys.readouterr().out


def test_inject_check_on_a_copy(tmp_path, monkeypatch, capsys):
    for path in NOTEBOOKS[:2]:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(cli, "NOTEBOOKS_DIR", tmp_path)
    monkeypatch.setattr(cli, "EXERCISES", {k: v for k, v in EXERCISES.items() if k.startswith("01.")})
    assert cli.main(["inject"]) == 0
    assert cli.main(["inject", "--check"]) == 0
    notebook = nbformat.read(tmp_path / "01_tensors.ipynb", as_version=4)
    notebook.cells[-1].source = "exercises.check('01.3', something_else)"
    nbformat.write(notebook, tmp_path / "01_tensors.ipynb")
    assert cli.main(["inject", "--check"]) == 1
    assert "out of date in 01_tensors.ipynb" in capsys.readouterr().err


def test_the_lesson_notebooks_are_up_to_date():
    # fails after a lesson module changes until `python -m course_utils.exercises inject` is run
    assert cli.main(["inject", "--check"]) == 0


# ---------------------------------------------------------------- list, verify, progress

def test_list_prints_one_line_per_exercise(capsys):
    assert cli.main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(EXERCISES)
    assert lines[0].split()[:2] == ["01.1", "01_tensors"] and lines[0].endswith(EXERCISES["01.1"].title)


def test_verify_fails_on_a_broken_exercise(monkeypatch, capsys):
    lesson = {i: e for i, e in EXERCISES.items() if i.startswith("01.")}
    ex = lesson["01.1"]
    broken = copy.copy(ex)
    broken.solution = ex.wrong_answers[0][0]
    broken.wrong_answers = [(ex.solution, "is wrong")]
    monkeypatch.setattr(cli, "EXERCISES", lesson | {"01.1": broken})
    assert cli.main(["verify"]) == 1
    out = capsys.readouterr().out
    assert "FAIL 01.1 solution: mistake" in out and "fewer than 2 wrong answers" in out
    assert "FAIL 01.1 wrong answer 1: expected a message with 'is wrong', got correct" in out
    monkeypatch.setattr(cli, "EXERCISES", lesson)
    assert cli.main(["verify"]) == 0
    # per exercise: solution, alternatives, wrong answers, template, statement, hints, originality; per module: layout
    passed = sum(5 + len(e.alternatives) + len(e.wrong_answers) for e in lesson.values()) + len(exercises.MODULES)
    assert capsys.readouterr().out.strip().endswith(f"{passed} passed, 0 failed")


def test_progress_counts_solved_answers_per_lesson(tmp_path, monkeypatch, capsys):
    stem = "01_tensors"
    notebook = notebooks.inject(lesson_notebook(stem), stem)
    answers = {c.metadata["exercise_id"]: c for c in notebook.cells if "exercise_id" in c.metadata}
    answers["01.1"].source = EXERCISES["01.1"].solution
    answers["01.2"].source = "def pairwise_distances(a, b):\n    while True:\n        pass\n"  # never returns
    answers["01.3"].source = "import sys\n\ndef batched_matmul(a, b):\n    sys.exit(3)\n"  # must not end progress
    (tmp_path / "lessons").mkdir()
    nbformat.write(notebook, tmp_path / "lessons" / f"{stem}.ipynb")
    nbformat.write(new_notebook(cells=[new_markdown_cell("# notes")]), tmp_path / "notes.ipynb")
    monkeypatch.setenv(STRICT_ENV, "1")  # progress never raises, even in strict mode
    assert cli.main(["progress", "--workspace", str(tmp_path), "--timeout", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in lines] == [
        [stem, "1/3", "solved"], ["01.2", "timed", "out:"], ["01.3", "error:", "your"], ["total", "1/3", "solved"]]
    assert "took longer than 3 s" in lines[1] and "SystemExit: 3" in lines[2]


def test_progress_skips_the_backups_refresh_keeps(tmp_path, capsys):
    """workspace/backups/ holds refresh's old copies: counting them would count a lesson twice."""
    from course_utils.tools import workspace

    stem = "01_tensors"
    notebook = notebooks.inject(lesson_notebook(stem), stem)
    nbformat.write(notebook, tmp_path / f"{stem}.ipynb")
    (tmp_path / workspace.BACKUPS).mkdir()
    nbformat.write(notebook, tmp_path / workspace.BACKUPS / f"{stem}.bak-20261207-120000.ipynb")
    assert cli.BACKUPS == workspace.BACKUPS
    assert cli.main(["progress", "--workspace", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].split()[:3] == ["total", "0/3", "solved"], lines


def test_progress_without_a_workspace_says_how_to_make_one(tmp_path, capsys):
    assert cli.main(["progress", "--workspace", str(tmp_path / "none")]) == 0
    assert "make lab" in capsys.readouterr().out


# ---------------------------------------------------------------- the runner's --solutions run

@pytest.fixture
def course(tmp_path, monkeypatch):
    notebooks_dir, profiles = tmp_path / "notebooks", tmp_path / "profiles"
    notebooks_dir.mkdir()
    profiles.mkdir()
    template = EXERCISES["01.1"].template
    cells = [new_code_cell("seed = 0\n", metadata={"tags": ["parameters"]}),
             new_code_cell("from course_utils import exercises"),
             new_code_cell(template, metadata={"tags": ["exercises", "exercise"], "exercise_id": "01.1"}),
             new_code_cell('exercises.check("01.1", scale_rows)')]
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    nbformat.write(new_notebook(cells=cells, metadata=kernel), notebooks_dir / "01_tensors.ipynb")
    (profiles / "ci.yaml").write_text("parameters: {}\n")
    monkeypatch.setattr(runner, "NOTEBOOKS_DIR", notebooks_dir)
    monkeypatch.setattr(runner, "PROFILES_DIR", profiles)
    return tmp_path


def test_runner_prepares_solution_filled_copies(course):
    assert runner.main(["--profile", "ci", "--prepare-only", "--solutions", "--out", str(course / "out")]) == 0
    prepared = nbformat.read(course / "out" / "01_tensors.ipynb", as_version=4)
    answer = next(c for c in prepared.cells if c.metadata.get("exercise_id") == "01.1")
    assert answer.source == EXERCISES["01.1"].solution.strip()
    assert [p.name for p in (course / "out").iterdir()] == ["01_tensors.ipynb"]  # nothing else for nbval to collect
    assert runner.main(["--profile", "ci", "--prepare-only", "--out", str(course / "plain")]) == 0
    plain = nbformat.read(course / "plain" / "01_tensors.ipynb", as_version=4)
    assert plain.cells[2].source == EXERCISES["01.1"].template


def test_runner_solutions_run_sets_strict_and_is_never_committed(course, monkeypatch):
    with pytest.raises(runner.RunnerError, match="never committed"):
        runner.run(runner.parse_args(["--profile", "ci", "--solutions", "--commit"]))
    seen = []
    monkeypatch.setattr(runner, "execute_all", lambda jobs, workers, display: [seen.append(job) or {
        "notebook": job.notebook.stem, "status": "pass", "seconds": 0.0, "parameters": {}, "metrics": {},
        "error": None} for job in jobs])
    assert runner.main(["--profile", "ci", "--solutions", "--out", str(course / "run")]) == 0
    assert seen[0].solutions and seen[0].env[STRICT_ENV] == "1"
    source = runner.source_of(seen[0])
    assert source != seen[0].notebook
    filled = nbformat.read(source, as_version=4)
    assert filled.cells[2].source == EXERCISES["01.1"].solution.strip()


def test_the_checks_own_sgd_matches_torch_optim():
    from course_utils.exercises.lesson_03 import _MomentumSGD
    ours, theirs = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    theirs.load_state_dict(ours.state_dict())
    optimizers = {ours: _MomentumSGD(ours.parameters(), lr=0.5, momentum=0.9),
                  theirs: torch.optim.SGD(theirs.parameters(), lr=0.5, momentum=0.9)}
    for step in range(3):
        for model, optimizer in optimizers.items():
            optimizer.zero_grad()
            model(torch.full((4, 3), step + 1.0)).pow(2).sum().backward()
            optimizer.step()
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(ours.parameters(), theirs.parameters()))
    assert not torch.allclose(ours.weight, torch.nn.Linear(3, 2).weight)  # it moved


# ---------------------------------------------------------------- hints point at sections that exist

SECTION_REFERENCE = re.compile(  # "section 5 (Title ...", "section 5, *Title*", "lesson 01 section 9", "sections 1-3"
    r"(?:lesson (?P<lesson>\w+)\W+)?sections? (?P<numbers>\d+(?:(?:-| and |, )\d+)*)"
    r"(?:,? \*(?P<italic>[^*]+)\*| \((?P<paren>[^)]+))?")
TITLES = re.compile(r"^(##+) (?:(\d+)\. )?(.+)$|\*\*([^*]+)\*\*", re.MULTILINE)  # headings, bold lead-ins


def _words(text: str) -> set[str]:
    return {word for word in re.findall(r"[a-z0-9_]+", text.lower().replace("`", "")) if len(word) >= 4}


def _headings(stem: str) -> dict[int, str]:
    """Section number -> its `## N.` title, its `###` titles and its bold lead-ins, joined."""
    notebook = lesson_notebook(next(p.stem for p in NOTEBOOKS if p.stem.split("_")[0] == stem))
    titles, current = {}, None
    for cell in notebook.cells:
        for level, number, title, bold in TITLES.findall(cell.source) if cell.cell_type == "markdown" else ():
            if level == "##":
                current = int(number) if number else None
                titles[current] = title
            elif current is not None:
                titles[current] += " / " + (title or bold)
    return titles


@pytest.mark.parametrize("module", sorted(Path(exercises.__file__).parent.glob("lesson_*.py")), ids=lambda p: p.stem)
def test_every_section_a_hint_names_exists_under_that_title(module):
    """'section 5 (Why the write is atomic)' in lesson_06.py: lesson 06 has a `## 5.` heading sharing its words."""
    own, text = module.stem.removeprefix("lesson_"), " ".join(module.read_text().split())
    wrong = []
    for ref in SECTION_REFERENCE.finditer(text):
        headings = _headings(ref["lesson"] or own)
        numbers = [int(n) for n in re.findall(r"\d+", ref["numbers"])]
        if "-" in ref["numbers"]:
            numbers = list(range(numbers[0], numbers[-1] + 1))
        cited = ref["italic"] or ref["paren"] or ""
        missing = [n for n in numbers if n not in headings]
        # a title is checked when one section is cited and the text in brackets names it (not "step 3")
        titled = len(numbers) == 1 and not missing and cited[:1].isupper() and _words(cited)
        shared = titled and _words(cited) & _words(headings[numbers[0]])
        if missing or (titled and len(shared) * 2 < len(_words(cited))):
            wrong.append(f"{ref[0]!r}: lesson {ref['lesson'] or own} has "
                         + (f"no section {missing}" if missing else f"section {numbers[0]}: {headings[numbers[0]]!r}"))
    assert not wrong, "\n".join(wrong)


def test_contributing_worked_example_passes_every_rule():
    """docs/CONTRIBUTING.md's worked example is real code: copied as it stands, verify's rules all hold."""
    import re

    from course_utils.exercises.rules import check_exercise
    from course_utils.paths import PROJECT_ROOT

    guide = (PROJECT_ROOT / "docs" / "CONTRIBUTING.md").read_text()
    code = re.search(r"### A worked example.*?```python\n(.*?)```", guide, re.S).group(1)
    namespace = {"LESSON": "01_tensors"}
    exec(compile("import torch\n" + code, "CONTRIBUTING.md", "exec"), namespace)
    assert check_exercise(namespace["EX_9"]).failures == []


def test_call_names_a_float64_result_for_float32_inputs_and_lets_float64_inputs_through():
    x = torch.ones(3)
    with pytest.raises(framework.Mistake, match="returned a float64 tensor although the inputs are float32"):
        framework.call(lambda t: (t.double(), t), x)
    assert framework.call(lambda t: t * 2, x.double()).dtype == torch.float64


def test_inject_keeps_the_outputs_of_cells_it_does_not_change():
    stem = "01_tensors"
    notebook = nbformat.read(runner.NOTEBOOKS_DIR / f"{stem}.ipynb", as_version=4)
    check_cell = next(c for c in notebook.cells if c.get("id") == "exercise-01-1-check")
    check_cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="01.1 not attempted yet\n")]
    answer = next(c for c in notebook.cells if c.get("id") == "exercise-01-1-answer")
    answer.source, answer.outputs = "def scale_rows(x):\n    return x\n", [nbformat.v4.new_output("stream", text="x")]
    injected = {c.get("id"): c for c in notebooks.inject(notebook, stem).cells}
    assert injected["exercise-01-1-check"].outputs == check_cell.outputs  # unchanged: its output stays
    assert injected["exercise-01-1-answer"].outputs == []  # changed back to the template: run it again


# ---------------------------------------------------------------- challenges

_CENTROIDS = '''
def train_my_model():
    """A nearest-class-mean classifier of the lesson's normalised images: real, cheap, about 0.68 on Fashion-MNIST."""
    from course_utils.datasets import mnist
    images, labels = mnist.load_tensors("fashion_mnist", train=True)
    images, labels = images.flatten(1)[:20000], labels[:20000]
    means = torch.stack([images[labels == c].mean(0) for c in range(10)])
    layer = nn.Linear(784, 10)
    with torch.no_grad():
        layer.weight.copy_(means)
        layer.bias.copy_(-0.5 * (means ** 2).sum(1))
    model = nn.Sequential(nn.Flatten(), layer)
    return model.train()
'''


def test_a_challenge_accepts_a_model_that_reaches_the_target_and_says_so(mirror):
    """The check evaluates in eval mode whatever mode the model comes in, puts the mode back, and names the target."""
    challenge = EXERCISES["04.4"]
    train = exec_answer(_CENTROIDS, "train_my_model")
    result = run_check(challenge, train, {"target": 0.6})
    assert result.status == "correct", result.message
    assert "on the 10,000 test images" in result.message and "target 0.60" in result.message
    assert "came in training mode" in result.message and "evaluated it in eval mode" in result.message
    missed = run_check(challenge, train, {"target": 0.9})
    assert missed.status == "mistake" and "missed by" in missed.message and "target 0.90" in missed.message


def test_a_challenges_check_cell_passes_the_profiles_target_and_check_refuses_other_settings(capsys):
    challenge = EXERCISES["04.4"]
    assert notebooks.check_source(challenge) == 'exercises.check("04.4", train_my_model, target=challenge_target)'
    with pytest.raises(TypeError, match="takes the settings"):
        exercises.check("04.4", lambda: None)
    exercises.check("04.4", exec_answer(challenge.template, "train_my_model"), target=0.5)
    assert "04.4 not attempted yet" in capsys.readouterr().out


def assigned_names(lesson: str) -> set[str]:
    """The names the lesson's own code cells assign (the stored features of lesson 08, say)."""
    names = set()
    for cell in lesson_notebook(lesson).cells:
        if cell.cell_type == "code" and notebooks.SECTION_TAG not in cell.metadata.get("tags", []):
            names |= {node.id for node in ast.walk(ast.parse(cell.source))
                      if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    return names


def test_every_lesson_that_trains_on_images_has_a_challenge_and_its_notebook_declares_the_settings():
    for lesson in ("03_training", "04_fashion_mnist", "05_inference_validation", "08_transfer_learning", "09_cnn",
                   "11_batch_norm"):
        challenges = [e for e in EXERCISES.values() if e.lesson == lesson and e.challenge]
        assert len(challenges) == 1, lesson
        declared = runner.declared_parameters(NOTEBOOKS[0].parent / f"{lesson}.ipynb")
        targets = {value for key, value in challenges[0].settings.items() if key in ("target", "photos")}
        assert targets <= declared, lesson  # what a profile changes is a parameter
        assert set(challenges[0].settings.values()) <= declared | assigned_names(lesson), lesson


def test_the_few_photos_challenge_measures_the_head_on_the_stored_features_it_is_given():
    """08.5 takes the lesson's stored features as settings (here the rules' made-up ones): eval mode, mode restored,
    the lesson's recipe on the same photos as the yardstick, and the gap when the target is missed."""
    challenge = EXERCISES["08.5"]
    code = next(code for code, fragment in challenge.wrong_answers if fragment == "missed by")  # class means
    head = exec_answer(code, "train_my_model")().train()
    result = run_check(challenge, lambda: head, challenge.rule_settings | {"target": 0.95})
    assert result.status == "correct", result.message
    assert "on the 1,000 test photos" in result.message and "from 10 training photos" in result.message
    assert "target 0.95" in result.message and "the lesson's recipe" in result.message
    assert "came in training mode" in result.message and head.training
    missed = run_check(challenge, lambda: head, challenge.rule_settings)
    assert missed.status == "mistake" and "missed by 0.0080" in missed.message and "target 0.99" in missed.message


def test_the_sentiment_challenge_measures_the_lessons_tensors_in_eval_mode_and_puts_the_mode_back():
    """12c.5's check cell passes the lesson's encoded reviews; a model that reaches the target is told so."""
    from course_utils.exercises import lesson_12c
    challenge = EXERCISES["12c.5"]
    assert notebooks.check_source(challenge) == (
        'exercises.check("12c.5", train_my_model, target=challenge_target, x_test=x_test, y_test=y_test, '
        'x_train=x_train, y_train=y_train)')
    assert {"challenge_target", "challenge_epochs"} <= runner.declared_parameters(
        runner.NOTEBOOKS_DIR / "12c_sentiment_lstm.ipynb")
    naive_bayes = next(code for code, fragment in challenge.wrong_answers if fragment == "missed by")
    model = exec_answer(naive_bayes, "train_my_model")().train()
    settings = {**challenge.rule_settings, "target": 0.6}
    result = run_check(challenge, lambda: model, settings)
    assert result.status == "correct" and "on the 2,000 test reviews" in result.message, result.message
    assert "came in training mode" in result.message and model.training
    ids = torch.tensor([[5, 6, 0, 0], [7, 8, 9, 4]])
    assert lesson_12c._padded_on_the_left(ids).tolist() == [[0, 0, 5, 6], [7, 8, 9, 4]]
