"""The code ZIP the 2019 handout asks for ("upload your code as a single ZIP file"): this
repository's code and documents, and your REPORT.md, figures, tables and run files from the
output folder; no checkpoints, data caches, data or the project's own committed runs.

    python submission_zip.py                         # plots/ -> plots/submission.zip
    python submission_zip.py --runs DIR --output FILE.zip [--force]

The code and documents are the files git tracks (every file but `results/`, the project's
evidence, which is not your work), or without git the project's source files. From the
output folder: REPORT.md and the other Markdown tables, PNG and PDF figures and run JSON
files, and REPORT.tex; never REPORT.pdf: the handout takes the report as a PDF of its own,
handed in beside the ZIP. It prints what it put in and how big the ZIP is, and refuses to
overwrite an existing file unless --force is given.
"""
from __future__ import annotations

import argparse
import subprocess
import zipfile
from pathlib import Path

from training.cli import ArgumentParser, add_debug_arg, run_cli
from training.errors import UserError
from training.storage import atomic_write

PROJECT_DIR = Path(__file__).resolve().parent
TOP = "tdt4265-a3"  # the folder the ZIP unpacks into
# Without git: the project's own files are these kinds, outside these folders.
SOURCE_SUFFIXES = (".py", ".md", ".txt", ".sh", ".ini", ".cfg", ".toml", ".gitignore")
NEVER = ("data", "plots", "results", ".git", ".venv", "venv", "env", "__pycache__",
         ".pytest_cache")
OUTPUT_SUFFIXES = (".md", ".png", ".pdf", ".json", ".tex")
REPORT_PDF = "REPORT.pdf"  # handed in on its own, never in the code ZIP
LARGEST_OUTPUT = 5 * 1024 * 1024  # a run file or figure is kilobytes; anything bigger stays out


def code_files(root: Path = PROJECT_DIR) -> list[Path]:
    """The repository's code and documents, relative to `root`."""
    try:
        listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], capture_output=True,
                                text=True, check=True).stdout.split("\0")
        files = [Path(p) for p in listed if p]
    except (OSError, subprocess.CalledProcessError):  # no git, or not a clone
        files = [p.relative_to(root) for p in root.rglob("*") if p.is_file()
                 and p.name.endswith(SOURCE_SUFFIXES)]
    return sorted(p for p in files if p.parts and p.parts[0] not in NEVER
                  and (root / p).is_file())


def output_files(runs: Path) -> list[Path]:
    """REPORT.md, tables, figures and run files of the output folder (its top level)."""
    return sorted(p for p in runs.iterdir() if p.is_file() and not p.name.startswith(".")
                  and p.suffix in OUTPUT_SUFFIXES and p.name != REPORT_PDF
                  and p.stat().st_size <= LARGEST_OUTPUT)


def write_zip(output: Path, runs: Path, force: bool = False, root: Path = PROJECT_DIR
              ) -> dict[str, list[str]]:
    """Write the ZIP; {"code": [...], "outputs": [...]} as they are named inside it."""
    if output.exists() and not force:
        raise UserError(f"{output} exists; give --force to overwrite it, or another --output",
                        exit_code=2)
    if not runs.is_dir():
        raise UserError(f"--runs {runs} is not a folder; give the output folder of your runs "
                        "with --runs DIR (the --output-dir they were written to, default plots)")
    if not (runs / "REPORT.md").is_file():
        raise UserError(f"no REPORT.md in {runs}; runs written with --output-dir DIR "
                        "(run_all.py's too) are packed with --runs DIR, else write it first: "
                        f"python report.py --own-runs --results {runs}")
    code = code_files(root)
    outputs = [p for p in output_files(runs) if p.resolve() != output.resolve()]
    names = {"code": [f"{TOP}/{p.as_posix()}" for p in code],
             "outputs": [f"{TOP}/{runs.name}/{p.name}" for p in outputs]}

    def write(tmp: str):
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for path, name in zip([root / p for p in code] + outputs,
                                  names["code"] + names["outputs"]):
                zf.write(path, name)

    atomic_write(output, write)
    return names


def get_args_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="submission_zip.py",
        description="Write the code ZIP the handout asks for: the repository's code and "
                    "documents, and REPORT.md, figures, tables and run files from your output "
                    "folder (no checkpoints, caches or data).")
    parser.add_argument("--runs", default="plots", metavar="DIR",
                        help="the output folder of your runs, with REPORT.md (default: plots)")
    parser.add_argument("--output", default=None, metavar="FILE",
                        help="the ZIP to write (default: submission.zip in --runs)")
    parser.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    add_debug_arg(parser)
    return parser


def main(args: argparse.Namespace) -> dict[str, list[str]]:
    runs = Path(args.runs)
    output = Path(args.output) if args.output else runs / "submission.zip"
    names = write_zip(output, runs, args.force)
    with zipfile.ZipFile(output) as zf:
        infos = zf.infolist()
    for kind in ("code", "outputs"):
        shown = ", ".join(n.split("/", 1)[1] for n in names[kind])
        print(f"{kind} ({len(names[kind])} files): {shown}")
    print(f"wrote {output}: {len(infos)} files, {output.stat().st_size / 1e6:.2f} MB")
    pdf = runs / REPORT_PDF
    print(f"left out {pdf}: the handout takes the report as a PDF of its own; hand it in "
          "beside the ZIP" if pdf.is_file() else
          f"no {pdf}: hand in your report as a PDF beside the ZIP (report.py compiles "
          "REPORT.tex to it where TeX is installed)")
    return names


if __name__ == "__main__":
    run_cli(main, get_args_parser())
