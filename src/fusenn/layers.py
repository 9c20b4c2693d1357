"""Layers: each one's backward pass is written right beside its forward pass.

A layer maps a batch ``x`` of shape ``(n, n_in)`` to ``(n, n_out)``. ``forward(x, training)``
keeps what ``backward`` needs; ``backward(dy)`` takes ``dL/dy`` and returns ``dL/dx``, writing
the gradients of the layer's parameters into ``d<name>`` (``dW``, ``db``, ...). Gradients are
overwritten, not accumulated: one backward per forward.

Parameters are attributes named in ``param_names``. Inside a :class:`fusenn.Sequential` they
become views into one flat vector (and their gradients views into another), so that an
optimiser updates the whole model in one pass.

While a :class:`fusenn.Trainer` fits, layers reuse preallocated workspaces for their outputs
(no allocation per mini-batch); otherwise every call returns fresh arrays.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from . import activations as _acts
from . import backends
from . import initializers as _inits
from ._typing import Array, ArrayLike, DTypeLike, Seed
from ._validation import (check_batch, check_in_range, check_positive, check_random_state,
                          float_dtype)
from .errors import ArgumentError, ShapeError


__all__ = ["Layer", "Dense", "DenseNoBias", "Activation", "Dropout", "BatchNorm", "PReLU", "Swish",
           "RReLU", "Maxout", "LAYERS", "MAX_WEIGHTS", "from_config"]


#: The most weights one Dense layer holds: BLAS takes its sizes as 32-bit ints (and 2**31
#: float32 weights are 8 GiB, more than a CPU MLP has any use for).
MAX_WEIGHTS = 2 ** 31 - 1


def _check_x(layer: Layer, x: Any) -> Array:
    """``x`` as a C-contiguous (n, n_in) array of the layer's dtype, or a ShapeError."""
    if (type(x) is np.ndarray and x.ndim == 2 and x.shape[1] == layer.n_in
            and x.dtype == layer.dtype and x.flags.c_contiguous):
        return x
    shape = np.shape(x)
    if len(shape) != 2 or shape[0] == 0:
        raise ShapeError(f"{layer.describe()} needs x of shape (n, {layer.n_in}) with n >= 1, "
                         f"got shape {shape}")
    return check_batch(x, (shape[0], layer.n_in), layer.dtype, "x")


def _check_dy(layer: Layer, dy: Any, rows: Optional[int]) -> Array:
    """``dy`` for a layer's backward: its last forward's output shape, or a clear error."""
    if rows is None:
        raise ArgumentError(f"{layer.describe()}.backward needs a forward pass first")
    return check_batch(dy, (rows, layer.n_out), layer.dtype, "dy")


class Layer:
    """Base class. Subclasses set ``param_names`` and implement the three methods below.

    The three methods are :meth:`forward`, :meth:`backward` and :meth:`get_config`; a layer
    with parameters also implements :meth:`reset_parameters`. Calling a layer,
    ``layer(x)``, converts ``x`` to the layer's dtype and runs :meth:`forward`.

    Parameters
    ----------
    dtype : float32 or float64, default float32
        The dtype of the layer's parameters and outputs.

    Raises
    ------
    TypeError
        ``dtype`` is not float32 or float64.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> class Double(fn.layers.Layer):
    ...     def forward(self, x, training=False):
    ...         return 2 * x
    ...     def backward(self, dy):
    ...         return 2 * dy
    >>> Double()(np.ones((1, 2)))
    array([[2., 2.]], dtype=float32)
    """

    param_names: Tuple[str, ...] = ()
    buffer_names: Tuple[str, ...] = ()  # saved but not trained (BatchNorm's running stats)
    stochastic = False  # draws random numbers in training (Dropout, RReLU)
    #: Input and output widths (None until known: ``build`` fixes them).
    n_in: Any
    n_out: Any
    rng: np.random.Generator

    def __init__(self, dtype: DTypeLike = np.float32) -> None:
        self.dtype = float_dtype(dtype)
        self.n_in = None
        self.n_out = None
        self.training = False
        self.need_input_grad = True
        self._reuse = False  # set by the Trainer: outputs come from workspaces
        self._ws: Dict[str, Array] = {}

    # -- shapes ---------------------------------------------------------------------------
    def build(self, n_in: int) -> int:
        """Fix the input width; return the output width (default: unchanged).

        Parameters
        ----------
        n_in : int
            The width of the inputs the layer will receive.

        Returns
        -------
        int
            The width of its outputs.

        Raises
        ------
        ShapeError
            The layer was built for another input width.
        """
        self._check_n_in(n_in)
        self.n_in = n_in
        if self.n_out is None:
            self.n_out = n_in
        return int(self.n_out)

    def _check_n_in(self, n_in: int) -> None:
        if self.n_in is not None and self.n_in != n_in:
            raise ShapeError(f"{self.describe()} expects {self.n_in} inputs but receives {n_in}")

    def describe(self) -> str:
        """A short name for messages and summaries, such as ``"Dense(2 -> 8)"``.

        Returns
        -------
        str
        """
        return type(self).__name__

    # -- parameters -----------------------------------------------------------------------
    @property
    def params(self) -> List[Array]:
        """The parameter arrays, in ``param_names`` order (``[W, b]`` for Dense)."""
        return [getattr(self, n) for n in self.param_names]

    @property
    def grads(self) -> List[Array]:
        """The gradient arrays of :attr:`params`, same order and shapes."""
        return [getattr(self, "d" + n) for n in self.param_names]

    @property
    def n_params(self) -> int:
        """The number of trainable scalars."""
        return int(sum(p.size for p in self.params))

    def _make_grads(self) -> None:
        for n in self.param_names:
            setattr(self, "d" + n, np.zeros_like(getattr(self, n)))

    def reset_parameters(self, rng: Any) -> None:
        """Draw fresh parameters from ``rng`` (layers without parameters do nothing).

        Parameters
        ----------
        rng : numpy.random.Generator
            The random source of the initialisers.
        """

    def astype(self, dtype: DTypeLike) -> None:
        """Convert the parameters, buffers and gradients to ``dtype``, in place.

        Parameters
        ----------
        dtype : float32 or float64
            The new dtype.

        Raises
        ------
        TypeError
            ``dtype`` is not float32 or float64.
        """
        self.dtype = float_dtype(dtype)
        if self.param_names and not hasattr(self, self.param_names[0]):
            return  # not built yet: parameters are created in the new dtype
        for n in self.param_names + self.buffer_names:
            setattr(self, n, getattr(self, n).astype(self.dtype))
        self._make_grads()
        self._ws = {}

    def set_rng(self, rng: Seed) -> None:
        """Give the layer its random source (for layers that draw in training).

        Parameters
        ----------
        rng : None, int or numpy.random.Generator
            A Generator, or a seed for a new one.
        """
        self.rng = check_random_state(rng)

    def __getstate__(self) -> Dict[str, Any]:
        # workspaces are scratch memory, made again by the next fit: they do not travel
        state = self.__dict__.copy()
        state["_ws"] = {}
        return state

    # -- workspaces -----------------------------------------------------------------------
    def _out(self, key: str, rows: int, cols: int, dtype: DTypeLike = None) -> Array:
        """An output array: a view of a reused workspace while training, else fresh."""
        dtype = self.dtype if dtype is None else dtype
        if not self._reuse:
            return np.empty((rows, cols), dtype=dtype)
        buf = self._ws.get(key)
        if buf is None or buf.shape[0] < rows or buf.shape[1] != cols or buf.dtype != dtype:
            buf = np.empty((rows, cols), dtype=dtype)
            self._ws[key] = buf
        return buf[:rows]

    # -- the three methods ----------------------------------------------------------------
    def forward(self, x: Array, training: bool = False) -> Array:  # pragma: no cover
        """The layer's output for the batch ``x``, keeping what :meth:`backward` needs.

        Parameters
        ----------
        x : ndarray of shape (n, n_in)
            The inputs, in the layer's dtype.
        training : bool, default False
            Training mode (Dropout drops, BatchNorm uses the batch's statistics).

        Returns
        -------
        ndarray of shape (n, n_out)
        """
        raise NotImplementedError

    def backward(self, dy: Array) -> Optional[Array]:  # pragma: no cover - abstract
        """The gradient with respect to the last forward's input; parameter gradients into
        ``d<name>``.

        Parameters
        ----------
        dy : ndarray of shape (n, n_out)
            The loss's gradient with respect to the layer's output.

        Returns
        -------
        ndarray of shape (n, n_in) or None
            ``dL/dx`` (None when ``need_input_grad`` is False: the first layer's input needs
            no gradient).
        """
        raise NotImplementedError

    def get_config(self) -> Dict[str, Any]:
        """The constructor's arguments, by name, to rebuild the layer (:func:`from_config`).

        Returns
        -------
        dict
        """
        return {}

    def __call__(self, x: ArrayLike, training: bool = False) -> Array:
        return self.forward(np.ascontiguousarray(x, dtype=self.dtype), training)

    def __repr__(self) -> str:
        cfg = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({cfg})"


def _activation_config(act: Any) -> Any:
    return None if act.name == "linear" and not act.params else act.get_config()


def _activation_from_config(cfg: Any) -> Any:
    if cfg is None:
        return _acts.get("linear")
    if isinstance(cfg, str):
        return _acts.get(cfg)
    cfg = dict(cfg)
    return _acts.get(cfg.pop("name"), **cfg)


class Dense(Layer):
    """Fully connected layer ``y = act(x @ W + b)``, bias and activation fused in one kernel.

    ``W`` has shape ``(n_in, n_out)`` and ``b`` shape ``(n_out,)``. ``activation`` is a name from
    :func:`fusenn.activations.names` or an Activation (e.g. ``activations.get("elu",
    alpha=0.5)``); ``init`` an initialiser name or object (default: He for the ReLU family,
    LeCun for SELU, Glorot otherwise). Backward::

        dz = dy * act'(z);  dW = x.T @ dz;  db = dz.sum(0);  dx = dz @ W.T

    Parameters
    ----------
    n_in, n_out : int > 0
        Input and output widths.
    activation : str, Activation or None, default None
        The activation (None: linear).
    init : str, Initializer or None, default None
        Initialiser of ``W`` (None: chosen from the activation, as above).
    bias_init : str, Initializer or None, default "zeros"
        Initialiser of ``b`` (None: zeros).
    random_state : None, int or numpy.random.Generator
        Random source of the initial weights.
    dtype : float32 or float64, default float32
        The dtype of the weights and outputs.

    Raises
    ------
    ValueError
        A width that is not a positive integer, or an unknown activation or initialiser
        name.
    ShapeError
        More than 2**31 - 1 weights.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> layer = fn.layers.Dense(3, 2, activation="relu", random_state=0)
    >>> layer.W.shape, layer.b.shape, layer.n_params
    ((3, 2), (2,), 8)
    >>> layer(np.zeros((4, 3))).shape
    (4, 2)
    """

    param_names = ("W", "b")
    W: Array
    b: Array
    dW: Array
    db: Array

    def __init__(self, n_in: int, n_out: int, activation: Any = None, init: Any = None,
                 bias_init: Any = "zeros", random_state: Seed = None,
                 dtype: DTypeLike = np.float32) -> None:
        super().__init__(dtype)
        self.n_in = check_positive(n_in, "Dense n_in", integer=True)
        self.n_out = check_positive(n_out, "Dense n_out", integer=True)
        if self.n_in * self.n_out > MAX_WEIGHTS:
            raise ShapeError(f"Dense({n_in}, {n_out}) would hold {self.n_in * self.n_out:,} "
                             f"weights; at most {MAX_WEIGHTS:,} (2**31 - 1, BLAS's int) fit")
        self.activation = _acts.get(activation)
        self.init = _inits.get(init) or _inits.default_for(self.activation.name)
        # None means the default, as for ``init`` (it used to be called, a TypeError)
        self.bias_init = _inits.get(bias_init) or _inits.Zeros()
        self.output_logits = False  # the Trainer fuses the output activation with the loss
        self.reset_parameters(check_random_state(random_state))

    def describe(self) -> str:
        return f"Dense({self.n_in} -> {self.n_out})"

    def reset_parameters(self, rng: Any) -> None:
        self.W = self.init((self.n_in, self.n_out), rng).astype(self.dtype)
        self.b = self.bias_init((self.n_out,), rng).astype(self.dtype)
        self._make_grads()

    def _code(self) -> Tuple[int, float, float]:
        act = self.activation
        if self.output_logits:
            return _acts.LINEAR, 0.0, 0.0
        return act.code, act.p0, act.p1

    def forward(self, x: Array, training: bool = False) -> Array:
        if not self._reuse:  # in a Trainer's epoch the arrays come from fit's checked data
            x = _check_x(self, x)
        code, p0, p1 = self._code()
        n = x.shape[0]
        z = self._out("z", n, self.n_out)
        a = z if code == _acts.LINEAR else self._out("a", n, self.n_out)
        # (whether z is finite: the kernel's answer, which prediction reads instead of a pass)
        self._z_finite = bool(backends.get().dense_forward(x, self.W, self.b, code, p0, p1, z,
                                                           a))
        self._x, self._z, self._a = x, z, a
        return a

    def backward(self, dy: Array) -> Optional[Array]:
        if not self._reuse:
            z = getattr(self, "_z", None)
            dy = _check_dy(self, dy, None if z is None else z.shape[0])
        code, p0, p1 = self._code()
        n = dy.shape[0]
        dz = self._out("dz", n, self.n_out)
        dx = self._out("dx", n, self.n_in) if self.need_input_grad else None
        backends.get().dense_backward(self._x, self.W, self._z, self._a, dy, code, p0, p1, dz,
                                      self.dW, self.db, dx)
        return dx

    def get_config(self) -> Dict[str, Any]:
        return {"n_in": self.n_in, "n_out": self.n_out,
                "activation": _activation_config(self.activation)}


class DenseNoBias(Layer):
    """Fully connected layer without bias or activation: ``y = x @ W``.

    Keras's ``Dense(use_bias=False)``; follow it with an :class:`Activation` layer for a
    non-linearity. Not a :class:`Dense`, so a model holding one trains on the per-batch path.
    Backward::

        dW = x.T @ dy;  dx = dy @ W.T

    Parameters
    ----------
    n_in, n_out : int
        Input and output widths.
    init : str or Initializer, optional
        Initialiser of ``W`` (default Glorot uniform).
    random_state : int or Generator, optional
    dtype : float32 or float64

    Examples
    --------
    >>> import numpy as np
    >>> layer = DenseNoBias(3, 2, init=_inits.Constant(1.0))
    >>> layer(np.ones((1, 3))).tolist()
    [[3.0, 3.0]]
    """

    param_names = ("W",)
    W: Array
    dW: Array

    def __init__(self, n_in: int, n_out: int, init: Any = None, random_state: Seed = None,
                 dtype: DTypeLike = np.float32) -> None:
        super().__init__(dtype)
        self.n_in = check_positive(n_in, "DenseNoBias n_in", integer=True)
        self.n_out = check_positive(n_out, "DenseNoBias n_out", integer=True)
        self.init = _inits.get(init) or _inits.default_for("linear")  # glorot_uniform
        self.reset_parameters(check_random_state(random_state))

    def describe(self) -> str:
        return f"DenseNoBias({self.n_in} -> {self.n_out})"

    def reset_parameters(self, rng: Any) -> None:
        self.W = self.init((self.n_in, self.n_out), rng).astype(self.dtype)
        self._make_grads()

    def forward(self, x: Array, training: bool = False) -> Array:
        y = self._out("y", x.shape[0], self.n_out)
        np.matmul(x, self.W, out=y)
        self._x = x
        return y

    def backward(self, dy: Array) -> Optional[Array]:
        np.matmul(self._x.T, dy, out=self.dW)
        if not self.need_input_grad:
            return None
        dx = self._out("dx", dy.shape[0], self.n_in)
        np.matmul(dy, self.W.T, out=dx)
        return dx

    def get_config(self) -> Dict[str, Any]:
        return {"n_in": self.n_in, "n_out": self.n_out}


class Activation(Layer):
    """An activation function as a layer of its own: ``y = f(x)``, ``dx = dy * f'(x)``.

    Parameters
    ----------
    activation : str or fusenn.activations.Activation
        A name of :func:`fusenn.activations.names` or an activation object.
    dtype : float32 or float64, default float32
        The dtype of the outputs.
    **params
        The activation's parameters, with a name (``alpha=0.1`` for ``"leaky_relu"``).

    Raises
    ------
    ValueError
        An unknown activation name or parameter.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> fn.layers.Activation("leaky_relu", alpha=0.1)(np.array([[-1.0, 2.0]]))
    array([[-0.1,  2. ]], dtype=float32)
    """

    def __init__(self, activation: Any, dtype: DTypeLike = np.float32, **params: Any) -> None:
        super().__init__(dtype)
        self.activation = _acts.get(activation, **params)
        self.output_logits = False

    def describe(self) -> str:
        return f"Activation({self.activation.name})"

    def forward(self, x: Array, training: bool = False) -> Array:
        if self.n_in is not None:
            x = _check_x(self, x)
        self._x = x
        if self.output_logits:
            self._y = x
            return x
        act = self.activation
        y = self._out("y", x.shape[0], x.shape[1])
        backends.get().act_forward(x, act.code, act.p0, act.p1, y)
        self._y = y
        return y

    def backward(self, dy: Array) -> Optional[Array]:
        if self.output_logits:
            return dy
        x = getattr(self, "_x", None)
        if x is None:
            raise ArgumentError(f"{self.describe()}.backward needs a forward pass first")
        dy = check_batch(dy, x.shape, self.dtype, "dy")
        act = self.activation
        dx = self._out("dx", dy.shape[0], dy.shape[1])
        if act.rowwise:
            dx[...] = act.backward(self._x, self._y, dy)
        else:
            backends.get().act_derivative(self._x, self._y, act.code, act.p0, act.p1, dx)
            dx *= dy
        return dx

    def get_config(self) -> Dict[str, Any]:
        return {"activation": self.activation.get_config()}


class Dropout(Layer):
    """Inverted dropout: in training each unit is kept with probability ``1 - rate`` and scaled
    by ``1 / (1 - rate)``; in evaluation the layer is the identity. ``dx = dy * mask``.

    Parameters
    ----------
    rate : float in [0, 1), default 0.5
        The probability of dropping a unit.
    random_state : None, int or numpy.random.Generator
        Random source of the masks (a Trainer gives its own with :meth:`Layer.set_rng`).
    dtype : float32 or float64, default float32
        The dtype of the outputs.

    Raises
    ------
    ValueError
        ``rate`` outside [0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> drop = fn.layers.Dropout(0.5, random_state=0)
    >>> y = drop(np.ones((2, 4)), training=True)
    >>> sorted(set(y.ravel().tolist())) in ([0.0, 2.0], [2.0], [0.0])
    True
    >>> drop(np.ones((1, 2)))                     # evaluation: the identity
    array([[1., 1.]], dtype=float32)
    """

    stochastic = True

    def __init__(self, rate: float = 0.5, random_state: Seed = None,
                 dtype: DTypeLike = np.float32) -> None:
        super().__init__(dtype)
        self.rate = check_in_range(rate, "dropout rate", 0.0, 1.0)
        self.rng = check_random_state(random_state)
        self._mask: Optional[Array] = None

    def describe(self) -> str:
        return f"Dropout({self.rate:g})"

    def forward(self, x: Array, training: bool = False) -> Array:
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        mask = self._out("mask", x.shape[0], x.shape[1])
        keep = 1.0 - self.rate
        mask[...] = self.rng.random(x.shape) < keep
        mask *= 1.0 / keep
        self._mask = mask
        y = self._out("y", x.shape[0], x.shape[1])
        np.multiply(x, mask, out=y)
        return y

    def backward(self, dy: Array) -> Optional[Array]:
        if self._mask is None:
            return dy
        dx = self._out("dx", dy.shape[0], dy.shape[1])
        np.multiply(dy, self._mask, out=dx)
        return dx

    def get_config(self) -> Dict[str, Any]:
        return {"rate": self.rate}


class _PerFeature(Layer):
    """A layer with parameters per input feature, whose width may be left to ``build``."""

    def _init_width(self, n: Optional[int], what: str) -> None:
        if n is not None:
            self.build(check_positive(n, what, integer=True))

    def build(self, n_in: int) -> int:
        self._check_n_in(n_in)
        if self.n_in is None:
            self.n_in = self.n_out = n_in
            self.reset_parameters(None)
        return n_in


class BatchNorm(_PerFeature):
    """Batch normalisation over the batch axis, with learnable scale ``gamma`` and shift ``beta``.

    Training: ``xhat = (x - mean_batch) / sqrt(var_batch + eps)``, ``y = gamma xhat + beta``, and
    the running statistics move by ``momentum`` (PyTorch's convention: ``running = (1 - m)
    running + m batch``, the running variance unbiased). Evaluation uses the running statistics.
    Backward (training)::

        dgamma = sum(dy xhat);  dbeta = sum(dy)
        dx = (gamma / sqrt(var + eps)) (dy - mean(dy) - xhat mean(dy xhat))

    Parameters
    ----------
    n_features : int or None, default None
        The input width (None: taken from the first input or from the model).
    momentum : float in [0, 1], default 0.1
        How far the running statistics move towards each batch's.
    eps : float > 0, default 1e-5
        Added to the variance.
    dtype : float32 or float64, default float32
        The dtype of the parameters and outputs.

    Raises
    ------
    ValueError
        A setting out of its range.
    ShapeError
        A training batch of one sample.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> bn = fn.layers.BatchNorm(2)
    >>> bn(np.array([[1.0, 10.0], [3.0, 30.0]]), training=True).round(3)
    array([[-1., -1.],
           [ 1.,  1.]], dtype=float32)
    """

    param_names = ("gamma", "beta")
    buffer_names = ("running_mean", "running_var")
    gamma: Array
    beta: Array
    dgamma: Array
    dbeta: Array

    def __init__(self, n_features: Optional[int] = None, momentum: float = 0.1,
                 eps: float = 1e-5, dtype: DTypeLike = np.float32) -> None:
        super().__init__(dtype)
        self.momentum = check_in_range(momentum, "BatchNorm momentum", 0.0, 1.0, hi_open=False)
        self.eps = check_positive(eps, "BatchNorm eps")
        self._init_width(n_features, "BatchNorm n_features")

    def reset_parameters(self, rng: Any) -> None:
        if self.n_in is None:
            return
        self.gamma = np.ones(self.n_in, dtype=self.dtype)
        self.beta = np.zeros(self.n_in, dtype=self.dtype)
        self.running_mean = np.zeros(self.n_in, dtype=self.dtype)
        self.running_var = np.ones(self.n_in, dtype=self.dtype)
        self._make_grads()

    def describe(self) -> str:
        return f"BatchNorm({self.n_in})"

    def forward(self, x: Array, training: bool = False) -> Array:
        if self.n_in is None:
            self.build(x.shape[1])
        if training:
            n = x.shape[0]
            if n < 2:
                raise ShapeError("BatchNorm needs at least 2 samples per batch in training, "
                                 "got 1")
            mean = x.mean(axis=0)
            var = x.var(axis=0)
            m = self.momentum
            self.running_mean *= 1 - m
            self.running_mean += m * mean
            self.running_var *= 1 - m
            self.running_var += m * var * (n / (n - 1))
        else:
            mean, var = self.running_mean, self.running_var
        self._inv_std = (1.0 / np.sqrt(var + self.eps)).astype(self.dtype)
        xhat = self._out("xhat", x.shape[0], x.shape[1])
        np.subtract(x, mean, out=xhat)
        xhat *= self._inv_std
        self._xhat = xhat
        y = self._out("y", x.shape[0], x.shape[1])
        np.multiply(xhat, self.gamma, out=y)
        y += self.beta
        self._training_stats = training
        return y

    def backward(self, dy: Array) -> Optional[Array]:
        xhat = self._xhat
        np.sum(dy * xhat, axis=0, out=self.dgamma)
        np.sum(dy, axis=0, out=self.dbeta)
        dx = self._out("dx", dy.shape[0], dy.shape[1])
        scale = self.gamma * self._inv_std
        if self._training_stats:
            n = dy.shape[0]
            np.multiply(xhat, self.dgamma / n, out=dx)
            dx += self.dbeta / n
            np.subtract(dy, dx, out=dx)
            dx *= scale
        else:
            np.multiply(dy, scale, out=dx)
        return dx

    def get_config(self) -> Dict[str, Any]:
        return {"n_features": self.n_in, "momentum": self.momentum, "eps": self.eps}


class PReLU(_PerFeature):
    """Parametric ReLU with a learnable slope per unit: ``y = x if x > 0 else alpha x``.

    Backward: ``dx = dy * (1 if x > 0 else alpha)``, ``dalpha = sum over the batch of
    dy * x * (x <= 0)``.

    Parameters
    ----------
    n_units : int or None, default None
        The width (None: taken from the first input or from the model).
    init : float, default 0.25
        The initial slope of every unit.
    dtype : float32 or float64, default float32
        The dtype of the slopes and outputs.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> fn.layers.PReLU(2)(np.array([[-4.0, 4.0]]))
    array([[-1.,  4.]], dtype=float32)
    """

    param_names = ("alpha",)
    alpha: Array
    dalpha: Array

    def __init__(self, n_units: Optional[int] = None, init: float = 0.25,
                 dtype: DTypeLike = np.float32) -> None:
        super().__init__(dtype)
        self.init_value = float(init)
        self._init_width(n_units, "PReLU n_units")

    def reset_parameters(self, rng: Any) -> None:
        if self.n_in is not None:
            self.alpha = np.full(self.n_in, self.init_value, dtype=self.dtype)
            self._make_grads()

    def describe(self) -> str:
        return f"PReLU({self.n_in})"

    def forward(self, x: Array, training: bool = False) -> Array:
        if self.n_in is None:
            self.build(x.shape[1])
        self._x = x
        y = self._out("y", x.shape[0], x.shape[1])
        np.multiply(x, np.where(x > 0, 1, self.alpha).astype(self.dtype), out=y)
        return y

    def backward(self, dy: Array) -> Optional[Array]:
        x = self._x
        neg = x <= 0
        np.sum(np.where(neg, dy * x, 0), axis=0, out=self.dalpha)
        dx = self._out("dx", dy.shape[0], dy.shape[1])
        np.multiply(dy, np.where(neg, self.alpha, 1).astype(self.dtype), out=dx)
        return dx

    def get_config(self) -> Dict[str, Any]:
        return {"n_units": self.n_in, "init": self.init_value}


class Swish(Layer):
    """Swish with a trainable ``beta``: ``y = x sigmoid(beta x)``.

    Backward, with ``s = sigmoid(beta x)``: ``dx = dy (s + beta x s (1 - s))`` and
    ``dbeta = sum(dy x^2 s (1 - s))``. ``trainable=False`` keeps ``beta`` fixed.

    Parameters
    ----------
    beta : float, default 1.0
        The initial ``beta`` (1 gives SiLU).
    trainable : bool, default True
        Whether ``beta`` is trained.
    dtype : float32 or float64, default float32
        The dtype of ``beta`` and the outputs.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> fn.layers.Swish(beta=1.0)(np.array([[0.0]]))
    array([[0.]], dtype=float32)
    """

    def __init__(self, beta: float = 1.0, trainable: bool = True,
                 dtype: DTypeLike = np.float32) -> None:
        super().__init__(dtype)
        self.trainable = bool(trainable)
        self.param_names = ("beta",) if self.trainable else ()
        self.beta = np.array([beta], dtype=self.dtype)
        self.dbeta = np.zeros(1, dtype=self.dtype)

    def describe(self) -> str:
        return f"Swish(beta={float(self.beta[0]):g})"

    def astype(self, dtype: DTypeLike) -> None:
        super().astype(dtype)
        self.beta = self.beta.astype(self.dtype)
        self.dbeta = np.zeros(1, dtype=self.dtype)

    def forward(self, x: Array, training: bool = False) -> Array:
        self._x = x
        s = self._out("s", x.shape[0], x.shape[1])
        backends.get().act_forward(x * self.beta[0], _acts.SIGMOID, 0.0, 0.0, s)
        self._s = s
        y = self._out("y", x.shape[0], x.shape[1])
        np.multiply(x, s, out=y)
        return y

    def backward(self, dy: Array) -> Optional[Array]:
        x, s, beta = self._x, self._s, self.beta[0]
        ds = s * (1 - s)
        self.dbeta[0] = np.sum(dy * x * x * ds)
        dx = self._out("dx", dy.shape[0], dy.shape[1])
        np.multiply(dy, s + beta * x * ds, out=dx)
        return dx

    def get_config(self) -> Dict[str, Any]:
        return {"beta": float(self.beta[0]), "trainable": self.trainable}


class RReLU(Layer):
    """Randomised leaky ReLU: in training each negative input gets a slope drawn from
    ``U(lower, upper)``; in evaluation the slope is the mean ``(lower + upper) / 2``.

    Parameters
    ----------
    lower, upper : float, default 1/8 and 1/3
        The range of the random slopes.
    random_state : None, int or numpy.random.Generator
        Random source of the slopes.
    dtype : float32 or float64, default float32
        The dtype of the outputs.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> fn.layers.RReLU(0.1, 0.3)(np.array([[-1.0, 1.0]]))   # evaluation: the mean slope
    array([[-0.2,  1. ]], dtype=float32)
    """

    stochastic = True

    def __init__(self, lower: float = 1.0 / 8.0, upper: float = 1.0 / 3.0,
                 random_state: Seed = None, dtype: DTypeLike = np.float32) -> None:
        super().__init__(dtype)
        self.activation = _acts.get("rrelu", lower=lower, upper=upper)
        self.lower, self.upper = float(lower), float(upper)
        self.rng = check_random_state(random_state)

    def describe(self) -> str:
        return f"RReLU({self.lower:g}, {self.upper:g})"

    def forward(self, x: Array, training: bool = False) -> Array:
        slope = self._out("slope", x.shape[0], x.shape[1])
        if training:
            slope[...] = self.rng.uniform(self.lower, self.upper, size=x.shape)
        else:
            slope[...] = 0.5 * (self.lower + self.upper)
        slope[x > 0] = 1
        self._slope = slope
        y = self._out("y", x.shape[0], x.shape[1])
        np.multiply(x, slope, out=y)
        return y

    def backward(self, dy: Array) -> Optional[Array]:
        dx = self._out("dx", dy.shape[0], dy.shape[1])
        np.multiply(dy, self._slope, out=dx)
        return dx

    def get_config(self) -> Dict[str, Any]:
        return {"lower": self.lower, "upper": self.upper}


class Maxout(Layer):
    """Maxout: ``k`` linear pieces per output unit, ``y_j = max_i (x @ W + b)[j, i]``.

    ``W`` has shape ``(n_in, n_out * k)`` (unit ``j``'s pieces are columns ``j*k .. j*k+k-1``).
    Backward routes ``dy`` to the winning piece only.

    Parameters
    ----------
    n_in, n_out : int > 0
        Input and output widths.
    k : int > 0, default 2
        Linear pieces per output unit.
    init : str, Initializer or None, default None
        Initialiser of ``W`` (None: Glorot uniform).
    random_state : None, int or numpy.random.Generator
        Random source of the initial weights.
    dtype : float32 or float64, default float32
        The dtype of the weights and outputs.

    Raises
    ------
    ValueError
        A size that is not a positive integer.

    Examples
    --------
    >>> import numpy as np
    >>> import fusenn as fn
    >>> layer = fn.layers.Maxout(3, 2, k=4, random_state=0)
    >>> layer.W.shape, layer(np.ones((5, 3))).shape
    ((3, 8), (5, 2))
    """

    param_names = ("W", "b")
    W: Array
    b: Array
    dW: Array
    db: Array

    def __init__(self, n_in: int, n_out: int, k: int = 2, init: Any = None,
                 random_state: Seed = None, dtype: DTypeLike = np.float32) -> None:
        super().__init__(dtype)
        self.n_in = check_positive(n_in, "Maxout n_in", integer=True)
        self.n_out = check_positive(n_out, "Maxout n_out", integer=True)
        self.k = check_positive(k, "Maxout k", integer=True)
        self.init = _inits.get(init) or _inits.default_for("linear")  # glorot_uniform
        self.reset_parameters(check_random_state(random_state))

    def describe(self) -> str:
        return f"Maxout({self.n_in} -> {self.n_out}, k={self.k})"

    def reset_parameters(self, rng: Any) -> None:
        self.W = self.init((self.n_in, self.n_out * self.k), rng).astype(self.dtype)
        self.b = np.zeros(self.n_out * self.k, dtype=self.dtype)
        self._make_grads()

    def forward(self, x: Array, training: bool = False) -> Array:
        n = x.shape[0]
        z = self._out("z", n, self.n_out * self.k)
        backends.get().dense_forward(x, self.W, self.b, _acts.LINEAR, 0.0, 0.0, z, z)
        pieces = z.reshape(n, self.n_out, self.k)
        self._arg = pieces.argmax(axis=2)
        self._x = x
        y = self._out("y", n, self.n_out)
        y[...] = np.take_along_axis(pieces, self._arg[:, :, None], axis=2)[:, :, 0]
        return y

    def backward(self, dy: Array) -> Optional[Array]:
        n = dy.shape[0]
        dz = self._out("dz", n, self.n_out * self.k)
        dz[...] = 0
        np.put_along_axis(dz.reshape(n, self.n_out, self.k), self._arg[:, :, None],
                          dy[:, :, None], axis=2)
        np.matmul(self._x.T, dz, out=self.dW)
        np.sum(dz, axis=0, out=self.db)
        if not self.need_input_grad:
            return None
        dx = self._out("dx", n, self.n_in)
        np.matmul(dz, self.W.T, out=dx)
        return dx

    def get_config(self) -> Dict[str, Any]:
        return {"n_in": self.n_in, "n_out": self.n_out, "k": self.k}


#: name -> class, for rebuilding saved models
LAYERS = {cls.__name__: cls for cls in (Dense, DenseNoBias, Activation, Dropout, BatchNorm,
                                         PReLU, Swish, RReLU, Maxout)}


def from_config(kind: str, config: Dict[str, Any], dtype: DTypeLike) -> Layer:
    """Rebuild a layer from ``(class name, get_config())``.

    Parameters
    ----------
    kind : str
        The layer's class name (a key of :data:`LAYERS`).
    config : dict
        Its :meth:`Layer.get_config`.
    dtype : float32 or float64
        The dtype of the new layer.

    Returns
    -------
    Layer

    Raises
    ------
    ValueError
        An unknown layer type.

    Examples
    --------
    >>> import fusenn as fn
    >>> layer = fn.layers.Dense(3, 2, activation="tanh")
    >>> fn.layers.from_config("Dense", layer.get_config(), "float64")
    Dense(n_in=3, n_out=2, activation={'name': 'tanh'})
    """
    if kind not in LAYERS:
        raise ArgumentError(f"unknown layer type {kind!r}; known: {', '.join(sorted(LAYERS))}")
    cfg = dict(config)
    if kind in ("Dense", "Activation"):
        cfg["activation"] = _activation_from_config(cfg.get("activation"))
    if kind == "Activation":
        return Activation(cfg["activation"], dtype=dtype)
    return LAYERS[kind](**cfg, dtype=dtype)
