"""The cache page's charts over time, as inline SVG: hits and misses per period, and seconds saved so far.

Written by hand, not with matplotlib: matplotlib is only a benchmark extra (not installed with envbuild), and these
charts are a few rectangles and one polyline that the page's CSS styles, with no script and nothing to fetch.
The history comes from `trace.export_index`: exact counts and costs, hits spread between an image's build and its
last hit (the index keeps no per-hit times), which the page says.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT, MARGIN = 720, 190, 36
MAX_BARS = 48
MIN_SLOTS = 12  # a short history is drawn as narrow bars, not one bar across the chart


@dataclass(frozen=True)
class Period:
    start: float
    hits: int
    misses: int
    seconds_saved: float


def periods(requests) -> list[Period]:
    """Requests (trace.Request, time-ordered) counted per hour or per day (whichever gives at most MAX_BARS
    periods; days beyond that keep the latest MAX_BARS): the first request of a key is the miss that built it."""
    if not requests:
        return []
    span = requests[-1].t - requests[0].t
    width = 3600.0 if span <= MAX_BARS * 3600 else 86400.0
    first = requests[0].t - requests[0].t % width
    counts: dict[int, list] = {}
    seen: set[str] = set()
    for request in requests:
        slot = counts.setdefault(int((request.t - first) // width), [0, 0, 0.0])
        if request.key in seen:
            slot[0] += 1
            slot[2] += request.build_seconds
        else:
            seen.add(request.key)
            slot[1] += 1
    last = max(counts)
    return [Period(first + i * width, *counts.get(i, (0, 0, 0.0))) for i in range(max(0, last - MAX_BARS + 1), last + 1)]


def hits_and_misses(data: list[Period]) -> str:
    """Stacked bars: hits over misses per period."""
    if not data:
        return _empty("no requests recorded yet")
    top = max(p.hits + p.misses for p in data) or 1
    bar = (WIDTH - 2 * MARGIN) / max(len(data), MIN_SLOTS)
    parts = []
    for i, p in enumerate(data):
        x = MARGIN + i * bar
        hit_h = (HEIGHT - 2 * MARGIN) * p.hits / top
        miss_h = (HEIGHT - 2 * MARGIN) * p.misses / top
        base = HEIGHT - MARGIN
        title = f"{_when(p.start)}: {p.hits} hits, {p.misses} misses"
        parts.append(f'<g><title>{escape(title)}</title>'
                     f'<rect class="miss" x="{x + 1:.1f}" y="{base - miss_h:.1f}" width="{bar - 2:.1f}" '
                     f'height="{miss_h:.1f}"/>'
                     f'<rect class="hit" x="{x + 1:.1f}" y="{base - miss_h - hit_h:.1f}" width="{bar - 2:.1f}" '
                     f'height="{hit_h:.1f}"/></g>')
    return _frame("hits and misses", data, top, "".join(parts), MARGIN + (len(data) - 0.5) * bar,
                  legend=[("hit", "hits"), ("miss", "misses")])


def seconds_saved(data: list[Period]) -> str:
    """A line: build seconds the hits did not pay, summed from the first period."""
    if not data:
        return _empty("no requests recorded yet")
    totals, running = [], 0.0
    for p in data:
        running += p.seconds_saved
        totals.append(running)
    top = max(totals) or 1.0
    step = (WIDTH - 2 * MARGIN) / max(len(data) - 1, MIN_SLOTS - 1)
    points = " ".join(f"{MARGIN + i * step:.1f},{HEIGHT - MARGIN - (HEIGHT - 2 * MARGIN) * v / top:.1f}"
                      for i, v in enumerate(totals))
    marks = "".join(f'<circle class="saved" cx="{MARGIN + i * step:.1f}" '
                    f'cy="{HEIGHT - MARGIN - (HEIGHT - 2 * MARGIN) * v / top:.1f}" r="2.5">'
                    f'<title>{escape(_when(p.start))}: {v:.0f}s saved so far</title></circle>'
                    for i, (p, v) in enumerate(zip(data, totals)))
    body = f'<polyline class="saved" fill="none" points="{points}"/>{marks}'
    return _frame("seconds saved (cumulative)", data, top, body, MARGIN + (len(data) - 1) * step, unit="s")


def _frame(title: str, data: list[Period], top: float, body: str, last_x: float, *, unit: str = "",
           legend: list[tuple[str, str]] = ()) -> str:
    axis = (f'<line class="axis" x1="{MARGIN}" y1="{HEIGHT - MARGIN}" x2="{WIDTH - MARGIN}" y2="{HEIGHT - MARGIN}"/>'
            f'<text class="tick" x="{MARGIN - 4}" y="{MARGIN + 4}" text-anchor="end">{top:.0f}{unit}</text>'
            f'<text class="tick" x="{MARGIN - 4}" y="{HEIGHT - MARGIN}" text-anchor="end">0</text>'
            f'<text class="tick" x="{MARGIN}" y="{HEIGHT - MARGIN + 14}">{escape(_when(data[0].start))}</text>'
            + (f'<text class="tick" x="{last_x:.1f}" y="{HEIGHT - MARGIN + 28}" text-anchor="middle">'
             f'{escape(_when(data[-1].start))}</text>' if len(data) > 1 else ''))
    keys = "".join(f'<rect class="{css}" x="{WIDTH - MARGIN - 150 + i * 75}" y="8" width="10" height="10"/>'
                   f'<text class="tick" x="{WIDTH - MARGIN - 136 + i * 75}" y="17">{escape(label)}</text>'
                   for i, (css, label) in enumerate(legend))
    return (f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
            f'xmlns="http://www.w3.org/2000/svg"><text class="title" x="{MARGIN}" y="17">{escape(title)}</text>'
            f'{keys}{axis}{body}</svg>')


def _empty(message: str) -> str:
    return (f'<svg class="chart" viewBox="0 0 {WIDTH} 40" xmlns="http://www.w3.org/2000/svg">'
            f'<text class="tick" x="{MARGIN}" y="24">{escape(message)}</text></svg>')


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:00", time.gmtime(timestamp))
