"""The code blocks of README.md and docs/*.md, as tests/test_readme.py runs them: extraction, skip and as-written
markers, the one shortening rule.

Every fenced ``bash``/``shell``/``sh``/``python`` block of README.md and of every docs/*.md page is run as written from
a clean temporary folder, except for these:

- ``epochs=N`` (and ``epochs: N`` inside a heredoc'd cfg file) becomes ``epochs=$YOLO_LS_README_EPOCHS``
  (default 1; ``YOLO_LS_README_EPOCHS=asis`` runs the blocks unchanged). That is the only rewrite.
- A block right after a ``<!-- readme-test: as written (reason) -->`` line is never shortened: its epochs are what
  it shows (the detection examples, which measure nothing after 1 epoch).
- A block right after a ``<!-- readme-test: skip (reason) -->`` line is not run; the reason is shown as the test's
  skip reason. Pip installs, ``make``, long studies and commands that need your own files carry one.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"
LANGUAGES = {"bash": "bash", "shell": "bash", "sh": "bash", "python": "python"}
EPOCHS_ENV = "YOLO_LS_README_EPOCHS"
MARKER_RE = re.compile(r"^<!--\s*readme-test:\s*(?P<kind>skip|as written)\s*\((?P<reason>.*)\)\s*-->\s*$")
FENCE_RE = re.compile(r"^```(?P<lang>[A-Za-z0-9_+-]*)\s*$")
# epochs=N / epochs: N as an argument or a cfg line, also as a line of a cfg written by printf (after a literal "\n":
# printf 'imgsz: 32\nepochs: 3\n' > my.yaml), never inside another name (ls_warmup_epochs=2, EPOCHS=20)
EPOCHS_RE = re.compile(r"(?:(?<![A-Za-z0-9_])|(?<=\\n))(epochs\s*[=:]\s*)(\d+)")


def pages() -> list[Path]:
    """The pages whose blocks run: README.md, then every docs/*.md in name order."""
    return [README, *sorted(DOCS.glob("*.md"))]


def page_name(path: Path) -> str:
    """A page as the reports name it: its path relative to the repository (``README.md``, ``docs/tuning.md``)."""
    path = Path(path)
    return path.relative_to(ROOT).as_posix() if path.is_absolute() and path.is_relative_to(ROOT) else path.as_posix()


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    line: int  # 1-based line of the opening fence
    lang: str  # "bash" or "python"
    text: str
    skip: str | None  # the marker's reason, or None: the block runs
    page: str = "README.md"  # the page it is on, relative to the repository
    as_written: str | None = None  # an 'as written' marker's reason: the block runs with its own epochs

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def id(self) -> str:
        first = next((x for x in self.text.splitlines() if x.strip() and not x.startswith("#")), "")
        stem = "" if self.page == "README.md" else Path(self.page).stem + "-"
        return f"{stem}L{self.line}-{self.lang}-{re.sub(r'[^A-Za-z0-9]+', '_', first)[:40].strip('_')}"


def blocks(text: str | None = None, page: Path | str = README) -> list[Block]:
    """Every bash/shell/sh/python block of one page (others, e.g. plain fences, are not code to run).

    ``text``: the page's text (default: read from ``page``); ``page`` also names the page in blocks and errors.

    Raises:
        ValueError: A marker (skip or as written) without a reason, or one that is not followed by a code block.
    """
    name = page_name(Path(page))
    lines = (Path(page).read_text(encoding="utf-8") if text is None else text).splitlines()
    out, i, pending = [], 0, None
    while i < len(lines):
        marker = MARKER_RE.match(lines[i].strip())
        if marker:
            reason = marker["reason"].strip()
            if not reason:
                raise ValueError(f"{name}:{i + 1}: a readme-test {marker['kind']} marker needs a reason")
            pending = (i + 1, reason, marker["kind"])
            i += 1
            continue
        fence = FENCE_RE.match(lines[i])
        if fence:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
            if end is None:
                raise ValueError(f"{name}:{i + 1}: unclosed code fence")
            lang = LANGUAGES.get(fence["lang"].lower())
            if lang is None and pending is not None:
                raise ValueError(f"{name}:{pending[0]}: {pending[2]} marker before a '{fence['lang']}' block, not code")
            if lang is not None:
                body = "\n".join(lines[i + 1:end]) + "\n"
                kind, reason = (pending[2], pending[1]) if pending else (None, None)
                out.append(Block(i + 1, lang, body, reason if kind == "skip" else None, name,
                                 reason if kind == "as written" else None))
            pending = None
            i = end + 1
            continue
        if pending is not None and lines[i].strip():
            raise ValueError(f"{name}:{pending[0]}: a {pending[2]} marker must be right before its code block")
        i += 1
    if pending is not None:
        raise ValueError(f"{name}:{pending[0]}: a {pending[2]} marker at the end, with no block after it")
    return out


def all_blocks() -> list[Block]:
    """The blocks of every page (README.md first, then docs/*.md)."""
    return [b for page in pages() for b in blocks(page=page)]


def epochs_setting() -> int | None:
    """The epoch count the blocks run with (``YOLO_LS_README_EPOCHS``, default 1; ``asis``: None, unchanged)."""
    value = os.environ.get(EPOCHS_ENV, "1").strip()
    if value.lower() == "asis":
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{EPOCHS_ENV}={value!r} is invalid: give an integer >= 1, or 'asis'")
    return int(value)


def shorten(text: str, epochs: int | None) -> str:
    """``epochs=N`` / ``epochs: N`` -> ``epochs=<epochs>`` (``None``: unchanged). The only rewrite of a block."""
    return text if epochs is None else EPOCHS_RE.sub(lambda m: f"{m[1]}{epochs}", text)


def text_to_run(block: Block, epochs: int | None) -> str:
    """What the test runs: the block shortened to ``epochs``, or as written when it carries an 'as written' marker."""
    return block.text if block.as_written else shorten(block.text, epochs)


DETECTION_DATA = re.compile(r"""data\s*=\s*["']?digits-det(?![\w-])""")


def trains_detection(block: Block) -> bool:
    """Whether a block trains on the embedded ``digits-det`` (a detection example: it must show a measured d_ece)."""
    return bool(DETECTION_DATA.search(block.text)) and bool(re.search(r"\btrain\b", block.text))


TRAINING_CALLS = ("train", "tune")


def trainings_without_epochs(block: Block) -> list[str]:
    """The training commands of a block that state no epoch count (they would run Ultralytics' default 100).

    Python: every ``.train(...)``/``.tune(...)`` call without an ``epochs=`` keyword. Shell: every ``yolo-ls``
    command whose mode is ``train`` or ``compare`` with neither ``epochs=`` nor ``cfg=`` (a cfg file states its own).
    """
    if block.lang == "python":
        bad = []
        for node in ast.walk(ast.parse(block.text)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in TRAINING_CALLS and not any(k.arg == "epochs" for k in node.keywords)):
                bad.append(ast.get_source_segment(block.text, node) or node.func.attr)
        return bad
    bad = []
    for line in block.text.replace("\\\n", " ").splitlines():
        words = line.split("#", 1)[0].split()
        if words[:1] == ["yolo-ls"] and {"train", "compare"} & set(words[1:3]):
            if not any(w.startswith(("epochs=", "cfg=")) for w in words):
                bad.append(line.strip())
    return bad


LINK_RE = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)\)")
HEADING_RE = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    """A page without its fenced blocks (a '# comment' in a bash block is no heading, a link in code no link)."""
    return re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.M | re.S)


def slug(title: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped (``_`` and ``-`` kept), spaces to ``-``."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def broken_links(paths: list[Path] | None = None) -> list[str]:
    """Every relative link or image of the pages whose file, or heading (``#anchor``), does not exist."""
    bad = []
    for path in pages() if paths is None else paths:
        for m in LINK_RE.finditer(_prose(path.read_text(encoding="utf-8"))):
            target = m["target"]
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...: not a file of this repository
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            if not dest.exists():
                bad.append(f"{page_name(path)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md":
                titles = HEADING_RE.findall(_prose(dest.read_text(encoding="utf-8")))
                if anchor not in {slug(t) for t in titles}:
                    bad.append(f"{page_name(path)}: {target} (no such heading in {page_name(dest)})")
    return bad


def skip_report(items: list[Block] | None = None) -> str:
    """One line per skipped block: where it is and why (printed by the tests and ``python -m tests.readme_blocks``)."""
    items = all_blocks() if items is None else items
    return "\n".join(f"{b.where} ({b.lang}) skipped: {b.skip}" for b in items if b.skip)


if __name__ == "__main__":
    found = all_blocks()
    print(f"{len(found)} code blocks in README.md and docs/*.md, {sum(b.skip is None for b in found)} run by "
          "tests/test_readme.py")
    for b in found:
        how = (f"skip ({b.skip})" if b.skip else f"runs as written ({b.as_written})" if b.as_written
               else "runs, epochs shortened")
        print(f"  {b.where} {b.id}: {how}")
