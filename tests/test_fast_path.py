"""The Trainer's fast path (a whole epoch in compiled code) gives the weights of the per-batch
NumPy path, and the compiled backends also run the per-batch path through the layers."""
import numpy as np
import pytest

import fusenn as fn
from fusenn.layers import Dense

CASES = [
    ("cross_entropy", lambda: fn.optim.SGD(lr=0.1), ("tanh", None)),
    ("cross_entropy", lambda: fn.optim.SGD(lr=0.05, momentum=0.9, nesterov=True,
                                           weight_decay=1e-3), ("relu", "softmax")),
    ("cross_entropy", lambda: fn.optim.Adam(lr=0.01), ("sigmoid", None)),
    ("binary_cross_entropy", lambda: fn.optim.RMSprop(lr=0.01), ("elu", "sigmoid")),
    ("mse", lambda: fn.optim.Adagrad(lr=0.05), ("gelu", None)),
    ("half_mse", lambda: fn.optim.SGD(lr=0.05, momentum=0.5), ("leaky_relu", None)),
]


def _data(loss, n=37, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if loss == "cross_entropy":
        return X, rng.integers(0, k, n), k
    if loss == "binary_cross_entropy":
        return X, (X[:, 0] > 0).astype(float), 1
    return X, rng.normal(size=(n, 2)), 2


def _fit(backend, loss, make_opt, acts, fast=True):
    X, y, k = _data(loss)
    model = fn.Sequential([Dense(5, 7, acts[0]), Dense(7, 6, acts[0]), Dense(6, k, acts[1])],
                          dtype=np.float64, random_state=3)
    trainer = fn.Trainer(model, loss=loss, optimizer=make_opt(), batch_size=8, random_state=11,
                         fast_path="auto" if fast else False)
    with fn.use_backend(backend):
        history = trainer.fit(X, y, epochs=3)
    return model, trainer, history


@pytest.mark.parametrize("loss,make_opt,acts", CASES, ids=[c[0] + "-" + str(i)
                                                           for i, c in enumerate(CASES)])
def test_fast_path_matches_per_batch_numpy(compiled_backend, loss, make_opt, acts):
    backend = compiled_backend
    ref, ref_trainer, ref_hist = _fit("numpy", loss, make_opt, acts)
    fast, trainer, hist = _fit(backend, loss, make_opt, acts)
    assert ref_trainer.last_path == "per-batch:numpy"
    assert trainer.last_path == f"fast:{backend}"
    np.testing.assert_allclose(fast.flat_params, ref.flat_params, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hist.history["loss"], ref_hist.history["loss"], rtol=1e-10)
    assert trainer.optimizer.t == ref_trainer.optimizer.t == 3 * 5
    slow, slow_trainer, _ = _fit(backend, loss, make_opt, acts, fast=False)
    assert slow_trainer.last_path == f"per-batch:{backend}"
    np.testing.assert_allclose(slow.flat_params, ref.flat_params, rtol=1e-10, atol=1e-12)


def test_fast_path_divergence(compiled_backend):
    backend = compiled_backend
    X = np.array([[1e3, -1e3], [2e3, 1e3]])
    y = np.array([[1e3], [-1e3]])
    model = fn.Sequential([Dense(2, 1)], dtype=np.float64, random_state=0)
    trainer = fn.Trainer(model, loss="mse", optimizer=fn.optim.SGD(lr=10.0), batch_size=1,
                         shuffle=False)
    with fn.use_backend(backend):
        with pytest.raises(fn.DivergenceError, match=r"epoch \d+, batch \d+"):
            trainer.fit(X, y, epochs=50)
    assert trainer.last_path == f"fast:{backend}"
    assert np.all(np.isfinite(model.flat_params))


def test_compiled_backends_train_mixed_layers(compiled_backend):
    backend = compiled_backend
    X, y = fn.datasets.xor()
    results = []
    for name in ("numpy", backend):
        model = fn.Sequential([Dense(2, 6, "tanh"), fn.layers.BatchNorm(), fn.layers.PReLU(),
                               Dense(6, 2, "softmax")], dtype=np.float64, random_state=0)
        trainer = fn.Trainer(model, batch_size=2, random_state=0)
        with fn.use_backend(name):
            trainer.fit(X, y, epochs=3)
        assert trainer.last_path == f"per-batch:{name}"
        results.append(model.flat_params)
    np.testing.assert_allclose(results[1], results[0], rtol=1e-10, atol=1e-12)


def test_float32_fast_path_close_to_numpy(compiled_backend):
    X, y = fn.datasets.load_digits()
    X, y = X[:300].astype(np.float32), y[:300]
    out = []
    for name in ("numpy", compiled_backend):
        model = fn.Sequential([Dense(64, 32, "relu"), Dense(32, 10)], random_state=0)
        trainer = fn.Trainer(model, optimizer=fn.optim.SGD(lr=0.1), batch_size=16,
                             random_state=0, metrics=[])
        with fn.use_backend(name):
            trainer.fit(X, y, epochs=2)
        out.append(model.flat_params)
    np.testing.assert_allclose(out[1], out[0], rtol=1e-3, atol=1e-5)
