"""The scikit-learn face against scikit-learn itself: same arguments, same data, same numbers.

The tasks are :data:`fusenn.bench.SKLEARN_TASKS` (issue 13's targets in brackets):

* ``mnist``: ``fit`` on the first 8,000 images of the MNIST test set in ``../shared/data``,
  784-100-10 relu, sgd, momentum 0.9, batch 32, 20 epochs; accuracy on the last 2,000
  (fusenn >= 5x scikit-learn);
* ``digits``: ``fit`` on 1,437 of the UCI 8x8 digits, 64-64-10, batch 16, 50 epochs
  (>= 15x);
* ``predict``: ``predict_proba`` of the fitted MNIST network on 100,000 rows (>= 1.5x).

Both estimators get identical arguments and produce the same model (the parity tests in
tests/test_sklearn.py check that), so the ratio of times is the whole story. Under pytest
the rows share one process; ``fusenn bench --what sklearn`` (or ``python
benchmarks/test_bench_sklearn.py``, the same) runs every row in a process of its own, best of
``--repeat``, and prints the table that README.md shows::

    fusenn bench --what sklearn --repeat 3
"""
import sys

import pytest

from fusenn import bench
from fusenn.cli import main


@pytest.mark.parametrize("path", bench.SKLEARN_PATHS)
@pytest.mark.parametrize("task", list(bench.SKLEARN_TASKS))
def test_sklearn_face(benchmark, task, path, versions):
    small = benchmark.disabled
    benchmark.group = f"sklearn-face-{task}"
    benchmark.extra_info.update(versions)
    benchmark.extra_info["dtype"] = "float32"
    row = benchmark.pedantic(bench.sklearn_face_row, args=(task, path, "float32", small),
                             rounds=1 if small else 3, iterations=1)
    benchmark.extra_info.update(accuracy=row["accuracy"], data=row["data"])
    assert row["seconds"] > 0 and 0 <= row["accuracy"] <= 1


if __name__ == "__main__":
    sys.exit(main(["bench", "--what", "sklearn", *sys.argv[1:]]))
