"""The benchmark pages show their figures as charts, drawn from the tables beside them."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

from helpers import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import charts  # benchmarks/ is not a package

DOCS = ROOT / "docs"
SVG = "{http://www.w3.org/2000/svg}"


def test_committed_charts_are_drawn_from_the_committed_tables():
    drawn = charts.all_charts()
    assert len(drawn) == 7
    for name, svg in drawn.items():
        assert (DOCS / charts.IMAGES / name).read_text() == svg, (
            "run `.venv/bin/python benchmarks/charts.py`"
        )


def test_each_page_shows_its_charts_next_to_its_table():
    for page, drawn in (
        ("benchmarks.md", charts.generator_charts((DOCS / "benchmarks.md").read_text())),
        (
            "benchmarks-serving.md",
            charts.serving_charts((DOCS / "benchmarks-serving.md").read_text()),
        ),
    ):
        text = (DOCS / page).read_text()
        assert charts.image_links(drawn) in text, page
        # right after the table it draws, before anything else
        table_end = text.index(charts.image_links(drawn)) - 2
        assert text[text.rindex("\n", 0, table_end) + 1 : table_end].startswith("|"), page


def test_a_chart_has_one_bar_per_row_scaled_from_zero():
    rows = charts.table((DOCS / "benchmarks.md").read_text(), "| group | command | median")
    startup = [row for row in rows if row[0] == "Start-up"]
    svg = ET.fromstring(
        charts.generator_charts((DOCS / "benchmarks.md").read_text())["bench-start-up.svg"]
    )
    bars = [r for r in svg.iter(f"{SVG}rect") if r.get("x") == str(charts.BAR_X)]
    assert len(bars) == len(startup)
    widths = [float(r.get("width", 0)) for r in bars]
    medians = [charts.seconds(row[2]) for row in startup]
    # bar length is proportional to the median
    for width, median in zip(widths, medians, strict=True):
        assert abs((width / widths[0]) / (median / medians[0]) - 1) < 0.01
    labels = [t.text for t in svg.iter(f"{SVG}text")]
    assert "mlopsify --help" in labels and "213 ms" in labels


def test_the_serving_charts_show_both_servers_for_both_kinds():
    drawn = charts.serving_charts((DOCS / "benchmarks-serving.md").read_text())
    svg = ET.fromstring(drawn["bench-serving-throughput.svg"])
    labels = [t.text for t in svg.iter(f"{SVG}text")]
    for kind in ("single", "batch"):
        assert f"{kind}: generated service" in labels and f"{kind}: mlflow models serve" in labels
