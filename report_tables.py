"""The report's tables of runs, as `Table` data: the summary beside the original report (and
run_all.py's console copy of it), the runs table (command, code version, device, data, date),
the other runs in the results folder, and README's results table.
"""
from __future__ import annotations

from pathlib import Path

import runrecord
from cli import UserError
from recipes import by_run_name
from report_cited import (CITED, RESNET, acc_cell, command_cell, command_differs, data_cell,
                          dates_cell, is_imagenet, load_groups, no_final, provenance, run_date,
                          run_label, short, shown_command, shown_groups)
from report_text import CHECK_CITATION, RUNS_INTRO, RUNS_WHO
from run_tables import format_mean_std, weights_file_name
from runrecord import Run, RunGroup
from tables import Table

# --------------------------------------------------------------------------- the summary
def summary_rows(cited: dict, groups: dict[str, RunGroup], why_missing: dict | None = None
                 ) -> list[tuple[str, str, str, str, str]]:
    """(run name, model, ours, original report, note) per model: the summary of REPORT.md and
    of run_all.py's console, beside the original report's test accuracy. `why_missing`: what to
    say instead of the command that makes a missing run (run_all knows why it skipped one)."""
    rows = []
    for name, spec in cited.items():
        group, recipe = groups.get(name) or RunGroup(name, []), by_run_name(name)
        report = recipe.original.get("test", {}).get("accuracy") if recipe else None
        if not group:
            ours = (why_missing or {}).get(name) or f"missing: `{spec['command']}`"
        elif name == RESNET.run_name and not is_imagenet(group):
            weights = weights_file_name(group.first.config)
            ours = ("not reproduced yet (the saved run did not start from ImageNet weights"
                    + (f": {weights}" if weights else "") + ")")
        else:
            ours = acc_cell(group)
            if no_final(group):
                ours += f" (no final evaluation yet: {no_final(group)})"
            if group.quick_look:
                ours += f", *{group.quick_look}*"
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


def runs_section(results: Path, cited: dict, loaded: dict[str, RunGroup], own_runs: bool
                 ) -> list[str]:
    lines = ["## Runs: command, device, date, time", "",
             RUNS_INTRO.format(who=RUNS_WHO[own_runs]), ""]
    rows, checks = [], []
    for name, group in loaded.items():
        if not group:
            continue
        spec = cited[name]
        device, precision, torch_version, wall = provenance(group.runs)
        files = ", ".join(f"`{run_label(results, r.path)}`" for r in group)
        dates = dates_cell([run_date(results, r) for r in group])
        status = ", ".join(sorted({r.status for r in group}))
        if group.quick_look:
            status += f"; *{group.quick_look}*"
        sources = ", ".join(dict.fromkeys(data_cell(r) for r in group))
        code = ", ".join(dict.fromkeys(r.code_version or "-" for r in group))
        rows.append([short(name), files, command_cell(spec, group.runs), code,
                     device, precision, torch_version, sources, dates, status, wall])
        if "files" in spec:  # a citation: the runs' own commands must be the cited one
            checks += [CHECK_CITATION.format(run=run_label(results, r.path), recorded=differs)
                       for r in group if (differs := command_differs(spec, r))]
    lines.append(Table(["run", "files", "command", "code version", "device", "precision",
                        "torch", "data", "date", "status", "training time"], rows))
    return lines + ([""] + checks if checks else [])


def other_run_files(results: Path, loaded: dict[str, RunGroup]) -> list[Run]:
    """Every run file under `results` that no spec shows (variants, comparisons); not the
    experiments' runs (2e's tables show them) nor the earlier runs a rerun kept in
    `previous/`."""
    known = {r.path.resolve() for group in loaded.values() for r in group}
    found = []
    for p in sorted(results.rglob("*.json")):
        if p.resolve() in known or p.name == "benchmark.json" or "previous" in p.parts:
            continue
        try:
            run = Run.load(p)
        except UserError:
            continue  # not a run
        if not run.config.get("experiment"):
            found.append(run)
    return found


def other_runs_section(results: Path, others: list[Run]) -> list[str]:
    rows = []
    for run in others:
        test = run.accuracy("test")
        device, precision, _, wall = provenance([run])
        note = runrecord.quick_look_note([run])
        rows.append([run_label(results, run.path), '-' if test is None else f'{test:.4f}',
                     run.status + (f"; *{note}*" if note else ""),
                     f"`{shown_command(run.command or '?')}`",
                     f"{device}, {precision}", run_date(results, run), wall])
    if not rows:
        return []
    return ["", "## Other runs in the results folder (variants, comparisons)", "",
            Table(["run", "test acc", "status", "command", "device", "date", "training time"],
                  rows)]


def readme_table(results: Path, cited: dict | None = None) -> str:
    """README's results table, from the cited run files alone (a test holds README to it)."""
    cited = cited or CITED
    loaded = load_groups(results, cited)
    lines = ["| model | test acc | val acc | runs | command | device, date, time | "
             "original report |", "|---|---|---|---|---|---|---|"]
    for name, spec in cited.items():
        typed = loaded[name]
        original = by_run_name(name).original["test"]["accuracy"]
        if not shown_groups({name: typed}):
            lines.append(f"| {spec['label']} | not measured | | | "
                         f"`{shown_command(spec['command'])}` "
                         f"| | {original} |")
            continue
        device, precision, torch_version, wall = provenance(typed.runs)
        days = sorted({run_date(results, r)[:10] for r in typed})
        folders = ", ".join(dict.fromkeys(f"`{run_label(results, r.path).split('/')[0]}/`"
                                          for r in typed))
        date = (days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}") + f" ({folders})"

        def accuracy(split: str) -> str:
            return no_final(typed) or format_mean_std(typed.values(split), 4)

        quick = typed.quick_look
        lines.append(f"| {spec['label']} | {accuracy('test')}"
                     + (f", *{quick}*" if quick else "") + f" | {accuracy('val')} | "
                     f"{f'{len(typed)} seeds' if len(typed) > 1 else '1 run'} | "
                     f"`{shown_command(spec['command'])}` | {device}, {precision}, "
                     f"torch {torch_version}, {date}, {wall} | "
                     f"{original} |")
    return "\n".join(lines) + "\n"
