"""Training speed of every model: the project's path against the limit of the step and
against the 2019 course's PIL + DataLoader path.

For each model, training images per second, with the task script's own model, optimizer,
batch size, precision and memory format (`jobs()` of task1_lenet, task2_models and
task3_resnet; ResNet18 with random weights: speed does not depend on them) and the
step the Trainer calls (`training.steps.make_step`):

    pipeline  the project's training path: uint8 images on the device, batches made by
              `dataloaders.TensorBatches`, normalised (ResNet18: upsampled x8 to 256) on the
              device, the step as --cuda-graphs makes it (eager, or one replayed graph)
    eager     the eager step on one batch made beforehand: no data path at all
    graphed   the same step captured as one CUDA graph on that batch (CUDA only): the limit
              the launch overhead leaves, what the pipeline is measured against
    naive     the course code's way: a CIFAR10-style dataset making a PIL image per sample
              (Image.fromarray, [Resize(256, NEAREST),] ToTensor, Normalize) through
              DataLoader(batch_size, shuffle=True, num_workers=2), batches copied to the device

    python benchmark.py                                  # all four models, --device auto
    python benchmark.py --models lenet --device cpu      # under a minute on 2 CPU cores

Prints a fixed-width table (a/b = pipeline over the limit: the graphed step where there is
one, else the eager step; a/c = pipeline over naive) and writes it, with the device,
versions and command, to --json (default plots/benchmark.json) after every model, so a
finished model's numbers survive an interrupted run. Numbers and machines: docs/GUIDE.md,
"Precision and speed by device".
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

import task1_lenet
import task2_models
import task3_resnet
from dataloaders import read_cifar10
from training.architecture import parameter_table
from training.batches import NORMALIZATIONS, Normalize, TensorBatches
from training.cli import (
    ArgumentParser,
    add_debug_arg,
    add_device_args,
    non_negative_int,
    positive_int,
    run_cli,
)
from training.errors import UserError
from training.jobs import Job, make_optimizer, make_schedule
from training.recipes import RECIPES
from training.steps import GraphedStep, make_step
from training.storage import atomic_write_json, ensure_output_dir
from utils import Hardware, cpu_name, environment, resolve_hardware, seed_everything


def task_jobs() -> dict[str, Job]:
    """Each model as its task script trains it by default, keyed by the run config's name."""
    def defaults(module):
        return module.get_args_parser().parse_args([])

    ten_epoch = task2_models.get_args_parser().parse_args(["--recipe", "10-epoch"])
    found = [*task1_lenet.jobs(defaults(task1_lenet)),
             *task2_models.jobs(defaults(task2_models)), *task2_models.jobs(ten_epoch),
             *task3_resnet.jobs(defaults(task3_resnet), imagenet_state=None)]
    return {job.config["model"]: job for job in found}


MODELS = tuple(RECIPES)  # the keys of task_jobs(): lenet, model21, model22, the 10-epoch
# recipes model21-10ep and model22-10ep (their crops and flips and learning-rate schedule in
# the pipeline's steps), resnet18


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
                 normalization: str, num_workers: int) -> torch.utils.data.DataLoader:
    from torchvision import transforms

    mean, std = NORMALIZATIONS[normalization]
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


def time_steps(step: Callable[[], None], warmup: int, steps: int, device: torch.device) -> float:
    """Seconds for `steps` calls of step() after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)  # the clock stops when the GPU has finished the last step
    return time.perf_counter() - start


def benchmark_model(job: Job, images: torch.Tensor, labels: torch.Tensor, args,
                    hardware: Hardware) -> dict:
    """Images per second of one model in each way (see the module docstring)."""
    device = hardware.device
    batch_size, image_size = job.batch_size, job.data.get("image_size", 32)
    seed_everything(args.seed)
    model = job.build_model().to(device, memory_format=hardware.memory_format).train()
    result = {"label": job.config["label"], "model_class": type(model).__name__,
              "batch_size": batch_size, "image_size": image_size,
              "optimizer": job.optimizer, "lr": job.lr,
              "parameters": parameter_table(model)[1],
              "trainable_parameters": sum(p.numel() for p in model.parameters()
                                          if p.requires_grad),
              "cuda_graphs": hardware.cuda_graphs, "precision": hardware.precision}
    if args.compile:
        model = torch.compile(model)

    def first_batches(n_batches: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Images for n_batches batches (a small --data-dir set is repeated as needed)."""
        idx = torch.arange(n_batches * batch_size) % len(labels)
        return images[idx], labels[idx]

    def step_on(batches, graphed: bool):
        # The step the Trainer calls, each with its own optimizer (and schedule).
        optimizer = make_optimizer(job.optimizer, model, job.lr, job.weight_decay,
                                   job.momentum, job.nesterov)
        schedule = make_schedule(job.schedule, optimizer, 10 * (args.warmup + args.steps))
        return make_step(model, optimizer, batches, device, hardware.autocast_dtype,
                         graphed=graphed, scheduler=schedule)

    # (a) the project's path: uint8 on the device -> TensorBatches -> Normalize on the device
    normalization = job.data.get("normalization", "cifar")
    mean, std = NORMALIZATIONS[normalization]
    transform = Normalize(mean, std, device,
                          resize=None if image_size == 32 else (image_size, "nearest"),
                          channels_last=hardware.channels_last)
    train_images, train_labels = first_batches(args.warmup + args.steps)
    train_batches = TensorBatches(train_images.to(device), train_labels.to(device), batch_size,
                                  transform, shuffle=True, drop_last=True, seed=args.seed,
                                  augment=job.data.get("augment", False))
    graphed = hardware.cuda_graphs and not (job.schedule or train_batches.augment)
    pipeline = step_on(train_batches, graphed)
    source = pipeline.batches_from(0)
    seconds = time_steps(lambda: pipeline(next(source)), args.warmup, args.steps, device)
    result["pipeline_img_s"] = args.steps * batch_size / seconds

    # (b) the eager step alone, on one batch made beforehand
    one_batch = next(iter(train_batches))
    eager = step_on(train_batches, False)
    seconds = time_steps(lambda: eager(one_batch), args.warmup, args.steps, device)
    result["eager_img_s"] = args.steps * batch_size / seconds

    # (b') the same step on that batch as one CUDA graph: the launch-overhead limit (not
    # under fp16: its loss scaler cannot be captured; nor with a schedule)
    result["graphed_img_s"] = None
    if device.type == "cuda" and eager.scaler is None and eager.core.scheduler is None:
        graphed = GraphedStep(eager.core, lambda _index: one_batch, batch_size)
        index = torch.zeros(batch_size, dtype=torch.long, device=device)
        seconds = time_steps(lambda: graphed(index), args.warmup, args.steps, device)
        result["graphed_img_s"] = args.steps * batch_size / seconds

    # (c) the course's path: PIL per sample, DataLoader workers, copy to the device
    result["naive_img_s"] = None
    if not args.no_naive:
        # The workers fill their queues (prefetch_factor 2 each) while the first, slow steps
        # run; extra warm-up steps drain them so that the clock sees the steady rate.
        warmup = args.warmup + 2 * args.num_workers
        loader = naive_loader(*first_batches(warmup + args.steps), batch_size, image_size,
                              normalization, args.num_workers)

        def to_device(batches):
            # The course code's to_cuda(): a plain copy; then the model's memory format.
            for batch_images, batch_labels in batches:
                yield (batch_images.to(device).contiguous(memory_format=hardware.memory_format),
                       batch_labels.to(device))

        naive_batches = to_device(iter(loader))
        naive = step_on(train_batches, False)  # its own optimizer: (b') made eager's capturable
        seconds = time_steps(lambda: naive(next(naive_batches)), warmup, args.steps, device)
        result["naive_img_s"] = args.steps * batch_size / seconds
    for key in ("pipeline_img_s", "eager_img_s", "graphed_img_s", "naive_img_s"):
        if result[key] is not None:
            result[key] = round(result[key], 1)
    return result


# --------------------------------------------------------------------------- output
COLUMNS = (f"{'model':<12} {'batch':>5} {'prec':>5} {'pipeline':>10} {'eager':>10} "
           f"{'graphed':>10} {'naive':>10} {'a/b':>6} {'a/c':>6}")


def limit(r: dict) -> float:
    """b: the graphed step where it was measured (CUDA), else the eager step."""
    return r["graphed_img_s"] or r["eager_img_s"]


def format_row(name: str, r: dict) -> str:
    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    a, b, c = r["pipeline_img_s"], limit(r), r["naive_img_s"]
    return (f"{name:<12} {r['batch_size']:>5} {r.get('precision', '?'):>5} {num(a, ',.0f'):>10} "
            f"{num(r['eager_img_s'], ',.0f'):>10} {num(r['graphed_img_s'], ',.0f'):>10} "
            f"{num(c, ',.0f'):>10} {num(a / b if b else None, '.2f'):>6} "
            f"{num(a / c if c else None, '.1f'):>6}")


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
        prog="benchmark.py",
        description="Training images/s of each model: the project's path (a), the step alone "
                    "on one batch, eager and as one CUDA graph (b: the graphed one where there "
                    "is CUDA), and the course's PIL + DataLoader path (c).")
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
    parser.add_argument("--no-progress", action="store_true",
                        help="no tqdm progress bar while decoding --data-dir")
    add_debug_arg(parser)
    return parser


def main(args: argparse.Namespace) -> dict:
    json_path = Path(args.json)
    if json_path.is_dir():
        raise UserError(f"--json {json_path} is a folder; give a file name", exit_code=2)
    ensure_output_dir(json_path.parent)
    hardware = resolve_hardware(args)
    device = hardware.device
    jobs = task_jobs()
    n_needed = (args.warmup + args.steps) * max(jobs[m].batch_size for m in args.models)
    if args.data_dir is not None:
        arrays = read_cifar10(args.data_dir, progress=not args.no_progress)
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
               "date": datetime.now(UTC).isoformat(timespec="seconds"),
               "precision": hardware.precision, "channels_last": hardware.channels_last,
               "cuda_graphs": hardware.cuda_graphs, "compile": args.compile,
               "steps": args.steps, "warmup": args.warmup,
               "naive_num_workers": None if args.no_naive else args.num_workers,
               "data": data, "cpu": cpu_name(), "gpu": env.get("gpu"),
               "environment": env, "command": getattr(args, "command", None)}
    print(f"device {device} ({env.get('gpu') or results['cpu']}), {results['precision']}, "
          f"channels_last {'on' if hardware.channels_last else 'off'}"
          + (", CUDA graphs" if hardware.cuda_graphs else "")
          + (", torch.compile" if args.compile else "")
          + f", torch {torch.__version__}, {env['threads']} threads; {args.warmup} warm-up + "
          f"{args.steps} timed steps per way; images: {data['kind']}")
    print("images/s; a/b = pipeline over the graphed step (the eager one without CUDA), "
          "a/c = pipeline over naive")
    print(COLUMNS)
    start = time.perf_counter()
    for name in args.models:
        result = benchmark_model(jobs[name], images, labels, args, hardware)
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
