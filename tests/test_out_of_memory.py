"""Running out of memory, on a CPU by faking the errors the way PyTorch reports them (CUDA's
and MPS's): in a step, at a check, while capturing a graph; each a one-line error that says
what is saved and which flag to lower; and evaluation in the batches --eval-batch-size gives.
"""
import json
import re

import pytest
import torch
from conftest import write_pickle_batches
from test_devices import image_batches, small_net

import task1_lenet
from trainer import Settings, Trainer
from training import cli, errors, evaluation, steps
from training.batches import Splits
from training.errors import OutOfMemory
from training.steps import TrainStep

CUDA_OOM = "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 15 GiB"
MPS_OOM = ("MPS backend out of memory (MPS allocated: 5.56 GB, other allocations: 1.10 GB, "
           "max allowed: 6.80 GB). Tried to allocate 768.00 MB on private pool.")


def oom(kind: str) -> Exception:
    return torch.cuda.OutOfMemoryError(CUDA_OOM) if kind == "cuda" else RuntimeError(MPS_OOM)


def test_is_out_of_memory():
    assert errors.is_out_of_memory(oom("cuda")) and errors.is_out_of_memory(oom("mps"))
    assert errors.is_out_of_memory(RuntimeError("CUDA error: out of memory"))
    try:  # a capture that failed because an allocation inside it did
        try:
            raise oom("cuda")
        except RuntimeError:
            raise RuntimeError("CUDA error: operation failed due to a previous error during "
                               "capture")
    except RuntimeError as err:
        assert errors.is_out_of_memory(err)
    assert not errors.is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


def run_task1(tmp_path, capsys):
    """task1_lenet's command on tiny data (4 batches of 64 an epoch, a check every 2)."""
    data = write_pickle_batches(tmp_path / "data", n_train_per_class=30)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_:
        cli.run_cli(task1_lenet.main, task1_lenet.get_args_parser(),
                    ["--data-dir", str(data), "--output-dir", str(out), "--epochs", "3",
                     "--device", "cpu", "--no-progress"])
    lines = capsys.readouterr().err.strip().splitlines()
    return exit_.value.code, lines, out


@pytest.mark.parametrize("kind", ["cuda", "mps"])
def test_out_of_memory_in_a_step(tmp_path, capsys, monkeypatch, kind):
    real, calls = TrainStep.__call__, []

    def step(self, images, labels):
        calls.append(1)
        if len(calls) == 5:  # after the first two checks
            raise oom(kind)
        return real(self, images, labels)

    monkeypatch.setattr(TrainStep, "__call__", step)
    code, lines, out = run_task1(tmp_path, capsys)
    assert code == 1 and len(lines) == 1, lines
    assert "out of memory on cpu in a training step (batch size 64): lower --batch-size" in \
        lines[0]
    assert "epoch 1.00" in lines[0]  # the last finished check, saved
    run = json.loads((out / "task1_lenet.json").read_text())
    assert len(run["history"]) == 2 and (out / "task1_lenet.pt").is_file()


@pytest.mark.parametrize("kind", ["cuda", "mps"])
def test_out_of_memory_at_a_check(tmp_path, capsys, monkeypatch, kind):
    real, calls = evaluation.Evaluator.check, []

    def check(self):
        calls.append(1)
        if len(calls) == 2:
            raise oom(kind)
        return real(self)

    monkeypatch.setattr(evaluation.Evaluator, "check", check)
    code, lines, out = run_task1(tmp_path, capsys)
    assert code == 1 and len(lines) == 1, lines
    assert "while evaluating (batch size 500): lower --eval-batch-size" in lines[0]
    run = json.loads((out / "task1_lenet.json").read_text())
    assert len(run["history"]) == 1  # the first check, kept


def test_out_of_memory_while_capturing_a_graph(tmp_path):
    def failing_capture(fn, warmup=3):
        try:
            raise torch.cuda.OutOfMemoryError(CUDA_OOM)
        except RuntimeError:
            raise RuntimeError("CUDA error: operation failed due to a previous error during "
                               "capture")

    torch.manual_seed(0)
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    train = image_batches(64, 16, 1, shuffle=True)
    step = steps.make_step(model, optimizer, train, torch.device("cpu"), graphed=True)
    step.record = failing_capture
    trainer = Trainer(model, optimizer, step, Splits(train, image_batches(20, 20, 2)),
                      Settings(1, "cpu", progress=False), run_path=tmp_path / "run",
                      config={"model": "small"})
    with pytest.raises(OutOfMemory) as raised:
        trainer.train()
    assert re.search(r"captured as a CUDA graph\): lower --batch-size .* --cuda-graphs off; "
                     r"no check had finished", cli.explain(raised.value))


def test_a_run_evaluates_in_the_batches_eval_batch_size_gives(tmp_path, monkeypatch):
    """--eval-batch-size reaches the evaluation itself (every check and the end), not only
    the run's recorded flags."""
    seen = []
    real = evaluation.evaluate

    def spy(model, batches, *args, **kwargs):
        seen.append(max(len(labels) for _, labels in batches))
        return real(model, batches, *args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate", spy)
    data = write_pickle_batches(tmp_path / "data", n_train_per_class=30)
    out = tmp_path / "out"
    cli.run_cli(task1_lenet.main, task1_lenet.get_args_parser(),
                ["--data-dir", str(data), "--output-dir", str(out), "--epochs", "1",
                 "--eval-batch-size", "7", "--device", "cpu", "--no-progress"])
    assert seen and set(seen) == {7}  # the validation split alone has 30 images
    run = json.loads((out / "task1_lenet.json").read_text())
    assert run["config"]["data"]["eval_batch_size"] == 7


def test_eval_batch_size_flag(tmp_path):
    import task3_resnet
    for module, default in ((task1_lenet, 500), (task3_resnet, 200)):
        parser = module.get_args_parser()
        assert parser.parse_args([]).eval_batch_size == default
        assert parser.parse_args(["--eval-batch-size", "50"]).eval_batch_size == 50
