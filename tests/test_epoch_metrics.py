"""Training metrics come from the batches already computed, and small data sets run many epochs
per compiled call.

``train_epoch`` counts each batch's correct predictions as it goes (on the outputs before the
batch's update, as Keras reports training accuracy), so the Trainer's default metrics cost no
extra pass over the training data; with only replayable callbacks and no validation, several
epochs run in one call and their callbacks are replayed with the same logs."""
import importlib

import numpy as np
import pytest

import fusenn as fn
from fusenn import trainer as _trainer
from fusenn.backends import _contract as C
from fusenn.backends import _numpy as npb
from fusenn.layers import Dense

from support import bad_input


def _problem(loss_code, n=23, seed=0):
    rng = np.random.default_rng(seed)
    widths, codes = np.array([5, 7, 3]), np.array([fn.activations.get("tanh").code, 0])
    flat = rng.standard_normal(5 * 7 + 7 + 7 * 3 + 3) * 0.3
    X = rng.standard_normal((n, 5))
    labels = rng.integers(0, 3, n).astype(np.int64)
    targets = (rng.random((n, 3)) > 0.5).astype(np.float64)
    if loss_code == C.LOSS_MSE:
        targets = rng.random((n, 3))
    return widths, codes, flat, X, labels, targets


def _module(name):
    """The backend module ``name`` itself (its train_epoch, not a dispatcher's pick)."""
    return importlib.import_module(f"fusenn.backends._{name}")


def _hyper():
    h = np.zeros(C.N_HYPER)
    h[C.H_LR], h[C.H_MOMENTUM], h[C.H_BETA1], h[C.H_BETA2], h[C.H_EPS] = 0.05, 0.9, 0.9, 0.999, 1e-8
    return h


@pytest.mark.parametrize("loss_code", [C.LOSS_SOFTMAX_XENT, C.LOSS_SIGMOID_BCE, C.LOSS_MSE])
@pytest.mark.parametrize("opt_code", [C.OPT_SGD, C.OPT_ADAM])
def test_several_epochs_in_one_call_equal_one_call_each(any_backend, loss_code, opt_code):
    widths, codes, flat0, X, labels, targets = _problem(loss_code)
    mod = _module(any_backend)
    E, n, bs, nb = 4, X.shape[0], 5, 5
    orders = np.stack([np.random.default_rng(e).permutation(n) for e in range(E)])
    args = (widths, codes, np.zeros((2, 2)), X, labels, targets)

    flat, state = flat0.copy(), np.zeros((2, flat0.size))
    losses, correct = np.zeros((E, nb)), np.zeros((E, nb))
    done = mod.train_epoch(flat, np.zeros_like(flat), *args, orders, bs, loss_code, opt_code,
                           _hyper(), state, losses, correct)
    assert done == E * nb

    flat1, state1 = flat0.copy(), np.zeros((2, flat0.size))
    losses1, correct1 = np.zeros((E, nb)), np.zeros((E, nb))
    for e in range(E):
        h = _hyper()
        h[C.H_STEP] = e * nb
        mod.train_epoch(flat1, np.zeros_like(flat1), *args, orders[e], bs, loss_code, opt_code,
                        h, state1, losses1[e], correct1[e])
    np.testing.assert_array_equal(flat, flat1)
    np.testing.assert_array_equal(losses, losses1)
    np.testing.assert_array_equal(correct, correct1)
    if any_backend != "numpy":  # the counts equal the oracle's
        ref, ref_correct = flat0.copy(), np.zeros((E, nb))
        npb.train_epoch(ref, np.zeros_like(ref), *args, orders, bs, loss_code, opt_code,
                        _hyper(), np.zeros((2, flat0.size)), np.zeros((E, nb)), ref_correct)
        np.testing.assert_array_equal(correct, ref_correct)
        np.testing.assert_allclose(flat, ref, rtol=1e-10, atol=1e-12)


def test_counts_follow_the_rule(any_backend):
    """Each batch's count is what _count_correct says of the outputs before the update."""
    widths, codes, flat0, X, labels, targets = _problem(C.LOSS_SOFTMAX_XENT, n=10)
    mod = _module(any_backend)
    h = _hyper()
    h[C.H_LR] = 0.0  # the weights stay, so every batch is judged by the same network
    correct = np.zeros(2)
    mod.train_epoch(flat0.copy(), np.zeros_like(flat0), widths, codes, np.zeros((2, 2)), X,
                    labels, targets, np.arange(10), 5, C.LOSS_SOFTMAX_XENT, C.OPT_SGD, h,
                    np.zeros((2, flat0.size)), np.zeros(2), correct)
    (W0, b0), (W1, b1) = npb.layer_views(flat0, widths)
    logits = np.tanh(X @ W0 + b0) @ W1 + b1
    right = np.argmax(logits, axis=1) == labels
    assert correct.tolist() == [right[:5].sum(), right[5:].sum()]


def test_perm_must_hold_whole_epochs(compiled_backend):
    widths, codes, flat, X, labels, targets = _problem(C.LOSS_SOFTMAX_XENT)
    mod = _module(compiled_backend)
    with bad_input(ValueError, "one or more rows"):
        mod.train_epoch(flat, np.zeros_like(flat), widths, codes, np.zeros((2, 2)), X, labels,
                        targets, np.arange(X.shape[0] + 1) % X.shape[0], 5,
                        C.LOSS_SOFTMAX_XENT, C.OPT_SGD, _hyper(), np.zeros((2, flat.size)),
                        np.zeros(10), None)


def _xor_fit(backend, metrics="auto", span=None, callbacks=(), epochs=30, lr=0.5,
             loss="binary_cross_entropy", fast_path="auto", monkeypatch=None):
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array([0, 1, 1, 0]) if loss == "cross_entropy" else np.array([0.0, 1.0, 1.0, 0.0])
    k = 2 if loss == "cross_entropy" else 1
    model = fn.Sequential([Dense(2, 4, "tanh"), Dense(4, k, "sigmoid" if loss == "binary_cross_entropy" else None)],
                          dtype=np.float64, random_state=1)
    trainer = fn.Trainer(model, loss=loss, optimizer=fn.optim.SGD(lr=lr, momentum=0.9),
                         batch_size=2, random_state=5, metrics=metrics, callbacks=callbacks,
                         fast_path=fast_path)
    if span is not None:
        monkeypatch.setattr(_trainer.CompiledEpoch, "SPAN_SAMPLES", span)
    with fn.use_backend(backend):
        history = trainer.fit(X, y, epochs=epochs)
    return model, trainer, history


@pytest.mark.parametrize("loss", ["binary_cross_entropy", "cross_entropy"])
def test_default_metrics_make_no_extra_pass(compiled_backend, loss, monkeypatch):
    """With the default metrics, fit never runs the model outside the compiled epoch."""
    calls = []
    original = fn.Sequential._forward
    monkeypatch.setattr(fn.Sequential, "_forward",
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    _, trainer, history = _xor_fit(compiled_backend, loss=loss)
    assert trainer.last_path.startswith("fast:")
    assert calls == [] and len(history.history["accuracy"]) == 30


@pytest.mark.parametrize("loss", ["binary_cross_entropy", "cross_entropy"])
def test_training_accuracy_is_the_per_batch_paths(compiled_backend, loss):
    """The compiled epoch's counts give the accuracy the per-batch path measures."""
    _, fast, h_fast = _xor_fit(compiled_backend, loss=loss)
    _, slow, h_slow = _xor_fit("numpy", loss=loss)
    assert fast.last_path.startswith("fast:") and slow.last_path == "per-batch:numpy"
    assert h_fast.history["accuracy"] == h_slow.history["accuracy"]
    assert len(set(h_fast.history["accuracy"])) > 1  # it moved while training


def test_training_accuracy_is_the_batches_mean(monkeypatch):
    """The logged accuracy is the share of correct predictions over the epoch's batches,
    each judged before its update (recomputed here batch by batch through the layers)."""
    seen = []

    class Judge(fn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(logs["accuracy"])

    model, trainer, history = _xor_fit("numpy", callbacks=[Judge()], epochs=1, lr=1e-12)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    y = np.array([0, 1, 1, 0])
    expected = np.mean((model.predict_proba(X)[:, -1] > 0.5) == y)
    assert seen == [expected] == history.history["accuracy"]


def test_many_epochs_per_call_give_the_same_fit(compiled_backend, monkeypatch):
    calls = []
    be = fn.backends._cython if compiled_backend == "cython" else fn.backends._numba
    original = be.train_epoch
    monkeypatch.setattr(be, "train_epoch",
                        lambda *a: calls.append(np.shape(a[8])) or original(*a))
    one, _, h_one = _xor_fit(compiled_backend, span=1, monkeypatch=monkeypatch)
    assert calls and all(shape[0] == 1 for shape in calls)
    calls.clear()
    many, trainer, h_many = _xor_fit(compiled_backend, span=48, monkeypatch=monkeypatch)
    assert calls == [(12, 4), (12, 4), (6, 4)]  # 48 samples per call: 12 epochs of 4
    np.testing.assert_array_equal(many.flat_params, one.flat_params)
    assert h_many.history == h_one.history and h_many.epoch == list(range(30))
    assert trainer.optimizer.t == 60


def test_a_callback_that_is_not_replayable_sees_every_epoch_live(compiled_backend,
                                                                 monkeypatch):
    weights = []

    class Peek(fn.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            weights.append(self.trainer.model.flat_params.copy())

    model, _, _ = _xor_fit(compiled_backend, span=48, callbacks=[Peek()], epochs=5,
                           monkeypatch=monkeypatch)
    assert len(weights) == 5 and not np.array_equal(weights[0], weights[1])
    np.testing.assert_array_equal(weights[-1], model.flat_params)


def test_divergence_inside_a_call_of_many_epochs_is_reported_per_epoch(compiled_backend,
                                                                        monkeypatch):
    """A call of many epochs that diverges is rerun one epoch at a time: the error names the
    epoch and the weights are those at its start, as with one epoch per call."""
    results = []
    for span in (1, 400):
        with pytest.raises(fn.errors.DivergenceError) as err:
            _xor_fit(compiled_backend, span=span, lr=1e6, epochs=100, loss="mse",
                     monkeypatch=monkeypatch, metrics=[])
        results.append(str(err.value))
    assert results[0] == results[1] and "epoch" in results[0]


def test_accuracy_with_a_regression_loss_is_refused_up_front():
    model = fn.Sequential([Dense(2, 1)])
    with bad_input(ValueError, "regression"):
        fn.Trainer(model, loss="mse", metrics=["accuracy"])
