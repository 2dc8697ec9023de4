"""This project's 10-epoch recipes for Task 2: the report's recipes stay as they were; the
augmentation crops and flips each training image on its own and nothing else; the one-cycle
rate; a run with both resumes step-exactly; the commands that train them."""
import itertools
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT, run_script, write_image_tree
from torch import nn

from dataloaders import load_cifar10
from task2_models import Model21, Model22, get_args_parser
from training.batches import TensorBatches, crop_flip
from training.jobs import make_optimizer, make_schedule
from training.recipes import RECIPES, TASK2, TASK2_10EP


def test_the_reports_recipes_are_unchanged():
    """The reproduction: layers, optimizer, rate, batch, initialisation, epochs as the report."""
    expected = {"model21": ("SGD", 0.05, 64, 40, 0.0, False, 0.0, None, False),
                "model22": ("Adam", 1e-3, 32, 50, 0.0, False, 0.0, None, False)}
    for key, values in expected.items():
        r = RECIPES[key]
        assert (r.optimizer, r.lr, r.batch_size, r.epochs, r.momentum, r.nesterov,
                r.weight_decay, r.schedule, r.augment) == values, key
        assert r.family == "report" and r in TASK2
    assert RECIPES["model22"].dropout == 0.5 and RECIPES["model21"].dropout is None
    m21, m22 = Model21(), Model22()
    assert [type(m).__name__ for m in m21.features] == [
        "Conv2d", "ReLU", "BatchNorm2d", "Conv2d", "ReLU", "BatchNorm2d", "MaxPool2d",
        "Conv2d", "ReLU", "BatchNorm2d", "Conv2d", "ReLU", "BatchNorm2d", "MaxPool2d"]
    assert [c.out_channels for c in m21.modules() if isinstance(c, nn.Conv2d)] == \
        [32, 64, 128, 256]
    assert [c.out_channels for c in m22.modules() if isinstance(c, nn.Conv2d)] == \
        [32, 32, 64, 64, 128, 128]
    assert [d.p for d in m22.modules() if isinstance(d, nn.Dropout2d)] == [0.5] * 3
    # Xavier on the convolutions: zero biases (PyTorch's default would not give them).
    assert all(torch.count_nonzero(c.bias) == 0 for c in m21.modules()
               if isinstance(c, nn.Conv2d))


def test_the_10_epoch_recipes_train_the_same_architectures_for_10_epochs():
    assert [r.choice for r in TASK2_10EP] == ["2.1", "2.2"]
    for recipe in TASK2_10EP:
        assert recipe.epochs == 10 and recipe.augment and recipe.schedule == "one-cycle"
        assert recipe.run_name not in {r.run_name for r in TASK2}
        assert "report" not in recipe.label.lower() and recipe.original == {}
        assert recipe.changes and all(len(line) > 40 for line in recipe.changes)


def test_crop_flip_keeps_shapes_and_each_image_is_a_shifted_or_mirrored_window():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(1, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = crop_flip(images, g)
    assert out.shape == images.shape and out.dtype == images.dtype
    padded = nn.functional.pad(images, (4, 4, 4, 4))
    flips = shifts = 0
    for i in range(len(images)):
        windows = {(dy, dx, flip) for dy in range(9) for dx in range(9) for flip in (0, 1)
                   if torch.equal(out[i], padded[i, :, dy:dy + 32, dx:dx + 32].flip(-1) if flip
                                  else padded[i, :, dy:dy + 32, dx:dx + 32])}
        assert windows, i  # a 32x32 window of the padded image, mirrored or not
        dy, dx, flip = min(windows)
        flips += flip
        shifts += (dy, dx) != (4, 4)
    assert 16 < flips < 48 and shifts > 40  # each image draws its own


def test_a_flip_really_mirrors():
    images = torch.arange(32, dtype=torch.uint8).view(1, 1, 1, 32).expand(200, 3, 32, 32)
    out = crop_flip(images.contiguous(), torch.Generator().manual_seed(1), padding=0)
    mirrored = [torch.equal(o, images[0].flip(-1)) for o in out]
    kept = [torch.equal(o, images[0]) for o in out]
    assert all(m or k for m, k in zip(mirrored, kept)) and any(mirrored) and any(kept)


def batches(augment, seed=0, n=96):
    g = torch.Generator().manual_seed(7)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % 10
    return TensorBatches(images, labels, 16, lambda x: x.float(), shuffle=True,
                         drop_last=True, seed=seed, augment=augment)


def test_without_augment_the_batches_are_the_images_and_with_it_the_same_seed_gives_the_same():
    plain, aug, again = batches(False), batches(True), batches(True)
    for b, (x, y) in enumerate(plain):
        index = next(iter(plain.iter_indices_from(b)))
        assert torch.equal(x, plain.images[index].float()) and torch.equal(y, plain.labels[index])
    first = [x for x, _ in aug]
    assert all(torch.equal(a, b) for a, b in zip(first, [x for x, _ in again]))
    assert not all(torch.equal(a, b) for a, b in zip(first, [x for x, _ in plain]))
    other = batches(True, seed=1)
    assert not torch.equal(first[0], next(iter(other))[0])
    # batch 3 of an epoch is the same whether the epoch starts there (a resume) or not
    assert torch.equal(next(aug.iter_from(3))[0], first[3])
    aug.set_epoch(1)
    assert not torch.equal(next(aug.iter_from(0))[0], first[0])  # another epoch, other crops


def test_augmentation_draws_nothing_from_the_global_generator():
    aug = batches(True)
    torch.manual_seed(3)
    state = torch.get_rng_state()
    list(aug)
    assert torch.equal(torch.get_rng_state(), state)


def test_validation_test_and_the_training_measurements_are_never_augmented(tmp_path):
    tree = write_image_tree(tmp_path / "tree", n_train_per_class=10)
    data = load_cifar10(str(tree), 8, augment=True, progress=False)
    assert data.train.augment
    for split in (data.val, data.test, data.train_eval, data.train_full):
        assert not split.augment
        first = next(iter(split))[0]
        assert torch.equal(first, split.transform(split.images[:len(first)]))


def test_one_cycle_rate_at_the_first_step_the_peak_and_the_last():
    model = nn.Linear(2, 2)
    optimizer = make_optimizer("SGD", model, 0.05)
    steps = 100
    schedule = make_schedule("one-cycle", optimizer, steps)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert rates[0] == pytest.approx(0.005)                    # a tenth of the peak
    assert max(rates) == pytest.approx(0.05) and rates.index(max(rates)) == 19  # 20 % in
    assert rates[-1] == pytest.approx(0.05 / 1e4, abs=1e-7)  # a ten-thousandth at the last
    assert all(a <= b for a, b in itertools.pairwise(rates[:20]))
    assert all(a >= b for a, b in itertools.pairwise(rates[19:]))
    assert make_schedule(None, optimizer, steps) is None


def test_help_names_both_pairs_of_recipes():
    text = get_args_parser().format_help()
    for recipe in TASK2 + TASK2_10EP:
        assert recipe.label in text
    assert "--recipe" in text and "10-epoch" in text and "Nesterov" not in text.split(
        "--recipe 10-epoch")[0]


def test_killed_mid_epoch_and_resumed_is_the_uninterrupted_run(tmp_path):
    """A real SIGINT in the middle of an epoch of a run with augmentation and the one-cycle
    schedule; the resume continues the same crops, flips and rates."""
    tree = write_image_tree(tmp_path / "tree", n_train_per_class=30)
    flags = ["task2_models.py", "--recipe", "10-epoch", "--model", "2.2", "--epochs", "3",
             "--batch-size", "8", "--data-dir", str(tree), "--no-progress"]
    whole = run_script(*flags, "--output-dir", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "cut"
    env = dict(os.environ, PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    process = subprocess.Popen([sys.executable, *flags, "--output-dir", str(out)], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    run = out / "task2_model22_10ep.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if len(json.loads(run.read_text())["history"]) >= 3:
                break  # past the middle of epoch 2
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    stopped = json.loads(run.read_text())
    assert stopped["status"] == "interrupted"
    changed = run_script(*flags[:-1], "--epochs", "4", "--resume", "--output-dir", str(out))
    assert changed.returncode == 2 and "schedule spans the 3 epochs" in changed.stderr, \
        changed.stderr
    resumed = run_script(*flags, "--resume", "--output-dir", str(out))
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "whole" / "task2_model22_10ep.json").read_text())
    b = json.loads(run.read_text())
    assert [h["step"] for h in b["history"]] == [h["step"] for h in a["history"]]
    for x, y in zip(a["history"], b["history"]):
        assert (y["train_loss"], y["val_loss"]) == (x["train_loss"], x["val_loss"])
    assert b["final"]["test"] == a["final"]["test"]
    assert b["config"]["augment"] and b["config"]["schedule"] == "one-cycle"


def test_a_seed_of_seeds_n_is_that_seed_run_alone(tmp_path):
    """A run depends on its seed alone: seed 1 of `--seeds 2` (after seed 0 in the same
    process) and `--seed 1` by itself give the same history and test numbers (Model 2.2's
    10-epoch recipe: dropout and augmentation draw random numbers)."""
    tree = write_image_tree(tmp_path / "tree")
    common = ["--recipe", "10-epoch", "--model", "2.2", "--epochs", "1", "--data-dir", str(tree),
              "--no-progress", "--device", "cpu"]
    env = {"OMP_NUM_THREADS": "1", "CIFAR10_CACHE_DIR": str(tmp_path / "cache")}
    both = run_script("task2_models.py", *common, "--seeds", "2", "--output-dir",
                      str(tmp_path / "both"), env=env)
    alone = run_script("task2_models.py", *common, "--seed", "1", "--output-dir",
                       str(tmp_path / "alone"), env=env)
    assert both.returncode == 0 and alone.returncode == 0, both.stderr + alone.stderr
    a = json.loads((tmp_path / "both" / "task2_model22_10ep_seed1.json").read_text())
    b = json.loads((tmp_path / "alone" / "task2_model22_10ep.json").read_text())
    def checks(run):  # the numbers of each check, not its wall-clock time
        return [{k: v for k, v in c.items() if k != "elapsed_s"} for c in run["history"]]
    assert checks(a) == checks(b) and len(a["history"]) >= 2
    assert a["final"]["test"] == b["final"]["test"]
