"""The house's floors (README, 'Layout'): every import of every project module, those inside
functions too, goes to a floor below its own, so there is no circle and nothing imports
upward; the training loop knows no command-line flag and no kind of step."""
import ast
import re

import pytest

from conftest import ROOT

# README's Layout, bottom up. A module imports only from floors below its own.
FLOORS = [
    ("recipes", "tables"),                                   # the one table of the models; tables as data
    ("cli", "steps", "architecture"),                        # errors and flags; the step; model tables
    ("evaluation", "runs", "utils", "runrecord"),            # measuring; run files; device, config; a typed run
    ("dataloaders", "trainer"),                              # data in; the one training loop
    ("run_tables", "report_latex", "comparison"),            # tables and facts from run files; REPORT.tex; 2e
    ("plots",),                                              # figures from run files
    ("runner",),                                             # what every task script does per seed
    ("task1_lenet", "task2_models", "task3_resnet"),         # a model, its jobs(), its command
    ("report_text",),                                        # the report's words
    ("report_cited",),                                       # which runs the report cites, and why
    ("report_tables", "report_figures"),                     # the report's tables; its figures
    ("report_sections",),                                    # the report, the handout item by item
    ("task3_visualisation", "report", "benchmark", "submission_zip",   # read runs, time, pack;
     "task2_experiments"),                                   # Task 2e's variants over seeds
    ("run_all",),                                            # the whole assignment
]
SCRIPTS_FLOOR = len(FLOORS)  # scripts/*.py sit above everything


def project_modules() -> dict[str, object]:
    modules = {p.stem: p for p in ROOT.glob("*.py")}
    modules.update({f"scripts/{p.stem}": p for p in ROOT.glob("scripts/*.py")})
    return modules


def floor_of(name: str) -> int | None:
    if name.startswith("scripts/"):
        return SCRIPTS_FLOOR
    return next((i for i, names in enumerate(FLOORS) if name in names), None)


def imports_of(source: str, project: set[str]) -> set[str]:
    """The project modules a source imports anywhere (module level or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module.split(".")[0]]
        else:
            continue
        found |= {n for n in names if n in project}
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    project = {name for name in modules if "/" not in name}
    return {name: imports_of(path.read_text(), project) for name, path in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle, each once (depth-first search)."""
    found, done = [], set()

    def visit(node, path):
        if node in path:
            cycle = path[path.index(node):]
            if set(cycle) not in [set(c) for c in found]:
                found.append(cycle + [node])
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, path + [node])
        done.add(node)

    for node in sorted(graph):
        visit(node, [])
    return found


def upward(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for name, imported in sorted(graph.items()):
        floor = floor_of(name)
        if floor is None:
            bad.append(f"{name} is on no floor: add it to FLOORS and README's Layout")
            continue
        bad += [f"{name} (floor {floor}) imports {other} (floor {floor_of(other)})"
                for other in sorted(imported) if floor_of(other) is None
                or floor_of(other) >= floor]
    return bad


def test_no_circle_and_nothing_imports_upward():
    graph = import_graph()
    assert circles(graph) == []
    assert upward(graph) == []


def test_the_checks_find_a_circle_and_an_upward_import():
    graph = {"plots": {"task1_lenet"}, "task1_lenet": {"plots"}, "recipes": set(),
             "runner": {"trainer"}, "trainer": {"runner"}, "new_module": set()}
    assert sorted(map(sorted, circles(graph))) == [["plots", "plots", "task1_lenet"],
                                                   ["runner", "runner", "trainer"]]
    problems = upward(graph)
    assert "plots (floor 5) imports task1_lenet (floor 7)" in problems
    assert "trainer (floor 3) imports runner (floor 6)" in problems
    assert any(p.startswith("new_module is on no floor") for p in problems)
    assert imports_of("def f():\n    from plots import x\n", {"plots"}) == {"plots"}


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


def test_the_training_loop_knows_no_flag_and_no_kind_of_step():
    """The Trainer calls a step (steps.Step); the command line words its errors."""
    strings, names = strings_and_names((ROOT / "trainer.py").read_text())
    assert not [s for s in strings if re.search(r"--[a-z]", s)], "trainer.py names a flag"
    for name in ("GraphedStep", "graphed_step", "scaler", "GradScaler", "cuda_graphs", "argv",
                 "loss_count", "skipped"):
        assert name not in names, name
    assert strings_and_names('"""--x"""\nf("--batch-size")\nscaler.step()')[0] == ["--batch-size"]


@pytest.mark.parametrize("module", ["utils", "runner", "benchmark", "run_all"])
def test_the_recorded_command_is_never_read_from_sys_argv(module):
    assert "sys.argv" not in (ROOT / f"{module}.py").read_text()


REPORTING = ["report", "report_text", "report_cited", "report_tables", "report_figures",
             "report_sections", "report_latex", "run_tables", "plots", "tables", "runrecord"]


@pytest.mark.parametrize("module", REPORTING)
def test_each_reporting_room_stays_small(module):
    """One job a room (which runs, tables, figures, words, sections, the command line)."""
    lines = (ROOT / f"{module}.py").read_text().count("\n")
    assert lines <= 500, f"{module}.py has {lines} lines; split it by concern"
