"""Training benchmarks: fusenn's paths against PyTorch eager, scikit-learn and plain NumPy.

The four configurations of DESIGN.md, one epoch of mini-batch SGD (lr 0.1, no momentum) with
softmax cross-entropy on synthetic float32 data, measured in samples per second:

=======  ==================  ==========  =====
name     layers              hidden act  batch
=======  ==================  ==========  =====
xor      2-8-2               tanh        4
nielsen  784-30-10           sigmoid     10
medium   784-128-64-10       relu        64
large    784-1024-1024-10    relu        512
=======  ==================  ==========  =====

Each runner is built once (model, data, warm-up epoch, so compilation is not timed) and then
returns a function that trains one epoch. ``benchmarks/`` times these with pytest-benchmark;
``fusenn bench`` times them here and prints one table. Peers that are not installed are
skipped, and said to be.
"""
from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np

from . import backends
from ._threads import get_num_threads


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


# --------------------------------------------------------------------------- runners
def fusenn_runner(cfg, backend, X, y):
    """One epoch with fusenn on ``backend``; the function returns the path that ran."""
    import fusenn as fn
    from .layers import Dense

    sizes = cfg.sizes
    layers = [Dense(a, b, cfg.activation if i < len(sizes) - 2 else None)
              for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    model = fn.Sequential(layers, random_state=0)
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
    act = {"tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU}
    mods = []
    sizes = cfg.sizes
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            mods.append(act[cfg.activation]())
    model = torch.nn.Sequential(*mods)
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
    """``{label: (epoch function, note)}`` for every path available here."""
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


def peer_versions():
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "threads": get_num_threads()}
    for mod in ("torch", "sklearn", "numba", "scipy"):
        try:
            info[mod] = __import__(mod).__version__
        except Exception:
            info[mod] = None
    return info


def time_epochs(epoch, n_samples, repeat=3):
    """Best samples per second over ``repeat`` epochs, and the path that ran."""
    best = np.inf
    ran = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        ran = epoch()
        best = min(best, time.perf_counter() - t0)
    return n_samples / best, ran


def measure(config, label, repeat=3):
    """Build path ``label`` for ``config`` in this process, warm it up, time it."""
    cfg = CONFIGS[config]
    X, y = make_data(cfg)
    # No thread limits around the peers: each runs as its users run it, on the same thread
    # count (fusenn's fit sets its own; PyTorch gets torch.set_num_threads).
    epoch = runners(cfg, X, y, [label])[label]()
    return time_epochs(epoch, cfg.n_samples, repeat)


def _measure_in_child(config, label, repeat):
    """:func:`measure` in a fresh Python process: no thread pool of another path (PyTorch's
    OpenMP, a second BLAS) is alive to compete with this one."""
    code = ("import json, fusenn.bench as b\n"
            f"try:\n    r = b.measure({config!r}, {label!r}, {repeat})\n"
            "except ImportError as e:\n    r = (None, f'not installed ({e.name})')\n"
            "print('RESULT', json.dumps(r))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            rate, ran = json.loads(line[7:])
            return rate, ran
    raise RuntimeError(f"benchmark of {label} on {config} failed: {proc.stderr.strip()}")


def run(configs=("xor", "nielsen", "medium", "large"), repeat=3, include=None, rounds=2,
        print_fn=print):
    """Time every available path on ``configs``; print and return the table rows.

    Each path runs in its own process (``repeat`` epochs, the best kept), and the whole
    sequence is run ``rounds`` times, interleaved, keeping each path's best: drift in a shared
    machine's speed then falls on every path alike.
    """
    for name in configs:
        if name not in CONFIGS:
            raise ValueError(f"unknown configuration {name!r}; choose from "
                             f"{', '.join(CONFIGS)}")
    labels = [f"fusenn-{b}" for b in backends.available_backends()] + \
        ["plain-numpy", "torch", "sklearn"]
    if include is not None:
        labels = [l for l in labels if l in include]
    best = {}
    for _ in range(rounds):
        for name in configs:
            for label in labels:
                rate, ran = _measure_in_child(name, label, repeat)
                old = best.get((name, label))
                if old is None or (rate is not None and (old[0] is None or rate > old[0])):
                    best[(name, label)] = (rate, ran)
    rows = []
    for name in configs:
        ref = best.get((name, "fusenn-numpy"), (None,))[0]
        torch_rate = best.get((name, "torch"), (None,))[0]
        for label in labels:
            rate, ran = best[(name, label)]
            rows.append({"config": name, "path": label, "ran": ran, "samples_per_s": rate,
                         "vs_numpy_ref": rate / ref if rate and ref else None,
                         "vs_torch": rate / torch_rate if rate and torch_rate else None})
    if print_fn is not None:
        print_fn(format_table(rows))
    return rows


def format_table(rows):
    head = f"{'config':<8} {'path':<14} {'samples/s':>12} {'x numpy-ref':>12} {'x torch':>9}  ran"
    lines = [head, "-" * len(head)]
    for r in rows:
        rate = f"{r['samples_per_s']:,.0f}" if r["samples_per_s"] else "-"
        ref = f"{r['vs_numpy_ref']:.2f}" if r["vs_numpy_ref"] else "-"
        tor = f"{r['vs_torch']:.2f}" if r["vs_torch"] else "-"
        lines.append(f"{r['config']:<8} {r['path']:<14} {rate:>12} {ref:>12} {tor:>9}  "
                     f"{r['ran']}")
    return "\n".join(lines)
