"""Benchmarks: fusenn's paths against PyTorch eager, scikit-learn and plain NumPy.

Three measurements, defined here once and timed both by ``benchmarks/`` (pytest-benchmark) and
by ``fusenn bench`` (one table):

**Training** (``fusenn bench``): the four configurations of DESIGN.md, one epoch of mini-batch
SGD (lr 0.1, no momentum) with softmax cross-entropy on synthetic float32 data, measured in
samples per second:

=======  ==================  ==========  =====
name     layers              hidden act  batch
=======  ==================  ==========  =====
xor      2-8-2               tanh        4
nielsen  784-30-10           sigmoid     10
medium   784-128-64-10       relu        64
large    784-1024-1024-10    relu        512
=======  ==================  ==========  =====

**Prediction** (``fusenn bench --what predict``): the forward pass alone of the *medium*
network over :data:`PREDICT_ROWS` rows of float32, in rows per second: ``model.predict`` on
every fusenn backend against PyTorch under ``torch.no_grad()``, with the same weights.

**Kernels** (``fusenn bench --what kernels``): the kernel contract at the shapes of
:data:`KERNEL_CASES` on every backend, and the unfused NumPy expression for the dense forward,
in seconds per call.

Each training or prediction runner is built once (model, data, a warm-up call, so that
compilation is not timed) and then returns a function that runs once more and returns the path
that ran. Peers that are not installed are skipped, and said to be.
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from . import backends
from ._threads import get_num_threads, thread_limits


@dataclass(frozen=True)
class Config:
    name: str
    sizes: tuple
    activation: str
    batch_size: int
    n_samples: int


CONFIGS = {
    "xor": Config("xor", (2, 8, 2), "tanh", 4, 4000),
    "nielsen": Config("nielsen", (784, 30, 10), "sigmoid", 10, 6000),
    "medium": Config("medium", (784, 128, 64, 10), "relu", 64, 12800),
    "large": Config("large", (784, 1024, 1024, 10), "relu", 512, 4096),
}
LR = 0.1


def make_data(cfg, seed=0):
    """Synthetic float32 inputs and int64 labels for ``cfg`` (XOR: the noisy XOR pattern)."""
    rng = np.random.default_rng(seed)
    n, d, k = cfg.n_samples, cfg.sizes[0], cfg.sizes[-1]
    if cfg.name == "xor":
        base = rng.integers(0, 2, size=(n, 2))
        X = (base + rng.normal(0, 0.1, size=(n, 2))).astype(np.float32)
        y = (base[:, 0] ^ base[:, 1]).astype(np.int64)
        return X, y
    X = rng.random((n, d), dtype=np.float32)
    y = rng.integers(0, k, size=n).astype(np.int64)
    return X, y


# --------------------------------------------------------------------------- networks
def fusenn_mlp(cfg):
    """The network of ``cfg`` in fusenn: Dense layers, ``cfg.activation`` on the hidden ones,
    logits out (a multiclass classifier), parameters drawn from seed 0."""
    import fusenn as fn
    from .layers import Dense

    sizes = cfg.sizes
    layers = [Dense(a, b, cfg.activation if i < len(sizes) - 2 else None)
              for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    return fn.Sequential(layers, random_state=0, task="multiclass")


def torch_mlp(cfg, weights=None):
    """The same network in PyTorch: ``torch.nn.Sequential`` of Linear and activation modules.

    ``weights``, in fusenn's ``get_weights`` order ``[W0, b0, W1, b1, ...]`` (W of shape
    (n_in, n_out)), replace PyTorch's initial parameters when given.
    """
    import torch

    act = {"tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU}
    mods = []
    sizes = cfg.sizes
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            mods.append(act[cfg.activation]())
    model = torch.nn.Sequential(*mods)
    if weights is not None:
        linears = [m for m in mods if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for linear, W, b in zip(linears, weights[0::2], weights[1::2]):
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                linear.bias.copy_(torch.from_numpy(b))
    return model


# --------------------------------------------------------------------------- training runners
def fusenn_runner(cfg, backend, X, y):
    """One epoch with fusenn on ``backend``; the function returns the path that ran."""
    import fusenn as fn

    model = fusenn_mlp(cfg)
    trainer = fn.Trainer(model, optimizer=fn.optim.SGD(lr=LR), batch_size=cfg.batch_size,
                         random_state=0, metrics=[])

    def epoch():
        with fn.use_backend(backend):
            trainer.fit(X, y, epochs=1)
        return trainer.last_path

    epoch()  # warm-up: Numba compiles (or loads its cache) here
    return epoch


def numpy_mlp_runner(cfg, X, y):
    """A plain, straightforward vectorised NumPy MLP: what one writes by hand."""
    rng = np.random.default_rng(0)
    sizes = cfg.sizes
    Ws = [(rng.normal(0, np.sqrt(2.0 / a), size=(a, b))).astype(np.float32)
          for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [np.zeros(b, dtype=np.float32) for b in sizes[1:]]
    act = {
        "tanh": (np.tanh, lambda a: 1 - a * a),
        "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda a: a * (1 - a)),
        "relu": (lambda z: np.maximum(z, 0), lambda a: (a > 0).astype(np.float32)),
    }[cfg.activation]
    n, bsz = X.shape[0], cfg.batch_size

    def epoch():
        perm = rng.permutation(n)
        for i in range(0, n, bsz):
            idx = perm[i:i + bsz]
            xb, yb = X[idx], y[idx]
            acts = [xb]
            for l, (W, b) in enumerate(zip(Ws, bs)):
                z = acts[-1] @ W + b
                acts.append(act[0](z) if l < len(Ws) - 1 else z)
            z = acts[-1]
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(idx)), yb] -= 1
            delta = p / len(idx)
            for l in range(len(Ws) - 1, -1, -1):
                gW = acts[l].T @ delta
                gb = delta.sum(axis=0)
                if l > 0:
                    delta = (delta @ Ws[l].T) * act[1](acts[l])
                Ws[l] -= LR * gW
                bs[l] -= LR * gb
        return "plain-numpy"

    epoch()
    return epoch


def torch_runner(cfg, X, y):
    """PyTorch eager on the CPU: same layers, SGD, CrossEntropyLoss, same threads."""
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(get_num_threads())
    model = torch_mlp(cfg)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    n, bsz = X.shape[0], cfg.batch_size

    def epoch():
        perm = torch.randperm(n)
        for i in range(0, n, bsz):
            idx = perm[i:i + bsz]
            opt.zero_grad()
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        return "torch"

    epoch()
    return epoch


def sklearn_runner(cfg, X, y):
    """scikit-learn's MLPClassifier, solver sgd, same batch, one pass per partial_fit."""
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=cfg.sizes[1:-1],
                        activation={"sigmoid": "logistic"}.get(cfg.activation, cfg.activation),
                        solver="sgd", batch_size=cfg.batch_size, learning_rate_init=LR,
                        momentum=0.0, alpha=0.0, random_state=0)
    classes = np.arange(cfg.sizes[-1])

    def epoch():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.partial_fit(X, y, classes=classes)
        return "sklearn"

    epoch()
    return epoch


def runners(cfg, X, y, include=None):
    """``{label: builder}`` for every training path; ``builder()`` returns the epoch function."""
    # Nothing is probed or loaded here for the peers: loading a compiled backend starts its
    # OpenMP runtime with passive waiting, which PyTorch (sharing libgomp) would inherit.
    out = {}
    for name in backends.NAMES:
        out[f"fusenn-{name}"] = lambda name=name: fusenn_runner(cfg, name, X, y)
    out["plain-numpy"] = lambda: numpy_mlp_runner(cfg, X, y)
    out["torch"] = lambda: torch_runner(cfg, X, y)
    out["sklearn"] = lambda: sklearn_runner(cfg, X, y)
    if include is not None:
        out = {k: v for k, v in out.items() if k in include}
    return out


# --------------------------------------------------------------------------- prediction runners
#: The prediction benchmark: the forward pass of this configuration's network over this many
#: rows of float32 (313 MB of inputs for the 784 features of the medium network).
PREDICT_CONFIG = "medium"
PREDICT_ROWS = 100_000


def make_predict_data(cfg, rows=PREDICT_ROWS, seed=0):
    """``rows`` synthetic float32 inputs (rows, n_in) for ``cfg``, drawn like :func:`make_data`'s
    (for all but xor, the first rows of a larger draw are those of a smaller one)."""
    return make_data(replace(cfg, n_samples=rows), seed)[0]


def fusenn_predict_runner(cfg, backend, X):
    """``model.predict(X)`` (class labels, all rows in one call) with fusenn on ``backend``;
    the function returns the path that ran, ``"predict:<backend>"``."""
    import fusenn as fn

    model = fusenn_mlp(cfg)

    def predict():
        with fn.use_backend(backend):  # predict runs on fusenn's thread count, as fit does
            model.predict(X)
            return f"predict:{backends.resolve()}"

    predict()  # warm-up: Numba compiles (or loads its cache) here
    return predict


def torch_predict_runner(cfg, X):
    """PyTorch's forward pass under ``torch.no_grad()`` and ``argmax`` to class labels, like
    ``model.predict``: the same network with the weights of :func:`fusenn_mlp`, on fusenn's
    thread count."""
    import torch

    torch.set_num_threads(get_num_threads())
    module = torch_mlp(cfg, fusenn_mlp(cfg).get_weights()).eval()
    Xt = torch.from_numpy(X)

    def predict():
        with torch.no_grad():
            module(Xt).argmax(dim=1)
        return "torch"

    predict()
    return predict


def predict_runners(cfg, X, include=None):
    """``{label: builder}`` for every prediction path; ``builder()`` returns the function that
    predicts all rows of ``X``."""
    out = {}
    for name in backends.NAMES:
        out[f"fusenn-{name}"] = lambda name=name: fusenn_predict_runner(cfg, name, X)
    out["torch"] = lambda: torch_predict_runner(cfg, X)
    if include is not None:
        out = {k: v for k, v in out.items() if k in include}
    return out


#: The peers of each process-per-path measurement, after fusenn's backends.
PEERS = {"train": ("plain-numpy", "torch", "sklearn"), "predict": ("torch",)}


def _distribution_version(name):
    """The installed version of distribution ``name`` (None if absent), read from its metadata
    so that nothing is imported: importing PyTorch would load its OpenMP runtime here."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def peer_versions():
    """Python, NumPy, the thread count and the versions of the peers (None: not installed)."""
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "threads": get_num_threads()}
    for key, dist in (("torch", "torch"), ("sklearn", "scikit-learn"), ("numba", "numba"),
                      ("scipy", "scipy")):
        info[key] = _distribution_version(dist)
    return info


def time_epochs(run, n_samples, repeat=3):
    """Best samples per second over ``repeat`` calls of ``run`` (each an epoch over, or a
    prediction of, ``n_samples`` samples), and the path that ran."""
    best = np.inf
    ran = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        ran = run()
        best = min(best, time.perf_counter() - t0)
    return n_samples / best, ran


def _check_what(what, allowed=tuple(PEERS)):
    if what not in allowed:
        raise ValueError(f"unknown measurement {what!r}; choose from {', '.join(allowed)}")


def measure(config, label, repeat=3, what="train", rows=PREDICT_ROWS):
    """Build path ``label`` for ``config`` in this process, warm it up, time it: one epoch of
    training (``what="train"``) or a prediction of ``rows`` rows (``what="predict"``).
    Returns the best samples per second and the path that ran."""
    _check_what(what)
    cfg = CONFIGS[config]
    # No thread limits around the peers: each runs as its users run it, on the same thread
    # count (fusenn's fit sets its own; PyTorch gets torch.set_num_threads).
    if what == "train":
        X, y = make_data(cfg)
        run_once = runners(cfg, X, y, [label])[label]()
        n = cfg.n_samples
    else:
        X = make_predict_data(cfg, rows)
        run_once = predict_runners(cfg, X, [label])[label]()
        n = rows
    return time_epochs(run_once, n, repeat)


def _measure_in_child(config, label, repeat, what="train", rows=PREDICT_ROWS):
    """:func:`measure` in a fresh Python process: no thread pool of another path (PyTorch's
    OpenMP, a second BLAS) is alive to compete with this one."""
    code = ("import json, fusenn.bench as b\n"
            f"try:\n    r = b.measure({config!r}, {label!r}, {repeat}, what={what!r}, "
            f"rows={rows!r})\n"
            "except ImportError as e:\n    r = (None, f'not installed ({e.name})')\n"
            "print('RESULT', json.dumps(r))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            rate, ran = json.loads(line[7:])
            return rate, ran
    raise RuntimeError(f"{what} benchmark of {label} on {config} failed: "
                       f"{proc.stderr.strip()}")


def paths(what):
    """Every path label of a measurement, available here or not: ``what`` is ``"train"`` or
    ``"predict"`` (``fusenn-<backend>``, then the peers) or ``"kernels"``
    (:data:`KERNEL_PATHS`)."""
    if what == "kernels":
        return KERNEL_PATHS
    _check_what(what)
    return tuple(f"fusenn-{b}" for b in backends.NAMES) + PEERS[what]


def run(configs=("xor", "nielsen", "medium", "large"), repeat=3, include=None, rounds=2,
        print_fn=print, what="train", rows=PREDICT_ROWS):
    """Time every available path on ``configs``; print and return the table rows.

    ``what="train"`` times one epoch of training, ``what="predict"`` a prediction of ``rows``
    rows. Each path runs in its own process (``repeat`` calls, the best kept), and the whole
    sequence is run ``rounds`` times, interleaved, keeping each path's best: drift in a shared
    machine's speed then falls on every path alike.
    """
    _check_what(what)
    for name in configs:
        if name not in CONFIGS:
            raise ValueError(f"unknown configuration {name!r}; choose from "
                             f"{', '.join(CONFIGS)}")
    labels = [f"fusenn-{b}" for b in backends.available_backends()] + list(PEERS[what])
    if include is not None:
        labels = [l for l in labels if l in include]
    best = {}
    for _ in range(rounds):
        for name in configs:
            for label in labels:
                rate, ran = _measure_in_child(name, label, repeat, what, rows)
                old = best.get((name, label))
                if old is None or (rate is not None and (old[0] is None or rate > old[0])):
                    best[(name, label)] = (rate, ran)
    rows_out = []
    for name in configs:
        ref = best.get((name, "fusenn-numpy"), (None,))[0]
        torch_rate = best.get((name, "torch"), (None,))[0]
        for label in labels:
            rate, ran = best[(name, label)]
            rows_out.append({"config": name, "path": label, "ran": ran, "samples_per_s": rate,
                             "vs_numpy_ref": rate / ref if rate and ref else None,
                             "vs_torch": rate / torch_rate if rate and torch_rate else None})
    if print_fn is not None:
        print_fn(format_table(rows_out, unit="samples/s" if what == "train" else "rows/s"))
    return rows_out


def format_table(rows, unit="samples/s"):
    """The rows of :func:`run` as a text table; ``unit`` heads the rate column."""
    head = f"{'config':<8} {'path':<14} {unit:>12} {'x numpy-ref':>12} {'x torch':>9}  ran"
    lines = [head, "-" * len(head)]
    for r in rows:
        rate = f"{r['samples_per_s']:,.0f}" if r["samples_per_s"] else "-"
        ref = f"{r['vs_numpy_ref']:.2f}" if r["vs_numpy_ref"] else "-"
        tor = f"{r['vs_torch']:.2f}" if r["vs_torch"] else "-"
        lines.append(f"{r['config']:<8} {r['path']:<14} {rate:>12} {ref:>12} {tor:>9}  "
                     f"{r['ran']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- kernels
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
#: Where a kernel case runs: the unfused expression (dense forward only), then each backend.
KERNEL_PATHS = (UNFUSED, "numpy", "cython", "numba")


@dataclass(frozen=True)
class KernelCase:
    """One kernel of the contract at one shape and dtype: one group of rows to compare.

    ``kernel``: ``dense_forward``, ``dense_backward``, ``activation``, one of
    :data:`ROW_KERNELS` or of :data:`OPTIMIZER_KERNELS`. ``size``: the name of ``shape``
    (small, medium, large; ``"256x1024"`` for the activations). ``activation``: the
    activation's name (dense kernels: :data:`DENSE_ACTIVATION`).
    """
    kernel: str
    size: str
    shape: tuple
    dtype: str = "float32"
    activation: str = None

    @property
    def group(self):
        """The benchmark group: kernel, activation, size, shape and dtype in words."""
        if self.kernel in ("dense_forward", "dense_backward"):
            return f"{self.kernel} {self.activation} {self.size} {self.shape} {self.dtype}"
        if self.kernel == "activation":
            return f"activation {self.activation} {self.size} {self.dtype}"
        if self.kernel in OPTIMIZER_KERNELS:
            return f"{self.kernel} {self.size} P={self.shape[0]} {self.dtype}"
        return f"{self.kernel} {self.size} {self.shape} {self.dtype}"

    @property
    def paths(self):
        """The paths this case runs on (:data:`KERNEL_PATHS`, the unfused expression only for
        the dense forward)."""
        return KERNEL_PATHS if self.kernel == "dense_forward" else KERNEL_PATHS[1:]


def _kernel_cases():
    cases = []
    for kernel in ("dense_forward", "dense_backward"):
        for size, shape in DENSE_SHAPES.items():
            for dtype in ("float32", "float64"):
                cases.append(KernelCase(kernel, size, shape, dtype, DENSE_ACTIVATION))
    size = "x".join(map(str, ACTIVATION_SHAPE))
    for name in KERNEL_ACTIVATIONS:
        cases.append(KernelCase("activation", size, ACTIVATION_SHAPE, "float32", name))
    for kernel in ROW_KERNELS:
        for size, shape in ROW_SHAPES.items():
            cases.append(KernelCase(kernel, size, shape))
    for kernel in OPTIMIZER_KERNELS:
        for size, n in PARAM_SIZES.items():
            cases.append(KernelCase(kernel, size, (n,)))
    return tuple(cases)


#: Every kernel case, timed by ``benchmarks/test_bench_kernels.py`` and ``fusenn bench --what
#: kernels``.
KERNEL_CASES = _kernel_cases()


@dataclass(frozen=True)
class KernelCall:
    """One call of a kernel case on one path: ``func(*args)``. ``check(result)``, where not
    None, takes what the call returned and raises AssertionError if its outputs disagree with
    NumPy's."""
    func: Callable
    args: tuple
    check: Callable = None


def unfused_dense(x, W, b):
    """The dense forward as one writes it in NumPy: ``np.maximum(x @ W + b, 0)`` (relu)."""
    return np.maximum(x @ W + b, 0)


def _dense_data(shape, dtype):
    m, k, n = shape
    rng = np.random.default_rng(0)
    x = rng.standard_normal((m, k)).astype(dtype)
    W = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(dtype)
    b = (rng.standard_normal(n) * 0.1).astype(dtype)
    return x, W, b


def kernel_call(case, path):
    """The :class:`KernelCall` of ``case`` on ``path`` (one of ``case.paths``), on seeded data
    made here. A compiled backend that cannot run here raises BackendUnavailableError."""
    from . import activations

    if path not in case.paths:
        raise ValueError(f"{case.group} does not run on {path!r}; choose from "
                         f"{', '.join(case.paths)}")
    dtype = np.dtype(case.dtype)
    kernel = case.kernel
    if kernel in ("dense_forward", "dense_backward"):
        x, W, b = _dense_data(case.shape, dtype)
        if path == UNFUSED:
            return KernelCall(unfused_dense, (x, W, b))
        be = backends.get(path)
        act = activations.get(case.activation)
        if kernel == "dense_forward":
            z = np.empty((x.shape[0], W.shape[1]), dtype=dtype)
            a = np.empty_like(z)

            def check(_):
                np.testing.assert_allclose(a, unfused_dense(x, W, b), rtol=1e-4, atol=1e-4)

            return KernelCall(be.dense_forward, (x, W, b, act.code, act.p0, act.p1, z, a), check)
        z = x @ W + b
        a = np.maximum(z, 0)
        dy = np.ones_like(z)
        dz, dW, db, dx = np.empty_like(z), np.empty_like(W), np.empty_like(b), np.empty_like(x)
        return KernelCall(be.dense_backward,
                          (x, W, z, a, dy, act.code, act.p0, act.p1, dz, dW, db, dx))

    be = backends.get(path)
    if kernel == "activation":
        act = activations.get(case.activation)
        z = np.random.default_rng(0).standard_normal(case.shape).astype(dtype)
        return KernelCall(be.act_forward, (z, act.code, act.p0, act.p1, np.empty_like(z)))
    if kernel in ROW_KERNELS:
        rng = np.random.default_rng(1)
        z = (rng.standard_normal(case.shape) * 3).astype(dtype)
        if kernel == "softmax":
            return KernelCall(be.softmax, (z, np.empty_like(z)))
        if kernel == "logsumexp":
            return KernelCall(be.logsumexp, (z, np.empty(case.shape[0], dtype)))
        labels = rng.integers(0, case.shape[1], size=case.shape[0]).astype(np.int64)

        def check(loss):
            ref = backends.get("numpy").softmax_xent(z, labels, np.empty_like(z))
            np.testing.assert_allclose(loss, ref, rtol=1e-5)

        return KernelCall(be.softmax_xent, (z, labels, np.empty_like(z)), check)
    if kernel in OPTIMIZER_KERNELS:
        rng = np.random.default_rng(2)
        p = rng.standard_normal(case.shape).astype(dtype)
        g = (rng.standard_normal(case.shape) * 1e-3).astype(dtype)
        s0, s1 = np.zeros_like(p), np.zeros_like(p)
        if kernel == "adam":
            return KernelCall(be.adam_update, (p, g, s0, s1, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1))
        return KernelCall(be.sgd_update, (p, g, s0, 0.01, 0.9, False, 0.0))
    raise ValueError(f"unknown kernel {kernel!r}")  # pragma: no cover - KernelCase's kinds


def time_call(func, args, repeat=5, min_time=0.01):
    """Best seconds per call of ``func(*args)``, and what its first call returned.

    The first call is a warm-up and is not timed. Each of ``repeat`` timings then runs a loop
    of calls lasting at least ``min_time`` seconds (the first timing finds its length), so that
    the clock's resolution does not matter for microsecond kernels.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be >= 1, got {repeat}")
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


def run_kernels(cases=KERNEL_CASES, include=None, repeat=5, min_time=0.01, print_fn=print):
    """Time every case on every available path (``include``: only these of
    :data:`KERNEL_PATHS`), in this process; print and return the table rows.

    Each call runs inside :func:`fusenn._threads.thread_limits`, on fusenn's thread count, and
    is checked against NumPy where its :class:`KernelCall` has a check. ``vs_numpy_ref`` is
    the NumPy backend's time divided by the path's (above 1: faster).
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


def format_seconds(seconds):
    """``1.5e-05`` -> ``"15 us"``: three significant figures in ns, us, ms or s."""
    for unit, scale in (("ns", 1e-9), ("us", 1e-6), ("ms", 1e-3)):
        value = float(f"{seconds / scale:.3g}")
        if value < 1000:
            return f"{value:g} {unit}"
    return f"{seconds:.3g} s"


def format_kernel_table(rows):
    """The rows of :func:`run_kernels` as a text table."""
    width = max([len("kernel")] + [len(r["kernel"]) for r in rows])
    head = f"{'kernel':<{width}} {'path':<14} {'time/call':>10} {'x numpy-ref':>12}"
    lines = [head, "-" * len(head)]
    for r in rows:
        ref = f"{r['vs_numpy_ref']:.2f}" if r["vs_numpy_ref"] else "-"
        lines.append(f"{r['kernel']:<{width}} {r['path']:<14} "
                     f"{format_seconds(r['seconds']):>10} {ref:>12}")
    return "\n".join(lines)
