"""The report, with evidence: REPORT.md and every figure it embeds, drawn from run files alone
(nothing is trained or guessed), beside the original 2019 student report's numbers.

    python report.py                                  # results/ -> results/report/ (the evidence)
    python report.py --own-runs                       # your runs in plots/ -> plots/REPORT.md
    python report.py --own-runs --results DIR         # the runs a task script wrote to DIR

Two modes, one layout. By default it cites the runs named in `CITED` below: per model, which
run files (glob patterns relative to --results; several files are seeds of one model: mean ±
std) and the command that made them, checked against the command each run recorded; the
REPORT.md and figures that README shows are this mode's, in results/report/. With
`--own-runs` it shows the runs the task scripts wrote under their own names (task1_lenet.json,
task2_model21.json, ..., or one file per seed), each with the command it recorded.

Either way, what differs from run to run is read from the run files: the data source (its
kind and the data cache's key), device, precision, torch version, date, command and training
time, and whether a run was a quick look (`--subset`, or fewer epochs than its task's
default; such numbers are marked wherever they stand beside the original report's). Its first
line is the command that rebuilds the file. A cited run that is missing is listed with the
command that makes it, never filled in. ResNet18 numbers count as transfer learning only when
the run started from torchvision's ImageNet file (checked by its SHA-256 when it was trained).
Every other run file under --results is listed under "Other runs".
"""
from __future__ import annotations

import argparse
import re
import shlex
from datetime import datetime, timezone
from pathlib import Path

from cli import ArgumentParser, UserError, run_cli
from dataloaders import CLASSES
from original_report import ORIGINAL_REPORT, original_finals, original_test_accuracy
from plots import (confusion_counts, final_table, format_mean_std, format_parameter_table,
                   per_class_table, plot_confusion, plot_runs, quick_look, quick_look_note)
from runs import atomic_write_text, find_runs, load_run
from task1_lenet import LeNet
from utils import format_duration

# ================================================================================================
# THE CITED RUNS: the one place that says which runs REPORT.md cites. Edit here.
#   run name -> label; files: glob patterns relative to --results (the first pattern that
#   matches gives the run's files; several files are seeds of one model); command: what made
#   them, with DATA for the data source and S for the seed; missing: why the run is absent,
#   when it cannot be made here.
# The default command of each model (README, "Stopping"), as its run files record it.
# ================================================================================================
CITED = {
    "task1_lenet": {
        "label": "LeNet (Task 1)",
        "files": ["cpu-2026-11-27/task1_lenet_seed*.json"],
        "command": "python task1_lenet.py --patience 0 --seeds 3 --data-dir DATA --no-progress",
    },
    "task2_model21": {
        "label": "Model 2.1",
        "files": ["h200-2026-11-27/model21-40ep/task2_model21_seed*.json"],
        "command": "python task2_models.py --model 2.1 --epochs 40 --patience 0 --seed S "
                   "--data-dir DATA --no-progress  # S = 0, 1, 2",
    },
    "task2_model22": {
        "label": "Model 2.2",
        "files": ["cpu-2026-11-27/task2_model22.json"],
        "command": "python task2_models.py --model 2.2 --patience 0 --data-dir DATA "
                   "--no-progress",
    },
    "task3_resnet18": {
        "label": "ResNet18 (Task 3)",
        "files": [],
        "command": "python task3_resnet.py --data-dir DATA --weights resnet18-f37072fd.pth",
        "missing": "the ImageNet weights cannot be had on the machines these runs were made "
                   "on (no network; none in the GPU machine's torch hub cache, see "
                   "h200-2026-11-27/device.txt); run it where the file is",
    },
}

# `--own-runs`: a task script's output folder (plots/ unless --output-dir said otherwise),
# each run under the name the script gives it (one file, or one per seed: runs.find_runs).
# `command` is what makes a missing run; a run that is there shows the command it recorded.
TASK_OUTPUT_RUNS = {
    "task1_lenet": {"label": "LeNet (Task 1)", "run_name": "task1_lenet",
                    "command": "python task1_lenet.py --data-dir DATA"},
    "task2_model21": {"label": "Model 2.1", "run_name": "task2_model21",
                      "command": "python task2_models.py --model 2.1 --data-dir DATA"},
    "task2_model22": {"label": "Model 2.2", "run_name": "task2_model22",
                      "command": "python task2_models.py --model 2.2 --data-dir DATA"},
    "task3_resnet18": {"label": "ResNet18 (Task 3)", "run_name": "task3_resnet18",
                       "command": "python task3_resnet.py --data-dir DATA "
                                  "--weights resnet18-f37072fd.pth  # on a GPU"},
}

# Where each mode reads and writes by default.
DEFAULT_RESULTS = {False: "results", True: "plots"}
EVIDENCE_DIR = "results/report"  # the committed REPORT.md and the figures README shows

# Data sources recognised by the key of their data cache (dataloaders.py: from the source's
# kind and content), as recorded in every run under results/.
KNOWN_SOURCES = {"e98dedfbb831d5137458": "the JPEG copy of CIFAR-10 (quality 75)"}
GUIDE_DATA = "docs/GUIDE.md, 'Offline: a local copy of the data'"

FIGURES = {
    "Task 1a: loss": "task1_loss.png", "Task 1b: accuracy": "task1_accuracy.png",
    "Task 2.3: accuracy": "task2_accuracy.png", "Task 2.4: loss": "task2_loss.png",
    "Task 3b: accuracy": "task3_accuracy.png", "Task 3c: loss": "task3_loss.png",
    "Task 3d: loss, Model 2.1 and ResNet18": "task3d_loss_comparison.png",
    "Task 3e: first-layer activations": "task3e_first_layer_activations.png",
    "Task 3f: last-layer activations": "task3f_last_layer_activations.png",
    "Task 3g: first-layer filters": "task3g_first_layer_filters.png",
}
# Figures that need a saved model, not a run file (`python task3_visualisation.py`).
MODEL_FIGURES = {"task3e_first_layer_activations.png", "task3f_last_layer_activations.png",
                 "task3g_first_layer_filters.png"}
SHORT = {"task1_lenet": "LeNet", "task2_model21": "Model 2.1", "task2_model22": "Model 2.2",
         "task3_resnet18": "ResNet18"}


# --------------------------------------------------------------------------- finding runs
def _seed_order(path: Path) -> tuple:
    m = re.search(r"_seed(\d+)$", path.name.removesuffix(".json"))
    return (str(path.parent), int(m.group(1)) if m else -1, path.name)


def cited_files(results: Path, spec: dict) -> list[Path]:
    """A spec's run files: the runs.find_runs group of its `run_name` (own runs), else the
    files of the first of its `files` patterns that matches any (seeds in numeric order)."""
    if "run_name" in spec:
        return find_runs(results, spec["run_name"])
    for pattern in spec.get("files", []):
        matches = sorted((p for p in results.glob(pattern) if p.is_file()), key=_seed_order)
        if matches:
            return matches
    return []


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


def shown_command(command: str) -> str:
    """A recorded command as shown: the --data-dir value (a path on the machine that ran it)
    becomes DATA."""
    try:
        tokens = shlex.split(command)
    except ValueError:
        tokens = command.split()
    out, i = [], 0
    while i < len(tokens):
        t = tokens[i]
        if t == "--data-dir" and i + 1 < len(tokens):
            out += [t, "DATA"]
            i += 2
            continue
        out.append("--data-dir=DATA" if t.startswith("--data-dir=") else t)
        i += 1
    return " ".join(out)


def _normalised(command: str) -> tuple[list[str], list[tuple[str, str]]]:
    """A command for comparison: (script and positional arguments, sorted (flag, value)
    pairs), without comment, interpreter and --output-dir; the data source as DATA, the seed
    as S."""
    tokens = shown_command(command.split("#", 1)[0]).split()
    if tokens and tokens[0].startswith("python"):
        tokens = tokens[1:]
    positional, flags, i = [], [], 0
    while i < len(tokens):
        t = tokens[i]
        if not t.startswith("--"):
            positional.append(t)
            i += 1
            continue
        flag, _, value = t.partition("=")
        if not value and i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
            value = tokens[i + 1]
            i += 1
        i += 1
        if flag == "--output-dir":
            continue
        flags.append((flag, "S" if flag == "--seed" else value))
    return positional, sorted(flags)


def command_differs(spec_command: str, run: dict) -> str | None:
    """The run's recorded command (as shown) when it is not the cited one, else None."""
    recorded = (run.get("config") or {}).get("command")
    if not recorded or _normalised(recorded) == _normalised(spec_command):
        return None
    return shown_command(recorded)


def load_groups(results: Path, cited: dict) -> dict[str, list[tuple[Path, dict]]]:
    return {name: [(p, load_run(p)) for p in cited_files(results, spec)]
            for name, spec in cited.items()}


# --------------------------------------------------------------------------- cells
def is_imagenet(group: list[dict]) -> bool:
    return bool(group) and all(r.get("config", {}).get("pretrained_source") == "imagenet"
                               for r in group)


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
    if kind == "archive":
        return f"the archive `{name}`"
    if kind == "image-folder":
        return f"the image-folder tree `{name}/`"
    if kind == "cifar-10-batches-py":
        return f"CIFAR-10 in torchvision's python format (`{name}/`)"
    return f"a source of kind {kind or '?'} (`{name}`)"


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
            ident = (data.get("kind"), source_key(data) or data.get("path"))
            text = source_name(data) if data else "an unrecorded source"
            key = source_key(data)
            if key:
                text += f" ({data.get('kind')}, source key `{key[:12]}`)"
            models = sources.setdefault(ident, (text, []))[1]
            if SHORT.get(name, name) not in models:
                models.append(SHORT.get(name, name))
    how = ("The source key is the data cache's, made from the source's content (an archive's "
           "SHA-256; a folder's file names, sizes and times): the same key, the same images. "
           f"Any source `--data-dir` accepts works ({GUIDE_DATA}).")
    if not sources:
        return "**Data**: no run to read it from. " + how
    if len(sources) == 1:
        text, _ = next(iter(sources.values()))
        return f"**Data**: every run shown trained on {text}. " + how
    parts = "; ".join(f"{text} for {', '.join(models)}" for text, models in sources.values())
    return (f"**Data: mixed sources**: {parts}. Numbers from different data are not "
            "comparable with each other. " + how)


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


# --------------------------------------------------------------------------- figures
def draw_figures(results: Path, out: Path, cited: dict | None = None) -> list[Path]:
    """Every figure REPORT.md embeds that run files can give, drawn into `out`."""
    cited = CITED if cited is None else cited
    groups = {n: [r for _, r in g] for n, g in load_groups(results, cited).items()}
    paths = []
    lenet = groups.get("task1_lenet")
    if lenet:
        paths += [plot_runs({"LeNet": _one_or_list(lenet)}, m, out / f"task1_{m}.png",
                            title=f"Task 1: LeNet {m}") for m in ("loss", "accuracy")]
    task2 = {SHORT[n]: _one_or_list(groups[n]) for n in ("task2_model21", "task2_model22")
             if groups.get(n)}
    if task2:
        paths += [plot_runs(task2, m, out / f"task2_{m}.png", title=f"Task 2: {m}")
                  for m in ("accuracy", "loss")]
    resnet = groups.get("task3_resnet18")
    if is_imagenet(resnet or []):
        paths += [plot_runs({"ResNet18": _one_or_list(resnet)}, m, out / f"task3_{m}.png",
                            title=f"Task 3: ResNet18 {m}") for m in ("accuracy", "loss")]
        if groups.get("task2_model21"):
            paths.append(plot_runs({"Model 2.1": _one_or_list(groups["task2_model21"]),
                                    "ResNet18": _one_or_list(resnet)}, "loss",
                                   out / FIGURES["Task 3d: loss, Model 2.1 and ResNet18"],
                                   title="Task 3d: loss of Model 2.1 and ResNet18"))
    for name, group in groups.items():
        if group and confusion_counts(group)[0] is not None and (
                name != "task3_resnet18" or is_imagenet(group)):
            paths.append(plot_confusion(group, out / confusion_figure(group),
                                        f"{SHORT.get(name, name)}: test confusion matrix",
                                        CLASSES))
    return paths


def confusion_figure(group: list[dict]) -> str:
    return f"confusion_{(group[0].get('config') or {}).get('model', 'model')}.png"


def _figures(out: Path, keys: list[str], drawn: set[str] | None) -> list[str]:
    lines = []
    for key in keys:
        name = FIGURES[key]
        if (drawn is None or name in drawn or name in MODEL_FIGURES) and (out / name).is_file():
            lines += [f"**{key}**", "", f"![{key}]({name})", ""]
        elif drawn is not None and name not in MODEL_FIGURES:
            lines += [f"**{key}**: missing (its runs are not in the results folder)", ""]
        else:
            lines += [f"**{key}**: missing (`{name}` is not in the output folder)", ""]
    return lines


# --------------------------------------------------------------------------- the report
def report_command(results: Path, out: Path, own_runs: bool) -> str:
    """The command that writes this REPORT.md again (the first line of the file)."""
    return shlex.join(["python", "report.py", "--results", str(results), "--output-dir",
                       str(out), *(["--own-runs"] if own_runs else [])])


def recorded_commands(group: list[dict]) -> str:
    """The commands a group's runs recorded (seeds of one command: one), as shown."""
    commands = dict.fromkeys(shown_command((r.get("config") or {}).get("command") or "?")
                             for r in group)
    return "; ".join(f"`{c}`" for c in commands)


def build_report(results: Path, output_dir: Path | None = None, cited: dict | None = None,
                 drawn: set[str] | None = None, own_runs: bool | None = None
                 ) -> tuple[str, list[str]]:
    """REPORT.md's text and the list of missing runs.

    `results`: where the run files are; `output_dir` (default: `results`): where REPORT.md and
    its figures go; `cited`: which runs (default CITED); `drawn`: names of the figures
    `draw_figures` made (None: embed whatever figure files are in `output_dir`); `own_runs`:
    show each run's recorded command rather than check it against a cited one (default: when
    `cited` is TASK_OUTPUT_RUNS).
    """
    results = Path(results)
    out = Path(output_dir) if output_dir is not None else results
    cited = CITED if cited is None else cited
    own_runs = cited is TASK_OUTPUT_RUNS if own_runs is None else own_runs
    loaded = load_groups(results, cited)
    groups = {n: [r for _, r in g] for n, g in loaded.items()}
    missing = [name for name, g in groups.items() if not g]
    resnet_real = is_imagenet(groups.get("task3_resnet18", []))
    shown = {n: g for n, g in groups.items() if g and (n != "task3_resnet18" or resnet_real)}
    which = ("The runs are the task scripts' own, found under the names they give them "
             f"({', '.join(f'`{n}`' for n in cited)}: one file, or one per seed), each "
             "shown with the command it recorded." if own_runs else
             "The runs it cites are named in `CITED` in report.py, each with the command that "
             "made it, checked against the command the run recorded.")
    lines = [
        "# TDT4265 Assignment 3: results",
        "",
        f"Generated by `{report_command(results, out, own_runs)}` from the run files in "
        f"`{results}/` alone (the same command rebuilds this file): every number below was "
        f"read from a run's JSON. {which} 'Original report': the 2019 student report's "
        "numbers (`ORIGINAL_REPORT` in original_report.py), measured on the original CIFAR-10. "
        "Each run's command, device, precision, torch, data and date are in "
        "[the runs table](#runs-command-device-date-time).",
        "",
        data_line(shown),
        "",
    ]
    quick = {n: quick_look_note(g) for n, g in shown.items() if quick_look_note(g)}
    if quick:
        lines += ["**Quick look.** " + ", ".join(SHORT.get(n, n) for n in quick)
                  + (" was" if len(quick) == 1 else " were") + " trained on a `--subset` or "
                  "for fewer epochs than the task's default: a check that the pipeline runs, "
                  "not numbers to set beside the original report's (marked *quick look* "
                  "wherever they stand beside them).", ""]
    lines += ["## Summary: ours beside the original report (test accuracy)", "",
              "| model | ours | original report | note |", "|---|---|---|---|"]
    for name, spec in cited.items():
        group = groups[name]
        report = original_test_accuracy(name)
        note = ORIGINAL_REPORT.get(name, {}).get("note", "")
        if not group:
            ours = f"missing: `{spec['command']}`"
        elif name == "task3_resnet18" and not resnet_real:
            ours = "not reproduced yet (the saved run did not start from ImageNet weights)"
        else:
            ours = acc_cell(group)
            if _no_final(group):
                ours += f" (no final evaluation yet: {_no_final(group)})"
            if quick.get(name):
                ours += f", *{quick[name]}*"
        lines.append(f"| {spec['label']} | {ours} | {'-' if report is None else report} | "
                     f"{note} |")

    lines += ["", "## Task 1: LeNet", "", "### 1c: parameters per layer", "", "```",
              format_parameter_table(LeNet()), "```", ""]
    if groups.get("task1_lenet"):
        text, md = final_table({"LeNet": _one_or_list(groups["task1_lenet"])},
                               original_finals(["task1_lenet"]))
        lines += ["### 1b: final loss and accuracy (best checkpoint)", "", md]
    lines += _figures(out, ["Task 1a: loss", "Task 1b: accuracy"], drawn)

    lines += ["## Task 2: Model 2.1 and Model 2.2", ""]
    task2 = {SHORT[n]: _one_or_list(g) for n, g in groups.items()
             if n.startswith("task2") and g}
    if task2:
        text, md = final_table(task2, original_finals(
            [n for n, g in groups.items() if n.startswith("task2") and g]))
        lines += ["### 2.2: final train, validation and test loss and accuracy", "", md,
                  "The report's train columns are implausible (a 0.003 loss beside 0.909 "
                  "accuracy); ours are measured on the whole training split with the best "
                  "weights, in eval() mode.", ""]
    lines += _figures(out, ["Task 2.3: accuracy", "Task 2.4: loss"], drawn)

    lines += ["## Task 3: ResNet18 transfer learning", ""]
    if resnet_real:
        text, md = final_table({"ResNet18": _one_or_list(groups["task3_resnet18"])})
        lines += [md, ""]
        lines += _figures(out, [k for k in FIGURES if k.startswith("Task 3")], drawn)
    else:
        why = cited.get("task3_resnet18", {}).get("missing")
        lines += ["**Not reproduced yet.** No run from torchvision's ImageNet weights "
                  "(resnet18-f37072fd.pth) is among the results"
                  + (f": {why}" if why else "") + ". Figures from any other weights are not "
                  "transfer-learning results and are left out. Make it with "
                  f"`{cited.get('task3_resnet18', TASK_OUTPUT_RUNS['task3_resnet18'])['command']}`"
                  ", then `python task3_visualisation.py --data-dir DATA`.", ""]

    lines += _per_class_section(cited, groups, out, drawn)

    lines += ["## Corrections to the original report", "",
              "- Curves are drawn against epochs (two checks an epoch), not the check index, so "
              "the report's warning that its x-axis was not epochs no longer applies.",
              "- The reported figures are those of the best checkpoint (restored weights), "
              "evaluated on the whole training, validation and test splits in eval() mode.",
              "- ResNet18 keeps its ImageNet weights: the report's run applied Xavier "
              "initialisation to every convolution after loading them (about 0.62 test).",
              "- The report's Model 2.1 train loss of 0.003 beside 0.909 train accuracy is not "
              "possible for one model on one split; our table measures both on the same split.",
              ""]

    lines += ["## Runs: command, device, date, time", "",
              ("Each run with the command it recorded" if own_runs else
               "Each cited run with the command that made it")
              + "; DATA stands for its `--data-dir` (a path on the machine that ran it). "
              "Status *quick look*: trained on a `--subset` or for fewer epochs than the "
              "task's default.", "",
              "| run | files | command | device | precision | torch | data | date | status | "
              "training time |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    notes_after = []
    for name, pairs in loaded.items():
        if not pairs:
            continue
        group = [r for _, r in pairs]
        device, precision, torch_version, wall = provenance(group)
        files = ", ".join(f"`{run_label(results, p)}`" for p, _ in pairs)
        dates = dates_cell([run_date(results, p, r) for p, r in pairs])
        status = ", ".join(sorted({str(r.get("status", "?")) for r in group}))
        if quick_look_note(group):
            status += f"; *{quick_look_note(group)}*"
        sources = ", ".join(dict.fromkeys(data_cell(r) for r in group))
        command = (recorded_commands(group) if own_runs else f"`{cited[name]['command']}`")
        lines.append(f"| {SHORT.get(name, name)} | {files} | {command} | {device} | "
                     f"{precision} | {torch_version} | {sources} | {dates} | {status} | "
                     f"{wall} |")
        for p, r in ([] if own_runs else pairs):
            differs = command_differs(cited[name]["command"], r)
            if differs:
                notes_after.append(f"- **Check the citation**: `{run_label(results, p)}` "
                                   f"records the command `{differs}`, which differs from the "
                                   f"cited one.")
    if notes_after:
        lines += [""] + notes_after

    known = {p.resolve() for pairs in loaded.values() for p, _ in pairs}
    other_rows = []
    for p in sorted(results.rglob("*.json")):
        if p.resolve() in known or p.name == "benchmark.json":
            continue
        try:
            run = load_run(p)
        except UserError:
            continue  # not a run
        test = ((run.get("final") or {}).get("test") or {}).get("accuracy")
        device, precision, _, wall = provenance([run])
        status = str(run.get("status", "?")) + (f"; *quick look ({quick_look(run)})*"
                                                 if quick_look(run) else "")
        other_rows.append(
            f"| {run_label(results, p)} | {'-' if test is None else f'{test:.4f}'} | "
            f"{status} | `{shown_command(run.get('config', {}).get('command', '?'))}` | "
            f"{device}, {precision} | {run_date(results, p, run)} | {wall} |")
    if other_rows:
        lines += ["", "## Other runs in the results folder (variants, comparisons)", "",
                  "| run | test acc | status | command | device | date | training time |",
                  "|---|---|---|---|---|---|---|", *other_rows]
    if missing:
        lines += ["", "## Missing runs", ""]
        for n in missing:
            why = cited[n].get("missing")
            lines.append(f"- {cited[n]['label']}: `{cited[n]['command']}`"
                         + (f" (not made: {why})" if why else ""))
    return "\n".join(lines) + "\n", missing


def _per_class_section(cited: dict, groups: dict, out: Path, drawn: set[str] | None
                       ) -> list[str]:
    shown = {SHORT.get(n, n): g for n, g in groups.items()
             if g and (n != "task3_resnet18" or is_imagenet(g))}
    lines = ["## Per-class test accuracy", ""]
    if not shown:
        return lines + ["No cited run is in the results folder.", ""]
    lines += ["Per-class accuracy on the 10,000 test images (best checkpoint; several seeds: "
              "mean ± std). '-': the run file has no per-class data (runs made before the "
              "Trainer recorded it, or still running).", "",
              per_class_table({k: _one_or_list(g) for k, g in shown.items()}, CLASSES)]
    for label, group in shown.items():
        name = confusion_figure(group)
        if confusion_counts(group)[0] is None:
            continue
        if (drawn is None or name in drawn) and (out / name).is_file():
            lines += [f"**{label}: test confusion matrix**", "", f"![{label}]({name})", ""]
        else:
            lines += [f"**{label}: test confusion matrix**: missing (`{name}` is not in the "
                      "output folder)", ""]
    return lines


def readme_table(results: Path, cited: dict | None = None) -> str:
    """README's results table, from the cited run files alone (a test holds README to it)."""
    cited = cited or CITED
    groups = load_groups(results, cited)
    lines = ["| model | test acc | val acc | runs | command | device, date, time | "
             "original report |", "|---|---|---|---|---|---|---|"]
    for name, spec in cited.items():
        group = [run for _, run in groups[name]]
        original = original_test_accuracy(name)
        if not group or (name == "task3_resnet18" and not is_imagenet(group)):
            lines.append(f"| {spec['label']} | not measured | | | `{shown_command(spec['command'])}` "
                         f"| | {original} |")
            continue
        device, precision, torch_version, wall = provenance(group)
        path, run = groups[name][0]
        date = run_date(results, path, run)
        seeds = (f"{len(group)} seeds" if len(group) > 1 else "1 run")

        def accuracy(split: str) -> str:
            return _no_final(group) or format_mean_std(
                [r["final"][split]["accuracy"] for r in group], 4)

        quick = quick_look_note(group)
        lines.append(f"| {spec['label']} | {accuracy('test')}"
                     + (f", *{quick}*" if quick else "") + f" | {accuracy('val')} | "
                     f"{seeds} | `{shown_command(spec['command'])}` | {device}, {precision}, "
                     f"torch {torch_version}, {date}, {wall} | {original} |")
    return "\n".join(lines) + "\n"


def get_args_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
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
    drawn = {p.name for p in draw_figures(results, out, cited)}
    text, missing = build_report(results, out, cited, drawn, own_runs=args.own_runs)
    path = out / "REPORT.md"
    atomic_write_text(path, text)
    print(f"wrote {path} and {len(drawn)} figures"
          + (f"; missing runs: {', '.join(missing)}" if missing else ""))
    return path


if __name__ == "__main__":
    run_cli(main, get_args_parser())
