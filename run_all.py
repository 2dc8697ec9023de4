"""The whole assignment from one command: Task 1, Task 2, Task 3 and its figures, REPORT.md.

    python run_all.py                      # CIFAR-10 and ResNet18's weights downloaded
    python run_all.py --data-dir PATH --weights PATH/resnet18-f37072fd.pth
    python run_all.py --resume             # after an interruption: continue where it stopped

Runs, in order, each task script through its own parser and main() (in this process; the
scripts' flags, defaults and outputs are theirs, see docs/GUIDE.md, "The tasks and their
flags"):

    1. Task 1        python task1_lenet.py
    2. Task 2        python task2_models.py --recipe 10-epoch   (Model 2.1 and Model 2.2
                                                    with this project's 10-epoch recipe)
    3. Task 2        python task2_models.py        (the same two with the report's recipes)
    4. Task 3        python task3_resnet.py         } when ResNet18's ImageNet weights
    5. Task 3e-3g    python task3_visualisation.py  } are there (see below)
    6. report        python report.py --results DIR --output-dir DIR --own-runs
                                                    -> REPORT.md of these runs, in DIR

ResNet18's ImageNet weights are made sure of before Task 1, so that a failed download is
known before hours of training: --weights PATH (the file must be there and hold ResNet18's
weights, else run_all stops with one line), else torchvision's hub cache
($TORCH_HOME/hub/checkpoints/resnet18-f37072fd.pth, default ~/.cache/torch/hub/checkpoints/),
downloading the file into it with torchvision's own hash check when it is not there. Offline,
it says in one line that Task 3 is skipped and how to give the weights, and runs the rest;
--skip-task3 skips it on purpose.

Before each step it prints a header with the equivalent command of the task script, after it
the time it took; at the end a summary (report.py's table): each model's test accuracy beside
the original report's (a run trained on a --subset or for fewer epochs than its task's default
marked as a quick look), whether each Task 2 model meets the handout's 10-epoch bar, where the
figures and REPORT.md are, and the total time. Each run's JSON records its step's equivalent
command, so that it reproduces one step alone.

Interrupted (Ctrl-C saves the run in training; a disconnect or a kill loses at most one check
interval), `python run_all.py --resume` with the same flags continues the assignment: the
steps whose runs are finished are not run again, the interrupted one resumes from its last
check, the rest run. It reads the flags of the interrupted command from `run_all.json` in the
output folder and refuses others in one line.

Writes to --output-dir (default plots/, which git ignores: the committed evidence is in
results/) everything the task scripts write there (run JSONs, checkpoints, figures, tables),
run_all.json and REPORT.md. Only the flags given here are passed on, so each script keeps its
own defaults (per model in Task 2) otherwise.

Time: the sum of the tasks, minutes on a GPU, hours on a CPU (measured times of each task:
docs/GUIDE.md, "How long it takes"). `--subset 2000 --epochs 2` is a quick look at the whole
pipeline.

A user error in a step (bad --data-dir, unreadable weights, ...) stops run_all with one line
on stderr and exit status 1 (2 for usage errors): the steps after it would fail the same way.
"""
from __future__ import annotations

import argparse
import json
import re
import shlex
import time
from pathlib import Path

import report
import task1_lenet
import task2_models
import task3_resnet
import task3_visualisation
from reporting.cited import TASK_OUTPUT_RUNS, load_groups
from reporting.results import summary_rows, summary_text, ten_epoch_line
from training.checks import format_duration
from training.cli import (
    ArgumentParser,
    add_best_model_arg,
    add_data_arg,
    add_debug_arg,
    add_device_args,
    positive_int,
    run_cli,
)
from training.errors import Interrupted, UserError
from training.jobs import seed_runs
from training.recipes import RECIPES, TASK2, TASK2_10EP
from training.record import Run, quick_look_note
from training.storage import atomic_write_json, ensure_output_dir, find_runs

DEFAULT_OUTPUT_DIR = "plots"
RECORD = "run_all.json"  # the command and flags of the assignment in its output folder
# run_all's flags that --resume may change: how it runs, not what it makes.
RESUMABLE = ("resume", "no_progress", "debug", "device", "eval_batch_size", "command")

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
                       ("weights", "--weights"), ("no_progress", "--no-progress")]
BEST = [("best_model", "--best-model")]
REPORT_FLAGS = [("debug", "--debug"), *BEST]  # and --results/--output-dir/--own-runs: main()

# key -> (header title, short name, module, script, flags it gets, the models it trains,
# the arguments it always gets)
STEPS = {
    "task1": ("Task 1: LeNet", "Task 1", task1_lenet, "task1_lenet.py", TRAINING_FLAGS,
              [RECIPES["lenet"]], []),
    "task2_10ep": ("Task 2: Model 2.1 and Model 2.2, 10-epoch recipe", "Task 2 (10-epoch)",
                   task2_models, "task2_models.py", TRAINING_FLAGS + BEST, TASK2_10EP,
                   ["--recipe", "10-epoch"]),
    "task2": ("Task 2: Model 2.1 and Model 2.2, the report's recipes", "Task 2 (report)",
              task2_models, "task2_models.py", TRAINING_FLAGS + BEST, TASK2, []),
    "task3": ("Task 3: ResNet18 transfer learning", "Task 3", task3_resnet, "task3_resnet.py",
              TRAINING_FLAGS + [("weights", "--weights"), *BEST], [RECIPES["resnet18"]], []),
    "task3_visualisation": ("Task 3e-3g: what ResNet18 sees", "Task 3e-3g",
                            task3_visualisation, "task3_visualisation.py", VISUALISATION_FLAGS,
                            [], []),
    "report": ("Report: REPORT.md from the saved runs", "report", report, "report.py",
               REPORT_FLAGS, [], []),
}


def get_args_parser() -> argparse.ArgumentParser:
    names = {"lenet": "Task 1", "resnet18": "Task 3"}
    epochs = ", ".join(f"{names.get(r.key, r.label)} {r.epochs}" for r in RECIPES.values())
    parser = ArgumentParser(
        prog="run_all.py",
        description=(
            "Run the whole assignment, each step through its script's own main():\n"
            "  1. Task 1      task1_lenet.py\n"
            "  2. Task 2      task2_models.py --recipe 10-epoch (Model 2.1 and 2.2, this\n"
            "                 project's recipe for the handout's 10-epoch bar)\n"
            "  3. Task 2      task2_models.py (the same two with the report's recipes)\n"
            "  4. Task 3      task3_resnet.py         } when ResNet18's ImageNet weights\n"
            "  5. Task 3e-3g  task3_visualisation.py  } are there\n"
            "  6. report      report.py --own-runs: REPORT.md of the runs just made\n"
            "then print each model's test accuracy beside the original report's.\n\n"
            "Only the flags given here are passed on: each script keeps its own defaults\n"
            "(per model in Task 2) otherwise. Everything goes to --output-dir.\n"
            "The weights are made sure of before Task 1: --weights (a missing or unreadable\n"
            f"file stops run_all), else {task3_resnet.IMAGENET_FILE} in torchvision's hub\n"
            "cache ($TORCH_HOME/hub/checkpoints/), downloaded into it when it is not there.\n"
            "Offline, Task 3 is skipped and one line of ours says how to give the weights.\n"
            "Interrupted? The same command with --resume continues the assignment.\n"
            "Time: minutes on a GPU, hours on a CPU (--subset 2000 --epochs 2: a quick look)."),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arg(parser)
    parser.add_argument("--output-dir", default=None, metavar="DIR",
                        help="where every run, figure, table and REPORT.md goes "
                             f"(default: {DEFAULT_OUTPUT_DIR})")
    parser.add_argument("--weights", default=None, metavar="PATH",
                        help="ResNet18 state dict for Task 3 and its figures, e.g. "
                             f"{task3_resnet.IMAGENET_FILE} from {task3_resnet.IMAGENET_URL} "
                             "(default: torchvision's hub cache, downloading into it)")
    parser.add_argument("--skip-task3", action="store_true",
                        help="do not run Task 3 and its figures (default: run them when the "
                             "weights are there or can be downloaded)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run_all in --output-dir with the same "
                             "flags: finished steps are not run again, the interrupted one "
                             "resumes from its last check")
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
    add_debug_arg(parser, "show tracebacks of errors (in every step too)")
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


def weights_found(args: argparse.Namespace) -> tuple[str, str]:
    """Why Task 3 cannot run: (the one line that says so, the summary's words for it), both
    "" when it can. Decided before any task: --weights is read (an unreadable file is a
    UserError here, not after hours of Tasks 1 and 2); else the hub cache's file, downloaded
    when absent."""
    if args.skip_task3:
        return "Task 3 skipped (--skip-task3)", "skipped (--skip-task3)"
    if args.weights is not None:
        task3_resnet.read_weights_file(args.weights)
        return "", ""
    try:
        task3_resnet.load_resnet18_weights(None, progress=not args.no_progress)
    except UserError as err:
        return (f"Task 3 skipped: {err}; --skip-task3 leaves Task 3 out without trying",
                "skipped: no ImageNet weights (see above)")
    return "", ""


# --------------------------------------------------------------------------- resuming
def recorded_flags(args: argparse.Namespace) -> dict:
    return {k: v for k, v in vars(args).items() if k not in RESUMABLE}


def check_resume(args: argparse.Namespace, out: Path) -> None:
    """--resume: the interrupted assignment's record is there and its flags are these."""
    path = out / RECORD
    if not path.is_file():
        raise UserError(f"--resume: no {RECORD} in {out}, so no run_all to continue there; "
                        "run without --resume (or give the --output-dir it wrote to)",
                        exit_code=2)
    try:
        old = json.loads(path.read_text())["args"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path} is not run_all's record; run without --resume") from None
    new = recorded_flags(args)
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        raise UserError("--resume with other flags than the interrupted run_all's ("
                        + ", ".join(f"--{k.replace('_', '-')} was {old.get(k)}" for k in changed)
                        + "); resume with the same flags or start again in a new --output-dir",
                        exit_code=2)


def step_runs(key: str, task_args: argparse.Namespace) -> list[Path]:
    """The run files a training step writes (every model and seed)."""
    out = Path(task_args.output_dir)
    return [out / f"{recipe.run_name}{getattr(task_args, 'run_suffix', '')}{suffix}.json"
            for recipe in STEPS[key][5] for _, suffix in seed_runs(task_args)]


def finished(paths: list[Path]) -> bool:
    def done(path: Path) -> bool:
        try:
            return Run.load(path).finished
        except UserError:
            return False
    return bool(paths) and all(done(p) for p in paths)


# --------------------------------------------------------------------------- the summary
def report_line(out: Path) -> str:
    """Which of REPORT.md, REPORT.tex and REPORT.pdf the report step left in `out`."""
    written = [out / name for name in ("REPORT.md", "REPORT.tex", "REPORT.pdf")
               if (out / name).is_file()]
    return ("report: " + ", ".join(map(str, written))
            + ("" if (out / "REPORT.pdf").is_file() else
               " (no REPORT.pdf: report.py's line above says why and how to make it)"))


def summarise(steps: dict, done: dict, out: Path, skipped: str) -> tuple[str, dict]:
    """The summary: report.py's table of the runs in `out` (what REPORT.md shows), fixed
    width, and its numbers. A quick look (a run on a --subset, or for fewer epochs than its
    task's default: `training.record.Run.quick_look`) says so in its row."""
    groups = load_groups(out, TASK_OUTPUT_RUNS)
    why = {RECIPES["resnet18"].run_name: skipped} if skipped else {}
    rows = summary_rows(TASK_OUTPUT_RUNS, groups, why)
    lines = ["", ("Summary: test accuracy of the best checkpoint, ours beside the original "
             "2019 report's (original CIFAR-10)")]
    if any(quick_look_note(g) for g in groups.values() if g):
        lines.append("(quick look: trained on a --subset or for fewer epochs than the task's "
                     "default; not comparable with the report)")
    lines += summary_text(rows)
    lines += ["", "The handout's bar for Task 2 (at least 75 % test accuracy within 10 epochs):"]
    lines += [ten_epoch_line(recipe.label, groups[recipe.run_name])
              for recipe in TASK2_10EP + TASK2 if groups.get(recipe.run_name)]
    for key in ("task1", "task2_10ep", "task2", "task3"):
        if key in done:
            lines += _other_runs_notes(steps[key]["task_args"], done[key]["result"], out)
    lines += ["", "steps: " + ", ".join(f"{steps[k]['name']} {format_duration(d['seconds'])}"
                                        for k, d in done.items())]
    lines += [f"figures, tables and runs: {out}/", report_line(out)]
    numbers = {recipe.label: {"ours": [r.accuracy("test") for r in
                                       groups.get(recipe.run_name, []) if r.finished] or None,
                              "report": recipe.original_test_accuracy,
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


# --------------------------------------------------------------------------- the steps
def plan(args: argparse.Namespace, keys: list[str], out: Path) -> dict:
    """Every step's arguments, parsed before anything runs (a flag a script refuses is found
    now, not after hours of training); with --resume a step that has checkpoints resumes."""
    steps = {}
    for key in keys:
        title, name, module, script, flags, _, fixed = STEPS[key]
        argv = fixed + script_argv(args, flags, module.get_args_parser(), script)
        if key == "report":
            # The runs just made, under the task scripts' own names (not the cited results/);
            # REPORT.md beside them.
            argv = ["--results", str(out), "--output-dir", str(out), "--own-runs", *argv]
        task_args = module.get_args_parser().parse_args(argv)
        runs = step_runs(key, task_args) if STEPS[key][5] else []
        if args.resume and any((p.parent / f"{p.name[:-5]}.pt").is_file() for p in runs):
            argv.append("--resume")
            task_args = module.get_args_parser().parse_args(argv)
        steps[key] = {"title": title, "name": name, "module": module, "script": script,
                      "argv": argv, "task_args": task_args, "runs": runs}
    return steps


def main(args: argparse.Namespace) -> dict:
    start = time.monotonic()
    out = Path(args.output_dir or DEFAULT_OUTPUT_DIR)
    if args.skip_task3 and args.weights:
        raise UserError("--skip-task3 and --weights: give one of them", exit_code=2)
    if args.resume:
        check_resume(args, out)
    ensure_output_dir(out)
    skip_line, skipped = weights_found(args)
    keys = ["task1", "task2_10ep", "task2"] + \
        ([] if skipped else ["task3", "task3_visualisation"]) + ["report"]
    steps = plan(args, keys, out)
    atomic_write_json(out / RECORD, {"command": args.command, "args": recorded_flags(args)})
    print(f"run_all: {len(keys)} steps ({', '.join(steps[k]['name'] for k in keys)}), "
          f"output in {out}/" + (" (resuming)" if args.resume else ""), flush=True)
    if skip_line:
        print(skip_line, flush=True)
    done = {}
    for i, key in enumerate(keys, 1):
        step = steps[key]
        command = shlex.join(["python", step["script"], *step["argv"]])
        if args.resume and finished(step["runs"]):
            print(f"\n[{i}/{len(keys)}] {step['title']}: finished before "
                  f"({', '.join(p.name for p in step['runs'])}), not run again", flush=True)
            continue
        print(f"\n[{i}/{len(keys)}] {step['title']} ({command})", flush=True)
        t0 = time.monotonic()
        try:
            result = step["module"].main(step["task_args"])  # it records its own command
        except BaseException as err:
            print(f"[{i}/{len(keys)}] {step['name']} stopped after "
                  f"{format_duration(time.monotonic() - t0)}", flush=True)
            if isinstance(err, KeyboardInterrupt):  # outside a training loop's own Ctrl-C
                raise Interrupted(f"interrupted in {step['name']}; the steps before it are "
                                  f"saved in {out}") from None
            raise
        seconds = time.monotonic() - t0
        done[key] = {"command": command, "seconds": seconds, "result": result}
        print(f"[{i}/{len(keys)}] {step['name']} done in {format_duration(seconds)} "
              f"({format_duration(time.monotonic() - start)} so far)", flush=True)

    text, numbers = summarise(steps, done, out, skipped)
    total = time.monotonic() - start
    print(text)
    print(f"total time {format_duration(total)}")
    return {"steps": {k: {"command": d["command"], "seconds": d["seconds"]}
                      for k, d in done.items()},
            "task3_skipped": bool(skipped), "accuracy": numbers,
            "report": str(out / "REPORT.md"), "total_s": total}


if __name__ == "__main__":
    run_cli(main, get_args_parser())
