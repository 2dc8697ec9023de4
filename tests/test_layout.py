"""The house (README, 'Layout'): the commands a user types and the files the assignment names
at the root, and two packages of what is imported and never typed. Three import rules, every
import of every project module (those inside functions too): the `training` package imports
nothing outside itself; the `reporting` package imports only `training` (and itself); the root
files import anything. No project Python file is over 500 lines, and the training loop knows
no command-line flag and no kind of step."""
import ast
import re

import pytest
from conftest import ROOT

PACKAGES = ("training", "reporting")
# What each package may import of the project: itself, and the packages named here.
MAY_IMPORT = {"training": {"training"}, "reporting": {"training", "reporting"}}
LINE_CAP = 500


def project_files() -> list:
    """Every Python file of the project: the root's, the packages', scripts/ and tests/."""
    return sorted([*ROOT.glob("*.py"), *(p for pkg in PACKAGES for p in ROOT.glob(f"{pkg}/*.py")),
                   *ROOT.glob("scripts/*.py"), *ROOT.glob("tests/*.py")])


def project_names() -> set[str]:
    """The names a project import starts with: a root module or a package."""
    return {p.stem for p in ROOT.glob("*.py")} | set(PACKAGES)


def imports_of(source: str, package: str | None, project: set[str]) -> set[str]:
    """The project modules or packages a source imports anywhere (module level or inside
    functions), by their first name; a relative import is of its own `package`."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [package] if node.level else [(node.module or "").split(".")[0]]
        else:
            continue
        found |= {n for n in names if n in project}
    return found


def broken_rules(sources: dict[str, str], project: set[str]) -> list[str]:
    """Every import that breaks a rule, as 'path imports name': `sources` maps a path
    relative to the root ('training/x.py', 'report.py') to its text."""
    bad = []
    for path, source in sorted(sources.items()):
        package = path.split("/")[0] if path.split("/")[0] in PACKAGES else None
        if package is None:
            continue  # a root file, a script or a test: imports anything
        bad += [f"{path} imports {name}" for name in sorted(imports_of(source, package, project))
                if name not in MAY_IMPORT[package]]
    return bad


def test_training_imports_itself_alone_and_reporting_imports_training_alone():
    sources = {p.relative_to(ROOT).as_posix(): p.read_text()
               for pkg in PACKAGES for p in ROOT.glob(f"{pkg}/*.py")}
    assert len(sources) > 10
    assert broken_rules(sources, project_names()) == []


def test_the_rules_find_each_kind_of_wrong_import():
    project = {"trainer", "dataloaders", "task1_lenet", "utils", "training", "reporting"}
    sources = {
        "training/a.py": "from training.b import x\nimport torch\n",             # allowed
        "training/b.py": "def f():\n    from reporting.figures import g\n",   # upward
        "training/c.py": "import utils\n",                                      # a root file
        "reporting/d.py": "from training.record import Run\nfrom . import e\n",  # allowed
        "reporting/e.py": "from task1_lenet import LeNet\n",                    # a task script
        "reporting/f.py": "def g():\n    import dataloaders\n",                 # data, inside
        "report.py": "import task1_lenet\nfrom reporting import sections\n",   # root: anything
    }
    assert broken_rules(sources, project) == [
        "reporting/e.py imports task1_lenet", "reporting/f.py imports dataloaders",
        "training/b.py imports reporting", "training/c.py imports utils"]
    assert imports_of("from .record import Run\n", "training", project) == {"training"}


@pytest.mark.parametrize("path", project_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_file_is_over_the_line_cap(path):
    """One concern a module: a file over the cap is split by concern."""
    assert over_cap(path.read_text()) is None, f"{path.name}: split it by concern"


def over_cap(text: str) -> str | None:
    lines = text.count("\n")
    return f"{lines} lines, over {LINE_CAP}" if lines > LINE_CAP else None


def test_the_cap_finds_a_long_file():
    assert over_cap("x = 1\n" * (LINE_CAP + 1)) == f"{LINE_CAP + 1} lines, over {LINE_CAP}"
    assert over_cap("x = 1\n" * LINE_CAP) is None


def test_the_root_holds_the_commands_and_the_files_the_assignment_names():
    assert sorted(p.name for p in ROOT.glob("*.py")) == [
        "benchmark.py", "dataloaders.py", "plots.py", "report.py", "run_all.py",
        "submission_zip.py", "task1_lenet.py", "task2_experiments.py", "task2_models.py",
        "task3_resnet.py", "task3_visualisation.py", "trainer.py", "utils.py"]


def strings_and_names(source: str) -> tuple[list[str], set[str]]:
    """The string constants of a source that are not docstrings, and every name it uses."""
    tree = ast.parse(source)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
               and isinstance(n.value, str) and id(n) not in docstrings]
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    return strings, names


def the_loop(source: str) -> str:
    """The source of the training loop in trainer.py: its `Trainer`, `Settings` and `CtrlC`
    classes (the rest of the file builds a Trainer for a task's jobs)."""
    tree = ast.parse(source)
    return "\n".join(ast.get_source_segment(source, node) for node in tree.body
                     if isinstance(node, ast.ClassDef)
                     and node.name in ("Trainer", "Settings", "CtrlC"))


def test_the_training_loop_knows_no_flag_and_no_kind_of_step():
    """The Trainer calls a step (training.steps.Step); the command line words its errors."""
    loop = the_loop((ROOT / "trainer.py").read_text())
    assert "class Trainer" in loop and "def _train_loop" in loop
    strings, names = strings_and_names(loop)
    assert not [s for s in strings if re.search(r"--[a-z]", s)], "the loop names a flag"
    for name in ("GraphedStep", "graphed_step", "scaler", "GradScaler", "cuda_graphs", "argv",
                 "loss_count", "skipped"):
        assert name not in names, name
    assert strings_and_names('"""--x"""\nf("--batch-size")\nscaler.step()')[0] == ["--batch-size"]
    assert the_loop("class Trainer:\n    x = '--a'\n\ndef fit():\n    y = '--b'\n") == \
        "class Trainer:\n    x = '--a'"


@pytest.mark.parametrize("module", ["utils.py", "trainer.py", "training/jobs.py",
                                    "benchmark.py", "run_all.py"])
def test_the_recorded_command_is_never_read_from_sys_argv(module):
    assert "sys.argv" not in (ROOT / module).read_text()


def test_plots_py_has_one_main_block():
    """`python plots.py RUN.json` draws and prints each figure once."""
    text = (ROOT / "plots.py").read_text()
    assert len(re.findall(r'^if __name__ == "__main__":', text, re.MULTILINE)) == 1
