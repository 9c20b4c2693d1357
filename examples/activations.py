"""The activation catalogue: every function with its derivative (dashed).

Kinks and jumps are drawn as the notes draw them: the curve is cut, open points mark the
one-sided limits and a filled point the value taken there (so relu'(0) = 0).

    python examples/activations.py OUTDIR               # OUTDIR/activations.png, all of them
    python examples/activations.py OUTDIR relu gelu     # only those
"""
import argparse
import os

import matplotlib

matplotlib.use("Agg")  # write files, never open a window
import matplotlib.pyplot as plt  # noqa: E402

import fusenn as fn  # noqa: E402
import fusenn.plot  # noqa: E402,F401


def main(argv=None):
    """Draw the activations into ``OUTDIR``; return the names drawn and the file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", help="folder for the figure (created if missing)")
    parser.add_argument("names", nargs="*", help="activation names (default: all)")
    args = parser.parse_args(argv)
    os.makedirs(args.outdir, exist_ok=True)

    drawn = fn.plot.activation(args.names or "all")
    fig = drawn.figure if args.names and len(args.names) == 1 else drawn
    fig.suptitle("fusenn.activations: f(z) solid, f'(z) dashed")
    path = fn.plot.save(fig, os.path.join(args.outdir, "activations.png"), dpi=80)
    plt.close(fig)
    return {"figure": path, "names": args.names or fn.activations.names()}


if __name__ == "__main__":
    print(main())
