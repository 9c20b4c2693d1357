"""Dask: predict over, and train from, arrays larger than one process's memory.

Two functions take fusenn's models to a ``dask.distributed`` cluster (or to Dask's local
schedulers; the same code runs on a ``LocalCluster`` and on many machines):

* :func:`predict` - ``model.predict`` (or ``predict_proba``, ...) of a Dask array or
  DataFrame, block by block where the blocks live. The model is sent to every worker once
  (``client.scatter(model, broadcast=True)``), not once per block; the result is a lazy Dask
  array whose chunks follow the rows of ``X`` and whose dtype is the model's output dtype.
* :func:`fit_incremental` - training over a Dask array whose blocks are pulled to the client
  one at a time (the next one is fetched while the current one trains), with one optimiser
  state and one random stream carried across all blocks and a block order shuffled every
  epoch. With a single block it is exactly :meth:`fusenn.Trainer.fit` with the same seed.
  The scikit-learn face trains through its ``partial_fit``; so does
  ``dask_ml.wrappers.Incremental`` around it.

Every fusenn object pickles (weights, optimiser state and random streams travel; backends and
thread pools are found afresh in the process that unpickles), which is what lets a model cross
to a worker, and what a hyper-parameter search on the cluster needs::

    import joblib
    from dask.distributed import Client
    from sklearn.model_selection import GridSearchCV
    from fusenn.sklearn import MLPClassifier

    client = Client(cluster)                       # or Client() for a LocalCluster
    search = GridSearchCV(MLPClassifier(max_iter=50),
                          {"hidden_layer_sizes": [(32,), (64,)], "alpha": [1e-4, 1e-2]})
    with joblib.parallel_backend("dask"):
        search.fit(X, y)                           # every (candidate, fold) is a Dask task

What it leaves out: training on the workers (data-parallel gradient averaging); blocks are
learned from one after the other, on the client. This module needs dask.distributed:
``pip install 'fusenn[dask]'``; the rest of fusenn does not.
"""
from __future__ import annotations

import inspect
import math
import numbers
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .callbacks import History
from .errors import ArgumentError, ArgumentTypeError, ChunkError, MissingDependencyError
from ._typing import Array, DTypeLike, Seed
from .model import Sequential
from .trainer import Trainer

try:
    import dask.array as da
    import distributed
    from dask.base import compute as _dask_compute
    from dask.base import is_dask_collection
except ImportError as exc:  # the one place that says which extra to install
    raise MissingDependencyError(
        "fusenn.dask needs dask.distributed, which is not installed; install it with "
        "pip install 'fusenn[dask]'") from exc

__all__ = ["predict", "fit_incremental", "METHODS"]

#: The prediction methods :func:`predict` may call, where the model has them.
METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")


# --------------------------------------------------------------------------- helpers
def _default_client(client: Optional[distributed.Client]) -> Optional[distributed.Client]:
    """``client``, else the current ``dask.distributed`` client, else None (Dask's local
    scheduler runs the graph in this process)."""
    if client is not None:
        if not isinstance(client, distributed.Client):
            raise ArgumentTypeError(f"client must be a dask.distributed.Client or None, got "
                                    f"{type(client).__name__}")
        return client
    try:
        return distributed.get_client()
    except ValueError:  # no client in this process
        return None


def _is_dataframe(X: Any) -> bool:
    return hasattr(X, "to_dask_array") and is_dask_collection(X)


def _as_array(X: Any, name: str, lengths: bool) -> da.Array:
    """``X`` as a Dask array: a Dask DataFrame or Series is converted (its partition lengths
    computed when ``lengths``), anything else that is not a Dask array is refused."""
    if _is_dataframe(X):
        arr: da.Array = X.to_dask_array(lengths=True) if lengths else X.to_dask_array()
        return arr
    if not isinstance(X, da.Array):
        raise ArgumentTypeError(f"{name} must be a Dask array or DataFrame, got "
                                f"{type(X).__name__} (use the model's own methods for "
                                f"in-memory data, or dask.array.from_array)")
    return X


def _unknown(chunks: Sequence[float]) -> bool:
    return any(isinstance(c, float) and math.isnan(c) for c in chunks)


def _one_column_chunk(X: da.Array) -> da.Array:
    """``X`` with its columns in one chunk (each block then holds whole rows)."""
    return X.rechunk({1: -1}) if X.ndim == 2 and X.numblocks[1] > 1 else X


def _prediction_method(model: Any, method: str) -> Callable[..., Any]:
    if method not in METHODS:
        raise ArgumentError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    bound = getattr(model, method, None)  # an estimator may hide predict_proba (available_if)
    if not callable(bound):
        raise ArgumentError(f"{type(model).__name__} has no {method} method")
    func: Callable[..., Any] = bound
    return func


def _takes(func: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):  # pragma: no cover - a builtin without a signature
        return False


def _call(model: Any, method: str, X: Array) -> Array:
    """``model.<method>(X)`` as a NumPy array; quiet where the method can print (Keras)."""
    func = getattr(model, method)
    out = func(X, verbose=0) if _takes(func, "verbose") else func(X)
    return np.asarray(out)


def _predict_block(block: Array, model: Any, method: str, tail: Tuple[int, ...],
                   dtype: DTypeLike) -> Array:
    """The prediction of one block (runs on a worker; ``model`` arrives there once)."""
    if block.shape[0] == 0:  # an empty DataFrame partition
        return np.empty((0,) + tail, dtype=dtype)
    return _call(model, method, block)


# --------------------------------------------------------------------------- predict
def predict(model: Any, X: Any, method: str = "predict", *,
            client: Optional[distributed.Client] = None) -> da.Array:
    """Predictions of ``model`` for a Dask array or DataFrame, computed where its blocks live.

    The model goes to every worker once (scattered with ``broadcast=True``) and each block of
    rows is predicted by ``map_blocks`` with the model's own method; nothing runs until the
    result is computed.

    Parameters
    ----------
    model : fusenn.Sequential, fusenn.sklearn estimator, fusenn.keras model, or any object
        A fitted model with the method ``method`` taking a 2-D NumPy array of rows.
    X : dask.array.Array of shape (n_samples, n_features), or dask DataFrame
        The rows to predict. Columns split across chunks are joined first. A DataFrame's
        partitions become blocks; unknown row counts (a DataFrame's, or a boolean-indexed
        array's) are fine here - the result then has unknown row chunks too.
    method : {"predict", "predict_proba", "predict_log_proba", "decision_function"}
        Which method of the model to call on each block.
    client : dask.distributed.Client, optional
        The cluster to scatter the model to; default the current client. Without any, the
        model is put in the graph and Dask's local scheduler runs it in this process.

    Returns
    -------
    dask.array.Array
        Lazy: shape ``(n_samples,)`` or ``(n_samples, n_outputs)`` as the method returns for
        one row, row chunks those of ``X``, dtype the method's (float32 class probabilities
        for a float32 fusenn model, the class labels' dtype for a classifier's predict).

    Raises
    ------
    ArgumentTypeError
        ``X`` is not a Dask collection, or ``client`` is not a Client.
    ArgumentError
        ``method`` is not one of :data:`METHODS` or the model has no such method.
    ChunkError
        ``X`` is not 2-D or its number of features is unknown.

    Examples
    --------
    >>> import dask.array as da
    >>> import fusenn as fn
    >>> from fusenn import dask as fdask
    >>> net = fn.Sequential([fn.layers.Dense(4, 3, "softmax")], random_state=0)
    >>> X = da.ones((10, 4), chunks=5)
    >>> proba = fdask.predict(net, X, method="predict_proba")
    >>> proba.chunks, proba.dtype
    (((5, 5), (3,)), dtype('float32'))
    >>> proba.compute().shape
    (10, 3)
    """
    _prediction_method(model, method)
    X = _as_array(X, "X", lengths=False)
    if X.ndim != 2:
        raise ChunkError(f"X must be 2-D (n_samples, n_features), got {X.ndim}-D of shape "
                         f"{X.shape}")
    if _unknown(X.chunks[1]):
        raise ChunkError("X has an unknown number of features (its column chunks are nan); "
                         "give the feature count, e.g. with X.compute_chunk_sizes()")
    X = _one_column_chunk(X)
    # one row through the model here: the output's dtype and per-row shape, and an early error
    # for a model that cannot take X's width
    probe = _call(model, method, np.zeros((1, X.shape[1]), dtype=X.dtype))
    tail, dtype = probe.shape[1:], probe.dtype
    if method == "predict" and getattr(model, "classes_", None) is not None:
        dtype = np.asarray(model.classes_).dtype  # labels as long as the longest class name
    client = _default_client(client)
    handle = model if client is None else client.scatter(model, broadcast=True, hash=False)
    chunks = (X.chunks[0],) + tuple((n,) for n in tail)
    kwargs = {"drop_axis": 1} if not tail else {}
    out: da.Array = X.map_blocks(_predict_block, handle, method, tail, dtype, dtype=dtype,
                                 chunks=chunks,
                                 meta=np.empty((0,) * (1 + len(tail)), dtype=dtype),
                                 name=f"fusenn-{method}", **kwargs)
    return out


# --------------------------------------------------------------------------- fit_incremental
def _aligned(X: Any, y: Any) -> Tuple[da.Array, da.Array]:
    """``X`` and ``y`` as Dask arrays split into the same row blocks, or a ChunkError."""
    X = _as_array(X, "X", lengths=True)
    if X.ndim != 2:
        raise ChunkError(f"X must be 2-D (n_samples, n_features), got {X.ndim}-D of shape "
                         f"{X.shape}")
    for axis, what in ((0, "rows"), (1, "features")):
        if _unknown(X.chunks[axis]):
            raise ChunkError(
                f"X has unknown chunk sizes along its {what} (nan), as boolean indexing or "
                f"a DataFrame's to_dask_array() leaves them; blocks of unknown size cannot be "
                f"matched with y's: call X.compute_chunk_sizes() first")
    X = _one_column_chunk(X)
    if isinstance(y, np.ndarray):  # labels in memory: cut them like X's rows
        if y.shape[:1] != X.shape[:1]:
            raise ChunkError(f"y has {y.shape[0] if y.ndim else 0} rows but X has "
                             f"{X.shape[0]}")
        y = da.from_array(y, chunks=(X.chunks[0],) + y.shape[1:])
    y = _as_array(y, "y", lengths=True)
    if y.ndim not in (1, 2):
        raise ChunkError(f"y must be 1-D or 2-D, got {y.ndim}-D of shape {y.shape}")
    if _unknown(y.chunks[0]):
        raise ChunkError("y has unknown chunk sizes (nan), as boolean indexing leaves them; "
                         "call y.compute_chunk_sizes() first")
    y = _one_column_chunk(y)
    if y.chunks[0] != X.chunks[0]:
        raise ChunkError(f"y's row chunks {y.chunks[0]} are not aligned with X's "
                         f"{X.chunks[0]}; block i of y must hold the labels of block i of "
                         f"X: rechunk one like the other (y.rechunk({{0: X.chunks[0]}}))")
    return X, y


class _Blocks:
    """Pulls block ``i`` of ``X`` and ``y`` to this process; with a distributed client the
    next block is asked for before the current one is used, so that the cluster computes it
    while the client trains."""

    def __init__(self, X: da.Array, y: da.Array,
                 client: Optional[distributed.Client]) -> None:
        self.X, self.y, self.client = X, y, client
        self._ahead: Optional[Tuple[int, Any]] = None

    def _submit(self, i: int) -> Tuple[int, Any]:
        pair = (self.X.blocks[i], self.y.blocks[i])
        return i, (self.client.compute(list(pair)) if self.client is not None else pair)

    def pull(self, i: int, next_i: Optional[int] = None) -> Tuple[Array, Array]:
        if self._ahead is not None and self._ahead[0] == i:
            job = self._ahead[1]
        else:
            job = self._submit(i)[1]
        self._ahead = self._submit(next_i) if (next_i is not None
                                               and self.client is not None) else None
        if self.client is not None:
            Xb, yb = self.client.gather(job)
        else:
            Xb, yb = _dask_compute(*job)  # the local scheduler dask is configured with
        return np.asarray(Xb), np.asarray(yb)


def _learner(model: Any, random_state: Seed, classes: Any, trainer_kwargs: Dict[str, Any]
             ) -> Tuple[Callable[[Array, Array], Any], Any]:
    """``(step, result)``: ``step(Xb, yb)`` learns one block and returns its mean loss (or
    None); ``result`` is the trained object."""
    if isinstance(model, Sequential):
        model = Trainer(model, random_state=random_state, **trainer_kwargs)
    elif trainer_kwargs:
        raise ArgumentError(f"{', '.join(sorted(trainer_kwargs))}: Trainer settings are only "
                            f"taken with a fusenn.Sequential (a Trainer, or an estimator, "
                            f"has its own)")
    if isinstance(model, Trainer):
        trainer = model

        def step(Xb: Array, yb: Array) -> Any:
            return trainer.fit(Xb, yb, epochs=1, verbose=0)["loss"][0]

        return step, trainer
    if callable(getattr(model, "partial_fit", None)):
        first = {"classes": classes} if _takes(model.partial_fit, "classes") else {}

        def step(Xb: Array, yb: Array) -> Any:
            model.partial_fit(Xb, yb, **first)
            first.clear()  # classes are given on the first call only
            return getattr(model, "loss_", None)

        return step, model
    if callable(getattr(model, "fit", None)) and _takes(model.fit, "epochs"):  # Keras face
        def step(Xb: Array, yb: Array) -> Any:
            return model.fit(Xb, yb, epochs=1, verbose=0).history["loss"][-1]

        return step, model
    raise ArgumentTypeError(f"fit_incremental trains a fusenn.Sequential, a fusenn.Trainer, "
                            f"an estimator with partial_fit or a fusenn.keras model; got "
                            f"{type(model).__name__}")


def fit_incremental(model: Any, X: Any, y: Any, epochs: int = 1, *, shuffle: bool = True,
                    random_state: Seed = None, classes: Any = None,
                    client: Optional[distributed.Client] = None,
                    **trainer_kwargs: Any) -> Any:
    """Train ``model`` over a Dask array block by block, for data larger than memory.

    Each epoch visits the row blocks of ``X`` (and the matching blocks of ``y``) in a random
    order; each block is pulled to this process and learned from as one epoch of the model's
    own training - :meth:`fusenn.Trainer.fit` with ``epochs=1``, the estimator's
    ``partial_fit``, or a Keras-face ``fit(epochs=1)`` - so one optimiser state (momentum,
    Adam's moments and step count) and one random stream go on from block to block. At most
    two blocks are in this process at a time. A Trainer's callbacks see each block as a fit
    of one epoch (``on_train_begin`` ... ``on_train_end``); the History returned has one entry
    per pass over all blocks.

    With a single block (and a Sequential), the weights are those of
    ``Trainer(model, random_state=random_state, **trainer_kwargs).fit(X, y, epochs)``: the
    block order is drawn from a Generator of its own.

    Parameters
    ----------
    model : fusenn.Sequential, fusenn.Trainer, estimator with ``partial_fit``, or fusenn.keras model
        What to train, in place. A Sequential is trained by a new Trainer made with
        ``random_state`` and ``trainer_kwargs``; pass a Trainer to choose the loss and
        optimiser, or to go on with its optimiser state from an earlier call. A Keras-face
        model must be compiled.
    X : dask.array.Array of shape (n_samples, n_features), or dask DataFrame
        Features; its row blocks are the units pulled to this process.
    y : dask.array.Array, dask Series/DataFrame, or numpy.ndarray
        Targets with row chunks equal to ``X``'s (a NumPy array is cut like ``X``).
    epochs : int, default 1
        Passes over all blocks.
    shuffle : bool, default True
        Visit the blocks in a fresh random order every epoch (rows inside a block are
        shuffled by the model's own training).
    random_state : int, numpy.random.Generator or None
        Seeds the block order and, for a Sequential, the Trainer.
    classes : array-like, optional
        Every class label, for an estimator whose first ``partial_fit`` needs them (a
        classifier). Default: ``numpy.unique`` of ``y``, computed once.
    client : dask.distributed.Client, optional
        Where the blocks are computed; default the current client, else Dask's local
        scheduler.
    **trainer_kwargs
        Settings of the :class:`fusenn.Trainer` made for a Sequential (``loss``,
        ``optimizer``, ``batch_size``, ...).

    Returns
    -------
    History or estimator
        For a Sequential or a Trainer, a :class:`fusenn.History` whose ``"loss"`` holds each
        epoch's mean loss over all rows (weighted by block size). For an estimator or a Keras
        model, the model itself, trained.

    Raises
    ------
    ChunkError
        Unknown chunk sizes (from boolean indexing; call ``compute_chunk_sizes()``), or ``y``'s
        row chunks not aligned with ``X``'s.
    ArgumentTypeError
        ``X`` or ``y`` is not a Dask collection (``y`` may be a NumPy array), or the model is
        of a kind that cannot learn incrementally.
    ArgumentError
        ``epochs`` is not a positive integer, or Trainer settings come with a Trainer or an
        estimator.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> import fusenn as fn
    >>> from fusenn import dask as fdask
    >>> rng = np.random.default_rng(0)
    >>> X = da.from_array(rng.standard_normal((400, 2)), chunks=100)
    >>> y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    >>> net = fn.Sequential([fn.layers.Dense(2, 8, "tanh"), fn.layers.Dense(8, 2, "softmax")],
    ...                     random_state=0)
    >>> history = fdask.fit_incremental(net, X, y, epochs=3, random_state=0,
    ...                                 optimizer=fn.optim.Adam(lr=0.05))
    >>> len(history["loss"])
    3
    """
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise ArgumentError(f"epochs must be a positive integer, got {epochs!r}")
    X, y = _aligned(X, y)
    client = _default_client(client)
    if classes is None and callable(getattr(model, "partial_fit", None)) and _takes(
            model.partial_fit, "classes") and not hasattr(model, "classes_"):
        classes = (client.compute(da.unique(y)).result() if client is not None
                   else da.unique(y).compute())
    step, result = _learner(model, random_state, classes, trainer_kwargs)
    order_rng = np.random.default_rng(random_state)
    sizes = np.array(X.chunks[0], dtype=np.float64)
    n_blocks = len(sizes)
    blocks = _Blocks(X, y, client)
    history = History()
    history.on_train_begin()
    for epoch in range(int(epochs)):
        order = order_rng.permutation(n_blocks) if shuffle else np.arange(n_blocks)
        losses: List[float] = []
        for k, i in enumerate(order):
            nxt = int(order[k + 1]) if k + 1 < n_blocks else None
            Xb, yb = blocks.pull(int(i), nxt)
            loss = step(Xb, yb)
            losses.append(np.nan if loss is None else loss)
            if getattr(result, "stop_training", False):  # a Trainer's callback said stop
                break
        seen = sizes[order[:len(losses)]]
        history.on_epoch_end(epoch, {"loss": float(np.dot(losses, seen) / seen.sum())})
        if getattr(result, "stop_training", False):
            break
    return history if isinstance(result, Trainer) else result
