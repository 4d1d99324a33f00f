"""The History chart's geometry: one lane per instance, one coloured segment per run of equal statuses.

Drawn on the server as SVG (``templates/history.html``): no script, no front-end build, nothing fetched
from a CDN. This module only computes positions and labels; the template escapes every text it prints.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from airflow_provider_imagesearch.plugins.queries import StatusPoint
from airflow_provider_imagesearch.plugins.render import format_time, status_tone

LABEL_WIDTH = 170
PLOT_WIDTH = 760
LANE_HEIGHT = 22
LANE_GAP = 6
AXIS_HEIGHT = 28
TICKS = 5
#: With no interval between snapshots to go by (one archive run), the last segment's share of the span.
LAST_SEGMENT_SHARE = 0.02


@dataclass(frozen=True)
class Segment:
    """Consecutive snapshots of one status: from the first to the next status (or a short tail).

    :param first_run_id: the archive run that first saw the status.
    """

    x: float
    width: float
    status: str
    tone: str
    start: datetime
    end: datetime | None
    snapshots: int
    first_run_id: str

    @property
    def title(self) -> str:
        until = f" until {format_time(self.end)}" if self.end is not None else " (newest)"
        plural = "s" if self.snapshots != 1 else ""
        return f"{self.status} from {format_time(self.start)}{until}: {self.snapshots} snapshot{plural}"


@dataclass(frozen=True)
class Change:
    """A status change seen between two archive runs."""

    instance_name: str
    before: str
    after: str
    at: datetime
    run_id: str


@dataclass
class Lane:
    instance_name: str
    y: float
    segments: list[Segment] = field(default_factory=list)
    current: str = ""
    since: datetime | None = None
    #: False when the window's first snapshot already had the current status (it may be older).
    since_known: bool = False

    @property
    def summary(self) -> str:
        if not self.segments:
            return "no snapshot in this window"
        if not self.since_known:
            return f"{self.current} throughout"
        return f"{self.current} since {format_time(self.since)}"


@dataclass(frozen=True)
class Tick:
    x: float
    label: str
    #: SVG text-anchor: the first and last labels stay inside the plot.
    anchor: str = "middle"


@dataclass
class Chart:
    width: int
    height: int
    plot_x: int
    plot_width: int
    axis_y: float
    lanes: list[Lane]
    ticks: list[Tick]
    changes: list[Change]
    legend: list[tuple[str, str]]
    start: datetime | None
    end: datetime | None


def build_chart(points: Mapping[str, Sequence[StatusPoint]]) -> Chart:
    """Lay out the lanes of ``points`` (oldest first per instance) on one time axis."""
    moments = [point.fetched_at for series in points.values() for point in series]
    start = min(moments) if moments else None
    end = max(moments) if moments else None
    span = (end - start) if start is not None and end is not None else timedelta(0)
    # A status holds until the next archive run: the newest one is drawn for one usual interval between
    # runs (the median gap), so a change seen by the latest run is as wide as any other run's share.
    gaps = sorted(
        later.fetched_at - earlier.fetched_at
        for series in points.values()
        for earlier, later in itertools.pairwise(series)
        if later.fetched_at > earlier.fetched_at
    )
    tail = max(gaps[len(gaps) // 2] if gaps else span * LAST_SEGMENT_SHARE, timedelta(seconds=1))
    axis_end = end + tail if end is not None else None
    total = (axis_end - start).total_seconds() if start is not None and axis_end is not None else 1.0

    def x_of(moment: datetime) -> float:
        if start is None:
            return float(LABEL_WIDTH)
        return LABEL_WIDTH + PLOT_WIDTH * (moment - start).total_seconds() / total

    lanes: list[Lane] = []
    changes: list[Change] = []
    statuses: list[str] = []
    for index, (name, series) in enumerate(points.items()):
        lane = Lane(name, y=AXIS_HEIGHT + index * (LANE_HEIGHT + LANE_GAP))
        runs = _runs_of_equal_status(series)
        for position, run in enumerate(runs):
            first = run[0]
            following = runs[position + 1][0].fetched_at if position + 1 < len(runs) else None
            right = x_of(following) if following is not None else x_of(run[-1].fetched_at + tail)
            left = x_of(first.fetched_at)
            lane.segments.append(
                Segment(
                    x=round(left, 2),
                    width=round(max(right - left, 2.0), 2),
                    status=first.status,
                    tone=status_tone(first.status),
                    start=first.fetched_at,
                    end=following,
                    snapshots=len(run),
                    first_run_id=first.run_id,
                )
            )
            if first.status not in statuses:
                statuses.append(first.status)
            if position > 0:
                changes.append(
                    Change(name, runs[position - 1][0].status, first.status, first.fetched_at, first.run_id)
                )
        if runs:
            lane.current = runs[-1][0].status
            lane.since = runs[-1][0].fetched_at
            lane.since_known = len(runs) > 1
        lanes.append(lane)
    ticks = []
    if start is not None and axis_end is not None:
        # Labels at the start and at each fifth; none at the very end, where it would run out of the plot.
        for step in range(TICKS):
            moment = start + (axis_end - start) * step / TICKS
            anchor = "start" if step == 0 else "middle"
            ticks.append(Tick(round(x_of(moment), 2), format_time(moment, tick=axis_end - start), anchor))
    height = AXIS_HEIGHT + len(lanes) * (LANE_HEIGHT + LANE_GAP) + 4
    changes.sort(key=lambda change: (change.at, change.instance_name), reverse=True)
    return Chart(
        width=LABEL_WIDTH + PLOT_WIDTH + 10,
        height=height,
        plot_x=LABEL_WIDTH,
        plot_width=PLOT_WIDTH,
        axis_y=AXIS_HEIGHT - 8,
        lanes=lanes,
        ticks=ticks,
        changes=changes,
        legend=[(status, status_tone(status)) for status in sorted(statuses)],
        start=start,
        end=end,
    )


def _runs_of_equal_status(series: Sequence[StatusPoint]) -> list[list[StatusPoint]]:
    runs: list[list[StatusPoint]] = []
    for point in series:
        if runs and runs[-1][-1].status == point.status:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs
