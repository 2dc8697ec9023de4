"""CIFAR-10 from any accepted source, decoded once, cached, split with a seed, and served
as batches made by indexing in-memory tensors.

    source ─▶ decode once ─▶ cache (uint8 N×3×32×32 + labels) ─▶ seeded 45,000/5,000 split
           ─▶ tensors on the device ─▶ per batch: index, float, normalise (resize)

Accepted sources (`--data-dir PATH`):
  * a torchvision CIFAR-10 root: a folder holding `cifar-10-batches-py/` or the original
    `cifar-10-python.tar.gz` (or the `cifar-10-batches-py/` folder or that archive itself);
  * an image-folder tree `train/<class>/*` and `test/<class>/*` (PNG or JPEG, 32x32, the ten
    CIFAR-10 class names), possibly one folder down;
  * a `.tar.gz`, `.tgz`, `.tar` or `.zip` of such a tree, e.g. `cifar10-jpeg.tar.gz`,
    or a folder holding exactly one such archive.
Without `--data-dir`, torchvision downloads CIFAR-10 into `data/` (needs network).

Archives are read member by member in memory, never extracted, and refused when a member
tries to leave the archive (absolute or `..` paths, links). The decoded arrays are cached
in `data/cache/` (or `$CIFAR10_CACHE_DIR`), keyed by the source's content or file list, so
a second run does not decode again and a changed source is noticed; nothing is ever
written beside the source.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from training.batches import CLASSES, NORMALIZATIONS, Normalize, Splits, TensorBatches
from training.errors import UserError
from training.storage import atomic_write, file_sha256
from utils import PROJECT_DIR

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CACHE_VERSION = 1
ACCEPTED = ("a torchvision root (cifar-10-batches-py/ or cifar-10-python.tar.gz), an "
            "image-folder tree train/<class>/* and test/<class>/*, or a .tar.gz/.zip of one")


# =========================================================================== reading sources
@dataclass
class Cifar10Arrays:
    """The decoded data set: uint8 images N×3×32×32 and int64 labels, on the CPU."""
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: dict = field(default_factory=dict)


def _archive_kind(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            return "zip" if suffix == ".zip" else "tar"
    return None


def _safe_member(name: str, archive: Path) -> PurePosixPath:
    """A member's path, refused if it could point outside the archive's own tree."""
    p = PurePosixPath(name)
    if p.is_absolute() or ".." in p.parts or (p.parts and ":" in p.parts[0]):
        raise UserError(f"archive {archive} has a member that points outside it ({name!r}); "
                        "refusing to read it. Use a trusted copy of the data set")
    return p


def _iter_archive(path: Path) -> Iterator[tuple[PurePosixPath, bytes]]:
    """(member path, content) for each regular file of a tar or zip archive, in memory."""
    kind = _archive_kind(path)
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    p = _safe_member(info.filename, path)
                    mode = (info.external_attr >> 16) & 0o170000
                    if mode == 0o120000:  # a symbolic link stored in the zip
                        raise UserError(f"archive {path} holds a link ({info.filename!r}); "
                                        "refusing to read it. Use a trusted copy of the data set")
                    if not info.is_dir():
                        yield p, zf.read(info)
        else:
            with tarfile.open(path, "r:*") as tf:
                for member in tf:
                    p = _safe_member(member.name, path)
                    if member.issym() or member.islnk():
                        raise UserError(f"archive {path} holds a link ({member.name!r}); "
                                        "refusing to read it. Use a trusted copy of the data set")
                    if member.isfile():
                        yield p, tf.extractfile(member).read()
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error) as err:
        detail = str(err).splitlines()[0] if str(err) else ""
        raise UserError(f"cannot read archive {path}: it is empty, truncated or corrupt "
                        f"({type(err).__name__}: {detail}); download it again") from None


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR-10 python batches and nothing else: only NumPy's array rebuilding
    is allowed, so a hostile pickle cannot run code."""
    ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")})

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected object {module}.{name}")


def _read_batch(data: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _BatchUnpickler(io.BytesIO(data), encoding="latin1").load()
        images = np.asarray(batch.get("data", batch.get(b"data")), dtype=np.uint8)
        labels = np.asarray(batch.get("labels", batch.get(b"labels")), dtype=np.int64)
        images = images.reshape(-1, 3, 32, 32)
        if len(images) != len(labels) or labels.min() < 0 or labels.max() > 9:
            raise ValueError("labels do not match the images")
    except Exception as err:  # noqa: BLE001 - whatever is wrong with it, one line says so
        raise UserError(f"{name} is not a CIFAR-10 python batch ({type(err).__name__}: {err}); "
                        "download cifar-10-python.tar.gz again") from None
    return images, labels


BATCH_NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def _read_pickle_batches(files: dict[str, Callable[[], bytes]], where: str) -> Cifar10Arrays:
    missing = [n for n in BATCH_NAMES if n not in files]
    if missing:
        raise UserError(f"{where} lacks {', '.join(missing)}; it is not a complete "
                        "cifar-10-batches-py folder. Download cifar-10-python.tar.gz again")
    parts = [_read_batch(files[n](), f"{where}/{n}") for n in BATCH_NAMES]
    train_x = np.concatenate([p[0] for p in parts[:5]])
    train_y = np.concatenate([p[1] for p in parts[:5]])
    return Cifar10Arrays(torch.from_numpy(train_x), torch.from_numpy(train_y),
                         torch.from_numpy(parts[5][0]), torch.from_numpy(parts[5][1]))


def _tree_layout(paths: Iterable[PurePosixPath]) -> dict[tuple[str, str], list[PurePosixPath]]:
    """Group image files by (split, class); finds train/ and test/ at any one depth."""
    groups: dict[tuple[str, str], list[PurePosixPath]] = {}
    roots = set()
    unknown = set()
    for p in paths:
        parts = p.parts
        if any(part.startswith(".") or part == "__MACOSX" for part in parts):
            continue  # hidden files (.DS_Store) and macOS archive metadata
        for i in range(len(parts) - 2):
            if parts[i] in ("train", "test") and i + 3 == len(parts):
                if parts[i + 1] in CLASSES:
                    roots.add(parts[:i])
                    groups.setdefault((parts[i], parts[i + 1]), []).append(p)
                else:
                    unknown.add(f"{parts[i]}/{parts[i + 1]}")
                break
    if len(roots) > 1:
        raise UserError("the data holds more than one train/test tree ("
                        + ", ".join("/".join(r) or "." for r in sorted(roots))
                        + "); point --data-dir at one of them")
    if unknown and groups:
        raise UserError(f"unknown class folder(s) {', '.join(sorted(unknown))}; "
                        f"expected the CIFAR-10 class names: {', '.join(CLASSES)}")
    return groups


def _decode_tree(groups: dict, reader: Callable[[PurePosixPath], bytes], where: str,
                 progress: bool) -> Cifar10Arrays:
    from PIL import Image, UnidentifiedImageError
    from tqdm import tqdm

    for split in ("train", "test"):
        absent = [c for c in CLASSES if not groups.get((split, c))]
        if len(absent) == len(CLASSES):
            raise UserError(f"{where} has no {split}/<class>/ images; an image-folder tree "
                            f"needs train/ and test/, each with the ten class folders")
        if absent:
            raise UserError(f"{where} has no {split} images of class(es) {', '.join(absent)}; "
                            "every split needs all ten CIFAR-10 classes")
    out = {}
    total = sum(len(v) for v in groups.values())
    bar = tqdm(total=total, desc=f"decoding {Path(where).name}", unit="img",
               disable=None if progress else True, leave=False)  # None: not in a log file
    for split in ("train", "test"):
        images, labels = [], []
        for label, cls in enumerate(CLASSES):
            for p in sorted(groups[(split, cls)]):
                if not p.name.lower().endswith(IMAGE_SUFFIXES):
                    raise UserError(f"{where}: {p} is not a PNG or JPEG image; remove it "
                                    "from the class folder")
                try:
                    with Image.open(io.BytesIO(reader(p))) as img:
                        arr = np.asarray(img.convert("RGB"))
                except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
                    raise UserError(f"{where}: {p} is not a readable image "
                                    f"({type(err).__name__}); remove or replace it") from None
                if arr.shape != (32, 32, 3):
                    raise UserError(f"{where}: {p} is {arr.shape[1]}x{arr.shape[0]}, "
                                    "CIFAR-10 images are 32x32")
                images.append(arr)
                labels.append(label)
                bar.update()
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
        out[split] = (x, torch.tensor(labels, dtype=torch.int64))
    bar.close()
    return Cifar10Arrays(out["train"][0], out["train"][1], out["test"][0], out["test"][1])


def _tree_digest(root: Path) -> str:
    """A fingerprint of a folder from its file names, sizes and modification times."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            st = os.stat(os.path.join(dirpath, name))
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


@dataclass
class _Source:
    """A located source: how to decode it, and a key that changes when it does."""
    kind: str
    path: Path
    decode: Callable[[bool], Cifar10Arrays]
    key: Callable[[], str]


def _pickle_dir_source(folder: Path) -> _Source:
    def decode(progress):
        files = {n: (lambda p=folder / n: p.read_bytes()) for n in BATCH_NAMES
                 if (folder / n).is_file()}
        return _read_pickle_batches(files, str(folder))
    return _Source("cifar-10-batches-py", folder, decode, lambda: _tree_digest(folder))


def _archive_source(path: Path) -> _Source:
    def decode(progress):
        # One pass over the archive: a .tar.gz cannot be read out of order cheaply.
        members = dict(_iter_archive(path))
        batches = {p.name: (lambda d=d: d) for p, d in members.items()
                   if p.name in BATCH_NAMES and "cifar-10-batches-py" in p.parts}
        if batches:
            return _read_pickle_batches(batches, f"{path}:cifar-10-batches-py")
        groups = _tree_layout(members)
        if not groups:
            raise UserError(f"archive {path} holds neither cifar-10-batches-py/ nor a "
                            "train/<class>/, test/<class>/ image tree")
        return _decode_tree(groups, members.__getitem__, str(path), progress)
    return _Source("archive", path, decode, lambda: file_sha256(path))


def _image_tree_source(root: Path) -> _Source:
    def decode(progress):
        paths = [PurePosixPath(os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/"))
                 for d, _, fs in os.walk(root) for f in fs]
        groups = _tree_layout(paths)
        return _decode_tree(groups, lambda p: (root / p).read_bytes(), str(root), progress)
    return _Source("image-folder", root, decode, lambda: _tree_digest(root))


def locate_source(data_dir: str | os.PathLike) -> _Source:
    """Work out which accepted layout `data_dir` is; a clear UserError if none."""
    path = Path(data_dir).expanduser()
    if not path.exists():
        raise UserError(f"--data-dir {path} does not exist; give {ACCEPTED}")
    if not os.access(path, os.R_OK):
        raise UserError(f"--data-dir {path} is not readable (permissions)")
    if path.is_file():
        if _archive_kind(path) is None:
            raise UserError(f"--data-dir {path} is a file but not a .tar.gz, .tgz, .tar or "
                            f".zip archive; give {ACCEPTED}")
        return _archive_source(path)
    if (path / "cifar-10-batches-py").is_dir():
        return _pickle_dir_source(path / "cifar-10-batches-py")
    if (path / "data_batch_1").is_file():
        return _pickle_dir_source(path)
    if (path / "cifar-10-python.tar.gz").is_file():
        return _archive_source(path / "cifar-10-python.tar.gz")
    if (path / "train").is_dir() or (path / "test").is_dir():
        return _image_tree_source(path)
    subdirs = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    trees = [p for p in subdirs if (p / "train").is_dir() and (p / "test").is_dir()]
    if len(trees) == 1:
        return _image_tree_source(trees[0])
    archives = [p for p in path.iterdir() if p.is_file() and _archive_kind(p)]
    if len(archives) == 1 and not trees:
        return _archive_source(archives[0])
    raise UserError(f"--data-dir {path} matches none of the accepted layouts; give {ACCEPTED}")


def default_cache_dir() -> Path:
    return Path(os.environ.get("CIFAR10_CACHE_DIR") or PROJECT_DIR / "data" / "cache")


def _save_cache(path: Path, arrays: Cifar10Arrays) -> None:
    def write(tmp: str):
        with open(tmp, "wb") as f:
            np.savez(f, train_images=arrays.train_images.numpy(),
                     train_labels=arrays.train_labels.numpy(),
                     test_images=arrays.test_images.numpy(),
                     test_labels=arrays.test_labels.numpy())
    try:
        atomic_write(path, write)
    except OSError as err:  # the cache only saves time: a read-only disk is not an error
        print(f"warning: could not write the data cache {path} ({err}); "
              "the next run will decode again")


def _load_cache(path: Path) -> Cifar10Arrays | None:
    try:
        with np.load(path) as z:
            return Cifar10Arrays(*(torch.from_numpy(z[k]) for k in
                                   ("train_images", "train_labels", "test_images", "test_labels")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None  # missing or damaged: decode again


def _download(root: Path) -> Path:
    """torchvision's download of the original archive (needs network)."""
    from torchvision.datasets import CIFAR10

    try:
        CIFAR10(str(root), train=True, download=True)
    except Exception as err:  # noqa: BLE001 - no network, proxy, disk full: one line says so
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(
            f"could not download CIFAR-10 ({reason}). Without network, download "
            f"{CIFAR10_URL} elsewhere and put it in {root}/, or pass --data-dir PATH "
            f"with {ACCEPTED}") from None
    return root / "cifar-10-batches-py"


def read_cifar10(data_dir: str | os.PathLike | None = None, *, cache_dir: Path | None = None,
                 download_root: Path | None = None, progress: bool = True) -> Cifar10Arrays:
    """The whole data set as uint8 tensors, from the cache when the source is unchanged."""
    if data_dir is None:
        root = Path(download_root or PROJECT_DIR / "data")
        source = None
        if (root / "cifar-10-batches-py" / "test_batch").is_file() or \
                (root / "cifar-10-python.tar.gz").is_file():
            source = locate_source(root)
        else:
            source = _pickle_dir_source(_download(root))
    else:
        source = locate_source(data_dir)
    key = hashlib.sha256(f"v{CACHE_VERSION}:{source.kind}:{source.key()}".encode()).hexdigest()
    cache = Path(cache_dir or default_cache_dir()) / f"cifar10-{key[:20]}.npz"
    arrays = _load_cache(cache) if cache.is_file() else None
    hit = arrays is not None
    if arrays is None:
        arrays = source.decode(progress)
        _save_cache(cache, arrays)
    arrays.source = {"kind": source.kind, "path": str(source.path), "cache": str(cache),
                     "cache_hit": hit}
    return arrays


# =========================================================================== the splits
@dataclass
class CifarData(Splits):
    """The splits of `Splits`, all five on the device (the three through the training split
    are views of the same tensors, no copies), and what was loaded (`info`, recorded in the
    run's config)."""
    info: dict = field(default_factory=dict)


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded train/validation split of range(n): depends on (n, val_fraction, seed) only."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = round(n * val_fraction)
    return perm[n_val:], perm[:n_val]


def load_cifar10(data_dir: str | os.PathLike | None, batch_size: int, *, seed: int = 0,
                 device: torch.device | str = "cpu", val_fraction: float = 0.1,
                 subset: int | None = None, normalization: str = "cifar",
                 image_size: int = 32, resize_mode: str = "nearest",
                 channels_last: bool = False, eval_batch_size: int = 500,
                 train_eval_size: int = 5000, cache_dir: Path | None = None,
                 progress: bool = True, augment: bool = False) -> CifarData:
    """CIFAR-10 as batches on `device`: a seeded 45,000/5,000 split, the test set apart.

    `subset` keeps at most that many images of each split (a seeded random choice for
    test). The uint8 images go to the device once; normalisation and resizing happen
    there per batch. `augment`: random crops and flips of the training batches (`crop_flip`;
    never of validation, test or the training split's measurements).
    """
    device = torch.device(device)
    arrays = read_cifar10(data_dir, cache_dir=cache_dir, progress=progress)
    train_idx, val_idx = split_indices(len(arrays.train_labels), val_fraction, seed)
    test_idx = torch.arange(len(arrays.test_labels))
    if subset is not None:
        train_idx, val_idx = train_idx[:subset], val_idx[:subset]
        g = torch.Generator().manual_seed(seed + 1)
        test_idx = torch.randperm(len(test_idx), generator=g)[:subset].sort().values
    if len(val_idx) == 0:
        raise UserError("the validation split is empty; use a larger --subset", exit_code=2)
    mean, std = NORMALIZATIONS[normalization]
    resize = None if image_size == 32 else (image_size, resize_mode)
    transform = Normalize(mean, std, device, resize=resize, channels_last=channels_last)

    def on_device(images, labels, idx):
        return images[idx].to(device), labels[idx].to(device)

    train_x, train_y = on_device(arrays.train_images, arrays.train_labels, train_idx)
    val_x, val_y = on_device(arrays.train_images, arrays.train_labels, val_idx)
    test_x, test_y = on_device(arrays.test_images, arrays.test_labels, test_idx)
    n_eval = min(train_eval_size, len(train_y))
    info = dict(arrays.source, n_train=len(train_y), n_val=len(val_y), n_test=len(test_y),
                n_train_eval=n_eval, eval_batch_size=eval_batch_size,
                normalization=normalization, mean=mean, std=std,
                image_size=image_size, resize_mode=resize_mode if resize else None)
    return CifarData(
        train=TensorBatches(train_x, train_y, batch_size, transform, shuffle=True,
                            drop_last=True, seed=seed, augment=augment),
        val=TensorBatches(val_x, val_y, eval_batch_size, transform),
        test=TensorBatches(test_x, test_y, eval_batch_size, transform),
        # The first n_eval images of the (already shuffled) training split: a fixed,
        # class-balanced-in-expectation sample, the same at every check.
        train_eval=TensorBatches(train_x[:n_eval], train_y[:n_eval], eval_batch_size, transform),
        train_full=TensorBatches(train_x, train_y, eval_batch_size, transform),
        info=info)
