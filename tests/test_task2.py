import json

import pytest
import torch
from conftest import run_script, typed, write_image_tree
from torch import nn

from reporting.results import final_table
from task2_models import Model21, Model22, xavier_init_
from training.architecture import parameter_table
from training.recipes import RECIPES


@pytest.mark.parametrize("cls, total", [(Model21, 1_438_666), (Model22, 419_818)])
def test_shapes_and_parameter_counts(cls, total):
    model = cls().eval()
    assert model(torch.zeros(3, 3, 32, 32)).shape == (3, 10)
    assert parameter_table(model)[1] == total
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) and c.stride == (1, 1) for c in convs)
    assert not any(isinstance(m, (nn.Softmax, nn.LogSoftmax)) for m in model.modules())


def test_layer_order_follows_the_report_tables():
    # Model 2.1: Conv, ReLU, BN (BN after ReLU, as the tables say)
    types = [type(m).__name__ for m in Model21().features]
    assert types[:3] == ["Conv2d", "ReLU", "BatchNorm2d"]
    # Model 2.2: second conv of every block has Dropout2d (p=0.5 default) before its BN
    m22 = Model22()
    drops = [m for m in m22.modules() if isinstance(m, nn.Dropout2d)]
    assert len(drops) == 3 and all(d.p == 0.5 for d in drops)
    assert len([m for m in Model22(dropout=0).modules() if isinstance(m, nn.Dropout2d)]) == 0
    assert isinstance(m22.classifier[3], nn.BatchNorm1d)


def test_kernel_size_flag_keeps_spatial_size():
    model = Model21(kernel_size=5).eval()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert all(c.kernel_size == (5, 5) for c in model.modules() if isinstance(c, nn.Conv2d))


def test_xavier_touches_convolution_weights_only():
    torch.manual_seed(0)
    reference = Model22(init="default")
    torch.manual_seed(0)
    model = Model22(init="default")
    torch.manual_seed(1)
    xavier_init_(model)
    for (name, p), (_, q) in zip(model.named_parameters(), reference.named_parameters()):
        module = model.get_submodule(name.rsplit(".", 1)[0])
        if isinstance(module, nn.Conv2d) and name.endswith("weight"):
            assert not torch.equal(p, q), name
            fan_in, fan_out = p.shape[1] * 9, p.shape[0] * 9
            bound = (6 / (fan_in + fan_out)) ** 0.5
            assert p.abs().max() <= bound and p.abs().max() > 0.8 * bound
        elif isinstance(module, nn.Conv2d):
            assert torch.count_nonzero(p) == 0, name  # zero biases
        else:
            assert torch.equal(p, q), name  # dense layers and BatchNorm untouched


def _run(label, test_acc):
    return {"config": {"model": label}, "status": "finished", "best_check": 1,
            "history": [{"epoch": 0.5, "step": 5, "train_loss": 2.0, "val_loss": 1.9,
                         "val_accuracy": 0.3, "train_accuracy": 0.31},
                        {"epoch": 1.0, "step": 10, "train_loss": 1.5, "val_loss": 1.4,
                         "val_accuracy": 0.5, "train_accuracy": 0.52}],
            "final": {"train": {"loss": 0.25, "accuracy": 0.9}, "val": {"loss": 0.75, "accuracy": 0.8},
                      "test": {"loss": 0.8, "accuracy": test_acc}, "best_epoch": 1.0},
            "timings": {"train_s": 61}}


def test_table_from_known_history():
    text, md = final_table({"Model 2.1": typed(_run("m21", 0.7891))}, {"Model 2.1": RECIPES["model21"].original})
    lines = text.splitlines()
    assert lines[0].split() == ["model", "test", "loss", "test", "acc", "val", "loss", "val",
                                "acc", "train", "loss", "train", "acc"]
    assert lines[1].split() == ["Model", "2.1", "0.800", "0.789", "0.750", "0.800", "0.250", "0.900"]
    assert lines[2].split()[-6:] == ["0.933", "0.806", "0.852", "0.823", "0.003", "0.909"]
    assert "| Model 2.1 | 0.800 | 0.789 |" in md


def test_figures_and_table_redrawn_from_json_alone(tmp_path):
    for name, acc in (("task2_model21", 0.79), ("task2_model22", 0.77)):
        (tmp_path / f"{name}.json").write_text(json.dumps(_run(name, acc)))
    result = run_script("task2_models.py", "--plot-only", "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for name in ("task2_accuracy.png", "task2_loss.png", "task2_table.md"):
        assert (tmp_path / name).stat().st_size > 0
    table = (tmp_path / "task2_table.md").read_text()
    assert "| Model 2.2 | 0.800 | 0.770 |" in table and "Model 2.2 (report)" in table


def test_plot_only_without_runs_says_what_to_do(tmp_path):
    result = run_script("task2_models.py", "--plot-only", "--output-dir", str(tmp_path))
    assert result.returncode == 1
    assert "python task2_models.py" in result.stderr and "Traceback" not in result.stderr


def test_task2_end_to_end(tmp_path):
    tree = write_image_tree(tmp_path / "tree", n_train_per_class=10)
    out = tmp_path / "out"
    result = run_script("task2_models.py", "--data-dir", str(tree), "--epochs", "1",
                        "--output-dir", str(out), "--no-progress", "--dropout", "0.1")
    assert result.returncode == 0, result.stderr
    assert "1,438,666" in result.stdout and "419,818" in result.stdout
    for name in ("task2_accuracy.png", "task2_loss.png", "task2_table.md", "task2_model21.json",
                 "task2_model22.json", "task2_architecture.md", "task2c_accuracy.png",
                 "task2d_loss.png", "task2c_accuracy.pdf", "task2d_loss.pdf"):
        assert (out / name).stat().st_size > 0, name
    architecture = (out / "task2_architecture.md").read_text()
    assert "| 2 | Dropout2D | p = 0.1 |" in architecture and "**1,438,666**" in architecture
    assert "| learning rate | 0.001 |" in architecture
    m21 = json.loads((out / "task2_model21.json").read_text())
    m22 = json.loads((out / "task2_model22.json").read_text())
    assert (m21["config"]["optimizer"], m21["config"]["lr"], m21["config"]["batch_size"]) == ("SGD", 0.05, 64)
    assert (m22["config"]["optimizer"], m22["config"]["lr"], m22["config"]["batch_size"]) == ("Adam", 1e-3, 32)
    assert m22["config"]["args"]["dropout"] == 0.1
    table = (out / "task2_table.md").read_text()
    assert "Model 2.1 (report)" in table and "Model 2.2 (report)" in table


def _model22_history(out, tree, every_s, *extra):
    """Model 2.2 (Dropout2d: random masks from the CPU generator) on tiny data, with Task 2's
    own figure-and-table callback following checks at most every `every_s` seconds."""
    import task2_models
    from trainer import run_jobs

    args = task2_models.get_args_parser().parse_args(
        ["--model", "2.2", "--epochs", "3", "--batch-size", "16", "--data-dir", str(tree),
         "--output-dir", str(out), "--no-progress", *extra])
    args.command = "python task2_models.py"
    calls = []

    def outputs(run):
        calls.append(len(run["history"]))
        task2_models.write_outputs(out)  # rebuilds both models for the 2a tables

    run_jobs(args, task2_models.jobs(args), on_check=outputs, callback_every_s=every_s)
    return json.loads((out / "task2_model22.json").read_text()), calls


def test_model22s_history_does_not_depend_on_how_often_the_figures_are_drawn(tmp_path):
    tree = write_image_tree(tmp_path / "tree", n_train_per_class=20)
    every, every_calls = _model22_history(tmp_path / "every", tree, 0)
    never, never_calls = _model22_history(tmp_path / "never", tree, float("inf"))
    assert len(every_calls) > len(never_calls) + 2  # the callback did fire at other checks
    assert [h["val_loss"] for h in every["history"]] == [h["val_loss"] for h in never["history"]]
    assert [h["train_loss"] for h in every["history"]] == \
        [h["train_loss"] for h in never["history"]]
    assert every["final"] == never["final"]


def test_model22_stopped_after_an_epoch_and_resumed_equals_the_uninterrupted_run(tmp_path):
    """The resumed process draws its figures at its first check (the uninterrupted one does
    not), and an epoch's last step comes after its last check (11 batches, checks at 5 and
    10): the checkpoint must hold the last weights, not the best ones."""
    tree = write_image_tree(tmp_path / "tree", n_train_per_class=20)
    flags = ["--model", "2.2", "--batch-size", "16", "--data-dir", str(tree), "--no-progress"]
    whole = run_script("task2_models.py", *flags, "--epochs", "3",
                       "--output-dir", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    cut = tmp_path / "cut"
    first = run_script("task2_models.py", *flags, "--epochs", "1", "--output-dir", str(cut))
    assert first.returncode == 0, first.stderr
    resumed = run_script("task2_models.py", *flags, "--epochs", "3", "--resume",
                         "--output-dir", str(cut))
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "whole" / "task2_model22.json").read_text())
    b = json.loads((cut / "task2_model22.json").read_text())
    assert [h["step"] for h in b["history"]] == [h["step"] for h in a["history"]]
    for x, y in zip(a["history"], b["history"]):
        assert (y["train_loss"], y["val_loss"], y["test_accuracy"]) == \
            (x["train_loss"], x["val_loss"], x["test_accuracy"])
    assert b["final"]["test"] == a["final"]["test"]
