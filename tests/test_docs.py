"""What a reader follows leads somewhere: every relative link and #anchor in README, docs/ and
the committed REPORT.md resolves, every pointer to a document's section names a real heading,
and every script answers --help."""
import json
import re

import pytest
from conftest import ROOT, run_script
from doccheck import bad_pointers, broken_links, python_texts

MARKDOWN = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("results/**/*.md")])
PYTHON = sorted([*ROOT.glob("*.py"), *ROOT.glob("scripts/*.py"), *ROOT.glob("training/*.py"),
                 *ROOT.glob("reporting/*.py")])
SCRIPTS = [p for p in PYTHON if re.search(r'^if __name__ == "__main__":', p.read_text(), re.MULTILINE)]


def _name(path):
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("md", MARKDOWN, ids=_name)
def test_links_and_anchors_resolve(md):
    assert broken_links(md) == []


@pytest.mark.parametrize("source", MARKDOWN + PYTHON, ids=_name)
def test_pointers_name_real_headings(source):
    texts = python_texts(source) if source.suffix == ".py" else [source.read_text()]
    assert [p for t in texts for p in bad_pointers(t, _name(source))] == []


def test_the_checks_find_what_is_broken(tmp_path):
    """The checkers themselves: a missing file, a missing anchor and a stale pointer fail."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# Title\n\n## Quick start\n\n[ok](#quick-start) "
                                        "[gone](#speed) [file](docs/NONE.md) `[code](#x)`\n")
    (tmp_path / "docs" / "GUIDE.md").write_text("# G\n\n## Offline: a local copy\n")
    problems = broken_links(tmp_path / "README.md")
    assert [p.split(": ", 1)[1] for p in problems] == [
        "#speed (no heading with that anchor in README.md)", "docs/NONE.md (no such file)"]
    assert bad_pointers("(docs/GUIDE.md, 'Offline')", "x", tmp_path) == []
    assert bad_pointers("(README, 'Offline')", "x", tmp_path) != []
    assert bad_pointers("see README, Model 2.1", "x", tmp_path) != []


def test_readme_figures_are_the_committed_evidence():
    """README shows the figures of results/report/ (what `python report.py` draws from the
    committed runs), never plots/, which is every script's output folder."""
    readme = (ROOT / "README.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert images and all(i.startswith("results/report/") for i in images), images
    assert "](plots/" not in readme


@pytest.mark.parametrize("script", SCRIPTS, ids=_name)
def test_every_script_explains_its_flags(script):
    result = run_script(str(script.relative_to(ROOT)), "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: ") and "Traceback" not in result.stderr


# --------------------------------------------------------------------------- what the docs say
DOCS = [ROOT / "README.md", *sorted(ROOT.glob("docs/*.md")), *sorted(ROOT.glob("results/**/README.md"))]
COMMAND = re.compile(r"python3? ((?:scripts/)?\w+\.py)((?:[ \t]+[^`\n#]*)?)")


def _parser_flags(script: str) -> set[str]:
    import importlib
    import importlib.util
    import sys

    if "/" not in script:  # a module of the project
        module = importlib.import_module(script[:-3])
    else:
        name = "doc_" + script.replace("/", "_")[:-3]
        spec = importlib.util.spec_from_file_location(name, ROOT / script)
        module = sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    parser = module.get_args_parser()
    return {s for action in parser._actions for s in action.option_strings}


def test_the_docs_commands_use_flags_their_scripts_have():
    """Every `python SCRIPT.py --flag ...` in README, docs/ and results/ READMEs names flags
    that script's parser has (a renamed or removed flag is caught here)."""
    flags_of, unknown = {}, []
    for doc in DOCS:
        for script, rest in COMMAND.findall(doc.read_text()):
            if not (ROOT / script).is_file():
                continue
            if script not in flags_of:
                flags_of[script] = _parser_flags(script)
            for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", rest):
                if flag not in flags_of[script]:
                    unknown.append(f"{_name(doc)}: {script} {flag}")
    assert flags_of and unknown == []


def test_colab_commands_draw_no_bars():
    """Colab runs `!` commands on a pseudo-terminal, where tqdm draws its bars: every training
    command of the Colab section carries --no-progress."""
    guide = (ROOT / "docs" / "GUIDE.md").read_text()
    section = guide.split("## Running on Colab", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"!python (?:run_all|task\w+)\.py[^`\n]*", section)
    assert len(commands) >= 3
    assert all("--no-progress" in c for c in commands), commands
    assert "not a terminal" not in section


def test_the_test_curve_cost_is_the_run_files():
    """The time per LeNet epoch with and without the test curve, as GUIDE and the evidence's
    README give it, is the last check's elapsed_s over its epoch in the two run files."""
    folder = ROOT / "results" / "cpu-2026-12-01" / "test-curve-cost"
    per_epoch = {}
    for kind in ("with", "without"):
        last = json.loads((folder / kind / "task1_lenet.json").read_text())["history"][-1]
        per_epoch[kind] = last["elapsed_s"] / last["epoch"]
    words = (f"{per_epoch['with']:.1f} s", f"{per_epoch['without']:.1f} s",
             f"{round(100 * (per_epoch['with'] / per_epoch['without'] - 1))} %")
    for doc in (ROOT / "docs" / "GUIDE.md", ROOT / "results" / "cpu-2026-12-01" / "README.md"):
        text = " ".join(doc.read_text().split())
        assert all(w in text for w in words), (doc, words)


def test_benchmark_commands_are_the_ones_their_files_recorded():
    """A `python benchmark.py ... --device cpu` command in README, GUIDE or ANALYSIS carries the
    --models one of its committed files was made with (without it the benchmark also runs
    ResNet18 at 256x256 on the CPU)."""
    recorded = {json.loads(p.read_text())["command"]
                for p in ROOT.glob("results/cpu-*/benchmark*.json")}
    models = {re.search(r"--models (\S+)", c).group(1) for c in recorded}
    assert models and all(models)
    found = []
    for doc in (ROOT / "README.md", ROOT / "docs" / "GUIDE.md", ROOT / "docs" / "ANALYSIS.md"):
        text = " ".join(doc.read_text().split())
        found += re.findall(r"`(python benchmark\.py[^`]*--device cpu[^`]*)`", text)
    assert found  # GUIDE's speed section gives the commands
    for command in found:
        given = re.search(r"--models (\S+)", command)
        assert given and given.group(1) in models, command


def test_task2_help_does_not_claim_what_the_replay_contradicts():
    """The replay finds a patience that holds on every full Model 2.1 history (val accuracy,
    patience 16); task2_models.py --help must not say that none does."""
    replay = run_script("scripts/stopping_replay.py", "results", "--model", "model21")
    assert replay.returncode == 0, replay.stderr
    assert re.search(r"by val_accuracy: \*\*val_accuracy, patience \d+\*\*", replay.stdout)
    help_text = " ".join(run_script("task2_models.py", "--help").stdout.split())
    assert "no patience" not in help_text and "saves little" in help_text


def test_windows_set_up_has_its_own_commands():
    """README's Windows set-up has no `python3`, no `. .venv/bin/activate`."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("On Windows", 1)[1].split("```", 2)[1]
    assert ".venv\\Scripts\\activate" in block
    assert "python3" not in block and ". .venv" not in block and "py -3.11 -m venv" in block


def test_no_numbers_without_a_file_behind_them():
    """Numbers measured once and never kept (a venv's size, a quick look's time, a decode
    time, a first benchmark's speed-ups) are not in the docs; the time a run took comes from
    a run file."""
    gone = ["5.6 GB", "0m51s", "16 s to decode", "16 s for the 60,000", "2.3 to 2.8"]
    for doc in DOCS:
        text = " ".join(doc.read_text().split())
        assert [g for g in gone if g in text] == [], doc


def test_the_docs_say_nothing_of_how_the_project_was_made():
    """The docs say which machine ran what, and when; they say nothing of how the project
    itself was developed (the words below are the marks of such text)."""
    words = re.compile(r"\bsessions?\b|\blent\b|\bissue \d+|\bhanded over\b", re.IGNORECASE)
    files = [*DOCS, ROOT / "scripts" / "gpu_run.sh", ROOT / "tests" / "test_steps.py"]
    found = [f"{_name(p)}: {m.group(0)}" for p in files for m in words.finditer(p.read_text())]
    assert found == []
