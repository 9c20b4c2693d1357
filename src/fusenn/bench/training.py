"""The training and prediction runner (``fusenn bench``, ``--what train`` and ``predict``).

**Training**: the four configurations of DESIGN.md, one epoch of mini-batch SGD (lr 0.1, no
momentum) with softmax cross-entropy on synthetic float32 data, measured in samples per
second:

=======  ==================  ==========  =====
name     layers              hidden act  batch
=======  ==================  ==========  =====
xor      2-8-2               tanh        4
nielsen  784-30-10           sigmoid     10
medium   784-128-64-10       relu        64
large    784-1024-1024-10    relu        512
=======  ==================  ==========  =====

**Prediction**: the forward pass alone of the *medium* network over :data:`PREDICT_ROWS` rows
of float32, in rows per second: ``model.predict`` on every fusenn backend against PyTorch under
``torch.no_grad()`` and ONNX Runtime running the network exported by :mod:`fusenn.onnx`, with
the same weights and threads.

A *path* is a label in the table: ``fusenn-<backend>`` for each fusenn backend, then each peer
of :data:`PEERS`, the registry of the libraries fusenn is compared with. A peer is a name, a
runner factory per measurement it takes part in, and the module it needs; whether that module
is installed is looked up once. Adding a peer is writing its factories and registering them
with :func:`register_peer`. The peers: a plain NumPy MLP, PyTorch eager, scikit-learn's
``MLPClassifier`` and JAX, as a jitted step per batch (``jax-step``) and as the whole epoch in
one jitted ``lax.scan`` (``jax-scan``, the strongest Python peer, which the training table
gives a ratio column beside fusenn's NumPy reference and PyTorch).

Each runner is built once (model, data, a warm-up call, so that compilation is not timed) and
then returns a function that runs once more and returns the path that ran. :func:`run` times
each path in a process of its own; peers that are not installed are skipped, and said to be.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import platform
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, replace
from typing import (Any, Callable, Dict, Iterable, List, Optional, Protocol, Sequence, Tuple,
                    cast)

import numpy as np

from .. import backends
from .._threads import get_num_threads
from ..errors import ArgumentError

# (paths is left to the package, whose paths() also knows the kernel timer's)
__all__ = ["Config", "CONFIGS", "LR", "PREDICT_CONFIG", "PREDICT_ROWS", "DEFAULT_CONFIGS",
           "check_configs", "make_data", "make_predict_data", "fusenn_mlp", "torch_mlp",
           "fusenn_runner", "fusenn_predict_runner", "numpy_mlp_runner", "torch_runner",
           "torch_predict_runner", "onnxruntime_predict_runner", "sklearn_runner",
           "jax_step_runner", "jax_scan_runner", "Measurement", "MEASUREMENTS", "REFERENCES",
           "Peer", "PEERS", "register_peer", "fusenn_path", "peers", "runners",
           "predict_runners", "peer_versions", "time_epochs", "measure", "run", "format_table"]


@dataclass(frozen=True)
class Config:
    """One configuration of the training benchmark.

    Parameters
    ----------
    name : str
        Its key in :data:`CONFIGS`.
    sizes : tuple of int
        The layer widths, input first (``(784, 128, 64, 10)``).
    activation : str
        The hidden layers' activation.
    batch_size : int
        Samples per mini-batch.
    n_samples : int
        Samples of one epoch.
    """
    name: str
    sizes: tuple[int, ...]
    activation: str
    batch_size: int
    n_samples: int


CONFIGS = {
    "xor": Config("xor", (2, 8, 2), "tanh", 4, 4000),
    "nielsen": Config("nielsen", (784, 30, 10), "sigmoid", 10, 6000),
    "medium": Config("medium", (784, 128, 64, 10), "relu", 64, 12800),
    "large": Config("large", (784, 1024, 1024, 10), "relu", 512, 4096),
}
#: The learning rate of every path's SGD.
LR = 0.1
#: The prediction benchmark: the forward pass of this configuration's network over this many
#: rows of float32 (313 MB of inputs for the 784 features of the medium network).
PREDICT_CONFIG = "medium"
PREDICT_ROWS = 100_000
#: The configurations each measurement runs by default.
DEFAULT_CONFIGS = {"train": tuple(CONFIGS), "predict": (PREDICT_CONFIG,)}
#: Timings per path in each round (the best is kept), and rounds over all paths.
REPEAT = 3
ROUNDS = 2


def check_configs(names: Iterable[str]) -> None:
    """Raise ValueError naming the first of ``names`` that is not a key of :data:`CONFIGS`.

    Parameters
    ----------
    names : iterable of str
        Configuration names.

    Raises
    ------
    fusenn.errors.ArgumentError
        A ``ValueError`` that names the unknown configuration and the valid ones.
    """
    for name in names:
        if name not in CONFIGS:
            raise ArgumentError(f"unknown configuration {name!r}; choose from "
                             f"{', '.join(CONFIGS)}")


def make_data(cfg: Config, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic float32 inputs and int64 labels for ``cfg`` (XOR: the noisy XOR pattern).

    Parameters
    ----------
    cfg : Config
        The configuration (its ``n_samples`` and widths).
    seed : int, default=0
        Seed of the generator.

    Returns
    -------
    X : ndarray of float32, shape (n_samples, sizes[0])
        Uniform on [0, 1) (XOR: the four corners plus noise of 0.1).
    y : ndarray of int64, shape (n_samples,)
        Random classes (XOR: the corners' XOR).

    Examples
    --------
    >>> X, y = make_data(CONFIGS["xor"])
    >>> X.shape, X.dtype, y.dtype
    ((4000, 2), dtype('float32'), dtype('int64'))
    """
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


def make_predict_data(cfg: Config, rows: int = PREDICT_ROWS, seed: int = 0) -> np.ndarray:
    """``rows`` synthetic float32 inputs (rows, n_in) for ``cfg``, drawn like :func:`make_data`'s
    (for all but xor, the first rows of a larger draw are those of a smaller one).

    Parameters
    ----------
    cfg : Config
        The configuration.
    rows : int, default=PREDICT_ROWS
        The number of rows.
    seed : int, default=0
        Seed of the generator.

    Returns
    -------
    ndarray of float32, shape (rows, sizes[0])
        The inputs.
    """
    return make_data(replace(cfg, n_samples=rows), seed)[0]


# --------------------------------------------------------------------------- networks
def fusenn_mlp(cfg: Config) -> Any:
    """The network of ``cfg`` in fusenn: Dense layers, ``cfg.activation`` on the hidden ones,
    logits out (a multiclass classifier), parameters drawn from seed 0.

    Parameters
    ----------
    cfg : Config
        The configuration.

    Returns
    -------
    fusenn.Sequential
        The network.

    Examples
    --------
    >>> fusenn_mlp(CONFIGS["xor"]).n_params
    42
    """
    import fusenn as fn
    from ..layers import Dense

    sizes = cfg.sizes
    layers = [Dense(a, b, cfg.activation if i < len(sizes) - 2 else None)
              for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    return fn.Sequential(layers, random_state=0, task="multiclass")


def torch_mlp(cfg: Config, weights: Optional[Sequence[np.ndarray]] = None) -> Any:
    """The same network in PyTorch: ``torch.nn.Sequential`` of Linear and activation modules.

    Parameters
    ----------
    cfg : Config
        The configuration.
    weights : list of ndarray, optional
        In fusenn's ``get_weights`` order ``[W0, b0, W1, b1, ...]`` (W of shape
        (n_in, n_out)); they replace PyTorch's initial parameters when given.

    Returns
    -------
    torch.nn.Sequential
        The network (PyTorch is imported here).
    """
    import torch

    act = {"tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid, "relu": torch.nn.ReLU}
    mods: list[Any] = []
    sizes = cfg.sizes
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            mods.append(act[cfg.activation]())
    model = torch.nn.Sequential(*mods)
    if weights is not None:
        linears = [m for m in mods if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for linear, W, bias in zip(linears, weights[0::2], weights[1::2]):
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                linear.bias.copy_(torch.from_numpy(bias))
    return model


# --------------------------------------------------------------------------- fusenn's runners
def fusenn_runner(cfg: Config, backend: str, X: np.ndarray,
                  y: np.ndarray) -> Callable[[], Optional[str]]:
    """One epoch with fusenn on ``backend``; the function returns the path that ran.

    Parameters
    ----------
    cfg : Config
        The configuration.
    backend : str
        A fusenn backend name.
    X, y : ndarray
        The data of :func:`make_data`.

    Returns
    -------
    callable
        The function to time: it runs once more and returns the path that ran.
    """
    import fusenn as fn

    model = fusenn_mlp(cfg)
    # the Trainer's defaults (training accuracy included), as a user gets them
    trainer = fn.Trainer(model, optimizer=fn.optim.SGD(lr=LR), batch_size=cfg.batch_size,
                         random_state=0)

    def epoch() -> Optional[str]:
        with fn.use_backend(backend):
            trainer.fit(X, y, epochs=1)
        path: Optional[str] = trainer.last_path
        return path

    epoch()  # warm-up: Numba compiles (or loads its cache) here
    return epoch


def fusenn_predict_runner(cfg: Config, backend: str, X: np.ndarray) -> Callable[[], str]:
    """``model.predict(X)`` (class labels, all rows in one call) with fusenn on ``backend``;
    the function returns the path that ran, ``"predict:<backend>"``.

    Parameters
    ----------
    cfg : Config
        The configuration.
    backend : str
        A fusenn backend name.
    X : ndarray
        The rows of :func:`make_predict_data`.

    Returns
    -------
    callable
        The function to time: it runs once more and returns the path that ran.
    """
    import fusenn as fn

    model = fusenn_mlp(cfg)

    def predict() -> str:
        with fn.use_backend(backend):  # predict runs on fusenn's thread count, as fit does
            model.predict(X)
            return f"predict:{backends.resolve()}"

    predict()  # warm-up: Numba compiles (or loads its cache) here
    return predict


# --------------------------------------------------------------------------- peers' runners
def numpy_mlp_runner(cfg: Config, X: np.ndarray, y: np.ndarray) -> Callable[[], str]:
    """A plain, straightforward vectorised NumPy MLP: what one writes by hand.

    Parameters
    ----------
    cfg : Config
        The configuration.
    X, y : ndarray
        The data of :func:`make_data`.

    Returns
    -------
    callable
        The function to time: it runs once more and returns the path that ran.
    """
    rng = np.random.default_rng(0)
    sizes = cfg.sizes
    Ws = [(rng.normal(0, np.sqrt(2.0 / a), size=(a, b))).astype(np.float32)
          for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [np.zeros(b, dtype=np.float32) for b in sizes[1:]]
    Fn = Callable[[np.ndarray], np.ndarray]
    act: tuple[Fn, Fn] = {
        "tanh": (lambda z: np.tanh(z), lambda a: 1 - a * a),
        "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda a: a * (1 - a)),
        "relu": (lambda z: np.maximum(z, 0), lambda a: (a > 0).astype(np.float32)),
    }[cfg.activation]
    n, bsz = X.shape[0], cfg.batch_size

    def epoch() -> str:
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


def torch_runner(cfg: Config, X: np.ndarray, y: np.ndarray) -> Callable[[], str]:
    """PyTorch eager on the CPU: same layers, SGD, CrossEntropyLoss, same threads.

    Parameters
    ----------
    cfg : Config
        The configuration.
    X, y : ndarray
        The data of :func:`make_data`.

    Returns
    -------
    callable
        The function to time: it runs once more and returns the path that ran.
    """
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(get_num_threads())
    model = torch_mlp(cfg)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    n, bsz = X.shape[0], cfg.batch_size

    def epoch() -> str:
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


def torch_predict_runner(cfg: Config, X: np.ndarray) -> Callable[[], str]:
    """PyTorch's forward pass under ``torch.no_grad()`` and ``argmax`` to class labels, like
    ``model.predict``: the same network with the weights of :func:`fusenn_mlp`, on fusenn's
    thread count.

    Parameters
    ----------
    cfg : Config
        The configuration.
    X : ndarray
        The rows of :func:`make_predict_data`.

    Returns
    -------
    callable
        The function to time: it runs once more and returns the path that ran.
    """
    import torch

    torch.set_num_threads(get_num_threads())
    module = torch_mlp(cfg, fusenn_mlp(cfg).get_weights()).eval()
    Xt = torch.from_numpy(X)

    def predict() -> str:
        with torch.no_grad():
            module(Xt).argmax(dim=1)
        return "torch"

    predict()
    return predict


def onnxruntime_predict_runner(cfg: Config, X: np.ndarray) -> Callable[[], str]:
    """ONNX Runtime on the same network: :func:`fusenn_mlp` exported by
    :func:`fusenn.onnx.to_onnx` (its raw outputs, the logits), run by an ``InferenceSession``
    with ``intra_op_num_threads`` set to fusenn's thread count (one inter-op thread), then
    ``argmax`` to class labels as ``model.predict`` gives them. Before timing, its labels are
    checked equal to ``model.predict``'s and its logits to ``model.forward``'s.

    Parameters
    ----------
    cfg : Config
        The configuration (its network is exported).
    X : ndarray
        The rows of :func:`make_predict_data`.

    Returns
    -------
    callable
        The function to time: it predicts once more and returns the path that ran.

    Raises
    ------
    RuntimeError
        ONNX Runtime's outputs differ from fusenn's.
    """
    import onnxruntime as ort

    from ..onnx import to_onnx

    model = fusenn_mlp(cfg)
    options = ort.SessionOptions()
    options.intra_op_num_threads = get_num_threads()
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(to_onnx(model, output="raw").SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict() -> str:
        np.argmax(session.run(None, {name: X})[0], axis=1)
        return "onnxruntime"

    check = X[:4096]
    logits = session.run(None, {name: check})[0]
    if not (np.array_equal(np.argmax(logits, axis=1), model.predict(check))
            and np.allclose(logits, model.forward(check), rtol=1e-5, atol=1e-5)):
        raise RuntimeError("onnxruntime's outputs differ from fusenn's on the exported "
                           f"{cfg.name} network")
    predict()
    return predict


def sklearn_runner(cfg: Config, X: np.ndarray, y: np.ndarray) -> Callable[[], str]:
    """scikit-learn's MLPClassifier, solver sgd, same batch, one pass per partial_fit.

    Parameters
    ----------
    cfg : Config
        The configuration.
    X, y : ndarray
        The data of :func:`make_data`.

    Returns
    -------
    callable
        The function to time: it runs once more and returns the path that ran.
    """
    from sklearn.neural_network import MLPClassifier

    clf = MLPClassifier(hidden_layer_sizes=cfg.sizes[1:-1],
                        activation={"sigmoid": "logistic"}.get(cfg.activation, cfg.activation),
                        solver="sgd", batch_size=cfg.batch_size, learning_rate_init=LR,
                        momentum=0.0, alpha=0.0, random_state=0)
    classes = np.arange(cfg.sizes[-1])

    def epoch() -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.partial_fit(X, y, classes=classes)
        return "sklearn"

    epoch()
    return epoch


class _JaxEpoch(Protocol):
    """The epoch function of :func:`_jax_sgd_epoch`: a call runs one epoch and returns the
    path that ran; ``weights()`` gives the parameters as NumPy arrays."""
    weights: Callable[[], List[np.ndarray]]

    def __call__(self) -> str: ...


def _jax_sgd_epoch(cfg: Config, X: np.ndarray, y: np.ndarray, scan: bool,
                   shuffle: bool) -> _JaxEpoch:
    """The JAX MLP of ``cfg`` and its epoch of SGD, as a JAX user writes them.

    The parameters start as :func:`fusenn_mlp`'s (so that both libraries train the same
    network), float32 on JAX's CPU device. ``scan`` False: a ``jax.jit`` step (loss, gradient
    by ``jax.grad``, update) called from a Python loop over the batches; True: the whole epoch
    under ``jax.jit``, the shuffled data gathered and shaped (batches, batch, features) in it,
    then one ``lax.scan`` of the step over the batches (a last, smaller batch after the scan).
    Returns ``epoch``, which runs one epoch and blocks until its parameters are computed, with
    ``epoch.weights()`` giving them as NumPy arrays in ``get_weights`` order.
    """
    import os

    os.environ.setdefault("JAX_PLATFORMS", "cpu")  # before jax's first import: no GPU probe
    import jax
    import jax.numpy as jnp

    act = {"tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}[cfg.activation]
    weights = fusenn_mlp(cfg).get_weights()
    params = [(jnp.asarray(W, jnp.float32), jnp.asarray(b, jnp.float32))
              for W, b in zip(weights[0::2], weights[1::2])]

    def loss(params: Any, xb: Any, yb: Any) -> Any:
        h = xb
        for W, b in params[:-1]:
            h = act(h @ W + b)
        W, b = params[-1]
        logp = jax.nn.log_softmax(h @ W + b)
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

    def step(params: Any, xb: Any, yb: Any) -> Any:
        grads = jax.grad(loss)(params, xb, yb)
        return jax.tree_util.tree_map(lambda p, g: p - LR * g, params, grads)

    n, bsz = X.shape[0], cfg.batch_size
    full, rest = divmod(n, bsz)
    Xj, yj = jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.int32)

    def scan_epoch(params: Any, perm: np.ndarray) -> Any:
        xs, ys = Xj[perm], yj[perm]
        batches = (xs[:full * bsz].reshape(full, bsz, -1), ys[:full * bsz].reshape(full, bsz))
        params, _ = jax.lax.scan(lambda p, b: (step(p, *b), None), params, batches)
        if rest:  # shapes are static: decided while tracing
            params = step(params, xs[full * bsz:], ys[full * bsz:])
        return params

    jit_scan_epoch = jax.jit(scan_epoch)  # called, not decorated: jax is untyped to mypy
    jit_step = jax.jit(step)
    rng = np.random.default_rng(0)
    state: Dict[str, Any] = {"params": params}

    def epoch() -> str:
        perm = rng.permutation(n) if shuffle else np.arange(n)
        if scan:
            state["params"] = jit_scan_epoch(state["params"], perm)
        else:
            p = state["params"]
            for i in range(0, n, bsz):
                idx = perm[i:i + bsz]
                p = jit_step(p, X[idx], y[idx])
            state["params"] = p
        jax.block_until_ready(state["params"])
        return "jax-scan" if scan else "jax-step"

    runner = cast(_JaxEpoch, epoch)
    runner.weights = lambda: [np.asarray(a) for layer in state["params"] for a in layer]
    return runner


def jax_step_runner(cfg: Config, X: np.ndarray, y: np.ndarray,
                    shuffle: bool = True) -> Callable[[], str]:
    """JAX, a jitted SGD step called from a Python loop over the batches (float32, CPU).

    The warm-up epoch compiles the step (and, when the last batch is smaller, its second
    shape), so that compilation is not timed.

    Parameters
    ----------
    cfg : Config
        The configuration.
    X, y : ndarray
        The data of :func:`make_data`.
    shuffle : bool, default True
        False visits the samples in order (for checks against ``Trainer(shuffle=False)``).

    Returns
    -------
    callable
        The function to time: it runs one more epoch and returns the path that ran.
    """
    epoch = _jax_sgd_epoch(cfg, X, y, scan=False, shuffle=shuffle)
    epoch()
    return epoch


def jax_scan_runner(cfg: Config, X: np.ndarray, y: np.ndarray,
                    shuffle: bool = True) -> Callable[[], str]:
    """JAX, the whole epoch under ``jax.jit`` as one ``lax.scan`` over the pre-shaped batches
    (float32, CPU): how a JAX user writes a fast training loop. The warm-up epoch compiles it.

    Parameters
    ----------
    cfg : Config
        The configuration.
    X, y : ndarray
        The data of :func:`make_data`.
    shuffle : bool, default True
        False visits the samples in order (for checks against ``Trainer(shuffle=False)``).

    Returns
    -------
    callable
        The function to time: it runs one more epoch and returns the path that ran.
    """
    epoch = _jax_sgd_epoch(cfg, X, y, scan=True, shuffle=shuffle)
    epoch()
    return epoch


# --------------------------------------------------------------------------- the registries
@dataclass(frozen=True)
class Measurement:
    """What one measurement times: ``fusenn(cfg, backend, *data)`` builds fusenn's runner,
    ``data(cfg, rows)`` gives ``(data, n)`` (the runners' data arguments and the samples one
    call handles), ``unit`` heads the table's rate column, and ``references`` are the paths
    every row is compared with, a ratio column each (keys of :data:`REFERENCES`).

    Parameters
    ----------
    fusenn : callable
        Builds fusenn's runner: ``fusenn(cfg, backend, *data)``.
    data : callable
        ``data(cfg, rows)`` -> ``(data, n)``.
    unit : str
        The rate's unit (``"samples/s"``, ``"rows/s"``).
    references : tuple of str
        The paths each row gets a ratio to.
    """
    fusenn: Callable[..., Any]
    data: Callable[..., Any]
    unit: str
    references: Tuple[str, ...] = ("fusenn-numpy", "torch")


#: The paths a table can give ratios to: path label -> (key of the row's ratio, column title).
REFERENCES = {"fusenn-numpy": ("vs_numpy_ref", "numpy-ref"), "torch": ("vs_torch", "torch"),
              "jax-scan": ("vs_jax_scan", "jax-scan")}

#: The measurements of this runner, by the name ``fusenn bench --what`` takes.
MEASUREMENTS = {
    "train": Measurement(fusenn_runner, lambda cfg, rows: (make_data(cfg), cfg.n_samples),
                         "samples/s", ("fusenn-numpy", "torch", "jax-scan")),
    "predict": Measurement(fusenn_predict_runner,
                           lambda cfg, rows: ((make_predict_data(cfg, rows),), rows), "rows/s"),
}


@dataclass(frozen=True)
class Peer:
    """A library fusenn is compared with.

    ``name`` is its path label in the table; ``runners`` maps each measurement it takes part
    in (a key of :data:`MEASUREMENTS`) to its runner factory, called with the configuration and
    the measurement's data (``(cfg, X, y)`` to train, ``(cfg, X)`` to predict) and returning
    the function to time. ``module`` is the top-level module it imports (None: nothing beyond
    NumPy), ``distribution`` the package whose version the benchmark records, and ``title``
    names it in words.

    Parameters
    ----------
    name : str
        The path label.
    runners : dict
        Measurement name -> runner factory.
    title : str
        The library in words.
    module : str, optional
        The top-level module it imports.
    distribution : str, optional
        The distribution whose version is recorded.
    """
    name: str
    runners: dict[str, Callable[..., Any]]
    title: str
    module: Optional[str] = None
    distribution: Optional[str] = None

    @property
    def installed(self) -> bool:
        """Whether :attr:`module` can be imported here (looked up once, without importing it:
        importing PyTorch would load its OpenMP runtime into this process)."""
        return self.module is None or _module_found(self.module)


@functools.lru_cache(maxsize=None)
def _module_found(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


#: Every peer, by path label, in the order of the table (after fusenn's backends).
PEERS: dict[str, Peer] = {}


def register_peer(peer: Peer) -> Peer:
    """Add ``peer`` (a :class:`Peer`) to :data:`PEERS`.

    Parameters
    ----------
    peer : Peer
        Its ``name`` must be new and must not start with ``fusenn-``; its ``runners`` keys must
        be measurements of :data:`MEASUREMENTS`.

    Returns
    -------
    Peer
        ``peer`` itself.

    Raises
    ------
    ValueError
        For a name already taken or reserved, or an unknown measurement.

    Examples
    --------
    >>> def my_runner(cfg, X, y):
    ...     def epoch():
    ...         return "mine"
    ...     return epoch
    >>> peer = register_peer(Peer("mine", {"train": my_runner}, "my own MLP"))
    >>> paths("train")[-1]
    'mine'
    >>> del PEERS["mine"]
    """
    if peer.name in PEERS or peer.name.startswith("fusenn-"):
        raise ArgumentError(f"peer name {peer.name!r} is taken")
    unknown = set(peer.runners) - set(MEASUREMENTS)
    if unknown:
        raise ArgumentError(f"unknown measurement {sorted(unknown)[0]!r}; choose from "
                         f"{', '.join(MEASUREMENTS)}")
    PEERS[peer.name] = peer
    return peer


register_peer(Peer("plain-numpy", {"train": numpy_mlp_runner}, "a plain NumPy MLP"))
register_peer(Peer("onnxruntime", {"predict": onnxruntime_predict_runner}, "ONNX Runtime",
                   module="onnxruntime", distribution="onnxruntime"))
register_peer(Peer("torch", {"train": torch_runner, "predict": torch_predict_runner},
                   "PyTorch eager", module="torch", distribution="torch"))
register_peer(Peer("sklearn", {"train": sklearn_runner}, "scikit-learn", module="sklearn",
                   distribution="scikit-learn"))
register_peer(Peer("jax-step", {"train": jax_step_runner}, "JAX (a jitted step per batch)",
                   module="jax", distribution="jax"))
register_peer(Peer("jax-scan", {"train": jax_scan_runner}, "JAX (the epoch as one jitted "
                   "lax.scan)", module="jax", distribution="jax"))


def fusenn_path(backend: str) -> str:
    """The path label of fusenn on ``backend``: ``"fusenn-<backend>"``.

    Parameters
    ----------
    backend : str
        A fusenn backend name.

    Returns
    -------
    str
        The label.

    Examples
    --------
    >>> fusenn_path("numba")
    'fusenn-numba'
    """
    return f"fusenn-{backend}"


def _measurement(what: str) -> Measurement:
    if what not in MEASUREMENTS:
        raise ArgumentError(f"unknown measurement {what!r}; choose from "
                         f"{', '.join(MEASUREMENTS)}")
    return MEASUREMENTS[what]


def peers(what: str) -> list[Peer]:
    """The peers of measurement ``what``, in the order of the table.

    Parameters
    ----------
    what : str
        A key of :data:`MEASUREMENTS`.

    Returns
    -------
    list of Peer
        Installed or not.

    Raises
    ------
    fusenn.errors.ArgumentError
        For an unknown measurement.
    """
    _measurement(what)
    return [peer for peer in PEERS.values() if what in peer.runners]


def paths(what: str) -> tuple[str, ...]:
    """Every path label of measurement ``what``, available here or not: ``fusenn-<backend>``
    for each backend, then the peers.

    Parameters
    ----------
    what : str
        A key of :data:`MEASUREMENTS`.

    Returns
    -------
    tuple of str
        The labels.
    """
    return tuple(fusenn_path(b) for b in backends.NAMES) + tuple(p.name for p in peers(what))


def _builders(what: str, cfg: Config, data: tuple[Any, ...],
              include: Optional[Iterable[str]]) -> dict[str, Callable[[], Any]]:
    """``{label: builder}`` for every path of ``what`` (only those in ``include``, if given);
    ``builder()`` builds the runner on ``data`` and returns the function to time."""
    # Nothing is probed or loaded here for the peers: loading a compiled backend starts its
    # OpenMP runtime with passive waiting, which PyTorch (sharing libgomp) would inherit.
    fusenn = _measurement(what).fusenn
    out: dict[str, Callable[[], Any]] = {
        fusenn_path(name): functools.partial(fusenn, cfg, name, *data) for name in backends.NAMES}
    out.update({peer.name: functools.partial(peer.runners[what], cfg, *data)
                for peer in peers(what)})
    if include is not None:
        out = {k: v for k, v in out.items() if k in include}
    return out


def runners(cfg: Config, X: np.ndarray, y: np.ndarray,
            include: Optional[Iterable[str]] = None) -> dict[str, Callable[[], Any]]:
    """``{label: builder}`` for every training path; ``builder()`` returns the epoch function.

    Parameters
    ----------
    cfg : Config
        The configuration.
    X, y : ndarray
        The data of :func:`make_data`.
    include : iterable of str, optional
        Only these labels.

    Returns
    -------
    dict of str to callable
        Nothing is built, imported or loaded until a builder is called.
    """
    return _builders("train", cfg, (X, y), include)


def predict_runners(cfg: Config, X: np.ndarray,
                    include: Optional[Iterable[str]] = None) -> dict[str, Callable[[], Any]]:
    """``{label: builder}`` for every prediction path; ``builder()`` returns the function that
    predicts all rows of ``X``.

    Parameters
    ----------
    cfg : Config
        The configuration.
    X : ndarray
        The rows of :func:`make_predict_data`.
    include : iterable of str, optional
        Only these labels.

    Returns
    -------
    dict of str to callable
        Nothing is built, imported or loaded until a builder is called.
    """
    return _builders("predict", cfg, (X,), include)


# --------------------------------------------------------------------------- timing
def _distribution_version(name: str) -> Optional[str]:
    """The installed version of distribution ``name`` (None if absent), read from its metadata
    so that nothing is imported: importing PyTorch would load its OpenMP runtime here."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def peer_versions() -> dict[str, Any]:
    """Python, NumPy, the thread count and the versions of the peers' libraries, by module
    name (None: not installed), then of Numba and SciPy.

    Returns
    -------
    dict
        Name -> version string (or the thread count), read from the packages' metadata
        without importing them.
    """
    info: Dict[str, Any] = {"python": platform.python_version(), "numpy": np.__version__,
            "threads": get_num_threads()}
    for peer in PEERS.values():  # by module: the two JAX paths are one library
        if peer.distribution is not None:
            # (every peer with a distribution names its module)
            info.setdefault(cast(str, peer.module), _distribution_version(peer.distribution))
    for dist in ("numba", "scipy"):
        info[dist] = _distribution_version(dist)
    return info


def time_epochs(run: Callable[[], Any], n_samples: int,
                repeat: int = REPEAT) -> tuple[float, Any]:
    """Best samples per second over ``repeat`` calls of ``run`` (each an epoch over, or a
    prediction of, ``n_samples`` samples), and the path that ran.

    Parameters
    ----------
    run : callable
        The function to time; returns the path that ran.
    n_samples : int
        The samples one call handles.
    repeat : int, default=REPEAT
        The number of calls.

    Returns
    -------
    rate : float
        ``n_samples`` over the best call's seconds.
    ran : str
        What the last call returned.
    """
    best = np.inf
    ran = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        ran = run()
        best = min(best, time.perf_counter() - t0)
    return n_samples / best, ran


def measure(config: str, label: str, repeat: int = REPEAT, what: str = "train",
            rows: int = PREDICT_ROWS) -> tuple[float, Any]:
    """Build path ``label`` for ``config`` in this process, warm it up, time it.

    Parameters
    ----------
    config : str
        A key of :data:`CONFIGS`.
    label : str
        A path label of :func:`paths`.
    repeat : int, default=REPEAT
        Timed calls (the best is kept).
    what : {"train", "predict"}, default="train"
        One epoch of training, or a prediction of ``rows`` rows.
    rows : int, default=PREDICT_ROWS
        The rows of a prediction.

    Returns
    -------
    rate : float
        The best samples (or rows) per second.
    ran : str
        The path that ran (``"fast:cython"``, ``"torch"``, ...).
    """
    measurement = _measurement(what)
    cfg = CONFIGS[config]
    # No thread limits around the peers: each runs as its users run it, on the same thread
    # count (fusenn's fit sets its own; PyTorch gets torch.set_num_threads).
    data, n = measurement.data(cfg, rows)
    run_once = _builders(what, cfg, data, [label])[label]()
    return time_epochs(run_once, n, repeat)


def _measure_in_child(config: str, label: str, repeat: int, what: str = "train",
                      rows: int = PREDICT_ROWS) -> tuple[Optional[float], Any]:
    """:func:`measure` in a fresh Python process: no thread pool of another path (PyTorch's
    OpenMP, a second BLAS) is alive to compete with this one."""
    code = ("import json\nfrom fusenn.bench import training as b\n"
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


def _measure_path(config: str, label: str, repeat: int, what: str,
                  rows: int) -> tuple[Optional[float], Any]:
    """``(rate, ran)`` of one path: a peer that is not installed is not started."""
    peer = PEERS.get(label)
    if peer is not None and not peer.installed:
        return None, f"not installed ({peer.module})"
    return _measure_in_child(config, label, repeat, what, rows)


def run(configs: Sequence[str] = DEFAULT_CONFIGS["train"], repeat: int = REPEAT,
        include: Optional[Iterable[str]] = None, rounds: int = ROUNDS,
        print_fn: Optional[Callable[[str], Any]] = print, what: str = "train",
        rows: int = PREDICT_ROWS) -> List[Dict[str, Any]]:
    """Time every available path on ``configs``; print and return the table rows.

    ``what="train"`` times one epoch of training, ``what="predict"`` a prediction of ``rows``
    rows. Each path runs in its own process (``repeat`` calls, the best kept), and the whole
    sequence is run ``rounds`` times, interleaved, keeping each path's best: drift in a shared
    machine's speed then falls on every path alike.

    Parameters
    ----------
    configs : sequence of str, default=DEFAULT_CONFIGS["train"]
        Keys of :data:`CONFIGS`.
    repeat : int, default=REPEAT
        Timed calls per path in each round.
    include : iterable of str, optional
        Only these path labels.
    rounds : int, default=ROUNDS
        Rounds over all paths.
    print_fn : callable or None, default=print
        Receives the table (:func:`format_table`); None prints nothing.
    what : {"train", "predict"}, default="train"
        The measurement.
    rows : int, default=PREDICT_ROWS
        The rows of a prediction.

    Returns
    -------
    list of dict
        One row per configuration and path: ``config``, ``path``, ``ran`` (the path that
        ran, or why it did not), ``samples_per_s`` and the ratios to the reference paths.

    Raises
    ------
    fusenn.errors.ArgumentError
        For an unknown configuration or measurement.
    """
    measurement = _measurement(what)
    check_configs(configs)
    labels = ([fusenn_path(b) for b in backends.available_backends()]
              + [peer.name for peer in peers(what)])
    if include is not None:
        labels = [l for l in labels if l in include]
    best: Dict[Tuple[str, str], Tuple[Optional[float], Any]] = {}
    for _ in range(rounds):
        for name in configs:
            for label in labels:
                rate, ran = _measure_path(name, label, repeat, what, rows)
                old = best.get((name, label))
                if old is None or (rate is not None and (old[0] is None or rate > old[0])):
                    best[(name, label)] = (rate, ran)
    rows_out: List[Dict[str, Any]] = []
    for name in configs:
        refs = {REFERENCES[r][0]: best.get((name, r), (None,))[0]
                for r in measurement.references}
        for label in labels:
            rate, ran = best[(name, label)]
            row = {"config": name, "path": label, "ran": ran, "samples_per_s": rate}
            row.update({key: rate / ref if rate and ref else None for key, ref in refs.items()})
            rows_out.append(row)
    if print_fn is not None:
        print_fn(format_table(rows_out, unit=measurement.unit,
                              references=measurement.references))
    return rows_out


def format_table(rows: Iterable[Dict[str, Any]], unit: str = "samples/s",
                 references: Sequence[str] = ("fusenn-numpy", "torch")) -> str:
    """The rows of :func:`run` as a text table.

    Parameters
    ----------
    rows : list of dict
        The rows :func:`run` returns.
    unit : str, default "samples/s"
        The heading of the rate column.
    references : tuple of str
        Keys of :data:`REFERENCES`: a ratio column ``x <path>`` each.

    Returns
    -------
    str
    """
    columns = [REFERENCES[r] for r in references]
    head = f"{'config':<8} {'path':<14} {unit:>12}" + "".join(
        f" {'x ' + title:>{max(9, len(title) + 3)}}" for _, title in columns) + "  ran"
    lines = [head, "-" * len(head)]
    for r in rows:
        rate = f"{r['samples_per_s']:,.0f}" if r["samples_per_s"] else "-"
        ratios = "".join(f" {f'{r[key]:.2f}' if r.get(key) else '-':>{max(9, len(title) + 3)}}"
                         for key, title in columns)
        lines.append(f"{r['config']:<8} {r['path']:<14} {rate:>12}{ratios}  {r['ran']}")
    return "\n".join(lines)
