"""What a reader follows leads somewhere: every relative link and #anchor in README, docs/ and
the committed REPORT.md resolves, every pointer to a document's section names a real heading,
and every script answers --help."""
import re

import pytest

from conftest import ROOT, run_script
from doccheck import bad_pointers, broken_links, python_texts

MARKDOWN = sorted([ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("results/**/*.md")])
PYTHON = sorted([*ROOT.glob("*.py"), *ROOT.glob("scripts/*.py")])
SCRIPTS = [p for p in PYTHON if re.search(r'^if __name__ == "__main__":', p.read_text(), re.M)]


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
