"""The report's tables of runs, as `Table` data: the summary beside the original report (and
run_all.py's console copy of it), the runs table (command, code version, device, data, date),
the other runs in the results folder, and README's results table.
"""
from __future__ import annotations

from pathlib import Path

from cli import UserError
from run_tables import format_mean_std, quick_look, quick_look_note, weights_file_name
from recipes import by_run_name
from report_cited import (CITED, RESNET, acc_cell, no_final, command_cell, command_differs,
                          data_cell, dates_cell, is_imagenet, load_groups, provenance, run_date,
                          run_label, short, shown_command, shown_groups)
from report_text import CHECK_CITATION, RUNS_INTRO, RUNS_WHO
from runrecord import Run
from runs import load_run
from tables import Table

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
            if no_final(group):
                ours += f" (no final evaluation yet: {no_final(group)})"
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


def runs_section(results: Path, cited: dict, loaded: dict, own_runs: bool) -> list[str]:
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
        code = ", ".join(dict.fromkeys(Run.from_dict(r, p).code_version or "-"
                                       for p, r in pairs))
        rows.append([short(name), files, command_cell(spec, group), code, device, precision,
                     torch_version, sources, dates, status, wall])
        if "files" in spec:  # a citation: the runs' own commands must be the cited one
            checks += [CHECK_CITATION.format(run=run_label(results, p), recorded=differs)
                       for p, r in pairs if (differs := command_differs(spec, r))]
    lines.append(Table(["run", "files", "command", "code version", "device", "precision",
                        "torch", "data", "date", "status", "training time"], rows))
    return lines + ([""] + checks if checks else [])


def other_run_files(results: Path, loaded: dict) -> list[tuple[Path, dict]]:
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


def other_runs_section(results: Path, others: list[tuple[Path, dict]]) -> list[str]:
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
            lines.append(f"| {spec['label']} | not measured | | | "
                         f"`{shown_command(spec['command'])}` "
                         f"| | {original} |")
            continue
        device, precision, torch_version, wall = provenance(group)
        days = sorted({run_date(results, p, r)[:10] for p, r in loaded[name]})
        folders = ", ".join(dict.fromkeys(f"`{run_label(results, p).split('/')[0]}/`"
                                          for p, _ in loaded[name]))
        date = (days[0] if len(days) == 1 else f"{days[0]} to {days[-1]}") + f" ({folders})"

        def accuracy(split: str) -> str:
            return no_final(group) or format_mean_std(
                [r["final"][split]["accuracy"] for r in group], 4)

        quick = quick_look_note(group)
        lines.append(f"| {spec['label']} | {accuracy('test')}"
                     + (f", *{quick}*" if quick else "") + f" | {accuracy('val')} | "
                     f"{f'{len(group)} seeds' if len(group) > 1 else '1 run'} | "
                     f"`{shown_command(spec['command'])}` | {device}, {precision}, "
                     f"torch {torch_version}, {date}, {wall} | "
                     f"{original} |")
    return "\n".join(lines) + "\n"
