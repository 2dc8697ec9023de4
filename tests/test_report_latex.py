"""REPORT.tex beside REPORT.md: every table rendered from the same data in both, special
characters escaped, a section for each handout item with figures that exist, the compiled
PDF where TeX is installed, and a run file of the wrong shape refused in one line."""
import json
import re
import shutil
import subprocess

import pytest
from conftest import run_script

from report import report_blocks
from reporting.cited import TASK_OUTPUT_RUNS
from reporting.render import (
    compile_pdf,
    included_figures,
    latex_escape,
    tex_command,
    to_latex,
    to_latex_text,
    to_markdown,
)
from reporting.table import (
    GAP_PT,
    LANDSCAPE_PT,
    Table,
    column_widths,
    is_wide,
    text_pt,
    wrapped_lines,
)
from reporting.words import ITEMS
from training.errors import UserError
from training.record import Run, RunGroup

NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def tiny_run(model, acc, seed=0, epochs=2, suffix=""):
    history = [{"epoch": e / 2, "step": 5 * e, "train_loss": 2.0 - e / 10,
                "val_loss": 1.9 - e / 10, "val_accuracy": acc - 0.1 + e / 100,
                "test_loss": 1.9 - e / 10, "test_accuracy": acc - 0.1 + e / 100,
                "train_accuracy": 0.3 + e / 10} for e in range(1, 2 * epochs + 1)]
    return {"config": {"model": model, "seed": seed, "device": "cpu", "precision": "bf16",
                       "epochs": epochs, "args": {"subset": 300, "epochs": epochs},
                       "command": f"python task.py --run-suffix {suffix} --data-dir a_b/c%d",
                       "environment": {"torch": "2.x", "threads": 2},
                       "data": {"kind": "archive", "path": "a_b/c%d.tar.gz", "n_train": 270,
                                "n_val": 30, "n_test": 300}},
            "status": "finished", "history": history,
            "final": {"best_epoch": epochs, **{s: {"loss": 1.0 + seed / 10, "accuracy": acc}
                                               for s in ("train", "val", "test")}},
            "timings": {"train_s": 12.5}}


@pytest.fixture
def tiny_results(tmp_path):
    """The task scripts' own runs of a quick look: LeNet and both Task 2 models, two seeds
    each, a run suffix with LaTeX's special characters; no ResNet18 run."""
    out = tmp_path / "runs"
    out.mkdir()
    for name, model, acc in (("task1_lenet", "lenet", 0.41), ("task2_model21", "model21", 0.52),
                             ("task2_model22", "model22", 0.55)):
        for seed in (0, 1):
            (out / f"{name}_seed{seed}.json").write_text(
                json.dumps(tiny_run(model, acc + seed / 100, seed, suffix="_x&y#1")))
    return out


def numbers(text):
    return NUMBER.findall(text)


def test_every_table_has_the_same_numbers_in_markdown_and_latex(tiny_results):
    blocks, missing = report_blocks(tiny_results, cited=TASK_OUTPUT_RUNS, drawn=set())
    tables = [b for b in blocks if isinstance(b, Table)]
    assert missing == ["task2_model21_10ep", "task2_model22_10ep", "task3_resnet18"]
    titles = {t.title for t in tables}
    assert {"Model 2.1: layers", "Model 2.2: training details",
            "Most confused (true -> predicted)"} <= titles
    assert len(tables) >= 12  # summary, checklist, 1b, 1c, LeNet's details, 2a x4, 2b, the bar
    bar = next(t for t in tables if t.header[0] == "recipe" and "verdict" in t.header)
    assert bar.column("recipe") == ["Model 2.1, the report's recipe", "", "",
                                    "Model 2.2, the report's recipe", "", ""]
    assert bar.column("verdict") == ["misses", "misses", "0 of 2 seeds pass"] * 2
    assert bar.column("test acc at epoch 10")[0] == "0.4600 (epoch 2.0)"  # trained 2 epochs
    runs = next(t for t in tables if t.header[0] == "run: files")
    assert all(made.startswith("code -;") for made in runs.column(runs.header[-1]))
    for table in tables:
        md, tex = to_markdown(table), to_latex(table)
        md_rows = [line for line in md.splitlines() if line.startswith("| ")][1:]
        tex_rows = tex.split("\\endhead\n")[1].split("\\bottomrule")[0].splitlines()
        assert len(md_rows) == len(tex_rows) == len(table.rows), table.title
        for row, md_row, tex_row in zip(table.rows, md_rows, tex_rows):
            plain = tex_row.replace(r"\allowbreak{}", "")
            shown = re.sub(r"\]\([^)]*\)", "]", md_row)  # a link's target is not printed
            assert numbers(shown) == numbers(plain), (md_row, tex_row)
            assert numbers(md_row) == numbers(" ".join(c or "" for c in row))
    assert any(numbers(" ".join(c or "" for c in row)) for t in tables for row in t.rows)


def test_special_characters_in_a_run_suffix_and_a_path_are_escaped(tiny_results):
    blocks, _ = report_blocks(tiny_results, cited=TASK_OUTPUT_RUNS, drawn=set())
    tex = to_latex_text(blocks).split(r"\begin{document}")[1]  # the preamble's macros aside
    assert r"-{}-run-suffix \_\allowbreak{}x\&y\#1" in tex
    assert r"a\_\allowbreak{}b/\allowbreak{}c\%d" not in tex  # the data path is shown as DATA
    assert "x&y" not in tex and "#1" not in tex.replace(r"\#1", "")
    assert latex_escape("a_b%c#d&e$f{g}h~i^j\\k") == (
        r"a\_b\%c\#d\&e\$f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k")
    assert latex_escape("**bold** and *em* [text](#anchor) `x_y`") == (
        r"\textbf{bold} and \emph{em} text \texttt{x\_\allowbreak{}y}")
    cell = Table(["run", "acc"], [["task2_model22_p0.1 50%", "0.77"]])
    assert r"task2\_model22\_p0.1 50\%" in to_latex(cell)


def write_report(results, *flags):
    result = run_script("report.py", "--own-runs", "--results", str(results), *flags)
    assert result.returncode == 0, result.stderr
    return result


def test_report_tex_has_every_handout_item_and_its_figures_exist(tiny_results):
    write_report(tiny_results, "--no-pdf")
    tex = (tiny_results / "REPORT.tex").read_text()
    headings = re.findall(r"\\(?:sub)*section\*?\{([^}]*)\}", tex)
    for item, _ in ITEMS[1:]:
        if item == "Task 2":
            continue
        assert any(re.search(rf"(?<![\w.]){item}(?!\w)", h) for h in headings), item
    figures = included_figures(tex)
    assert len(figures) == 6  # 1a, 1b, 2c, 2d, both Task 2 figures (no confusion counts here)
    for name in figures:
        assert name.endswith(".pdf") and (tiny_results / name).is_file(), name
    assert tex.count(r"\textbf{Your words.}") == 1  # 2e (Task 3's is not reproduced here)
    assert not (tiny_results / "REPORT.pdf").exists()


@pytest.mark.skipif(tex_command() is None,
                    reason="no TeX installation (latexmk or pdflatex) on PATH; .ci/run installs "
                           "one with apt-get where it can")
def test_report_tex_compiles_to_a_pdf(tiny_results):
    result = write_report(tiny_results)
    pdf = tiny_results / "REPORT.pdf"
    assert f"compiled {pdf}" in result.stdout, result.stdout
    assert pdf.read_bytes()[:5] == b"%PDF-"
    log = (tiny_results / "REPORT.log").read_text(errors="replace")
    pages = int(re.search(r"Output written on REPORT\.pdf \((\d+) pages?", log).group(1))
    assert 6 <= pages <= 20, pages
    used = set(re.findall(r"<use ([\w.]+\.pdf)>", log))  # the figure files pdfTeX embedded
    assert used == set(included_figures((tiny_results / "REPORT.tex").read_text()))
    assert len(used) == 6


def test_a_failed_compile_is_one_line_naming_the_log(tmp_path):
    if tex_command() is None:
        pytest.skip("no TeX installation")
    tex = tmp_path / "REPORT.tex"
    tex.write_text("\\documentclass{article}\\begin{document}\\undefinedcommand\\end{document}\n")
    pdf, line = compile_pdf(tex)
    assert pdf is None and line == f"could not compile {tex} to a PDF; see {tmp_path / 'REPORT.log'}"
    assert (tmp_path / "REPORT.log").is_file()


def test_without_tex_one_line_says_how(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    pdf, line = compile_pdf(tmp_path / "REPORT.tex")
    assert pdf is None and "Overleaf" in line and "apt install texlive-latex-recommended" in line
    assert "\n" not in line


@pytest.mark.parametrize("content, why", [
    ("[1, 2]", "no 'history' list"),
    ('{"history": [1]}', "a 'history' entry is not an object"),
    ('{"history": [], "final": {"test": {"accuracy": "high"}}}', "'final.test' must hold"),
    ('{"history": [], "config": []}', "'config' and 'final' must be objects"),
])
def test_a_run_file_of_the_wrong_shape_is_one_clear_error(tmp_path, content, why):
    path = tmp_path / "task1_lenet.json"
    path.write_text(content)
    with pytest.raises(UserError, match=re.escape(why)) as err:
        Run.load(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    result = run_script("report.py", "--own-runs", "--results", str(tmp_path), "--no-pdf")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and str(path) in result.stderr


def test_a_run_and_a_group_of_seeds(tmp_path):
    runs = []
    for seed, acc in ((0, 0.70), (1, 0.74)):
        data = tiny_run("model21", acc, seed)
        data["config"]["code"] = {"commit": "0123456789abcdef", "dirty": seed == 1}
        data["final"]["test"]["per_class_accuracy"] = [acc] * 10
        path = tmp_path / f"task2_model21_seed{seed}.json"
        path.write_text(json.dumps(data))
        runs.append(Run.load(path))
    first = runs[0]
    assert (first.name, first.seed, first.accuracy("val"), first.best_epoch) == (
        "task2_model21_seed0", 0, 0.70, 2)
    assert first.has_test_curve and first.quick_look == "--subset 300, 2 of 40 epochs"
    assert (first.device, first.precision, first.torch_version, first.data_kind) == (
        "cpu (2 threads)", "bf16", "2.x", "archive")
    assert first.code_version == "0123456" and runs[1].code_version == (
        "0123456 (uncommitted changes)")
    group = RunGroup("task2_model21", runs)
    assert group.mean_std() == pytest.approx((0.72, 0.028284271), rel=1e-6)  # sample sd
    assert group.per_class()[0] == pytest.approx((0.72, 0.028284271), rel=1e-6)
    assert group.quick_look == "quick look (--subset 300, 2 of 40 epochs)"
    older = tiny_run("lenet", 0.5, epochs=10)
    del older["config"]["args"]
    old = Run.from_dict(older, tmp_path / "old.json")
    assert old.code_version is None and old.quick_look is None


def test_no_table_is_shrunk_and_the_smallest_table_type_is_small(tiny_results):
    blocks, _ = report_blocks(tiny_results, cited=TASK_OUTPUT_RUNS, drawn=set())
    tex = to_latex_text(blocks)
    assert r"\resizebox" not in tex and r"\scalebox" not in tex
    for small in (r"\footnotesize", r"\scriptsize", r"\tiny"):
        assert small not in tex, small
    tables = [b for b in blocks if isinstance(b, Table)]
    assert tex.count(r"\begin{longtable}") == len(tables)
    for table in tables:  # a wide table wraps its columns within the line
        widths = column_widths(table)
        assert widths is None or sum(widths) <= 1.0, table.title


# 2e's ranked table: ten columns, too many for a portrait line without breaking words
WIDE = Table(["variant", "changes", "parameters", "seeds", "test acc",
              "Δ test acc, points [95 % CI]", "half-width, points", "p (paired t)", "verdict",
              "test ≥ 0.75"],
             [[f"lenet-{name}", ("BatchNorm after each convolution and the first dense layer "
                                   "(before ReLU)"), "1,292,106", "5", "0.7328", "+1.62 [+0.74, +2.50]", "0.88",
               "0.007; Holm 0.056", "not distinguishable: smaller than 1.67 points, if any",
               "0 of 5"] for name in ("bn", "double", "dropout")], title="Ranked")
NARROW = Table(["model", "test acc"], [["LeNet", "0.7226"]])


def test_a_wide_table_keeps_every_word_whole_on_a_landscape_page():
    assert wrapped_lines("one two three", text_pt("one two three")) == 1
    assert wrapped_lines("one two three", text_pt("one two")) == 2
    assert not is_wide(NARROW) and column_widths(NARROW) is None
    assert is_wide(WIDE)
    widths = column_widths(WIDE)
    assert sum(widths) * LANDSCAPE_PT + GAP_PT * (len(widths) - 1) <= LANDSCAPE_PT
    for i, name in enumerate(WIDE.header):
        column = [name] + [row[i] for row in WIDE.rows]
        longest = max(text_pt(word) for c in column for word in c.split())
        assert widths[i] * LANDSCAPE_PT >= longest, name
    assert widths[2] * LANDSCAPE_PT >= text_pt("1,292,106")  # a number is never broken
    assert to_latex(WIDE).startswith(r"\begin{landscape}")
    assert to_latex(WIDE).rstrip().endswith(r"\end{landscape}")
    assert "landscape" not in to_latex(NARROW)


def test_a_heading_and_the_wide_tables_under_it_share_one_landscape_page():
    tex = to_latex_text(["## Ranked", WIDE, WIDE, "", "Text after them.", NARROW,
                         "## Next", "Words.", WIDE])
    assert tex.count(r"\begin{landscape}") == 2 == tex.count(r"\end{landscape}")
    first = tex.index(r"\begin{landscape}")
    tables = [m.start() for m in re.finditer(r"\\begin\{longtable\}", tex)]
    assert first < tex.index(r"\section{Ranked}") < tables[0] < tables[1]
    assert tables[1] < tex.index(r"\end{landscape}") < tex.index("Text after them.") < tables[2]
    second = tex.index(r"\begin{landscape}", first + 1)
    assert tex.index("Words.") < second < tables[3] < tex.rindex(r"\end{landscape}")


@pytest.mark.skipif(tex_command() is None, reason="needs TeX (latexmk or pdflatex)")
def test_no_line_or_table_cell_runs_over_in_the_compiled_pdf(tmp_path):
    tex = tmp_path / "REPORT.tex"
    prose = ("The report's recipes for 10 epochs are Task 2e's runs of them (`python "
             "task2_experiments.py --data-dir DATA --only model21 model22`, run files in "
             "`cpu-2026-12-02/experiments`, `cpu-2026-12-06/experiments`); this project's "
             "10-epoch recipes are their own runs (the runs table in the appendix).")
    tex.write_text(to_latex_text(["# Tables", prose, "## Ranked", WIDE, NARROW, Table(
        ["layer type", "filters / activation", "kernel, stride, padding", "output",
         "parameters"], [["Conv2d", "32", "5x5, 1, 2", "32x32x32", "2,432"]] * 3)]))
    pdf, _ = compile_pdf(tex)
    assert pdf is not None
    log = (tmp_path / "REPORT.log").read_text(errors="replace")
    over = [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
    assert not [x for x in over if x > 1.0], over


def test_the_title_block_holds_the_students_fields_or_placeholders(tiny_results):
    write_report(tiny_results, "--no-pdf", "--author", "Ada Lovelace", "--student-id", "123456",
                 "--date", "2026-12-06")
    tex = (tiny_results / "REPORT.tex").read_text()
    md = (tiny_results / "REPORT.md").read_text()
    assert r"\maketitle" in tex and "Ada Lovelace" in tex and "123456" in tex
    assert r"\date{2026-12-06}" in tex
    assert "**Name:** Ada Lovelace · **Student number:** 123456 · **Date:** 2026-12-06" in md
    write_report(tiny_results, "--no-pdf")
    tex = (tiny_results / "REPORT.tex").read_text()
    assert "[your name]" in tex and "[your student number]" in tex and r"\date{[date]}" in tex
    assert "**Name:** [your name]" in (tiny_results / "REPORT.md").read_text()


@pytest.mark.skipif(tex_command() is None or shutil.which("pdffonts") is None,
                    reason="needs TeX and pdffonts (poppler-utils); .ci/run installs both with "
                           "apt-get where it can")
def test_the_pdf_has_vector_fonts_only(tiny_results):
    write_report(tiny_results)
    fonts = subprocess.run(["pdffonts", str(tiny_results / "REPORT.pdf")], capture_output=True,
                           text=True, check=True).stdout.splitlines()[2:]
    assert fonts and not any("Type 3" in line for line in fonts), fonts
