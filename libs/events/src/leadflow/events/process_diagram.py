"""The process map as a drawing: where each stage's box goes and the path of each allowed
move between two boxes (pure geometry, no I/O). The console's ``/process`` page and
analytics' dashboard both draw the map as inline SVG from it, so they look the same.

The forward funnel runs left to right on the top row; the side stages (nurture,
disqualified, on hold, lost) sit below the stages they branch from. Several moves between
the same two stages (recycle and reject, a resume back...) bend apart so each arrow and its
count stay readable, and a move back bends to the other side of its forward twin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

BOX_W, BOX_H = 150.0, 112.0
PITCH_X, PITCH_Y = 190.0, 250.0
MARGIN = 20.0
# (column, row) of each lifecycle stage; unknown stages go to the end of the bottom row.
GRID: dict[str, tuple[float, float]] = {
    "inquiry": (0, 0),
    "mql": (1, 0),
    "sal": (2, 0),
    "sql": (3, 0),
    "opportunity": (4, 0),
    "won": (5, 0),
    "customer": (6, 0),
    "churned": (6, 1),
    "nurture": (0.5, 1),
    "disqualified": (-0.0, 1.6),
    "on_hold": (2.5, 1),
    "lost": (4.5, 1),
}
# Every kind of arrow ``analytics.process_map.arrow_kind`` names (one colour and head each).
KINDS = ("forward", "nurture", "reject", "recycle", "hold", "resume", "disqualify", "reengage",
         "close")  # fmt: skip
BEND = 34.0  # how far apart two arrows between the same boxes bend
# The arrows' look, one colour per kind, shared by both drawings (inside their <style>).
ARROW_CSS = """
.arrow { fill: none; stroke-width: 1.4; opacity: .8; } .arrow.unused { opacity: .25; }
.k-forward { stroke: #1a7f37; color: #1a7f37; } .k-nurture { stroke: #0b6bcb; color: #0b6bcb; }
.k-reject { stroke: #b42318; color: #b42318; } .k-recycle { stroke: #b54708; color: #b54708; }
.k-hold { stroke: #6941c6; color: #6941c6; } .k-resume { stroke: #7a5af8; color: #7a5af8; }
.k-disqualify { stroke: #912018; color: #912018; } .k-reengage { stroke: #0e7090; color: #0e7090; }
.k-close { stroke: #475467; color: #475467; }
.count { font-weight: 700; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
"""
# One arrow head per kind, in the kind's colour (inside the drawing's <defs>).
MARKERS = "".join(
    f'<marker id="head-{k}" class="k-{k}" viewBox="0 0 10 10" refX="9" refY="5" '
    'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
    '<path d="M0,0 L10,5 L0,10 z" fill="currentColor" stroke="none"/></marker>'
    for k in KINDS
)


@dataclass(frozen=True)
class Box:
    stage: str
    x: float
    y: float

    @property
    def cx(self) -> float:
        return self.x + BOX_W / 2

    @property
    def cy(self) -> float:
        return self.y + BOX_H / 2


def boxes_for(stages: list[str]) -> dict[str, Box]:
    placed: dict[str, Box] = {}
    extra = 0
    for stage in stages:
        col, row = GRID.get(stage, (5.5 + extra, 1))
        extra += 0 if stage in GRID else 1
        placed[stage] = Box(stage, MARGIN + col * PITCH_X, MARGIN + row * PITCH_Y)
    return placed


def size_of(boxes: dict[str, Box]) -> tuple[float, float]:
    width = max((b.x for b in boxes.values()), default=0) + BOX_W + MARGIN
    height = max((b.y for b in boxes.values()), default=0) + BOX_H + MARGIN
    return width, height


def _edge(box: Box, dx: float, dy: float) -> tuple[float, float]:
    """Where the line from the box's centre in direction (dx, dy) leaves the box."""
    tx = (BOX_W / 2) / abs(dx) if dx else math.inf
    ty = (BOX_H / 2) / abs(dy) if dy else math.inf
    t = min(tx, ty)
    return box.cx + dx * t, box.cy + dy * t


def arrows_for(boxes: dict[str, Box], arrows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each arrow with its SVG path (a quadratic curve) and where its label goes."""
    pair_index: dict[tuple[str, str], int] = {}
    out = []
    for arrow in arrows:
        a, b = boxes.get(arrow["from"]), boxes.get(arrow["to"])
        if a is None or b is None:
            continue
        n = pair_index.get((a.stage, b.stage), 0)
        pair_index[(a.stage, b.stage)] = n + 1
        dx, dy = b.cx - a.cx, b.cy - a.cy
        length = math.hypot(dx, dy) or 1.0
        ux, uy = dx / length, dy / length
        # Bend to the left of the direction of travel: a move back takes the other side.
        bend = BEND * (n + 0.6)
        mx, my = (a.cx + b.cx) / 2 - uy * bend, (a.cy + b.cy) / 2 + ux * bend
        sx, sy = _edge(a, mx - a.cx, my - a.cy)
        ex, ey = _edge(b, mx - b.cx, my - b.cy)
        # The label sits on the curve's middle point (t = 0.5 of the quadratic).
        lx, ly = 0.25 * sx + 0.5 * mx + 0.25 * ex, 0.25 * sy + 0.5 * my + 0.25 * ey
        out.append(
            {
                **arrow,
                "path": f"M{sx:.1f},{sy:.1f} Q{mx:.1f},{my:.1f} {ex:.1f},{ey:.1f}",
                "label_x": round(lx, 1),
                "label_y": round(ly, 1),
            }
        )
    return out


def drawing(stages: list[dict[str, Any]], arrows: list[dict[str, Any]]) -> dict[str, Any]:
    """What a template needs to draw a process map (``GET /v1/process/map``'s stages and
    arrows): the stages with their box, the arrows with their path, the canvas size."""
    boxes = boxes_for([s["stage"] for s in stages])
    width, height = size_of(boxes)
    return {
        "stages": [{**s, "box": boxes[s["stage"]]} for s in stages],
        "arrows": arrows_for(boxes, arrows),
        "width": width,
        "height": height,
        "box_w": BOX_W,
        "box_h": BOX_H,
        "kinds": KINDS,
        "arrow_css": ARROW_CSS,
        "markers": MARKERS,
    }
