"""The Keras face against Keras 3 on two unchanged Keras scripts: the course notes' XOR
(``keras_scripts/xor_notes.py``: 2-2-1, Adam, 10,000 epochs of the 4 samples) and an MNIST MLP
(``keras_scripts/mnist_mlp.py``: 784-128-10 ReLU, Adam, 5 epochs of batch 32 on 8,000 images).

Each script runs in a process of its own, as written (Keras 3 on its JAX backend, when keras
and jax are installed) or with its imports changed to ``fusenn.keras``; the time of its
``fit`` call is measured by wrapping ``Sequential.fit``. Targets (issue 14): the XOR script at
>= 100x Keras-JAX, the MNIST script at >= 5x.

Also a script: ``python benchmarks/test_bench_keras.py`` prints the side-by-side table.
"""
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "keras_scripts"
MNIST_DIR = HERE.parents[1] / "shared" / "data"

#: The script's text runs under this driver, which times every ``fit`` of the model class.
_DRIVER = r"""
import json, sys, time
path, module = sys.argv[1], sys.argv[2]
text = open(path).read()
t0 = time.perf_counter()
import importlib
cls = importlib.import_module(module).Sequential
fits = []
original = cls.fit
def timed_fit(self, *args, **kwargs):
    t = time.perf_counter()
    try:
        return original(self, *args, **kwargs)
    finally:
        fits.append(time.perf_counter() - t)
cls.fit = timed_fit
exec(compile(text, path, "exec"), {"__name__": "__main__"})
print(json.dumps({"fit_s": sum(fits), "total_s": time.perf_counter() - t0}))
"""


def swap_imports(text, to):
    """The script with its Keras imports pointed at ``to`` (``fusenn.keras`` or ``keras``)."""
    text = re.sub(r"^import tensorflow as tf\n", "", text, flags=re.M)
    text = text.replace("tensorflow.keras", to)
    return re.sub(r"^from keras(\.| import)", rf"from {to}\1", text, flags=re.M)


def keras_available():
    return importlib.util.find_spec("keras") is not None and \
        importlib.util.find_spec("jax") is not None


def run(script, path, tmp_dir):
    """``{"fit_s", "total_s", "stdout"}`` of ``script`` on ``path`` ("fusenn" or "keras-jax"),
    in a fresh process."""
    to = "fusenn.keras" if path == "fusenn" else "keras"
    text = swap_imports((SCRIPTS / script).read_text(), to)
    src = Path(tmp_dir) / f"{path}-{script}"
    src.write_text(text)
    env = {**os.environ, "MNIST_DIR": str(MNIST_DIR), "KERAS_BACKEND": "jax",
           "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", _DRIVER, str(src), f"{to}.models"], env=env,
                         capture_output=True, text=True, check=True, timeout=1800).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["stdout"] = out
    return result


PATHS = ["fusenn"] + (["keras-jax"] if keras_available() else [])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("script", ["xor_notes.py", "mnist_mlp.py"])
def test_keras_script(benchmark, tmp_path, script, path):
    benchmark.group = f"keras script: {script}"
    result = benchmark.pedantic(run, args=(script, path, tmp_path), rounds=1, iterations=1)
    benchmark.extra_info.update(fit_s=result["fit_s"], total_s=result["total_s"], path=path)
    assert result["fit_s"] > 0
    print(f"\n{script} on {path}: fit {result['fit_s']:.3f} s, whole script "
          f"{result['total_s']:.3f} s")


def main(rounds=3):
    """Print the table: each path's best ``fit`` time of ``rounds`` runs, the paths taking
    turns (so that a burst of load on a shared machine does not land on one path only)."""
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for script in ("xor_notes.py", "mnist_mlp.py"):
            best = {}
            for _ in range(rounds):
                for p in PATHS:
                    fit_s = run(script, p, tmp)["fit_s"]
                    best[p] = min(best.get(p, fit_s), fit_s)
            ratio = best["keras-jax"] / best["fusenn"] if "keras-jax" in best else float("nan")
            rows.append((script, best["fusenn"], best.get("keras-jax", float("nan")), ratio))
    print(f"best of {rounds} runs each, paths alternating")
    print("| script | fusenn.keras fit (s) | Keras 3 + JAX fit (s) | speed-up |")
    print("|---|---|---|---|")
    for script, ours, theirs, ratio in rows:
        print(f"| {script} | {ours:.3f} | {theirs:.3f} | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
