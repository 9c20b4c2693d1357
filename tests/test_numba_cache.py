"""Numba's on-disk cache: a second process loads the kernels instead of compiling them; and
``import fusenn`` neither imports Numba nor compiles anything."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("numba")

# Uses the numba backend's kernels the way a first fit does (a dense layer, the fused loss and
# a whole epoch), then prints each top-level dispatcher's cache statistics as JSON.
_SCRIPT = textwrap.dedent("""
    import json, time
    import numpy as np
    t0 = time.perf_counter()
    from fusenn.backends import _numba as nb
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    W = rng.standard_normal((5, 3)).astype(np.float32)
    b = np.zeros(3, np.float32)
    z = np.empty((8, 3), np.float32); a = np.empty_like(z)
    nb.dense_forward(x, W, b, 7, 0.0, 0.0, z, a)
    labels = rng.integers(0, 3, 8)
    nb.softmax_xent(a, labels, np.empty_like(a))
    widths = np.array([5, 4, 3]); P = 5 * 4 + 4 + 4 * 3 + 3
    flat = rng.standard_normal(P).astype(np.float32)
    nb.train_epoch(flat, np.zeros_like(flat), widths, np.array([6, 0]), np.zeros((2, 2)), x,
                   labels, np.empty((0, 3), np.float32), np.arange(8), 3, 0, 0,
                   np.array([0.1, 0, 0, 0, 0.9, 0.999, 1e-8, 0.9, 0, 0]),
                   np.zeros((2, P), np.float32), np.empty(3))
    seconds = time.perf_counter() - t0
    kernels = {name: getattr(nb, name) for name in ("_dot", "_bias_act_serial", "_xent_serial")}
    kernels["_train_epoch"] = nb._epoch_kernel([6, 0], 0, 0).dispatcher  # this model's own
    stats = {name: [k.stats.cache_hits, k.stats.cache_misses] for name, k in kernels.items()}
    print(json.dumps({"stats": {k: [sum(h.values()), sum(m.values())]
                                for k, (h, m) in stats.items()}, "seconds": seconds}))
""")


def _run(code, env, stderr=None):
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=600, check=True)
    if stderr is not None:
        stderr.append(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_loads_kernels_from_cache(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    stderr = []
    cold = _run(_SCRIPT, env, stderr)
    # the first use compiles for seconds, and says so while it does
    assert "Numba is compiling the training kernel" in stderr[0]
    for name, (hits, misses) in cold["stats"].items():
        assert misses >= 1 and hits == 0, f"{name}: first process should compile: {cold}"
    assert any((tmp_path / "numba-cache").rglob("*.nbi")), "no index written to the cache"
    warm = _run(_SCRIPT, env)
    for name, (hits, misses) in warm["stats"].items():
        assert hits >= 1 and misses == 0, f"{name}: second process recompiled: {warm}"
    assert warm["seconds"] < cold["seconds"]


def test_import_fusenn_does_not_import_numba():
    code = ("import sys, time; t = time.perf_counter(); import fusenn; "
            "dt = time.perf_counter() - t; "
            "print(int('numba' in sys.modules), int('llvmlite' in sys.modules), dt)")
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True,
                         text=True, timeout=120, check=True)
    numba_loaded, llvmlite_loaded, _ = out.stdout.split()
    assert numba_loaded == "0" and llvmlite_loaded == "0", out.stderr[-2000:]
    # asking which backends exist must not import numba either
    code = "import sys, fusenn; fusenn.available_backends(); print(int('numba' in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "0"
