"""Small HTML builders shared by the report page and by evaluators' own report sections."""

from __future__ import annotations

import hashlib
from html import escape
from typing import Any

import plotly.graph_objects as go

REAL_COLOUR, SYNTHETIC_COLOUR = "#1f77b4", "#d62728"  # the same two colours in every figure
REFERENCE_COLOURS = {"synthetic": SYNTHETIC_COLOUR, "ceiling": "#2ca02c", "floor": "#7f7f7f", "holdout": REAL_COLOUR}
REFERENCE_LABELS = {
    "synthetic": "synthetic",
    "ceiling": "ceiling (real train)",
    "floor": "floor (independent days)",
    "holdout": "real (holdout)",
}


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}"
    return escape(str(value))


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Headers are text (escaped); cells are HTML already."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def compared(model: float | None, baseline: float | None, lower_is_better: bool) -> str:
    """The model's number, marked better or worse than the baseline it sits beside."""
    if model is None or baseline is None:
        return fmt(model)
    better = model < baseline if lower_is_better else model > baseline
    return f'<span class="{"better" if better else "worse"}">{fmt(model)}</span>'


def figure(fig: go.Figure, height: int = 320) -> str:
    """A plotly figure as a div; the page embeds plotly's JavaScript once, so figures never do.
    The div's id comes from the figure's content, so the same run always renders the same page."""
    fig.update_layout(height=height, margin=dict(l=50, r=20, t=40, b=40), template="plotly_white")
    div_id = "fig-" + hashlib.sha256(fig.to_json().encode()).hexdigest()[:16]
    return fig.to_html(
        full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False, "responsive": True}
    )
