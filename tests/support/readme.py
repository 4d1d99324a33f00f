"""The code blocks of README.md and of the docs pages, with their ``readme-test`` markers, for the tests
that run them (tests/test_readme.py, tests/docs/test_doc_examples.py).

A marker is an HTML comment on the line right before a block's opening fence (blank lines between are
allowed, other text is not):

* ``<!-- readme-test: skip (reason) -->``: the block is not run; the reason is required.
* ``<!-- readme-test: checked-by test_name (what it checks) -->``: the block is output (or otherwise not
  code) that the named test of tests/test_readme.py compares with a real run.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
MARKER = re.compile(r"^\s*<!--\s*readme-test:\s*(?P<kind>[a-z-]+)\s*(?P<rest>.*?)\s*-->\s*$")
MARKER_KINDS = ("skip", "checked-by")


class ReadmeFormatError(ValueError):
    """A fence left open, or a ``readme-test`` marker that is malformed or stands before no block."""


@dataclass(frozen=True)
class Block:
    """One fenced block: ``line`` is the 1-based line of its opening fence."""

    source: str
    line: int
    lang: str
    text: str
    marker: str | None = None
    marker_arg: str = ""

    @property
    def id(self) -> str:
        return f"{self.lang or 'plain'}@{Path(self.source).name}:{self.line}"

    @property
    def skip_reason(self) -> str | None:
        return self.marker_arg if self.marker == "skip" else None

    @property
    def checked_by(self) -> str | None:
        return self.marker_arg.split()[0] if self.marker == "checked-by" and self.marker_arg else None


def blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path``, in order, each with the marker standing right before it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    pending: tuple[int, str, str] | None = None  # (line, kind, argument) of a marker awaiting its block
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = MARKER.match(line)
        if marker:
            if pending is not None:
                raise ReadmeFormatError(f"{path}:{pending[0]}: readme-test marker before no code block")
            kind, rest = marker["kind"], marker["rest"]
            if kind not in MARKER_KINDS:
                raise ReadmeFormatError(f"{path}:{index + 1}: unknown readme-test marker {kind!r}")
            if kind == "skip" and not re.fullmatch(r"\(.+\)", rest):
                raise ReadmeFormatError(f"{path}:{index + 1}: a skip marker needs a reason: skip (why)")
            if kind == "checked-by" and not re.match(r"test_\w+", rest):
                raise ReadmeFormatError(
                    f"{path}:{index + 1}: checked-by needs a test name: checked-by test_x"
                )
            pending = (index + 1, kind, rest.strip("()") if kind == "skip" else rest)
            index += 1
            continue
        fence = FENCE.match(line)
        if fence:
            opening = index
            closing_fence = fence["fence"]
            body: list[str] = []
            index += 1
            while index < len(lines) and not (
                lines[index].strip().startswith(closing_fence)
                and set(lines[index].strip()) == {closing_fence[0]}
            ):
                body.append(lines[index][len(fence["indent"]) :])
                index += 1
            if index == len(lines):
                raise ReadmeFormatError(f"{path}:{opening + 1}: code fence never closed")
            lang = fence["info"].strip().split(" ")[0].lower() if fence["info"].strip() else ""
            kind, arg = (pending[1], pending[2]) if pending else (None, "")
            found.append(Block(str(path), opening + 1, lang, "\n".join(body) + "\n", kind, arg))
            pending = None
            index += 1
            continue
        if pending is not None and line.strip():
            raise ReadmeFormatError(f"{path}:{pending[0]}: readme-test marker before no code block")
        index += 1
    if pending is not None:
        raise ReadmeFormatError(f"{path}:{pending[0]}: readme-test marker before no code block")
    return found


def shell_commands(text: str) -> list[list[str]]:
    """The commands of a shell block as word lists (comments dropped, quoted newlines kept in the word).

    Lines are joined until their quotes balance, so ``export X='{...\\n ...}'`` is one command.
    """
    commands: list[list[str]] = []
    buffer = ""
    for line in text.splitlines():
        buffer = f"{buffer}\n{line}" if buffer else line
        if buffer.rstrip().endswith("\\"):
            buffer = buffer.rstrip()[:-1]
            continue
        try:
            words = shlex.split(buffer, comments=True)
        except ValueError:  # an open quote: the command continues on the next line
            continue
        if words:
            commands.append(words)
        buffer = ""
    if buffer.strip():
        raise ReadmeFormatError(f"unbalanced quotes in shell block: {buffer[:60]!r}...")
    return commands


RST_DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\. (?:code-block|code|sourcecode)::\s*(?P<lang>\S*)\s*$")
RST_MARKER = re.compile(r"^\s*\.\.\s+readme-test:\s*(?P<kind>[a-z-]+)\s*(?P<rest>.*?)\s*$")
#: A paragraph ending in ``::`` starts a literal block that no test would see: docs use code-block.
RST_BARE_LITERAL = re.compile(r"(?<!:)::\s*$")


def rst_blocks(path: Path) -> list[Block]:
    """Every ``.. code-block:: LANG`` of a reStructuredText page, with its ``readme-test`` marker.

    The marker is an rst comment on a line before the directive (blank lines between are allowed):
    ``.. readme-test: skip (reason)`` or ``.. readme-test: checked-by test_name (what)``. A paragraph
    ending in a bare ``::`` (a literal block nothing runs) is refused: write a code-block.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    pending: tuple[int, str, str] | None = None
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = RST_MARKER.match(line)
        if marker:
            kind, rest = marker["kind"], marker["rest"]
            if kind not in MARKER_KINDS:
                raise ReadmeFormatError(f"{path}:{index + 1}: unknown readme-test marker {kind!r}")
            if kind == "skip" and not re.fullmatch(r"\(.+\)", rest):
                raise ReadmeFormatError(f"{path}:{index + 1}: a skip marker needs a reason: skip (why)")
            pending = (index + 1, kind, rest.strip("()") if kind == "skip" else rest)
            index += 1
            continue
        directive = RST_DIRECTIVE.match(line)
        if directive:
            indent = len(directive["indent"])
            index += 1
            while index < len(lines) and re.match(rf"^\s{{{indent + 1},}}:[\w-]+:", lines[index]):
                index += 1  # directive options (:caption:, :emphasize-lines:, ...)
            body: list[str] = []
            start = index + 1
            while index < len(lines) and (not lines[index].strip() or _indent(lines[index]) > indent):
                body.append(lines[index])
                index += 1
            text = textwrap.dedent("\n".join(body)).strip("\n") + "\n"
            kind, arg = (pending[1], pending[2]) if pending else (None, "")
            found.append(Block(str(path), start, directive["lang"].lower(), text, kind, arg))
            pending = None
            continue
        if (
            RST_BARE_LITERAL.search(line)
            and not line.lstrip().startswith("..")
            and not re.match(r"^\s*:[\w-]+:", line)
        ):
            raise ReadmeFormatError(
                f"{path}:{index + 1}: a literal block ('::') that no test runs: use '.. code-block:: LANG'"
            )
        if pending is not None and line.strip() and not line.lstrip().startswith(".."):
            raise ReadmeFormatError(f"{path}:{pending[0]}: readme-test marker before no code block")
        index += 1
    if pending is not None:
        raise ReadmeFormatError(f"{path}:{pending[0]}: readme-test marker before no code block")
    return found


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())
