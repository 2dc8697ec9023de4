import json
import math

import pytest
import torch
from conftest import Stop, stop_after
from torch import nn

from trainer import Settings, Trainer
from training.batches import Splits, TensorBatches
from training.errors import TrainingDiverged
from training.evaluation import evaluate
from training.steps import make_step


def blobs(n, seed, flip=False):
    """Two separable Gaussian blobs in 2-D (labels flipped when flip=True)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    x = torch.randn(n, 2, generator=g) * 0.5 + (labels.float() * 2 - 1).unsqueeze(1) * 2
    return x, (1 - labels) if flip else labels


def batches(x, y, batch_size, shuffle=False, seed=0):
    return TensorBatches(x, y, batch_size, lambda t: t, shuffle=shuffle, drop_last=shuffle, seed=seed)


def make_trainer(tmp_path, *, flip_val=False, epochs=5, patience=4, lr=0.1, on_check=None,
                 seed=0, stop_metric="val_loss", init_seed=None, environment=None):
    torch.manual_seed(seed if init_seed is None else init_seed)
    model = nn.Linear(2, 2)
    x, y = blobs(256, 1)
    vx, vy = blobs(64, 2, flip=flip_val)
    tx, ty = blobs(64, 3)
    optimizer, train = torch.optim.SGD(model.parameters(), lr=lr), batches(x, y, 16, True, seed)
    return Trainer(model, optimizer, make_step(model, optimizer, train, "cpu"),
                   Splits(train, batches(vx, vy, 32), test=batches(tx, ty, 32),
                          train_eval=batches(x[:64], y[:64], 32), train_full=batches(x, y, 64)),
                   Settings(epochs, "cpu", patience=patience, stop_metric=stop_metric,
                            progress=False),
                   run_path=tmp_path / "run", on_check=on_check,
                   config={"model": "linear", **({"environment": environment} if environment
                                                 else {})})


def test_learns_a_known_problem(tmp_path):
    trainer = make_trainer(tmp_path, epochs=3)
    model = trainer.model
    before_loss, _before_acc = evaluate(model, trainer.val_batches, "cpu")
    run = trainer.train()
    assert run["status"] == "finished"
    assert run["final"]["test"]["accuracy"] > 0.95
    assert run["final"]["val"]["loss"] < before_loss
    assert len(run["history"]) == 6  # two checks an epoch, 16 batches each
    assert [h["step"] for h in run["history"]] == [8, 16, 24, 32, 40, 48]
    assert [h["epoch"] for h in run["history"]] == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]


def test_early_stopping_restores_the_best_not_the_last_weights(tmp_path):
    # Validation labels are the opposite of training labels: the more it learns, the
    # worse validation gets, so the first check is the best and training stops 4 checks on.
    seen = []

    def remember_weights(_run):  # called after each check's save, and once at the end
        seen.append({k: v.clone() for k, v in trainer.model.state_dict().items()})

    trainer = make_trainer(tmp_path, flip_val=True, epochs=50, patience=4,
                           on_check=remember_weights)
    run = trainer.train()
    assert run["status"] == "early_stopped"
    assert len(run["history"]) == 5
    assert run["best_check"] == 0
    vals = [h["val_loss"] for h in run["history"]]
    assert vals[0] == min(vals)
    # the model now holds the weights of check 0, not those of the last check
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, seen[0][k])
        assert not torch.equal(v, seen[4][k])
    assert math.isclose(run["final"]["val"]["loss"], vals[0], rel_tol=1e-5)
    assert run["final"]["best_epoch"] == 0.5


def test_patience_zero_never_stops(tmp_path):
    run = make_trainer(tmp_path, flip_val=True, epochs=4, patience=0).train()
    assert run["status"] == "finished" and len(run["history"]) == 8


def test_a_tie_is_not_a_new_best():
    from training.checks import EarlyStopping
    model = nn.Linear(2, 2)
    for metric, values in (("val_accuracy", [0.5, 0.5, 0.6]), ("val_loss", [0.7, 0.7, 0.6])):
        stopping = EarlyStopping(metric, patience=2)
        history = []
        judged = []
        for value in values:
            history.append({metric: value})
            judged.append(stopping.update(history, model))
        assert judged == [True, False, True], metric
        assert stopping.best_check == 2 and stopping.checks_since_best == 0


def test_stop_on_val_accuracy(tmp_path):
    run = make_trainer(tmp_path, epochs=2, stop_metric="val_accuracy").train()
    best = run["history"][run["best_check"]]
    assert best["val_accuracy"] == max(h["val_accuracy"] for h in run["history"])


def test_json_written_after_first_check(tmp_path):
    snapshots = []

    def on_check(_run):
        snapshots.append(json.loads((tmp_path / "run.json").read_text()))

    trainer = make_trainer(tmp_path, epochs=1, on_check=on_check)
    trainer.train()
    first = snapshots[0]
    assert first["config"] == {"model": "linear"}
    assert first["final"] is None and first["status"] == "running"
    entry = first["history"][0]
    for key in ("epoch", "step", "train_loss", "val_loss", "val_accuracy", "train_accuracy"):
        assert isinstance(entry[key], (int, float)), key
    final = json.loads((tmp_path / "run.json").read_text())["final"]
    for split in ("train", "val"):
        assert set(final[split]) == {"loss", "accuracy"}
    assert set(final["test"]) == {"loss", "accuracy", "per_class_accuracy", "confusion_matrix"}
    matrix = final["test"]["confusion_matrix"]
    assert len(matrix) == 2 and sum(map(sum, matrix)) == 64  # 2 classes, 64 test points
    assert final["test"]["accuracy"] == pytest.approx((matrix[0][0] + matrix[1][1]) / 64)


def test_evaluate_matches_plain_pytorch():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    x, y = blobs(100, 5)
    loss, acc = evaluate(model, batches(x, y, 33), "cpu")
    model.eval()
    with torch.no_grad():
        logits = model(x)
    assert math.isclose(loss, nn.functional.cross_entropy(logits, y).item(), rel_tol=1e-5)
    assert math.isclose(acc, (logits.argmax(1) == y).float().mean().item(), rel_tol=1e-6)
    model.train()
    evaluate(model, batches(x, y, 33), "cpu")
    assert model.training  # evaluate() restores the mode it found


def test_nonfinite_loss_stops_with_step_and_lr(tmp_path):
    trainer = make_trainer(tmp_path, epochs=3, lr=1e38)
    with pytest.raises(TrainingDiverged, match=r"step \d+ .*learning rate 1e\+38"):
        trainer.train()
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["status"] == "diverged"
    assert (tmp_path / "run.pt").is_file()


def test_resume_continues_exactly(tmp_path):
    """A run stopped after some checks and resumed gives the same history as one that ran
    through (CPU, deterministic)."""
    full = make_trainer(tmp_path / "a", epochs=3, patience=0).train()
    part = make_trainer(tmp_path / "b", epochs=3, patience=0, on_check=stop_after(3))
    with pytest.raises(Stop):
        part.train()
    resumed = make_trainer(tmp_path / "b", epochs=3, patience=0, init_seed=99)  # weights overwritten
    run = resumed.train(resume=True)
    assert [h["step"] for h in run["history"]] == [h["step"] for h in full["history"]]
    for a, b in zip(run["history"], full["history"]):  # the test curve goes on too
        for key in ("val_loss", "train_loss", "test_loss", "test_accuracy"):
            assert math.isclose(a[key], b[key], rel_tol=1e-6), key
    assert math.isclose(run["final"]["test"]["loss"], full["final"]["test"]["loss"], rel_tol=1e-6)


def test_run_names_with_dots_and_a_failing_callback(tmp_path):
    def broken(_run):
        raise RuntimeError("figure failed")

    trainer = make_trainer(tmp_path, epochs=1, on_check=broken)
    trainer.store.run_path = tmp_path / "task2_model22_p0.1"
    run = trainer.train()  # the callback's failure is reported, training goes on
    assert run["final"] is not None
    assert (tmp_path / "task2_model22_p0.1.json").is_file()
    assert (tmp_path / "task2_model22_p0.1.pt").is_file()


def test_confusion_matrix_and_per_class_accuracy_of_a_known_model(tmp_path):
    """Logits are the inputs themselves (nn.Identity), so every prediction is known:
    class 0 always right, class 1 twice right and once taken for 2, class 2 always taken
    for 0."""
    logits = torch.tensor([[5., 0, 0], [4, 1, 0], [0, 3, 1], [0, 2, 0], [0, 1, 2],
                           [2, 0, 1], [3, 1, 0]])
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 2])
    loss, acc, matrix = evaluate(nn.Identity(), batches(logits, labels, 3), "cpu", confusion=True)
    assert matrix == [[2, 0, 0], [0, 2, 1], [2, 0, 0]]
    assert acc == pytest.approx(4 / 7)
    assert loss == pytest.approx(nn.functional.cross_entropy(logits, labels).item(), rel=1e-6)
    model, optimizer = nn.Identity(), torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    train = batches(logits, labels, 3)
    trainer = Trainer(model, optimizer, make_step(model, optimizer, train, "cpu"),
                      Splits(train, batches(logits, labels, 3), test=batches(logits, labels, 3)),
                      Settings(0, "cpu", progress=False), run_path=tmp_path / "run")
    final = trainer.train()["final"]["test"]
    assert final["confusion_matrix"] == matrix
    assert final["per_class_accuracy"] == pytest.approx([1.0, 2 / 3, 0.0])


class FakeStep:
    """Not a torch step at all: the interface the Trainer calls (training.steps.Step), with losses
    it makes up (step k has loss 1/k) and weights it sets by hand. A Trainer that asked for
    anything else of its step (a kind, a scaler, counters of its own) fails here."""

    def __init__(self, model):
        self.model, self.done, self.loss_sum, self.count, self.loaded = model, 0, 0.0, 0, None
        self.kind = "fake"

    def batches_from(self, start):
        return iter(range(start, 10))  # ten "batches" an epoch, whatever the data

    def __call__(self, batch):
        self.done += 1
        self.loss_sum += 1.0 / self.done
        self.count += 1
        with torch.no_grad():
            self.model.weight.fill_(self.done)  # the weights say which step made them

    def peek(self):
        from training.steps import Interval
        return Interval(self.count, self.loss_sum, None, {"fake_field": self.done})

    def read(self):
        interval = self.peek()
        self.loss_sum, self.count = 0.0, 0
        return interval

    def summary(self):
        return {"fake_summary": self.done}

    def state_dict(self):
        return {"done": self.done, "loss_sum": self.loss_sum, "count": self.count}

    def load_state_dict(self, state):
        self.loaded = state
        self.done, self.loss_sum, self.count = state["done"], state["loss_sum"], state["count"]


def test_the_trainer_needs_nothing_of_its_step_but_the_interface(tmp_path):
    def make(run_dir, on_check=None):
        model = nn.Linear(2, 2)
        x, y = blobs(64, 2)
        step = FakeStep(model)
        return Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), step,
                       Splits(list(range(10)), batches(x, y, 32)),
                       Settings(2, "cpu", patience=0, progress=False), run_path=run_dir / "run",
                       config={"model": "fake"}, on_check=on_check), step

    trainer, step = make(tmp_path / "a")
    run = trainer.train()
    assert [h["step"] for h in run["history"]] == [5, 10, 15, 20]
    # each check's train loss is the mean of the made-up losses since the last check
    assert run["history"][0]["train_loss"] == pytest.approx(sum(1 / k for k in range(1, 6)) / 5)
    assert run["history"][3]["train_loss"] == pytest.approx(sum(1 / k for k in range(16, 21)) / 5)
    assert [h["fake_field"] for h in run["history"]] == [5, 10, 15, 20]
    assert run["fake_summary"] == 20 and step.done == 20

    part, _ = make(tmp_path / "b", on_check=stop_after(2))
    with pytest.raises(Stop):
        part.train()
    resumed, step = make(tmp_path / "b")
    rerun = resumed.train(resume=True)
    assert step.loaded == {"done": 10, "loss_sum": 0.0, "count": 0}  # its own state, back
    assert [h["train_loss"] for h in rerun["history"]] == \
        pytest.approx([h["train_loss"] for h in run["history"]])


def test_a_check_callback_draws_nothing_from_trainings_random_numbers(tmp_path):
    """Whatever a callback draws (a model built for a table, say) comes back: PyTorch's,
    NumPy's and Python's generators are as the checkpoint saved them."""
    import random

    import numpy as np

    def draw(_run):
        torch.randn(100)
        nn.Linear(10, 10)
        np.random.rand()
        random.random()

    trainer = make_trainer(tmp_path, epochs=1, on_check=draw)
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    before = (torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate())
    trainer.save()
    assert torch.equal(torch.get_rng_state(), before[0])
    assert (np.random.get_state()[1] == before[1]).all()
    assert random.getstate() == before[2]
    saved = torch.load(tmp_path / "run.pt", weights_only=False)["rng"]["torch"]
    assert torch.equal(saved, before[0])  # the state a resumed run goes on from


def test_a_resume_on_another_cpu_keeps_where_the_run_started_and_records_each_move(tmp_path):
    """bf16 runs of one seed follow other trajectories on another CPU or thread count: a run
    resumed elsewhere keeps the environment it started in and lists each move, once."""
    intel = {"cpu": "Intel(R) Xeon(R) Processor", "threads": 1, "torch": "2.14.1"}
    amd = {"cpu": "AMD EPYC", "threads": 1, "torch": "2.14.1"}
    first = make_trainer(tmp_path, epochs=3, patience=0, on_check=stop_after(2), environment=intel)
    with pytest.raises(Stop):
        first.train()
    moved = make_trainer(tmp_path, epochs=3, patience=0, on_check=stop_after(4), environment=amd)
    with pytest.raises(Stop):
        moved.train(resume=True)
    run = make_trainer(tmp_path, epochs=3, patience=0, environment=amd).train(resume=True)
    assert run["config"]["environment"] == intel
    assert run["config"]["resumed_on"] == [amd]  # the second resume on it adds nothing
    same = make_trainer(tmp_path / "same", epochs=2, patience=0, on_check=stop_after(1),
                        environment=intel)
    with pytest.raises(Stop):
        same.train()
    again = make_trainer(tmp_path / "same", epochs=2, patience=0, environment=intel)
    assert "resumed_on" not in again.train(resume=True)["config"]
