"""CIFAR-10 as training sees it, whatever the source: its classes, its normalisations, and
batches made by indexing in-memory tensors (normalised, and for training cropped and flipped,
on the device), one `Splits` of them per run. Reading and caching the data set is
dataloaders.py's.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")
# The 2019 course code's normalisation; ImageNet's for the modern ResNet recipe.
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
NORMALIZATIONS = {"cifar": (CIFAR_MEAN, CIFAR_STD), "imagenet": (IMAGENET_MEAN, IMAGENET_STD)}


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
class Splits:
    """The batches a run goes through: shuffled batches to train on (`train`), validation
    batches (`val`), and, when there are, the test split (`test`), a fixed subset of the
    training split measured at every check (`train_eval`) and the whole training split in
    order for the final evaluation (`train_full`); any iterable of (images, labels) batches
    will do (the Trainer needs `len()` of `train`)."""
    train: Iterable
    val: Iterable
    test: Iterable | None = None
    train_eval: Iterable | None = None
    train_full: Iterable | None = None
