"""The perceptron learns AND and fails on XOR.

Rosenblatt's learning rule finds a separating line for AND in a few epochs; for XOR no line
exists, so it cycles until ``max_iter`` and warns. The figure shows both decision boundaries
and the misclassified samples per epoch.

    python examples/perceptron.py OUTDIR        # writes OUTDIR/perceptron.png
"""
import argparse
import os
import warnings

import matplotlib

matplotlib.use("Agg")  # write files, never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fusenn as fn  # noqa: E402
import fusenn.plot  # noqa: E402,F401
from fusenn.perceptron import ConvergenceWarning  # noqa: E402


def main(argv=None):
    """Train both perceptrons, draw them into ``OUTDIR``; return what the figure shows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="folder for the figure (created if missing)")
    outdir = parser.parse_args(argv).outdir
    os.makedirs(outdir, exist_ok=True)

    X, y_xor = fn.datasets.xor()
    y_and = np.array([0, 0, 0, 1])
    and_unit = fn.Perceptron(max_iter=20).fit(X, y_and)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # expected here
        xor_unit = fn.Perceptron(max_iter=20).fit(X, y_xor)

    fig, axes = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
    fn.plot.decision_boundary(and_unit, X, y_and, ax=axes[0])
    axes[0].set_title(f"AND: converged after {and_unit.n_iter_} epochs", fontsize=10)
    fn.plot.decision_boundary(xor_unit, X, y_xor, ax=axes[1])
    wrong = int(np.sum(xor_unit.predict(X) != y_xor))
    axes[1].set_title(f"XOR: no line works; after {xor_unit.n_iter_} epochs {wrong} of 4 "
                      f"wrong", fontsize=10)
    for unit, name in ((and_unit, "AND"), (xor_unit, "XOR")):
        axes[2].plot(np.arange(1, unit.n_iter_ + 1), unit.errors_, "o-", ms=3, label=name)
    axes[2].set_xlabel("epoch")
    axes[2].set_ylabel("misclassified samples")
    axes[2].set_title("the perceptron learning rule, epoch by epoch", fontsize=10)
    axes[2].legend()
    path = fn.plot.save(fig, os.path.join(outdir, "perceptron.png"))
    plt.close(fig)
    return {"figure": path, "and_converged": and_unit.converged_,
            "xor_converged": xor_unit.converged_, "and_accuracy": and_unit.score(X, y_and),
            "xor_accuracy": xor_unit.score(X, y_xor)}


if __name__ == "__main__":
    print(main())
