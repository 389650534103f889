"""The report's charts, drawn with matplotlib's Agg canvas: SVG text to inline in the HTML and
a PNG file. Pure drawing: no trail reading here, no pyplot (no global figure state), and no
fonts or images fetched from anywhere (SVG text uses the viewer's sans-serif font)."""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType  # the rcParams names rc_context accepts

NAV_COLOR = "#1565c0"       # the strategy's NAV line (tests look for it in screenshots)
BENCH_COLOR = "#ef6c00"     # buy-and-hold SPY
DRAWDOWN_COLOR = "#c62828"  # the strategy's drawdown area

_STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none", "svg.hashsalt": "tradebot-report", "font.size": 9,
    "font.family": "sans-serif", "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": True, "grid.color": "#e0e0e0", "grid.linewidth": 0.6, "path.simplify": True}


@dataclass(frozen=True, slots=True)
class Series:
    """A line to draw: instants (timezone-aware) and one value per instant."""

    label: str
    times: Sequence[datetime]
    values: Sequence[float]


def drawdowns(values: Sequence[float]) -> list[float]:
    """Each value's drop from the highest value so far, as a fraction (0 or negative)."""
    out, peak = [], float("-inf")
    for v in values:
        peak = max(peak, v)
        out.append(v / peak - 1.0 if peak > 0 else 0.0)
    return out


FEW_POINTS = 30  # up to this many points, each is drawn as a dot too


def _axes(fig: Figure, times: Sequence[datetime]):
    ax = fig.add_subplot()
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.margins(x=0.01)
    if times and min(times) == max(times):  # one instant: an hour either side, not years
        hour = timedelta(hours=1)
        ax.set_xlim(min(times) - hour, max(times) + hour)  # type: ignore[arg-type]  # a date axis takes datetimes
    elif len(times) <= FEW_POINTS:
        ax.margins(x=0.05)
    return ax


def _marker(series: Series) -> dict:
    return {"marker": "o", "markersize": 4} if len(series.times) <= FEW_POINTS else {}


def nav_figure(strategy: Series, benchmark: Series | None, title: str = "") -> Figure:
    """The NAV curve; the benchmark (already scaled to the strategy's NAV) dashed, if given."""
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(10, 4), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        ax = _axes(fig, strategy.times)
        ax.plot(strategy.times, strategy.values, color=NAV_COLOR, linewidth=2, label=strategy.label,
                **_marker(strategy))
        if benchmark is not None:
            ax.plot(benchmark.times, benchmark.values, color=BENCH_COLOR, linewidth=1.3,
                    linestyle="--", label=benchmark.label, **_marker(benchmark))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))
        ax.set_ylabel("NAV")
        ax.legend(loc="upper left", frameon=False)
        if title:
            ax.set_title(title, loc="left")
    return fig


def drawdown_figure(strategy: Series, benchmark: Series | None) -> Figure:
    """Drawdown from the running peak: the strategy as a filled area, the benchmark as a line."""
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(10, 2.6), dpi=100, layout="constrained")
        FigureCanvasAgg(fig)
        ax = _axes(fig, strategy.times)
        dd = drawdowns(strategy.values)
        ax.fill_between(strategy.times, dd, 0, color=DRAWDOWN_COLOR, alpha=0.35, linewidth=0)
        ax.plot(strategy.times, dd, color=DRAWDOWN_COLOR, linewidth=1, label="Strategy",
                **_marker(strategy))
        if benchmark is not None:
            ax.plot(benchmark.times, drawdowns(benchmark.values), color=BENCH_COLOR,
                    linewidth=1, linestyle="--", label=benchmark.label, **_marker(benchmark))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.set_ylabel("drawdown")
        ax.legend(loc="lower left", frameon=False)
    return fig


def to_svg(fig: Figure) -> str:
    """The figure as an `<svg>` element to paste into HTML (no XML prolog, no date metadata)."""
    with matplotlib.rc_context(_STYLE):
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def save_png(fig: Figure, path: Path, dpi: int = 120) -> None:
    """Write the figure as a PNG (white background) at `path`."""
    with matplotlib.rc_context(_STYLE):
        fig.savefig(path, format="png", dpi=dpi, facecolor="white")


def titled(fig: Figure, title: str) -> Figure:
    """Put `title` above the figure's (first) axes, e.g. for the PNG that travels alone."""
    with matplotlib.rc_context(_STYLE):
        fig.axes[0].set_title(title, loc="left", fontsize=11)
    return fig
