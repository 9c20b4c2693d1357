"""Pictures of what the notes teach: activations, training curves, gradients, decisions.

Every function draws one picture with matplotlib (the ``plot`` extra:
``pip install 'fusenn[plot]'``) and returns what it drew on - the ``Axes`` when it drew one
panel, the ``Figure`` when it drew several - so that the caller can add to it, save it or
show it. None of them calls ``show()``; all work with the non-interactive Agg backend.
Each takes an optional ``ax`` to draw into an existing figure (for the multi-panel ones, a
sequence of Axes, one per panel).

* :func:`activation` - an activation and its derivative, from the catalogue's own
  definitions, kinks and jumps drawn as gaps with open and filled points;
* :func:`history` - loss and metrics per epoch, training and validation, with the epoch whose
  weights early stopping restored;
* :func:`gradient_norms` and :func:`saturation` - vanishing and exploding gradients, saturated
  and dead units (the numbers come from :mod:`fusenn.diagnostics`);
* :func:`decision_boundary`, :func:`confusion_matrix`, :func:`weights_as_images`;
* :func:`report` (history and confusion matrix of a run, as ``fusenn train --plot`` draws) and
  :func:`save`.

>>> import matplotlib
>>> matplotlib.use("Agg")
>>> import fusenn as fn
>>> import fusenn.plot
>>> ax = fn.plot.activation("sigmoid")      # sigmoid and its derivative, at most 1/4
>>> [line.get_label() for line in ax.get_lines() if line.get_gid()]
['f(z)', "f'(z)"]
"""
from __future__ import annotations

import math
import os
import re
from typing import TYPE_CHECKING, Any, Sequence, Union

import numpy as np

from . import _archive
from ._typing import ArrayLike, PathLike
from .errors import ArgumentError, ArgumentTypeError, MissingDependencyError, ShapeError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .model import Sequential

try:
    import matplotlib
    import matplotlib.ticker
except ImportError as exc:  # the one place that says which extra to install
    raise MissingDependencyError(
        "fusenn.plot needs matplotlib, which is not installed; install it with "
        "pip install 'fusenn[plot]'") from exc

__all__ = ["activation", "history", "gradient_norms", "saturation", "decision_boundary",
           "confusion_matrix", "weights_as_images", "report", "save", "check_output_path"]

#: Colours of the two curves of an activation panel, and of the two kinds of saturation.
FORWARD_COLOR, DERIVATIVE_COLOR = "C0", "C3"
KIND_COLORS = {"tails": "C1", "dead": "C7"}
#: A jump of f or f' at a kink: its one-sided values differ by more than this.
JUMP_TOLERANCE = 1e-4
#: Log keys that are diagnostics, drawn by :func:`gradient_norms`, not by :func:`history`.
_DIAGNOSTIC_KEY = re.compile(r"^(grad_norm|dead)_\d+$")


def _pyplot() -> Any:
    import matplotlib.pyplot as plt  # lazily: selecting a backend is the caller's business

    return plt


def _check_axes(ax: Any, what: Any = "ax") -> Any:
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise ArgumentTypeError(f"{what} must be a matplotlib Axes, got {type(ax).__name__}")
    return ax


def _one_axes(ax: Any, figsize: Any) -> Any:
    """``ax`` checked, or the Axes of a new figure."""
    if ax is None:
        _, ax = _pyplot().subplots(figsize=figsize, layout="constrained")
        return ax
    return _check_axes(ax)


def _panels(ax: Any, n: Any, ncols: Any, panel_size: Any) -> Any:
    """``n`` Axes: new ones in a grid of ``ncols`` columns, or the first ``n`` of ``ax``."""
    if ax is None:
        ncols = max(1, min(ncols, n))
        nrows = math.ceil(n / ncols)
        fig, axes = _pyplot().subplots(nrows, ncols, squeeze=False, layout="constrained",
                                       figsize=(panel_size[0] * ncols, panel_size[1] * nrows))
        axes = list(axes.ravel())
        for extra in axes[n:]:
            extra.remove()
        return fig, axes[:n]
    from matplotlib.axes import Axes

    axes = [ax] if isinstance(ax, Axes) else list(np.ravel(np.asarray(ax, dtype=object)))
    if len(axes) < n:
        raise ArgumentError(f"this picture has {n} panels but ax gives {len(axes)} Axes")
    for i, a in enumerate(axes[:n]):
        _check_axes(a, f"ax[{i}]")
    return axes[0].figure, axes[:n]


# ------------------------------------------------------------------------------ activations
def _activation_names(names: Any) -> Any:
    from . import activations as _acts

    if isinstance(names, str):
        names = _acts.names() if names.strip().lower() == "all" else [names]
    else:
        names = list(names)
        if not names:
            raise ArgumentError("give at least one activation name (or 'all')")
    return [_acts.definition(n).name for n in names]  # unknown names raise, listing the valid


def _params_for(name: Any, params: Any, several: Any) -> Any:
    """The subset of ``params`` that activation ``name`` takes (all of them for one name)."""
    from . import activations as _acts

    if not several:
        return params
    declared = {key for key, _ in _acts.definition(name).params}
    return {k: v for k, v in params.items() if k in declared}


def _curve_values(act: Any, z: Any) -> Any:
    """``(f(z), f'(z))`` in float64; softmax is drawn as its first output on rows ``[z, 0]``."""
    if act.rowwise:
        rows = np.column_stack([z, np.zeros_like(z)])
        return act.forward(rows)[:, 0], act.derivative(rows)[:, 0]
    return act.forward(z), act.derivative(z)


def _jumps(act: Any, lo: Any, hi: Any) -> Any:
    """``({"forward": [points], "derivative": [points]}, h)``: where in (lo, hi) f and f'
    jump, and the offset ``h`` at which their one-sided limits are taken.

    The candidates are the catalogue's kink points and 0 (where step, heaviside and sign jump);
    a candidate counts where the values at ``c - h`` and ``c + h`` differ by more than
    :data:`JUMP_TOLERANCE`.
    """
    from . import activations as _acts

    h = 1e-7 * (hi - lo)
    candidates = sorted({float(c) for c in (*_acts.kink_points(act), 0.0) if lo < c < hi})
    found: dict[str, list[Any]] = {"forward": [], "derivative": []}
    if act.rowwise or not candidates:
        return found, h
    c = np.array(candidates)
    left, right = _curve_values(act, c - h), _curve_values(act, c + h)
    for key, l, r in zip(("forward", "derivative"), left, right):
        found[key] = [float(p) for p, a, b in zip(c, l, r) if abs(a - b) > JUMP_TOLERANCE]
    return found, h


def _draw_curve(ax: Any, act: Any, z: Any, values: Any, index: Any, jumps: Any, h: Any, color: Any,
                style: Any, label: Any, gid: Any) -> None:
    """One curve; at each jump a gap, open points at the one-sided limits, a filled point at
    the value itself."""
    x, y = z, values
    if jumps:
        # cut the curve at each jump: the grid holds c - h and c + h, and a NaN at c
        x = np.concatenate([z, jumps])
        y = np.concatenate([values, np.full(len(jumps), np.nan)])
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
    (line,) = ax.plot(x, y, style, color=color, label=label, lw=1.8)
    line.set_gid(gid)
    if jumps:
        c = np.array(jumps)
        at = _curve_values(act, c)[index]
        sides = [_curve_values(act, c + s)[index] for s in (-h, h)]
        # an open point for each one-sided limit that differs from the value taken
        opened = [(p + s, v) for s, side in zip((-h, h), sides) for p, v, a in zip(c, side, at)
                  if abs(v - a) > JUMP_TOLERANCE]
        opened_x, opened_y = [p for p, _ in opened], [v for _, v in opened]
        (closed,) = ax.plot(c, at, "o", color=color, ms=5, zorder=3)
        closed.set_gid(gid + "-value")
        (limits,) = ax.plot(opened_x, opened_y, "o", mfc="white", mec=color, ms=5, zorder=3)
        limits.set_gid(gid + "-limit")


def _draw_activation(ax: Any, act: Any, derivative: Any, lo: Any, hi: Any, n_points: Any) -> None:
    from . import activations as _acts

    found, h = _jumps(act, lo, hi)
    cuts = sorted(set(found["forward"]) | set(found["derivative"]))
    kinks = [float(k) for k in _acts.kink_points(act) if lo < k < hi]
    # the grid holds every kink exactly (a corner drawn sharp) and both sides of every jump;
    # each curve leaves out the points where it jumps itself (there it is cut)
    grid = np.unique(np.concatenate([np.linspace(lo, hi, n_points), kinks,
                                     [c + s for c in cuts for s in (-h, h)]]))
    curves = [("forward", 0, FORWARD_COLOR, "-", "f(z)")]
    if derivative:
        curves.append(("derivative", 1, DERIVATIVE_COLOR, "--", "f'(z)"))
    for gid, index, color, style, label in curves:
        jumps = np.array(found[gid])
        z = grid if not jumps.size else \
            grid[np.all(np.abs(grid[:, None] - jumps[None, :]) >= h / 2, axis=1)]
        values = _curve_values(act, z)[index]
        _draw_curve(ax, act, z, values, index, found[gid], h, color, style, label, gid)
    ax.axhline(0, color="0.75", lw=0.7, zorder=0)
    ax.axvline(0, color="0.75", lw=0.7, zorder=0)
    args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in act.params.items())
    title = f"{act.name}({args})" if args else act.name
    ax.set_title(title + (": softmax([z, 0])[0]" if act.rowwise else ""), fontsize=10)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("z")


def activation(names: Any, derivative: bool = True, x: Any = (-6, 6), ax: Any = None,
               n_points: int = 601, **params: Any) -> Union[Axes, Figure]:
    """Draw activation functions and their derivatives, as the catalogue defines them.

    The values are the catalogue's own: ``fusenn.activations.get(name, **params)``'s
    ``forward`` and ``derivative`` at the plotted points. Where the function or its derivative
    jumps (relu' at 0, step at 0, hard_shrink at +-lambd) the curve is cut, with open points
    at the one-sided limits and a filled point at the value the catalogue gives there (so
    relu'(0) = 0 shows as the filled point), never a vertical line. Softmax, a function of a
    whole row, is drawn as its first output on rows ``[z, 0]``.

    Parameters
    ----------
    names : str or sequence of str
        An activation name or alias, a list of them, or ``"all"`` for the whole catalogue
        (:func:`fusenn.activations.names`).
    derivative : bool, default True
        Also draw the derivative (dashed).
    x : (float, float), default (-6, 6)
        The range of ``z``.
    ax : matplotlib Axes or sequence of Axes, optional
        Where to draw: one Axes per activation. By default a new figure, with a grid of panels
        for several activations.
    n_points : int, default 601
        Points on the grid (kinks and both sides of each jump are added).
    **params
        Activation parameters (``alpha=0.1``). With several names each activation takes the
        parameters it declares; a parameter that none declares is an error.

    Returns
    -------
    matplotlib.axes.Axes or matplotlib.figure.Figure
        The Axes for one activation, the Figure for several. In each panel the line with gid
        ``"forward"`` is ``f(z)``, the line with gid ``"derivative"`` is ``f'(z)``.

    Raises
    ------
    ValueError
        An unknown name or parameter, or a bad range.

    Examples
    --------
    >>> import fusenn as fn, fusenn.plot
    >>> fig = fn.plot.activation(["relu", "leaky_relu", "elu"], alpha=0.2)
    >>> [a.get_title() for a in fig.axes]
    ['relu', 'leaky_relu(alpha=0.2)', 'elu(alpha=0.2)']
    >>> fig = fn.plot.activation("all")       # the whole catalogue, one figure
    """
    from . import activations as _acts

    chosen = _activation_names(names)
    several = not isinstance(names, str) or len(chosen) > 1
    if several and params:
        declared = {key for n in chosen for key, _ in _acts.definition(n).params}
        unknown = sorted(set(params) - declared)
        if unknown:
            raise ArgumentError(f"no chosen activation takes the parameter(s) "
                                f"{', '.join(unknown)}")
    try:
        lo, hi = (float(v) for v in x)
    except (TypeError, ValueError):
        raise ArgumentError(f"x must be a pair (low, high) of numbers, got {x!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ArgumentError(f"x must be a finite range with low < high, got {x!r}")
    if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)) \
            or n_points < 2:
        raise ArgumentError(f"n_points must be an integer >= 2, got {n_points!r}")
    acts = [_acts.get(n, **_params_for(n, params, several)) for n in chosen]

    if not several:
        ax = _one_axes(ax, (5, 3.5))
        _draw_activation(ax, acts[0], derivative, lo, hi, n_points)
        ax.legend(fontsize=8, loc="best")
        one: Axes = ax
        return one
    fig, axes = _panels(ax, len(acts), min(6, math.ceil(math.sqrt(len(acts)))), (3.2, 2.6))
    for a, act in zip(axes, acts):
        _draw_activation(a, act, derivative, lo, hi, n_points)
    axes[0].legend(fontsize=8, loc="best")
    grid: Figure = fig
    return grid


# ------------------------------------------------------------------------------ training
def _history_dict(history: Any) -> Any:
    """``(logs, epochs, owner)`` from a History or a ``{key: [values]}`` mapping."""
    if hasattr(history, "history") and isinstance(history.history, dict):
        logs = history.history
        n = max((len(v) for v in logs.values()), default=0)
        epochs = list(getattr(history, "epoch", [])) or list(range(n))
        return logs, epochs, history
    if isinstance(history, dict):
        n = max((len(v) for v in history.values()), default=0)
        return history, list(range(n)), None
    raise ArgumentTypeError(f"history must be a fusenn History (what Trainer.fit returns) or a "
                            f"dict of lists, got {type(history).__name__}")


def _restored_epoch(owner: Any) -> Any:
    """The epoch whose weights EarlyStopping restored at the end of the run, or None."""
    from .callbacks import EarlyStopping

    trainer = getattr(owner, "trainer", None)
    for cb in getattr(trainer, "callbacks", ()):
        if isinstance(cb, EarlyStopping) and cb.restore_best_weights \
                and getattr(cb, "best_epoch", None) is not None:
            return cb.best_epoch
    return None


def _metric_groups(logs: Any, keys: Any) -> Any:
    """``[(name, [keys drawn in its panel])]``: each metric with its ``val_`` twin."""
    if keys is None:
        keys = [k for k in logs if not _DIAGNOSTIC_KEY.match(k)]
    else:
        keys = [keys] if isinstance(keys, str) else list(keys)
        missing = [k for k in keys if k not in logs]
        if missing:
            raise KeyError(f"not in the history: {', '.join(missing)}; it holds "
                           f"{', '.join(logs) or 'nothing'}")
    groups: dict[Any, Any] = {}
    for k in keys:
        base = k[4:] if k.startswith("val_") else k
        groups.setdefault(base, []).append(k)
    order = sorted(groups, key=lambda g: (g != "loss", list(logs).index(groups[g][0])))
    return [(g, sorted(groups[g], key=lambda k: k.startswith("val_"))) for g in order]


def history(history: Any, ax: Any = None, keys: Sequence[str] | None = None,
            best_epoch: int | None = None) -> Any:
    """Draw loss and metrics per epoch, training and validation, one panel per metric.

    Each metric's panel holds its training curve (solid) and its ``val_`` twin (dashed), the
    values exactly as the History recorded them, at epochs 1, 2, ... When early stopping
    restored the weights of its best epoch, that epoch is marked in every panel (a dotted
    vertical line and a point on each curve).

    Parameters
    ----------
    history : fusenn.History or dict of str to list of float
        What :meth:`fusenn.Trainer.fit` returns, or its ``.history`` dict.
    ax : matplotlib Axes or sequence of Axes, optional
        One Axes per metric panel; by default a new figure.
    keys : str or list of str, optional
        The logged values to draw; by default every one except the diagnostics
        (``grad_norm_*``, ``dead_*``, drawn by :func:`gradient_norms`).
    best_epoch : int, optional
        The epoch (0-based, as the callbacks count) to mark as restored. By default the
        ``best_epoch`` of an :class:`fusenn.callbacks.EarlyStopping` with
        ``restore_best_weights`` among the run's callbacks, if any.

    Returns
    -------
    matplotlib.axes.Axes or matplotlib.figure.Figure
        The Axes when there is one metric, the Figure when there are several. Each curve's
        label is its log key.

    Raises
    ------
    TypeError
        ``history`` is neither a History nor a dict.
    KeyError
        A key in ``keys`` was not logged.
    ValueError
        Nothing was logged.

    Examples
    --------
    >>> import fusenn as fn, fusenn.plot
    >>> X, y = fn.datasets.xor()
    >>> model = fn.Sequential([fn.layers.Dense(2, 8, "tanh"), fn.layers.Dense(8, 2)],
    ...                       random_state=0)
    >>> h = fn.Trainer(model, batch_size=4).fit(X, y, epochs=20, validation_data=(X, y))
    >>> fig = fn.plot.history(h)
    >>> [a.get_title() for a in fig.axes]
    ['loss', 'accuracy']
    """
    logs, epochs, owner = _history_dict(history)
    groups = _metric_groups(logs, keys)
    if not groups or not any(len(logs[k]) for _, ks in groups for k in ks):
        raise ArgumentError("the history holds no logged values (was the model trained?)")
    if best_epoch is None:
        best_epoch = _restored_epoch(owner)
    if len(groups) == 1:
        axes = [_one_axes(ax, (5, 3.5))]
        result = axes[0]
    else:
        result, axes = _panels(ax, len(groups), len(groups), (4.5, 3.3))
    x_all = np.asarray(epochs, dtype=float) + 1
    for a, (name, ks) in zip(axes, groups):
        for k in ks:
            values = np.asarray(logs[k], dtype=float)
            x = x_all[:len(values)]
            style = "--" if k.startswith("val_") else "-"
            color = "C1" if k.startswith("val_") else "C0"
            label = ("validation" if k.startswith("val_") else "training") + f" ({k})"
            (line,) = a.plot(x, values, style, color=color, label=label, lw=1.6)
            line.set_gid(k)
            if best_epoch is not None and best_epoch in epochs \
                    and epochs.index(best_epoch) < len(values):
                i = epochs.index(best_epoch)
                a.plot([x[i]], [values[i]], "o", color=color, ms=6, zorder=3)
        if best_epoch is not None:
            a.axvline(best_epoch + 1, color="k", ls=":", lw=1,
                      label=f"restored: epoch {best_epoch + 1}")
        a.set_title(name, fontsize=10)
        a.set_xlabel("epoch")
        a.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        if name == "loss":
            a.set_ylabel("loss")
        a.legend(fontsize=8, loc="best")
    return result


_plot_history = history  # for report(), whose argument of that name hides the function


def _gradient_records(monitor: Any) -> Any:
    """``(epochs, norms (epochs x layers), names)`` from a GradientMonitor or a History."""
    if hasattr(monitor, "grad_norms") and hasattr(monitor, "epochs"):
        if not monitor.grad_norms:
            raise ArgumentError("the GradientMonitor recorded no epochs; pass it to the Trainer's "
                                "callbacks and call fit")
        names = list(getattr(monitor, "layer_names", [])) or \
            [f"layer {l}" for l in range(len(monitor.grad_norms[0]))]
        return np.asarray(monitor.epochs), np.asarray(monitor.grad_norms, dtype=float), names
    logs, epochs, _ = _history_dict(monitor)
    keys = sorted((k for k in logs if k.startswith("grad_norm_")),
                  key=lambda k: int(k.rsplit("_", 1)[1]))
    if not keys:
        raise ArgumentError("no gradient norms recorded: train with a "
                            "fusenn.diagnostics.GradientMonitor among the callbacks")
    norms = np.column_stack([np.asarray(logs[k], dtype=float) for k in keys])
    return np.asarray(epochs[:len(norms)]), norms, [f"layer {k[10:]}" for k in keys]


def gradient_norms(monitor: Any, ax: Axes | None = None) -> Axes:
    """Draw each layer's gradient norm per epoch on a log axis.

    The notes' vanishing gradients show as lines for the first layers far below those of the
    last (a deep sigmoid network); exploding gradients as lines far above.

    Parameters
    ----------
    monitor : fusenn.diagnostics.GradientMonitor or fusenn.History
        A monitor that was among a Trainer's callbacks, or the History of that run (its
        ``grad_norm_<l>`` logs).
    ax : matplotlib Axes, optional
        Where to draw; by default a new figure.

    Returns
    -------
    matplotlib.axes.Axes
        One line per layer with parameters, first layer first, colours from the input side
        (dark) to the output side (light); the y axis is logarithmic.

    Raises
    ------
    ValueError
        Nothing was recorded.

    Examples
    --------
    >>> import fusenn as fn, fusenn.plot
    >>> X, y = fn.datasets.xor()
    >>> model = fn.Sequential([fn.layers.Dense(2, 4, "sigmoid"), fn.layers.Dense(4, 4,
    ...     "sigmoid"), fn.layers.Dense(4, 2)], random_state=0)
    >>> monitor = fn.diagnostics.GradientMonitor(X, y)
    >>> _ = fn.Trainer(model, callbacks=[monitor]).fit(X, y, epochs=5)
    >>> ax = fn.plot.gradient_norms(monitor)
    >>> ax.get_yscale(), len(ax.get_lines())
    ('log', 3)
    """
    epochs, norms, names = _gradient_records(monitor)
    ax = _one_axes(ax, (5.5, 3.8))
    cmap = matplotlib.colormaps["viridis"]
    n = norms.shape[1]
    x = epochs + 1
    for l in range(n):
        (line,) = ax.plot(x, norms[:, l], "o-" if len(x) < 30 else "-", ms=3,
                          color=cmap(0.9 * l / max(1, n - 1)), label=names[l])
        line.set_gid(f"grad_norm_{l}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("||dL/dW|| per layer")
    ax.set_title("gradient norm per layer", fontsize=10)
    if n > 4:  # many layers: the legend beside the axes, where it hides no line
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        ax.legend(fontsize=8, loc="best")
    return ax


def saturation(model: Sequential, X: ArrayLike, ax: Axes | None = None,
               tail: float = 0.05) -> Axes:
    """Draw, per layer, the share of units that no longer pass gradient on ``X``.

    One bar per layer from :func:`fusenn.diagnostics.saturation`: for sigmoid and tanh layers
    the share of outputs in the flat tails, for ReLU-like layers the share of units that never
    fire.

    Parameters
    ----------
    model : fusenn.Sequential
        The network.
    X : array_like of shape (n_samples, n_features)
        Inputs to measure on.
    ax : matplotlib Axes, optional
        Where to draw; by default a new figure.
    tail : float, default 0.05
        Width of each flat tail as a fraction of the output range (see
        :func:`fusenn.diagnostics.saturation`).

    Returns
    -------
    matplotlib.axes.Axes
        The bars' heights are the shares, in layer order.

    Raises
    ------
    ValueError
        No layer has a sigmoid, tanh or ReLU-like activation, or ``tail`` is out of range.
    ShapeError
        ``X`` does not fit the model.

    Examples
    --------
    >>> import fusenn as fn, fusenn.plot
    >>> X, _ = fn.datasets.load_digits()
    >>> model = fn.Sequential([fn.layers.Dense(64, 32, "sigmoid"),
    ...                        fn.layers.Dense(32, 32, "relu"), fn.layers.Dense(32, 10)])
    >>> ax = fn.plot.saturation(model, X)
    >>> len(ax.patches)
    2
    """
    from . import diagnostics

    sat = diagnostics.saturation(model, X, tail=tail)
    if not sat:
        raise ArgumentError("no layer of this model has a sigmoid, tanh or ReLU-like activation")
    ax = _one_axes(ax, (5.5, 3.5))
    layers = list(sat)
    heights = [sat[i].fraction for i in layers]
    colors = [KIND_COLORS[sat[i].kind] for i in layers]
    bars = ax.bar(range(len(layers)), heights, color=colors)
    for bar, h in zip(bars, heights):
        ax.annotate(f"{h:.0%}", (bar.get_x() + bar.get_width() / 2, h), ha="center",
                    va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(range(len(layers)),
                  [f"layer {i}\n{sat[i].activation}" for i in layers], fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("share")
    ax.set_title("saturated (flat tails) and dead units", fontsize=10)
    from matplotlib.patches import Patch

    kinds = {sat[i].kind for i in layers}
    text = {"tails": f"outputs in the flat tails ({tail:g} of the range)",
            "dead": "units that never fire"}
    ax.legend(handles=[Patch(color=KIND_COLORS[k], label=text[k]) for k in sorted(kinds)],
              fontsize=8, loc="upper right")
    return ax


# ------------------------------------------------------------------------------ predictions
def decision_boundary(model: Any, X: ArrayLike, y: ArrayLike, ax: Axes | None = None,
                      resolution: int = 200, margin: float = 0.25) -> Axes:
    """Draw a classifier's predicted regions over a 2-D input plane, with the data on top.

    Every point of a ``resolution`` x ``resolution`` grid covering the data (plus ``margin``
    of its extent on each side) is classified with ``model.predict``; the regions are shown
    as an image (one colour per class), their borders as lines, and ``X`` as points coloured
    by their true class ``y``.

    Parameters
    ----------
    model : object with ``predict``
        A :class:`fusenn.Sequential`, :class:`fusenn.Perceptron`, or anything whose
        ``predict(X)`` returns one class label per row (a single output column is accepted).
    X : array_like of shape (n_samples, 2)
        The data's two input features.
    y : array_like of shape (n_samples,)
        Their classes.
    ax : matplotlib Axes, optional
        Where to draw; by default a new figure.
    resolution : int, default 200
        Grid points along each axis.
    margin : float, default 0.25
        Extra room around the data, as a fraction of its extent.

    Returns
    -------
    matplotlib.axes.Axes
        Its image (``ax.images[0]``) holds, for every grid point (row 0 at the bottom), the
        position of its predicted class among the sorted classes of ``y`` and the predictions
        (the label itself for labels 0, 1, ..., k-1); its scatter (``ax.collections``) the
        data.

    Raises
    ------
    ShapeError
        ``X`` is not 2-D with 2 columns, ``y`` does not have one label per row, or the model
        does not return one prediction per row.

    Examples
    --------
    >>> import fusenn as fn, fusenn.plot
    >>> X, y = fn.datasets.xor()
    >>> model = fn.Sequential([fn.layers.Dense(2, 8, "tanh"), fn.layers.Dense(8, 2)],
    ...                       random_state=0)
    >>> _ = fn.Trainer(model, optimizer=fn.optim.Adam(lr=0.05), batch_size=4).fit(
    ...     X, y, epochs=200)
    >>> ax = fn.plot.decision_boundary(model, X, y)
    >>> ax.images[0].get_array().shape
    (200, 200)
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ShapeError(f"decision_boundary needs X of shape (n_samples, 2), got "
                         f"{X.shape}")
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise ShapeError(f"y must hold one label per row of X ({X.shape[0]}), got shape "
                         f"{y.shape}")
    if not hasattr(model, "predict"):
        raise ArgumentTypeError(f"model must have a predict method, got {type(model).__name__}")
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) \
            or resolution < 2:
        raise ArgumentError(f"resolution must be an integer >= 2, got {resolution!r}")
    lo, hi = X.min(axis=0), X.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    lo, hi = lo - margin * span, hi + margin * span
    gx, gy = np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    xx, yy = np.meshgrid(gx, gy)
    pred = np.asarray(model.predict(np.column_stack([xx.ravel(), yy.ravel()])))
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if pred.shape != (xx.size,):
        raise ShapeError(f"model.predict returned shape {pred.shape} for {xx.size} rows; "
                         f"expected one label per row")
    classes = np.union1d(np.unique(pred), np.unique(y))
    index = np.searchsorted(classes, pred).reshape(xx.shape)
    k = len(classes)
    cmap = matplotlib.colormaps["tab10" if k <= 10 else "tab20"]
    colors = [cmap(i % cmap.N) for i in range(k)]
    from matplotlib.colors import BoundaryNorm, ListedColormap

    ax = _one_axes(ax, (4.5, 4))
    ax.imshow(index, origin="lower", extent=(lo[0], hi[0], lo[1], hi[1]),
              cmap=ListedColormap(colors), norm=BoundaryNorm(np.arange(k + 1) - 0.5, k),
              alpha=0.35, aspect="auto", interpolation="nearest")
    if len(np.unique(index)) > 1:
        ax.contour(xx, yy, index, levels=np.arange(k - 1) + 0.5, colors="k", linewidths=0.8)
    true_index = np.searchsorted(classes, y)
    ax.scatter(X[:, 0], X[:, 1], c=[colors[i] for i in true_index], edgecolors="k", s=40,
               zorder=3)
    from matplotlib.lines import Line2D

    ax.legend(handles=[Line2D([], [], ls="", marker="o", mfc=colors[i], mec="k",
                              label=f"class {c}") for i, c in enumerate(classes)],
              fontsize=8, loc="best")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    return ax


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, labels: ArrayLike | None = None,
                     normalize: str | None = None, ax: Axes | None = None,
                     cmap: Any = "Blues") -> Axes:
    """Draw the confusion matrix as an annotated heat map (rows: true, columns: predicted).

    The counts are :func:`fusenn.metrics.confusion_matrix`'s; each cell is written on the
    map, as an integer, or with two decimals when normalised.

    Parameters
    ----------
    y_true, y_pred : array_like of shape (n_samples,)
        True and predicted class labels.
    labels : array_like, optional
        The classes, in the order of the rows and columns; by default the sorted union of
        those present.
    normalize : {None, "true", "pred", "all"}, default None
        Divide each row (``"true"``: recall per class on the diagonal), each column
        (``"pred"``: precision), or the whole matrix by its sum; an empty row or column
        stays 0.
    ax : matplotlib Axes, optional
        Where to draw; by default a new figure.
    cmap : str, default "Blues"
        A matplotlib colormap name.

    Returns
    -------
    matplotlib.axes.Axes
        Its image holds the matrix; ``ax.texts`` the annotations, row by row.

    Raises
    ------
    ValueError
        A bad ``normalize``, a label missing from ``labels``, or arrays of different lengths.

    Examples
    --------
    >>> import fusenn as fn, fusenn.plot
    >>> ax = fn.plot.confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2])
    >>> [t.get_text() for t in ax.texts]
    ['1', '0', '0', '0', '1', '1', '0', '0', '1']
    """
    from . import metrics

    if normalize not in (None, "true", "pred", "all"):
        raise ArgumentError(f"normalize must be None, 'true', 'pred' or 'all', got {normalize!r}")
    cm = metrics.confusion_matrix(y_true, y_pred, labels)
    if labels is None:
        labels = np.union1d(np.asarray(y_true).ravel(), np.asarray(y_pred).ravel())
    labels = list(np.asarray(labels).tolist())
    values = cm.astype(float)
    if normalize is not None:
        total = {"true": cm.sum(axis=1, keepdims=True), "pred": cm.sum(axis=0, keepdims=True),
                 "all": np.array(cm.sum())}[normalize]
        values = np.divide(values, total, out=np.zeros_like(values), where=total > 0)
    k = len(labels)
    ax = _one_axes(ax, (1.6 + 0.45 * k, 1.2 + 0.45 * k) if k > 6 else (4.5, 4))
    image = ax.imshow(values, cmap=cmap, vmin=0, interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    top = values.max() if values.size else 0
    for i in range(k):
        for j in range(k):
            v = values[i, j]
            text = f"{v:.2f}" if normalize is not None else f"{int(cm[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=8 if k > 6 else 10,
                    color="white" if top and v > 0.5 * top else "black")
    ax.set_xticks(range(k), [str(v) for v in labels])
    ax.set_yticks(range(k), [str(v) for v in labels])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("confusion matrix" + (f" (normalised over {normalize})" if normalize else ""),
                 fontsize=10)
    return ax


def weights_as_images(layer: Any, shape: Sequence[int], ax: Axes | None = None,
                      ncols: int | None = None, per_unit: bool = True,
                      cmap: Any = "RdBu_r") -> Axes:
    """Draw each unit's incoming weights as an image: the features a first layer learnt.

    For a model on 8x8 digits, unit ``j``'s weights ``W[:, j]`` reshaped to ``(8, 8)`` show
    which pixels excite (red) or inhibit (blue) it. The units' images are tiled, row by row,
    into one picture with a one-pixel gap between them.

    Parameters
    ----------
    layer : fusenn.layers.Dense, fusenn.Sequential or array_like of shape (n_in, n_units)
        The layer (for a Sequential, its first layer with weights) or the weight matrix.
    shape : (int, int)
        The image shape; its product must be the layer's input width.
    ax : matplotlib Axes, optional
        Where to draw; by default a new figure.
    ncols : int, optional
        Images per row; by default about the square root of the number of units.
    per_unit : bool, default True
        Scale each unit's image by its own largest absolute weight (so faint units show);
        otherwise one scale for all.
    cmap : str, default "RdBu_r"
        A diverging matplotlib colormap (white at 0).

    Returns
    -------
    matplotlib.axes.Axes
        Its image is the tiling: unit ``j`` sits at tile row ``j // ncols``, column
        ``j % ncols``, each tile ``shape`` plus a gap of NaN.

    Raises
    ------
    ShapeError
        ``shape`` does not multiply to the input width, or the weights are not 2-D.
    TypeError
        ``layer`` holds no weight matrix.

    Examples
    --------
    >>> import fusenn as fn, fusenn.plot
    >>> model = fn.Sequential([fn.layers.Dense(64, 16, "relu"), fn.layers.Dense(16, 10)])
    >>> ax = fn.plot.weights_as_images(model, (8, 8))
    >>> ax.images[0].get_array().shape          # 4 x 4 tiles of 8 x 8 and their gaps
    (35, 35)
    """
    W = _weight_matrix(layer)
    try:
        h, w = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ShapeError(f"shape must be a pair (height, width), got {shape!r}") from None
    if h < 1 or w < 1 or h * w != W.shape[0]:
        raise ShapeError(f"shape {tuple(shape)} has {h * w} pixels but the layer has "
                         f"{W.shape[0]} inputs")
    n = W.shape[1]
    if ncols is None:
        ncols = math.ceil(math.sqrt(n))
    elif isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise ArgumentError(f"ncols must be a positive integer, got {ncols!r}")
    nrows = math.ceil(n / ncols)
    scale = np.abs(W).max(axis=0) if per_unit else np.full(n, np.abs(W).max())
    scale = np.where(scale > 0, scale, 1.0)
    mosaic = np.full((nrows * (h + 1) - 1, ncols * (w + 1) - 1), np.nan)
    for j in range(n):
        r, c = divmod(j, ncols)
        mosaic[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = \
            W[:, j].reshape(h, w) / scale[j]
    ax = _one_axes(ax, (min(12, 0.8 * ncols + 1), min(12, 0.8 * nrows + 0.6)))
    ax.imshow(mosaic, cmap=matplotlib.colormaps[cmap].with_extremes(bad="0.85"), vmin=-1,
              vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"incoming weights of {n} units"
                 + (" (each scaled to its largest |w|)" if per_unit else ""), fontsize=10)
    return ax


def _weight_matrix(layer: Any) -> Any:
    from .layers import Dense
    from .model import Sequential

    if isinstance(layer, Sequential):
        first = next((l for l in layer.layers if isinstance(l, Dense)), None)
        if first is None:
            raise ArgumentTypeError("this Sequential has no Dense layer")
        layer = first
    W = layer.W if isinstance(layer, Dense) else layer
    if not isinstance(W, np.ndarray) and not isinstance(W, (list, tuple)):
        raise ArgumentTypeError(f"layer must be a Dense layer, a Sequential or a weight matrix, "
                                f"got {type(layer).__name__}")
    W = np.asarray(W, dtype=float)
    if W.ndim != 2:
        raise ShapeError(f"weights must be a 2-D (n_in, n_units) matrix, got shape {W.shape}")
    return W


# ------------------------------------------------------------------------------ whole runs
def report(history: Any, y_true: ArrayLike, y_pred: ArrayLike,
           labels: ArrayLike | None = None) -> Figure:
    """One figure for a training run: its curves (:func:`history`) and the test set's
    confusion matrix (:func:`confusion_matrix`), side by side - what ``fusenn train --plot``
    writes.

    Parameters
    ----------
    history : fusenn.History or dict of str to list of float
        The run's History.
    y_true, y_pred : array_like of shape (n_samples,)
        True and predicted test labels.
    labels : array_like, optional
        Classes in matrix order; see :func:`confusion_matrix`.

    Returns
    -------
    matplotlib.figure.Figure
        Its first Axes are the history panels, its last the confusion matrix (then its
        colour bar).

    Examples
    --------
    >>> import fusenn as fn, fusenn.plot
    >>> fig = fn.plot.report({"loss": [0.9, 0.5], "accuracy": [0.6, 0.8]}, [0, 1], [0, 0])
    >>> len(fig.axes)                # loss, accuracy, confusion matrix and its colour bar
    4
    """
    logs, _, _ = _history_dict(history)
    n = len(_metric_groups(logs, None))
    fig, axes = _pyplot().subplots(1, n + 1, figsize=(4.3 * n + 4.8, 3.8),
                                   layout="constrained",
                                   gridspec_kw={"width_ratios": [1] * n + [1.1]})
    axes = list(np.ravel(axes))
    _plot_history(history, ax=axes[:n] if n > 1 else axes[0])
    confusion_matrix(y_true, y_pred, labels=labels, ax=axes[n])
    figure: Figure = fig
    return figure


def save(figure: Any, path: PathLike, dpi: float = 100) -> str:
    """Write a figure to ``path``, its format from the extension (``.png``, ``.svg``, ...).

    The write is atomic: a temporary file in the same directory is rendered and renamed over
    ``path``, so a failed render leaves an existing file as it was. A symbolic link is
    followed (its target is replaced); any other existing non-regular file (a FIFO, a device)
    is refused.

    Parameters
    ----------
    figure : matplotlib Figure or Axes
        What to save (for Axes, its figure).
    path : str or os.PathLike
        The file to write.
    dpi : float, default 100
        Resolution for raster formats.

    Returns
    -------
    str
        The path written.

    Raises
    ------
    ValueError
        The extension names no format matplotlib can write.
    FileNotFoundError, IsADirectoryError, FileExistsError
        The directory does not exist, ``path`` is a directory, or ``path`` is an existing
        special file.

    Examples
    --------
    >>> import os, tempfile, fusenn as fn, fusenn.plot
    >>> ax = fn.plot.activation("relu")
    >>> with tempfile.TemporaryDirectory() as d:
    ...     written = fn.plot.save(ax, os.path.join(d, "relu.png"))
    ...     os.path.getsize(written) > 0
    True
    """
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    fig = figure.figure if isinstance(figure, Axes) else figure
    if not isinstance(fig, Figure):
        raise ArgumentTypeError(f"figure must be a matplotlib Figure or Axes, got "
                                f"{type(figure).__name__}")
    path = check_output_path(path)
    ext = os.path.splitext(path)[1].lstrip(".").lower()
    _archive.write_atomic(path, lambda f: fig.savefig(f, format=ext, dpi=dpi))
    return path


def check_output_path(path: PathLike) -> str:
    """The real path a figure for ``path`` would be written to; raise if it cannot be.

    Checks what :func:`save` checks, before any drawing: a format matplotlib writes, an
    existing directory, and no directory or special file in the way.

    Parameters
    ----------
    path : str or os.PathLike
        The intended output file.

    Returns
    -------
    str
        The path with symbolic links resolved.

    Raises
    ------
    ValueError
        The extension names no format matplotlib can write.
    FileNotFoundError, IsADirectoryError, FileExistsError
        As for :func:`save`.

    Examples
    --------
    >>> import fusenn.plot
    >>> fusenn.plot.check_output_path("picture.webm")
    Traceback (most recent call last):
    ...
    fusenn.errors.ArgumentError: cannot write picture.webm: matplotlib writes ...
    """
    from matplotlib.backend_bases import FigureCanvasBase

    shown = os.fspath(path)
    formats = FigureCanvasBase.get_supported_filetypes()
    ext = os.path.splitext(shown)[1].lstrip(".").lower()
    if ext not in formats:
        raise ArgumentError(f"cannot write {shown}: matplotlib writes "
                            f"{', '.join('.' + f for f in sorted(formats))}, chosen by the "
                            f"file's extension")
    real = os.path.realpath(shown)
    if os.path.isdir(real):
        raise IsADirectoryError(f"cannot save to {shown}: it is a directory")
    if not os.path.isdir(os.path.dirname(real)):
        raise FileNotFoundError(f"cannot save to {shown}: directory "
                                f"{os.path.dirname(real)} does not exist")
    if os.path.exists(real) and not os.path.isfile(real):
        raise FileExistsError(f"cannot save to {shown}: it exists and is not a regular file "
                              f"(a FIFO or a device); give a file name")
    return real
