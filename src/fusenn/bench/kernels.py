"""The kernel timer (``fusenn bench --what kernels``): the kernel contract, one call at a time.

Every kernel timed here is one record of :data:`KERNELS`: the shapes, dtypes and activations
it is timed at, the words of its benchmark group, and a *builder* that makes its call on one
backend from seeded data (and, for the dense forward, the unfused NumPy expression DESIGN.md's
target refers to). :data:`KERNEL_CASES` is every (kernel, shape, dtype, activation) of the
table; :func:`kernel_call` builds a case's call on one path, which :func:`run_kernels` and
``benchmarks/test_bench_kernels.py`` both time. Adding a kernel is adding a builder and a
record.

All runs happen in this process, inside :func:`fusenn._threads.thread_limits`, and every call
with a check is compared with NumPy after it is timed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional

import numpy as np

from .. import activations, backends
from .._threads import thread_limits
from ..errors import ArgumentError

__all__ = ["DENSE_SHAPES", "DENSE_ACTIVATION", "ROW_SHAPES", "PARAM_SIZES", "KERNEL_ACTIVATIONS",
           "ACTIVATION_SHAPE", "ROW_KERNELS", "OPTIMIZER_KERNELS", "UNFUSED", "KERNEL_PATHS",
           "KernelCase", "KernelCall", "Kernel", "KERNELS", "KERNEL_CASES", "unfused_dense",
           "kernel_call", "time_call", "run_kernels", "format_seconds", "format_kernel_table"]

#: (batch, n_in, n_out) of the dense kernels: small (XOR-like), medium (a hidden layer of the
#: medium MLP), large (DESIGN.md's fused-forward target).
DENSE_SHAPES = {"small": (4, 2, 8), "medium": (64, 784, 128), "large": (256, 784, 1024)}
#: The dense kernels' activation: the one of DESIGN.md's target and of :func:`unfused_dense`.
DENSE_ACTIVATION = "relu"
#: (rows, classes) of the row-wise kernels.
ROW_SHAPES = {"small": (10, 10), "medium": (256, 10), "large": (1024, 1000)}
#: Parameter counts of the optimiser updates: the xor, medium and large networks.
PARAM_SIZES = {"small": 42, "medium": 109_386, "large": 1_863_690}
#: The elementwise activations timed, and their input shape (float32).
KERNEL_ACTIVATIONS = ("relu", "sigmoid", "tanh", "gelu")
ACTIVATION_SHAPE = (256, 1024)
ROW_KERNELS = ("softmax", "logsumexp", "softmax_xent")
OPTIMIZER_KERNELS = ("sgd_momentum", "adam")
#: The straightforward unfused NumPy expression DESIGN.md's dense forward target refers to.
UNFUSED = "numpy-unfused"
#: Where a kernel case runs: the unfused expression (dense forward only), then each backend,
#: the NumPy reference first.
KERNEL_PATHS = (UNFUSED, "numpy") + tuple(n for n in backends.NAMES if n != "numpy")
#: Timings per case and path, the best kept (``fusenn bench --what kernels --repeat``).
REPEAT = 5


@dataclass(frozen=True)
class KernelCase:
    """One kernel of the contract at one shape and dtype: one group of rows to compare.

    ``kernel``: a key of :data:`KERNELS` (``dense_forward``, ``dense_backward``,
    ``activation``, one of :data:`ROW_KERNELS` or of :data:`OPTIMIZER_KERNELS`). ``size``: the
    name of ``shape`` (small, medium, large; ``"256x1024"`` for the activations).
    ``activation``: the activation's name (dense kernels: :data:`DENSE_ACTIVATION`).

    Parameters
    ----------
    kernel : str
        The kernel's key in :data:`KERNELS`.
    size : str
        The shape's name.
    shape : tuple of int
        The shape the kernel is timed at.
    dtype : str, default="float32"
        The dtype of its data.
    activation : str, optional
        The activation, for the dense and activation kernels.

    Examples
    --------
    >>> KernelCase("softmax", "small", (10, 10)).group
    'softmax small (10, 10) float32'
    """
    kernel: str
    size: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    activation: Optional[str] = None

    @property
    def group(self) -> str:
        """The benchmark group: kernel, activation, size, shape and dtype in words."""
        return KERNELS[self.kernel].describe(self)

    @property
    def paths(self) -> tuple[str, ...]:
        """The paths this case runs on (:data:`KERNEL_PATHS`, the unfused expression only for
        a kernel that has one: the dense forward)."""
        return KERNEL_PATHS if KERNELS[self.kernel].unfused is not None else KERNEL_PATHS[1:]


@dataclass(frozen=True)
class KernelCall:
    """One call of a kernel case on one path: ``func(*args)``. ``check(result)``, where not
    None, takes what the call returned and raises AssertionError if its outputs disagree with
    NumPy's.

    Parameters
    ----------
    func : callable
        The kernel (or the unfused expression).
    args : tuple
        Its arguments, seeded data and preallocated outputs.
    check : callable, optional
        Compares ``func(*args)``'s result with NumPy's.
    """
    func: Callable[..., Any]
    args: tuple[Any, ...]
    check: Optional[Callable[[Any], None]] = None


# --------------------------------------------------------------------------- seeded data
def unfused_dense(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The dense forward as one writes it in NumPy: ``np.maximum(x @ W + b, 0)`` (relu).

    Parameters
    ----------
    x : ndarray of shape (batch, n_in)
        The inputs.
    W : ndarray of shape (n_in, n_out)
        The weights.
    b : ndarray of shape (n_out,)
        The bias.

    Returns
    -------
    ndarray of shape (batch, n_out)
        ``relu(x @ W + b)``, a new array.

    Examples
    --------
    >>> unfused_dense(np.ones((1, 2)), np.eye(2), np.array([-2.0, 0.5])).tolist()
    [[0.0, 1.5]]
    """
    out: np.ndarray = np.maximum(x @ W + b, 0)
    return out


def _dense_data(case: KernelCase) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m, k, n = case.shape
    dtype = np.dtype(case.dtype)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, k)).astype(dtype)
    W = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(dtype)
    b = (rng.standard_normal(n) * 0.1).astype(dtype)
    return x, W, b


def _row_data(case: KernelCase) -> tuple[np.random.Generator, np.ndarray]:
    """The generator (for whatever a kernel draws next) and the (rows, classes) logits."""
    rng = np.random.default_rng(1)
    return rng, (rng.standard_normal(case.shape) * 3).astype(case.dtype)


def _optimizer_data(case: KernelCase
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Parameters, small gradients, and two zeroed state vectors."""
    rng = np.random.default_rng(2)
    p = rng.standard_normal(case.shape).astype(case.dtype)
    g = (rng.standard_normal(case.shape) * 1e-3).astype(case.dtype)
    return p, g, np.zeros_like(p), np.zeros_like(p)


# --------------------------------------------------------------------------- builders
# Each builder takes (case, backend module) and returns the KernelCall of the case there.

def _build_dense_forward(case: KernelCase, be: Any) -> KernelCall:
    x, W, b = _dense_data(case)
    act = activations.get(case.activation)
    z = np.empty((x.shape[0], W.shape[1]), dtype=x.dtype)
    a = np.empty_like(z)

    def check(_: Any) -> None:
        np.testing.assert_allclose(a, unfused_dense(x, W, b), rtol=1e-4, atol=1e-4)

    return KernelCall(be.dense_forward, (x, W, b, act.code, act.p0, act.p1, z, a), check)


def _build_unfused_dense(case: KernelCase) -> KernelCall:
    return KernelCall(unfused_dense, _dense_data(case))


def _build_dense_backward(case: KernelCase, be: Any) -> KernelCall:
    x, W, b = _dense_data(case)
    act = activations.get(case.activation)
    z = x @ W + b
    a = np.maximum(z, 0)
    dy = np.ones_like(z)
    dz, dW, db, dx = np.empty_like(z), np.empty_like(W), np.empty_like(b), np.empty_like(x)
    return KernelCall(be.dense_backward,
                      (x, W, z, a, dy, act.code, act.p0, act.p1, dz, dW, db, dx))


def _build_activation(case: KernelCase, be: Any) -> KernelCall:
    act = activations.get(case.activation)
    z = np.random.default_rng(0).standard_normal(case.shape).astype(case.dtype)
    return KernelCall(be.act_forward, (z, act.code, act.p0, act.p1, np.empty_like(z)))


def _build_softmax(case: KernelCase, be: Any) -> KernelCall:
    _, z = _row_data(case)
    return KernelCall(be.softmax, (z, np.empty_like(z)))


def _build_logsumexp(case: KernelCase, be: Any) -> KernelCall:
    _, z = _row_data(case)
    return KernelCall(be.logsumexp, (z, np.empty(case.shape[0], case.dtype)))


def _build_softmax_xent(case: KernelCase, be: Any) -> KernelCall:
    rng, z = _row_data(case)
    labels = rng.integers(0, case.shape[1], size=case.shape[0]).astype(np.int64)

    def check(loss: float) -> None:
        ref = backends.get("numpy").softmax_xent(z, labels, np.empty_like(z))
        np.testing.assert_allclose(loss, ref, rtol=1e-5)

    return KernelCall(be.softmax_xent, (z, labels, np.empty_like(z)), check)


def _build_sgd_momentum(case: KernelCase, be: Any) -> KernelCall:
    p, g, velocity, _ = _optimizer_data(case)
    return KernelCall(be.sgd_update, (p, g, velocity, 0.01, 0.9, False, 0.0))


def _build_adam(case: KernelCase, be: Any) -> KernelCall:
    p, g, m, v = _optimizer_data(case)
    return KernelCall(be.adam_update, (p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1))


# --------------------------------------------------------------------------- the table
def _describe_dense(case: KernelCase) -> str:
    return f"{case.kernel} {case.activation} {case.size} {case.shape} {case.dtype}"


def _describe_activation(case: KernelCase) -> str:
    return f"activation {case.activation} {case.size} {case.dtype}"


def _describe_rows(case: KernelCase) -> str:
    return f"{case.kernel} {case.size} {case.shape} {case.dtype}"


def _describe_optimizer(case: KernelCase) -> str:
    return f"{case.kernel} {case.size} P={case.shape[0]} {case.dtype}"


@dataclass(frozen=True)
class Kernel:
    """How one kernel of the contract is timed.

    ``build(case, backend)`` makes the :class:`KernelCall` of a case on a backend module;
    ``describe(case)`` gives the case's benchmark group in words; the cases are every
    activation x shape (``shapes``: size name -> shape) x dtype, in that order. ``unfused``,
    where not None, builds the call of the plain NumPy expression the kernel replaces
    (path :data:`UNFUSED`).

    Parameters
    ----------
    build : callable
        ``build(case, backend)`` -> :class:`KernelCall`.
    describe : callable
        ``describe(case)`` -> the benchmark group.
    shapes : dict of str to tuple
        Size name -> shape.
    dtypes : tuple of str, default=("float32",)
        The dtypes timed.
    activations : tuple, default=(None,)
        The activations timed (None: the kernel has none).
    unfused : callable, optional
        ``unfused(case)`` -> the :class:`KernelCall` of the unfused NumPy expression.
    """
    build: Callable[[KernelCase, Any], KernelCall]
    describe: Callable[[KernelCase], str]
    shapes: Mapping[str, tuple[int, ...]]
    dtypes: tuple[str, ...] = ("float32",)
    activations: tuple[Optional[str], ...] = (None,)
    unfused: Optional[Callable[[KernelCase], KernelCall]] = None


#: Every kernel timed, in the order of the table.
KERNELS = {
    "dense_forward": Kernel(_build_dense_forward, _describe_dense, DENSE_SHAPES,
                            ("float32", "float64"), (DENSE_ACTIVATION,),
                            unfused=_build_unfused_dense),
    "dense_backward": Kernel(_build_dense_backward, _describe_dense, DENSE_SHAPES,
                             ("float32", "float64"), (DENSE_ACTIVATION,)),
    "activation": Kernel(_build_activation, _describe_activation,
                         {"x".join(map(str, ACTIVATION_SHAPE)): ACTIVATION_SHAPE},
                         activations=KERNEL_ACTIVATIONS),
    "softmax": Kernel(_build_softmax, _describe_rows, ROW_SHAPES),
    "logsumexp": Kernel(_build_logsumexp, _describe_rows, ROW_SHAPES),
    "softmax_xent": Kernel(_build_softmax_xent, _describe_rows, ROW_SHAPES),
    "sgd_momentum": Kernel(_build_sgd_momentum, _describe_optimizer,
                           {size: (n,) for size, n in PARAM_SIZES.items()}),
    "adam": Kernel(_build_adam, _describe_optimizer,
                   {size: (n,) for size, n in PARAM_SIZES.items()}),
}

#: Every kernel case, timed by ``benchmarks/test_bench_kernels.py`` and ``fusenn bench --what
#: kernels``.
KERNEL_CASES = tuple(KernelCase(name, size, shape, dtype, act)
                     for name, kernel in KERNELS.items()
                     for act in kernel.activations
                     for size, shape in kernel.shapes.items()
                     for dtype in kernel.dtypes)


def kernel_call(case: KernelCase, path: str) -> KernelCall:
    """The call of one kernel case on one path, on seeded data made here.

    Parameters
    ----------
    case : KernelCase
        One of :data:`KERNEL_CASES` (or any case of a kernel in :data:`KERNELS`).
    path : str
        One of ``case.paths``: :data:`UNFUSED` (the dense forward only) or a backend name.

    Returns
    -------
    KernelCall
        ``call.func(*call.args)`` runs the kernel once; ``call.check``, where not None,
        compares what it returned (or wrote) with NumPy.

    Raises
    ------
    ValueError
        If ``case`` does not run on ``path``.
    BackendUnavailableError
        If ``path`` names a compiled backend that cannot run here.

    Examples
    --------
    >>> case = next(c for c in KERNEL_CASES if c.kernel == "softmax")
    >>> call = kernel_call(case, "numpy")
    >>> call.func(*call.args)  # writes the probabilities into its last argument
    >>> probabilities = call.args[-1]
    >>> probabilities.shape, bool(np.allclose(probabilities.sum(axis=1), 1))
    ((10, 10), True)
    """
    if path not in case.paths:
        raise ArgumentError(f"{case.group} does not run on {path!r}; choose from "
                         f"{', '.join(case.paths)}")
    kernel = KERNELS[case.kernel]
    if path == UNFUSED and kernel.unfused is not None:  # case.paths has it only then
        return kernel.unfused(case)
    return kernel.build(case, backends.get(path))


# --------------------------------------------------------------------------- timing
def time_call(func: Callable[..., Any], args: tuple[Any, ...], repeat: int = REPEAT,
              min_time: float = 0.01) -> tuple[float, Any]:
    """Best seconds per call of ``func(*args)``, and what its first call returned.

    The first call is a warm-up and is not timed. Each of ``repeat`` timings then runs a loop
    of calls lasting at least ``min_time`` seconds (the first timing finds its length), so that
    the clock's resolution does not matter for microsecond kernels.

    Parameters
    ----------
    func : callable
        The function timed.
    args : tuple
        Its arguments.
    repeat : int, default=REPEAT
        Timings (the best is kept).
    min_time : float, default=0.01
        The shortest loop of calls, in seconds.

    Returns
    -------
    seconds : float
        The best time of one call.
    result : object
        What the first call returned.

    Raises
    ------
    fusenn.errors.ArgumentError
        For ``repeat < 1``.

    Examples
    --------
    >>> seconds, result = time_call(sum, ((1, 2),), repeat=1, min_time=0.001)
    >>> result, seconds > 0
    (3, True)
    """
    if repeat < 1:
        raise ArgumentError(f"repeat must be >= 1, got {repeat}")
    result = func(*args)
    loops = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(loops):
            func(*args)
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            break
        loops *= 2
    best = elapsed / loops
    for _ in range(repeat - 1):
        t0 = time.perf_counter()
        for _ in range(loops):
            func(*args)
        best = min(best, (time.perf_counter() - t0) / loops)
    return best, result


def run_kernels(cases: Iterable[KernelCase] = KERNEL_CASES,
                include: Optional[Iterable[str]] = None, repeat: int = REPEAT,
                min_time: float = 0.01,
                print_fn: Optional[Callable[[str], Any]] = print) -> list[dict[str, Any]]:
    """Time every case on every available path, in this process; print and return the rows.

    Each call runs inside :func:`fusenn._threads.thread_limits`, on fusenn's thread count, and
    is checked against NumPy where its :class:`KernelCall` has a check. ``vs_numpy_ref`` is
    the NumPy backend's time divided by the path's (above 1: faster).

    Parameters
    ----------
    cases : iterable of KernelCase, default=KERNEL_CASES
        The cases timed.
    include : iterable of str, optional
        Only these paths of :data:`KERNEL_PATHS`.
    repeat : int, default=REPEAT
        Timings per case and path (the best is kept).
    min_time : float, default=0.01
        The shortest loop of calls, in seconds.
    print_fn : callable or None, default=print
        Receives the table (:func:`format_kernel_table`); None prints nothing.

    Returns
    -------
    list of dict
        One row per case and path: ``kernel`` (the group), ``path``, ``seconds``,
        ``vs_numpy_ref`` (None without a NumPy time).

    Raises
    ------
    RuntimeError
        When a path's result disagrees with NumPy's.

    Examples
    --------
    >>> case = KernelCase("softmax", "small", (10, 10))
    >>> rows = run_kernels([case], include=["numpy"], repeat=1, min_time=0.001,
    ...                    print_fn=None)
    >>> [(r["path"], r["vs_numpy_ref"]) for r in rows]
    [('numpy', 1.0)]
    """
    available = backends.available_backends()
    use = [p for p in KERNEL_PATHS if (p == UNFUSED or p in available)
           and (include is None or p in include)]
    rows = []
    for case in cases:
        times = {}
        for path in case.paths:
            if path not in use:
                continue
            call = kernel_call(case, path)  # loads the backend before the limits are set
            with thread_limits():
                seconds, result = time_call(call.func, call.args, repeat, min_time)
            if call.check is not None:
                try:
                    call.check(result)
                except AssertionError as exc:
                    raise RuntimeError(f"{case.group} on {path} disagrees with NumPy: "
                                       f"{exc}") from None
            times[path] = seconds
        ref = times.get("numpy")
        for path, seconds in times.items():
            rows.append({"kernel": case.group, "path": path, "seconds": seconds,
                         "vs_numpy_ref": ref / seconds if ref else None})
    if print_fn is not None:
        print_fn(format_kernel_table(rows))
    return rows


def format_seconds(seconds: float) -> str:
    """``1.5e-05`` -> ``"15 us"``: three significant figures in ns, us, ms or s.

    Parameters
    ----------
    seconds : float
        A duration.

    Returns
    -------
    str
        The duration in the largest unit that keeps it under 1000.

    Examples
    --------
    >>> format_seconds(1.5e-05), format_seconds(2.0)
    ('15 us', '2 s')
    """
    for unit, scale in (("ns", 1e-9), ("us", 1e-6), ("ms", 1e-3)):
        value = float(f"{seconds / scale:.3g}")
        if value < 1000:
            return f"{value:g} {unit}"
    return f"{seconds:.3g} s"


def format_kernel_table(rows: list[dict[str, Any]]) -> str:
    """The rows of :func:`run_kernels` as a text table.

    Parameters
    ----------
    rows : list of dict
        What :func:`run_kernels` returns.

    Returns
    -------
    str
        A header, a rule and one line per row: kernel, path, time per call, ratio to NumPy.
    """
    width = max([len("kernel")] + [len(r["kernel"]) for r in rows])
    head = f"{'kernel':<{width}} {'path':<14} {'time/call':>10} {'x numpy-ref':>12}"
    lines = [head, "-" * len(head)]
    for r in rows:
        ref = f"{r['vs_numpy_ref']:.2f}" if r["vs_numpy_ref"] else "-"
        lines.append(f"{r['kernel']:<{width}} {r['path']:<14} "
                     f"{format_seconds(r['seconds']):>10} {ref:>12}")
    return "\n".join(lines)
