"""The Keras face against Keras 3 on two unchanged Keras scripts: the course notes' XOR
(``xor``: 2-2-1, Adam, 10,000 epochs of the 4 samples) and an MNIST MLP (``mnist``: 784-128-10
ReLU, Adam, 5 epochs of batch 32 on 8,000 images), the scripts of
:data:`fusenn.bench.KERAS_SCRIPTS`.

Each script runs in a process of its own, as written (Keras 3 on its JAX backend, when keras
and jax are installed) or with its imports changed to ``fusenn.keras``; the time of its
``fit`` calls is measured by wrapping ``Sequential.fit``. Targets (issue 14): the XOR script at
>= 100x Keras-JAX, the MNIST script at >= 5x.

``fusenn bench --what keras`` (or ``python benchmarks/test_bench_keras.py``, the same) prints
the side-by-side table.
"""
import importlib.util
import sys

import pytest

from fusenn import bench
from fusenn.cli import main


def keras_available():
    return all(importlib.util.find_spec(m) is not None for m in ("keras", "jax"))


PATHS = ["fusenn.keras"] + (["keras-jax"] if keras_available() else [])


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("task", list(bench.KERAS_SCRIPTS))
def test_keras_script(benchmark, task, path):
    small = benchmark.disabled  # CI only checks that the scripts run
    benchmark.group = f"keras script: {bench.KERAS_SCRIPTS[task]}"
    row = benchmark.pedantic(bench.keras_face_row, args=(task, path, small), rounds=1,
                             iterations=1)
    benchmark.extra_info.update(fit_s=row["seconds"], total_s=row["total_s"], path=path)
    assert 0 < row["seconds"] <= row["total_s"] and 0 <= row["accuracy"] <= 1
    print(f"\n{task} on {path}: fit {row['seconds']:.3f} s, whole script "
          f"{row['total_s']:.3f} s")


if __name__ == "__main__":
    sys.exit(main(["bench", "--what", "keras", *sys.argv[1:]]))
