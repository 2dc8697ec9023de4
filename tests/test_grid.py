"""Task 2e's grid runs: what a run measures (the test split only at its last check and at the
best weights, nothing of the training split), that it gives the same 2e measures as a run
with every curve, and one CPU thread per run."""
import json

import pytest
import torch
from conftest import typed, write_image_tree

import task2_experiments as exp
from reporting import task2e
from training import evaluation


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_image_tree(tmp_path_factory.mktemp("grid-data") / "tree", n_train_per_class=16,
                            n_test_per_class=3)


def run_grid(tree, out, monkeypatch, *extra):
    """task2_experiments.py for lenet-dropout, seed 0, 3 epochs, in this process; returns the
    run and which split each evaluation read, in order."""
    read = []
    real = evaluation.Evaluator._evaluate

    def spy(self, batches, **kwargs):
        read.append(next(name for name in ("val", "test", "train_eval", "train_full")
                         if getattr(self, name) is batches))
        return real(self, batches, **kwargs)

    monkeypatch.setattr(evaluation.Evaluator, "_evaluate", spy)
    threads = torch.get_num_threads()
    args = exp.get_args_parser().parse_args([
        "--only", "lenet-dropout", "--seeds", "1", "--epochs", "3", "--data-dir", str(tree),
        "--output-dir", str(out), "--no-progress", "--device", "cpu", "--parallel", "1", *extra])
    args.command = "python task2_experiments.py"
    try:
        exp.main(args)
        run_threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads)
    run = json.loads((out / "experiments" / "lenet-dropout_seed0.json").read_text())
    return run, read, run_threads


def test_a_grid_run_reads_the_test_split_at_its_last_check_and_its_best_weights_only(
        tree, tmp_path, monkeypatch):
    run, read, threads = run_grid(tree, tmp_path / "grid", monkeypatch)
    checks = len(run["history"])
    assert checks == 6
    # every check reads validation; the last also the test split; the end: val and test
    assert read == ["val"] * checks + ["test"] + ["val", "test"], read
    assert ["test_accuracy" in h for h in run["history"]] == [False] * 5 + [True]
    assert not any("train_accuracy" in h for h in run["history"])
    assert set(run["final"]) >= {"val", "test"} and "train" not in run["final"]
    assert run["config"]["args"]["grid_checks"] is True
    assert threads == 1 and run["config"]["environment"]["threads"] == 1


def test_the_grid_gives_the_measures_of_a_run_with_every_curve(tree, tmp_path, monkeypatch):
    """The same seed with --full-curves: the same training, checks and chosen weights, so
    the same 2e measures (dropout draws from the CPU generator: any extra draw would show)."""
    grid, _, _ = run_grid(tree, tmp_path / "grid", monkeypatch)
    full, read, _ = run_grid(tree, tmp_path / "full", monkeypatch, "--full-curves")
    assert read.count("test") == len(full["history"]) + 1 and "train_full" in read
    assert all("test_accuracy" in h and "train_accuracy" in h for h in full["history"])
    assert [h["val_loss"] for h in grid["history"]] == [h["val_loss"] for h in full["history"]]
    assert grid["history"][-1]["test_accuracy"] == full["history"][-1]["test_accuracy"]
    assert grid["final"]["test"] == full["final"]["test"]
    timeless = [{k: v for k, v in task2e.measures(r).items() if k != "train_s"}
                for r in typed(grid, full)]
    assert timeless[0] == timeless[1] and len(timeless[0]) >= 5
