"""fusenn.dask on a real dask.distributed cluster: one LocalCluster of two worker processes
(one thread each) serves the whole module."""
import os
import signal
import subprocess
import sys
import time

import cloudpickle
import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster, as_completed, futures_of, get_task_stream

import fusenn as fn
from fusenn import dask as fdask
from fusenn.errors import ArgumentError, ArgumentTypeError, ChunkError
from fusenn.layers import Dense

# the scikit-learn fits here are kept short on purpose
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


def _net(n_in=8, hidden=16, n_out=3, dtype=np.float32, seed=0):
    return fn.Sequential([Dense(n_in, hidden, "relu"), Dense(hidden, n_out, "softmax")],
                         dtype=dtype, random_state=seed)


def _xor_blocks(n=600, chunk=100, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    return X, y, da.from_array(X, chunks=(chunk, 2)), da.from_array(y, chunks=chunk)


# --------------------------------------------------------------------------- predict
def test_predict_is_lazy_with_the_models_chunks_and_dtype(client):
    net = _net()
    X = da.random.default_rng(0).standard_normal((1000, 8), chunks=(150, 4))
    proba = fdask.predict(net, X, method="predict_proba")
    labels = fdask.predict(net, X)
    assert isinstance(proba, da.Array) and isinstance(labels, da.Array)
    assert proba.chunks == ((150,) * 6 + (100,), (3,)) and proba.dtype == np.float32
    assert labels.chunks == ((150,) * 6 + (100,),) and labels.dtype == np.int64
    Xc = X.compute()
    np.testing.assert_allclose(proba.compute(), net.predict_proba(Xc), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(labels.compute(), net.predict(Xc))
    masked = X[X[:, 0] > 0]  # rows unknown until computed: the result's too, and that is fine
    out = fdask.predict(net, masked)
    assert np.isnan(out.shape[0])
    np.testing.assert_array_equal(out.compute(), net.predict(Xc[Xc[:, 0] > 0]))


def test_string_labels_keep_their_length(client):
    from fusenn.sklearn import MLPClassifier

    X, y, Xd, _ = _xor_blocks()
    names = np.array(["a", "a much longer label"])[y]
    est = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=30,
                        random_state=0).fit(X, names)
    out = fdask.predict(est, Xd)
    assert out.dtype == est.classes_.dtype
    np.testing.assert_array_equal(out.compute(), est.predict(X))


def test_the_model_is_sent_once_per_worker_not_per_block(client):
    net = _net(n_in=64, hidden=512, n_out=10)  # 38k weights: 150 kB a copy
    X = da.random.default_rng(1).standard_normal((4000, 64), chunks=(250, 64))
    out = fdask.predict(net, X, method="predict_proba")
    graph = dict(out.__dask_graph__())
    blocks = {k: v for k, v in graph.items() if isinstance(k, tuple) and
              str(k[0]).startswith("fusenn-predict_proba")}
    assert len(blocks) == 16
    model_bytes = net.flat_params.nbytes
    assert max(len(cloudpickle.dumps(task)) for task in blocks.values()) < model_bytes / 10
    held = client.persist(out)
    try:
        client.wait_for_workers(2)
        from distributed import wait
        wait(held)
        counts = client.run(lambda dask_worker: sum(isinstance(v, fn.Sequential)
                                                    for v in dask_worker.data.values()))
        assert all(c <= 1 for c in counts.values()), counts
    finally:
        del held


def test_predict_a_dataframe(client):
    import dask.dataframe as dd
    import pandas as pd

    net = _net(n_in=4)
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.standard_normal((90, 4)), columns=list("abcd"))
    ddf = dd.from_pandas(frame, npartitions=3)
    out = fdask.predict(net, ddf, method="predict_proba")
    assert isinstance(out, da.Array) and out.dtype == np.float32
    np.testing.assert_allclose(out.compute(), net.predict_proba(frame.to_numpy()),
                               rtol=1e-6, atol=1e-7)


def test_predict_with_the_scikit_learn_and_keras_faces(client):
    from fusenn.keras import Sequential, layers
    from fusenn.sklearn import MLPClassifier

    X, y, Xd, _ = _xor_blocks()
    est = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=20,
                        random_state=0).fit(X, y)
    np.testing.assert_array_equal(fdask.predict(est, Xd).compute(), est.predict(X))
    np.testing.assert_allclose(fdask.predict(est, Xd, method="predict_proba").compute(),
                               est.predict_proba(X), rtol=1e-12)
    model = Sequential([layers.Dense(8, activation="tanh", input_shape=(2,)),
                        layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(X, y, epochs=1, verbose=0)
    out = fdask.predict(model, Xd)
    assert out.chunks == (Xd.chunks[0], (2,))
    np.testing.assert_allclose(out.compute(), model.predict(X, verbose=0), rtol=1e-6)


def test_predict_refuses_what_it_cannot_use(client):
    net = _net()
    with pytest.raises(ArgumentTypeError, match="Dask array"):
        fdask.predict(net, np.zeros((4, 8)))
    with pytest.raises(ArgumentError, match="method"):
        fdask.predict(net, da.zeros((4, 8)), method="transform")
    with pytest.raises(ChunkError, match="2-D"):
        fdask.predict(net, da.zeros(8))
    with pytest.raises(fn.ShapeError, match="features"):
        fdask.predict(net, da.zeros((4, 5)))


def test_a_worker_killed_mid_predict_changes_nothing(client):
    """Dask recomputes the lost blocks elsewhere; the result is the undisturbed one."""
    class SlowModel:  # 50 ms a block, so that the kill lands in the middle
        def __init__(self, net):
            self.net = net

        def predict_proba(self, X):
            time.sleep(0.05)
            return self.net.predict_proba(X)

    net = _net(n_in=16, hidden=32, n_out=4, dtype=np.float64)
    X = da.random.default_rng(3).standard_normal((8000, 16), chunks=(200, 16))
    expected = net.predict_proba(X.compute())
    pids = client.run(os.getpid)
    out = fdask.predict(SlowModel(net), X, method="predict_proba")
    futures = futures_of(client.persist(out))
    done = 0
    for _ in as_completed(futures):
        done += 1
        if done == 4:
            break
    assert sum(f.done() for f in futures) < len(futures)  # killed in the middle
    os.kill(next(iter(pids.values())), signal.SIGKILL)  # its nanny starts a new one
    got = np.concatenate(client.gather(futures))
    np.testing.assert_array_equal(got, expected)
    client.wait_for_workers(2, timeout=60)
    assert set(client.run(os.getpid).values()) != set(pids.values())


# --------------------------------------------------------------------------- fit_incremental
def test_one_block_is_an_ordinary_fit(client):
    X, y, _, _ = _xor_blocks(200)
    settings = dict(optimizer=fn.optim.Adam(lr=0.02), batch_size=16)
    a = fn.Sequential([Dense(2, 8, "tanh"), Dense(8, 2, "softmax")], dtype=np.float64,
                      random_state=0)
    b = fn.Sequential([Dense(2, 8, "tanh"), Dense(8, 2, "softmax")], dtype=np.float64,
                      random_state=0)
    history = fdask.fit_incremental(a, da.from_array(X), da.from_array(y), epochs=4,
                                    random_state=5, **settings)
    settings["optimizer"] = fn.optim.Adam(lr=0.02)
    expected = fn.Trainer(b, random_state=5, **settings).fit(X, y, epochs=4)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-12)


def test_blocks_share_one_optimiser_and_learn(client):
    X, y, Xd, yd = _xor_blocks(1200, chunk=150)
    net = fn.Sequential([Dense(2, 16, "tanh"), Dense(16, 2, "softmax")], random_state=0)
    trainer = fn.Trainer(net, optimizer=fn.optim.Adam(lr=0.02), batch_size=25, random_state=0)
    history = fdask.fit_incremental(trainer, Xd, yd, epochs=6, random_state=1)
    assert trainer.optimizer.t == 6 * 8 * 6  # every block's batches, one step count
    assert len(history["loss"]) == 6 and history["loss"][-1] < history["loss"][0]
    assert np.mean(net.predict(X) == y) > 0.9


class _Recorder:
    """Remembers the blocks it was given (the first value of each is its block's id)."""

    def __init__(self):
        self.seen = []

    def partial_fit(self, X, y):
        self.seen.append((int(X[0, 0]), X.shape[0], int(y[0])))
        return self


def test_block_order_is_shuffled_per_epoch_from_the_seed(client):
    X = da.from_array(np.repeat(np.arange(8.0), 10)[:, None] * np.ones((1, 3)), chunks=(10, 3))
    y = da.from_array(np.repeat(np.arange(8), 10), chunks=10)
    runs = [fdask.fit_incremental(_Recorder(), X, y, epochs=3, random_state=4).seen
            for _ in range(2)]
    assert runs[0] == runs[1]
    orders = [[b for b, _, _ in runs[0][8 * e:8 * e + 8]] for e in range(3)]
    assert all(sorted(o) == list(range(8)) for o in orders)
    assert orders[0] != orders[1] != orders[2]
    assert all(rows == 10 and b == label for b, rows, label in runs[0])
    fixed = fdask.fit_incremental(_Recorder(), X, y, epochs=2, shuffle=False).seen
    assert [b for b, _, _ in fixed] == list(range(8)) * 2


def test_dataframes_and_in_memory_labels_are_cut_into_blocks(client):
    import dask.dataframe as dd
    import pandas as pd

    frame = pd.DataFrame({"a": np.repeat(np.arange(4.0), 5), "b": 1.0,
                          "y": np.repeat(np.arange(4), 5)})
    ddf = dd.from_pandas(frame, npartitions=4)
    seen = fdask.fit_incremental(_Recorder(), ddf[["a", "b"]], ddf["y"], shuffle=False).seen
    assert seen == [(i, 5, i) for i in range(4)]
    X = da.from_array(frame[["a", "b"]].to_numpy(), chunks=(5, 2))
    seen = fdask.fit_incremental(_Recorder(), X, frame["y"].to_numpy(), shuffle=False).seen
    assert seen == [(i, 5, i) for i in range(4)]


def test_the_scikit_learn_face_learns_through_partial_fit(client):
    from fusenn.sklearn import MLPClassifier

    X, y, Xd, yd = _xor_blocks(1200, chunk=200)
    est = MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.02, random_state=0)
    assert fdask.fit_incremental(est, Xd, yd, epochs=8, random_state=0) is est
    assert list(est.classes_) == [0, 1] and est.score(X, y) > 0.9


def test_dask_ml_incremental_wraps_the_face(client):
    """``dask_ml.wrappers.Incremental`` feeds the face's partial_fit block by block: one pass
    equals partial_fit on each block in turn."""
    from dask_ml.wrappers import Incremental

    from fusenn.sklearn import MLPClassifier

    X, y, Xd, yd = _xor_blocks(600, chunk=200)
    make = lambda: MLPClassifier(hidden_layer_sizes=(16,), batch_size=20,  # noqa: E731
                                 random_state=0)
    inc = Incremental(make(), shuffle_blocks=False).fit(Xd, yd, classes=[0, 1])
    by_hand = make()
    for i in range(0, 600, 200):
        by_hand.partial_fit(X[i:i + 200], y[i:i + 200], classes=[0, 1])
    for a, b in zip(inc.estimator_.coefs_, by_hand.coefs_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(inc.predict(Xd).compute(), by_hand.predict(X))


def test_the_keras_face_learns_block_by_block(client):
    from fusenn.keras import Sequential, layers

    X, y, Xd, yd = _xor_blocks(1200, chunk=200)
    model = Sequential([layers.Dense(16, activation="tanh", input_shape=(2,)),
                        layers.Dense(2, activation="softmax")])
    model.compile(optimizer=fn.keras.optimizers.Adam(0.02),
                  loss="sparse_categorical_crossentropy")
    assert fdask.fit_incremental(model, Xd, yd, epochs=6, random_state=0) is model
    assert model.optimizer.t == 6 * 6 * 7  # one step count: 6 epochs x 6 blocks x 7 batches
    assert np.mean(np.argmax(model.predict(X, verbose=0), axis=1) == y) > 0.9


def test_fit_incremental_refuses_unusable_chunks(client):
    X, y, Xd, yd = _xor_blocks()
    masked = Xd[Xd[:, 0] > 0]  # boolean indexing: row counts unknown until computed
    with pytest.raises(ChunkError, match="unknown chunk sizes.*compute_chunk_sizes"):
        fdask.fit_incremental(_net(n_in=2), masked, yd)
    with pytest.raises(ChunkError, match="not aligned"):
        fdask.fit_incremental(_net(n_in=2), Xd, yd.rechunk(150))
    with pytest.raises(ChunkError, match="rows"):
        fdask.fit_incremental(_net(n_in=2), Xd, y[:-1])
    with pytest.raises(ArgumentError, match="epochs"):
        fdask.fit_incremental(_net(n_in=2), Xd, yd, epochs=0)
    with pytest.raises(ArgumentTypeError, match="partial_fit"):
        fdask.fit_incremental(object(), Xd, yd)


# --------------------------------------------------------------------------- search
def test_grid_search_runs_on_the_cluster(client):
    import joblib
    from sklearn.model_selection import GridSearchCV

    from fusenn.sklearn import MLPClassifier

    X, y = fn.datasets.load_digits()
    X, y = X[:400], y[:400]
    grid = {"hidden_layer_sizes": [(16,), (32,)], "alpha": [1e-4, 1e-1]}
    make = lambda: GridSearchCV(MLPClassifier(solver="lbfgs", max_iter=15, random_state=0),  # noqa
                                grid, cv=2)
    here = make().fit(X, y)
    with get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        there = make().fit(X, y)
    assert {task["worker"] for task in stream.data}  # the fits ran as tasks on the workers
    assert there.best_params_ == here.best_params_
    np.testing.assert_allclose(there.cv_results_["mean_test_score"],
                               here.cv_results_["mean_test_score"])


# --------------------------------------------------------------------------- no cluster
def test_the_examples_run_on_the_local_scheduler():
    """Without a client, the model goes in the graph and Dask's local scheduler runs it (in a
    fresh process, away from this module's cluster): the docstrings' examples."""
    code = ("import doctest, sys, fusenn.dask\n"
            "failed, tried = doctest.testmod(fusenn.dask)\n"
            "sys.exit(1 if failed or tried < 8 else 0)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]


# --------------------------------------------------------------------------- the extra
def test_the_module_is_an_attribute_loaded_on_first_use():
    assert fn.dask is fdask
    out = subprocess.run([sys.executable, "-c", "import sys, fusenn; from fusenn import *; "
                          "print('distributed' in sys.modules)"], capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_without_dask_the_error_names_the_extra():
    code = ("import sys; sys.modules['distributed'] = None\n"
            "import fusenn.errors\n"
            "try:\n    import fusenn.dask\n"
            "except fusenn.errors.MissingDependencyError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert "pip install 'fusenn[dask]'" in out.stdout, out.stderr[-2000:]
