"""Helpers shared by the tests: where the shared data lives, and central finite differences
(the check of every analytic gradient in the suite)."""
from pathlib import Path

import numpy as np

#: ../shared/data beside the repository (MNIST test set, UCI 8x8 digits)
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def numeric_grad(f, x, eps=1e-6):
    """Central finite differences of scalar f wrt array x (modified in place, restored)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g
