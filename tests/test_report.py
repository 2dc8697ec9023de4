import ast
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, run_script, write_image_tree, write_pickle_batches
from doccheck import bad_pointers, broken_links

from report import build_report, model_of
from reporting.cited import CITED, TASK_OUTPUT_RUNS, data_line, shown_command
from reporting.figures import plot_confusion, plot_runs
from reporting.render import TitleBlock, to_markdown_text
from reporting.results import final_table, per_class_table
from reporting.sections import report_blocks
from training.batches import CLASSES
from training.record import Run, mean_std


def run(name, test_acc, *, seed=0, source=None, gpu=None):
    return {"config": {"model": name, "seed": seed, "device": "cpu", "precision": "bf16",
                       "command": f"python {name}.py", "stop_metric": "val_loss",
                       "environment": {"torch": "2.x", "threads": 2, **({"gpu": gpu} if gpu else {})},
                       "data": {"kind": "archive", "path": "x/cifar10-jpeg.tar.gz", "n_train": 45000,
                                "n_val": 5000, "n_test": 10000},
                       **({"pretrained_source": source} if source else {})},
            "status": "finished", "best_check": 1,
            "history": [{"epoch": 0.5, "step": 5, "train_loss": 2.0, "val_loss": 1.9,
                         "val_accuracy": 0.3 + seed / 100, "train_accuracy": 0.3},
                        {"epoch": 1.0, "step": 10, "train_loss": 1.5, "val_loss": 1.4,
                         "val_accuracy": 0.5 + seed / 100, "train_accuracy": 0.5}],
            "final": {s: {"loss": 1.0, "accuracy": test_acc} for s in ("train", "val", "test")},
            "timings": {"train_s": 120}}


def typed(data, name="run"):
    return Run.from_dict(data, Path(f"{name}.json"))


def write(out, name, data):
    (out / f"{name}.json").write_text(json.dumps(data))


def test_mean_std_from_known_values():
    assert mean_std([0.70, 0.72, 0.74]) == pytest.approx((0.72, 0.02), rel=1e-4)  # sample sd
    _text, md = final_table({"LeNet": [typed(run("a", a)) for a in (0.70, 0.72, 0.74)]})
    assert "0.720 ± 0.020" in md and "LeNet (3 seeds)" in md


def test_report_lists_missing_runs_with_commands(tmp_path):
    write(tmp_path, "task1_lenet", run("lenet", 0.7251))
    text, missing = build_report(tmp_path, cited=TASK_OUTPUT_RUNS)
    assert missing == ["task2_model21", "task2_model22", "task2_model21_10ep",
                       "task2_model22_10ep", "task3_resnet18"]
    assert "| LeNet (Task 1) | 0.7251 | 0.7206 |" in text
    assert "missing: `python task2_models.py --model 2.1" in text
    assert "390,410" in text  # the Task 1c table
    assert "task1_loss.png` is not in the output folder" in text


def test_report_with_seeds_and_random_resnet_weights(tmp_path):
    for seed, acc in ((0, 0.70), (1, 0.72), (2, 0.74)):
        write(tmp_path, f"task1_lenet_seed{seed}", run("lenet", acc, seed=seed))
    write(tmp_path, "task2_model21", run("model21", 0.79))
    write(tmp_path, "task2_model22", run("model22", 0.77))
    write(tmp_path, "task3_resnet18", run("resnet18", 0.5, source="unverified"))
    write(tmp_path, "task2_model22_p0.1", run("model22", 0.78))
    (tmp_path / "benchmark.json").write_text(json.dumps({"device": "cpu", "models": {}}))
    plot_runs({"x": [typed(run("x", 0.5))]}, "loss", tmp_path / "task2_loss.png")
    text, missing = build_report(tmp_path, cited=TASK_OUTPUT_RUNS)
    assert missing == ["task2_model21_10ep", "task2_model22_10ep"]
    assert "0.7200 ± 0.0200 (3 seeds)" in text
    assert "| Model 2.1 | 1.000 | 0.790 |" in text and "Model 2.1 (report) | 0.933 | 0.806 |" in text
    assert "Not reproduced yet" in text and "| 0.5" not in text.split("## Task 3")[1].split("## Corr")[0]
    assert "![Task 2: loss of both models, the report's recipes](task2_loss.png)" in text
    assert "| `task2_model22_p0.1` | 0.7800 | finished | `python model22.py` |" in text


def test_report_command_writes_file(tmp_path):
    write(tmp_path, "task3_resnet18", run("resnet18", 0.88, source="imagenet", gpu="NVIDIA H100"))
    result = run_script("report.py", "--results", str(tmp_path), "--output-dir", str(tmp_path),
                        "--own-runs")
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "REPORT.md").read_text()
    assert "| ResNet18 (Task 3) | 0.8800 |" in text and "NVIDIA H100" in text


def test_band_figure_from_seeds(tmp_path):
    path = plot_runs({"LeNet": [typed(run("a", 0.7, seed=s)) for s in range(3)]}, "accuracy",
                     tmp_path / "band.png")
    assert path.stat().st_size > 0


# --------------------------------------------------------------------------- per-class results
def with_confusion(data, matrix):
    matrix = np.asarray(matrix)
    test = data["final"]["test"]
    test["confusion_matrix"] = matrix.tolist()
    test["per_class_accuracy"] = (np.diag(matrix) / matrix.sum(axis=1)).tolist()
    test["accuracy"] = float(np.trace(matrix) / matrix.sum())
    return data


def matrix_with(confusions, n=200):
    """n test images a class, all right except {(true, predicted): count}."""
    m = np.diag([n] * 10)
    for (t, p), c in confusions.items():
        m[t, t] -= c
        m[t, p] += c
    return m


CAT, DOG, TRUCK, AUTO = (CLASSES.index(c) for c in ("cat", "dog", "truck", "automobile"))


def test_per_class_table_mean_std_missing_data_and_most_confused():
    seeds = [with_confusion(run("model21", 0, seed=s), matrix_with(
        {(CAT, DOG): 60 + 20 * s, (DOG, CAT): 30, (TRUCK, AUTO): 10})) for s in range(2)]
    old = run("lenet", 0.7)  # a run made before per-class data was recorded
    md = per_class_table({"Model 2.1": [typed(s) for s in seeds], "LeNet": [typed(old)]},
                         CLASSES)
    lines = md.splitlines()
    assert lines[0] == "| class | Model 2.1 (2 seeds) | LeNet |"
    # cat: 140/200 and 120/200 right -> 0.650 ± 0.071 (sample sd); LeNet: no per-class data
    assert "| cat | 0.650 ± 0.071 | - |" in lines
    assert "| dog | 0.850 ± 0.000 | - |" in lines and "| airplane | 1.000 ± 0.000 | - |" in lines
    # overall: (2000 - 60 - 30 - 10) / 2000 and (2000 - 80 - 30 - 10) / 2000
    assert "| **all (test accuracy)** | 0.945 ± 0.007 | 0.700 |" in lines
    assert [line for line in lines if line.startswith("| Model 2.1 (summed")] == [
        "| Model 2.1 (summed over 2 seeds) | cat -> dog | 140 | 35.0% |",
        "| Model 2.1 (summed over 2 seeds) | dog -> cat | 60 | 15.0% |",
        "| Model 2.1 (summed over 2 seeds) | truck -> automobile | 20 | 5.0% |"]
    assert "| LeNet | no per-class data (the run predates it) | - | - |" in lines


def test_confusion_figure_sums_seeds_and_refuses_runs_without_a_matrix(tmp_path):
    seeds = [with_confusion(run("model22", 0, seed=s), matrix_with({(CAT, DOG): 50}))
             for s in range(3)]
    path = plot_confusion([typed(s) for s in seeds], tmp_path / "confusion_model22.png",
                          "Model 2.2", CLASSES)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20000
    with pytest.raises(ValueError, match="no run has a test confusion matrix"):
        plot_confusion([typed(run("lenet", 0.7))], tmp_path / "none.png", "LeNet", CLASSES)
    assert not (tmp_path / "none.png").exists()


# --------------------------------------------------------------------------- results folders
def test_report_from_a_results_folder_of_machines_and_dates(tmp_path):
    from reporting.sections import draw_figures
    results, out = tmp_path / "results", tmp_path / "out"
    data_path = "../elsewhere/data/cifar10-jpeg.tar.gz"  # the data's path on the machine that ran it
    lenet_dir = results / "gpu-2026-01-02" / "lenet"
    lenet_dir.mkdir(parents=True)
    for seed in (0, 1, 10):  # numeric seed order: 0, 1, 10
        data = with_confusion(run("lenet", 0, seed=seed, gpu="NVIDIA H200"),
                              matrix_with({(CAT, DOG): 40}))
        data["config"]["device"] = "cuda"
        data["config"]["command"] = (f"python task1_lenet.py --seed {seed} --data-dir {data_path} "
                                     f"--output-dir x/s{seed}")
        write(lenet_dir, f"task1_lenet_seed{seed}", data)
    (results / "cpu-2026-01-03").mkdir()
    m21 = run("model21", 0.77)
    m21["config"]["command"] = f"python task2_models.py --model 2.1 --data-dir {data_path}"
    write(results / "cpu-2026-01-03", "task2_model21", m21)
    other = run("model22", 0.78)
    other["config"]["command"] = f"python task2_models.py --model 2.2 --data-dir {data_path}"
    write(results / "cpu-2026-01-03", "task2_model22_p0.1", other)
    cited = {
        "task1_lenet": {"label": "LeNet (Task 1)", "files": ["gpu-*/lenet/task1_lenet_seed*.json"],
                        "command": "python task1_lenet.py --data-dir DATA --seed S"},
        "task2_model21": {"label": "Model 2.1", "files": ["cpu-2026-01-03/task2_model21.json"],
                          "command": "python task2_models.py --model 2.1 --epochs 40 "
                                     "--data-dir DATA"},
        "task2_model22": {"label": "Model 2.2", "files": ["nowhere/task2_model22.json"],
                          "command": "python task2_models.py --model 2.2 --data-dir DATA"},
        "task3_resnet18": {"label": "ResNet18 (Task 3)", "files": [],
                           "command": "python task3_resnet.py --data-dir DATA",
                           "missing": "no weights here"},
    }
    drawn = {p.name for p in draw_figures(results, out, cited)}
    assert drawn == {"task1_loss.png", "task1_accuracy.png", "task2_accuracy.png",
                     "task2_loss.png", "task2c_accuracy.png", "task2d_loss.png",
                     "confusion_lenet.png"}
    text, missing = build_report(results, out, cited, drawn)
    assert missing == ["task2_model22", "task3_resnet18"]
    assert "| LeNet (Task 1) | 0.9800 ± 0.0000 (3 seeds) | 0.7206 |" in text
    files = ", ".join(f"`gpu-2026-01-02/lenet/task1_lenet_seed{s}`" for s in (0, 1, 10))
    assert (f"| **LeNet**: {files} | `python task1_lenet.py --data-dir DATA --seed S` | "
            "code -; cuda (NVIDIA H200), bf16, torch 2.x; 2026-01-02 (`gpu-2026-01-02/`); "
            "finished; 2m00s each; data: archive `cifar10-jpeg.tar.gz`; 45,000 train / "
            "5,000 val / 10,000 test images |") in text
    assert "| cat | 0.800 ± 0.000 | - |" in text
    assert "![LeNet: test confusion matrix](confusion_lenet.png)" in text
    assert "![Task 2: loss of both models, the report's recipes](task2_loss.png)" in text
    # the cited command is checked against the recorded one (Model 2.1's lacks --epochs 40)
    assert ("`cpu-2026-01-03/task2_model21` records the command `python task2_models.py "
            "--model 2.1 --data-dir DATA`, which differs") in text
    assert text.count("**Check the citation**") == 1
    assert ("| `cpu-2026-01-03/task2_model22_p0.1` | 0.7800 | finished | `python task2_models.py "
            "--model 2.2 --data-dir DATA` | cpu (2 threads), bf16; 2026-01-03 "
            "(`cpu-2026-01-03/`); 2m00s |") in text
    assert "- ResNet18 (Task 3): `python task3_resnet.py --data-dir DATA` (not made: no weights " \
           "here)" in text
    assert "elsewhere" not in text and "nowhere" not in text


def test_shown_command_hides_the_data_path_only():
    assert shown_command("python a.py --data-dir ../elsewhere/x.tar.gz --seed 1") == \
        "python a.py --data-dir DATA --seed 1"
    assert shown_command("python a.py --data-dir=/abs/x --epochs 2") == \
        "python a.py --data-dir=DATA --epochs 2"


def test_report_errors_are_one_line(tmp_path):
    result = run_script("report.py", "--results", str(tmp_path / "none"),
                        "--output-dir", str(tmp_path / "out"))
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert "--results" in result.stderr and "is not a folder" in result.stderr
    assert not (tmp_path / "out").exists()


def repository_results(dest: Path) -> Path:
    """A copy of results/ as a fresh clone would have it once results/ is committed: the
    files git tracks or would add (not ignored, e.g. no checkpoints); the folder as is when
    there is no git repository."""
    source = ROOT / "results"
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        return Path(shutil.copytree(source, dest / "results"))
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard", "--", "results"],
                            capture_output=True, text=True, check=True).stdout
    for rel in filter(None, listed.split("\0")):
        if Path(rel).name.startswith("."):  # a half-written temporary file of a running job
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(ROOT / rel, target)
        except FileNotFoundError:  # deleted since it was listed (git index out of date)
            continue
    return dest / "results"


def test_committed_report_regenerates_from_the_repositorys_results(tmp_path):
    results = repository_results(tmp_path)
    out = tmp_path / "out"
    result = run_script("report.py", "--results", str(results), "--output-dir", str(out),
                        "--no-pdf")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("missing runs: task3_resnet18"), result.stdout
    assert (out / "REPORT.tex").is_file() and not (out / "REPORT.pdf").exists()
    text = (out / "REPORT.md").read_text()
    missing = text.split("## Missing runs")[1].strip().splitlines()
    assert len(missing) == 1 and missing[0].startswith("- ResNet18 (Task 3): ")
    assert "ImageNet weights cannot be had" in missing[0]
    assert "## Per-class test accuracy" in text and "| **all (test accuracy)** |" in text
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert {"task1_loss.png", "task1_accuracy.png", "task2_accuracy.png",
            "task2_loss.png"} <= set(figures)
    for name in figures:
        assert (out / name).is_file(), name
    for name in ("task1_lenet", "task2_model21", "task2_model22"):  # every cited run is there
        assert f"| {CITED[name]['label']} | missing" not in text
    assert "**Check the citation**" not in text  # each cited command is the recorded one
    # no path of the machines the runs were made on (the data's), nor of this checkout
    recorded = set()
    for path in results.rglob("*.json"):
        config = json.loads(path.read_text()).get("config") or {}
        recorded |= {config.get("data", {}).get("path"), config.get("args", {}).get("data_dir")}
    recorded.discard(None)
    assert recorded and not any(p in text for p in recorded), recorded
    assert str(ROOT) not in text


def test_find_runs_takes_the_group_written_last(tmp_path):
    import os

    from training.storage import find_runs
    for name in ("task1_lenet_seed0", "task1_lenet_seed1", "task1_lenet"):
        write(tmp_path, name, run("lenet", 0.7))
    old, new = 1_000_000_000, 2_000_000_000
    for seed in (0, 1):
        os.utime(tmp_path / f"task1_lenet_seed{seed}.json", ns=(old, old))
    os.utime(tmp_path / "task1_lenet.json", ns=(new, new))
    assert find_runs(tmp_path, "task1_lenet") == [tmp_path / "task1_lenet.json"]
    os.utime(tmp_path / "task1_lenet.json", ns=(old - 1, old - 1))
    assert [p.name for p in find_runs(tmp_path, "task1_lenet")] == \
        ["task1_lenet_seed0.json", "task1_lenet_seed1.json"]


def test_readme_results_table_is_the_one_the_run_files_give():
    """README's numbers are read from the committed run files: the table in README.md is
    exactly what `python report.py --readme-table` prints from results/."""
    from pathlib import Path

    from reporting.results import readme_table
    root = Path(__file__).resolve().parents[1]
    table = readme_table(root / "results")
    assert "| LeNet (Task 1) |" in table and "| Model 2.1 |" in table
    assert table in (root / "README.md").read_text(), \
        "README's results table differs from `python report.py --readme-table`: paste it again"


# --------------------------------------------------------------------------- the user's own runs
def test_data_line_names_the_sources_the_configs_record():
    jpeg = run("lenet", 0.7)
    jpeg["config"]["data"]["cache"] = "/c/cifar10-e98dedfbb831d5137458.npz"
    line = data_line({"task1_lenet": [typed(jpeg)], "task2_model22": [typed(jpeg)]})
    assert line.startswith("**Data**: every run shown trained on the JPEG copy of CIFAR-10 "
                           "(quality 75) (archive, source key `e98dedfbb831`).")
    pickle_run, tree_run = run("lenet", 0.7), run("model21", 0.7)
    pickle_run["config"]["data"] = {"kind": "cifar-10-batches-py", "path": "/a/cifar-10-batches-py",
                                    "cache": "/c/cifar10-0123456789abcdef0123.npz"}
    tree_run["config"]["data"] = {"kind": "image-folder", "path": "/b/mytree",
                                  "cache": "/c/cifar10-fedcba9876543210fedc.npz"}
    line = data_line({"task1_lenet": [typed(pickle_run)], "task2_model21": [typed(tree_run)]})
    assert ("**Data: mixed sources**: CIFAR-10 in torchvision's python format "
            "(`cifar-10-batches-py/`) (cifar-10-batches-py, source key `0123456789ab`) for "
            "LeNet; the image-folder tree `mytree/` (image-folder, source key `fedcba987654`) "
            "for Model 2.1.") in line
    assert "/a/" not in line and "/b/" not in line  # the machine's paths are not shown


def test_quick_look_is_a_subset_or_fewer_epochs_than_the_tasks_default():
    full = run("model22", 0.7)
    full["config"].update(epochs=50, args={"subset": None, "epochs": None})
    assert typed(full).quick_look is None
    longer = run("lenet", 0.7)
    longer["config"].update(epochs=12, args={"subset": None, "epochs": 12})
    assert typed(longer).quick_look is None
    short = run("model21", 0.7)
    short["config"].update(epochs=2, args={"subset": 2000, "epochs": 2})
    assert typed(short).quick_look == "--subset 2000, 2 of 40 epochs"
    _text, md = final_table({"Model 2.1": [typed(short)]})
    assert "| Model 2.1, quick look (--subset 2000, 2 of 40 epochs) |" in md


def test_own_runs_report_through_the_task_scripts(tmp_path):
    """Runs a user makes with the task scripts: REPORT.md names their data (a pickle source
    and an image tree), their recorded commands and dates, marks the quick looks, has no
    citation checks, resolves every link, and its first line rebuilds it."""
    pickle_root = write_pickle_batches(tmp_path / "pickle", n_train_per_class=10)
    tree = write_image_tree(tmp_path / "tree", n_train_per_class=10)
    out = tmp_path / "out"
    lenet = ["task1_lenet.py", "--data-dir", str(pickle_root), "--subset", "40", "--epochs", "1",
             "--batch-size", "16", "--output-dir", str(out), "--no-progress"]
    m21 = ["task2_models.py", "--model", "2.1", "--data-dir", str(tree), "--epochs", "1",
           "--batch-size", "16", "--output-dir", str(out), "--no-progress"]
    for argv in (lenet, m21):
        result = run_script(*argv)
        assert result.returncode == 0, result.stderr
    result = run_script("report.py", "--own-runs", "--results", str(out))
    assert result.returncode == 0, result.stderr
    report_md = out / "REPORT.md"
    text = report_md.read_text()

    assert "**Data: mixed sources**: CIFAR-10 in torchvision's python format " \
           "(`cifar-10-batches-py/`) (cifar-10-batches-py, source key `" in text
    assert "for LeNet; the image-folder tree `tree/` (image-folder, source key `" in text
    assert "JPEG copy" not in text and "quality 75" not in text
    for argv, name, data in ((lenet, "task1_lenet", pickle_root), (m21, "task2_model21", tree)):
        recorded = " ".join(["python", *("DATA" if a == str(data) else a for a in argv)])
        row = next(line for line in text.splitlines() if f"**: `{name}` |" in line)
        assert f"| `{recorded}` |" in row, row
        started = json.loads((out / f"{name}.json").read_text())["config"]["started"]
        assert f"; {started[:10]} {started[11:16]} UTC;" in row, row  # when it started
    assert "| LeNet (Task 1) | " in text and \
        "*quick look (--subset 40, 1 of 10 epochs)* | 0.7206 |" in text
    assert "*quick look (1 of 40 epochs)* | 0.806 |" in text
    assert "LeNet, quick look (--subset 40, 1 of 10 epochs) |" in text  # the 1b table
    assert "Check the citation" not in text
    assert broken_links(report_md) == [] and bad_pointers(text, str(report_md)) == []

    command = re.search(r"^Generated by `([^`]+)`", text, flags=re.MULTILINE).group(1)
    assert command == f"python report.py --results {out} --output-dir {out} --own-runs"
    report_md.unlink()
    rebuilt = run_script(*shlex.split(command)[1:])
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert report_md.read_text() == text


def test_committed_report_is_what_report_py_draws(monkeypatch):
    """results/report/REPORT.md (README links it) is what `python report.py` writes from the
    committed run files now: no hand edits, no stale numbers."""
    monkeypatch.chdir(ROOT)
    committed = Path("results/report/REPORT.md")
    blocks, _ = report_blocks(Path("results"), committed.parent, CITED, model_of=model_of)
    text = to_markdown_text(blocks, TitleBlock())  # as report.py writes it: the placeholders
    assert committed.read_text() == text, "results/report/ is stale: run `python report.py`"


def test_the_original_reports_numbers_are_one_table():
    import task2_models
    from training.recipes import RECIPES, TASK2
    assert {r.run_name for r in RECIPES.values()} == set(CITED) == set(TASK_OUTPUT_RUNS)
    assert not hasattr(task2_models, "REPORT")  # Task 2 reads the one table
    assert {r.label for r in TASK2 if r.original} == {"Model 2.1", "Model 2.2"}
    numbers = {r.original["test"]["accuracy"] for r in RECIPES.values() if r.original}
    for path in [*ROOT.glob("*.py"), *ROOT.glob("scripts/*.py"), *ROOT.glob("training/*.py"),
                 *ROOT.glob("reporting/*.py")]:
        if path.name == "recipes.py":
            continue
        floats = {n.value for n in ast.walk(ast.parse(path.read_text()))
                  if isinstance(n, ast.Constant) and isinstance(n.value, float)}
        assert not floats & numbers, f"{path.name} holds the report's numbers itself"


def test_figure_titles_mark_quick_looks(tmp_path, monkeypatch):
    from reporting import figures
    titles = []

    def keep_title(fig, path):
        titles.append(fig.axes[0].get_title())
        figures.pyplot().close(fig)
        return path

    monkeypatch.setattr(figures, "save_figure", keep_title)
    short = run("model21", 0.4)
    short["config"].update(epochs=2, args={"subset": 2000, "epochs": 2})
    full = run("model22", 0.7)
    full["config"].update(epochs=50, args={"subset": None, "epochs": None})
    plot_runs({"Model 2.1": [typed(short)], "Model 2.2": [typed(full)]}, "loss", tmp_path / "a.png",
              title="Task 2")
    plot_runs({"Model 2.2": [typed(full)]}, "loss", tmp_path / "b.png", title="Task 2")
    plot_confusion([typed(with_confusion(short, matrix_with({})))], tmp_path / "c.png", "Model 2.1",
                   CLASSES)
    assert titles[0] == ("Task 2\nquick look (--subset 2000, 2 of 40 epochs): not comparable "
                         "with the report")
    assert titles[1] == "Task 2"
    assert titles[2].startswith("Model 2.1\nquick look (--subset 2000, 2 of 40 epochs)")


def test_own_runs_of_an_empty_folder_is_one_line_and_the_evidence_run_says_so(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_script("report.py", "--own-runs", "--results", str(empty), "--no-pdf")
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "no runs of the task scripts in" in result.stderr and "train first" in result.stderr
    assert not (empty / "REPORT.md").exists()
    results = repository_results(tmp_path)
    result = run_script("report.py", "--results", str(results), "--output-dir",
                        str(tmp_path / "out"), "--no-pdf")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        f"rebuilding the report of the committed runs in {results}/ into {tmp_path / 'out'}/ "
        "(your own runs: python report.py --own-runs)")


def test_a_recorded_command_is_the_cited_one_whatever_its_output_folder_and_resume():
    """--output-dir and --resume change no run: a run whose command gave them (a seed that
    began inside a resumed --seeds process records --resume) is the cited command's run."""
    from reporting.cited import command_differs
    spec = {"command": "python task2_models.py --recipe 10-epoch --model 2.1 --seeds 3 "
                       "--data-dir DATA --no-progress"}
    def run(command):
        return Run.from_dict({"config": {"command": command}, "history": []}, Path("r.json"))
    assert command_differs(spec, run(
        "python task2_models.py --recipe 10-epoch --model 2.1 --seeds 3 --data-dir /d "
        "--output-dir /x --no-progress --resume")) is None
    assert command_differs(spec, run(
        "python task2_models.py --recipe 10-epoch --model 2.2 --seeds 3 --data-dir /d "
        "--no-progress")) is not None


def test_readmes_rows_are_short_and_their_notes_say_what_they_leave_out():
    """README's rows leave out the flags every run had and the shell comments; the note under
    the table says both, each comment once, numbered where its rows point."""
    from pathlib import Path

    from reporting.results import README_NOTE, readme_table
    cited = {
        "task1_lenet": {"label": "LeNet", "files": ["none/*.json"],
                        "command": "python task1_lenet.py --seed S --data-dir DATA --no-progress"
                                   "  # one run per seed"},
        "task2_model21": {"label": "Model 2.1", "files": ["none/*.json"],
                          "command": "python task2_models.py --model 2.1 --data-dir /x/y  "
                                     "# one run per seed"},
        "task2_model22": {"label": "Model 2.2", "files": ["none/*.json"],
                          "command": "python task2_models.py --model 2.2  # seed 2 apart"},
    }
    table = readme_table(Path("/nonexistent"), cited)
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert "`python task1_lenet.py --seed S` (1) |" in rows[1]
    assert "`python task2_models.py --model 2.1` (1) |" in rows[2]
    assert "`python task2_models.py --model 2.2` (2) |" in rows[3]
    assert all("--data-dir" not in r and "--no-progress" not in r and "#" not in r for r in rows)
    assert table.rstrip().endswith(f"{README_NOTE} (1) One run per seed. (2) Seed 2 apart.")
