"""The look shared by every budgeteval figure: palette, sizes, fonts, budget axes, legends, saving.

Figures are `matplotlib.figure.Figure` objects on the Agg canvas, made without pyplot (no global
figure state, no display needed), sized for a single paper column, coloured with the Okabe-Ito
colour-blind-safe palette, and saved as vector PDF/SVG or 300-dpi PNG with fixed metadata so the
same data gives the same bytes. What each figure shows lives in `budgeteval.plots.budget`; this module
knows nothing about runs or metrics.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from budgeteval.atomic import write_atomic
from budgeteval.errors import UserError
from budgeteval.generation.budgets import format_budget

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
"""Okabe & Ito (2008) colours, distinguishable with every common colour-vision deficiency; yellow last (faint on white)."""

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
"""One marker per run (with its colour), so lines stay apart in greyscale too."""

MODE_LINESTYLES = {"cutoff": "-", "forced": "--", "conditioned": ":"}
"""Line style per budget mode; a mode not listed here gets `OTHER_LINESTYLE`."""

OTHER_LINESTYLE = "-."

COLUMN_WIDTH_IN = 3.25
"""Width of one column of a two-column paper (ICML, NeurIPS, ACL are 3.0-3.3 in)."""

PANEL_HEIGHT_IN = 1.9
"""Height of one row of panels."""

FIGURE_FORMATS = ("pdf", "png", "svg")
"""Formats `save_figure` writes: PDF and SVG are vector, PNG is 300 dpi."""

PNG_DPI = 300

STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.3,
    "lines.markersize": 3.5,
    "legend.frameon": False,
    "pdf.fonttype": 42,  # TrueType in PDFs: what paper venues ask for, and text stays selectable
    "svg.fonttype": "none",
    "svg.hashsalt": "budgeteval",  # fixed ids in SVGs: same figure, same bytes
}
"""rcParams every figure is drawn and saved with (never set globally)."""

_METADATA = {"pdf": {"CreationDate": None, "Producer": None}, "svg": {"Date": None}, "png": {"Software": None}}


@contextlib.contextmanager
def figure_style() -> Iterator[None]:
    """Draw (and save) inside this context to get the budgeteval look without touching global rcParams."""
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def run_colours(labels: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Colour and marker per run label, by position: the same runs in the same order look the same everywhere."""
    labels = list(labels)
    if len(set(labels)) != len(labels):
        raise UserError(f"Two runs share a label ({', '.join(labels)}): name them apart with RUN=label.")
    if len(labels) > len(OKABE_ITO):
        raise UserError(f"{len(labels)} runs are too many for one readable figure: plot at most {len(OKABE_ITO)}.")
    return {label: (OKABE_ITO[i], MARKERS[i]) for i, label in enumerate(labels)}


def mode_linestyle(mode: str) -> str:
    """Line style of a budget mode."""
    return MODE_LINESTYLES.get(mode, OTHER_LINESTYLE)


def new_figure(num_panels: int, max_columns: int = 2, panel_height_in: float = PANEL_HEIGHT_IN):
    """A single-column figure with `num_panels` axes in a grid (at most `max_columns` wide), and the axes.

    Panels beyond `num_panels` in the last row are removed. Returns (figure, list of axes).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = max(1, min(num_panels, max_columns))
    rows = -(-num_panels // columns)
    figure = Figure(figsize=(COLUMN_WIDTH_IN, panel_height_in * rows + 0.45), layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.subplots(rows, columns, squeeze=False)
    axes = [ax for row in grid for ax in row]
    for extra in axes[num_panels:]:
        extra.remove()
    return figure, axes[:num_panels]


def budget_axis(ax, budgets: Sequence[int]) -> None:
    """A log2 x axis with one tick per budget, labelled the short way (2k, 32k, 384)."""
    from matplotlib.ticker import FixedLocator, NullLocator

    budgets = sorted({int(b) for b in budgets})
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(budgets))
    ax.set_xticklabels([format_budget(b) for b in budgets])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.grid(True, axis="x", which="major")
    if budgets:
        ax.set_xlim(budgets[0] / 2 ** 0.2, budgets[-1] * 2 ** 0.2)
    ax.set_xlabel("token budget")


def thin_overlapping_tick_labels(figure, padding_px: float = 2.0) -> None:
    """Hide x tick labels that would overlap their left neighbour (keeping the first one).

    Lays the figure out first, so the check sees the labels where they will be drawn.
    """
    figure.draw_without_rendering()
    renderer = figure.canvas.get_renderer()
    for ax in figure.axes:
        kept_right = None
        for label in sorted(ax.get_xticklabels(), key=lambda text: text.get_position()[0]):
            if not label.get_visible() or not label.get_text():
                continue
            box = label.get_window_extent(renderer)
            if kept_right is not None and box.x0 < kept_right + padding_px:
                label.set_visible(False)
            else:
                kept_right = box.x1


def figure_legend(figure, handles: list, labels: list[str]) -> None:
    """One legend for the whole figure, below the panels (never over data), in as few rows as fit."""
    columns = min(len(labels), 3 if max((len(label) for label in labels), default=0) <= 18 else 2)
    figure.legend(handles, labels, loc="outside lower center", ncols=max(columns, 1), handlelength=2.2,
                  columnspacing=1.2)


def make_out_dir(out_dir: str | os.PathLike) -> Path:
    """Create the figures folder `-o` names, or say in one sentence why it cannot be written."""
    out_dir = Path(out_dir)
    blocker = next((parent for parent in [out_dir, *out_dir.parents] if parent.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise UserError(f"-o {out_dir}: {blocker} is a file, not a folder: choose another -o.")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"-o {out_dir} cannot be created ({error.strerror}): choose a folder you can write to.") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UserError(f"-o {out_dir} is not writable: choose a folder you can write to.")
    return out_dir


def save_figure(figure, path: str | os.PathLike) -> Path:
    """Save `figure` atomically in the format its suffix names (pdf, svg or png); same figure, same bytes."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FIGURE_FORMATS:
        raise UserError(f"Cannot save a figure as {fmt!r}: use one of {', '.join(FIGURE_FORMATS)}.")
    with figure_style():
        try:
            write_atomic(path, lambda temp: figure.savefig(temp, format=fmt, dpi=PNG_DPI, metadata=_METADATA[fmt]))
        except OSError as error:
            raise UserError(f"Cannot write {path} ({error.strerror}): choose a folder you can write to with -o.") from None
    return path


def parse_formats(text: str) -> tuple[str, ...]:
    """`pdf,png` -> ('pdf', 'png'), refusing unknown formats."""
    formats = tuple(dict.fromkeys(part.strip().lower().lstrip(".") for part in str(text).split(",") if part.strip()))
    unknown = [fmt for fmt in formats if fmt not in FIGURE_FORMATS]
    if unknown or not formats:
        raise UserError(f"--format {text!r}: write a comma-separated list of {', '.join(FIGURE_FORMATS)}.")
    return formats


BAND_ALPHA = 0.18
"""Opacity of a confidence band (its legend patch is drawn 1.5x as opaque, to read on white)."""


def draw_band(ax, x, line, scale: float, colour) -> bool:
    """Shade `line`'s 95% bootstrap interval (`ci_low`/`ci_high`, times `scale`) when every point has one."""
    band = line.dropna(subset=["ci_low", "ci_high"])
    if len(band) != len(line):
        return False
    ax.fill_between(x, scale * band["ci_low"].to_numpy(), scale * band["ci_high"].to_numpy(), color=colour,
                    alpha=BAND_ALPHA, linewidth=0)
    return True


def finish_figure(figure, handles: list, labels: list[str], any_band: bool) -> None:
    """Add the legend below the panels (with the confidence band's entry when a band was drawn)
    and thin tick labels that would collide."""
    from matplotlib.patches import Patch

    if any_band:
        handles = handles + [Patch(facecolor="#777777", alpha=BAND_ALPHA * 1.5, linewidth=0)]
        labels = labels + ["95% bootstrap CI"]
    figure_legend(figure, handles, labels)
    thin_overlapping_tick_labels(figure)
