"""Training speed of every model: the project's data path against its limit and against
the 2019 course's PIL + DataLoader path.

For each model, training images per second in three ways, all with the Trainer's own step
(`Trainer.train_one_batch`: autocast, cross-entropy, backward, optimizer step, on-device
bookkeeping) and the same
model, optimizer, batch size, precision and memory format as the task scripts:

    pipeline  the project's training path: uint8 images on the device, batches made by
              `dataloaders.TensorBatches`, normalised (and for ResNet18 upsampled x8 to 256)
              on the device by `dataloaders.Normalize`; no evaluation
    step      the same step on one batch made beforehand, already on the device: the most
              any data path can reach
    naive     the course code's way: a CIFAR10-style dataset that makes a PIL image per
              sample (Image.fromarray, [Resize(256, NEAREST),] ToTensor, Normalize) through
              DataLoader(batch_size, shuffle=True, num_workers=2), batches copied to the device

Models and their course settings: LeNet (SGD 0.05, batch 64), Model 2.1 (SGD 0.05, batch 64),
Model 2.2 (Adam 1e-3, batch 32), ResNet18 at 256x256 with layer4 and fc trained (Adam 5e-4,
batch 32; task3_resnet.ResNet18Transfer with random weights: the speed does not depend on
them). The images are random uint8 (speed, not accuracy, is measured) unless --data-dir
gives real ones.

    python benchmark.py                                  # all four models, --device auto
    python benchmark.py --models lenet --device cpu      # under a minute on 2 CPU cores

Prints a fixed-width table (images/s; a/b = pipeline/step, the share of the limit reached;
a/c = pipeline/naive, the speed-up over the course's loader) and writes it, with the device,
versions and command, to --json (default plots/benchmark.json) after every model, so a
finished model's numbers survive an interrupted run. Numbers and machines: README.md.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn as nn

import task1_lenet
import task2_models
from dataloaders import NORMALIZATIONS, Normalize, TensorBatches, read_cifar10
from trainer import Trainer
from cli import ArgumentParser, UserError, add_device_args, non_negative_int, positive_int, run_cli
from plots import parameter_table
from runs import atomic_write_json
from utils import environment, setup_run

import task3_resnet


_TASK1_DEFAULTS = task1_lenet.get_args_parser()


def _task2_settings(key: str) -> dict:
    spec = task2_models.MODELS[key]
    return {k: spec[k] for k in ("label", "optimizer", "lr", "batch_size")} | {"image_size": 32}


# Each model's course settings, taken from the task scripts where they are defined there.
MODELS = {
    "lenet": {"label": "LeNet", "optimizer": "SGD",
              "lr": _TASK1_DEFAULTS.get_default("lr"),                  # 0.05
              "batch_size": _TASK1_DEFAULTS.get_default("batch_size"),  # 64
              "image_size": 32},
    "model21": _task2_settings("2.1"),  # SGD 0.05, batch 64
    "model22": _task2_settings("2.2"),  # Adam 1e-3, batch 32
    # Task 3's course recipe (SPEC.md, task3_resnet.py's defaults): 32x32 upsampled x8
    # (nearest) to 256x256, CIFAR normalisation, layer4 and fc trained.
    "resnet18": {"label": "ResNet18", "optimizer": "Adam",
                 "lr": task3_resnet.get_args_parser().get_default("lr"),                  # 5e-4
                 "batch_size": task3_resnet.get_args_parser().get_default("batch_size"),  # 32
                 "image_size": task3_resnet.INPUTS["course"]["image_size"]},              # 256
}
NORMALIZATION = "cifar"  # the course's mean/std, for every model (ResNet18's course recipe too)


# --------------------------------------------------------------------------- models
def build_model(name: str) -> nn.Module:
    if name == "lenet":
        return task1_lenet.LeNet()
    if name == "model21":
        return task2_models.Model21()
    if name == "model22":
        return task2_models.Model22()
    return task3_resnet.ResNet18Transfer()  # random weights (speed does not depend on them)


def make_optimizer(name: str, model: nn.Module) -> torch.optim.Optimizer:
    spec = MODELS[name]
    params = [p for p in model.parameters() if p.requires_grad]
    if spec["optimizer"] == "SGD":
        return torch.optim.SGD(params, lr=spec["lr"])
    return torch.optim.Adam(params, lr=spec["lr"])


# --------------------------------------------------------------------------- the naive path
class PILImageDataset(torch.utils.data.Dataset):
    """What torchvision's CIFAR10.__getitem__ does: uint8 H×W×3 array -> PIL image ->
    transform, one sample at a time (the 2019 course code's data path)."""

    def __init__(self, images_hwc: np.ndarray, labels: np.ndarray, transform: Callable):
        self.images, self.labels, self.transform = images_hwc, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        image = self.transform(Image.fromarray(self.images[index]))
        return image, int(self.labels[index])


def naive_loader(images: torch.Tensor, labels: torch.Tensor, batch_size: int, image_size: int,
                 num_workers: int) -> torch.utils.data.DataLoader:
    from torchvision import transforms

    mean, std = NORMALIZATIONS[NORMALIZATION]
    steps = [transforms.ToTensor(), transforms.Normalize(mean, std)]
    if image_size != 32:
        steps.insert(0, transforms.Resize(image_size,
                                          interpolation=transforms.InterpolationMode.NEAREST))
    dataset = PILImageDataset(images.permute(0, 2, 3, 1).numpy(), labels.numpy(),
                              transforms.Compose(steps))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True,
                                       num_workers=num_workers)


# --------------------------------------------------------------------------- timing
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def time_steps(train_on: Callable, batches: Iterator, warmup: int, steps: int,
               device: torch.device) -> float:
    """Seconds for `steps` calls of train_on(images, labels) after `warmup` untimed ones."""
    for _ in range(warmup):
        train_on(*next(batches))
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        train_on(*next(batches))
    synchronize(device)  # the clock stops when the GPU has finished the last step
    return time.perf_counter() - start


def benchmark_model(name: str, images: torch.Tensor, labels: torch.Tensor, args,
                    device: torch.device, autocast_dtype: torch.dtype | None,
                    channels_last: bool) -> dict:
    """Images per second of `name` in the three ways (see the module docstring)."""
    spec = MODELS[name]
    batch_size, image_size = spec["batch_size"], spec["image_size"]
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(args.seed)
    model = build_model(name).to(device, memory_format=memory_format)
    optimizer = make_optimizer(name, model)
    result = {"label": spec["label"], "model_class": type(model).__name__,
              "batch_size": batch_size, "image_size": image_size,
              "optimizer": spec["optimizer"], "lr": spec["lr"],
              "parameters": parameter_table(model)[1],
              "trainable_parameters": sum(p.numel() for p in model.parameters()
                                          if p.requires_grad)}
    model.train()
    if args.compile:
        model = torch.compile(model)

    def first_batches(n_batches: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Images for n_batches batches (a small --data-dir set is repeated as needed)."""
        idx = torch.arange(n_batches * batch_size) % len(labels)
        return images[idx], labels[idx]

    # (a) the project's path: uint8 on the device -> TensorBatches -> Normalize on the device
    mean, std = NORMALIZATIONS[NORMALIZATION]
    transform = Normalize(mean, std, device,
                          resize=None if image_size == 32 else (image_size, "nearest"),
                          channels_last=channels_last)
    train_images, train_labels = first_batches(args.warmup + args.steps)
    train_batches = TensorBatches(train_images.to(device), train_labels.to(device), batch_size,
                                  transform, shuffle=True, drop_last=True, seed=args.seed)
    # The Trainer of the task scripts, for its step; no validation data, it never checks.
    with tempfile.TemporaryDirectory() as tmp:  # and it writes nothing unless it trains
        trainer = Trainer(model, optimizer, train_batches, [], epochs=1, device=device,
                          run_path=Path(tmp) / "benchmark", autocast_dtype=autocast_dtype,
                          progress=False)

    train_on = trainer.train_one_batch  # the step and its bookkeeping, as in training

    seconds = time_steps(train_on, iter(train_batches), args.warmup, args.steps, device)
    result["pipeline_img_s"] = args.steps * batch_size / seconds

    # (b) the step alone, on one batch made beforehand
    one_batch = next(iter(train_batches))
    seconds = time_steps(train_on, itertools.repeat(one_batch), args.warmup, args.steps, device)
    result["step_img_s"] = args.steps * batch_size / seconds
    del train_batches, one_batch

    # (c) the course's path: PIL per sample, DataLoader workers, copy to the device
    result["naive_img_s"] = None
    if not args.no_naive:
        # The workers fill their queues (prefetch_factor 2 each) while the first, slow steps
        # run; extra warm-up steps drain them so that the clock sees the steady rate.
        warmup = args.warmup + 2 * args.num_workers
        loader = naive_loader(*first_batches(warmup + args.steps), batch_size, image_size,
                              args.num_workers)

        def to_device(batches):
            # The course code's to_cuda(): a plain copy; then the model's memory format.
            for batch_images, batch_labels in batches:
                yield (batch_images.to(device).contiguous(memory_format=memory_format),
                       batch_labels.to(device))

        seconds = time_steps(train_on, to_device(iter(loader)), warmup, args.steps, device)
        result["naive_img_s"] = args.steps * batch_size / seconds
    for key in ("pipeline_img_s", "step_img_s", "naive_img_s"):
        if result[key] is not None:
            result[key] = round(result[key], 1)
    return result


# --------------------------------------------------------------------------- output
COLUMNS = (f"{'model':<10} {'batch':>5} {'pipeline':>10} {'step':>10} {'naive':>10} "
           f"{'a/b':>6} {'a/c':>6}")


def format_row(name: str, r: dict) -> str:
    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    a, b, c = r["pipeline_img_s"], r["step_img_s"], r["naive_img_s"]
    return (f"{name:<10} {r['batch_size']:>5} {num(a, ',.0f'):>10} {num(b, ',.0f'):>10} "
            f"{num(c, ',.0f'):>10} {num(a / b if b else None, '.2f'):>6} "
            f"{num(a / c if c else None, '.1f'):>6}")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


# --------------------------------------------------------------------------- entry point
def parse_models(text: str) -> list[str]:
    """argparse type: a comma list of MODELS names (or 'all'), in the order given."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("no model named")
    if names == ["all"]:
        return list(MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {', '.join(map(repr, unknown))}; choose from "
            f"{','.join(MODELS)} or all")
    return list(dict.fromkeys(names))


def get_args_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        description="Training images/s of each model: the project's data path (a), the step "
                    "alone on one batch (b), and the course's PIL + DataLoader path (c).")
    parser.add_argument("--models", type=parse_models, default=list(MODELS),
                        metavar="LIST",
                        help=f"comma list of {','.join(MODELS)}, or all (default: all)")
    parser.add_argument("--steps", type=positive_int, default=50,
                        help="timed training steps per model and way (default: 50)")
    parser.add_argument("--warmup", type=non_negative_int, default=5,
                        help="untimed steps before each timing; the naive path adds 2 per "
                             "DataLoader worker, to drain the workers' prefetch (default: 5)")
    add_device_args(parser)  # as in the task scripts
    parser.add_argument("--compile", action="store_true",
                        help="wrap each model in torch.compile (it compiles in the first "
                             "warm-up step: keep --warmup 1 or more)")
    parser.add_argument("--num-workers", type=non_negative_int, default=2,
                        help="DataLoader workers of the naive path (default: 2, the course's)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive path")
    parser.add_argument("--data-dir", default=None, metavar="PATH",
                        help="use real CIFAR-10 training images from PATH (any source "
                             "task1_lenet.py accepts) instead of random ones (default: random)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for the images, initialisation and batch order (default: 0)")
    parser.add_argument("--json", default="plots/benchmark.json", metavar="PATH",
                        help="where the results go, rewritten after each model "
                             "(default: plots/benchmark.json)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def main(args: argparse.Namespace) -> dict:
    json_path = Path(args.json)
    if json_path.is_dir():
        raise UserError(f"--json {json_path} is a folder; give a file name", exit_code=2)
    device, autocast_dtype, channels_last = setup_run(args, output_dir=json_path.parent)

    n_needed = (args.warmup + args.steps) * max(MODELS[m]["batch_size"] for m in args.models)
    if args.data_dir is not None:
        arrays = read_cifar10(args.data_dir)
        images, labels = arrays.train_images, arrays.train_labels
        data = {"kind": "cifar10 train", "source": arrays.source,
                "n_images": min(n_needed, len(labels))}
        images, labels = images[:n_needed], labels[:n_needed]
    else:
        g = torch.Generator().manual_seed(args.seed)
        images = torch.randint(0, 256, (n_needed, 3, 32, 32), dtype=torch.uint8, generator=g)
        labels = torch.randint(0, 10, (n_needed,), generator=g)
        data = {"kind": "random uint8", "n_images": n_needed}

    env = environment()
    results = {"device": str(device), "torch": torch.__version__, "models": {},
               "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "precision": "bf16" if autocast_dtype is not None else "fp32",
               "channels_last": channels_last, "compile": args.compile,
               "steps": args.steps, "warmup": args.warmup,
               "naive_num_workers": None if args.no_naive else args.num_workers,
               "data": data, "cpu": cpu_name(), "gpu": env.get("gpu"),
               "environment": env, "command": " ".join(["python", *sys.argv])}
    print(f"device {device} ({env.get('gpu') or results['cpu']}), {results['precision']}, "
          f"channels_last {'on' if channels_last else 'off'}"
          + (", torch.compile" if args.compile else "")
          + f", torch {torch.__version__}, {env['threads']} threads; {args.warmup} warm-up + "
          f"{args.steps} timed steps per way; images: {data['kind']}")
    print("images/s; a/b = pipeline/step (share of the limit), a/c = pipeline/naive")
    print(COLUMNS)
    start = time.perf_counter()
    for name in args.models:
        result = benchmark_model(name, images, labels, args, device, autocast_dtype,
                                 channels_last)
        results["models"][name] = result
        results["total_s"] = round(time.perf_counter() - start, 1)
        atomic_write_json(json_path, results)
        print(format_row(name, result), flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(f"wrote {json_path} ({results['total_s']:.0f} s)")
    return results


if __name__ == "__main__":
    run_cli(main, get_args_parser())
