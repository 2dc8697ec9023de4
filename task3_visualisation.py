"""Task 3e-3g: what ResNet18 sees, for one CIFAR-10 training image (TDT4265 2019, Assignment 3).

Reads saved weights, never trains. The model is the fine-tuned ResNet18 of task3_resnet.py
(key "best_model" of its checkpoint) when there is one in --output-dir, else ResNet18 with the
ImageNet weights (--weights PATH or torchvision's hub cache); it prints which checkpoint it
used and why, and every title says which model, and which weights it started from. The
checkpoint is found by itself: task3_resnet18.pt of a single run, or the first seed's
task3_resnet18_seed<k>.pt of a `--seeds` run (whichever of the two was written last, as the
report reads them); `--seed N` picks the run of seed N (task3_resnet18_seedN.pt, or
task3_resnet18.pt when that run had seed N); `--checkpoint PATH` names one. The image is CIFAR-10 training
image --image-index (default 0: a frog in the original CIFAR-10 order, an airplane in the JPEG
copy, whose files are sorted by class), prepared exactly as in training (--input, by default
the checkpoint's: x8 nearest to 256x256 and CIFAR normalisation for the course recipe).
Writes to --output-dir (default plots/):

    task3e_first_layer_activations.png  the image and --num-maps maps of the first convolution
                                        (conv1's output, before bn1 and ReLU: 1x64x128x128 at 256)
    task3f_last_layer_activations.png   the image and --num-maps maps of the last convolution
                                        stage (layer4's output, after its final ReLU, what the
                                        average pooling sees: 1x512x8x8 at 256, 7x7 at 224)
    task3g_first_layer_filters.png      the 64 conv1 filters (3x7x7) as RGB tiles, each scaled
                                        to [0, 1] on its own (unscaled weights would clip)

These are the layers the 2019 handout pointed to: `model.conv1(image)`, and the image passed
through every child but the last two (avgpool, fc). Each map is drawn with its own colour
range; a blank tile is a map that is zero everywhere (common after layer4's ReLU).

Command (seconds on a CPU):

    python task3_visualisation.py --data-dir PATH
"""
from __future__ import annotations

import argparse
import math
import textwrap
from pathlib import Path

import torch
from torch import nn
from torchvision.utils import make_grid

from dataloaders import read_cifar10
from reporting.figures import pyplot, save_figure
from task3_resnet import INPUTS, RUN_NAME, ResNet18Transfer, check_image_size, load_resnet18_weights
from training.batches import CLASSES, NORMALIZATIONS, Normalize
from training.cli import ArgumentParser, add_debug_arg, add_device_arg, non_negative_int, run_cli
from training.errors import UserError
from training.record import Run, weights_label
from training.storage import ensure_output_dir, find_runs, read_checkpoint
from utils import get_device

FIGURES = {"3e": "task3e_first_layer_activations.png", "3f": "task3f_last_layer_activations.png",
           "3g": "task3g_first_layer_filters.png"}


def num_maps_type(text: str) -> int:
    """argparse type of --num-maps: 10 to 64 (the task asks for at least 10; conv1 has 64)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an int") from None
    if not 10 <= value <= 64:
        raise argparse.ArgumentTypeError(f"{text} is out of range: must be 10 to 64")
    return value


def _recorded_seed(run_json: Path) -> int | None:
    try:
        return Run.load(run_json).seed
    except UserError:
        return None


def find_checkpoint(args, out: Path) -> tuple[Path | None, str]:
    """(the fine-tuned checkpoint to show, why that one), or (None, why there is none).

    --checkpoint PATH, else with --seed N the run of seed N (task3_resnet18_seedN.pt, or
    task3_resnet18.pt of a single run with seed N: a UserError when neither is there), else
    the run group written last (training.storage.find_runs: the single run, or the first seed of a
    --seeds run)."""
    if args.checkpoint == "none":
        return None, "--checkpoint none"
    if args.checkpoint is not None:
        return Path(args.checkpoint), "--checkpoint"
    single = out / f"{RUN_NAME}.pt"
    if args.seed is not None:
        seeded = out / f"{RUN_NAME}_seed{args.seed}.pt"
        if seeded.is_file():
            return seeded, f"seed {args.seed} of a --seeds run (--seed {args.seed})"
        if single.is_file() and _recorded_seed(single.with_suffix(".json")) == args.seed:
            return single, f"the single run, which had seed {args.seed} (--seed {args.seed})"
        raise UserError(f"--seed {args.seed}: no fine-tuned checkpoint of that seed in {out} "
                        f"({seeded.name}, or {single.name} of a run with --seed {args.seed}); "
                        "leave --seed out to take the latest run, or train that seed with "
                        "task3_resnet.py")
    for run_json in find_runs(out, RUN_NAME):
        path = run_json.with_suffix(".pt")
        if path.is_file():
            if path == single:
                return path, "the single run"
            seed = path.stem.rsplit("_seed", 1)[1]
            return path, (f"seed {seed}, the first of the --seeds run written last "
                          "(--seed N shows another)")
    if single.is_file():  # a checkpoint without its JSON
        return single, "the single run"
    return None, f"no fine-tuned checkpoint ({RUN_NAME}.pt or {RUN_NAME}_seed<k>.pt) in {out}"


def load_model(args, out: Path, found: tuple[Path | None, str] | None = None
               ) -> tuple[nn.Module, dict, str]:
    """(model in eval mode, the config it came with, a description for titles).

    The fine-tuned checkpoint `find_checkpoint` finds (or `found`, what it found) when there
    is one, else the ImageNet model.
    """
    path, why = found or find_checkpoint(args, out)
    if path is not None:
        ckpt = read_checkpoint(path)
        config = ckpt.get("config") or {}
        if config.get("model") != "resnet18":
            raise UserError(f"{path} is a checkpoint of {config.get('model')!r}, not of "
                            "task3_resnet.py's ResNet18; give --checkpoint the task3_resnet18.pt")
        state, which = ckpt.get("best_model"), "best checkpoint"
        if state is None:  # interrupted before its first check
            state, which = ckpt.get("model"), "last weights (no check yet)"
        model = ResNet18Transfer(None, tuple(config.get("train_stages", ())))
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as err:
            raise UserError(f"{path} does not hold ResNet18 weights for 10 classes "
                            f"({str(err).splitlines()[0]}); train again with "
                            "task3_resnet.py") from None
        final = ckpt.get("trainer", {}).get("final") or {}
        test = final.get("test", {}).get("accuracy")
        label = (f"Fine-tuned ResNet18 ({path.name}, {which}"
                 + (f", test acc {test:.3f}" if test is not None else "")
                 + f"), started from {weights_label(config)}")
        print(f"fine-tuned checkpoint: {path} ({why})")
        return model.eval(), config, label
    state, info = load_resnet18_weights(args.weights, progress=not args.no_progress)
    model = ResNet18Transfer(None, ())
    model.fc = nn.Linear(512, 1000)  # the ImageNet head, so that the file loads as it is
    model.load_state_dict(state)
    print(f"{why}: using the ImageNet model")
    return model.eval(), info, f"ResNet18 not fine-tuned, {weights_label(info)}"


def activations(model: nn.Module, image: torch.Tensor) -> dict[str, torch.Tensor]:
    """Outputs of conv1 (before bn1/ReLU) and of layer4 for one normalised 1×3×H×W image."""
    captured = {}

    def keep(name):
        def hook(_module, _inputs, output):
            captured[name] = output.detach().float().cpu()
        return hook

    hooks = [getattr(model, name).register_forward_hook(keep(name)) for name in ("conv1", "layer4")]
    try:
        with torch.inference_mode():
            model(image)
    finally:
        for hook in hooks:
            hook.remove()
    return captured


def plot_maps(image: torch.Tensor, maps: torch.Tensor, caption: str, title: str,
              path: Path) -> Path:
    """The 32x32 image on the left, the first len(maps) maps (C×H×W) in a grid on the right."""
    plt = pyplot()
    n = len(maps)
    cols = 4 if n <= 16 else 8
    rows = math.ceil(n / cols)
    fig = plt.figure(figsize=(2.2 + 1.6 * cols, 0.9 + 1.6 * max(rows, 2)), layout="constrained")
    grid = fig.add_gridspec(rows, cols + 2)
    ax = fig.add_subplot(grid[:, :2])
    ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_title(caption, fontsize=8)
    ax.axis("off")
    for k in range(n):
        ax = fig.add_subplot(grid[k // cols, 2 + k % cols])
        ax.imshow(maps[k].numpy(), cmap="viridis", interpolation="nearest")
        ax.set_title(f"filter {k}", fontsize=7)
        ax.axis("off")
    fig.suptitle(textwrap.fill(title, 120), fontsize=9)
    return save_figure(fig, path)


def plot_filters(weight: torch.Tensor, title: str, path: Path) -> Path:
    """conv1 weights 64×3×7×7 as RGB tiles, each min-max scaled into [0, 1] on its own."""
    plt = pyplot()
    grid = make_grid(weight.detach().float().cpu(), nrow=8, padding=1, normalize=True,
                     scale_each=True, pad_value=1.0)
    fig, ax = plt.subplots(figsize=(6, 6.6), layout="constrained")
    ax.imshow(grid.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_title(textwrap.fill(title, 90), fontsize=8)
    ax.axis("off")
    return save_figure(fig, path)


def get_args_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="task3_visualisation.py",
        description="Task 3e-3g: first- and last-layer activations of ResNet18 for one CIFAR-10 "
                    "training image, and its first-layer filters (from saved weights; no "
                    "training).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=None, metavar="PATH",
                        help="fine-tuned checkpoint of task3_resnet.py; 'none' uses the ImageNet "
                             "model (default: found in --output-dir: task3_resnet18.pt of a "
                             "single run, or the first seed's task3_resnet18_seed<k>.pt of a "
                             "--seeds run, whichever was written last; else the ImageNet model)")
    parser.add_argument("--seed", type=int, default=None, metavar="N",
                        help="show the fine-tuned run of seed N: task3_resnet18_seedN.pt of a "
                             "--seeds run, or task3_resnet18.pt when that run had --seed N "
                             "(default: the one found as --checkpoint says)")
    parser.add_argument("--weights", default=None, metavar="PATH",
                        help="ImageNet ResNet18 state dict (resnet18-f37072fd.pth), used when "
                             "there is no fine-tuned checkpoint (default: torchvision's hub cache)")
    parser.add_argument("--data-dir", default=None, metavar="PATH",
                        help="CIFAR-10 source, as for the training scripts (default: download "
                             "with torchvision into data/)")
    parser.add_argument("--image-index", type=non_negative_int, default=0, metavar="N",
                        help="which CIFAR-10 training image, in the source's order (default: 0)")
    parser.add_argument("--input", choices=sorted(INPUTS), default=None,
                        help="how the image is prepared: course (x8 nearest to 256, CIFAR "
                             "normalisation) or imagenet (224 bilinear, ImageNet mean/std) "
                             "(default: the checkpoint's, else course)")
    parser.add_argument("--image-size", type=int, default=None, metavar="N",
                        help="side of the network's input, overriding --input's (default: the "
                             "checkpoint's, else --input's)")
    parser.add_argument("--num-maps", type=num_maps_type, default=16,
                        help="activation maps shown per layer, 10 to 64 (default: 16)")
    parser.add_argument("--output-dir", default="plots", metavar="DIR",
                        help="where the figures go, and where the checkpoint is looked for "
                             "(default: plots)")
    add_device_arg(parser)
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    add_debug_arg(parser)
    return parser


def main(args: argparse.Namespace) -> list[Path]:
    out = ensure_output_dir(args.output_dir)
    device = get_device(args.device)
    found = find_checkpoint(args, out)  # a --seed that was not trained: said before decoding
    arrays = read_cifar10(args.data_dir, progress=not args.no_progress)
    n_images = len(arrays.train_labels)
    if args.image_index >= n_images:
        raise UserError(f"--image-index {args.image_index} is out of range: the training split "
                        f"has {n_images} images (0 to {n_images - 1})", exit_code=2)
    image = arrays.train_images[args.image_index]
    class_name = CLASSES[int(arrays.train_labels[args.image_index])]
    model, config, model_label = load_model(args, out, found)
    input_name = args.input or config.get("input") or "course"
    recipe = INPUTS[input_name]
    size = args.image_size or (config.get("image_size") if input_name == config.get("input")
                               else None) or recipe["image_size"]
    check_image_size(size)
    mean, std = NORMALIZATIONS[recipe["normalization"]]
    transform = Normalize(mean, std, device,
                          resize=None if size == 32 else (size, recipe["resize_mode"]))
    model = model.to(device)
    acts = activations(model, transform(image[None].to(device)))
    first, last = acts["conv1"][0], acts["layer4"][0]
    print(f"model: {model_label}")
    print(f"image: CIFAR-10 train #{args.image_index} ({class_name}), input {input_name} "
          f"{size}x{size}; conv1 output 1x{'x'.join(map(str, first.shape))}, "
          f"layer4 output 1x{'x'.join(map(str, last.shape))}")
    n = args.num_maps
    caption = (f"CIFAR-10 train #{args.image_index}: {class_name}\n32x32 as stored; the\n"
               f"network sees {size}x{size} ({input_name})")
    paths = [
        plot_maps(image, first[:n], caption,
                  f"Task 3e: first convolution (conv1 output, before bn1/ReLU), maps 0-{n - 1} "
                  f"of {first.shape[0]} at {first.shape[1]}x{first.shape[2]}, each in its own "
                  f"colour range. {model_label}", out / FIGURES["3e"]),
        plot_maps(image, last[:n], caption,
                  f"Task 3f: last convolution stage (layer4 output, after ReLU), maps 0-{n - 1} "
                  f"of {last.shape[0]} at {last.shape[1]}x{last.shape[2]}, each in its own "
                  f"colour range. {model_label}", out / FIGURES["3f"]),
        plot_filters(model.conv1.weight,
                     f"Task 3g: the 64 conv1 filters (3x7x7 as RGB), each min-max scaled to "
                     f"[0, 1]. {model_label}", out / FIGURES["3g"]),
    ]
    print("wrote " + ", ".join(map(str, paths)))
    return paths


if __name__ == "__main__":
    run_cli(main, get_args_parser())
