"""The whole assignment from one command: Task 1, Task 2, Task 3 and its figures, REPORT.md.

    python run_all.py                      # CIFAR-10 downloaded by torchvision into data/
    python run_all.py --data-dir PATH --weights PATH/resnet18-f37072fd.pth

Runs, in order, each task script through its own parser and main() (in this process; the
scripts' flags, defaults and outputs are theirs, see docs/GUIDE.md, "The tasks and their
flags"):

    1. Task 1        python task1_lenet.py
    2. Task 2        python task2_models.py        (Model 2.1 and Model 2.2)
    3. Task 3        python task3_resnet.py         } only when ResNet18's ImageNet weights
    4. Task 3e-3g    python task3_visualisation.py  } are found (see below)
    5. report        python report.py --results DIR --output-dir DIR --own-runs
                                                    -> REPORT.md of these runs, in DIR

The weights are found when --weights PATH is given (the file must be there and hold
ResNet18's weights: else run_all stops with one line before any task), or when torchvision's
hub cache holds resnet18-f37072fd.pth ($TORCH_HOME/hub/checkpoints/, default
~/.cache/torch/hub/checkpoints/). run_all never downloads them: without --weights and without
the cached file it says in one line that Task 3 is skipped and how to give the weights, and
runs the rest.

Before each step it prints a header with the equivalent command of the task script, after it
the time it took; at the end a summary: each model's test accuracy beside the original
report's (a run trained on a --subset or for fewer epochs than its task's default marked as a
quick look), where the figures and REPORT.md are, and the total time. Each run's JSON records
that equivalent command, so that it reproduces one step alone; a step interrupted with
Ctrl-C prints it with --resume.

Writes to --output-dir (default plots/, which git ignores: the committed evidence is in
results/) everything the task scripts write there (run JSONs, checkpoints, figures, tables)
and REPORT.md. Only the flags given here are passed on, so
each script keeps its own defaults (per model in Task 2) otherwise.

Time: the sum of the tasks, minutes on a GPU, hours on a CPU (measured times of each task:
README.md, "Results"). `--subset N --epochs 1` is a quick look at the whole pipeline.

A user error in a step (bad --data-dir, unreadable weights, ...) stops run_all with one line
on stderr and exit status 1 (2 for usage errors): the steps after it would fail the same way.
"""
from __future__ import annotations

import argparse
import re
import shlex
import time
from pathlib import Path

import report
import task1_lenet
import task2_models
import task3_resnet
import task3_visualisation
from cli import (ArgumentParser, add_best_model_arg, add_data_arg, add_device_args,
                 positive_int, run_cli)
from plots import quick_look_note, ten_epoch_line
from recipes import RECIPES, TASK2
from runs import find_runs, load_run
from utils import format_duration

DEFAULT_OUTPUT_DIR = "plots"

# run_all's pass-through flags: (attribute, flag). A flag goes to a step only when the user
# gave it and the step's parser knows it.
TRAINING_FLAGS = [("data_dir", "--data-dir"), ("device", "--device"),
                  ("precision", "--precision"), ("channels_last", "--channels-last"),
                  ("cuda_graphs", "--cuda-graphs"), ("subset", "--subset"), ("seed", "--seed"),
                  ("seeds", "--seeds"), ("epochs", "--epochs"),
                  ("eval_batch_size", "--eval-batch-size"), ("no_test_curve", "--no-test-curve"),
                  ("output_dir", "--output-dir"),
                  ("no_progress", "--no-progress"), ("debug", "--debug")]
VISUALISATION_FLAGS = [("data_dir", "--data-dir"), ("device", "--device"),
                       ("output_dir", "--output-dir"), ("seed", "--seed"), ("debug", "--debug"),
                       ("weights", "--weights")]
BEST = [("best_model", "--best-model")]
REPORT_FLAGS = [("debug", "--debug"), *BEST]  # and --results/--output-dir/--own-runs: main()

# key -> (header title, short name, module, script, flags it gets)
STEPS = {
    "task1": ("Task 1: LeNet", "Task 1", task1_lenet, "task1_lenet.py", TRAINING_FLAGS),
    "task2": ("Task 2: Model 2.1 and Model 2.2", "Task 2", task2_models, "task2_models.py",
              TRAINING_FLAGS + BEST),
    "task3": ("Task 3: ResNet18 transfer learning", "Task 3", task3_resnet, "task3_resnet.py",
              TRAINING_FLAGS + [("weights", "--weights"), *BEST]),
    "task3_visualisation": ("Task 3e-3g: what ResNet18 sees", "Task 3e-3g",
                            task3_visualisation, "task3_visualisation.py", VISUALISATION_FLAGS),
    "report": ("Report: REPORT.md from the saved runs", "report", report, "report.py",
               REPORT_FLAGS),
}


def get_args_parser() -> argparse.ArgumentParser:
    epochs = ", ".join(f"{'Task 1' if r.key == 'lenet' else 'Task 3' if r.key == 'resnet18' else r.label} "
                       f"{r.epochs}" for r in RECIPES.values())
    parser = ArgumentParser(
        prog="run_all.py",
        description=(
            "Run the whole assignment, each step through its script's own main():\n"
            "  1. Task 1      task1_lenet.py\n"
            "  2. Task 2      task2_models.py (Model 2.1 and Model 2.2)\n"
            "  3. Task 3      task3_resnet.py         } when ResNet18's ImageNet weights\n"
            "  4. Task 3e-3g  task3_visualisation.py  } are found\n"
            "  5. report      report.py --own-runs: REPORT.md of the runs just made\n"
            "then print each model's test accuracy beside the original report's.\n\n"
            "Only the flags given here are passed on: each script keeps its own defaults\n"
            "(per model in Task 2) otherwise. Everything goes to --output-dir.\n"
            "The weights are found with --weights (a missing or unreadable file stops\n"
            f"run_all before any task), or as {task3_resnet.IMAGENET_FILE} in torchvision's\n"
            "hub cache ($TORCH_HOME/hub/checkpoints/). run_all never downloads them: without\n"
            "--weights and without the cached file it skips Task 3, says how to give them,\n"
            "and runs the rest.\n"
            "Time: minutes on a GPU, hours on a CPU (--subset N --epochs 1: a quick look)."),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arg(parser)
    parser.add_argument("--output-dir", default=None, metavar="DIR",
                        help="where every run, figure, table and REPORT.md goes "
                             f"(default: {DEFAULT_OUTPUT_DIR})")
    parser.add_argument("--weights", default=None, metavar="PATH",
                        help="ResNet18 state dict for Task 3 and its figures, e.g. "
                             f"{task3_resnet.IMAGENET_FILE} from {task3_resnet.IMAGENET_URL} "
                             "(default: torchvision's hub cache; Task 3 is skipped when it "
                             "is not there)")
    parser.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                        help="maximum number of epochs of every task, for quick looks "
                             f"(default: each task's own: {epochs})")
    parser.add_argument("--subset", type=positive_int, default=None, metavar="N",
                        help="use at most N images of each split in every task, for a quick "
                             "look (default: all)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the split, initialisation and batch order "
                             "(default: the scripts', 0)")
    parser.add_argument("--seeds", type=positive_int, default=None, metavar="N",
                        help="train every model N times, seeds --seed, --seed+1, ...; the "
                             "summary gives mean ± std (default: the scripts', 1)")
    parser.add_argument("--eval-batch-size", type=positive_int, default=None, metavar="N",
                        help="batch size of every evaluation; lower it after an out-of-memory "
                             "error while evaluating (default: the scripts', 500, ResNet18 200)")
    add_device_args(parser)  # the task scripts' own definitions; passed on only when given
    parser.set_defaults(device=None, precision=None, channels_last=None, cuda_graphs=None)
    add_best_model_arg(parser, "2c, 2d and 3d")
    parser.set_defaults(best_model=None)
    parser.add_argument("--no-test-curve", action="store_true",
                        help="do not measure the test split at every check (faster; the "
                             "handout's figures then lack their test curves)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks of errors (in every step too)")
    return parser


def script_argv(args: argparse.Namespace, flags, parser: argparse.ArgumentParser,
                script: str) -> list[str]:
    """The step's command-line arguments: the flags the user gave that its parser knows."""
    known = set(vars(parser.parse_known_args([])[0]))  # the step parser's destinations
    argv = []
    for dest, flag in flags:
        value = getattr(args, dest)
        if value is None or value is False:
            continue
        if dest not in known:
            print(f"note: {script} has no {flag}; not passed to it", flush=True)
            continue
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def weights_found(args: argparse.Namespace) -> tuple[bool, str]:
    """(whether Task 3 can run, the one line that says why not). Never downloads.

    An unreadable --weights file is a UserError here, before hours of Tasks 1 and 2."""
    if args.weights is not None:
        task3_resnet.read_weights_file(args.weights)
        return True, ""
    if (task3_resnet.hub_checkpoint_dir() / task3_resnet.IMAGENET_FILE).is_file():
        return True, ""
    reason = "not given with --weights and not in the torch hub cache; run_all.py never downloads"
    return False, f"Task 3 skipped: {task3_resnet.missing_weights_message(reason)}"


def summarise(steps: dict, done: dict, out: Path, skip_line: str) -> tuple[str, dict]:
    """The summary: report.py's table of the runs in `out` (what REPORT.md shows), fixed
    width, and its numbers. A quick look (a run on a --subset, or for fewer epochs than its
    task's default: plots.quick_look) says so in its row."""
    loaded = report.load_groups(out, report.TASK_OUTPUT_RUNS)
    groups = {name: [run for _, run in pairs] for name, pairs in loaded.items()}
    why = {RECIPES["resnet18"].run_name: "skipped: no ImageNet weights (see above)"} \
        if skip_line else {}
    rows = report.summary_rows(report.TASK_OUTPUT_RUNS, groups, why)
    lines = ["", "Summary: test accuracy of the best checkpoint, ours beside the original "
             "2019 report's (original CIFAR-10)"]
    if any(quick_look_note(g) for g in groups.values() if g):
        lines.append("(quick look: trained on a --subset or for fewer epochs than the task's "
                     "default; not comparable with the report)")
    lines += report.summary_text(rows)
    lines += ["", "The handout's bar for Task 2 (at least 75 % test accuracy within 10 epochs):"]
    lines += [ten_epoch_line(recipe.label, groups[recipe.run_name]) for recipe in TASK2
              if groups.get(recipe.run_name)]
    for key in ("task1", "task2", "task3"):
        if key in done:
            lines += _other_runs_notes(steps[key]["task_args"], done[key]["result"], out)
    lines += ["", "steps: " + ", ".join(f"{steps[k]['name']} {format_duration(d['seconds'])}"
                                        for k, d in done.items())]
    lines += [f"figures, tables and runs: {out}/", f"report: {out / 'REPORT.md'}"]
    numbers = {recipe.label: {"ours": [r["final"]["test"]["accuracy"] for r in
                                       groups.get(recipe.run_name, []) if r.get("final")] or None,
                              "report": recipe.original["test"]["accuracy"],
                              "quick_look": quick_look_note(groups.get(recipe.run_name, []))}
               for recipe in RECIPES.values()}
    return "\n".join(lines), numbers


def _other_runs_notes(task_args: argparse.Namespace, result, out: Path) -> list[str]:
    """A note for each model whose runs just made are not all that REPORT.md shows (the
    folder held other runs of it)."""
    made = list(result) if isinstance(result, dict) else []
    notes = []
    for recipe in RECIPES.values():
        name = recipe.run_name + getattr(task_args, "run_suffix", "")
        mine = [out / f"{n}.json" for n in made
                if n == name or re.fullmatch(re.escape(name) + r"_seed\d+", n)]
        shown = find_runs(out, name)  # what report.py reads
        if mine and sorted(shown) != sorted(mine):
            notes.append(f"note: {out}/ also holds other {recipe.label} runs; REPORT.md shows "
                         f"{', '.join(p.name for p in shown)} (use an empty --output-dir to "
                         "keep runs apart)")
    return notes


def main(args: argparse.Namespace) -> dict:
    start = time.monotonic()
    out = Path(args.output_dir or DEFAULT_OUTPUT_DIR)
    found, skip_line = weights_found(args)
    keys = ["task1", "task2"] + (["task3", "task3_visualisation"] if found else []) + ["report"]

    # Every step's arguments are parsed before anything runs: a flag a script refuses is
    # found now, not after hours of training.
    steps = {}
    for key in keys:
        title, name, module, script, flags = STEPS[key]
        parser = module.get_args_parser()
        argv = script_argv(args, flags, parser, script)
        if key == "report":
            # The runs just made, under the task scripts' own names (not the cited results/);
            # REPORT.md beside them.
            argv = ["--results", str(out), "--output-dir", str(out), "--own-runs", *argv]
        steps[key] = {"title": title, "name": name, "module": module, "script": script,
                      "argv": argv}
    for step in steps.values():
        step["task_args"] = step["module"].get_args_parser().parse_args(step["argv"])

    print(f"run_all: {len(keys)} steps ({', '.join(steps[k]['name'] for k in keys)}), "
          f"output in {out}/", flush=True)
    if skip_line:
        print(skip_line, flush=True)
    done = {}
    for i, key in enumerate(keys, 1):
        step = steps[key]
        command = shlex.join(["python", step["script"], *step["argv"]])
        print(f"\n[{i}/{len(keys)}] {step['title']} ({command})", flush=True)
        t0 = time.monotonic()
        try:
            result = step["module"].main(step["task_args"])  # it records its own command
        except BaseException:
            print(f"[{i}/{len(keys)}] {step['name']} stopped after "
                  f"{format_duration(time.monotonic() - t0)}", flush=True)
            raise
        seconds = time.monotonic() - t0
        done[key] = {"command": command, "seconds": seconds, "result": result}
        print(f"[{i}/{len(keys)}] {step['name']} done in {format_duration(seconds)} "
              f"({format_duration(time.monotonic() - start)} so far)", flush=True)

    text, numbers = summarise(steps, done, out, skip_line)
    total = time.monotonic() - start
    print(text)
    print(f"total time {format_duration(total)}")
    return {"steps": {k: {"command": d["command"], "seconds": d["seconds"]}
                      for k, d in done.items()},
            "task3_skipped": not found, "accuracy": numbers,
            "report": str(out / "REPORT.md"), "total_s": total}


if __name__ == "__main__":
    run_cli(main, get_args_parser())
