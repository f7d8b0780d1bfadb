"""Bar charts (SVG, no dependencies) of the benchmark tables, drawn next to them in the docs.

The benchmarks write their tables into docs/benchmarks.md and docs/benchmarks-serving.md,
then call :func:`write_charts`, which reads those tables back and draws one chart per
group, so a chart shows exactly the figures of the table beside it.

    .venv/bin/python benchmarks/charts.py     # redraw the charts from the committed tables

tests/test_benchmarks.py redraws them and compares with the committed files.
"""

from __future__ import annotations

import html
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
IMAGES = "images"  # beside the pages, under docs/

WIDTH = 760
BAR_X = 12  # bars start at the left edge; each label sits above its bar, whole
BAR_HEIGHT = 16
ROW = 42
TOP = 58
VALUE_ROOM = 150
COLOURS = {"mlopsify": "#00897b", "baseline": "#90a4ae", "other": "#cfd8dc"}


@dataclass(frozen=True)
class Bar:
    """One bar: ``value`` with an optional ``low``..``high`` whisker; ``kind`` picks the colour."""

    label: str
    value: float
    text: str
    low: float | None = None
    high: float | None = None
    kind: str = "other"


def bar_chart(title: str, bars: list[Bar], axis: str) -> str:
    """A horizontal bar chart, one row per bar, scaled from zero to the largest value."""
    top = max(max(bar.high or bar.value, bar.value) for bar in bars) or 1.0
    span = WIDTH - BAR_X - VALUE_ROOM
    height = TOP + ROW * len(bars) + 20

    def x(value: float) -> float:
        return BAR_X + span * value / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{html.escape(title)}" '
        'font-family="Roboto, Helvetica, Arial, sans-serif" font-size="12">',
        f"<title>{html.escape(title)}</title>",
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="{BAR_X}" y="24" font-size="15" font-weight="bold" fill="#263238">'
        f"{html.escape(title)}</text>",
    ]
    for row, bar in enumerate(bars):
        y = TOP + ROW * row
        middle = y + BAR_HEIGHT / 2
        label = bar.label if len(bar.label) <= 118 else bar.label[:117] + "…"
        parts += [
            f'<text x="{BAR_X}" y="{y - 5}" fill="#263238">{html.escape(label)}</text>',
            f'<rect x="{BAR_X}" y="{y}" width="{max(x(bar.value) - BAR_X, 1):.1f}" '
            f'height="{BAR_HEIGHT}" fill="{COLOURS[bar.kind]}"/>',
        ]
        end = x(bar.value)
        if bar.low is not None and bar.high is not None:
            low, high = x(bar.low), x(bar.high)
            parts += [
                f'<line x1="{low:.1f}" y1="{middle}" x2="{high:.1f}" y2="{middle}" '
                'stroke="#37474f" stroke-width="1"/>',
                f'<line x1="{low:.1f}" y1="{y + 4}" x2="{low:.1f}" y2="{y + BAR_HEIGHT - 4}" '
                'stroke="#37474f" stroke-width="1"/>',
                f'<line x1="{high:.1f}" y1="{y + 4}" x2="{high:.1f}" y2="{y + BAR_HEIGHT - 4}" '
                'stroke="#37474f" stroke-width="1"/>',
            ]
            end = max(end, high)
        parts.append(
            f'<text x="{end + 6:.1f}" y="{middle + 4:.1f}" fill="#263238">'
            f"{html.escape(bar.text)}</text>"
        )
    axis_y = TOP + ROW * (len(bars) - 1) + BAR_HEIGHT + 4
    parts += [
        f'<line x1="{BAR_X}" y1="{TOP - 2}" x2="{BAR_X}" y2="{axis_y}" '
        'stroke="#607d8b" stroke-width="1"/>',
        f'<text x="{BAR_X}" y="{axis_y + 16}" fill="#546e7a">{html.escape(axis)}</text>',
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- the tables
def table(markdown: str, header: str) -> list[list[str]]:
    """The rows of the Markdown table whose header line starts with ``header``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def seconds(text: str) -> float:
    """``"213 ms"`` or ``"2.37 s"`` as seconds."""
    number, unit = text.split()
    return float(number) / 1000 if unit == "ms" else float(number)


def plain(label: str) -> str:
    """A table label without Markdown code marks."""
    return label.replace("`", "")


def generator_charts(markdown: str) -> dict[str, str]:
    """One chart per group of docs/benchmarks.md's Figures table: median and min..max."""
    groups: dict[str, list[Bar]] = {}
    for group, command, median, low, high, *_ in table(markdown, "| group | command | median"):
        if median == "n/a":
            continue
        label = plain(command)
        kind = (
            "mlopsify"
            if label.startswith("mlopsify")
            else "baseline"
            if "(baseline)" in label
            else "other"
        )
        groups.setdefault(group, []).append(
            Bar(label, seconds(median), median, seconds(low), seconds(high), kind)
        )
    return {
        f"bench-{slug(group)}.svg": bar_chart(
            f"{group}: median wall-clock time (whiskers: min to max)", bars, "seconds, from zero"
        )
        for group, bars in groups.items()
    }


def serving_charts(markdown: str) -> dict[str, str]:
    """Throughput and p99 latency of docs/benchmarks-serving.md's table, per request kind."""
    rows = table(markdown, "| request | server |")
    throughput, latency = [], []
    for request, server, rate, _records, _p50, p99, _errors in rows:
        kind = "mlopsify" if server.startswith("generated service") else "other"
        label = f"{request}: {server}"
        throughput.append(Bar(label, float(rate), f"{rate} requests/s", kind=kind))
        latency.append(Bar(label, float(p99), f"{p99} ms", kind=kind))
    return {
        "bench-serving-throughput.svg": bar_chart(
            "Serving: requests per second (more is better)", throughput, "requests/s, from zero"
        ),
        "bench-serving-p99.svg": bar_chart(
            "Serving: p99 latency (less is better)", latency, "milliseconds, from zero"
        ),
    }


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def image_links(charts: dict[str, str]) -> str:
    """Markdown that shows ``charts`` (file name -> SVG), in order, from a page in docs/."""
    return "\n\n".join(
        f"![{re.search(r'<title>(.*?)</title>', svg)[1]}]({IMAGES}/{name})"  # type: ignore[index]
        for name, svg in charts.items()
    )


def write_charts(charts: dict[str, str], docs: Path = DOCS) -> list[Path]:
    folder = docs / IMAGES
    folder.mkdir(parents=True, exist_ok=True)
    for name, svg in charts.items():
        (folder / name).write_text(svg, encoding="utf-8")
    return [folder / name for name in charts]


def all_charts(docs: Path = DOCS) -> dict[str, str]:
    """Every chart of the benchmark pages, drawn from their tables."""
    return {
        **generator_charts((docs / "benchmarks.md").read_text(encoding="utf-8")),
        **serving_charts((docs / "benchmarks-serving.md").read_text(encoding="utf-8")),
    }


if __name__ == "__main__":
    for path in write_charts(all_charts(Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS)):
        print(f"wrote {path}")
