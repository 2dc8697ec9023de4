"""What each device gets, tested on a CPU by faking what the device would answer.

Nothing here has run on a T4, a V100 or a Mac: the CUDA capabilities and MPS availability are
faked the way PyTorch reports them (out-of-memory errors: test_out_of_memory.py). The tests
marked `cuda` run on a GPU and skip without one.
"""
import argparse
import json
import signal
import warnings

import pytest
import torch
from torch import nn

import task1_lenet
import utils
from trainer import Settings, Trainer
from training import cli, errors, evaluation, steps
from training.batches import Splits, TensorBatches
from training.steps import GraphedStep, TrainStep

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

CARDS = {"T4": (7, 5), "V100": (7, 0), "A100": (8, 0), "H100": (9, 0)}


def fake_cuda(monkeypatch, capability):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)  # resolve_hardware sets it


def fake_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)


def fake_cpu_bf16(monkeypatch, fast: bool):
    """A CPU with native bf16 (AVX512_BF16) or without, as PyTorch's CPU probe answers;
    oneDNN says yes either way (it emulates bf16 on any AVX-512 CPU)."""
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: fast, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)


def hardware(**flags):
    args = argparse.Namespace(**{"device": "auto", "precision": "auto", "channels_last": "auto",
                                 "cuda_graphs": "auto", **flags})
    return utils.resolve_hardware(args)


# ----------------------------------------------------------------------------- precision
@pytest.mark.parametrize("card, auto", [("T4", None), ("V100", None),
                                        ("A100", torch.bfloat16), ("H100", torch.bfloat16)])
def test_auto_precision_by_cuda_capability(monkeypatch, card, auto):
    fake_cuda(monkeypatch, CARDS[card])
    hw = hardware()
    assert hw.device.type == "cuda" and hw.autocast_dtype == auto
    assert hw.precision == ("bf16" if auto else "fp32")
    assert hw.cuda_graphs is False  # not yet verified on a GPU
    assert hardware(precision="fp16").autocast_dtype == torch.float16  # every card runs fp16
    assert hardware(precision="fp32").autocast_dtype is None


@pytest.mark.parametrize("card", ["T4", "V100"])
def test_bf16_on_a_pre_ampere_card_is_a_usage_error(monkeypatch, card):
    # torch.cuda.is_bf16_supported() says True on these cards (emulation): not asked.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    fake_cuda(monkeypatch, CARDS[card])
    with pytest.raises(errors.UserError, match="capability 8.0") as err:
        hardware(precision="bf16")
    assert err.value.exit_code == 2


def test_mps_runs_fp32_only(monkeypatch):
    fake_mps(monkeypatch)
    hw = hardware()
    assert hw.device.type == "mps" and hw.autocast_dtype is None and hw.precision == "fp32"
    for precision in ("bf16", "fp16"):
        with pytest.raises(errors.UserError, match="MPS") as err:
            hardware(precision=precision)
        assert err.value.exit_code == 2


@pytest.mark.parametrize("fast, auto", [(True, torch.bfloat16), (False, None)])
def test_cpu_precision(monkeypatch, fast, auto):
    fake_cpu_bf16(monkeypatch, fast)
    assert hardware(device="cpu").autocast_dtype == auto
    assert hardware(device="cpu", precision="fp16").autocast_dtype == torch.float16
    assert hardware(device="cpu", precision="bf16").autocast_dtype == torch.bfloat16


@pytest.mark.parametrize("flags, auto", [("fpu avx512f avx512bw", None),  # Cascade Lake
                                         ("fpu avx512f avx512_bf16", torch.bfloat16),
                                         ("fpu avx512f amx_tile amx_bf16", torch.bfloat16),
                                         ("fpu sse4_2 avx2", None)])
def test_without_pytorchs_probe_the_oss_cpu_flags_decide(monkeypatch, flags, auto):
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, name, raising=False)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    monkeypatch.setattr(utils, "cpu_flags", lambda: set(flags.split()))
    assert hardware(device="cpu").autocast_dtype == auto


def test_cpu_flags_are_read_from_the_os():
    flags = utils.cpu_flags()
    assert isinstance(flags, set) and all(" " not in f for f in flags)


def test_every_row_of_the_precision_table_is_reachable(monkeypatch):
    kinds = set()
    for capability in CARDS.values():
        fake_cuda(monkeypatch, capability)
        kinds.add(utils.device_kind(torch.device("cuda")))
    fake_mps(monkeypatch)
    kinds.add(utils.device_kind(torch.device("mps")))
    for fast in (True, False):
        fake_cpu_bf16(monkeypatch, fast)
        kinds.add(utils.device_kind(torch.device("cpu")))
    assert kinds == set(utils.PRECISION_RULES)
    for rule in utils.PRECISION_RULES.values():
        assert rule.auto in rule.allowed


def test_graphs_with_fp16_are_refused(monkeypatch):
    fake_cuda(monkeypatch, CARDS["H100"])
    with pytest.raises(errors.UserError, match="fp16") as err:
        hardware(precision="fp16", cuda_graphs="on")
    assert err.value.exit_code == 2
    assert hardware(precision="bf16", cuda_graphs="on").cuda_graphs is True


def test_a_usage_error_of_precision_is_one_line_exit_2(monkeypatch, capsys, tmp_path):
    fake_cuda(monkeypatch, CARDS["T4"])
    with pytest.raises(SystemExit) as exit_:
        cli.run_cli(task1_lenet.main, task1_lenet.get_args_parser(),
                    ["--precision", "bf16", "--output-dir", str(tmp_path)])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--precision bf16" in lines[0] and "7.5" in lines[0]


def test_no_autocast_context_for_fp32(tmp_path, monkeypatch):
    """torch < 2.5 raises for autocast on MPS even when disabled: an fp32 run opens none."""
    real = torch.autocast

    def strict(device_type, dtype=None, enabled=True, cache_enabled=None):
        if not enabled:
            raise RuntimeError(f"User specified an unsupported autocast device_type "
                               f"'{device_type}'")
        return real(device_type, dtype=dtype, enabled=enabled, cache_enabled=cache_enabled)

    monkeypatch.setattr(torch, "autocast", strict)
    run = make_trainer(tmp_path, epochs=1).train()
    assert run["status"] == "finished" and run["final"]["test"]["accuracy"] >= 0


# ----------------------------------------------------------------------------- fp16
def small_net(dropout=0.5):
    """Model 2.2's recipe in small: convolution, Dropout2d, BatchNorm, a dense head."""
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(dropout),
                         nn.BatchNorm2d(8), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 10))


def normalise(x):
    return (x.float() - 128) / 64


def image_batches(n, batch_size, seed, shuffle=False, device="cpu", cls=None, **kwargs):
    """n 8x8 uint8 images of ten flat colours plus noise, as training (shuffle=True) or
    evaluation batches."""
    palette = torch.rand(10, 3, 1, 1, generator=torch.Generator().manual_seed(0)) * 200
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 10
    images = (palette[labels] + torch.randn(n, 3, 8, 8, generator=g) * 30).clamp(0, 255)
    return (cls or TensorBatches)(images.to(torch.uint8).to(device), labels.to(device),
                                  batch_size, normalise, shuffle=shuffle, drop_last=shuffle,
                                  seed=seed, **kwargs)


def make_trainer(tmp_path, *, epochs=2, dtype=None, on_check=None, init_seed=0, train=None,
                 scaler=None, lr=1e-2):
    torch.manual_seed(init_seed)
    model = small_net()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    train = train or image_batches(160, 16, 1, shuffle=True)
    trainer = Trainer(model, optimizer, steps.make_step(model, optimizer, train, "cpu", dtype),
                      Splits(train, image_batches(40, 20, 2), test=image_batches(40, 20, 3),
                             train_eval=image_batches(40, 20, 1)),
                      Settings(epochs, "cpu", dtype, patience=0, progress=False),
                      run_path=tmp_path / "run", config={"model": "small"}, on_check=on_check)
    if scaler is not None:  # a scaler with other settings (the same in every trainer)
        trainer.train_step.core.scaler = scaler()
    return trainer


def test_fp16_trains_with_a_loss_scaler(tmp_path):
    trainer = make_trainer(tmp_path, dtype=torch.float16, epochs=3)
    assert isinstance(trainer.train_step.scaler, torch.amp.GradScaler)
    run = trainer.train()
    assert run["status"] == "finished"
    assert run["final"]["test"]["accuracy"] > 0.5  # ten flat colours: learnt quickly
    skipped = run["loss_scaler"]["skipped_steps"]  # an overflow or two is normal
    assert skipped < 5 and run["loss_scaler"]["scale"] == 2.0 ** (16 - skipped)
    assert all("loss_scale" in h and "skipped_steps" in h for h in run["history"])
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["loss_scaler"] == run["loss_scaler"]
    # bf16 and fp32 need no scaler
    assert make_trainer(tmp_path / "b", dtype=torch.bfloat16).train_step.scaler is None
    assert make_trainer(tmp_path / "c").train_step.scaler is None


def test_an_overflowing_step_is_skipped_and_counted_not_diverged(tmp_path):
    """A loss scale of 2**127 overflows the gradients (inf even in fp32): those steps are
    skipped (weights unchanged), counted, the scale halved each time, and the run goes on."""
    trainer = make_trainer(tmp_path, dtype=torch.float16, epochs=1,
                           scaler=lambda: torch.amp.GradScaler("cpu", init_scale=2.0 ** 127))
    step, batches = trainer.train_step.core, trainer.train_batches
    before = {k: v.clone() for k, v in trainer.model.state_dict().items() if "weight" in k}
    images, labels = next(iter(batches))
    step(images, labels)
    assert int(step.skipped) == 1 and step.loss_scale == 2.0 ** 126
    assert all(torch.equal(v, trainer.model.state_dict()[k]) for k, v in before.items())
    assert int(step.first_bad) == -1  # the loss itself was finite: no divergence
    run = make_trainer(tmp_path / "run2", dtype=torch.float16, epochs=2,
                       scaler=lambda: torch.amp.GradScaler("cpu", init_scale=2.0 ** 127)).train()
    assert run["status"] == "finished"
    skipped = run["loss_scaler"]["skipped_steps"]
    assert skipped >= 1
    assert run["loss_scaler"]["scale"] == 2.0 ** (127 - skipped)  # one halving per skip
    assert run["history"][-1]["skipped_steps"] == skipped


def test_evaluation_under_fp16_sums_in_fp32():
    torch.manual_seed(0)
    model = small_net().eval()
    batches = image_batches(60, 20, 4)
    loss16, acc16 = evaluation.evaluate(model, batches, "cpu", torch.float16)
    loss32, acc32 = evaluation.evaluate(model, batches, "cpu", None)
    assert isinstance(loss16, float) and loss16 == pytest.approx(loss32, rel=2e-2)
    assert acc16 == pytest.approx(acc32, abs=0.05)


# ----------------------------------------------------------------------------- resume
class StopAt(TensorBatches):
    """Training batches that press Ctrl-C (a real SIGINT) during batch `at` of epoch
    `epoch`: the Trainer stops after that step, between two checks, and saves."""

    def __init__(self, *args, at, epoch, **kwargs):
        super().__init__(*args, **kwargs)
        self.at, self.stop_epoch = at, epoch

    def iter_from(self, start=0):
        for k, batch in enumerate(super().iter_from(start), start):
            if self.epoch == self.stop_epoch and k == self.at:
                signal.raise_signal(signal.SIGINT)
            yield batch


def test_a_resumed_fp16_run_keeps_the_steps_its_scaler_skipped(tmp_path):
    """A loss scale of 2**20 overflows here at first: the first steps are skipped, each
    halving the scale. Interrupted after those skips and resumed, the run still counts them
    (history and run file), as the run that went through does."""
    def scaler():
        return torch.amp.GradScaler("cpu", init_scale=2.0 ** 20, growth_interval=1000)

    full = make_trainer(tmp_path / "a", dtype=torch.float16, epochs=2, scaler=scaler).train()
    skipped = full["loss_scaler"]["skipped_steps"]
    assert skipped >= 1 and full["history"][-1]["skipped_steps"] == skipped
    # 10 batches an epoch: stopped after batch 2 of epoch 2, after the skips
    stopping = image_batches(160, 16, 1, shuffle=True, cls=StopAt, at=1, epoch=1)
    part = make_trainer(tmp_path / "b", dtype=torch.float16, epochs=2, scaler=scaler,
                        train=stopping)
    with pytest.raises(errors.TrainingInterrupted):
        part.train()
    assert part.step == 12 and part.train_step.summary()["loss_scaler"]["skipped_steps"] == skipped
    resumed = make_trainer(tmp_path / "b", dtype=torch.float16, epochs=2, scaler=scaler,
                           init_seed=99)
    run = resumed.train(resume=True)
    assert [h["skipped_steps"] for h in run["history"]] == \
        [h["skipped_steps"] for h in full["history"]]
    assert run["loss_scaler"] == full["loss_scaler"]


@pytest.mark.parametrize("dtype", [None, torch.float16], ids=["fp32", "fp16"])
def test_resume_between_checks_is_step_exact(tmp_path, dtype):
    """Adam, Dropout2d, BatchNorm (Model 2.2's recipe), stopped mid-interval and resumed:
    the same history, weights and loss scale as a run that went through. Fails when the
    resume skips Adam's state, the random generator, the loss sum since the last check or,
    in fp16, the scaler's state (its scale grows every 3 steps here, so the scale at the
    stop is not the initial one)."""
    scaler = (lambda: torch.amp.GradScaler("cpu", init_scale=2.0 ** 8, growth_interval=3)
              ) if dtype is not None else None
    full_trainer = make_trainer(tmp_path / "a", dtype=dtype, epochs=3, scaler=scaler)
    full = full_trainer.train()
    # 10 batches an epoch, checks after 5 and 10: stopped after batch 8 of epoch 2
    stopping = image_batches(160, 16, 1, shuffle=True, cls=StopAt, at=7, epoch=1)
    part = make_trainer(tmp_path / "b", dtype=dtype, epochs=3, scaler=scaler, train=stopping)
    with pytest.raises(errors.TrainingInterrupted):
        part.train()
    assert part.step == 18 and len(part.history) == 3  # stopped between checks 3 and 4
    resumed = make_trainer(tmp_path / "b", dtype=dtype, epochs=3, scaler=scaler, init_seed=99)
    run = resumed.train(resume=True)
    assert [h["step"] for h in run["history"]] == [h["step"] for h in full["history"]]
    for a, b in zip(run["history"], full["history"]):
        for key in ("train_loss", "val_loss", "val_accuracy", "loss_scale", "skipped_steps"):
            assert a.get(key) == b.get(key), (key, a["step"])
    for (name, a), b in zip(resumed.model.state_dict().items(),
                            full_trainer.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert run["loss_scaler"] == full["loss_scaler"]


# ----------------------------------------------------------------------------- the graphed step
def eager_recorder(fn, warmup=3):
    """Stands in for capture_cuda_graph on a CPU: runs fn as the warm-up and the capture do
    (the model, the optimizer and the random generator move on), then 'replays' by calling."""
    for _ in range(warmup + 1):
        fn()
    return fn


def model22_losses(device: str, graphed: bool, n_batches: int, batch_size: int,
                   record=None) -> list[float]:
    """Per-step losses of Model 2.2 (Dropout2d p=0.5, Adam) over one epoch of random
    images, eagerly or through GraphedStep (`record`: how it captures; None: a real graph)."""
    from task2_models import Model22
    torch.manual_seed(0)
    model = Model22().to(device).train()
    step = TrainStep(model, torch.optim.Adam(model.parameters(), lr=1e-3), nn.CrossEntropyLoss(),
                     torch.device(device))
    g = torch.Generator().manual_seed(5)
    n = n_batches * batch_size
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n,), generator=g)
    batches = TensorBatches(images.to(device), labels.to(device), batch_size, normalise,
                            shuffle=True, drop_last=True, seed=2)
    call = (GraphedStep(step, batches.gather, batch_size, **({"record": record} if record else {}))
            if graphed else lambda index: step(*batches.gather(index)))
    torch.manual_seed(1)  # the generator Dropout draws from, the same for both
    out, previous = [], 0.0
    for index in batches.iter_indices_from(0):
        call(index)
        out.append(step.loss_sum.item() - previous)
        previous = step.loss_sum.item()
    return out


def test_graphed_step_draws_the_eager_steps_dropout_masks():
    """Model 2.2 itself (Dropout2d p=0.5), Adam: step for step the eager losses. Without the
    random generator's restore after the warm-up, the masks differ from the first step on."""
    graphed = model22_losses("cpu", True, 4, 8, record=eager_recorder)
    assert graphed == pytest.approx(model22_losses("cpu", False, 4, 8), rel=1e-5)


def test_a_step_with_a_loss_scaler_is_not_graphed():
    model = small_net()
    step = TrainStep(model, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss(),
                     torch.device("cpu"), torch.float16)
    with pytest.raises(ValueError, match="loss scaler"):
        GraphedStep(step, lambda index: None, 8, record=eager_recorder)


class OnCuda(torch.Tensor):
    """A CPU tensor that says it is on a GPU (what a graphed run's optimizer state holds);
    anything computed from it is a plain CPU tensor."""
    __torch_function__ = torch._C._disabled_torch_function_impl

    @property
    def device(self):
        return torch.device("cuda", 0)


def test_an_eager_resume_puts_adams_step_counts_back_where_eager_adam_wants_them():
    """Loading a graphed run's checkpoint leaves Adam capturable with its step counts on the
    GPU; an eager run turns capturable off and moves them to the CPU."""
    from types import SimpleNamespace
    param = torch.zeros(2).as_subclass(OnCuda)
    # float64: a real copy even on this CPU (.to() of a tensor already right returns itself)
    state = {"step": torch.tensor(12.0, dtype=torch.float64).as_subclass(OnCuda)}
    optimizer = SimpleNamespace(param_groups=[{"params": [param], "capturable": True}],
                                state={param: state})
    steps.make_capturable(optimizer, False)
    assert optimizer.param_groups[0]["capturable"] is False
    assert type(state["step"]) is torch.Tensor and state["step"].device.type == "cpu"
    assert state["step"].dtype == torch.float32 and float(state["step"]) == 12.0


def test_checkpoint_keeps_the_rng_of_the_device_in_use(tmp_path, monkeypatch):
    """A CUDA run saves its current device's generator (not every visible GPU's) and loads
    it back; faked here on a CPU."""
    from training.storage import RunStore
    saved, loaded = [], []
    monkeypatch.setattr("training.storage.get_rng_state", lambda device: saved.append(device) or
                        torch.ByteTensor([1, 2, 3]))
    monkeypatch.setattr("training.storage.set_rng_state", lambda device, state: loaded.append(
        (device, state.tolist())))
    model = nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    store = RunStore(tmp_path / "run", {"model": "m", "args": {}}, torch.device("cuda"))
    store.save({"history": []}, model, optimizer, {})
    ckpt = torch.load(tmp_path / "run.pt", weights_only=True)
    assert ckpt["rng"]["device"]["type"] == "cuda" and "cuda" not in ckpt["rng"]
    store.load(model, optimizer)
    assert saved == [torch.device("cuda")] and loaded == [(torch.device("cuda"), [1, 2, 3])]
    cpu = RunStore(tmp_path / "cpu", {"model": "m", "args": {}}, torch.device("cpu"))
    cpu.save({"history": []}, model, optimizer, {})
    assert "device" not in torch.load(tmp_path / "cpu.pt", weights_only=True)["rng"]


# ----------------------------------------------------------------------------- on a GPU
@cuda
def test_fp16_on_cuda_trains_and_records_its_scaler(tmp_path):
    model = small_net().cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    train = image_batches(160, 16, 1, True, "cuda")
    run = Trainer(model, optimizer, steps.make_step(model, optimizer, train, "cuda", torch.float16),
                  Splits(train, image_batches(40, 20, 2, device="cuda"),
                         test=image_batches(40, 20, 3, device="cuda")),
                  Settings(3, "cuda", torch.float16, patience=0, progress=False),
                  run_path=tmp_path / "run", config={"model": "small"}).train()
    assert run["status"] == "finished" and run["final"]["test"]["accuracy"] > 0.5
    assert run["loss_scaler"]["scale"] > 0


@cuda
def test_cuda_graph_with_dropout_matches_eager_and_warns_nothing():
    """Model 2.2 (Dropout2d) graphed on a GPU: the eager losses within cuDNN's run-to-run
    noise, and no 'capturable=True but not captured' warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = model22_losses("cuda", True, 20, 32)
    assert got == pytest.approx(model22_losses("cuda", False, 20, 32), rel=1e-3, abs=1e-4)
