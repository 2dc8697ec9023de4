"""REPORT as a hand-in: the checklist's Task 2 line (met, not met, not measured) from the
runs' test curves; the bar read at each seed's best-validation check within 10 epochs (never
a later check, never one the test split chose); the best Task 2 model chosen among the four
recipes by validation accuracy; the appendix holding the provenance; each figure under its
own caption only; a number's minus that never ends a line; a quick look's test images named;
the other runs' random-weights ResNet18 and capped run said for what they are."""
import itertools
import json
import re
from pathlib import Path

import pytest
from conftest import run_script, typed
from test_report_latex import tiny_results, tiny_run  # noqa: F401 (a fixture)

from report import build_report, report_blocks
from reporting.bar import at_bar, bar_table, bar_verdict, recipe_at_bar
from reporting.cited import TASK_OUTPUT_RUNS
from reporting.render import latex_escape, to_latex, to_latex_text
from reporting.results import best_model, other_runs_section, status_cell
from reporting.sections import draw_figures
from reporting.words import FIGURES
from training.recipes import RECIPES
from training.record import Run


def curve(tests, vals=None, *, model="model21-10ep", seed=0, metric="val_accuracy"):
    """A run checked every half epoch: test accuracy `tests[i]` and validation accuracy
    `vals[i]` (default: rising, so the last check is the best) at epoch (i + 1) / 2."""
    vals = vals or [0.5 + i / 100 for i in range(len(tests))]
    history = [{"epoch": (i + 1) / 2, "step": i, "train_loss": 1.0, "val_loss": 2.0 - v,
                "val_accuracy": v, "test_accuracy": t} for i, (t, v) in
               enumerate(zip(tests, vals))]
    return {"config": {"model": model, "seed": seed, "stop_metric": metric, "epochs": 10,
                       "command": "python task2_models.py --recipe 10-epoch",
                       "data": {"n_train": 45000, "n_val": 5000, "n_test": 10000}},
            "status": "finished", "history": history,
            "final": {"best_epoch": history[-1]["epoch"],
                      **{s: {"loss": 1.0, "accuracy": tests[-1] if s == "test" else max(vals)}
                         for s in ("train", "val", "test")}}}


def flat(value, n=20):
    return [value] * n


# --------------------------------------------------------------------------- the bar
def test_the_bar_reads_the_best_validation_check_within_10_epochs_and_nothing_else():
    # a later check (epoch 10.5) above 0.75, and the best validation there: never counted
    later = typed(curve(flat(0.70) + [0.90, 0.91]))[0]
    seed = at_bar(later)
    assert (seed.best_epoch, seed.best_test, seed.last_epoch, seed.last_test) == \
        (10.0, 0.70, 10.0, 0.70) and not seed.passes
    # the test split's best check (0.80 at epoch 3) is not the validation's (epoch 10)
    peaked = typed(curve([0.70] * 5 + [0.80] + [0.74] * 14))[0]
    assert (at_bar(peaked).best_epoch, at_bar(peaked).best_test) == (10.0, 0.74)
    # the validation's best at epoch 4 (lowest loss: the recipe's measure) is read, not 10's
    vals = [0.5 + i / 100 for i in range(8)] + [0.9] + [0.6] * 11
    early = typed(curve([0.60] * 8 + [0.76] + [0.79] * 11, vals, metric="val_loss"))[0]
    assert (at_bar(early).best_epoch, at_bar(early).best_test) == (4.5, 0.76)
    assert at_bar(early).last_test == 0.79
    table = bar_table([recipe_at_bar("Model 2.1, 10-epoch recipe", RECIPES["model21-10ep"],
                                     [later, peaked, early])])
    assert [row[1:] for row in table.rows] == [
        ["0", "10.0", "0.7000", "0.7000", "misses"],
        ["0", "10.0", "0.7400", "0.7400", "misses"],
        ["0", "4.5", "0.7600", "0.7900", "passes"],
        ["all", "", "0.7333 ± 0.0306", "0.7433 ± 0.0451", "1 of 3 seeds pass"]]


def recipes(m21_tests, m22_tests=(0.81, 0.82, 0.80), curves=True):
    """The two 10-epoch recipes, one run per seed ending at these test accuracies (`curves`
    False: runs of 40 epochs without a test curve, whose best check is after epoch 10)."""
    found = []
    for key, tests in (("model21-10ep", m21_tests), ("model22-10ep", m22_tests)):
        runs = []
        for seed, test in enumerate(tests):
            data = curve(flat(0.6, 19) + [test], model=key, seed=seed)
            if not curves:
                data = curve(flat(0.6, 80), model=key, seed=seed)
                for check in data["history"]:
                    del check["test_accuracy"]
            runs.append(typed(data)[0])
        found.append(recipe_at_bar(RECIPES[key].label, RECIPES[key], runs))
    return found


def test_the_checklists_task2_line_is_met_not_met_or_not_measured():
    assert bar_verdict(recipes((0.80, 0.79, 0.75))) == (
        "met: Model 2.1, 10-epoch recipe (3 of 3 seeds) and Model 2.2, 10-epoch recipe (3 of 3 "
        "seeds) reach 0.75 test accuracy at their best-validation check within 10 epochs")
    assert bar_verdict(recipes((0.80, 0.749, 0.81))) == (
        "not met: no recipe of Model 2.1 passes on every seed (Model 2.1, 10-epoch recipe: 2 of "
        "3 seeds)")
    assert bar_verdict(recipes((0.80,), curves=False)) == (
        "not measured: no run of Model 2.1 or Model 2.2 has a test curve within 10 epochs")
    assert bar_verdict(recipes((0.80,), ())).startswith("not measured: no run of Model 2.2")


def write_runs(folder: Path, runs: dict) -> Path:
    folder.mkdir(exist_ok=True)
    for name, data in runs.items():
        (folder / f"{name}.json").write_text(json.dumps(data))
    return folder


def checklist_row(text: str, item: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| {item} |"))


MET = ("met: Model 2.1, 10-epoch recipe (3 of 3 seeds) and Model 2.2, 10-epoch recipe (3 of 3 "
       "seeds) reach")
NOT_MET = "not met: no recipe of Model 2.1 passes on every seed"


@pytest.mark.parametrize("m21, verdict", [((0.80, 0.76, 0.77), MET),
                                          ((0.80, 0.749, 0.77), NOT_MET)])
def test_the_reports_checklist_says_met_only_when_every_seed_passes(tmp_path, m21, verdict):
    runs = {}
    for key, tests in (("model21-10ep", m21), ("model22-10ep", (0.81, 0.82, 0.80))):
        for seed, test in enumerate(tests):
            runs[f"{RECIPES[key].run_name}_seed{seed}"] = curve(flat(0.6, 19) + [test],
                                                                model=key, seed=seed)
    text, _ = build_report(write_runs(tmp_path / "runs", runs), cited=TASK_OUTPUT_RUNS)
    assert f"| {verdict}" in checklist_row(text, "Task 2")
    bar = text.split("### The bar")[1].split("\n### ")[0]
    assert "| Model 2.1, 10-epoch recipe | 0 | 10.0 | 0.8000 | 0.8000 | passes |" in bar
    assert ("| misses |" in bar) == ("not met" in verdict)


# --------------------------------------------------------------------------- 3d's best model
def test_the_best_task2_model_is_chosen_among_the_four_recipes_by_validation(tmp_path):
    runs = {"task2_model21": curve(flat(0.70), flat(0.70), model="model21"),
            "task2_model22": curve(flat(0.72), flat(0.72), model="model22"),
            # the best test accuracy, but a worse validation accuracy: never chosen
            "task2_model21_10ep": curve(flat(0.90), flat(0.74), model="model21-10ep"),
            "task2_model22_10ep": curve(flat(0.80), flat(0.85), model="model22-10ep")}
    for data in runs.values():  # full runs of their recipes (no quick look)
        data["config"]["epochs"] = RECIPES[data["config"]["model"]].epochs
    groups = {RECIPES[d["config"]["model"]].label: typed(d) for d in runs.values()}
    assert best_model(groups)[0] == "Model 2.2, 10-epoch recipe"
    folder = write_runs(tmp_path / "runs", runs)
    drawn = {p.name for p in draw_figures(folder, folder, TASK_OUTPUT_RUNS)}
    assert {"task2c_accuracy.png", "task2_10ep_loss.png", "task2_loss.png"} <= drawn
    text, _ = build_report(folder, cited=TASK_OUTPUT_RUNS, drawn=drawn)
    assert "### 2c, 2d: the best model, Model 2.2, 10-epoch recipe" in text
    assert text.count("**The best Task 2 model**") == 1  # said once
    assert "(Model 2.2, 10-epoch recipe)" in checklist_row(text, "2c")
    # 2b: the four recipes, the report's numbers right under ours
    b = text.split("### 2b")[1].split("\n### ")[0]
    names = [row.split(" | ")[0][2:] for row in b.splitlines() if row.startswith("| Model")]
    assert names == ["Model 2.1", "Model 2.1 (report)", "Model 2.2", "Model 2.2 (report)",
                     "Model 2.1, 10-epoch recipe", "Model 2.2, 10-epoch recipe"]


# --------------------------------------------------------------------------- the hand-in's order
def test_the_appendix_holds_the_provenance_and_the_main_part_does_not(tiny_results):  # noqa: F811
    text, _ = build_report(tiny_results, cited=TASK_OUTPUT_RUNS)
    main, appendix = text.split("\n## Appendix: Provenance\n")
    for part in ("### Runs: command, device, date, time", "Generated by `python report.py",
                 "### Corrections to the original report", "**Data**", "source key"):
        assert part in appendix and part not in main, part
    assert "| run: files | command |" in appendix and "| run: files |" not in main
    headings = re.findall(r"^## (.*)$", main, flags=re.MULTILINE)
    assert headings == ["Summary: ours beside the original report (test accuracy)",
                        "The handout, item by item", "Task 1: LeNet",
                        "Task 2: Model 2.1 and Model 2.2", "Task 3: ResNet18 transfer learning",
                        "Per-class test accuracy"]
    task2 = re.findall(r"^### (.*)$", main.split("## Task 2")[1].split("## Task 3")[0],
                       flags=re.MULTILINE)
    assert [h.split(":")[0] for h in task2] == ["The bar", "2a", "2b", "2c, 2d", "2e"]


def repeated_captions(text: str) -> list[str]:
    """Headings and bold lines that say again the caption of the figure right after them."""
    def plain(s: str) -> str:
        return re.sub(r"[^a-z0-9]+", " ", s.lower().replace("task ", "")).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    found = []
    for line, following in itertools.pairwise(lines):
        image = re.match(r"^!\[([^\]]*)\]", following)
        title = re.match(r"^(?:#+ (.*)|\*\*(.*)\*\*)$", line)
        if image and title:
            a, b = plain(title.group(1) or title.group(2)), plain(image.group(1))
            if a and (a in b or b in a):
                found.append(line)
    return found


def test_no_heading_repeats_the_caption_of_the_figure_it_stands_over(tiny_results):  # noqa: F811
    caption = FIGURES["1a"][0]
    assert repeated_captions(f"#### {caption}\n\n![{caption}](task1_loss.png)\n") != []
    assert repeated_captions(f"**{caption}**\n\n![{caption}](task1_loss.png)\n") != []
    result = run_script("report.py", "--own-runs", "--results", str(tiny_results), "--no-pdf")
    assert result.returncode == 0, result.stderr
    text = (tiny_results / "REPORT.md").read_text()
    assert len(re.findall(r"^!\[", text, flags=re.MULTILINE)) >= 6
    assert repeated_captions(text) == []
    tex = (tiny_results / "REPORT.tex").read_text()
    assert r"\subsubsection*{Task" not in tex and r"\textbf{Task 1a" not in tex


# --------------------------------------------------------------------------- LaTeX's small things
def test_a_numbers_minus_never_ends_a_line_and_quotes_open(tiny_results):  # noqa: F811
    def breakable(tex: str) -> list[str]:  # a hyphen that starts a number, outside \texttt
        prose = re.sub(r"\\texttt\{[^}]*\}", "", tex)
        return re.findall(r"(?:^|[\s\[(,;])-\.?\d", prose, flags=re.MULTILINE)
    assert breakable("an interval [-0.0721, -0.0504] here") != []  # what the check finds
    assert breakable(latex_escape("an interval [-0.0721, -0.0504] and -6.17 points")) == []
    from reporting.table import Table
    cell = to_latex(Table(["variant", "Δ"], [["lenet-3x3", "-0.40 [-1.74, +0.94]"]]))
    assert breakable(cell) == [] and "lenet-3x3" in cell
    blocks, _ = report_blocks(tiny_results, cited=TASK_OUTPUT_RUNS, drawn=set())
    body = to_latex_text(blocks).split(r"\begin{document}")[1]
    assert breakable(body) == []
    assert latex_escape("'Original report': the run's 'x'") == \
        "`Original report': the run's `x'"
    assert not re.search(r"(?:^|\s)'\w", re.sub(r"\\texttt\{[^}]*\}", "", body))


def test_a_quick_look_states_its_test_images_wherever_it_speaks_of_the_test_set(
        tiny_results):  # noqa: F811
    text, _ = build_report(tiny_results, cited=TASK_OUTPUT_RUNS)
    summary = text.split("## The handout")[0]
    assert "measured on the 300 test images the runs kept" in summary
    for part in ("### The bar", "### 1b", "### 2b", "## Per-class"):
        section = text.split(part)[1].split("\n## ")[0].split("\n### ")[0]
        assert "300 test images" in section, part
    assert "10,000" not in text.split("## Appendix")[0]


# --------------------------------------------------------------------------- other runs
def test_other_runs_say_what_a_random_resnet_and_a_capped_run_are(tmp_path):
    smoke = curve(flat(0.33, 2), model="resnet18")
    smoke["config"]["pretrained_source"] = "random"
    capped = curve(flat(0.6, 51), model="model22")
    capped["config"]["epochs"] = 50
    capped["status"], capped["final"] = "running", {}
    folder = write_runs(tmp_path / "h", {"task3_resnet18_smoke": smoke,
                                         "task2_model22": capped})
    rows = other_runs_section(tmp_path, [Run.load(p) for p in sorted(folder.glob("*.json"))])
    table = rows[-1]
    assert table.column("test acc") == ["-", "random stand-in weights: not transfer learning"]
    assert table.column("status")[0] == ("stopped at epoch 25.5 of 50 without a final "
                                         "evaluation (its file still says 'running')")
    going = Run.from_dict({**capped, "config": {**capped["config"],
                                                "started": "2026-12-06T10:00:00+00:00"}},
                          tmp_path / "x.json")
    started = 1796551200.0  # 2026-12-06 10:00 UTC
    assert status_cell(going, now=started + 60) == "running, at epoch 25.5 of 50"
    assert status_cell(going, now=started + 86400).startswith("stopped at epoch 25.5")
    # a file name in monospace (LaTeX breaks it after / and _), a status in words
    assert table.column("run")[0] == "`h/task2_model22`"
    early = Run.from_dict({**capped, "status": "early_stopped"}, tmp_path / "y.json")
    assert status_cell(early) == "early stopped"
