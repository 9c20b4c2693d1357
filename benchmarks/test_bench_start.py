"""Start-up: ``import fusenn``, and the first fit in a fresh process with a cold and a warm
Numba cache (``extra_info`` and the printed line keep both first-epoch times).

Targets (DESIGN.md): ``import fusenn`` under 0.3 s; Numba compilation cached on disk so that a
second process starts fast.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

_IMPORT = "import time; t = time.perf_counter(); import fusenn; print(time.perf_counter() - t)"

_FIRST_FIT = textwrap.dedent("""
    import json, time
    t0 = time.perf_counter()
    import numpy as np
    import fusenn as fn
    from fusenn.layers import Dense
    t_import = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 64)).astype(np.float32)
    y = rng.integers(0, 10, 256)
    model = fn.Sequential([Dense(64, 32, "relu"), Dense(32, 10)], random_state=0)
    trainer = fn.Trainer(model, batch_size=32, random_state=0, metrics=[])
    with fn.use_backend("numba"):
        t1 = time.perf_counter()
        trainer.fit(X, y, epochs=1)
        t_first = time.perf_counter() - t1
        t2 = time.perf_counter()
        trainer.fit(X, y, epochs=1)
        t_second = time.perf_counter() - t2
    print(json.dumps({"import_s": t_import, "first_fit_s": t_first, "second_fit_s": t_second,
                      "path": trainer.last_path}))
""")


def _python(code, **env):
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env},
                         capture_output=True, text=True, check=True, timeout=900)
    return out.stdout.strip().splitlines()[-1]


def test_import_time(benchmark):
    benchmark.group = "start: import fusenn"
    seconds = benchmark.pedantic(lambda: float(_python(_IMPORT)), rounds=3, iterations=1)
    benchmark.extra_info["import_s"] = seconds


def test_numba_cold_and_warm_first_fit(benchmark, tmp_path):
    import fusenn as fn

    if "numba" not in fn.available_backends():
        pytest.skip("numba not available")
    benchmark.group = "start: first fit in a fresh process (numba)"
    cache = str(tmp_path / "numba-cache")
    cold = json.loads(_python(_FIRST_FIT, NUMBA_CACHE_DIR=cache))  # compiles, fills the cache
    warm = benchmark.pedantic(lambda: json.loads(_python(_FIRST_FIT, NUMBA_CACHE_DIR=cache)),
                              rounds=1 if benchmark.disabled else 3, iterations=1)
    assert cold["path"] == warm["path"] == "fast:numba"
    benchmark.extra_info.update({"cold_first_fit_s": cold["first_fit_s"],
                                 "warm_first_fit_s": warm["first_fit_s"],
                                 "steady_fit_s": warm["second_fit_s"],
                                 "import_s": warm["import_s"]})
    print(f"\nnumba first fit: cold {cold['first_fit_s']:.2f} s, warm "
          f"{warm['first_fit_s']:.3f} s, then {warm['second_fit_s'] * 1e3:.2f} ms per fit")
    assert warm["first_fit_s"] < cold["first_fit_s"]
