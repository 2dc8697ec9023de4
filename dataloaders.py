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
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from cli import UserError
from runs import atomic_write, file_sha256
from utils import PROJECT_DIR

CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")
# The 2019 course code's normalisation; ImageNet's for the modern ResNet recipe.
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
NORMALIZATIONS = {"cifar": (CIFAR_MEAN, CIFAR_STD), "imagenet": (IMAGENET_MEAN, IMAGENET_STD)}

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
    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
               ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
               ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar")}

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
    except Exception as err:
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
    except Exception as err:
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


# =========================================================================== batches
class Normalize:
    """uint8 N×3×H×W on any device -> normalised float, optionally resized and channels_last.

    Runs where the images are (on the GPU when they are there): no PIL, no per-sample work.
    `resize` is None, or (size, mode): ('nearest' with an integer factor is the course's
    x8 upsampling to 256; 'bilinear' to 224 is torchvision's ImageNet recipe).
    """

    def __init__(self, mean, std, device, resize: tuple[int, str] | None = None,
                 channels_last: bool = False):
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.resize = resize
        self.channels_last = channels_last

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.float().div_(255) - self.mean).div_(self.std)
        if self.resize is not None:
            size, mode = self.resize
            if mode == "nearest":
                x = F.interpolate(x, size=(size, size), mode="nearest")
            else:
                x = F.interpolate(x, size=(size, size), mode=mode, align_corners=False)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4
              ) -> torch.Tensor:
    """The standard CIFAR augmentation on a whole batch (uint8 or float N×C×H×W, on any
    device): each image padded by `padding` zero pixels, a random H×W crop of it, and a
    horizontal flip with probability 1/2, every image drawing its own offsets and flip from
    `generator` (on the images' device). A few tensor operations, no per-image Python."""
    n, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    dy, dx = torch.randint(0, 2 * padding + 1, (2, n, 1), device=device, generator=generator)
    flip = torch.rand(n, 1, device=device, generator=generator) < 0.5
    rows = dy + torch.arange(h, device=device)                        # N×H
    cols = torch.arange(w, device=device)
    cols = dx + torch.where(flip, w - 1 - cols, cols)                 # N×W, mirrored or not
    batch = torch.arange(n, device=device).view(n, 1, 1, 1)
    channel = torch.arange(c, device=device).view(1, c, 1, 1)
    return padded[batch, channel, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]


class TensorBatches:
    """Batches of (images, labels) made by indexing tensors held in memory.

    The order of epoch e is a permutation drawn from (seed, e) alone, so a run resumed in
    the middle of an epoch sees exactly the batches it would have seen (`iter_from`).
    `augment` (training batches only): `crop_flip` each batch before normalising, with a
    generator seeded from (seed, epoch, batch) alone, so a resumed run draws the same crops
    and flips (nothing to save) and nothing else's random numbers are touched.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int,
                 transform: Callable[[torch.Tensor], torch.Tensor], *, shuffle: bool = False,
                 drop_last: bool = False, seed: int = 0, augment: bool = False):
        self.images, self.labels = images, labels
        self.batch_size = batch_size
        self.transform = transform
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self.augment = augment
        # Drop a ragged last batch only when there is a full one (BatchNorm needs >1 sample).
        self.drop_last = drop_last and len(labels) >= batch_size

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> torch.Tensor | None:
        if not self.shuffle:
            return None
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return torch.randperm(len(self.labels), generator=g).to(self.labels.device)

    def _augment_generator(self, batch: int) -> torch.Generator:
        """The generator of batch `batch` of this epoch's augmentation: (seed, epoch, batch)."""
        key = ((self.seed * 1_000_003 + self.epoch) * 1_000_003 + batch) % (2 ** 63)
        return torch.Generator(self.images.device).manual_seed(key ^ 0x5EED_A06)

    def iter_indices_from(self, start: int = 0) -> Iterator[torch.Tensor]:
        """The index tensor of each batch of this epoch from batch `start` on."""
        order = self._order()
        if order is None:
            order = torch.arange(len(self.labels), device=self.labels.device)
        for b in range(start, len(self)):
            yield order[b * self.batch_size:(b + 1) * self.batch_size]

    def gather(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of images (transformed) and labels at `index` (never augmented)."""
        return self.transform(self.images[index]), self.labels[index]

    def iter_from(self, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.augment:
            for b, index in enumerate(self.iter_indices_from(start), start):
                images = crop_flip(self.images[index], self._augment_generator(b))
                yield self.transform(images), self.labels[index]
            return
        if self.shuffle:
            yield from map(self.gather, self.iter_indices_from(start))
            return
        for b in range(start, len(self)):  # in order: slices are views, no copy
            sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
            yield self.transform(self.images[sl]), self.labels[sl]

    def __iter__(self):
        return self.iter_from(0)


@dataclass
class CifarData:
    """Validation and test batches, and three ways through the same on-device training
    tensors (views, no copies): shuffled batches to train on, a fixed subset measured at
    every check, the whole split in order for the final evaluation."""
    train: TensorBatches       # shuffled, drop_last: what the optimizer steps on
    val: TensorBatches
    test: TensorBatches
    train_eval: TensorBatches  # the first 5,000 of the split, for train accuracy at checks
    train_full: TensorBatches  # the whole training split in order, for the final evaluation
    info: dict


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded train/validation split of range(n): depends on (n, val_fraction, seed) only."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(round(n * val_fraction))
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
