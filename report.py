"""The report, with evidence: REPORT.md and every figure it embeds, drawn from run files alone
(nothing is trained or guessed), beside the original 2019 student report's numbers.

    python report.py                                  # results/ -> results/report/ (the evidence)
    python report.py --own-runs                       # your runs in plots/ -> plots/REPORT.md
    python report.py --own-runs --results DIR         # the runs a task script wrote to DIR

One layout, one code path. Which runs a REPORT.md shows is a table of specs, one per model:
by default `CITED` below (the committed evidence: glob patterns relative to --results, several
files being seeds of one model, and the command that made them, checked against the command
each run recorded); with `--own-runs` `TASK_OUTPUT_RUNS` (the runs the task scripts wrote
under their own names, each shown with the command it recorded). What else differs from run
to run is read from the run files: the data source (its kind and the data cache's key),
device, precision, torch version, date, command and training time, and whether a run was a
quick look (`--subset`, or fewer epochs than its task's default; such numbers are marked
wherever they stand beside the original report's). Its first line is the command that
rebuilds the file. A run that is missing is listed with the command that makes it, never
filled in. ResNet18 numbers count as transfer learning only when the run started from
torchvision's ImageNet file (checked by its SHA-256 when it was trained). Every other run
file under --results is listed under "Other runs".
"""
from __future__ import annotations

import argparse
import re
import shlex
from datetime import datetime, timezone
from pathlib import Path

from architecture import architecture_data, parameter_data
from cli import ArgumentParser, UserError, add_best_model_arg, run_cli
from dataloaders import CLASSES
from plots import (BAR_ACCURACY, COMPARISON_FIGURE, at_epoch, best_model, confusion_counts,
                   confused_data, draw_task1, draw_task2, draw_task3, draw_task3d, final_data,
                   format_mean_std, mean_std, per_class_data, plot_confusion, quick_look,
                   quick_look_note, ten_epoch_line, training_data, weights_file_name)
from recipes import RECIPES, TASK2, by_run_name, task2_label
from report_latex import compile_pdf, to_latex_text, to_markdown_text
from runrecord import Run
from runs import atomic_write_text, find_runs, load_run
from tables import Table
from task1_lenet import LeNet
from task2_models import model_of
from utils import format_duration

LENET, MODEL21, MODEL22, RESNET = (RECIPES[k] for k in ("lenet", "model21", "model22",
                                                        "resnet18"))

# ================================================================================================
# THE CITED RUNS: the one place that says which runs REPORT.md cites. Edit here.
#   run name -> label; files: glob patterns relative to --results (every file they match;
#   several files are seeds of one model, in the order of their seeds); command: what made
#   them, with DATA for the data source and S for the seed; also: other commands the same
#   runs recorded (a flag then typed that is the default now); missing: why the run is
#   absent, when it cannot be made here.
# The default command of each model (README, "Stopping"), as its run files record it.
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
                   "--data-dir DATA --no-progress  # S = 0, 1, 2, each in a folder of its own",
    },
    MODEL22.run_name: {
        "label": MODEL22.title,
        "files": ["cpu-2026-11-27/task2_model22.json", "cpu-2026-12-01/seed*/task2_model22.json"],
        "command": "python task2_models.py --model 2.2 --seed S --data-dir DATA --no-progress  "
                   "# S = 0, 1, 2, each in a folder of its own",
        "also": ["python task2_models.py --model 2.2 --patience 0 --data-dir DATA --no-progress"],
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
# each run under the name the script gives it (one file, or one per seed: runs.find_runs).
# `command` is what makes a missing run; a run that is there shows the command it recorded.
TASK_OUTPUT_RUNS = {r.run_name: {"label": r.title, "run_name": r.run_name, "command": r.command}
                    for r in RECIPES.values()}

# Where each mode reads and writes by default.
DEFAULT_RESULTS = {False: "results", True: "plots"}
EVIDENCE_DIR = "results/report"  # the committed REPORT.md and the figures README shows

# Data sources recognised by the key of their data cache (dataloaders.py: from the source's
# kind and content), as recorded in every run under results/.
KNOWN_SOURCES = {"e98dedfbb831d5137458": "the JPEG copy of CIFAR-10 (quality 75)"}
GUIDE_DATA = "docs/GUIDE.md, 'Offline: a local copy of the data'"

# Each figure REPORT.md embeds: the handout's item -> (caption, file).
FIGURES = {
    "1a": ("Task 1a: training, validation and test loss", "task1_loss.png"),
    "1b": ("Task 1b: training, validation and test accuracy", "task1_accuracy.png"),
    "2c": ("Task 2c: training, validation and test accuracy of the best model",
           "task2c_accuracy.png"),
    "2d": ("Task 2d: training, validation and test loss of the best model", "task2d_loss.png"),
    "2, accuracy": ("Task 2: accuracy of both models", "task2_accuracy.png"),
    "2, loss": ("Task 2: loss of both models", "task2_loss.png"),
    "3b": ("Task 3b: training, validation and test accuracy", "task3_accuracy.png"),
    "3c": ("Task 3c: training, validation and test loss", "task3_loss.png"),
    "3d": ("Task 3d: training and validation loss of ResNet18 and the best Task 2 model",
           COMPARISON_FIGURE),
    "3e": ("Task 3e: first-layer activations", "task3e_first_layer_activations.png"),
    "3f": ("Task 3f: last-layer activations", "task3f_last_layer_activations.png"),
    "3g": ("Task 3g: first-layer filters", "task3g_first_layer_filters.png"),
}
# Figures that need a saved model, not a run file (`python task3_visualisation.py`).
MODEL_FIGURES = {"task3e_first_layer_activations.png", "task3f_last_layer_activations.png",
                 "task3g_first_layer_filters.png"}
VISUALISATION = "python task3_visualisation.py --data-dir DATA"
ZIP_COMMAND = "python submission_zip.py"


# ================================================================================================
# PROSE: REPORT.md's fixed sentences ({...}: filled in from the run files).
# ================================================================================================
INTRO = ("Generated by `{command}` from the run files in `{results}/` alone (the same command "
         "rebuilds this file): every number below was read from a run's JSON. {which} "
         "'Original report': the 2019 student report's numbers (`original` of each model in "
         "recipes.py), measured on the original CIFAR-10. Each run's command, "
         "device, precision, torch, data and date are in "
         "[the runs table](#runs-command-device-date-time).")
WHICH = {
    True: "The runs are the task scripts' own, found under the names they give them ({names}: "
          "one file, or one per seed), each shown with the command it recorded.",
    False: "The runs it cites are named in `CITED` in report.py, each with the command that "
           "made it, checked against the command the run recorded.",
}
DATA_HOW = ("The source key is the data cache's, made from the source's content (an archive's "
            "SHA-256; a folder's file names, sizes and times): the same key, the same images. "
            f"Any source `--data-dir` accepts works ({GUIDE_DATA}).")
QUICK_LOOK = ("**Quick look.** {models} {were} trained on a `--subset` or for fewer epochs than "
              "the task's default: a check that the pipeline runs, not numbers to set beside "
              "the original report's (marked *quick look* wherever they stand beside them).")
TASK2_TRAIN_COLUMNS = ("The report's train columns are implausible (a 0.003 loss beside 0.909 "
                       "accuracy); ours are measured on the whole training split with the best "
                       "weights, in eval() mode.")
NOT_REPRODUCED = ("**Not reproduced yet.** No run from torchvision's ImageNet weights "
                  "(resnet18-f37072fd.pth) is among the results{why}. Figures from any other "
                  "weights are not transfer-learning results and are left out. Make it with "
                  "`{command}`, then `python task3_visualisation.py --data-dir DATA`; or "
                  "`python run_all.py --data-dir DATA`, which downloads the weights before "
                  "Task 1.")
NO_TEST_CURVE = ("**Test curves.** {runs} predate the test curve (checks recorded the test split "
                 "only from 2026-12-01): their figures draw training and validation and say "
                 "so in the legend; their final test numbers are measured as for every run.")
BEST_MODEL = ("**The best Task 2 model**, the one 2c, 2d and 3d show: {label} ({why}).")
BAR = ("The handout asks for two models that reach at least 75 % test accuracy within 10 "
       "epochs. Measured, from each run's test curve (the last check at or before epoch 10; "
       "the test split is recorded at every check and never chooses anything):")
BAR_REACHED_BY = ("Committed runs whose test curve does reach it within 10 epochs (other "
                  "recipes than the report's):")
FACTS = ("Measured facts a discussion can rest on (the discussion itself is yours to write):")
YOURS = "> **Yours to write: {what}**, from the measured facts above."
CHECKLIST = ("Every item of the 2019 handout (TDT4265 Assignment 3) and what in this file "
             "answers it; a missing one names the command that makes it.")
ITEMS = [  # (item, what the handout asks)
    ("code", "the code as one ZIP file (and the report as a PDF)"),
    ("1a", "training, validation and test loss in a single plot"),
    ("1b", "final training, validation and test accuracy"),
    ("1c", "the number of parameters (weights + biases)"),
    ("Task 2", "two models reaching at least 75 % test accuracy within 10 epochs"),
    ("2a", "each architecture as a table like Table 1, and every training detail"),
    ("2b", "final train loss and accuracy, validation loss and accuracy, test accuracy of "
           "both models in one table"),
    ("2c", "training, validation and test accuracy against epochs, best model"),
    ("2d", "training, validation and test loss against epochs, best model"),
    ("2e", "what improved most, what did not work, and why"),
    ("3a", "the hyperparameters (optimizer, batch size, learning rate, augmentation)"),
    ("3b", "training, validation and test accuracy against epochs"),
    ("3c", "training, validation and test loss against epochs"),
    ("3d", "training and validation loss of the transfer-learned model and your best model "
           "in one plot"),
    ("3e", "at least 10 activations of the first convolution layer, the image beside them"),
    ("3f", "at least 10 activations of the last convolution layer, the image beside them"),
    ("3g", "the weights of the first convolution layer"),
]
PER_CLASS = ("Per-class accuracy on the 10,000 test images (best checkpoint; several seeds: "
             "mean ± std). '-': the run file has no per-class data (runs made before the "
             "Trainer recorded it, or still running).")
CORRECTIONS = [
    "Curves are drawn against epochs (two checks an epoch), not the check index, so the "
    "report's warning that its x-axis was not epochs no longer applies.",
    "The reported figures are those of the best checkpoint (restored weights), evaluated on "
    "the whole training, validation and test splits in eval() mode.",
    "ResNet18 keeps its ImageNet weights: the report's run applied Xavier initialisation to "
    "every convolution after loading them (about 0.62 test).",
    "The report's Model 2.1 train loss of 0.003 beside 0.909 train accuracy is not possible "
    "for one model on one split; our table measures both on the same split.",
]
RUNS_INTRO = ("{who}; DATA stands for its `--data-dir` (a path on the machine that ran it). "
              "Status *quick look*: trained on a `--subset` or for fewer epochs than the task's "
              "default.")
RUNS_WHO = {True: "Each run with the command it recorded",
            False: "Each cited run with the command that made it"}
CHECK_CITATION = ("- **Check the citation**: `{run}` records the command `{recorded}`, which "
                  "differs from the cited one.")


# --------------------------------------------------------------------------- finding runs
def _seed_order(path: Path) -> tuple:
    m = re.search(r"_seed(\d+)$", path.name.removesuffix(".json"))
    return (str(path.parent), int(m.group(1)) if m else -1, path.name)


def cited_files(results: Path, spec: dict) -> list[Path]:
    """A spec's run files: the runs.find_runs group of its `run_name` (own runs), else every
    file its `files` patterns match (in numeric order of the seeds their names give)."""
    if "run_name" in spec:
        return find_runs(results, spec["run_name"])
    found = {p for pattern in spec.get("files", []) for p in results.glob(pattern) if p.is_file()}
    return sorted(found, key=_seed_order)


def load_groups(results: Path, cited: dict) -> dict[str, list[tuple[Path, dict]]]:
    """{run name: [(path, run)]}: the runs of each spec; several seeds of cited files in the
    order of the seeds they recorded."""
    groups = {}
    for name, spec in cited.items():
        pairs = [(p, Run.load(p).raw) for p in cited_files(results, spec)]  # shape checked
        if "files" in spec:
            pairs.sort(key=lambda pair: ((pair[1].get("config") or {}).get("seed", 0),
                                         _seed_order(pair[0])))
        groups[name] = pairs
    return groups


def _runs(loaded: dict) -> dict[str, list[dict]]:
    return {name: [run for _, run in pairs] for name, pairs in loaded.items()}


def run_label(results: Path, path: Path) -> str:
    """A run file's path inside the results folder, without .json."""
    try:
        return path.relative_to(results).as_posix().removesuffix(".json")
    except ValueError:
        return path.name.removesuffix(".json")


def run_date(results: Path, path: Path, run: dict | None = None) -> str:
    """When a run ran: its config's start time when it recorded one; else the date in the
    name of a machine-and-date folder holding it (h200-2026-11-27/, as results/ is laid out:
    git gives committed files no dates of their own); else when its JSON was last written
    (at its last check or its end)."""
    started = ((run or {}).get("config") or {}).get("started")
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
        written = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
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
    pairs), without comment, interpreter and --output-dir; the seed as S."""
    tokens = shown_command(command.split("#", 1)[0]).replace("=", " ").split()
    tokens = tokens[1:] if tokens and tokens[0].startswith("python") else tokens
    positional = [t for i, t in enumerate(tokens)
                  if not t.startswith("--") and (i == 0 or not tokens[i - 1].startswith("--"))]
    flags = [(t, tokens[i + 1] if i + 1 < len(tokens) and not tokens[i + 1].startswith("--")
              else "") for i, t in enumerate(tokens) if t.startswith("--")]
    return positional, sorted((f, "S" if f == "--seed" else v) for f, v in flags
                              if f != "--output-dir")


def command_differs(spec: dict, run: dict) -> str | None:
    """The run's recorded command (as shown) when it is not the cited one (nor one the spec
    also accepts), else None."""
    recorded = (run.get("config") or {}).get("command")
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


def recorded_commands(group: list[dict]) -> str:
    """The commands a group's runs recorded (seeds of one command: one), as shown."""
    commands = dict.fromkeys(shown_command((r.get("config") or {}).get("command") or "?")
                             for r in group)
    return "; ".join(f"`{c}`" for c in commands)


def command_cell(spec: dict, group: list[dict]) -> str:
    """A spec that cites files shows the command that made them; one that names a task
    script's run shows the commands its runs recorded."""
    return f"`{spec['command']}`" if "files" in spec else recorded_commands(group)


# --------------------------------------------------------------------------- cells
def is_imagenet(group: list[dict]) -> bool:
    return bool(group) and all(r.get("config", {}).get("pretrained_source") == "imagenet"
                               for r in group)


def shown_groups(groups: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The groups a report shows numbers of: every run that is there, ResNet18 only when it
    started from ImageNet weights."""
    return {n: g for n, g in groups.items() if g and (n != RESNET.run_name or is_imagenet(g))}


def short(name: str) -> str:
    recipe = by_run_name(name)
    return recipe.label if recipe else name


def acc_cell(group: list[dict], split: str = "test") -> str:
    values = [((r.get("final") or {}).get(split) or {}).get("accuracy") for r in group]
    cell = format_mean_std(values, digits=4)
    return cell + (f" ({len(group)} seeds)" if len(group) > 1 and cell != "-" else "")


def _no_final(group: list[dict]) -> str | None:
    """'status running at epoch 25.5' for the runs of a group without a final evaluation."""
    open_runs = [r for r in group if not r.get("final")]
    if not open_runs:
        return None
    return "; ".join(f"status {r.get('status', '?')} at epoch "
                     f"{(r.get('history') or [{}])[-1].get('epoch', 0):.1f} of "
                     f"{(r.get('config') or {}).get('epochs', '?')}" for r in open_runs)


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


def data_cell(run: dict) -> str:
    """The runs table's data column: the source, its key, and the images it kept."""
    data = (run.get("config") or {}).get("data") or {}
    if not data:
        return "?"
    key = source_key(data)
    cell = source_name(data).removeprefix("the ") + (f", key `{key[:12]}`" if key else "")
    if data.get("n_train") is not None:
        cell += (f"; {data['n_train']:,} train / {data.get('n_val', 0):,} val / "
                 f"{data.get('n_test', 0):,} test images")
    return cell


def data_line(groups: dict[str, list[dict]]) -> str:
    """REPORT.md's data sentence, from the configs of every run shown: the one source they
    share, or each source with the models trained on it."""
    sources: dict[tuple, tuple[str, list[str]]] = {}
    for name, group in groups.items():
        for run in group:
            data = (run.get("config") or {}).get("data") or {}
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


def wall_cell(group: list[dict]) -> str:
    """Training time of a run, or of each seed ('1m54s-1m56s each' when they differ)."""
    seconds = sorted((r.get("timings") or {}).get("train_s", 0) for r in group)
    if len(group) == 1:
        return format_duration(seconds[0])
    low, high = format_duration(seconds[0]), format_duration(seconds[-1])
    return f"{low} each" if low == high else f"{low}-{high} each"


def provenance(group: list[dict]) -> tuple[str, str, str, str]:
    """(device, precision, torch version, training time) of a run group, from its first
    run's config (the seeds of one command share them)."""
    cfg = group[0].get("config", {})
    env = cfg.get("environment", {})
    threads = env.get("threads", "?")
    device = cfg.get("device", "?") + (
        f" ({env['gpu']})" if env.get("gpu") else
        f" ({threads} thread{'' if threads == 1 else 's'})")
    return device, str(cfg.get("precision", "?")), str(env.get("torch", "?")), wall_cell(group)


def _one_or_list(group: list[dict]):
    return group if len(group) > 1 else group[0]


# --------------------------------------------------------------------------- the summary
def summary_rows(cited: dict, groups: dict[str, list[dict]], why_missing: dict | None = None
                 ) -> list[tuple[str, str, str, str, str]]:
    """(run name, model, ours, original report, note) per model: the summary of REPORT.md and
    of run_all.py's console, beside the original report's test accuracy. `why_missing`: what to
    say instead of the command that makes a missing run (run_all knows why it skipped one)."""
    rows = []
    for name, spec in cited.items():
        group, recipe = groups.get(name, []), by_run_name(name)
        report = recipe.original.get("test", {}).get("accuracy") if recipe else None
        if not group:
            ours = (why_missing or {}).get(name) or f"missing: `{spec['command']}`"
        elif name == RESNET.run_name and not is_imagenet(group):
            weights = weights_file_name(group[0].get("config") or {})
            ours = ("not reproduced yet (the saved run did not start from ImageNet weights"
                    + (f": {weights}" if weights else "") + ")")
        else:
            ours = acc_cell(group)
            if _no_final(group):
                ours += f" (no final evaluation yet: {_no_final(group)})"
            if quick_look_note(group):
                ours += f", *{quick_look_note(group)}*"
        rows.append((name, spec["label"], ours, "-" if report is None else str(report),
                     recipe.original_note if recipe else ""))
    return rows


def summary_data(rows) -> Table:
    return Table(["model", "ours", "original report", "note"],
                 [[model, ours, report, note] for _, model, ours, report, note in rows])


def summary_text(rows) -> list[str]:
    """The summary as fixed-width console lines (run_all.py's): short model names, Markdown
    marks removed."""
    plain = [(short(name), *(cell.replace("*", "").replace("`", "") for cell in cells))
             for name, _, *cells in rows]
    header = ("model", "test acc (ours)", "original report", "note")
    widths = [max(len(r[i]) for r in [header, *plain]) + 2 for i in range(3)]
    return [("".join(f"{c:<{widths[i]}}" for i, c in enumerate(r[:3])) + r[3]).rstrip()
            for r in [header, *plain]]


# --------------------------------------------------------------------------- figures
def task2_groups(shown: dict) -> dict[str, list[dict]]:
    """{label: runs} of the Task 2 models with runs."""
    return {r.label: shown[r.run_name] for r in TASK2 if shown.get(r.run_name)}


def draw_figures(results: Path, out: Path, cited: dict | None = None,
                 best: str | None = None, loaded: dict | None = None) -> list[Path]:
    """Every figure REPORT.md embeds that run files can give, drawn into `out` (`best`: the
    Task 2 model --best-model chose, a label; None: the best validation accuracy; `loaded`:
    `load_groups`' answer, when the caller has it)."""
    cited = CITED if cited is None else cited
    loaded = load_groups(results, cited) if loaded is None else loaded
    groups = shown_groups(_runs(loaded))
    paths = []
    if groups.get(LENET.run_name):
        paths += draw_task1(_one_or_list(groups[LENET.run_name]), out)
    task2 = {label: _one_or_list(g) for label, g in task2_groups(groups).items()}
    best = best if best in task2 else None
    if task2:
        paths += draw_task2(task2, out, best=best)
    resnet = groups.get(RESNET.run_name)
    if resnet:
        paths += draw_task3(_one_or_list(resnet), out)
        if task2:
            paths.append(draw_task3d(task2, _one_or_list(resnet), out, best))
    for name, group in groups.items():
        if confusion_counts(group)[0] is not None:
            paths.append(plot_confusion(group, out / confusion_figure(group),
                                        f"{short(name)}: test confusion matrix", CLASSES))
    return paths


def confusion_figure(group: list[dict]) -> str:
    return f"confusion_{(group[0].get('config') or {}).get('model', 'model')}.png"


def figure_there(item: str, out: Path, drawn: set[str] | None) -> bool:
    name = FIGURES[item][1]
    return (drawn is None or name in drawn or name in MODEL_FIGURES) and (out / name).is_file()


def _figures(out: Path, items: list[str], drawn: set[str] | None) -> list[str]:
    """Each item's figure under its caption (a heading of its own for a handout item)."""
    lines = []
    for item in items:
        caption, name = FIGURES[item]
        title = f"#### {caption}" if re.fullmatch(r"\d[a-g]", item) else f"**{caption}**"
        if figure_there(item, out, drawn):
            lines += [title, "", f"![{caption}]({name})", ""]
        elif drawn is not None and name not in MODEL_FIGURES:
            lines += [title, "", "Missing: its runs are not in the results folder.", ""]
        else:
            lines += [title, "", f"Missing: `{name}` is not in the output folder.", ""]
    return lines


def anchor(heading: str) -> str:
    """The #anchor GitHub gives a heading: lower case, punctuation but - and _ dropped,
    spaces as hyphens."""
    return "#" + re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", "")
                        ).replace(" ", "-")


def no_test_curve(group: list[dict]) -> bool:
    return bool(group) and not any(h.get("test_accuracy") is not None
                                   for r in group for h in r.get("history", []))


# --------------------------------------------------------------------------- the report
def build_report(results: Path, output_dir: Path | None = None, cited: dict | None = None,
                 drawn: set[str] | None = None, own_runs: bool | None = None,
                 best: str | None = None, loaded: dict | None = None
                 ) -> tuple[str, list[str]]:
    """REPORT.md's text and the list of missing runs (the arguments: `report_blocks`')."""
    blocks, missing = report_blocks(results, output_dir, cited, drawn, own_runs, best, loaded)
    return to_markdown_text(blocks), missing


def report_blocks(results: Path, output_dir: Path | None = None, cited: dict | None = None,
                  drawn: set[str] | None = None, own_runs: bool | None = None,
                  best: str | None = None, loaded: dict | None = None
                  ) -> tuple[list, list[str]]:
    """The report as blocks (lines of text and tables; REPORT.md and REPORT.tex are written
    from them) and the list of missing runs.

    `results`: where the run files are; `output_dir` (default: `results`): where REPORT.md and
    its figures go; `cited`: which runs (default CITED); `drawn`: names of the figures
    `draw_figures` made (None: embed whatever figure files are in `output_dir`); `own_runs`:
    the specs name the task scripts' own runs (default: when `cited` is TASK_OUTPUT_RUNS),
    for the sentence that says so and the command that rebuilds the file; `best`: the Task 2
    model --best-model chose (a label; None: the best validation accuracy); `loaded`:
    `load_groups`' answer, when the caller has it.
    """
    results = Path(results)
    out = Path(output_dir) if output_dir is not None else results
    cited = CITED if cited is None else cited
    own_runs = cited is TASK_OUTPUT_RUNS if own_runs is None else own_runs
    loaded = load_groups(results, cited) if loaded is None else loaded
    groups = _runs(loaded)
    shown = shown_groups(groups)
    task2 = task2_groups(shown)
    best_pick = best_model(task2, best if best in task2 else None) if task2 else None
    others = _other_run_files(results, loaded)
    lines = [*_header(results, out, cited, own_runs, shown, best_pick, best),
             *_summary(cited, groups),
             *_checklist(cited, shown, out, drawn, best_pick),
             *_task1(shown, out, drawn),
             *_task2(shown, out, drawn, best_pick, others, results),
             *_task3(cited, shown, out, drawn, best_pick),
             *_per_class(shown, out, drawn),
             *_corrections(),
             *_runs_table(results, cited, loaded, own_runs),
             *_other_runs(results, others),
             *_missing(cited, groups)]
    return lines, [name for name, g in groups.items() if not g]


def _header(results: Path, out: Path, cited: dict, own_runs: bool, shown: dict,
            best_pick, best: str | None) -> list[str]:
    names = ", ".join(f"`{n}`" for n in cited)
    lines = ["# TDT4265 Assignment 3: results", "",
             INTRO.format(command=report_command(results, out, own_runs, best), results=results,
                          which=WHICH[own_runs].format(names=names)),
             "", data_line(shown), ""]
    quick = [short(n) for n, g in shown.items() if quick_look_note(g)]
    if quick:
        lines += [QUICK_LOOK.format(models=", ".join(quick),
                                    were="was" if len(quick) == 1 else "were"), ""]
    old = [short(n) for n, g in shown.items() if no_test_curve(g)]
    if old:
        lines += [NO_TEST_CURVE.format(runs=f"The runs of {', '.join(old)}"), ""]
    if best_pick:
        lines += [BEST_MODEL.format(label=best_pick[0], why=best_pick[1]), ""]
    return lines


def _summary(cited: dict, groups: dict) -> list[str]:
    return ["## Summary: ours beside the original report (test accuracy)", "",
            summary_data(summary_rows(cited, groups)), ""]


def _checklist(cited: dict, shown: dict, out: Path, drawn: set[str] | None,
               best_pick) -> list[str]:
    answers = _answers(cited, shown, out, drawn, best_pick)
    return ["## The handout, item by item", "", CHECKLIST, "",
            Table(["item", "the handout asks", "answered by"],
                  [[item, asks, answers[item]] for item, asks in ITEMS]), ""]


def _answers(cited: dict, shown: dict, out: Path, drawn: set[str] | None,
             best_pick) -> dict[str, str]:
    """What answers each item of ITEMS: a link into this file, or missing and its command."""
    best = next((r for r in TASK2 if best_pick and r.label == best_pick[0]), None)

    def figure(item: str, recipe=None) -> str:
        name = FIGURES[item][1]
        if not figure_there(item, out, drawn):
            return "missing: " + _making(cited, item)
        notes = [recipe.label] if recipe is best and best else []
        if recipe and no_test_curve(shown.get(recipe.run_name, [])):
            notes.append("no test curve: its runs predate it")
        return f"[{name}]({name})" + (f" ({'; '.join(notes)})" if notes else "")

    def section(heading: str, run_name: str) -> str:
        if not shown.get(run_name):
            return "missing: " + _making(cited, run_name)
        return f"[{heading}]({anchor(heading)})"

    answers = {"code": f"`{ZIP_COMMAND}` writes it (the code, this file and its figures)",
               "1a": figure("1a", LENET), "1b": section(H_1B, LENET.run_name),
               "1c": f"[{H_1C}]({anchor(H_1C)})", "2c": figure("2c", best),
               "2d": figure("2d", best), "3a": section(H_3A, RESNET.run_name),
               "3b": figure("3b", RESNET), "3c": figure("3c", RESNET), "3d": figure("3d"),
               "3e": figure("3e"), "3f": figure("3f"), "3g": figure("3g")}
    task2 = next((r.run_name for r in TASK2 if shown.get(r.run_name)), MODEL21.run_name)
    for item, heading in (("Task 2", H_BAR), ("2a", H_2A), ("2b", H_2B), ("2e", H_2E)):
        answers[item] = section(heading, task2)
    return answers


def _making(cited: dict, what: str) -> str:
    """The command that makes what an item needs: a run, or the visualisation."""
    if what in ("3e", "3f", "3g"):
        return f"`{VISUALISATION}` (from a ResNet18 run or its ImageNet weights)"
    name = {"1a": LENET.run_name, "2c": MODEL21.run_name, "2d": MODEL21.run_name,
            "3b": RESNET.run_name, "3c": RESNET.run_name, "3d": RESNET.run_name}.get(what, what)
    spec = cited.get(name) or TASK_OUTPUT_RUNS.get(name, {})
    return f"`{spec.get('command', '?')}`"


H_1B = "1b: final loss and accuracy (best checkpoint)"
H_1C = "1c: parameters per layer"
H_2A = "2a: architectures and training details"
H_2B = "2b: final train, validation and test loss and accuracy"
H_BAR = "The bar: at least 75 % test accuracy within 10 epochs"
H_2E = "2e: facts for the discussion"
H_3A = "3a: hyperparameters"


def _task1(shown: dict, out: Path, drawn: set[str] | None) -> list[str]:
    lines = ["## Task 1: LeNet", "", *_figures(out, ["1a", "1b"], drawn)]
    group = shown.get(LENET.run_name)
    if group:
        table = final_data({LENET.label: _one_or_list(group)}, {LENET.label: LENET.original})
        lines += [f"### {H_1B}", "", table, ""]
    lines += [f"### {H_1C}", "", parameter_data(LeNet()), "",
              "### LeNet: layers and training details", "", architecture_data(LeNet()), ""]
    if group:
        lines += [training_data(group), ""]
    return lines


def _task2(shown: dict, out: Path, drawn: set[str] | None, best_pick, others: list,
           results: Path) -> list[str]:
    lines = ["## Task 2: Model 2.1 and Model 2.2", ""]
    task2 = task2_groups(shown)
    if task2:
        lines += [f"### {H_2A}", ""]
        for label, group in task2.items():
            lines += [architecture_data(model_of(label, group[0]), title=f"{label}: layers"), "",
                      training_data(group, title=f"{label}: training details"), ""]
        table = final_data({label: _one_or_list(g) for label, g in task2.items()},
                           {r.label: r.original for r in TASK2 if r.label in task2})
        lines += [f"### {H_2B}", "", table, "", TASK2_TRAIN_COLUMNS, "",
                  *_bar(task2, others, results)]
    if best_pick:
        lines += [f"### 2c, 2d: the best model, {best_pick[0]}", "",
                  BEST_MODEL.format(label=best_pick[0], why=best_pick[1]), ""]
    lines += _figures(out, ["2c", "2d", "2, accuracy", "2, loss"], drawn)
    if task2:
        lines += [f"### {H_2E}", "", FACTS, "", *_facts_task2(shown, task2), "",
                  YOURS.format(what="2e's discussion"), ""]
    return lines


def _bar(task2: dict, others: list, results: Path) -> list[str]:
    lines = [f"### {H_BAR}", "", BAR, "",
             *(f"- {ten_epoch_line(label, group)}" for label, group in task2.items()), ""]
    missed = [g for g in task2.values()
              if not all((at_epoch(r) or (0, 0))[1] >= BAR_ACCURACY for r in g)]
    reach = [(p, run, at_epoch(run)) for p, run in others
             if (run.get("config") or {}).get("model") in (MODEL21.key, MODEL22.key)
             and at_epoch(run) and at_epoch(run)[1] >= BAR_ACCURACY]
    if missed and reach:
        lines += [BAR_REACHED_BY, ""] + [
            f"- `{run_label(results, p)}`: {value:.4f} at epoch {epoch:.1f}, "
            f"`{shown_command((run.get('config') or {}).get('command', '?'))}`"
            for p, run, (epoch, value) in reach] + [""]
    return lines


def _facts_task2(shown: dict, task2: dict) -> list[str]:
    def acc(group, split="test"):
        return [((r.get("final") or {}).get(split) or {}).get("accuracy") for r in group]

    lines = []
    for label, group in task2.items():
        test, train = acc(group), acc(group, "train")
        best = [(r.get("final") or {}).get("best_epoch") for r in group]
        lines.append(f"- {label}: test accuracy {format_mean_std(test, 4)}"
                     + (f" over {len(group)} seeds" if len(group) > 1 else " (one run)")
                     + f", train {format_mean_std(train, 4)}; best checkpoint at epoch "
                     f"{format_mean_std(best, 1)} of "
                     f"{(group[0].get('config') or {}).get('epochs', '?')}; training took "
                     f"{wall_cell(group)} on {provenance(group)[0]}.")
    means = {label: (mean_std([a for a in acc(g) if a is not None]), len(g))
             for label, g in task2.items() if any(a is not None for a in acc(g))}
    if len(means) == 2:
        (a, ((ma, sa), na)), (b, ((mb, sb), nb)) = sorted(means.items(),
                                                          key=lambda kv: -kv[1][0][0])
        spread = [f"{100 * std:.2f} ({label})" for label, std, n in
                  ((a, sa, na), (b, sb, nb)) if n > 1]
        lines.append(f"- {a} is ahead of {b} by {100 * (ma - mb):.2f} points of test accuracy"
                     + (f"; the seeds' standard deviation, in points: {', '.join(spread)}"
                        + (", wider than the gap" if ma - mb <= max(sa, sb) else "")
                        if spread else "; one run each: seed noise unknown") + ".")
    means = {label: m for label, (m, _) in means.items()}
    lenet = [a for a in acc(shown.get(LENET.run_name, [])) if a is not None]
    if lenet and means:
        lines.append("- Against LeNet's " + f"{mean_std(lenet)[0]:.4f}: " + ", ".join(
            f"{label} {100 * (m - mean_std(lenet)[0]):+.2f} points" for label, (m, _) in
            means.items()) + ".")
    return lines


def _task3(cited: dict, shown: dict, out: Path, drawn: set[str] | None, best_pick) -> list[str]:
    lines = ["## Task 3: ResNet18 transfer learning", ""]
    group = shown.get(RESNET.run_name)
    if not group:
        spec = cited.get(RESNET.run_name, TASK_OUTPUT_RUNS[RESNET.run_name])
        why = spec.get("missing")
        return lines + ["### 3a, 3b, 3c, 3d, 3e, 3f, 3g: not reproduced yet", "",
                        NOT_REPRODUCED.format(why=f": {why}" if why else "",
                                              command=spec["command"]), ""]
    lines += [f"### {H_3A}", "", training_data(group), "",
              final_data({RESNET.label: _one_or_list(group)}), ""]
    lines += _figures(out, ["3b", "3c", "3d", "3e", "3f", "3g"], drawn)
    test = [((r.get("final") or {}).get("test") or {}).get("accuracy") for r in group]
    best = task2_groups(shown).get(best_pick[0], []) if best_pick else []
    best_test = [((r.get("final") or {}).get("test") or {}).get("accuracy") for r in best]
    facts = [f"- ResNet18: test accuracy {format_mean_std(test, 4)}; "
             f"{(group[0].get('config') or {}).get('trainable_parameters', 0):,} trainable "
             f"parameters; {wall_cell(group)} of training on {provenance(group)[0]}."]
    if best_test and None not in test + best_test:
        facts.append(f"- Against {best_pick[0]} ({format_mean_std(best_test, 4)}): "
                     f"{100 * (mean_std(test)[0] - mean_std(best_test)[0]):+.2f} points.")
    return lines + [FACTS, "", *facts, "",
                    YOURS.format(what="3d's comparison and 3e-3g's observations"), ""]


def _per_class(shown: dict, out: Path, drawn: set[str] | None) -> list[str]:
    lines = ["## Per-class test accuracy", ""]
    if not shown:
        return lines + ["No cited run is in the results folder.", ""]
    runs = {short(n): _one_or_list(g) for n, g in shown.items()}
    lines += [PER_CLASS, "", per_class_data(runs, CLASSES), "",
              confused_data(runs, CLASSES, "Most confused (true -> predicted)"), ""]
    for name, group in shown.items():
        figure, label = confusion_figure(group), short(name)
        if confusion_counts(group)[0] is None:
            continue
        if (drawn is None or figure in drawn) and (out / figure).is_file():
            caption = f"{label}: test confusion matrix"
            lines += [f"**{caption}**", "", f"![{caption}]({figure})", ""]
        else:
            lines += [f"**{label}: test confusion matrix**: missing (`{figure}` is not in the "
                      "output folder)", ""]
    return lines


def _corrections() -> list[str]:
    return ["## Corrections to the original report", "",
            *(f"- {line}" for line in CORRECTIONS), ""]


def _runs_table(results: Path, cited: dict, loaded: dict, own_runs: bool) -> list[str]:
    lines = ["## Runs: command, device, date, time", "",
             RUNS_INTRO.format(who=RUNS_WHO[own_runs]), ""]
    rows, checks = [], []
    for name, pairs in loaded.items():
        if not pairs:
            continue
        spec, group = cited[name], [r for _, r in pairs]
        device, precision, torch_version, wall = provenance(group)
        files = ", ".join(f"`{run_label(results, p)}`" for p, _ in pairs)
        dates = dates_cell([run_date(results, p, r) for p, r in pairs])
        status = ", ".join(sorted({str(r.get("status", "?")) for r in group}))
        if quick_look_note(group):
            status += f"; *{quick_look_note(group)}*"
        sources = ", ".join(dict.fromkeys(data_cell(r) for r in group))
        rows.append([short(name), files, command_cell(spec, group), device, precision,
                     torch_version, sources, dates, status, wall])
        if "files" in spec:  # a citation: the runs' own commands must be the cited one
            checks += [CHECK_CITATION.format(run=run_label(results, p), recorded=differs)
                       for p, r in pairs if (differs := command_differs(spec, r))]
    lines.append(Table(["run", "files", "command", "device", "precision", "torch", "data",
                        "date", "status", "training time"], rows))
    return lines + ([""] + checks if checks else [])


def _other_run_files(results: Path, loaded: dict) -> list[tuple[Path, dict]]:
    """Every run file under `results` that no spec shows (variants, comparisons)."""
    known = {p.resolve() for pairs in loaded.values() for p, _ in pairs}
    found = []
    for p in sorted(results.rglob("*.json")):
        if p.resolve() in known or p.name == "benchmark.json":
            continue
        try:
            found.append((p, load_run(p)))
        except UserError:
            continue  # not a run
    return found


def _other_runs(results: Path, others: list[tuple[Path, dict]]) -> list[str]:
    rows = []
    for p, run in others:
        test = ((run.get("final") or {}).get("test") or {}).get("accuracy")
        device, precision, _, wall = provenance([run])
        status = str(run.get("status", "?")) + (f"; *quick look ({quick_look(run)})*"
                                                 if quick_look(run) else "")
        rows.append([run_label(results, p), '-' if test is None else f'{test:.4f}', status,
                     f"`{shown_command(run.get('config', {}).get('command', '?'))}`",
                     f"{device}, {precision}", run_date(results, p, run), wall])
    if not rows:
        return []
    return ["", "## Other runs in the results folder (variants, comparisons)", "",
            Table(["run", "test acc", "status", "command", "device", "date", "training time"],
                  rows)]


def _missing(cited: dict, groups: dict) -> list[str]:
    missing = [n for n, g in groups.items() if not g]
    if not missing:
        return []
    return ["", "## Missing runs", ""] + [
        f"- {cited[n]['label']}: `{cited[n]['command']}`"
        + (f" (not made: {cited[n]['missing']})" if cited[n].get("missing") else "")
        for n in missing]


def readme_table(results: Path, cited: dict | None = None) -> str:
    """README's results table, from the cited run files alone (a test holds README to it)."""
    cited = cited or CITED
    loaded = load_groups(results, cited)
    lines = ["| model | test acc | val acc | runs | command | device, date, time | "
             "original report |", "|---|---|---|---|---|---|---|"]
    for name, spec in cited.items():
        group = [run for _, run in loaded[name]]
        original = by_run_name(name).original["test"]["accuracy"]
        if not shown_groups({name: group}):
            lines.append(f"| {spec['label']} | not measured | | | `{shown_command(spec['command'])}` "
                         f"| | {original} |")
            continue
        device, precision, torch_version, wall = provenance(group)
        days = sorted({run_date(results, p, r)[:10] for p, r in loaded[name]})
        folders = ", ".join(dict.fromkeys(f"`{run_label(results, p).split('/')[0]}/`"
                                          for p, _ in loaded[name]))
        date = (days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}") + f" ({folders})"

        def accuracy(split: str) -> str:
            return _no_final(group) or format_mean_std(
                [r["final"][split]["accuracy"] for r in group], 4)

        quick = quick_look_note(group)
        lines.append(f"| {spec['label']} | {accuracy('test')}"
                     + (f", *{quick}*" if quick else "") + f" | {accuracy('val')} | "
                     f"{f'{len(group)} seeds' if len(group) > 1 else '1 run'} | "
                     f"`{shown_command(spec['command'])}` | {device}, {precision}, "
                     f"torch {torch_version}, {date}, {wall} | "
                     f"{original} |")
    return "\n".join(lines) + "\n"


def get_args_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="report.py",
        description="Write REPORT.md and the figures it embeds from the run files under a "
                    "results folder: by default the runs report.py cites, from results/ into "
                    f"{EVIDENCE_DIR}/ (what README shows); with --own-runs the runs the task "
                    "scripts wrote, from plots/ into plots/.")
    parser.add_argument("--results", default=None, metavar="DIR",
                        help="the folder holding the run files (default: "
                             f"{DEFAULT_RESULTS[False]}; with --own-runs "
                             f"{DEFAULT_RESULTS[True]})")
    parser.add_argument("--output-dir", default=None, metavar="DIR",
                        help=f"where REPORT.md and its figures go (default: {EVIDENCE_DIR}; "
                             "with --own-runs the --results folder)")
    parser.add_argument("--own-runs", action="store_true",
                        help="show the runs the task scripts wrote into --results under their "
                             "own names (task1_lenet.json, task2_model21.json, ..., or one "
                             "file per seed), each with the command it recorded, instead of "
                             "the runs named in report.py")
    add_best_model_arg(parser, "2c, 2d and 3d")
    parser.add_argument("--no-pdf", action="store_true",
                        help="write REPORT.tex but do not compile it to REPORT.pdf (default: "
                             "compile it where latexmk or pdflatex is installed)")
    parser.add_argument("--readme-table", action="store_true",
                        help="print README's results table (from the cited runs) and stop")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def main(args: argparse.Namespace) -> Path | None:
    results = Path(args.results or DEFAULT_RESULTS[args.own_runs])
    out = Path(args.output_dir or (results if args.own_runs else EVIDENCE_DIR))
    if not results.is_dir():
        raise UserError(f"--results {results} is not a folder; give the folder holding the "
                        "run files" + (" (the task scripts' --output-dir, default plots)"
                                       if args.own_runs else " (default: results)"))
    cited = TASK_OUTPUT_RUNS if args.own_runs else CITED
    if args.readme_table:
        print(readme_table(results, cited), end="")
        return None
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create --output-dir {out} ({err.strerror or err})") from None
    best, loaded = task2_label(args.best_model), load_groups(results, cited)  # read once
    drawn = {p.name for p in draw_figures(results, out, cited, best, loaded)}
    blocks, missing = report_blocks(results, out, cited, drawn, own_runs=args.own_runs,
                                    best=best, loaded=loaded)
    path = out / "REPORT.md"
    atomic_write_text(path, to_markdown_text(blocks))
    atomic_write_text(out / "REPORT.tex", to_latex_text(blocks))
    print(f"wrote {path}, {out / 'REPORT.tex'} and {len(drawn)} figures"
          + (f"; missing runs: {', '.join(missing)}" if missing else ""))
    if args.no_pdf:
        (out / "REPORT.pdf").unlink(missing_ok=True)  # never a PDF of an older REPORT.tex
    else:
        print(compile_pdf(out / "REPORT.tex")[1])
    return path


if __name__ == "__main__":
    run_cli(main, get_args_parser())
