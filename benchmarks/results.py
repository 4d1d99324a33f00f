"""What a figure produces (:class:`Result`), small statistics helpers, and the printed table."""

from __future__ import annotations

import math
import statistics
import textwrap
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["pass", "fail", "skip", "error", "info"]


@dataclass
class Result:
    """One figure's outcome.

    :param figure: the figure's name, as in the issue (``call overhead``, ``token reuse``, ...).
    :param goal: the goal, in words.
    :param measured: the measured value in words (what the table prints).
    :param status: ``pass``/``fail`` against the goal; ``skip`` when it could not run here (no
        PostgreSQL); ``error`` when the benchmark itself broke; ``info`` for figures without a goal.
    :param value: the number compared with the goal (a ratio, a count, milliseconds), if any.
    :param details: every measured number, for ``--json``.
    :param emulator: the emulator's own request rate during the figure (None when it is not used).
    :param notes: how it was measured and what stood out.
    """

    figure: str
    goal: str
    measured: str
    status: Status
    value: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    emulator: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verdict(ok: bool) -> Status:
    return "pass" if ok else "fail"


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of an empty sequence")
    position = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def emulator_cell(result: Result) -> str:
    emu = result.emulator
    if not emu:
        return "-"
    text = f"{emu['requests']} req, {emu['rps']:.0f}/s avg"
    if emu.get("peak_rps") is not None:
        text += f", {emu['peak_rps']:.0f}/s peak"
    return text


def format_table(results: Sequence[Result]) -> str:
    """The result table, then each figure's notes."""
    headers = ("figure", "goal", "measured", "result", "emulator (during figure)")
    rows = [(r.figure, r.goal, r.measured, r.status.upper(), emulator_cell(r)) for r in results]
    limits = (26, 34, 58, 6, 34)
    wrapped = [
        [textwrap.wrap(cell, limit) or [""] for cell, limit in zip(row, limits, strict=True)] for row in rows
    ]
    widths = [
        max([len(h)] + [len(line) for row in wrapped for line in row[i]]) for i, h in enumerate(headers)
    ]
    rule = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [rule, line(headers), rule.replace("-", "=")]
    for row in wrapped:
        height = max(len(cell) for cell in row)
        for index in range(height):
            out.append(line([cell[index] if index < len(cell) else "" for cell in row]))
        out.append(rule)
    noted = [r for r in results if r.notes]
    if noted:
        out.append("")
        for r in noted:
            out.append(f"{r.figure} [{r.status}]:")
            for note in r.notes:
                out.extend(textwrap.wrap(note, 106, initial_indent="  - ", subsequent_indent="    "))
    return "\n".join(out)
