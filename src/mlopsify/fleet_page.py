"""``fleet status --html``: the fleet on one static page, a chart of releases first.

One self-contained HTML file (inline CSS and SVG, no script, nothing fetched), so that it
can be attached to a CI job or published as it is. The chart has one bar per release, its
repositories stacked by what an update would do; the table under it is the text report.
"""

from __future__ import annotations

from html import escape

from .fleet_status import FleetStatus, RepositoryStatus

# state -> (label, colour); the order is the stacking order, bottom up.
STATES = {
    "current": ("on the newest release", "#2e7d32"),
    "clean": ("behind, updates cleanly", "#1565c0"),
    "conflicts": ("behind, update conflicts", "#ef6c00"),
    "unreadable": ("could not be read", "#9e9e9e"),
}
_BAR, _GAP, _HEIGHT, _LEFT, _TOP = 90, 40, 240, 40, 20
_LEGEND = 200  # the width of one entry of the legend


def fleet_page(status: FleetStatus) -> str:
    """The HTML page of a fleet's status."""
    repositories = status.repositories
    counts = {state: sum(r.state == state for r in repositories) for state in STATES}
    tiles = "".join(
        f'<div class="tile" style="border-color:{colour}"><b>{counts[state]}</b>{label}</div>'
        for state, (label, colour) in STATES.items()
    )
    rows = "".join(_row(repository) for repository in repositories)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Template releases across the fleet</title>
<style>
body {{ font-family: "DejaVu Sans", sans-serif; margin: 24px; color: #212121; }}
h1 {{ font-size: 22px; }}
.tiles {{ display: flex; gap: 12px; margin: 12px 0 20px; }}
.tile {{ border-left: 8px solid; padding: 6px 12px; background: #f5f5f5; }}
.tile b {{ display: block; font-size: 22px; }}
table {{ border-collapse: collapse; margin-top: 20px; font-size: 13px; }}
th, td {{ text-align: left; padding: 4px 10px; border-bottom: 1px solid #e0e0e0; }}
.state {{ display: inline-block; width: 10px; height: 10px; margin-right: 6px; }}
</style></head>
<body>
<h1>Template releases across the fleet ({len(repositories)} repositories)</h1>
<div class="tiles">{tiles}</div>
{_chart(status)}
<table><tr><th>repository</th><th>release</th><th>behind</th><th>update</th><th>assess</th>
<th>CI</th></tr>{rows}</table>
</body></html>
"""


def _chart(status: FleetStatus) -> str:
    """One bar per release (and one for the unreadable), stacked by state."""
    columns = [*status.releases, "unreadable"]
    stacks: dict[str, list[str]] = {column: [] for column in columns}
    for repository in status.repositories:
        column = "unreadable" if repository.error is not None else repository.release or ""
        stacks.setdefault(column, []).append(repository.state)
    tallest = max([1, *(len(stack) for stack in stacks.values())])
    unit = _HEIGHT / tallest
    width = max(_LEFT + len(stacks) * (_BAR + _GAP), _LEFT + len(STATES) * _LEGEND)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{_TOP + _HEIGHT + 70}"'
        ' role="img" aria-label="repositories per template release">',
        f'<line x1="{_LEFT - 6}" y1="{_TOP + _HEIGHT}" x2="{width}" y2="{_TOP + _HEIGHT}"'
        ' stroke="#616161"/>',
    ]
    for index, (column, stack) in enumerate(stacks.items()):
        x = _LEFT + index * (_BAR + _GAP)
        y = float(_TOP + _HEIGHT)
        for state in STATES:
            count = stack.count(state)
            if count:
                y -= count * unit
                parts.append(
                    f'<rect x="{x}" y="{y:.1f}" width="{_BAR}" height="{count * unit:.1f}"'
                    f' fill="{STATES[state][1]}"><title>{count} {STATES[state][0]}</title></rect>'
                )
        middle = x + _BAR / 2
        parts.append(
            f'<text x="{middle}" y="{y - 6:.1f}" text-anchor="middle" font-size="14">{len(stack)}</text>'
        )
        parts.append(
            f'<text x="{middle}" y="{_TOP + _HEIGHT + 20}" text-anchor="middle"'
            f' font-size="14">{escape(column)}</text>'
        )
    legend_y = _TOP + _HEIGHT + 50
    for index, (label, colour) in enumerate(STATES.values()):
        x = _LEFT + index * _LEGEND
        parts.append(f'<rect x="{x}" y="{legend_y - 11}" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{x + 18}" y="{legend_y}" font-size="13">{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _row(repository: RepositoryStatus) -> str:
    colour = STATES[repository.state][1]
    mark = f'<span class="state" style="background:{colour}"></span>'
    name = f"<td>{mark}{escape(repository.name)}</td>"
    if repository.error is not None:
        return f'<tr>{name}<td colspan="5">could not be read: {escape(repository.error)}</td></tr>'
    if repository.conflicts is None:
        update = "up to date"
    elif repository.conflicts:
        update = "conflicts in " + ", ".join(escape(path) for path in repository.conflicts)
    else:
        update = f"updates cleanly to {escape(repository.newest or '')}"
    assessed = repository.assess or {}
    return (
        f"<tr>{name}<td>{escape(repository.release or '')}</td><td>{repository.behind}</td>"
        f"<td>{update}</td><td>{assessed.get('score')}/{assessed.get('max_score')}</td>"
        f"<td>{escape(repository.ci_provider or '-')}</td></tr>"
    )
