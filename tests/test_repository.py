"""The repository stands on its own: a fresh clone has nothing beside it.

No tracked file reads, links or mentions the sibling directory the project was once developed
next to (its format guide, checker and design notes), and no Markdown link leads outside the
repository or to a file that is not in it.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SIBLING = "shared"
# spelt in pieces, so that this file does not match its own patterns
OUTSIDE = [
    re.compile(re.escape("../" + SIBLING)),
    re.compile(SIBLING + r"/(?:spec|tools|design)\b"),
    re.compile(r"\.parents?\b[^\n]*[\"']" + SIBLING + r"[\"']"),  # a path built from the parent of ROOT
]
LINK = re.compile(r"(?<!\!)\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|^\[[^\]\n]+\]:\s*(\S+)", re.M)


def tracked_files() -> list[Path]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed: cannot list the tracked files")
    proc = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"not a git checkout ({proc.stderr.decode(errors='replace').strip()})")
    return [ROOT / name for name in proc.stdout.decode().split("\0") if name]


def text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
        return None  # binary, or deleted in the work tree


def test_no_tracked_file_reaches_outside_the_repository():
    found = []
    for path in tracked_files():
        text = text_of(path)
        if text is None:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if any(p.search(line) for p in OUTSIDE):
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not found, "tracked files that read, link or mention the sibling directory:\n" + "\n".join(found)


def links(text: str) -> list[str]:
    """The targets of the inline and reference links of a Markdown text, outside code."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    return [a or b for a, b in LINK.findall(prose)]


def test_links_finds_inline_and_reference_links_but_not_code():
    text = "see [the doc](docs/a.md#x) and [b]\n\n[b]: ../b.md\n`[c](c.md)`\n```\n[d](d.md)\n```\n"
    assert links(text) == ["docs/a.md#x", "../b.md"]


def test_every_markdown_link_stays_inside_the_repository():
    bad = []
    for path in tracked_files():
        if path.suffix.lower() != ".md" or (text := text_of(path)) is None:
            continue
        for target in links(text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
                continue  # a URL (https:, mailto:) or an anchor of the same page
            local = target.split("#", 1)[0]
            resolved = (path.parent / local).resolve()
            where = f"{path.relative_to(ROOT)}: ({target})"
            if not resolved.is_relative_to(ROOT):
                bad.append(f"{where} points outside the repository")
            elif not resolved.exists():
                bad.append(f"{where} points at nothing")
    assert not bad, "\n".join(bad)
