"""The ``auto`` backend: every kernel call goes to the path measured fastest for its size.

The three backends implement one contract (see :mod:`fusenn.backends._numpy`), but they are not
fastest at the same things: a compiled kernel's call costs a fraction of a microsecond where a
NumPy expression costs several, while at large sizes the work is BLAS's or memory's and the
paths draw level. :data:`CROSSOVERS` records, per kernel, which backend won at which size in
the kernel benchmarks (``fusenn bench --what kernels``, and
``pytest benchmarks/test_bench_kernels.py``) on the 2-core development machine. A kernel's size
is its work measure (:data:`WORK`): multiply-adds for the dense kernels, elements for the
elementwise and row kernels, parameters for the optimiser updates, and a batch's
multiply-adds for ``train_epoch``.

A rule is ``(largest work, preference)``: the first rule whose bound is not below the call's
work applies, and within it the first backend that is available here. Numba is never the only
choice: where it is not installed the next in line takes over.
"""
from __future__ import annotations

import math

NAME = "auto"

#: kernel -> ((largest work, preference order), ...), measured (see the module docstring).
CROSSOVERS = {
    "dense_forward": ((math.inf, ("cython", "numba", "numpy")),),
    "dense_backward": ((math.inf, ("cython", "numba", "numpy")),),
    "act_forward": ((math.inf, ("cython", "numba", "numpy")),),
    "act_derivative": ((math.inf, ("cython", "numba", "numpy")),),
    "softmax": ((math.inf, ("cython", "numba", "numpy")),),
    "log_softmax": ((math.inf, ("cython", "numba", "numpy")),),
    "logsumexp": ((math.inf, ("cython", "numba", "numpy")),),
    "softmax_xent": ((math.inf, ("cython", "numba", "numpy")),),
    "softmax_xent_probs": ((math.inf, ("cython", "numba", "numpy")),),
    "sigmoid_bce": ((math.inf, ("cython", "numba", "numpy")),),
    "mse": ((math.inf, ("cython", "numba", "numpy")),),
    "sgd_update": ((math.inf, ("cython", "numba", "numpy")),),
    "adam_update": ((math.inf, ("cython", "numba", "numpy")),),
    "rmsprop_update": ((math.inf, ("cython", "numba", "numpy")),),
    "adagrad_update": ((math.inf, ("cython", "numba", "numpy")),),
    "train_epoch": ((math.inf, ("cython", "numba", "numpy")),),
}


def epoch_work(widths, rows):
    """A mini-batch's multiply-adds through layers of ``widths``, with ``rows`` rows."""
    w = [int(v) for v in widths]
    return rows * sum(a * b for a, b in zip(w[:-1], w[1:]))


def _epoch_work(flat, grad, widths, codes, params, X, labels, targets, perm, batch_size,
                *rest):
    return epoch_work(widths, min(int(batch_size), len(X)))


#: kernel -> its work measure, from the call's arguments.
WORK = {
    "dense_forward": lambda x, W, *rest: x.shape[0] * W.size,
    "dense_backward": lambda x, W, *rest: x.shape[0] * W.size,
    "train_epoch": _epoch_work,
}
for _k in CROSSOVERS:
    WORK.setdefault(_k, lambda first, *rest: first.size)


class AutoBackend:
    """A backend object whose kernels dispatch, per call, to the backend that
    :data:`CROSSOVERS` picks for the call's size.

    ``available`` names the backends that can run here (numpy among them); ``load(name)``
    returns a backend's module. A backend is loaded the first time a call is routed to it, so
    that a table which never picks Numba never pays for importing it.
    """

    NAME = NAME

    def __init__(self, available, load):
        self.available = tuple(available)
        self._load = load
        self._modules = {}
        for kernel in CROSSOVERS:
            setattr(self, kernel, self._dispatcher(kernel))
        # the contract's constants (loss and optimiser codes, hyper indexes) are numpy's
        ref = self.module("numpy")
        for attr in dir(ref):
            if attr.isupper() and attr != "NAME":
                setattr(self, attr, getattr(ref, attr))

    def module(self, name):
        """Backend ``name``'s module, loaded on first use."""
        mod = self._modules.get(name)
        if mod is None:
            mod = self._modules[name] = self._load(name)
        return mod

    def rules(self, kernel):
        """``[(largest work, backend name), ...]`` for ``kernel`` with what is available here,
        neighbouring rules that land on the same backend merged."""
        out = []
        for bound, order in CROSSOVERS[kernel]:
            name = next((n for n in order if n in self.available), "numpy")
            if out and out[-1][1] == name:
                out[-1] = (bound, name)
            else:
                out.append((bound, name))
        return out

    def pick(self, kernel, work):
        """The name of the backend that runs ``kernel`` at ``work`` (see :data:`WORK`)."""
        return next((name for bound, name in self.rules(kernel) if work <= bound), "numpy")

    def _dispatcher(self, kernel):
        rules = self.rules(kernel)
        measure = WORK[kernel]
        module = self.module

        def call(*args):
            work = measure(*args)
            for bound, name in rules:
                if work <= bound:
                    return getattr(module(name), kernel)(*args)
            return getattr(module("numpy"), kernel)(*args)

        call.__name__ = kernel
        call.__doc__ = f"``{kernel}`` on the backend measured fastest for its size."
        return call

    def describe(self):
        """``{kernel: "cython", or "cython up to 4,096, then numpy", ...}`` (show_config)."""
        out = {}
        for kernel in CROSSOVERS:
            rules = self.rules(kernel)
            text = rules[0][1]
            for (bound, _), (_, name) in zip(rules[:-1], rules[1:]):
                text += f" up to {bound:,.0f}, then {name}"
            out[kernel] = text
        return out
