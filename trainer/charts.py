"""Small line charts drawn as inline SVG: pure functions from numbers to polyline points.

The server renders the first frame and the live-status endpoint sends the same structures, so
the page's script only swaps attribute values and never does layout math of its own.
"""
import math
from dataclasses import asdict, dataclass, field

WIDTH = 320
HEIGHT = 120
PAD = 6
GUTTER = 44  # room on the left for the y-axis labels
MAX_POINTS = 400  # per series: more than a 320-pixel-wide chart can show


@dataclass(frozen=True)
class Series:
    name: str
    points: str  # the SVG polyline "points" attribute, e.g. "6.0,114.0 314.0,6.0"
    last: float | None  # the latest value, for the legend


@dataclass(frozen=True)
class Chart:
    title: str
    y_min: float
    y_max: float
    x_min: float
    x_max: float
    series: list[Series] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    gutter: int = GUTTER

    @property
    def is_empty(self) -> bool:
        return not any(s.points for s in self.series)

    def as_dict(self) -> dict:
        return asdict(self)


def _finite(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _thin(pairs: list, limit: int) -> list:
    if len(pairs) <= limit:
        return pairs
    stride = -(-len(pairs) // limit)  # ceiling division
    kept = pairs[::stride]
    return kept if kept[-1] is pairs[-1] else kept + [pairs[-1]]


def _span(values: list[float], fixed: tuple[float, float] | None) -> tuple[float, float]:
    if fixed is not None:
        return fixed
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    if low == high:  # a flat line still needs a non-zero scale; draw it mid-height
        return low - 1.0, high + 1.0
    return low, high


def polyline_points(
    xy: list[tuple[float, float]],
    *,
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    width: int = WIDTH,
    height: int = HEIGHT,
    pad: int = PAD,
    gutter: int = 0,
) -> str:
    """Map (x, y) pairs onto a width x height box (y grows upward) as SVG polyline points,
    `pad` pixels from each edge plus `gutter` more on the left."""
    x_low, x_high = x_range
    y_low, y_high = y_range
    left = pad + gutter
    x_scale = (width - left - pad) / (x_high - x_low) if x_high > x_low else 0.0
    y_scale = (height - 2 * pad) / (y_high - y_low) if y_high > y_low else 0.0
    out = []
    for x, y in xy:
        # A single x value sits in the middle rather than on the left edge.
        px = left + (x - x_low) * x_scale if x_scale else (left + width - pad) / 2
        py = height - pad - (min(max(y, y_low), y_high) - y_low) * y_scale if y_scale else height / 2
        out.append(f"{px:.1f},{py:.1f}")
    return " ".join(out)


def line_chart(
    title: str,
    series: dict[str, list[tuple[float, float | None]]],
    *,
    y_range: tuple[float, float] | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
    gutter: int = GUTTER,
    max_points: int = MAX_POINTS,
) -> Chart:
    """A chart of named series sharing one scale. Missing or non-finite values are left out;
    long series are thinned to about `max_points` (keeping the last point)."""
    clean = {
        name: _thin([(float(x), y) for x, raw in pairs if (y := _finite(raw)) is not None and _finite(x) is not None],
                    max_points)
        for name, pairs in series.items()
    }
    xs = [x for pairs in clean.values() for x, _ in pairs]
    ys = [y for pairs in clean.values() for _, y in pairs]
    x_range = (min(xs), max(xs)) if xs else (0.0, 1.0)
    y_low, y_high = _span(ys, y_range)
    return Chart(
        title=title,
        y_min=y_low,
        y_max=y_high,
        x_min=x_range[0],
        x_max=x_range[1],
        width=width,
        height=height,
        gutter=gutter,
        series=[
            Series(
                name=name,
                points=polyline_points(
                    pairs, x_range=x_range, y_range=(y_low, y_high), width=width, height=height, gutter=gutter
                ),
                last=pairs[-1][1] if pairs else None,
            )
            for name, pairs in clean.items()
        ],
    )


# What each run chart plots, keyed by the engine's per-step metric names.
RUN_CHARTS = {
    "loss": ("Loss", ["loss"]),
    "kl": ("KL reference point", ["kl"]),
    "rewards": ("Rewards (β·r)", ["rewards/chosen", "rewards/rejected", "rewards/margins"]),
}


def run_charts(metrics: list[dict]) -> dict[str, Chart]:
    """The loss, KL and reward curves of one training run from its per-step metrics."""
    charts = {}
    for key, (title, names) in RUN_CHARTS.items():
        series = {
            name: [(entry.get("step", index + 1), entry.get(name)) for index, entry in enumerate(metrics)]
            for name in names
        }
        charts[key] = line_chart(title, series)
    return charts


def rate_chart(rates: list[tuple[int, float | None]]) -> Chart:
    """Desirable rate per round on a fixed 0..1 scale, so rounds compare at a glance."""
    return line_chart("Desirable rate per round", {"desirable rate": rates}, y_range=(0.0, 1.0), width=480, height=180,
                      gutter=36)
