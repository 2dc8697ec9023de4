"""The training step, eager and graphed.

On a CPU the graphed step is driven by a recorder that returns the step itself instead of a
captured CUDA graph: everything around the capture (the warm-up's changes undone, the static
index, short batches, a new capture when the learning rate changes) is checked here. The
tests marked `cuda` run the real capture and skip without a CUDA GPU; run them on a machine
with one (`python -m pytest -q -m cuda`).
"""
import math

import pytest
import torch
from conftest import Stop, run_script, stop_after
from torch import nn

from trainer import Settings, Trainer
from training.batches import Splits, TensorBatches
from training.steps import GraphedStep, TrainStep, make_step

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def eager_recorder(fn, warmup=3):
    """Stands in for capture_cuda_graph on a CPU: runs fn as the warm-up and the capture
    would (changing the model), and 'replays' by calling it."""
    for _ in range(warmup + 1):
        fn()
    return fn


def small_net():
    """Convolution, BatchNorm (running statistics: buffers a step changes), dense head."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(32, 10))


def data(n=96, device="cpu"):
    g = torch.Generator().manual_seed(7)
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    transform = lambda x: (x.float() - 128) / 64
    return TensorBatches(images.to(device), labels.to(device), 16, transform, shuffle=True,
                         seed=3)


def make(optimizer, device="cpu"):
    torch.manual_seed(0)
    model = small_net().to(device).train()
    opt = (torch.optim.SGD(model.parameters(), lr=0.1) if optimizer == "SGD"
           else torch.optim.Adam(model.parameters(), lr=1e-2))
    return model, opt, TrainStep(model, opt, nn.CrossEntropyLoss(), torch.device(device))


def losses(step_fn, step, batches, n_epochs=2):
    """Per-step losses (read back from the running sum), over n_epochs of `batches`."""
    out, previous = [], 0.0
    for epoch in range(n_epochs):
        batches.set_epoch(epoch)
        for index in batches.iter_indices_from(0):
            step_fn(index)
            total = step.loss_sum.item()
            out.append(total - previous)
            previous = total
    return out


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_graphed_step_trains_exactly_as_the_eager_step(optimizer):
    batches = data(88)  # 5 full batches of 16 and a short one of 8, per epoch
    model_a, _opt_a, eager = make(optimizer)
    expected = losses(lambda index: eager(*batches.gather(index)), eager, batches)
    model_b, opt_b, step = make(optimizer)
    graphed = GraphedStep(step, batches.gather, 16, record=eager_recorder)
    got = losses(graphed, step, batches)
    assert len(got) == 12
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), rtol=1e-4, atol=1e-6), name
    assert int(step.count) == int(eager.count) == 12  # the warm-up's steps were undone
    if optimizer == "Adam":
        assert all(int(s["step"]) == 12 for s in opt_b.state.values())


def test_a_changed_learning_rate_is_captured_again():
    batches = data(32)
    _, opt, step = make("SGD")
    captures = []

    def counting_recorder(fn, warmup=3):
        captures.append(opt.param_groups[0]["lr"])
        return eager_recorder(fn, warmup)

    graphed = GraphedStep(step, batches.gather, 16, record=counting_recorder)
    index = next(batches.iter_indices_from(0))
    graphed(index)
    graphed(index)
    opt.param_groups[0]["lr"] = 0.01
    graphed(index)
    assert captures == [0.1, 0.01]


def test_nonfinite_step_is_remembered_on_the_device():
    batches = data(48)
    _, opt, step = make("SGD")
    graphed = GraphedStep(step, batches.gather, 16, record=eager_recorder)
    indices = list(batches.iter_indices_from(0))
    graphed(indices[0])
    opt.param_groups[0]["lr"] = 1e38  # diverges from the next step on
    graphed(indices[1])
    graphed(indices[2])
    assert int(step.first_bad) in (2, 3) and not math.isfinite(step.loss_sum.item())


def test_cuda_graphs_flag_needs_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    for script, *where in (("task1_lenet.py", "--output-dir", str(tmp_path)),
                           ("benchmark.py", "--json", str(tmp_path / "bench.json"))):
        result = run_script(script, "--cuda-graphs", "on", "--device", "cpu", *where)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "--cuda-graphs on needs a CUDA GPU" in lines[0], script


def test_cuda_graphs_flag_on_every_training_script():
    import benchmark
    import task1_lenet
    import task2_models
    import task3_resnet
    for module in (task1_lenet, task2_models, task3_resnet, benchmark):
        parser = module.get_args_parser()
        assert parser.parse_args([]).cuda_graphs == "auto"
        assert parser.parse_args(["--cuda-graphs", "off"]).cuda_graphs == "off"


def test_a_graphed_step_refuses_batches_without_indices(tmp_path):
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="gather"):
        make_step(model, torch.optim.SGD(model.parameters(), lr=0.1), [(torch.zeros(1, 2),
                  torch.zeros(1, dtype=torch.long))], "cpu", graphed=True)


# ----------------------------------------------------------------------------- on a GPU
@cuda
@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_cuda_graph_matches_eager_for_20_steps(optimizer):
    """20 graphed steps against 20 eager steps from the same weights and batches, fp32:
    losses within 1e-3 relative (cuDNN's kernels are not bit-reproducible run to run)."""
    batches = data(20 * 16, device="cuda")
    _, _, eager = make(optimizer, "cuda")
    expected = losses(lambda index: eager(*batches.gather(index)), eager, batches, n_epochs=1)
    _, _, step = make(optimizer, "cuda")
    got = losses(GraphedStep(step, batches.gather, 16), step, batches, n_epochs=1)
    assert len(got) == 20
    assert got == pytest.approx(expected, rel=1e-3, abs=1e-4)


def _trainer(tmp_path, *, flip_val=False, epochs=3, patience=0, on_check=None, init_seed=0):
    from test_trainer import blobs
    torch.manual_seed(init_seed)
    model = nn.Sequential(nn.Linear(2, 16), nn.BatchNorm1d(16), nn.ReLU(),
                          nn.Linear(16, 2)).cuda()
    x, y = blobs(256, 1)
    vx, vy = blobs(64, 2, flip=flip_val)

    def on_gpu(a, b, bs, shuffle=False):
        return TensorBatches(a.cuda(), b.cuda(), bs, lambda t: t, shuffle=shuffle,
                             drop_last=shuffle, seed=0)

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    train = on_gpu(x, y, 16, shuffle=True)
    return Trainer(model, optimizer, make_step(model, optimizer, train, "cuda", graphed=True),
                   Splits(train, on_gpu(vx, vy, 32), test=on_gpu(vx, vy, 32)),
                   Settings(epochs, "cuda", patience=patience, progress=False),
                   run_path=tmp_path / "run", config={"model": "mlp"}, on_check=on_check)


@cuda
def test_cuda_graph_resume_continues_the_history(tmp_path):
    full = _trainer(tmp_path / "a").train()
    with pytest.raises(Stop):
        _trainer(tmp_path / "b", on_check=stop_after(3)).train()
    run = _trainer(tmp_path / "b", init_seed=99).train(resume=True)
    assert [h["step"] for h in run["history"]] == [h["step"] for h in full["history"]]
    for a, b in zip(run["history"], full["history"]):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-3)
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-3)


@cuda
def test_cuda_graph_best_weights_are_the_best_checks(tmp_path):
    seen = []

    def remember(_run):
        seen.append({k: v.clone() for k, v in trainer.model.state_dict().items()})

    trainer = _trainer(tmp_path, flip_val=True, epochs=50, patience=4, on_check=remember)
    run = trainer.train()
    assert run["status"] == "early_stopped" and run["best_check"] == 0
    for k, v in trainer.model.state_dict().items():  # copied into the captured tensors
        assert torch.equal(v, seen[0][k]), k
    best = run["history"][0]["val_loss"]
    assert run["final"]["val"]["loss"] == pytest.approx(best, rel=1e-4)


def test_an_eager_resume_of_a_graphed_runs_checkpoint(tmp_path):
    """A graphed CUDA run saves Adam with capturable=True; resumed eagerly (on a CPU, say),
    the optimizer must step without it."""
    from test_trainer import blobs

    def trainer(epochs):
        torch.manual_seed(0)
        model = nn.Linear(2, 2)
        x, y = blobs(64, 1)
        train = TensorBatches(x, y, 16, lambda t: t, shuffle=True, drop_last=True)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        return Trainer(model, optimizer, make_step(model, optimizer, train, "cpu"),
                       Splits(train, TensorBatches(x, y, 32, lambda t: t)),
                       Settings(epochs, "cpu", patience=0, progress=False),
                       run_path=tmp_path / "run", config={"model": "linear"})

    trainer(1).train()
    ckpt = torch.load(tmp_path / "run.pt", weights_only=True)
    for group in ckpt["optimizer"]["param_groups"]:
        group["capturable"] = True  # as a graphed run leaves it
    torch.save(ckpt, tmp_path / "run.pt")
    run = trainer(2).train(resume=True)
    assert run["status"] == "finished" and len(run["history"]) == 4
