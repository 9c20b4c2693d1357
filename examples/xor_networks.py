"""XOR with one hidden layer: the weights set by hand, and the weights learnt.

By hand (the notes' construction), with step units: hidden unit 1 is OR
(``x1 + x2 - 0.5 >= 0``), hidden unit 2 is AND (``x1 + x2 - 1.5 >= 0``), and the output fires
for "OR and not AND" (``h1 - 2 h2 - 0.5 >= 0``). Learnt: a 2-8-2 tanh network trained by
backpropagation with Adam. Both carve the plane into the regions XOR needs, but differently:
the hand-set network with straight lines, the trained one with smooth curves.

    python examples/xor_networks.py OUTDIR      # writes OUTDIR/xor_networks.png
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


def hand_set_network():
    """The 2-2-1 step network of the notes, weights written in."""
    model = fn.Sequential([Dense(2, 2, "step"), Dense(2, 1, "step")], dtype=np.float64,
                          task="binary")
    model.set_weights([np.array([[1.0, 1.0], [1.0, 1.0]]), np.array([-0.5, -1.5]),  # OR, AND
                       np.array([[1.0], [-2.0]]), np.array([-0.5])])  # OR and not AND
    return model


def trained_network(X, y):
    model = fn.Sequential([Dense(2, 8, "tanh"), Dense(8, 2)], random_state=0)
    history = fn.Trainer(model, optimizer=fn.optim.Adam(lr=0.05), batch_size=4,
                         random_state=0).fit(X, y, epochs=150)
    return model, history


def main(argv=None):
    """Build both networks, draw them into ``OUTDIR``; return what the figure shows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="folder for the figure (created if missing)")
    outdir = parser.parse_args(argv).outdir
    os.makedirs(outdir, exist_ok=True)

    X, y = fn.datasets.xor()
    by_hand = hand_set_network()
    learnt, history = trained_network(X, y)

    fig, axes = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
    fn.plot.decision_boundary(by_hand, X, y, ax=axes[0])
    axes[0].set_title("set by hand: 2-2-1 step units (OR, AND)", fontsize=10)
    fn.plot.decision_boundary(learnt, X, y, ax=axes[1])
    axes[1].set_title("trained: 2-8-2 tanh, Adam, 150 epochs", fontsize=10)
    fn.plot.history(history, ax=axes[2], keys="loss")
    axes[2].set_title("training loss of the trained network", fontsize=10)
    path = fn.plot.save(fig, os.path.join(outdir, "xor_networks.png"))
    plt.close(fig)
    return {"figure": path, "hand_set_accuracy": float(np.mean(by_hand.predict(X) == y)),
            "trained_accuracy": float(np.mean(learnt.predict(X) == y)),
            "final_loss": history["loss"][-1]}


if __name__ == "__main__":
    print(main())
