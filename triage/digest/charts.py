"""The digest's charts: SVG sparklines and a stacked bar chart for the HTML page, block
characters for Markdown.

Hand-built SVG because a chart library would have to be shipped or fetched as script, and the
digest must be one script-free file that renders the same in a mail client, on a phone, offline
and on paper. A sparkline and a stacked bar chart are a few lines of arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from triage.digest.model import CATEGORY_COLOURS, CategoryMix

_BLOCKS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Sparkline:
    width: int
    height: int
    points: str
    area: str
    last_x: float
    last_y: float
    label: str


def sparkline(values: Sequence[int], *, width: int = 120, height: int = 30) -> Sparkline:
    pad = 3
    top = max(max(values, default=0), 1)
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    xy = [
        (pad + i * step, height - pad - (height - 2 * pad) * v / top) for i, v in enumerate(values)
    ]
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    area = f"{pad:.1f},{height - pad:.1f} {points} {xy[-1][0]:.1f},{height - pad:.1f}"
    return Sparkline(
        width=width,
        height=height,
        points=points,
        area=area,
        last_x=round(xy[-1][0], 1),
        last_y=round(xy[-1][1], 1),
        label="tickets per week, oldest first: " + ", ".join(str(v) for v in values),
    )


@dataclass(frozen=True)
class Segment:
    y: float
    height: float
    colour: str
    title: str


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    label: str
    total: int
    segments: list[Segment]


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    left: int
    bottom: float
    top: float
    max_value: int
    bars: list[Bar]


def _nice_ceiling(value: int) -> int:
    if value <= 5:
        return max(value, 1)
    magnitude = 10 ** int(math.log10(value))
    for step in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if value <= step * magnitude:
            return int(step * magnitude)
    return value


def stacked_bars(mix: CategoryMix, *, width: int = 400, height: int = 200) -> BarChart:
    left, right, top, bottom = 36, 8, 10, height - 24
    ceiling = _nice_ceiling(max(mix.totals(), default=0))
    slot = (width - left - right) / max(len(mix.weeks), 1)
    bars = []
    for i, week in enumerate(mix.weeks):
        y = float(bottom)
        segments = []
        for category, series in mix.counts.items():
            count = series[i]
            if not count:
                continue
            h = (bottom - top) * count / ceiling
            y -= h
            segments.append(
                Segment(
                    y=round(y, 2),
                    height=round(h, 2),
                    colour=CATEGORY_COLOURS[category],
                    title=f"{week}: {category} {count}",
                )
            )
        bars.append(
            Bar(
                x=round(left + i * slot + slot * 0.15, 2),
                width=round(slot * 0.7, 2),
                label=week.split("-")[1],
                total=sum(series[i] for series in mix.counts.values()),
                segments=segments,
            )
        )
    return BarChart(width, height, left, bottom, top, ceiling, bars)


def text_sparkline(values: Sequence[int]) -> str:
    top = max(max(values, default=0), 1)
    return "".join(
        _BLOCKS[min(len(_BLOCKS) - 1, round(v / top * (len(_BLOCKS) - 1)))] for v in values
    )
