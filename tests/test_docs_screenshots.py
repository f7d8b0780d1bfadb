"""The built docs site, opened in headless Chromium (Debian's `chromium`): each page renders
with its theme, and the benchmark pages show their charts.

The screenshots are kept in the test's temporary directory (printed on failure) for a person
to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import ROOT, chromium_screenshot, require_tool, run

Image = pytest.importorskip("PIL.Image", reason="pillow comes with the dev extra")

pytestmark = pytest.mark.checkers  # a browser per page: in `make test`, not `make test-fast`

WIDTH = 1280
HEADER = (63, 81, 181)  # the material theme's indigo header bar: the theme's CSS loaded
MLOPSIFY_BAR = (0, 137, 123)  # the colour of mlopsify's bars in the benchmark charts
PAGES = {
    "index.html": 1000,
    "getting-started/index.html": 1000,
    "how-to/update-conflicts/index.html": 1000,
    "reference/cli/index.html": 1000,
    "reference/exit-codes/index.html": 1000,
    "generated-project/index.html": 1000,
    "architecture/index.html": 1000,
}
# Tall enough to reach the charts under the figures table.
CHART_PAGES = {"benchmarks/index.html": 9000, "benchmarks-serving/index.html": 2400}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mkdocs = require_tool("mkdocs")
    target = tmp_path_factory.mktemp("site")
    run(
        mkdocs,
        "build",
        "--strict",
        "--site-dir",
        target,
        cwd=ROOT,
        env={"NO_MKDOCS_2_WARNING": "1"},
    )
    return target


def screenshot(site: Path, page: str, height: int, folder: Path) -> Image.Image:
    shot = folder / (page.replace("/", "_").removesuffix(".html") + ".png")
    chromium_screenshot((site / page).as_uri(), shot, WIDTH, height)
    return Image.open(shot).convert("RGB")


def near(pixel: tuple[int, int, int], colour: tuple[int, int, int]) -> bool:
    """Within a few levels of ``colour`` (colour management rounds)."""
    return sum(abs(a - b) for a, b in zip(pixel, colour, strict=True)) <= 6


def ink(image: Image.Image) -> float:
    """The share of pixels that are not white: a blank page has none."""
    small = image.resize((image.width // 4, image.height // 4))
    pixels = list(small.getdata())
    return sum(1 for pixel in pixels if sum(pixel) < 720) / len(pixels)


def rows_with(image: Image.Image, colour: tuple[int, int, int]) -> int:
    """How many pixel rows (every 2nd) hold ``colour`` exactly (the charts' solid bars)."""
    data, stride, pattern = image.tobytes(), image.width * 3, bytes(colour)
    return sum(
        1 for y in range(0, image.height, 2) if pattern in data[y * stride : (y + 1) * stride]
    )


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_with_its_theme(site: Path, page: str, tmp_path: Path) -> None:
    image = screenshot(site, page, PAGES[page], tmp_path)
    print(f"screenshot in {tmp_path}")
    assert image.size == (WIDTH, PAGES[page])
    assert near(image.getpixel((5, 5)), HEADER), "the theme's CSS did not load"
    assert 0.03 < ink(image) < 0.6, f"a blank or broken page: {tmp_path}"


@pytest.mark.parametrize("page", CHART_PAGES)
def test_benchmark_page_shows_its_charts(site: Path, page: str, tmp_path: Path) -> None:
    image = screenshot(site, page, CHART_PAGES[page], tmp_path)
    print(f"screenshot in {tmp_path}")
    assert near(image.getpixel((5, 5)), HEADER)
    # Every chart has at least one mlopsify bar, 16 px high: several rows of its colour each.
    charts = 4 if page.startswith("benchmarks/") else 2
    assert rows_with(image, MLOPSIFY_BAR) >= charts * 6, f"charts missing: {tmp_path}"


def test_chromium_is_debians() -> None:
    """bootstrap.sh installs Chromium from Debian's packages, as CI does."""
    chromium = Path(require_tool("chromium")).resolve()
    assert chromium.is_file() and os.access(chromium, os.X_OK)
    assert str(chromium).startswith("/usr/"), chromium
