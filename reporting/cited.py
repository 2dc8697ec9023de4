"""Which runs the report cites and why: the committed evidence (`CITED`, each with the command
that made it) or the task scripts' own runs (`TASK_OUTPUT_RUNS`); finding and reading their
files, the commands they recorded and the checks against the cited ones, and the cells that
say where, on what and when each ran.
"""
from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from reporting.words import DATA_HOW, KNOWN_SOURCES
from training.checks import format_duration
from training.recipes import RECIPES, TASK2, by_run_name
from training.record import Run, RunGroup, format_mean_std
from training.storage import find_runs

LENET, MODEL21, MODEL22, RESNET = (RECIPES[k] for k in ("lenet", "model21", "model22",
                                                        "resnet18"))
MODEL21_10EP, MODEL22_10EP = RECIPES["model21-10ep"], RECIPES["model22-10ep"]


# ================================================================================================
# THE CITED RUNS: the one place that says which runs REPORT.md cites. Edit here.
#   run name -> label; files: glob patterns relative to --results (every file they match;
#   several files are seeds of one model, in the order of their seeds); command: what made
#   them, with DATA for the data source and S for the seed; also: other commands the same
#   runs recorded (a flag then typed that is the default now); missing: why the run is
#   absent, when it cannot be made here.
# The default command of each model (docs/GUIDE.md, "Stopping"), as its run files record it.
# ================================================================================================
CITED = {
    LENET.run_name: {
        "label": LENET.title,
        "files": ["cpu-2026-12-01/task1_lenet_seed*.json"],
        "command": "python task1_lenet.py --seeds 3 --data-dir DATA --no-progress",
    },
    MODEL21.run_name: {
        "label": MODEL21.title,
        "files": ["h200-2026-11-27/model21-40ep/task2_model21_seed*.json"],
        "command": "python task2_models.py --model 2.1 --epochs 40 --patience 0 --seed S "
                   "--data-dir DATA --no-progress  # one run per seed S = 0, 1, 2, each in a folder of its own",
    },
    MODEL22.run_name: {
        "label": MODEL22.title,
        "files": ["cpu-2026-11-27/task2_model22.json", "cpu-2026-12-01/seed*/task2_model22.json"],
        "command": "python task2_models.py --model 2.2 --seed S --data-dir DATA --no-progress  "
                   "# one run per seed S = 0, 1, 2, each in a folder of its own",
        "also": ["python task2_models.py --model 2.2 --patience 0 --data-dir DATA --no-progress"],
    },
    # Model 2.1's seed 2 ran beside seeds 0 and 1, as a process of its own
    MODEL21_10EP.run_name: {
        "label": MODEL21_10EP.title,
        "files": [f"cpu-2026-12-06/{MODEL21_10EP.run_name}_seed*.json",
                  f"cpu-2026-12-06/seed2/{MODEL21_10EP.run_name}.json"],
        "command": "python task2_models.py --recipe 10-epoch --model 2.1 --seeds 3 "
                   "--data-dir DATA --no-progress  # seeds 0 and 1; seed 2 ran alone, --seed 2, in seed2/",
        "also": [("python task2_models.py --recipe 10-epoch --model 2.1 --seed 2 "
                  "--data-dir DATA --no-progress")],
    },
    MODEL22_10EP.run_name: {
        "label": MODEL22_10EP.title,
        "files": [f"cpu-2026-12-06/{MODEL22_10EP.run_name}_seed*.json"],
        "command": "python task2_models.py --recipe 10-epoch --model 2.2 --seeds 3 "
                   "--data-dir DATA --no-progress",
    },
    RESNET.run_name: {
        "label": RESNET.title,
        "files": [],
        "command": "python task3_resnet.py --data-dir DATA",
        "missing": "the ImageNet weights cannot be had on the machines these runs were made "
                   "on: they have no network to download them, and the GPU run of 2026-11-27 "
                   "had no ImageNet file (it used a random stand-in, "
                   "h200-2026-11-27/README.md); on a machine with network the command "
                   "downloads them",
    },
}


# `--own-runs`: a task script's output folder (plots/ unless --output-dir said otherwise),
# each run under the name the script gives it (one file, or one per seed:
# training.storage.find_runs).
# `command` is what makes a missing run; a run that is there shows the command it recorded.
TASK_OUTPUT_RUNS = {r.run_name: {"label": r.title, "run_name": r.run_name, "command": r.command}
                    for r in RECIPES.values()}


# Task 2e's experiments (task2_experiments.py): the committed ones, folder by folder (a
# folder not there yet is skipped; a variant's seed is in one folder only), or an output
# folder's own (`<output-dir>/experiments/`).
EXPERIMENTS = ["cpu-2026-12-02/experiments", "cpu-2026-12-05/experiments",
               "cpu-2026-12-06/experiments"]
EXPERIMENTS_COMMAND = "python task2_experiments.py --data-dir DATA"


def experiments_folders(results: Path, cited: dict, existing: bool = True) -> list[Path]:
    """The folders of Task 2e's runs: EXPERIMENTS under `results`, or the output folder's
    `experiments/` for the task scripts' own runs; with `existing`, those that are there."""
    names = ["experiments"] if cited is TASK_OUTPUT_RUNS else EXPERIMENTS
    return [results / name for name in names if not existing or (results / name).is_dir()]


# Where each mode reads and writes by default.
DEFAULT_RESULTS = {False: "results", True: "plots"}


EVIDENCE_DIR = "results/report"  # the committed REPORT.md and the figures README shows


# --------------------------------------------------------------------------- finding runs
def _seed_order(path: Path) -> tuple:
    m = re.search(r"_seed(\d+)$", path.name.removesuffix(".json"))
    return (str(path.parent), int(m.group(1)) if m else -1, path.name)


def cited_files(results: Path, spec: dict) -> list[Path]:
    """A spec's run files: the `training.storage.find_runs` group of its `run_name` (own runs),
    else every
    file its `files` patterns match (in numeric order of the seeds their names give)."""
    if "run_name" in spec:
        return find_runs(results, spec["run_name"])
    found = {p for pattern in spec.get("files", []) for p in results.glob(pattern) if p.is_file()}
    return sorted(found, key=_seed_order)


def load_groups(results: Path, cited: dict) -> dict[str, RunGroup]:
    """{run name: its RunGroup}: the runs of each spec (a file of the wrong shape is a
    UserError naming it); several seeds of cited files in the order of the seeds they
    recorded."""
    groups = {}
    for name, spec in cited.items():
        runs = [Run.load(p) for p in cited_files(results, spec)]
        if "files" in spec:
            runs.sort(key=lambda run: (run.seed or 0, _seed_order(run.path)))
        groups[name] = RunGroup(name, runs)
    return groups


def run_label(results: Path, path: Path) -> str:
    """A run file's path inside the results folder, without .json."""
    try:
        return path.relative_to(results).as_posix().removesuffix(".json")
    except ValueError:
        return path.name.removesuffix(".json")


def run_date(results: Path, run: Run) -> str:
    """When a run ran: its config's start time when it recorded one; else the date in the
    name of a machine-and-date folder holding it (h200-2026-11-27/, as results/ is laid out:
    git gives committed files no dates of their own); else when its JSON was last written
    (at its last check or its end)."""
    started, path = run.started, run.path
    if started:
        return f"{started[:10]} {started[11:16]} UTC".strip()
    try:
        parts = path.relative_to(results).parts[:-1]
    except ValueError:
        parts = ()
    for part in parts:
        m = re.search(r"\d{4}-\d{2}-\d{2}", part)
        if m:
            return f"{m.group(0)} (`{part}/`)"
    try:
        written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return "-"
    return f"{written:%Y-%m-%d %H:%M} UTC (JSON written)"


def dates_cell(dates: list[str]) -> str:
    dates = sorted(set(dates))
    return dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"


# --------------------------------------------------------------------------- commands
def shown_command(command: str) -> str:
    """A recorded command as shown: the --data-dir value (a path on the machine that ran it)
    becomes DATA."""
    shown = re.sub(r"(--data-dir)(=|\s+)(\"[^\"]*\"|'[^']*'|\S+)",
                   lambda m: f"{m.group(1)}{'=' if m.group(2) == '=' else ' '}DATA", command)
    return " ".join(shown.split())


def _normalised(command: str) -> tuple[list[str], list[tuple[str, str]]]:
    """A command for comparison: (script and positional arguments, sorted (flag, value)
    pairs), without comment, interpreter, --output-dir and --resume (where the files went, and
    whether a checkpoint was looked for first, change no run); the seed as S."""
    tokens = shown_command(command.split("#", 1)[0]).replace("=", " ").split()
    tokens = tokens[1:] if tokens and tokens[0].startswith("python") else tokens
    positional = [t for i, t in enumerate(tokens)
                  if not t.startswith("--") and (i == 0 or not tokens[i - 1].startswith("--"))]
    flags = [(t, tokens[i + 1] if i + 1 < len(tokens) and not tokens[i + 1].startswith("--")
              else "") for i, t in enumerate(tokens) if t.startswith("--")]
    return positional, sorted((f, "S" if f == "--seed" else v) for f, v in flags
                              if f not in ("--output-dir", "--resume"))


def command_differs(spec: dict, run: Run) -> str | None:
    """The run's recorded command (as shown) when it is not the cited one (nor one the spec
    also accepts), else None."""
    recorded = run.command
    cited = [spec["command"], *spec.get("also", [])]
    if not recorded or _normalised(recorded) in [_normalised(c) for c in cited]:
        return None
    return shown_command(recorded)


def report_command(results: Path, out: Path, own_runs: bool, best: str | None = None) -> str:
    """The command that writes this REPORT.md again (the first line of the file)."""
    choice = next((r.choice for r in TASK2 if r.label == best), None)
    return shlex.join(["python", "report.py", "--results", str(results), "--output-dir",
                       str(out), *(["--own-runs"] if own_runs else []),
                       *(["--best-model", choice] if choice else [])])


def recorded_commands(group: Sequence[Run]) -> str:
    """The commands a group's runs recorded (seeds of one command: one), as shown."""
    commands = dict.fromkeys(shown_command(r.command or "?") for r in group)
    return "; ".join(f"`{c}`" for c in commands)


def command_cell(spec: dict, group: Sequence[Run]) -> str:
    """A spec that cites files shows the command that made them; one that names a task
    script's run shows the commands its runs recorded."""
    return f"`{spec['command']}`" if "files" in spec else recorded_commands(group)


# --------------------------------------------------------------------------- cells
def is_imagenet(group: Sequence[Run]) -> bool:
    return bool(group) and all(r.pretrained_source == "imagenet" for r in group)


def shown_groups(groups: dict[str, RunGroup]) -> dict[str, RunGroup]:
    """The groups a report shows numbers of: every run that is there, ResNet18 only when it
    started from ImageNet weights."""
    return {n: g for n, g in groups.items() if g and (n != RESNET.run_name or is_imagenet(g))}


def short(name: str) -> str:
    recipe = by_run_name(name)
    return recipe.label if recipe else name


def acc_cell(group: RunGroup, split: str = "test") -> str:
    cell = format_mean_std(group.values(split), digits=4)
    return cell + (f" ({len(group)} seeds)" if len(group) > 1 and cell != "-" else "")


def no_final(group: RunGroup) -> str | None:
    """'status running at epoch 25.5' for the runs of a group without a final evaluation."""
    if not group.unfinished:
        return None
    return "; ".join(f"status {r.status} at epoch {r.last_epoch:.1f} of {r.epochs or '?'}"
                     for r in group.unfinished)


def source_key(data: dict) -> str | None:
    """The key of the run's data cache (cifar10-<key>.npz): made from the source's kind and
    content (an archive's SHA-256; a folder's file names, sizes and times)."""
    m = re.search(r"cifar10-([0-9a-f]+)\.npz$", str(data.get("cache") or ""))
    return m.group(1) if m else None


def source_name(data: dict) -> str:
    """What a run trained on, from its config's `data`: a known source by its key, else its
    kind and the file or folder name (never the path, which is the machine's)."""
    key = source_key(data)
    if key in KNOWN_SOURCES:
        return KNOWN_SOURCES[key]
    kind, name = data.get("kind"), Path(str(data.get("path") or "?")).name
    return {"archive": f"the archive `{name}`",
            "image-folder": f"the image-folder tree `{name}/`",
            "cifar-10-batches-py": f"CIFAR-10 in torchvision's python format (`{name}/`)",
            }.get(kind, f"a source of kind {kind or '?'} (`{name}`)")


def data_cell(run: Run) -> str:
    """The runs table's data column: the source, its key, and the images it kept."""
    data = run.data
    if not data:
        return "?"
    key = source_key(data)
    cell = source_name(data).removeprefix("the ") + (f", key `{key[:12]}`" if key else "")
    if data.get("n_train") is not None:
        cell += (f"; {data['n_train']:,} train / {data.get('n_val', 0):,} val / "
                 f"{data.get('n_test', 0):,} test images")
    return cell


def data_line(groups: dict[str, Sequence[Run]]) -> str:
    """REPORT.md's data sentence, from the configs of every run shown: the one source they
    share, or each source with the models trained on it."""
    sources: dict[tuple, tuple[str, list[str]]] = {}
    for name, group in groups.items():
        for run in group:
            data = run.data
            key = source_key(data)
            text = source_name(data) if data else "an unrecorded source"
            if key:
                text += f" ({data.get('kind')}, source key `{key[:12]}`)"
            models = sources.setdefault((data.get("kind"), key or data.get("path")),
                                        (text, []))[1]
            if short(name) not in models:
                models.append(short(name))
    if not sources:
        return "**Data**: no run to read it from. " + DATA_HOW
    if len(sources) == 1:
        text, _ = next(iter(sources.values()))
        return f"**Data**: every run shown trained on {text}. " + DATA_HOW
    parts = "; ".join(f"{text} for {', '.join(models)}" for text, models in sources.values())
    return (f"**Data: mixed sources**: {parts}. Numbers from different data are not "
            "comparable with each other. " + DATA_HOW)


def wall_cell(group: Sequence[Run]) -> str:
    """Training time of a run, or of each seed ('1m54s-1m56s each' when they differ)."""
    seconds = sorted(r.train_seconds or 0 for r in group)
    if len(group) == 1:
        return format_duration(seconds[0])
    low, high = format_duration(seconds[0]), format_duration(seconds[-1])
    return f"{low} each" if low == high else f"{low}-{high} each"


def provenance(group: Sequence[Run]) -> tuple[str, str, str, str]:
    """(device, precision, torch version, training time) of a run group, from its first
    run (the seeds of one command share them)."""
    first = group[0]
    return first.device, first.precision, first.torch_version, wall_cell(group)


# --------------------------------------------------------------------------- figures
def task2_groups(shown: dict[str, RunGroup]) -> dict[str, RunGroup]:
    """{label: its runs} of the Task 2 recipes with runs: the report's two, then this
    project's 10-epoch two."""
    return {r.label: shown[r.run_name] for r in (*TASK2, MODEL21_10EP, MODEL22_10EP)
            if shown.get(r.run_name)}
