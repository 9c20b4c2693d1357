"""Vanishing gradients: a deep sigmoid network against the same network with ReLU and He.

Backpropagation multiplies the error by ``W^T`` and by ``f'(z)`` once per layer. For the
sigmoid ``f' <= 1/4``, so in a 10-layer sigmoid network (Glorot initialisation) the gradient
reaching the first layer is orders of magnitude smaller than at the last: the early layers
hardly learn. With ReLU (``f' = 1`` where active) and He initialisation (variance ``2/n_in``,
which keeps the signal's scale from layer to layer) the norms stay within a small factor.

The left panel shows the per-layer gradient norms at initialisation on a batch of the 8x8
digits; the middle and right panels the same norms during a few epochs of training.

    python examples/vanishing_gradients.py OUTDIR    # writes OUTDIR/vanishing_gradients.png
"""
import argparse
import os

import matplotlib

matplotlib.use("Agg")  # write files, never open a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import fusenn as fn  # noqa: E402
import fusenn.plot  # noqa: E402,F401
from fusenn.layers import Dense  # noqa: E402

DEPTH, WIDTH = 10, 32  # Dense layers, hidden units per layer


def deep_network(activation, init=None, seed=0):
    """64 -> 9 hidden layers of WIDTH -> 10: DEPTH Dense layers."""
    layers = [Dense(64, WIDTH, activation, init=init)]
    layers += [Dense(WIDTH, WIDTH, activation, init=init) for _ in range(DEPTH - 2)]
    layers += [Dense(WIDTH, 10, init=init)]
    return fn.Sequential(layers, dtype=np.float64, random_state=seed)


NETWORKS = {"sigmoid, Glorot": ("sigmoid", None), "ReLU, He": ("relu", "he_normal")}


def main(argv=None):
    """Measure and train both networks, draw them into ``OUTDIR``; return the norms at
    initialisation (first layer first) for each network."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="folder for the figure (created if missing)")
    parser.add_argument("--epochs", type=int, default=5, help="training epochs (default 5)")
    args = parser.parse_args(argv)
    os.makedirs(args.outdir, exist_ok=True)

    X, y = fn.datasets.load_digits()
    batch = slice(0, 256)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), layout="constrained")
    at_init = {}
    for (name, (activation, init)), ax in zip(NETWORKS.items(), axes[1:]):
        model = deep_network(activation, init)
        norms = fn.diagnostics.gradient_norms(model, X[batch], y[batch])
        at_init[name] = norms
        axes[0].semilogy(np.arange(1, DEPTH + 1), norms, "o-", label=name)
        monitor = fn.diagnostics.GradientMonitor(X[batch], y[batch])
        fn.Trainer(model, optimizer=fn.optim.SGD(lr=0.05), random_state=0,
                   callbacks=[monitor]).fit(X, y, epochs=args.epochs)
        fn.plot.gradient_norms(monitor, ax=ax)
        ax.set_title(f"{name}: per layer, while training", fontsize=10)
    axes[0].set_xlabel("layer (1 = next to the input)")
    axes[0].set_ylabel("||dL/dW|| at initialisation")
    ratios = {name: n[-1] / n[0] for name, n in at_init.items()}
    axes[0].set_title("at initialisation; last layer / first layer:\n" + ", ".join(
        f"{name} {r:.3g}x" for name, r in ratios.items()), fontsize=10)
    axes[0].legend()
    path = fn.plot.save(fig, os.path.join(args.outdir, "vanishing_gradients.png"), dpi=80)
    plt.close(fig)
    return {"figure": path, "norms": at_init, "ratios": ratios}


if __name__ == "__main__":
    result = main()
    print({k: v for k, v in result.items() if k != "norms"})
