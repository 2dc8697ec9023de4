"""What the 2019 handout asks a report to show, from the default commands: test curves at
every check (never choosing anything; a resumed run continues them: test_trainer.py), three
curves a figure, the architecture tables of the
original report, the 10-epoch bar, the best model, the checklist, PDFs, the code ZIP."""
import json
import zipfile

import pytest
import torch
from conftest import run_script, typed, write_image_tree
from test_trainer import make_trainer

from reporting import figures, results


def history(pairs, key="test_accuracy"):
    return {"config": {"model": "model21"}, "status": "finished", "best_check": 0,
            "history": [{"epoch": e, "step": int(e * 10), "train_loss": 1.0, "val_loss": 1.0,
                         "val_accuracy": 0.5, key: v} for e, v in pairs],
            "final": {s: {"loss": 1.0, "accuracy": 0.5} for s in ("train", "val", "test")}}


# --------------------------------------------------------------------------- the test curve
def test_every_check_records_the_test_split(tmp_path):
    run = make_trainer(tmp_path, epochs=2).train()
    assert len(run["history"]) == 4
    for check in run["history"]:
        assert 0 <= check["test_accuracy"] <= 1 and check["test_loss"] > 0
    # the last check's weights are not the best's, but a check measures the weights it has
    saved = json.loads((tmp_path / "run.json").read_text())
    assert [h["test_accuracy"] for h in saved["history"]] == \
        [h["test_accuracy"] for h in run["history"]]


@pytest.mark.parametrize("flip_val, patience", [(True, 3), (False, 0)],
                         ids=["early-stopped", "full-budget"])
def test_the_test_curve_chooses_nothing(tmp_path, monkeypatch, flip_val, patience):
    """Same seed with and without the test curve: the same checks, the same kept checkpoint,
    the same stopping step, the same weights and final numbers."""
    runs, weights = [], []
    for curve in (True, False):
        trainer = make_trainer(tmp_path / str(curve), epochs=6, patience=patience,
                               flip_val=flip_val)
        trainer.evaluator.test_curve = curve
        runs.append(trainer.train())
        weights.append({k: v.clone() for k, v in trainer.model.state_dict().items()})
    with_curve, without = runs
    assert "test_accuracy" in with_curve["history"][0]
    assert "test_accuracy" not in without["history"][0]
    assert with_curve["status"] == without["status"]
    assert with_curve["best_check"] == without["best_check"]
    assert [h["step"] for h in with_curve["history"]] == [h["step"] for h in without["history"]]
    for a, b in zip(with_curve["history"], without["history"]):
        assert {k: v for k, v in a.items() if not k.startswith(("test", "elapsed"))} == \
            {k: v for k, v in b.items() if not k.startswith("elapsed")}
    assert with_curve["final"] == without["final"]
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k
    if flip_val:
        assert with_curve["status"] == "early_stopped"


# --------------------------------------------------------------------------- figures
def legends(monkeypatch, draw):
    """The legend texts and title of each figure `draw()` saves."""
    seen = []

    def keep(fig, path):
        ax = fig.axes[0]
        seen.append((ax.get_title(), [t.get_text() for t in ax.get_legend().get_texts()]))
        figures.pyplot().close(fig)
        return path

    monkeypatch.setattr(figures, "save_figure", keep)
    draw()
    return seen


def test_figures_draw_three_curves_and_say_when_a_run_has_no_test_curve(tmp_path, monkeypatch):
    new = history([(0.5, 0.5), (1.0, 0.6)])
    for h in new["history"]:
        h.update(train_accuracy=0.6, test_loss=1.1)
    old = history([(0.5, 0.5)], key="unused")  # made before checks recorded the test split
    seen = legends(monkeypatch, lambda: figures.plot_runs({"New": typed(new), "Old": typed(old)}, "accuracy",
                                                        tmp_path / "a.png"))
    labels = seen[0][1]
    assert "New: train (fixed subset)" in labels and "New: validation" in labels
    assert "New: test" in labels
    assert "Old: test: not recorded (the run predates the test curve)" in labels
    seeds = legends(monkeypatch, lambda: figures.plot_runs({"Seeds": typed(new, new)}, "loss",
                                                         tmp_path / "b.png"))
    assert "Seeds: test" in seeds[0][1]  # the seeds' note once, not on every curve
    assert [label for label in seeds[0][1] if "seeds" in label] == [
        "line: mean of 2 seeds; band: ±1 sample std"]


def test_plots_py_redraws_each_figure_once(tmp_path):
    """`python plots.py RUN.json` draws the run's two figures and says so once each."""
    run = history([(0.5, 0.5), (1.0, 0.6)])
    run["figure_prefix"] = "task1"
    (tmp_path / "task1_lenet.json").write_text(json.dumps(run))
    result = run_script("plots.py", str(tmp_path / "task1_lenet.json"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"wrote {tmp_path / 'task1_loss.png'}",
                                          f"wrote {tmp_path / 'task1_accuracy.png'}"]


def test_the_best_model_is_the_best_validation_accuracy_unless_a_flag_says(tmp_path,
                                                                            monkeypatch):
    a, b = history([(1.0, 0.6)]), history([(1.0, 0.7)])
    a["final"]["val"]["accuracy"], b["final"]["val"]["accuracy"] = 0.71, 0.78
    assert results.best_model({"Model 2.1": typed(a), "Model 2.2": typed(b, b)}) == \
        ("Model 2.2", "the best validation accuracy: 0.7800 against Model 2.1: 0.7100")
    label, why = results.best_model({"Model 2.1": typed(a), "Model 2.2": typed(b)}, "Model 2.1")
    assert label == "Model 2.1" and why.startswith("chosen with --best-model")
    titles = [t for t, _ in legends(monkeypatch, lambda: figures.draw_task2(
        {"Model 2.1": typed(a), "Model 2.2": typed(b)}, tmp_path))]
    assert " ".join(titles[2].split()).startswith("Task 2c: accuracy of Model 2.2, the best Task 2 model")
    resnet = history([(1.0, 0.8)])
    resnet["config"] = {"model": "resnet18", "pretrained_source": "imagenet"}
    seen = legends(monkeypatch, lambda: figures.draw_task3d(
        {"Model 2.1": typed(a), "Model 2.2": typed(b)}, typed(resnet), tmp_path, "Model 2.1"))
    title, labels = " ".join(seen[0][0].split()), seen[0][1]
    assert "and Model 2.1, the best Task 2 model (chosen with --best-model" in title
    assert not [t for t in labels if "test" in t]  # 3d: training and validation only


# --------------------------------------------------------------------------- 2a: the tables
# The original report's tables (layer type, filters or units, activation), row by row.
REPORT_TABLES = {
    "Model 2.1": [("Conv2D", "32", "ReLU"), ("BatchNorm2D", "-", "-"), ("Conv2D", "64", "ReLU"),
                  ("BatchNorm2D", "-", "-"), ("MaxPool2D", "-", "-"), ("Conv2D", "128", "ReLU"),
                  ("BatchNorm2D", "-", "-"), ("Conv2D", "256", "ReLU"),
                  ("BatchNorm2D", "-", "-"), ("MaxPool2D", "-", "-"), ("Flatten", "-", "-"),
                  ("Fully-Connected", "64", "ReLU"),
                  ("Fully-Connected", "10", "Softmax (in the loss)")],
    "Model 2.2": [row for channels in ("32", "64", "128") for row in (
        ("Conv2D", channels, "ReLU"), ("BatchNorm2D", "-", "-"), ("Conv2D", channels, "ReLU"),
        ("Dropout2D", "p = 0.5", "-"), ("BatchNorm2D", "-", "-"), ("MaxPool2D", "-", "-"))]
    + [("Flatten", "-", "-"), ("Fully-Connected", "64", "ReLU"), ("BatchNorm1D", "-", "-"),
       ("Fully-Connected", "10", "Softmax (in the loss)")],
}


@pytest.mark.parametrize("label", list(REPORT_TABLES))
def test_the_architecture_tables_are_the_original_reports(label):
    from reporting.architecture import architecture_table
    from task2_models import Model21, Model22
    from training.architecture import layer_rows
    model = (Model21 if label == "Model 2.1" else Model22)()
    rows = layer_rows(model)
    assert [(r["type"], r["units"], r["activation"]) for r in rows] == REPORT_TABLES[label]
    assert sum(r["parameters"] for r in rows) == sum(p.numel() for p in model.parameters())
    flatten = next(r for r in rows if r["type"] == "Flatten")
    assert flatten["output"] == ("16384" if label == "Model 2.1" else "2048")
    assert all(r["kernel"] == "3x3, stride 1, padding 1" for r in rows if r["type"] == "Conv2D")
    table = architecture_table(model)
    assert table.count("\n") == len(rows) + 3  # header, rule, rows, total


# --------------------------------------------------------------------------- the 10-epoch bar
def rising(pairs):
    """A run whose validation loss falls at every check: its best-validation check is its
    last at or before epoch 10."""
    run = history(pairs)
    for i, check in enumerate(run["history"]):
        check["val_loss"] = 1.0 - i / 100
    return run


def test_the_ten_epoch_line_reads_the_best_validation_check_and_epoch_10():
    crosses = rising([(e / 2, 0.70 + 0.01 * (e >= 19)) for e in range(1, 25)])  # 0.71 at 9.5
    line = results.ten_epoch_line("Model 2.1", typed(crosses))
    assert line == ("Model 2.1: test accuracy 0.7100 at the best-validation check within 10 "
                    "epochs (at epoch 10: 0.7100): misses the handout's bar of 0.75")
    crosses = rising([(e / 2, 0.70 + 0.06 * (e >= 19)) for e in range(1, 25)])  # 0.76 at 9.5
    assert "reaches the handout's bar of 0.75" in results.ten_epoch_line("Model 2.1",
                                                                          typed(crosses))
    late = rising([(e / 2, 0.70 + 0.1 * (e >= 21)) for e in range(1, 25)])  # 0.80 at 10.5
    assert "test accuracy 0.7000 at the best" in results.ten_epoch_line("Model 2.2", typed(late))
    never = rising([(e / 2, 0.6) for e in range(1, 41)])
    assert "misses" in results.ten_epoch_line("Model 2.2", typed(never))
    seeds = results.ten_epoch_line("Model 2.2", typed(crosses, never))
    assert "over 2 seeds" in seeds and seeds.endswith("reaches the handout's bar of 0.75 in "
                                                      "1 of 2 seeds")
    old = history([(e / 2, 0.6) for e in range(1, 41)], key="unused")
    old["final"]["best_epoch"] = 20.0  # its final test is of a check after epoch 10
    assert results.ten_epoch_line("Model 2.1", typed(old)) == (
        "Model 2.1: no test accuracy within 10 epochs (the run predates the test curve)")


# --------------------------------------------------------------------------- REPORT.md
def test_the_checklist_names_every_item_and_a_missing_items_command(tmp_path):
    from report import build_report
    from reporting.cited import TASK_OUTPUT_RUNS
    from reporting.words import ITEMS
    lenet = history([(0.5, 0.5), (1.0, 0.6)])
    lenet["config"] = {"model": "lenet", "command": "python task1_lenet.py"}
    (tmp_path / "task1_lenet.json").write_text(json.dumps(lenet))
    figures.plot_runs({"LeNet": typed(lenet)}, "loss", tmp_path / "task1_loss.png")
    text, _missing = build_report(tmp_path, cited=TASK_OUTPUT_RUNS)
    checklist = text.split("## The handout, item by item")[1].split("\n## ")[0]
    rows = [line for line in checklist.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[0].removeprefix("| ") for row in rows] == [i for i, _ in ITEMS]
    answers = {row.split(" | ")[0].removeprefix("| "): row.split(" | ")[2] for row in rows}
    assert answers["1a"].startswith("[task1_loss.png](task1_loss.png)")
    assert answers["2b"] == "missing: `python task2_models.py --model 2.1 --data-dir DATA` |"
    assert "python task3_resnet.py" in answers["3d"]
    assert "python task3_visualisation.py" in answers["3e"]
    assert "python submission_zip.py" in answers["code"]


# --------------------------------------------------------------------------- PDFs and the ZIP
def test_pdfs_beside_the_pngs_of_a_users_folder_but_not_in_the_evidence(tmp_path):
    run = history([(0.5, 0.5), (1.0, 0.6)])
    path = figures.plot_runs({"x": typed(run)}, "loss", tmp_path / "a.png")
    assert path.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"
    with figures.png_only():
        figures.plot_runs({"x": typed(run)}, "loss", tmp_path / "b.png")
    assert (tmp_path / "b.png").is_file() and not (tmp_path / "b.pdf").exists()


def test_the_code_zip_holds_the_code_and_the_report_and_refuses_to_overwrite(tmp_path):
    tree = write_image_tree(tmp_path / "tree", n_train_per_class=10)
    out = tmp_path / "out"
    for argv in (["task1_lenet.py", "--data-dir", str(tree), "--epochs", "1", "--batch-size",
                  "16", "--output-dir", str(out), "--no-progress"],
                 ["report.py", "--own-runs", "--results", str(out)]):
        result = run_script(*argv)
        assert result.returncode == 0, result.stderr
    assert (out / "task1_lenet.pt").is_file()
    result = run_script("submission_zip.py", "--runs", str(out))
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(out / "submission.zip") as zf:
        names = zf.namelist()
    for name in ("tdt4265-a3/trainer.py", "tdt4265-a3/README.md", "tdt4265-a3/requirements.txt",
                 "tdt4265-a3/out/REPORT.md", "tdt4265-a3/out/task1_loss.png",
                 "tdt4265-a3/out/task1_loss.pdf", "tdt4265-a3/out/task1_lenet.json"):
        assert name in names, name
    assert not [n for n in names if n.endswith((".pt", ".npz", ".zip"))], names
    # the report is handed in as a PDF of its own: its source goes in, the PDF never
    assert "tdt4265-a3/out/REPORT.tex" in names and "tdt4265-a3/out/REPORT.pdf" not in names
    pdf = out / "REPORT.pdf"
    assert (f"left out {pdf}" if pdf.is_file() else f"no {pdf}") in result.stdout
    assert not [n for n in names if "/results/" in n or "/data/" in n], names
    assert "wrote " in result.stdout and " MB" in result.stdout
    again = run_script("submission_zip.py", "--runs", str(out))
    assert again.returncode == 2 and again.stderr.count("\n") == 1
    assert "exists; give --force" in again.stderr
    assert run_script("submission_zip.py", "--runs", str(out), "--force").returncode == 0
