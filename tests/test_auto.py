"""The auto backend: each kernel call goes to the backend its crossover table picks."""
import math
import types

import numpy as np
import pytest

import fusenn as fn
from fusenn import backends
from fusenn.backends import _auto
from fusenn.backends import _numpy as ref


def _spy(name, calls):
    """A stand-in backend module that records which kernel ran on it."""
    mod = types.SimpleNamespace(NAME=name)
    for kernel in _auto.CROSSOVERS:
        setattr(mod, kernel, lambda *a, kernel=kernel: calls.append((name, kernel)))
    return mod


@pytest.fixture
def table(monkeypatch):
    """act_forward: numpy up to 100 elements, then cython (numba second); the rest cython."""
    crossovers = {k: ((math.inf, ("cython", "numpy")),) for k in _auto.WORK}
    crossovers["act_forward"] = ((100, ("numpy",)), (math.inf, ("cython", "numba", "numpy")))
    crossovers["act_forward:tanh"] = ((math.inf, ("numba", "numpy")),)
    monkeypatch.setattr(_auto, "CROSSOVERS", crossovers)
    return crossovers


def test_every_contract_kernel_has_a_rule_and_a_work_measure():
    kernels = {name for name in dir(ref) if not name.startswith("_") and callable(
        getattr(ref, name)) and name not in ("layer_views",)}
    kernels -= {"numpy_forward", "numpy_derivative"}
    plain = {k for k in _auto.CROSSOVERS if ":" not in k}
    assert kernels <= plain and plain == set(_auto.WORK)
    for key in set(_auto.CROSSOVERS) - plain:  # "kernel:activation" overrides
        kernel, act = key.split(":")
        assert kernel in _auto.CODE_ARG and fn.activations.get(act).name == act
    for kernel, rules in _auto.CROSSOVERS.items():
        bounds = [bound for bound, _ in rules]
        assert bounds == sorted(bounds) and bounds[-1] == math.inf, kernel
        for _, order in rules:
            assert set(order) <= set(backends.NAMES), kernel


def test_dispatch_follows_the_table_by_size(table):
    calls = []
    spies = {n: _spy(n, calls) for n in ("cython", "numba", "numpy")}
    auto = _auto.AutoBackend(spies, spies.__getitem__)
    auto.act_forward(np.zeros((10, 10)), 0, 0.0, 0.0, None)      # 100 elements
    auto.act_forward(np.zeros((10, 11)), 0, 0.0, 0.0, None)      # 110
    auto.dense_forward(np.zeros((4, 2)), np.zeros((2, 8)), None, 0, 0.0, 0.0, None, None)
    auto.act_forward(np.zeros((10, 10)), fn.activations.TANH, 0.0, 0.0, None)  # override
    assert calls == [("numpy", "act_forward"), ("cython", "act_forward"),
                     ("cython", "dense_forward"), ("numba", "act_forward")]


def test_an_unavailable_pick_falls_to_the_next_in_line(table):
    calls = []
    spies = {n: _spy(n, calls) for n in ("numba", "numpy")}
    loaded = []
    auto = _auto.AutoBackend(spies, lambda n: loaded.append(n) or spies[n])
    assert loaded == ["numpy"]  # nothing else is loaded before a call needs it
    auto.act_forward(np.zeros(1000), 0, 0.0, 0.0, None)
    auto.softmax(np.zeros(1000), None)
    assert calls == [("numba", "act_forward"), ("numpy", "softmax")]
    assert auto.describe()["act_forward"] == "numpy up to 100, then numba"
    assert auto.describe()["softmax"] == "numpy"
    assert auto.pick("act_forward", 50) == "numpy" and auto.pick("act_forward", 500) == "numba"


def test_a_kernel_with_one_rule_runs_its_backend_directly_after_the_first_call(table):
    calls = []
    spies = {n: _spy(n, calls) for n in ("cython", "numba", "numpy")}
    loaded = []
    auto = _auto.AutoBackend(spies, lambda n: loaded.append(n) or spies[n])
    assert "cython" not in loaded  # still loaded on first use only
    auto.dense_forward(np.zeros((4, 2)), np.zeros((2, 8)), None, 0, 0.0, 0.0, None, None)
    assert auto.dense_forward is spies["cython"].dense_forward  # no dispatch from now on
    auto.dense_forward(np.zeros((4, 2)), np.zeros((2, 8)), None, 0, 0.0, 0.0, None, None)
    assert calls == [("cython", "dense_forward")] * 2
    assert auto.act_forward is not spies["cython"].act_forward  # by size: still dispatched


def test_work_measures():
    x, W = np.zeros((64, 784)), np.zeros((784, 128))
    assert _auto.WORK["dense_forward"](x, W) == 64 * 784 * 128
    assert _auto.WORK["softmax_xent"](np.zeros((256, 10)), None, None) == 2560
    assert _auto.epoch_work([784, 128, 64, 10], 64) == 64 * (784 * 128 + 128 * 64 + 64 * 10)
    X = np.zeros((30, 784))
    assert _auto.WORK["train_epoch"](None, None, [784, 10], None, None, X, None, None, None,
                                     64) == 30 * 7840  # a batch larger than the data


def test_auto_is_the_default_and_its_kernels_agree_with_the_reference():
    with fn.use_backend("auto"):
        be = backends.get()
        assert be.NAME == "auto"
        assert be.LOSS_SOFTMAX_XENT == ref.LOSS_SOFTMAX_XENT and be.N_HYPER == ref.N_HYPER
        rng = np.random.default_rng(0)
        z = rng.standard_normal((32, 10)).astype(np.float32)
        labels = rng.integers(0, 10, 32)
        g, g_ref = np.empty_like(z), np.empty_like(z)
        assert be.softmax_xent(z, labels, g) == pytest.approx(
            ref.softmax_xent(z, labels, g_ref), rel=1e-6)
        np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-7)


def test_trainer_under_auto_runs_the_picked_epoch_backend():
    X = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    model = fn.Sequential([fn.layers.Dense(4, 8, "tanh"), fn.layers.Dense(8, 2)], random_state=0)
    trainer = fn.Trainer(model, batch_size=16, random_state=0, metrics=[])
    with fn.use_backend("auto"):
        trainer.fit(X, y, epochs=1)
        picked = backends.get().pick("train_epoch", _auto.epoch_work([4, 8, 2], 16))
    assert trainer.last_path == (f"fast:{picked}" if picked != "numpy" else "per-batch:auto")


def test_show_config_says_what_auto_picks():
    text = fn.show_config(file=open("/dev/null", "w"))
    assert "auto picks per kernel" in text
    for key in _auto.CROSSOVERS:
        assert f"    {key}: " in text
