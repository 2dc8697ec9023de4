"""Checks that what a reader follows leads somewhere: relative links and #anchors in Markdown,
and pointers in prose and docstrings such as `README, "Stopping"` or `docs/GUIDE.md,
'Offline'`, which must name a heading of that document.

Headings become anchors the way GitHub makes them: lower case, punctuation other than `-` and
`_` dropped, spaces turned into hyphens, a repeated heading suffixed -1, -2, ...
"""
from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FENCE = re.compile(r"^(```|~~~)")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")

# The documents a pointer may name, as they are written in prose.
DOCUMENTS = {"README": "README.md", "README.md": "README.md", "GUIDE": "docs/GUIDE.md",
             "GUIDE.md": "docs/GUIDE.md", "docs/GUIDE.md": "docs/GUIDE.md",
             "ANALYSIS": "docs/ANALYSIS.md", "ANALYSIS.md": "docs/ANALYSIS.md",
             "docs/ANALYSIS.md": "docs/ANALYSIS.md"}
_DOC = r"(?<![\w/.])(docs/GUIDE\.md|docs/ANALYSIS\.md|README\.md|GUIDE\.md|ANALYSIS\.md|README|GUIDE|ANALYSIS)"
QUOTED_POINTER = re.compile(_DOC + r",?\s+[\"'\u201c]([^\"'\u201d\n]+?)[\"'\u201d]")
BARE_POINTER = re.compile(_DOC + r",\s+([A-Z][^,;()\"'\n]*?)(?=\)|, |\. |\.$|;|$)")


def _prose_lines(text: str) -> list[str]:
    """The lines of a Markdown text outside fenced code blocks, inline code removed."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        lines.append("" if fenced else re.sub(r"`[^`]*`", "", line))
    return lines


def slug(heading: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = text.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def headings(path: Path) -> list[str]:
    """The headings of a Markdown file, in order (none inside fenced code)."""
    out, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if m:
            out.append(m.group(2))
    return out


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for heading in headings(path):
        base = slug(heading)
        n = seen.get(base, 0)
        result.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    return result


def broken_links(md: Path) -> list[str]:
    """Every relative link or #anchor of a Markdown file that leads nowhere, as
    'file:line: target (why)'."""
    problems = []
    for number, line in enumerate(_prose_lines(md.read_text(encoding="utf-8")), 1):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.IGNORECASE):  # http:, mailto:, ...
                continue
            path_part, _, anchor = target.partition("#")
            goal = md if not path_part else (md.parent / path_part)
            where = f"{md}:{number}: {target}"
            if not goal.exists():
                problems.append(f"{where} (no such file)")
            elif anchor:
                if goal.suffix != ".md" or goal.is_dir():
                    problems.append(f"{where} (an anchor into a file that is not Markdown)")
                elif anchor not in anchors(goal):
                    problems.append(f"{where} (no heading with that anchor in {goal.name})")
    return problems


def python_texts(path: Path) -> list[str]:
    """The strings (docstrings, literals; adjacent literals joined) and comments (consecutive
    lines joined) of a Python file."""
    source = path.read_text(encoding="utf-8")
    texts = [node.value for node in ast.walk(ast.parse(source))
             if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    block, last_row = [], None
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        if last_row is not None and token.start[0] != last_row + 1:
            texts.append(" ".join(block))
            block = []
        block.append(token.string.lstrip("#").strip())
        last_row = token.start[0]
    if block:
        texts.append(" ".join(block))
    return texts


def bad_pointers(text: str, where: str, root: Path = ROOT) -> list[str]:
    """Every pointer in `text` (`README, "X"`, `docs/GUIDE.md, 'X'`, `(README, X)`) whose X
    does not begin a heading of the document it names."""
    text = re.sub(r"\s+", " ", text)
    problems = []
    for pattern in (QUOTED_POINTER, BARE_POINTER):
        for m in pattern.finditer(text):
            doc, name = DOCUMENTS[m.group(1)], m.group(2).strip().rstrip(".")
            titles = [h.lower() for h in headings(root / doc)]
            if not any(t == name.lower() or t.startswith(name.lower()) for t in titles):
                problems.append(f"{where}: '{m.group(0)}' names no heading of {doc}")
    return problems
