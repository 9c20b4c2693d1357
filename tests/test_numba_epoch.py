"""The Numba backend compiles a whole-epoch kernel per model kind: its activations, its loss and
its optimiser only (a first fit in seconds, not a compile of every activation), cached by Numba
under a name of its own, with the numbers of the NumPy oracle."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fusenn as fn
from fusenn import _activation_table as table
from fusenn.backends import _contract
from fusenn.backends import _numba as nb
from fusenn.errors import ArgumentError
from fusenn.layers import Dense

RELU, LINEAR, TANH, SIGMOID = table.RELU, table.LINEAR, table.TANH, table.SIGMOID


def _kernel_names(source):
    """The activation identifiers whose forward or backward ``source`` calls."""
    return {d.name.lstrip("_") for d in table.BY_CODE.values() if d.kernel is not None
            and (f"_f_{d.name.lstrip('_')}(" in source or f"_b_{d.name.lstrip('_')}(" in source)}


def test_a_relu_model_compiles_relu_and_linear_only():
    kernel = nb._epoch_kernel([RELU, LINEAR, RELU], _contract.LOSS_SOFTMAX_XENT,
                              _contract.OPT_SGD)
    assert kernel.key == ((LINEAR, RELU), _contract.LOSS_SOFTMAX_XENT, _contract.OPT_SGD,
                          False)
    assert _kernel_names(kernel.source) == {"relu", "linear"}
    assert "_softmax_xent(" in kernel.source and "_update_sgd(" in kernel.source
    for other in ("_sigmoid_bce(", "_mse(", "_update_adam(", "_update_rmsprop(",
                  "_update_adagrad("):
        assert other not in kernel.source
    # made once per process, whatever the order and repeats of the codes
    assert nb._epoch_kernel([LINEAR, RELU], 0, 0) is kernel


def test_each_model_kind_gets_its_own_kernel_and_cache_name():
    a = nb._epoch_kernel([TANH, LINEAR], _contract.LOSS_MSE, _contract.OPT_ADAM)
    b = nb._epoch_kernel([SIGMOID, LINEAR], _contract.LOSS_MSE, _contract.OPT_ADAM)
    c = nb._epoch_kernel([TANH, LINEAR], _contract.LOSS_HALF_MSE, _contract.OPT_ADAM)
    assert _kernel_names(a.source) == {"tanh", "linear"}
    assert _kernel_names(b.source) == {"sigmoid", "linear"}
    names = {k.dispatcher.py_func.__qualname__ for k in (a, b, c)}
    assert len(names) == 3 and all(n.startswith("_train_epoch_a") for n in names)
    assert "_mse(out, yt, grad, True, True)" in c.source  # half: the notes' 1/(2n)


def test_softmax_output_gets_its_row_loops():
    kernel = nb._epoch_kernel([RELU, table.SOFTMAX], _contract.LOSS_MSE, _contract.OPT_SGD)
    assert "_softmax_row_into(z, a, i)" in kernel.source
    assert "_softmax_back_row(a, dy, dy, i)" in kernel.source


def test_unknown_activation_code_is_refused():
    X = np.zeros((4, 2))
    with pytest.raises(ArgumentError, match="unknown activation codes"):
        nb.train_epoch(np.zeros(3), np.zeros(3), [2, 1], [999], np.zeros((1, 2)), X,
                       np.zeros(4, np.int64), np.empty((0, 1)), np.arange(4), 2, 0, 0,
                       np.zeros(_contract.N_HYPER), [np.zeros(3)], np.empty(2))


def test_threads_asking_at_once_share_one_kernel():
    key = ([table.ELU, table.SELU], _contract.LOSS_SIGMOID_BCE, _contract.OPT_ADAGRAD)
    got, start = [], threading.Barrier(4)

    def ask():
        start.wait()
        got.append(nb._epoch_kernel(*key))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 4 and all(k is got[0] for k in got)


@pytest.mark.parametrize("hidden, out, loss, dtype", [
    ("relu", None, "cross_entropy", np.float64),
    ("tanh", "sigmoid", "mse", np.float64),
    ("gelu", "softmax", "half_mse", np.float32),
])
def test_specialised_kernels_give_the_oracles_numbers(hidden, out, loss, dtype):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((37, 6)).astype(dtype)
    labels = rng.integers(0, 3, 37)
    y = labels if loss == "cross_entropy" else np.eye(3, dtype=dtype)[labels]
    fits = {}
    for backend in ("numpy", "numba"):
        model = fn.Sequential([Dense(6, 5, hidden), Dense(5, 3, out)], random_state=1,
                              dtype=dtype)
        with fn.use_backend(backend):
            trainer = fn.Trainer(model, loss=loss, optimizer=fn.optim.Adam(lr=0.01),
                                 batch_size=8, random_state=0)
            history = trainer.fit(X, y, epochs=3, verbose=0)
        fits[backend] = (model.flat_params.copy(), history.history["loss"], trainer.last_path)
    assert fits["numba"][2] == "fast:numba"
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(fits["numba"][0], fits["numpy"][0], rtol=rtol, atol=rtol)
    np.testing.assert_allclose(fits["numba"][1], fits["numpy"][1], rtol=rtol)


# A first fit of a small relu model in a fresh process: its kernel's cache statistics and files.
_FIT = textwrap.dedent("""
    import json, os, warnings
    import numpy as np, fusenn as fn
    from fusenn.layers import Dense
    from fusenn.backends import _numba as nb
    X = np.random.default_rng(0).standard_normal((40, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = fn.Sequential([Dense(4, 3, "relu"), Dense(3, 2)], random_state=0)
    with fn.use_backend("numba"):
        fn.Trainer(model, random_state=0).fit(X, y, epochs=1, verbose=0)
    k = nb._epoch_kernel([7, 0], 0, 0).dispatcher
    print(json.dumps({"hits": sum(k.stats.cache_hits.values()),
                      "misses": sum(k.stats.cache_misses.values()),
                      "name": k.py_func.__qualname__, "cached": nb._JIT["cache"],
                      "params": model.flat_params.tolist()}))
""")


def _fit_in_a_new_process(env):
    out = subprocess.run([sys.executable, "-c", _FIT], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


def test_a_second_process_loads_the_models_kernel_from_the_cache(tmp_path):
    cache = tmp_path / "numba-cache"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    cold, err = _fit_in_a_new_process(env)
    assert cold["misses"] == 1 and cold["hits"] == 0, cold
    assert "Numba is compiling the training kernel" in err
    index = [p.name for p in cache.rglob("*.nbi") if cold["name"] in p.name]
    assert len(index) == 1, sorted(p.name for p in cache.rglob("*"))
    # Numba writes each cache file whole (a temporary name, then a rename): no leftovers
    assert not [p for p in cache.rglob("*") if p.is_file() and ".tmp" in p.name]
    warm, err = _fit_in_a_new_process(env)
    assert warm["hits"] == 1 and warm["misses"] == 0, warm
    assert "compiling" not in err
    assert warm["params"] == cold["params"]


def test_without_a_writable_cache_directory_it_still_trains(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    # NUMBA_CACHE_DIR below a file (not creatable, even by root), and no other place allowed
    env = dict(os.environ, NUMBA_CACHE_DIR=str(blocker / "cache"),
               NUMBA_CACHE_LOCATOR_CLASSES="UserProvidedCacheLocator")
    result, err = _fit_in_a_new_process(env)
    assert result["cached"] is False and result["hits"] == 0
    assert "Numba cannot cache its kernels" in err and "NUMBA_CACHE_DIR" in err
    assert "in every process" in err
    assert np.isfinite(result["params"]).all()
    # the scikit-learn face's own Numba kernels too (they were cached unconditionally)
    code = ("import numpy as np, warnings; warnings.simplefilter('ignore')\n"
            "from fusenn.sklearn import MLPClassifier\n"
            "X = np.random.default_rng(0).normal(size=(40, 3)); y = (X[:, 0] > 0).astype(int)\n"
            "print(MLPClassifier((5,), max_iter=3, random_state=0).fit(X, y).score(X, y))")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert 0.0 <= float(proc.stdout.strip().splitlines()[-1]) <= 1.0
