"""Tiny CIFAR-10-shaped data sets written by the tests themselves, in every accepted form.

Images of class k are a flat colour that depends on k, plus noise, so that a model can
learn them in a few steps (a check that training really learns).
"""
from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from training.batches import CLASSES
from training.record import Run

SHARED_JPEG = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


# Module- and session-scope fixtures run before the per-test setting below: they get a
# cache folder of their own too, never the project's data/cache.
os.environ.setdefault("CIFAR10_CACHE_DIR", tempfile.mkdtemp(prefix="cifar10-test-cache-"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own data cache folder, never the project's data/cache."""
    monkeypatch.setenv("CIFAR10_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(autouse=True, scope="session")
def _project_cache_untouched():
    """The session fails if any test wrote into the project's own data/cache."""
    cache = ROOT / "data" / "cache"

    def listing():
        return {p: p.stat().st_mtime_ns for p in cache.rglob("*")} if cache.is_dir() else {}

    before = listing()
    yield
    changed = sorted(str(p) for p, t in listing().items() if before.get(p) != t)
    assert not changed, f"tests wrote into the project's data/cache: {changed}"


def make_images(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 N×32×32×3 images and labels; class k has a distinct mean colour."""
    rng = np.random.default_rng(seed)
    palette = np.array([[(k * 37) % 256, (k * 91 + 40) % 256, (k * 151 + 80) % 256]
                        for k in range(10)], dtype=np.float32)
    labels = np.repeat(np.arange(10), n_per_class)
    noise = rng.normal(0, 20, size=(len(labels), 32, 32, 3))
    images = np.clip(palette[labels][:, None, None, :] + noise, 0, 255).astype(np.uint8)
    return images, labels


def write_pickle_batches(root: Path, n_train_per_class: int = 10, n_test_per_class: int = 2,
                         seed: int = 0) -> Path:
    """A torchvision CIFAR-10 root: root/cifar-10-batches-py/data_batch_1..5, test_batch."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = make_images(n_train_per_class, seed)
    order = np.random.default_rng(seed).permutation(len(labels))
    images, labels = images[order], labels[order]
    chw = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    for i, part in enumerate(np.array_split(np.arange(len(labels)), 5)):
        batch = {"batch_label": f"training batch {i + 1} of 5", "labels": labels[part].tolist(),
                 "data": chw[part], "filenames": [f"img{j}.png" for j in part]}
        (folder / f"data_batch_{i + 1}").write_bytes(pickle.dumps(batch, protocol=2))
    t_images, t_labels = make_images(n_test_per_class, seed + 1)
    batch = {"batch_label": "testing batch 1 of 1", "labels": t_labels.tolist(),
             "data": t_images.transpose(0, 3, 1, 2).reshape(len(t_images), -1)}
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    return root


def write_image_tree(root: Path, n_train_per_class: int = 10, n_test_per_class: int = 2,
                     seed: int = 0, fmt: str = "png") -> Path:
    """root/train/<class>/NNNN.png and root/test/<class>/NNNN.png."""
    from PIL import Image

    for split, n, s in (("train", n_train_per_class, seed), ("test", n_test_per_class, seed + 1)):
        images, labels = make_images(n, s)
        counters = {}
        for img, label in zip(images, labels):
            d = root / split / CLASSES[label]
            d.mkdir(parents=True, exist_ok=True)
            i = counters[label] = counters.get(label, -1) + 1
            Image.fromarray(img).save(d / f"{i:04d}.{fmt}")
    return root


def tar_tree(tree: Path, archive: Path, top: str = "cifar10-tiny") -> Path:
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(tree, arcname=top)
    return archive


def zip_tree(tree: Path, archive: Path, top: str = "cifar10-tiny") -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(tree.rglob("*")):
            zf.write(p, f"{top}/{p.relative_to(tree).as_posix()}")
    return archive


class Stop(BaseException):
    """Like a kill: raised from a check callback, not caught as a failing callback."""


def stop_after(checks: int):
    """A check callback that stops training (raises Stop) once `checks` checks are saved
    (on_check comes after the check's checkpoint is written)."""
    def callback(run):
        if len(run["history"]) == checks:
            raise Stop
    return callback


def typed(*runs: dict) -> list[Run]:
    """Runs as every table and figure takes them, made from run dicts as a run file holds
    them (a model's seeds: several)."""
    return [Run.from_dict(run, Path(f"run{i}.json")) for i, run in enumerate(runs)]


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def tiny_tree(tmp_path) -> Path:
    return write_image_tree(tmp_path / "tree")


@pytest.fixture
def tiny_archive(tmp_path) -> Path:
    tree = write_image_tree(tmp_path / "tree-src")
    return tar_tree(tree, tmp_path / "tiny.tar.gz")


def run_script(*args: str, cwd: Path | None = None, env: dict | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a project script in a subprocess, as a user would."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    full_env.update(env or {})
    return subprocess.run([sys.executable, *args], cwd=cwd or ROOT, env=full_env, check=False,
                          capture_output=True, text=True, timeout=timeout)
