"""Task 3a-3d: transfer learning with torchvision's ResNet18 on CIFAR-10 (TDT4265 2019,
Assignment 3).

ResNet18 with ImageNet weights, its 1000-class `fc` replaced by 512->10, Adam (learning rate
5e-4), batch size 32, no augmentation, early stopping on validation loss after 4 checks
without a new best, through the same Trainer as tasks 1 and 2. The default is the 2019
course recipe: only `layer4` and `fc` train (the frozen stages keep their BatchNorm in eval()),
and each 32x32 image is upsampled x8 (nearest) to 256x256 on the device, CIFAR normalisation.
`--input imagenet` (224x224 bilinear, ImageNet mean/std) and `--train-stages all` are the
modern alternatives. Writes task3_resnet18.json/.pt, task3_accuracy.png and task3_loss.png
(3b, 3c) and, when Task 2's runs are beside it, task3d_loss_comparison.png (3d: ResNet18 beside
the best Task 2 model, the one with the best validation accuracy unless --best-model says).

    python task3_resnet.py --data-dir PATH --weights resnet18-f37072fd.pth   # a GPU is advised
    python task3_resnet.py --plot-only                                        # redraw only

Titles and the run config say which weights were used; a run from other weights (a random
initialisation) is never shown as transfer learning. Without the ImageNet file the error says
where to get it and where to put it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn
from torchvision.models import ResNet18_Weights
from torchvision.models.resnet import BasicBlock, ResNet

from reporting.figures import draw_task3, draw_task3d
from reporting.words import COMPARISON_FIGURE
from trainer import run_jobs
from training.cli import ArgumentParser, add_best_model_arg, add_common_args, positive_int, run_cli
from training.errors import UserError
from training.jobs import Job
from training.recipes import RECIPES, TASK2, task2_label
from training.record import Run, weights_label
from training.storage import file_sha256, find_runs

RECIPE = RECIPES["resnet18"]  # Adam, lr 5e-4, batch 32, 5 epochs, early stop: val loss, 4 checks
RUN_NAME = RECIPE.run_name

# Input recipes. The resize runs in the batch transform, on the device.
INPUTS = {
    "course": {"normalization": "cifar", "image_size": 256, "resize_mode": "nearest"},
    "imagenet": {"normalization": "imagenet", "image_size": 224, "resize_mode": "bilinear"},
}
# The stages of torchvision's ResNet, in forward order (maxpool/avgpool have no parameters).
STAGES = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc")
DEFAULT_STAGES = ("layer4", "fc")  # the course recipe

IMAGENET_WEIGHTS = ResNet18_Weights.IMAGENET1K_V1
IMAGENET_URL = IMAGENET_WEIGHTS.url
IMAGENET_FILE = IMAGENET_URL.rsplit("/", 1)[-1]  # resnet18-f37072fd.pth
# torch.hub names its files by the first hex digits of their SHA-256.
IMAGENET_SHA256_PREFIX = IMAGENET_FILE.rsplit("-", 1)[-1].split(".")[0]


# --------------------------------------------------------------------------- weights
def hub_checkpoint_dir() -> Path:
    """Where torchvision keeps downloaded weights: $TORCH_HOME/hub/checkpoints/."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def missing_weights_message(reason: str) -> str:
    return (f"no ImageNet weights for ResNet18 ({reason}). Download {IMAGENET_FILE} from "
            f"{IMAGENET_URL} and put it in {hub_checkpoint_dir()}/ ($TORCH_HOME/hub/checkpoints/, "
            "default ~/.cache/torch/hub/checkpoints/), or pass --weights PATH")


def _reference_shapes() -> dict[str, tuple[int, ...]]:
    """Key -> shape of torchvision's 1000-class ResNet18 state dict (built on 'meta': no memory)."""
    with torch.device("meta"):
        reference = ResNet(BasicBlock, [2, 2, 2, 2])
    return {k: tuple(v.shape) for k, v in reference.state_dict().items()
            if not k.endswith("num_batches_tracked")}


def check_resnet18_state_dict(state: dict, where: str) -> dict[str, torch.Tensor]:
    """The state dict of torchvision's ResNet18 in `state` (plain, or under "state_dict" or
    "model", with or without DataParallel's "module." prefix); a UserError naming the first
    missing, unexpected or mis-shaped key otherwise."""
    not_resnet = f"{where} is not a torchvision ResNet18 state dict"
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state or \
            not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise UserError(f"{not_resnet}: it does not hold a dict of named tensors")
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    reference = _reference_shapes()
    missing = [k for k in reference if k not in state]
    unexpected = [k for k in state if k not in reference and not k.endswith("num_batches_tracked")]
    if missing:
        raise UserError(f"{not_resnet}: it lacks {missing[0]!r}"
                        + (f" and {len(missing) - 1} more key(s)" if len(missing) > 1 else ""))
    if unexpected:
        raise UserError(f"{not_resnet}: it has {unexpected[0]!r}, which ResNet18 does not"
                        + (f" (and {len(unexpected) - 1} more key(s))"
                           if len(unexpected) > 1 else "")
                        + "; a deeper ResNet?")
    for key, shape in reference.items():
        if tuple(state[key].shape) != shape:
            raise UserError(f"{not_resnet}: {key!r} has shape {tuple(state[key].shape)}, "
                            f"ResNet18's is {shape}"
                            + ("; a fine-tuned checkpoint is read with --checkpoint, not --weights"
                               if key.startswith("fc.") else ""))
    return state


def read_weights_file(path: Path | str, hint: str = "") -> tuple[dict, str]:
    """(validated ResNet18 state dict, SHA-256) of a weights file, loaded weights_only."""
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise UserError(f"--weights {path} {what}; give the path of {IMAGENET_FILE} "
                        f"(from {IMAGENET_URL})")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    # truncated, not a pickle/zip, or objects weights_only refuses
    except Exception as err:  # noqa: BLE001
        hint = hint or f"; download {IMAGENET_FILE} again from {IMAGENET_URL}"
        raise UserError(f"{path} is not a readable PyTorch weights file "
                        f"({type(err).__name__}){hint}") from None
    return check_resnet18_state_dict(state, str(path)), file_sha256(path)


def load_resnet18_weights(path: Path | str | None = None,
                          progress: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
    """torchvision's 1000-class ResNet18 state dict and a description of where it came from.

    `path` None: torchvision's hub cache, downloading IMAGENET1K_V1 into it if absent (needs
    network); a one-line UserError saying what to download and where to put it otherwise.
    The description (stored in the run config): weights (the file, or "torchvision
    IMAGENET1K_V1"), weights_file, weights_sha256, and pretrained_source: "imagenet" when
    the file's SHA-256 is that of torchvision's IMAGENET1K_V1 file, else "unverified" (any
    other file: random stand-in weights in the tests, for example).
    """
    if path is not None:
        state, digest = read_weights_file(path)
        file, name = Path(path).expanduser(), str(path)
    else:
        file, name = hub_checkpoint_dir() / IMAGENET_FILE, "torchvision IMAGENET1K_V1"
        if not file.is_file():
            try:
                # torchvision's own download into the hub cache: torch.hub checks the file's
                # SHA-256 prefix against its name and keeps it only when it is complete.
                IMAGENET_WEIGHTS.get_state_dict(progress=progress and sys.stderr.isatty(),
                                                check_hash=True)
            except Exception as err:  # noqa: BLE001 - no network, proxy, disk full, hash mismatch
                text = str(getattr(err, "reason", None) or err)
                reason = text.splitlines()[0] if text else ""
                raise UserError(missing_weights_message(
                    f"not in the torch hub cache, and the download failed: "
                    f"{type(err).__name__}{': ' + reason if reason else ''}")) from None
        state, digest = read_weights_file(
            file, hint=f"; delete it and download {IMAGENET_FILE} again from {IMAGENET_URL}")
    source = "imagenet" if digest.startswith(IMAGENET_SHA256_PREFIX) else "unverified"
    return state, {"weights": name, "weights_file": str(file), "weights_sha256": digest,
                   "pretrained_source": source}


# --------------------------------------------------------------------------- model
def parse_stages(text: str) -> tuple[str, ...]:
    """argparse type of --train-stages: 'all' or a comma list of STAGES, in forward order."""
    if text.strip() == "all":
        return STAGES
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in STAGES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown stage(s) {', '.join(unknown) or repr(text)}: use 'all' or a comma list "
            f"of {', '.join(STAGES)}")
    return tuple(s for s in STAGES if s in names)


class ResNet18Transfer(ResNet):
    """torchvision's ResNet18 (same layers, same state-dict keys) with a 512->`num_classes`
    head, trained only in `train_stages`.

    Input N×3×H×W normalised images (H = W = 256 in the course recipe, 224 in ImageNet's),
    output N×10 logits. `imagenet_state` is a 1000-class ResNet18 state dict
    (load_resnet18_weights), loaded before `fc` is replaced and never re-initialised after;
    None leaves torchvision's random initialisation (e.g. to load a fine-tuned checkpoint).
    Frozen stages have requires_grad=False and their BatchNorm layers stay in eval() mode,
    also after `model.train()`, so their running statistics never move.
    """

    def __init__(self, imagenet_state: dict | None = None,
                 train_stages: tuple[str, ...] = DEFAULT_STAGES, num_classes: int = 10):
        super().__init__(BasicBlock, [2, 2, 2, 2])  # = torchvision.models.resnet18()
        if imagenet_state is not None:
            self.load_state_dict(imagenet_state)
        self.fc = nn.Linear(self.fc.in_features, num_classes)
        self.train_stages: tuple[str, ...] = ()
        self.set_train_stages(train_stages)

    def set_train_stages(self, stages) -> None:
        unknown = set(stages) - set(STAGES)
        if unknown:
            raise ValueError(f"unknown stage(s) {sorted(unknown)}; choose from {STAGES}")
        self.train_stages = tuple(s for s in STAGES if s in stages)
        for name in STAGES:
            for p in getattr(self, name).parameters():
                p.requires_grad_(name in self.train_stages)
        self.train(self.training)

    def train(self, mode: bool = True):
        super().train(mode)
        for name in STAGES:
            if name not in self.train_stages:
                for module in getattr(self, name).modules():
                    if isinstance(module, nn.modules.batchnorm._BatchNorm):
                        module.eval()  # frozen: normalise with the pretrained statistics
        return self


def check_image_size(size: int | None) -> None:
    """--image-size: the network's input side, at least CIFAR-10's 32 (None: the recipe's)."""
    if size is not None and size < 32:
        raise UserError(f"--image-size {size} is too small: use at least 32", exit_code=2)


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


# --------------------------------------------------------------------------- figures
def write_figures(out: Path, run_name: str = RUN_NAME, note_missing: bool = True,
                  best: str | None = None) -> list[Path]:
    """task3_accuracy/loss.png and, when a Task 2 run is in `out`, the Task 3d comparison
    with the best Task 2 model (`best`: the label --best-model chose)."""
    run_jsons = find_runs(out, run_name)  # one run, or one per seed
    if not run_jsons:
        raise UserError(f"no ResNet18 run at {out / (run_name + '.json')}; train it first: "
                        "python task3_resnet.py")
    resnet = [Run.load(p) for p in run_jsons]
    paths = draw_task3(resnet, out)
    task2 = {r.label: [Run.load(p) for p in find_runs(out, r.run_name)] for r in TASK2}
    task2 = {label: runs for label, runs in task2.items() if runs}
    if best is not None and best not in task2:
        raise UserError(f"--best-model: {best} has no run in {out}; train it first "
                        "(python task2_models.py), or leave --best-model out", exit_code=2)
    if task2:
        paths.append(draw_task3d(task2, resnet, out, best))
    elif note_missing:
        print(f"note: no Task 2 run in {out}, so {COMPARISON_FIGURE} was not drawn; make it "
              f"with `python task2_models.py --output-dir {out}`, then "
              f"`python task3_resnet.py --plot-only --output-dir {out}`")
    return paths


# --------------------------------------------------------------------------- command line
def get_args_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="task3_resnet.py",
        description="Task 3: fine-tune ImageNet ResNet18 on CIFAR-10 (course recipe by default: "
                    "train layer4 and fc, x8 nearest upsampling to 256, CIFAR normalisation) "
                    "and draw its curves and the Task 3d comparison with the best Task 2 model.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default=None, metavar="PATH",
                        help="a torchvision ResNet18 state dict file, e.g. "
                             f"{IMAGENET_FILE} from {IMAGENET_URL} (default: torchvision's hub "
                             "cache $TORCH_HOME/hub/checkpoints/, downloading when there is "
                             "network)")
    parser.add_argument("--input", choices=sorted(INPUTS), default="course",
                        help="course: x8 nearest upsampling to 256x256 and CIFAR-10 mean/std "
                             "(the 2019 recipe reproduced here); imagenet: 224x224 bilinear and "
                             "ImageNet mean/std, what the weights were trained on "
                             "(default: course)")
    parser.add_argument("--image-size", type=positive_int, default=None, metavar="N",
                        help="side of the network's input, overriding --input's (256 or 224); "
                             "smaller is faster, for quick checks only (default: --input's)")
    parser.add_argument("--train-stages", type=parse_stages, default=DEFAULT_STAGES,
                        metavar="LIST",
                        help="'all' (full fine-tuning) or a comma list of "
                             f"{','.join(STAGES)}; the others are frozen, their BatchNorm "
                             "statistics included (default: layer4,fc, the course recipe)")
    parser.add_argument("--plot-only", action="store_true",
                        help="redraw the figures from the saved JSON in --output-dir; no training")
    add_common_args(parser, RECIPE)
    add_best_model_arg(parser, "3d (task3d_loss_comparison.png, beside ResNet18)")
    return parser


def jobs(args: argparse.Namespace, imagenet_state: dict | None,
         weights_info: dict | None = None) -> list[Job]:
    """ResNet18 from `imagenet_state` (None: random weights, as the benchmark times it)."""
    recipe = INPUTS[args.input]
    image_size = args.image_size or recipe["image_size"]
    model = ResNet18Transfer(None, args.train_stages)  # to count what trains
    return [Job.of(RECIPE, lambda: ResNet18Transfer(imagenet_state, args.train_stages), args,
                   config={"trainable_parameters": sum(p.numel() for p in
                                                       trainable_parameters(model)),
                           "train_stages": list(model.train_stages), "input": args.input,
                           "image_size": image_size, **(weights_info or {})},
                   data={"normalization": recipe["normalization"], "image_size": image_size,
                         "resize_mode": recipe["resize_mode"]})]


def main(args: argparse.Namespace) -> dict[str, dict]:
    out = Path(args.output_dir)
    best = task2_label(args.best_model)
    if args.plot_only:
        paths = write_figures(out, args.run_name, best=best)
        print("wrote " + ", ".join(map(str, paths)))
        return {}
    check_image_size(args.image_size)
    if best is not None and not any(find_runs(out, r.run_name) for r in TASK2
                                    if r.label == best):
        raise UserError(f"--best-model: {best} has no run in {out} to compare with; train it "
                        "first (python task2_models.py), or leave --best-model out",
                        exit_code=2)
    imagenet_state, weights_info = load_resnet18_weights(args.weights,
                                                         progress=not args.no_progress)
    job, = jobs(args, imagenet_state, weights_info)
    config = job.config
    print(f"ResNet18 from {weights_info['weights']} (sha256 "
          f"{weights_info['weights_sha256'][:12]}): {weights_label(weights_info)}")
    print(f"training {','.join(config['train_stages'])}: {config['trainable_parameters']:,} "
          f"parameters; input {args.input}: {config['image_size']}x{config['image_size']} "
          f"{job.data['resize_mode']}, {job.data['normalization']} normalisation")
    runs = run_jobs(args, [job], on_check=lambda _run: write_figures(out, args.run_name,
                                                                       note_missing=False))
    paths = write_figures(out, args.run_name, best=best)
    print("wrote " + ", ".join(map(str, [*find_runs(out, args.run_name), *paths])))
    return runs


if __name__ == "__main__":
    run_cli(main, get_args_parser())
