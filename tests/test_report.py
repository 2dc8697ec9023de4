import json

import pytest

from conftest import run_script
from report import build_report
from plots import final_table, mean_std, plot_runs


def run(name, test_acc, *, seed=0, source=None, gpu=None):
    return {"config": {"model": name, "seed": seed, "device": "cpu", "precision": "bf16",
                       "command": f"python {name}.py", "stop_metric": "val_loss",
                       "environment": {"torch": "2.x", "threads": 2, **({"gpu": gpu} if gpu else {})},
                       "data": {"kind": "archive", "path": "x/cifar10-jpeg.tar.gz", "n_train": 45000},
                       **({"pretrained_source": source} if source else {})},
            "status": "finished", "best_check": 1,
            "history": [{"epoch": 0.5, "step": 5, "train_loss": 2.0, "val_loss": 1.9,
                         "val_accuracy": 0.3 + seed / 100, "train_accuracy": 0.3},
                        {"epoch": 1.0, "step": 10, "train_loss": 1.5, "val_loss": 1.4,
                         "val_accuracy": 0.5 + seed / 100, "train_accuracy": 0.5}],
            "final": {s: {"loss": 1.0, "accuracy": test_acc} for s in ("train", "val", "test")},
            "timings": {"train_s": 120}}


def write(out, name, data):
    (out / f"{name}.json").write_text(json.dumps(data))


def test_mean_std_from_known_values():
    assert mean_std([0.70, 0.72, 0.74]) == pytest.approx((0.72, 0.0163299), rel=1e-4)
    text, md = final_table({"LeNet": [run("a", 0.70), run("a", 0.72), run("a", 0.74)]})
    assert "0.720 ± 0.016" in md and "LeNet (3 seeds)" in md


def test_report_lists_missing_runs_with_commands(tmp_path):
    write(tmp_path, "task1_lenet", run("lenet", 0.7251))
    text, missing = build_report(tmp_path)
    assert missing == ["task2_model21", "task2_model22", "task3_resnet18"]
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
    plot_runs({"x": run("x", 0.5)}, "loss", tmp_path / "task2_loss.png")
    text, missing = build_report(tmp_path)
    assert missing == []
    assert "0.7200 ± 0.0163 (3 seeds)" in text
    assert "| Model 2.1 | 1.000 | 0.790 |" in text and "Model 2.1 (report) | 0.933 | 0.806 |" in text
    assert "Not reproduced yet" in text and "| 0.5" not in text.split("## Task 3")[1].split("## Corr")[0]
    assert "![Task 2.4: loss](task2_loss.png)" in text
    assert "| task2_model22_p0.1 | 0.7800 | finished | `python model22.py` |" in text


def test_report_command_writes_file(tmp_path):
    write(tmp_path, "task3_resnet18", run("resnet18", 0.88, source="imagenet", gpu="NVIDIA H100"))
    result = run_script("report.py", "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "REPORT.md").read_text()
    assert "| ResNet18 (Task 3) | 0.8800 |" in text and "NVIDIA H100" in text


def test_band_figure_from_seeds(tmp_path):
    path = plot_runs({"LeNet": [run("a", 0.7, seed=s) for s in range(3)]}, "accuracy",
                     tmp_path / "band.png")
    assert path.stat().st_size > 0
