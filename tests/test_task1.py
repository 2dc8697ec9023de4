import json
import os
from pathlib import Path

import pytest
import torch
from conftest import SHARED_JPEG, run_script, write_image_tree

from task1_lenet import LeNet
from training.architecture import parameter_table


def test_lenet_shapes_and_parameters():
    model = LeNet()
    assert model(torch.zeros(5, 3, 32, 32)).shape == (5, 10)
    rows, total = parameter_table(model)
    per_layer = {r["layer"].split(".")[-1]: (r["weights"], r["total"]) for r in rows}
    assert per_layer == {"conv1": (2400, 2432), "conv2": (51200, 51264),
                         "conv3": (204800, 204928), "dense1": (131072, 131136),
                         "dense2": (640, 650)}
    assert total == 390_410
    # no softmax layer in front of the loss: the output is raw logits
    assert not any(isinstance(m, (torch.nn.Softmax, torch.nn.LogSoftmax)) for m in model.modules())


def test_task1_end_to_end(tmp_path):
    tree = write_image_tree(tmp_path / "tree", n_train_per_class=20)
    out = tmp_path / "out"
    result = run_script("task1_lenet.py", "--data-dir", str(tree), "--epochs", "2",
                        "--batch-size", "16", "--output-dir", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "390,410" in result.stdout and "conv1" in result.stdout
    for name in ("task1_loss.png", "task1_accuracy.png", "task1_lenet.json",
                 "task1_lenet.pt", "task1_parameters.md", "task1_architecture.md",
                 "task1_loss.pdf", "task1_accuracy.pdf"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "task1_loss.pdf").read_bytes()[:5] == b"%PDF-"  # vector, for LaTeX
    run = json.loads((out / "task1_lenet.json").read_text())
    assert run["status"] in ("finished", "early_stopped")
    assert len(run["history"]) >= 2
    assert run["config"]["args"]["lr"] == 0.05 and run["config"]["args"]["batch_size"] == 16
    assert run["config"]["data"]["n_train"] == 180
    for split in ("train", "val", "test"):
        assert 0 <= run["final"][split]["accuracy"] <= 1


# A real copy of CIFAR-10 (any source --data-dir accepts): $CIFAR10_JPEG, else the JPEG copy
# where the development machines keep it. The one test here that needs real images.
REAL_DATA = Path(os.environ.get("CIFAR10_JPEG") or SHARED_JPEG)


@pytest.mark.skipif(not REAL_DATA.exists(),
                    reason="no real CIFAR-10 copy: set CIFAR10_JPEG=PATH to run this test")
def test_lenet_learns_on_real_subset(tmp_path):
    out = tmp_path / "out"
    result = run_script("task1_lenet.py", "--data-dir", str(REAL_DATA), "--subset", "6000",
                        "--epochs", "3", "--output-dir", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    run = json.loads((out / "task1_lenet.json").read_text())
    assert run["final"]["test"]["accuracy"] > 0.30  # chance is 0.10


def test_task1_seeds_give_one_run_per_seed_and_a_band(tmp_path):
    tree = write_image_tree(tmp_path / "tree", n_train_per_class=10)
    out = tmp_path / "out"
    result = run_script("task1_lenet.py", "--data-dir", str(tree), "--epochs", "1",
                        "--batch-size", "16", "--seeds", "2", "--seed", "5",
                        "--output-dir", str(out), "--no-progress")
    assert result.returncode == 0, result.stderr
    runs = [json.loads((out / f"task1_lenet_seed{s}.json").read_text()) for s in (5, 6)]
    assert [r["config"]["seed"] for r in runs] == [5, 6]
    assert runs[0]["history"] != runs[1]["history"]
    assert not (out / "task1_lenet.json").exists()
    assert (out / "task1_loss.png").stat().st_size > 0
