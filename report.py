"""The report, with evidence: REPORT.md, the same report as REPORT.tex (compiled to REPORT.pdf
where TeX is installed) and every figure they show, drawn from run files alone (nothing is
trained or guessed), beside the original 2019 student report's numbers.

    python report.py                                  # results/ -> results/report/ (the evidence)
    python report.py --own-runs                       # your runs in plots/ -> plots/REPORT.md
    python report.py --own-runs --results DIR         # the runs a task script wrote to DIR

One layout, one code path; this file is the command line, which hands the report the task
scripts' models (for the tables of their layers), and the report itself is the `reporting`
package: reporting/cited.py (which runs, and why), results.py and architecture.py (its
tables), bar.py (the handout's bar for Task 2), figures.py, words.py (the words), task2.py
(Task 2's part) and sections.py (the report in the handout's order, with its figures and an
appendix, "Provenance"), with render.py for the two formats and table.py for a table (and
how wide its columns print). Which runs a REPORT.md shows is a table of
specs, one per model: by default `CITED` in reporting/cited.py (the committed evidence: glob
patterns relative to --results, several files being seeds of one model, and the command that
made them, checked against the command each run recorded); with `--own-runs`
`TASK_OUTPUT_RUNS` (the runs the task scripts wrote
under their own names, each shown with the command it recorded). What else differs from run
to run is read from the run files: the data source (its kind and the data cache's key),
device, precision, torch version, date, command and training time, and whether a run was a
quick look (`--subset`, or fewer epochs than its task's default; such numbers are marked
wherever they stand beside the original report's). Its appendix names the command that
rebuilds the file. A run that is missing is listed with the command that makes it, never
filled in. ResNet18 numbers count as transfer learning only when the run started from
torchvision's ImageNet file (checked by its SHA-256 when it was trained). Every other run
file under --results is listed under "Other runs".
"""
from __future__ import annotations

import argparse
from pathlib import Path

from torch import nn

import task2_models
from reporting import sections
from reporting.cited import CITED, DEFAULT_RESULTS, EVIDENCE_DIR, TASK_OUTPUT_RUNS, load_groups
from reporting.render import TitleBlock, compile_pdf, to_latex_text, to_markdown_text
from reporting.results import readme_table
from reporting.sections import draw_figures
from task1_lenet import LeNet
from training.cli import ArgumentParser, add_best_model_arg, add_debug_arg, run_cli
from training.errors import UserError
from training.recipes import RECIPES, task2_label
from training.record import Run
from training.storage import atomic_write_text


def model_of(label: str, run: Run | None) -> nn.Module:
    """The model a run of the recipe labelled `label` trained (None: no run; the default
    model), for the report's tables of its parameters and layers (1c, 2a): LeNet, or a Task 2
    model rebuilt from the flags its run recorded."""
    if label == RECIPES["lenet"].label:
        return LeNet()
    return task2_models.model_of(label, run)


def report_blocks(results: Path, *args, **kwargs) -> tuple[list, list[str]]:
    """`reporting.sections.report_blocks` with this project's models."""
    return sections.report_blocks(results, *args, model_of=model_of, **kwargs)


def build_report(results: Path, *args, **kwargs) -> tuple[str, list[str]]:
    """`reporting.sections.build_report` with this project's models: REPORT.md's text and the
    list of missing runs."""
    return sections.build_report(results, *args, model_of=model_of, **kwargs)


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
    g = parser.add_argument_group("the title page (the student's own; placeholders if not given)")
    g.add_argument("--author", default="", metavar="NAME", help="your name")
    g.add_argument("--student-id", default="", metavar="ID", help="your student number")
    g.add_argument("--date", default="", help="the date to print (e.g. 2026-12-06)")
    parser.add_argument("--no-pdf", action="store_true",
                        help="write REPORT.tex but do not compile it to REPORT.pdf (default: "
                             "compile it where latexmk or pdflatex is installed)")
    parser.add_argument("--readme-table", action="store_true",
                        help="print README's results table (from the cited runs) and stop")
    add_debug_arg(parser)
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
    if args.own_runs and not any(loaded.values()):
        raise UserError(f"no runs of the task scripts in {results} (task1_lenet.json, "
                        "task2_model21.json, ...); train first (python task1_lenet.py, "
                        "python task2_models.py, ...), or give --results the folder they "
                        "wrote to")
    if not args.own_runs:
        print(f"rebuilding the report of the committed runs in {results}/ into {out}/ (your "
              "own runs: python report.py --own-runs)")
    drawn = {p.name for p in draw_figures(results, out, cited, best, loaded)}
    blocks, missing = report_blocks(results, out, cited, drawn, own_runs=args.own_runs,
                                    best=best, loaded=loaded)
    title = TitleBlock(args.author, args.student_id, args.date)
    path = out / "REPORT.md"
    atomic_write_text(path, to_markdown_text(blocks, title))
    atomic_write_text(out / "REPORT.tex", to_latex_text(blocks, title))
    print(f"wrote {path}, {out / 'REPORT.tex'} and {len(drawn)} figures"
          + (f"; missing runs: {', '.join(missing)}" if missing else ""))
    if args.no_pdf:
        (out / "REPORT.pdf").unlink(missing_ok=True)  # never a PDF of an older REPORT.tex
    else:
        print(compile_pdf(out / "REPORT.tex")[1])
    return path


if __name__ == "__main__":
    run_cli(main, get_args_parser())
