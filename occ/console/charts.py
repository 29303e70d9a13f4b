"""Charts as inline SVG, drawn on the server.

Why not a JavaScript chart library: the console's charts are a handful of lines and bars that change every few
seconds; SVG drawn here needs nothing installed, works with scripts off, is read by screen readers through its
``aria-label``, and keeps the page's Content-Security-Policy at "scripts from this console only". Each chart states
its values in text too (the label, the latest value), so nothing is shown only as a picture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 480, 160, 28


def line(
    points: Sequence[tuple[float, float]], *, label: str, unit: str = "", fmt: Callable[[float], str] | None = None
) -> Markup:
    """A line through ``points`` (x, y), scaled to fit, with the y range written at the side; ``fmt`` writes a y
    value (default: a plain number; the balance chart passes micro-units and writes them as money)."""
    text = fmt or _number
    summary = f"{label}: no data yet"
    if points:
        low, high = min(p[1] for p in points), max(p[1] for p in points)
        summary = (f"{label}: latest {text(points[-1][1])}{unit}, range {text(low)}–{text(high)}{unit} over "
                   f"{len(points)} points")  # fmt: skip
    body = ""
    if len(points) >= 2:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x0, x1, y0, y1 = min(xs), max(xs), min(0.0, min(ys)), max(ys)
        span_x, span_y = (x1 - x0) or 1.0, (y1 - y0) or 1.0
        inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
        coords = " ".join(
            f"{PAD + (x - x0) / span_x * inner_w:.1f},{HEIGHT - PAD - (y - y0) / span_y * inner_h:.1f}"
            for x, y in points
        )
        body = (
            f'<polyline class="series" fill="none" points="{coords}"/>'
            f'<text x="2" y="{PAD - 8}" class="axis">{escape(text(y1))}{escape(unit)}</text>'
            f'<text x="2" y="{HEIGHT - 6}" class="axis">{escape(text(y0))}{escape(unit)}</text>'
        )
    return _svg(summary, body)


def bars(items: Sequence[tuple[str, float]], *, label: str, unit: str = "") -> Markup:
    """One horizontal bar per (name, value), longest for the largest value."""
    shown = list(items)[:8]
    summary = f"{label}: " + (", ".join(f"{name} {_number(value)}{unit}" for name, value in shown) or "none yet")
    top = max((value for _, value in shown), default=0) or 1
    row = (HEIGHT - 8) / max(len(shown), 1)
    body = "".join(
        f'<rect class="bar" x="120" y="{4 + i * row:.1f}" width="{max(value / top * (WIDTH - 200), 1):.1f}" '
        f'height="{row * 0.7:.1f}"/>'
        f'<text x="2" y="{4 + i * row + row * 0.55:.1f}" class="axis">{escape(name[:18])}</text>'
        f'<text x="{126 + max(value / top * (WIDTH - 200), 1):.1f}" y="{4 + i * row + row * 0.55:.1f}" '
        f'class="axis">{escape(_number(value))}{escape(unit)}</text>'
        for i, (name, value) in enumerate(shown)
    )
    return _svg(summary, body)


def _svg(summary: str, body: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(summary)}">'
        f"<title>{escape(summary)}</title>{body}</svg>"
    )


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 or float(value).is_integer() else f"{value:,.2f}"
