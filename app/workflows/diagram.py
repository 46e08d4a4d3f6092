"""A workflow definition drawn as an SVG diagram, for the designer and for documentation.

:func:`render` is pure and deterministic: the same definition (and language) always gives the
same bytes. States are laid out left to right in layers, by their distance from the start
state; states no path reaches stand in a last column. Actions are arrows labelled with their
names; a signed action carries a pen mark. The drawing tolerates unfinished drafts: a state an
action names but the definition lacks is drawn as a dashed "missing" box, a definition without
a start state is laid out from its first state, and fields of the wrong type are ignored.

Only what would make the definition unreadable as a list of states and actions is refused
(:class:`DiagramError`, with JSON Pointers). The SVG uses presentation attributes only, no
``style`` attribute or element, no script and no external reference, so it can be placed in a
page under a strict Content-Security-Policy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.forms.definitions import FieldError, json_pointer

MAX_STATES = 200
MAX_ACTIONS = 600

BOX_W, BOX_H = 190, 72
GAP_X, GAP_Y = 150, 56
MARGIN = 28
LEGEND_H = 30

# Characters XML 1.0 does not allow, even escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")

# The diagram's words: state types (and "missing"), SLA day kinds, and the rest.
_TEXTS = {
    "start": {"vi": "Bắt đầu", "en": "Start"},
    "task": {"vi": "Xử lý", "en": "Task"},
    "approval": {"vi": "Phê duyệt", "en": "Approval"},
    "terminal": {"vi": "Kết thúc", "en": "End"},
    "missing": {"vi": "Không có bước này", "en": "No such state"},
    "working": {"vi": "ngày làm việc", "en": "working days"},
    "calendar": {"vi": "ngày lịch", "en": "calendar days"},
    "title": {"vi": "Sơ đồ quy trình", "en": "Workflow diagram"},
    "signed": {"vi": "ký số", "en": "signed"},
    "unreached": {"vi": "không tới được từ bước bắt đầu", "en": "not reached from the start"},
}
# fill, stroke, stroke width, corner radius, dash
_LOOK: dict[str, tuple[str, str, str, str, str | None]] = {
    "start": ("#e8f1fb", "#1d5fa7", "2", "30", None),
    "task": ("#ffffff", "#3c4650", "1.5", "6", None),
    "approval": ("#fff6e0", "#8a5a00", "2", "6", None),
    "terminal": ("#eaf6ec", "#2e7d32", "3", "14", None),
    "missing": ("#fdecea", "#b3261e", "2", "6", "6 4"),
}
_OUTCOME_STROKE = {"rejected": "#b3261e", "withdrawn": "#6b6b6b"}


class DiagramError(Exception):
    """A body that is not a list of states and actions at all."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.pointer}: {e.en}" for e in errors))
        self.errors = errors


@dataclass
class _Node:
    name: str
    kind: str  # start, task, approval, terminal, missing
    title: str = ""
    sla: str = ""
    outcome: str | None = None
    layer: int = 0
    row: int = 0
    unreached: bool = False

    @property
    def x(self) -> int:
        return MARGIN + self.layer * (BOX_W + GAP_X)

    @property
    def y(self) -> int:
        return MARGIN + LEGEND_H + self.row * (BOX_H + GAP_Y)


@dataclass
class _Edge:
    name: str
    source: str
    target: str
    signed: bool
    order: int = 0
    siblings: list[int] = field(default_factory=list)


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _esc(text: Any) -> str:
    return (_clean(str(text)).replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;").replace("'", "&#39;"))


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(value: Any, lang: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in (lang, "vi", "en"):
            found = value.get(key)
            if isinstance(found, str) and found:
                return found
    return ""


def _problem(path: list[Any], vi: str, en: str) -> FieldError:
    return FieldError(json_pointer(path), vi, en, "diagram")


def _sources(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def check(definition: Any) -> list[FieldError]:
    """Why ``definition`` cannot be drawn at all (empty when it can be)."""
    if not isinstance(definition, Mapping):
        return [_problem([], "Định nghĩa phải là một đối tượng JSON.",
                         "The definition must be a JSON object.")]
    problems: list[FieldError] = []
    for key, limit in (("states", MAX_STATES), ("actions", MAX_ACTIONS)):
        items = definition.get(key, [])
        if not isinstance(items, list):
            problems.append(_problem([key], "Phải là một danh sách.", "Must be a list."))
            continue
        if len(items) > limit:
            problems.append(_problem([key], f"Tối đa {limit} mục.", f"At most {limit} items."))
            continue
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                problems.append(_problem([key, i], "Phải là một đối tượng.",
                                         "Must be an object."))
            elif "name" in item and not isinstance(item["name"], str):
                problems.append(_problem([key, i, "name"], "Tên phải là chuỗi ký tự.",
                                         "The name must be a string."))
    return problems


def _sla_text(sla: Any, lang: str) -> str:
    if not isinstance(sla, Mapping) or not isinstance(sla.get("duration"), str):
        return ""
    days = sla.get("days", "working")
    words = _TEXTS[days][lang] if days in ("working", "calendar") else ""
    return f"SLA {sla['duration']}" + (f" ({words})" if words else "")


def _graph(definition: Mapping[str, Any], lang: str) -> tuple[list[_Node], list[_Edge]]:
    nodes: dict[str, _Node] = {}
    for i, state in enumerate(definition.get("states", [])):
        name = state.get("name") or f"#{i + 1}"
        if name in nodes:  # a duplicate name: drawn once, the publish check names it
            continue
        kind = state.get("type")
        nodes[name] = _Node(
            name=name, kind=kind if kind in ("start", "task", "approval", "terminal")
            else "task", title=_text(state.get("title"), lang),
            sla=_sla_text(state.get("sla"), lang),
            outcome=state.get("outcome") if isinstance(state.get("outcome"), str) else None)
    edges: list[_Edge] = []
    for i, action in enumerate(definition.get("actions", [])):
        name = action.get("name") or f"#{i + 1}"
        signature = action.get("signature")
        signed = isinstance(signature, Mapping) and signature.get("required") is True
        target = action.get("to") if isinstance(action.get("to"), str) else None
        for source in _sources(action.get("from")):
            for end in (source, target):
                if end is not None and end not in nodes:
                    nodes[end] = _Node(name=end, kind="missing")
            if target is not None:
                edges.append(_Edge(name, source, target, signed))
    return list(nodes.values()), edges


def _layout(nodes: list[_Node], edges: list[_Edge]) -> None:
    if not nodes:
        return
    start = next((n for n in nodes if n.kind == "start"), nodes[0])
    forward: dict[str, list[str]] = {}
    for edge in edges:
        forward.setdefault(edge.source, []).append(edge.target)
    depth = {start.name: 0}
    queue = [start.name]
    while queue:
        current = queue.pop(0)
        for nxt in forward.get(current, []):
            if nxt not in depth:
                depth[nxt] = depth[current] + 1
                queue.append(nxt)
    last = max(depth.values()) + 1
    rows: dict[int, int] = {}
    for node in nodes:
        node.unreached = node.name not in depth
        node.layer = depth.get(node.name, last)
        node.row = rows.get(node.layer, 0)
        rows[node.layer] = node.row + 1
    # Parallel actions between the same two states are spread apart.
    groups: dict[tuple[str, str], list[_Edge]] = {}
    for edge in edges:
        pair = (min(edge.source, edge.target), max(edge.source, edge.target))
        groups.setdefault(pair, []).append(edge)
    for group in groups.values():
        for order, edge in enumerate(group):
            edge.order = order
            edge.siblings = [len(group)]


def _box(node: _Node, lang: str) -> list[str]:
    fill, stroke, width, radius, dash = _LOOK[node.kind]
    if node.kind == "terminal" and node.outcome in _OUTCOME_STROKE:
        stroke = _OUTCOME_STROKE[node.outcome]
    x, y = node.x, node.y
    kind = _TEXTS[node.kind][lang]
    label = f"{node.name}: {kind}" + (f", {node.title}" if node.title else "")
    parts = [f'<g class="state state-{node.kind}" data-state="{_esc(node.name)}">',
             f"<title>{_esc(label)}</title>",
             f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="{radius}" '
             f'fill="{fill}" stroke="{stroke}" stroke-width="{width}"'
             + (f' stroke-dasharray="{dash}"' if dash else "") + "/>"]
    if node.kind == "approval":
        parts.append(f'<rect x="{x + 4}" y="{y + 4}" width="{BOX_W - 8}" height="{BOX_H - 8}" '
                     f'rx="4" fill="none" stroke="{stroke}" stroke-width="1"/>')
    cx = x + BOX_W // 2
    parts.append(f'<text x="{cx}" y="{y + 20}" text-anchor="middle" font-size="13" '
                 f'font-weight="bold" fill="#1b1f23">{_esc(_short(node.name, 24))}</text>')
    second = node.title if node.kind != "missing" else _TEXTS["missing"][lang]
    if second:
        parts.append(f'<text x="{cx}" y="{y + 38}" text-anchor="middle" font-size="11" '
                     f'fill="#1b1f23">{_esc(_short(second, 30))}</text>')
    third = node.sla or (f"{kind} · {node.outcome}" if node.outcome else kind)
    if node.unreached and node.kind != "missing":
        third = _TEXTS["unreached"][lang]
    parts.append(f'<text x="{cx}" y="{y + 58}" text-anchor="middle" font-size="10" '
                 f'fill="{"#b3261e" if node.unreached else "#4a5560"}">'
                 f"{_esc(_short(third, 34))}</text>")
    parts.append("</g>")
    return parts


def _arrow(edge: _Edge, nodes: Mapping[str, _Node], lang: str) -> list[str]:
    a, b = nodes[edge.source], nodes[edge.target]
    spread = (edge.order - (edge.siblings[0] - 1) / 2) * 22 if edge.siblings else 0.0
    lx: float
    ly: float
    anchor = "middle"
    if a.name == b.name:  # a loop over the top of the box
        x, y = a.x + BOX_W * 0.65, a.y
        path = (f"M {x:.0f} {y} C {x + 50:.0f} {y - 50 - spread:.0f} "
                f"{x - 60:.0f} {y - 50 - spread:.0f} {x - 20:.0f} {y}")
        lx, ly = x - 5, y - 44 - spread
    elif b.layer > a.layer:
        x1, y1 = float(a.x + BOX_W), a.y + BOX_H / 2 + spread / 2
        x2, y2 = float(b.x), b.y + BOX_H / 2 + spread / 2
        mx = (x1 + x2) / 2
        path = f"M {x1:.0f} {y1:.0f} C {mx:.0f} {y1:.0f} {mx:.0f} {y2:.0f} {x2:.0f} {y2:.0f}"
        lx, ly = mx, (y1 + y2) / 2 - 6 + spread
    elif b.layer == a.layer and abs(b.row - a.row) == 1:  # neighbours in a column
        down = b.row > a.row
        x1 = a.x + BOX_W / 2 + (-28 if down else 28) + spread
        y1 = float(a.y + BOX_H if down else a.y)
        y2 = float(b.y if down else b.y + BOX_H)
        path = f"M {x1:.0f} {y1:.0f} L {x1:.0f} {y2:.0f}"
        lx, ly = x1 + (-6 if down else 6), (y1 + y2) / 2 + 4
        anchor = "end" if down else "start"
    elif b.layer == a.layer:  # further down or up a column: an arc on the left
        x1, y1 = float(a.x), a.y + BOX_H / 2 + spread / 2
        x2, y2 = float(b.x), b.y + BOX_H / 2 + spread / 2
        bend = x1 - 46 - abs(b.row - a.row) * 8
        path = f"M {x1:.0f} {y1:.0f} C {bend:.0f} {y1:.0f} {bend:.0f} {y2:.0f} {x2:.0f} {y2:.0f}"
        lx, ly = bend + 10, (y1 + y2) / 2
        anchor = "end"
    else:  # backwards: an arc under the boxes
        x1, y1 = a.x + BOX_W / 2 - 20, float(a.y + BOX_H)
        x2, y2 = b.x + BOX_W / 2 + 20, float(b.y + BOX_H)
        drop = max(y1, y2) + 40 + abs(a.layer - b.layer) * 8 + spread
        path = (f"M {x1:.0f} {y1:.0f} C {x1:.0f} {drop:.0f} {x2:.0f} {drop:.0f} "
                f"{x2:.0f} {y2:.0f}")
        lx, ly = (x1 + x2) / 2, drop - 8
    missing = b.kind == "missing" or a.kind == "missing"
    colour = "#b3261e" if missing else "#3c4650"
    label = edge.name + (" ✎" if edge.signed else "")
    title = f"{edge.name}: {edge.source} → {edge.target}" + (
        f" ({_TEXTS['signed'][lang]})" if edge.signed else "")
    parts = [f'<g class="action{" signed" if edge.signed else ""}" '
             f'data-action="{_esc(edge.name)}">',
             f"<title>{_esc(title)}</title>",
             f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.5"'
             + (' stroke-dasharray="5 3"' if missing else "")
             + ' marker-end="url(#nt-wf-arrow)"/>',
             f'<text x="{lx:.0f}" y="{ly:.0f}" text-anchor="{anchor}" font-size="10.5" '
             f'fill="{"#6a1b9a" if edge.signed else colour}" stroke="#ffffff" '
             f'stroke-width="3" paint-order="stroke">{_esc(_short(label, 24))}</text>']
    parts.append("</g>")
    return parts


def render(definition: Mapping[str, Any], lang: str = "vi") -> str:
    """The SVG text of ``definition`` (which :func:`check` accepts) with texts in ``lang``."""
    lang = lang if lang in ("vi", "en") else "vi"
    problems = check(definition)
    if problems:
        raise DiagramError(problems)
    nodes, edges = _graph(definition, lang)
    _layout(nodes, edges)
    by_name = {n.name: n for n in nodes}
    columns = max((n.layer for n in nodes), default=0) + 1
    rows = max((n.row for n in nodes), default=0) + 1
    width = 2 * MARGIN + columns * BOX_W + (columns - 1) * GAP_X
    height = 2 * MARGIN + LEGEND_H + rows * BOX_H + (rows - 1) * GAP_Y + 70
    title = _text(definition.get("title"), lang) or str(definition.get("key") or "")
    heading = _TEXTS["title"][lang] + (f": {title}" if title else "")
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="nt-wf-title" '
           f'font-family="sans-serif" class="workflow-diagram">',
           f'<title id="nt-wf-title">{_esc(heading)}</title>',
           '<defs><marker id="nt-wf-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
           'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
           '<path d="M 0 0 L 10 5 L 0 10 z" fill="#3c4650"/></marker></defs>',
           f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="{MARGIN}" y="{MARGIN}" font-size="14" font-weight="bold" '
           f'fill="#1b1f23">{_esc(_short(heading, 90))}</text>']
    for edge in edges:
        out += _arrow(edge, by_name, lang)
    for node in nodes:
        out += _box(node, lang)
    out.append("</svg>")
    return "\n".join(out) + "\n"
