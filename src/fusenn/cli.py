"""The ``fusenn`` command: train an MLP, predict with a saved one, show the installation.

::

    fusenn info                          # version, backends (and why one is missing), threads
    fusenn train                         # an MLP on the embedded 8x8 digits, held-out fifth
    fusenn train --mnist DIR             # MNIST IDX files (train-* if present, else t10k)
    fusenn train --data FILE.csv|.npz    # your features and integer labels
    fusenn train --save model.npz        # ... and keep the trained model
    fusenn predict model.npz DATA        # one prediction per line
    fusenn bench                         # one training epoch on every path and peer
    fusenn bench --what predict|kernels  # prediction throughput, or the kernels
    fusenn bench --what sklearn|keras    # a face against the library it replaces
    fusenn plot activations [NAMES] -o F # activations and derivatives drawn (the plot extra)
    fusenn train --plot FILE.png         # ... and draw the run's curves and confusion matrix
    fusenn export model.npz model.onnx   # the saved model as an ONNX graph (the onnx extra)

It is also ``python -m fusenn``. Every failure a user can cause (a missing file, a bad option,
malformed data, a model file fusenn refuses) ends with one line on stderr,
``fusenn: error: ...``, and a non-zero exit status (2 for a bad command line, 1 otherwise),
never a traceback.

Data files for ``--data`` and ``predict``: a CSV of numbers, one sample per row, the label in
the last column (an optional header line is skipped; ``#`` starts a comment; ``.gz`` is read
compressed), or an NPZ archive with arrays ``X`` (n, features) and ``y`` (n,). Labels are
class indices 0, 1, 2, ... For ``predict`` the label column (or ``y``) is optional: when it is
there the accuracy is printed too.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import zlib
from typing import Any, Callable, NamedTuple, NoReturn, Sequence

PROG = "fusenn"
#: Default learning rate per optimiser (``--lr`` overrides; an optimiser of fusenn.optim that
#: is not here starts from its own default).
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "rmsprop": 1e-3, "adagrad": 0.05}
DEFAULT_SGD_MOMENTUM = 0.9
#: MNIST directories holding only the t10k test set: first images train, the last test.
MNIST_T10K_TEST = 2000


class UsageError(Exception):
    """A bad command line (exit status 2).

    Examples
    --------
    >>> main(["no-such-command"])
    2
    """


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line raises UsageError (one line) instead of printing the
    usage block and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------------------------
# Argument types
# --------------------------------------------------------------------------------------------

def _number_type(convert: Any, ok: Any, expected: Any) -> Any:
    """An argparse type: ``convert(text)``, accepted when ``ok(value)``, else an error that
    says what was ``expected``."""
    def parse(text: Any) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value
    return parse


_positive_int = _number_type(int, lambda v: v >= 1, "a positive integer")
_nonnegative_int = _number_type(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _number_type(float, lambda v: 0 < v < float("inf"), "a positive number")
_fraction = _number_type(float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")


def _open_fraction(text: Any) -> Any:
    value = _fraction(text)
    if value == 0.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def _test_size(text: Any) -> Any:
    """A fraction in (0, 1) or a number of samples."""
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:
        pass
    try:
        return _open_fraction(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected a fraction in (0, 1) or a number of samples, got {text!r}") from None


def _hidden(text: Any) -> Any:
    """``"128,64"`` -> (128, 64); ``""`` or ``"none"`` -> () (no hidden layer)."""
    text = text.strip()
    if text.lower() in ("", "none", "0"):
        return ()
    sizes = []
    for part in text.split(","):
        try:
            sizes.append(_positive_int(part.strip()))
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated positive layer sizes such as 128,64, got "
                f"{text!r}") from None
    return tuple(sizes)


# --------------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------------

def build_parser() -> Any:
    """The argument parser of the ``fusenn`` command: one subcommand per :data:`COMMANDS`."""
    from ._version import __version__

    parser = _Parser(prog=PROG, description="fusenn: fast, readable multi-layer perceptrons "
                                            "on the CPU.")
    parser.add_argument("--version", action="version", version=f"fusenn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, command in COMMANDS.items():
        command.add_parser(sub, name)
    return parser


def _add_backend_option(parser: Any, default: Any) -> None:
    """``--backend``: ``auto`` or a name of fusenn.backends.NAMES; ``default`` says what an
    absent option means."""
    from . import backends

    parser.add_argument("--backend", default=None, type=str.lower,
                        choices=("auto", *backends.NAMES),
                        help=f"kernel backend (default: {default})")


def _info_parser(sub: Any, name: Any) -> Any:
    return sub.add_parser(name, help="show the version, backends, threads, BLAS and OpenMP",
                          description="Show what this installation of fusenn runs on: "
                                      "version, available backends (and why any is missing), "
                                      "threads, BLAS and OpenMP thread pools.")


def _train_parser(sub: Any, name: Any) -> Any:
    from . import optim

    t = sub.add_parser(
        name, help="train an MLP (on the embedded 8x8 digits by default)",
        description="Train a multi-layer perceptron (softmax cross-entropy) and report its "
                    "test accuracy, precision/recall/F1 per class, the confusion matrix and the "
                    "time per epoch. Without --mnist or --data it trains on the 8x8 digits "
                    "shipped with fusenn, holding out a stratified fifth for testing.")
    src = t.add_mutually_exclusive_group()
    src.add_argument("--mnist", metavar="DIR",
                     help="a directory of MNIST IDX files: its train-* files when present "
                          "(tested on its t10k-* files if any), else the t10k test set, whose "
                          f"last {MNIST_T10K_TEST} images are held out for testing")
    src.add_argument("--data", metavar="FILE",
                     help="a CSV (label in the last column) or NPZ (arrays X and y) file")
    t.add_argument("--test-size", type=_test_size, default=None, metavar="F",
                   help="held-out test fraction in (0, 1), or a number of samples "
                        "(default 0.2; for an MNIST directory with only t10k files, "
                        f"{MNIST_T10K_TEST})")
    t.add_argument("--hidden", type=_hidden, default=(128, 64), metavar="SIZES",
                   help="hidden layer sizes, comma-separated (default 128,64; 'none' for "
                        "none)")
    t.add_argument("--activation", default="relu",
                   help="hidden activation, any name from fusenn.activations.names() "
                        "(default relu)")
    t.add_argument("--optimizer", default="adam", type=str.lower, choices=optim.names(),
                   help="optimiser (default adam)")
    t.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (default: " + ", ".join(
                       f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")")
    t.add_argument("--momentum", type=_fraction, default=None,
                   help=f"SGD momentum in [0, 1) (default {DEFAULT_SGD_MOMENTUM})")
    t.add_argument("--epochs", type=_positive_int, default=20, help="epochs (default 20)")
    t.add_argument("--batch-size", type=_positive_int, default=32,
                   help="mini-batch size (default 32)")
    _add_backend_option(t, "FUSENN_BACKEND, else auto: the fastest available")
    t.add_argument("--threads", type=_positive_int, default=None,
                   help="threads for BLAS, OpenMP and Numba (default: FUSENN_NUM_THREADS or "
                        "fusenn's choice)")
    t.add_argument("--seed", type=_nonnegative_int, default=0,
                   help="random seed for the split, the initial weights and the shuffling "
                        "(default 0)")
    t.add_argument("--early-stopping", type=_positive_int, default=None, metavar="PATIENCE",
                   help="hold out --validation-split of the training data and stop when its "
                        "loss has not improved for PATIENCE epochs (best weights kept)")
    t.add_argument("--validation-split", type=_open_fraction, default=0.1, metavar="F",
                   help="validation fraction of the training data for --early-stopping "
                        "(default 0.1)")
    t.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                   help="floating-point type (default float32)")
    t.add_argument("--save", metavar="PATH", help="save the trained model to PATH (.npz)")
    t.add_argument("--quiet", "-q", action="store_true",
                   help="no progress or tables: print only the test accuracy")
    t.add_argument("--plot", metavar="FILE",
                   help="draw the loss and accuracy per epoch and the test confusion matrix "
                        "into FILE (.png, .svg, .pdf; needs pip install 'fusenn[plot]')")
    return t


def _predict_parser(sub: Any, name: Any) -> Any:
    p = sub.add_parser(
        name, help="predict with a saved model",
        description="Predict with a model saved by 'fusenn train --save' (or model.save). "
                    "DATA is a CSV (one sample per row, optionally followed by its label) or "
                    "an NPZ with array X (and optionally y). Predictions go to stdout, one per "
                    "line, or to --output; when DATA holds labels the accuracy is printed on "
                    "stderr.")
    p.add_argument("model", metavar="MODEL", help="a saved model (.npz)")
    p.add_argument("data", metavar="DATA", help="a CSV or NPZ file of samples")
    p.add_argument("--output", "-o", metavar="FILE", help="write the predictions to FILE")
    p.add_argument("--proba", action="store_true",
                   help="print class probabilities (comma-separated) instead of labels")
    _add_backend_option(p, "FUSENN_BACKEND, else auto")
    return p


def _bench_parser(sub: Any, name: Any) -> Any:
    from . import bench

    def listed(names: Any) -> Any:
        return ", ".join(names)

    peers = listed(peer.title for peer in bench.peers("train"))
    paths = "; ".join(
        f"{listed(bench.paths(what))} for {what}" for what in bench.WHAT)
    b = sub.add_parser(
        name, help="time training, prediction or the kernels on every path and peer",
        description="Time fusenn's paths against each other and the installed peers, and print "
                    "one table. --what train (the default): one epoch of SGD with softmax "
                    "cross-entropy on the configurations of DESIGN.md for every available "
                    f"fusenn backend and every installed peer ({peers}), in samples per "
                    f"second. --what predict: the forward pass of the {bench.PREDICT_CONFIG} "
                    f"network over {bench.PREDICT_ROWS:,} rows (model.predict; PyTorch under "
                    "torch.no_grad(); ONNX Runtime on the graph fusenn.onnx exports), in rows "
                    "per second. Both run each path in its own "
                    "process and give the ratios to fusenn's NumPy reference and to PyTorch. "
                    "--what kernels: the kernel contract (fused dense forward and backward, "
                    "activations, softmax, logsumexp, softmax cross-entropy, optimiser "
                    "updates) on every backend and the unfused NumPy dense forward, in one "
                    "process, in time per call with the ratio to the NumPy reference. "
                    "--what sklearn: " + bench.FACES["sklearn"].title + " (tasks: " +
                    listed(bench.SKLEARN_TASKS) + "; MNIST from --mnist, $MNIST_DIR or "
                    "../shared/data, else the embedded 8x8 digits). --what keras: " +
                    bench.FACES["keras"].title + " (tasks: " + listed(bench.KERAS_SCRIPTS) +
                    "); both time each row in its own process, with the test accuracy and the "
                    "ratio to the library replaced.")
    b.add_argument("--what", default="train", type=str.lower, choices=bench.WHAT,
                   help="what to time (default train)")
    b.add_argument("--configs", default=None,
                   help="comma-separated configurations, for " + ", ".join(
                       bench.DEFAULT_CONFIGS) + " (default: " + "; ".join(
                       f"{listed(configs)} for {what}"
                       for what, configs in bench.DEFAULT_CONFIGS.items()) + "), or tasks, "
                        "for " + " and ".join(bench.FACES) + " (default: " + "; ".join(
                       f"{listed(face.tasks)} for {what}"
                       for what, face in bench.FACES.items()) + ")")
    b.add_argument("--paths", default=None,
                   help=f"comma-separated paths to time (default all: {paths})")
    b.add_argument("--repeat", type=_positive_int, default=None,
                   help="timings per path (and round); the best is reported (default "
                        f"{bench.training.REPEAT} epochs or predictions; "
                        f"{bench.kernels.REPEAT} loops of calls for kernels; " + "; ".join(
                            f"{face.repeat} runs of each row, in turns, for {what}"
                            for what, face in bench.FACES.items()) + ")")
    b.add_argument("--rounds", type=_positive_int, default=None,
                   help="rounds over all paths, each path in a fresh process, for train and "
                        f"predict (default {bench.training.ROUNDS})")
    b.add_argument("--rows", type=_positive_int, default=None,
                   help=f"rows predicted, for predict (default {bench.PREDICT_ROWS:,})")
    b.add_argument("--small", action="store_true", default=None,
                   help="tiny sizes, to check that it runs (for " + " and ".join(bench.FACES) +
                        ": 256 samples and 2 epochs for sklearn, " + ", ".join(
                            f"{n} epoch{'s' if n != 1 else ''} of {task}"
                            for task, n in bench.KERAS_SMALL_EPOCHS.items()) + " for keras)")
    b.add_argument("--mnist", metavar="DIR", default=None,
                   help="the directory of MNIST's t10k files, for " + " and ".join(bench.FACES) +
                        " (default: $MNIST_DIR, else ../shared/data)")
    b.add_argument("--threads", type=_positive_int, default=None,
                   help="threads for every path (default: FUSENN_NUM_THREADS or all cores)")
    return b


def _export_parser(sub: Any, name: Any) -> Any:
    e = sub.add_parser(
        name, help="write a saved model as an ONNX graph (needs pip install 'fusenn[onnx]')",
        description="Write a model saved by 'fusenn train --save' (or model.save) as a "
                    "standard ONNX graph that ONNX Runtime and other ONNX engines run: input "
                    "X (N, features), output the class probabilities of a classifier "
                    "(predict_proba) or the values of a regressor (predict). The file is "
                    "written atomically.")
    e.add_argument("model", metavar="MODEL", help="a saved model (.npz)")
    e.add_argument("output", metavar="OUTPUT", help="the ONNX file to write (.onnx)")
    e.add_argument("--opset", type=_positive_int, default=None, metavar="N",
                   help="ONNX opset to write (default 17; 13 or newer)")
    return e


def _plot_parser(sub: Any, name: Any) -> Any:
    g = sub.add_parser(
        name, help="draw pictures (needs pip install 'fusenn[plot]')",
        description="Draw what the course notes draw, into an image file.")
    what = g.add_subparsers(dest="what", metavar="WHAT", parser_class=_Parser)
    ga = what.add_parser(
        "activations", help="activation functions and their derivatives",
        description="Draw each activation and its derivative (dashed), one panel each; "
                    "without NAMES, the whole catalogue.")
    ga.add_argument("names", nargs="*", metavar="NAME",
                    help="activation names (default: all of them)")
    ga.add_argument("--output", "-o", metavar="FILE", required=True,
                    help="the image to write (.png, .svg, .pdf, ...)")
    return g


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------

def _stratify_ok(y: Any) -> Any:
    """Whether every class present has the 2 samples a stratified split needs."""
    import numpy as np

    counts = np.bincount(y)
    return bool(np.all(counts[counts > 0] >= 2))


def load_training_data(args: argparse.Namespace, say: Callable[[str], Any]) -> Any:
    """``(name, X_train, X_test, y_train, y_test)`` as the options ask.

    Parameters
    ----------
    args : argparse.Namespace
        ``fusenn train``'s options (``--data``, ``--mnist``, ``--test-size``, ...).
    say : callable
        Prints a progress line (or nothing, with ``--quiet``).

    Returns
    -------
    tuple
        The data set's name and the train/test split.

    Raises
    ------
    UsageError, FormatError, FileNotFoundError
        Options or files that cannot be used.
    """
    import numpy as np

    from . import datasets
    from .errors import FormatError

    dtype = np.dtype(args.dtype)
    if args.mnist is not None:
        files = datasets.find_mnist(args.mnist)
        X, y = datasets.load_mnist(files.images, labels=files.labels, dtype=dtype)
        name = f"MNIST {files.kind} ({files.images.parent})"
        if files.kind == "train" and args.test_size is None:
            try:
                test = datasets.find_mnist(args.mnist, kind="t10k")
            except FileNotFoundError:
                test = None
            if test is not None:
                Xte, yte = datasets.load_mnist(test.images, labels=test.labels, dtype=dtype)
                return name + ", tested on t10k", X, Xte, y, yte
        size = args.test_size if args.test_size is not None else (
            MNIST_T10K_TEST if files.kind == "t10k" else 0.2)
        Xtr, Xte, ytr, yte = datasets.train_test_split(X, y, test_size=size, shuffle=False)
        return name + f", last {len(yte)} held out", Xtr, Xte, ytr, yte

    size = 0.2 if args.test_size is None else args.test_size
    if args.data is not None:
        X, y = datasets.load_table(args.data, dtype=dtype)
        if len(y) < 2:
            raise FormatError(f"{args.data}: needs at least 2 samples to train and test")
        name = os.fspath(args.data)
    else:
        X, y = datasets.load_digits(dtype=dtype)
        name = "UCI 8x8 digits (embedded)"
    stratify = _stratify_ok(y)
    if not stratify:
        say("note: a class has a single sample, so the test split is not stratified")
    Xtr, Xte, ytr, yte = datasets.train_test_split(X, y, test_size=size,
                                                   random_state=args.seed, stratify=stratify)
    what = f"{size * 100:g} % of the samples" if isinstance(size, float) else f"{size} samples"
    how = " (stratified)" if stratify else ""
    return f"{name}, {what} held out{how}", Xtr, Xte, ytr, yte


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------

def format_confusion_matrix(cm: Any, labels: Any) -> str:
    """Rows: true class, columns: predicted class, with the labels as headers.

    Parameters
    ----------
    cm : ndarray of int, shape (k, k)
        The confusion matrix (:func:`fusenn.metrics.confusion_matrix`).
    labels : sequence of length k
        The class labels, in the matrix's order.

    Returns
    -------
    str
        The table, one line per true class.

    Examples
    --------
    >>> import numpy as np
    >>> print(format_confusion_matrix(np.array([[2, 0], [1, 3]]), [0, 1]))
          0  1
       +------
     0 |  2  0
     1 |  1  3
    """
    labels = [str(v) for v in labels]
    width = max(max(len(v) for v in labels), len(str(int(cm.max()))) if cm.size else 1) + 1
    head = " " * (width + 2) + "".join(v.rjust(width + 1) for v in labels)
    rows = [f"{lab.rjust(width)} |" + "".join(str(int(c)).rjust(width + 1) for c in row)
            for lab, row in zip(labels, cm)]
    return "\n".join([head, " " * (width + 1) + "+" + "-" * ((width + 1) * len(labels))] + rows)


def _make_timer() -> Any:
    from .callbacks import Callback

    class EpochTimer(Callback):
        """Wall time of every epoch (including the per-epoch evaluation)."""

        def on_train_begin(self, logs: Any = None) -> None:
            self.times: list[float] = []

        def on_epoch_begin(self, epoch: Any, logs: Any = None) -> None:
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch: Any, logs: Any = None) -> None:
            self.times.append(time.perf_counter() - self._t0)

    return EpochTimer()


# --------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------

def cmd_info(args: argparse.Namespace) -> int:
    """``fusenn info``: print :func:`fusenn.show_config`'s report.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``fusenn info`` (see ``fusenn info --help``).

    Returns
    -------
    int
        The exit status (0 on success).

    Raises
    ------
    UsageError
        Options that do not fit together (:func:`main` prints it and returns 2).
    """
    from .config import show_config

    show_config()
    return 0


def _build_model(args: Any, n_in: Any, n_classes: Any) -> Any:
    import fusenn as fn

    act = fn.activations.get(args.activation)
    widths = [n_in, *args.hidden]
    layers = [fn.layers.Dense(a, b, act) for a, b in zip(widths, widths[1:])]
    layers.append(fn.layers.Dense(widths[-1], n_classes, "softmax"))
    return fn.Sequential(layers, dtype=args.dtype, random_state=args.seed, task="multiclass")


def _make_optimizer(args: Any) -> Any:
    from . import optim

    lr = DEFAULT_LR.get(args.optimizer) if args.lr is None else args.lr
    params: dict[str, Any] = {} if lr is None else {"lr": lr}
    if args.optimizer == "sgd":
        momentum = DEFAULT_SGD_MOMENTUM if args.momentum is None else args.momentum
        return optim.SGD(momentum=momentum, **params)
    if args.momentum is not None:
        raise UsageError(f"--momentum applies to --optimizer sgd only, not {args.optimizer}")
    return optim.get(args.optimizer, **params)


def _check_writable(directory: Any, path: Any) -> None:
    """Fail before training when ``directory`` cannot take the file ``path`` (read-only
    directory or file system, no permission): a temporary file is made there and removed."""
    import tempfile

    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise OSError(exc.errno, f"cannot save to {path}: {exc.strerror or exc}") from None


def cmd_train(args: argparse.Namespace) -> int:
    """``fusenn train``: train a network on the digits, MNIST or a table and report it.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``fusenn train`` (see ``fusenn train --help``).

    Returns
    -------
    int
        The exit status (0 on success).

    Raises
    ------
    UsageError
        Options that do not fit together (:func:`main` prints it and returns 2).
    """
    import numpy as np

    import fusenn as fn
    from . import metrics

    quiet = args.quiet

    def say(*parts: Any) -> None:
        if not quiet:
            print(*parts, flush=True)

    # Bad settings fail before any data is read or any time is spent training.
    fn.activations.get(args.activation)
    optimizer = _make_optimizer(args)
    if args.save is not None:
        target = os.path.dirname(os.path.abspath(args.save))
        if os.path.isdir(args.save) or not os.path.isdir(target):
            raise FileNotFoundError(f"cannot save to {args.save}: "
                                    + ("it is a directory" if os.path.isdir(args.save)
                                       else f"directory {target} does not exist"))
        _check_writable(target, args.save)
    if getattr(args, "data", None) is not None and os.path.exists(args.data) \
            and not os.path.isfile(args.data):
        # a device (/dev/zero), a FIFO or a directory would be read without end or not at all
        raise fn.errors.FormatError(f"{args.data}: not a regular file")
    if args.plot is not None:  # a missing matplotlib or a bad file name fails before training
        from . import plot as _plot

        _plot.check_output_path(args.plot)
    if args.threads is not None:
        fn.set_num_threads(args.threads)
    choice = args.backend or fn.get_backend()
    with fn.use_backend(choice):
        backend = fn.backends.resolve()
        name, Xtr, Xte, ytr, yte = load_training_data(args, say)
        n_classes = int(max(ytr.max(), yte.max())) + 1
        n_samples = len(ytr) + len(yte)
        if n_classes > n_samples:
            # labels number the classes 0..K-1: a label beyond the sample count is a typo or
            # an identifier, and would build (and train) an output layer of that many units
            raise fn.errors.FormatError(
                f"{name}: label {n_classes - 1} among {n_samples} samples; labels must number "
                f"the classes 0..K-1 (at most one class per sample)")
        if n_classes < 2:
            raise fn.errors.FormatError(f"{name}: needs at least 2 classes, all labels are 0")
        validation = None
        if args.early_stopping is not None:
            stratify = _stratify_ok(ytr)
            Xtr, Xv, ytr, yv = fn.datasets.train_test_split(
                Xtr, ytr, test_size=args.validation_split, random_state=args.seed,
                stratify=stratify)
            validation = (Xv, yv)
        model = _build_model(args, Xtr.shape[1], n_classes)

        say(f"data: {name}")
        say(f"      {len(ytr)} training, " + (f"{len(validation[1])} validation, "
                                              if validation else "")
            + f"{len(yte)} test samples; {Xtr.shape[1]} features, {n_classes} classes")
        say(f"model: {'-'.join(str(w) for w in [Xtr.shape[1], *args.hidden, n_classes])} "
            f"({args.activation} hidden, softmax output), {model.n_params:,} parameters, "
            f"{args.dtype}")
        say(f"training: {optimizer!r}, batch size {args.batch_size}, {args.epochs} epoch"
            f"{'s' * (args.epochs != 1)}, "
            f"seed {args.seed}, backend {choice}"
            + (f" -> {backend}" if choice == "auto" else ""))

        timer = _make_timer()
        callbacks = [timer]
        stopper = None
        if args.early_stopping is not None:
            stopper = fn.callbacks.EarlyStopping(monitor="val_loss",
                                                 patience=args.early_stopping,
                                                 restore_best_weights=True)
            callbacks.append(stopper)
        verbose = 0 if quiet else (1 if sys.stdout.isatty() else 2)
        trainer = fn.Trainer(model, loss="cross_entropy", optimizer=optimizer,
                             batch_size=args.batch_size, shuffle=True, random_state=args.seed,
                             callbacks=callbacks, verbose=verbose)
        history = trainer.fit(Xtr, ytr, epochs=args.epochs, validation_data=validation)
        pred = model.predict(Xte)

    correct = int(np.sum(pred == yte))
    acc = correct / len(yte)
    times = np.array(timer.times)
    if not quiet:
        print()
        if stopper is not None and stopper.stopped_epoch is not None:
            print(f"early stopping: stopped after epoch {stopper.stopped_epoch + 1}; kept the "
                  f"weights of epoch {(stopper.best_epoch or 0) + 1} (val_loss {stopper.best:.4f})")
        print(f"path: {trainer.last_path}")
        print(f"time: {times.sum():.2f} s for {len(times)} epochs, {times.mean():.3f} s per "
              f"epoch")
    print(f"test accuracy: {acc:.4f} ({correct}/{len(yte)})", flush=True)
    if not quiet:
        labels = np.union1d(yte, pred)
        print()
        print("per class:")
        print(metrics.classification_report(yte, pred, labels=labels))
        print()
        print("confusion matrix (rows: true class, columns: predicted class):")
        print(format_confusion_matrix(metrics.confusion_matrix(yte, pred, labels=labels),
                                      labels.tolist()))
    if args.save is not None:
        model.save(args.save)
        print(f"model saved to {args.save}")
    if args.plot is not None:
        _save_plot(lambda: _plot.report(history, yte, pred), args.plot)
        print(f"plot saved to {args.plot}")
    return 0


def _save_plot(draw: Any, path: Any) -> None:
    """Draw a figure with ``draw()`` and write it to ``path``; the figure is closed after."""
    from . import plot
    import matplotlib.pyplot as plt

    fig = draw()
    fig = getattr(fig, "figure", fig)
    try:
        plot.save(fig, path)
    finally:
        plt.close(fig)


def cmd_plot(args: argparse.Namespace) -> int:
    """``fusenn plot``: draw activations (and their derivatives) to a file.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``fusenn plot`` (see ``fusenn plot --help``).

    Returns
    -------
    int
        The exit status (0 on success).

    Raises
    ------
    UsageError
        Options that do not fit together (:func:`main` prints it and returns 2).
    """
    if args.what is None:
        raise UsageError(f"choose what to plot: activations (see '{PROG} plot --help')")
    from . import plot

    plot.check_output_path(args.output)
    _save_plot(lambda: plot.activation(args.names or "all"), args.output)
    print(f"plot saved to {args.output}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """``fusenn predict``: label the rows of a file with a saved model.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``fusenn predict`` (see ``fusenn predict --help``).

    Returns
    -------
    int
        The exit status (0 on success).

    Raises
    ------
    UsageError
        Options that do not fit together (:func:`main` prints it and returns 2).
    """
    import numpy as np

    import fusenn as fn
    from .errors import FormatError

    model = fn.load(args.model)
    table, y = fn.datasets.read_table(args.data)
    if y is not None:
        X = table
        if X.shape[1] != model.n_in:
            raise FormatError(f"{args.data}: X has {X.shape[1]} features, the model expects "
                              f"{model.n_in}")
    elif table.shape[1] == model.n_in:
        X, y = table, None
    elif table.shape[1] == model.n_in + 1:
        X, y = table[:, :-1], table[:, -1]
    else:
        raise FormatError(f"{args.data}: {table.shape[1]} columns, but the model expects "
                          f"{model.n_in} features (optionally followed by a label)")
    classifier = model.is_classifier()
    if args.proba and not classifier:
        raise UsageError("--proba needs a classifier; this model is a regressor")
    with fn.use_backend(args.backend or fn.get_backend()):
        if args.proba:
            out = model.predict_proba(X, batch_size=4096)
        else:
            out = model.predict(X, batch_size=4096)

    if out.ndim == 1:
        lines = [str(v) for v in out.tolist()]
    else:
        lines = [",".join(f"{v:.9g}" for v in row) for row in out.tolist()]
    text = "\n".join(lines) + "\n"
    if args.output is not None:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()

    if y is not None:
        if classifier:
            labels = fn.datasets.as_labels(y, args.data, "labels")
            pred = out if not args.proba else np.argmax(out, axis=1)
            if pred.ndim == 1:
                correct = int(np.sum(pred == labels))
                print(f"accuracy: {correct / len(labels):.4f} ({correct}/{len(labels)})",
                      file=sys.stderr)
        elif out.ndim == 2 and out.shape[1] == 1:
            mse = float(np.mean((out[:, 0] - np.asarray(y, dtype=np.float64)) ** 2))
            print(f"mean squared error: {mse:.6g}", file=sys.stderr)
    if args.output is not None:
        print(f"{len(lines)} predictions written to {args.output}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """``fusenn export``: write a saved model as an ONNX graph.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``fusenn export`` (see ``fusenn export --help``).

    Returns
    -------
    int
        The exit status (0 on success).
    """
    import fusenn as fn
    from . import onnx as fn_onnx

    model = fn.load(args.model)
    proto = fn_onnx.export(model, args.output, opset=args.opset)
    out = proto.graph.output[0]
    print(f"{args.model} exported to {args.output} (ONNX opset "
          f"{proto.opset_import[0].version}, input {proto.graph.input[0].name}, output "
          f"{out.name})")
    return 0


#: Options of ``fusenn bench`` that apply to some measurements only.
BENCH_OPTION_MODES = {"configs": ("train", "predict", "sklearn", "keras"),
                      "rounds": ("train", "predict"), "rows": ("predict",),
                      "small": ("sklearn", "keras"), "mnist": ("sklearn", "keras")}


def _bench_paths(text: Any, what: Any, bench: Any) -> Any:
    """``--paths`` as a list, every name checked against the paths of ``what``."""
    known = bench.paths(what)
    paths = [p.strip() for p in text.split(",") if p.strip()]
    if not paths:
        raise UsageError(f"--paths names no path; choose from {', '.join(known)}")
    for p in paths:
        if p not in known:
            raise UsageError(f"unknown path {p!r} for --what {what}; choose from "
                             f"{', '.join(known)}")
    return paths


def cmd_bench(args: argparse.Namespace) -> int:
    """``fusenn bench``: run the benchmarks of :mod:`fusenn.bench` and print the table.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options of ``fusenn bench`` (see ``fusenn bench --help``).

    Returns
    -------
    int
        The exit status (0 on success).

    Raises
    ------
    UsageError
        Options that do not fit together (:func:`main` prints it and returns 2).
    """
    from . import backends, bench

    what = args.what
    for option, modes in BENCH_OPTION_MODES.items():
        if getattr(args, option) is not None and what not in modes:
            raise UsageError(f"--{option} applies to --what {' and '.join(modes)} only, not "
                             f"{what}")
    if args.threads is not None:  # every path reads this (a child process, or this one)
        os.environ["FUSENN_NUM_THREADS"] = str(args.threads)
    paths = None if args.paths is None else _bench_paths(args.paths, what, bench)
    missing = backends.unavailable_reasons()
    if missing:
        print("not available: " + "; ".join(f"{name} ({why})" for name, why in
                                             missing.items()), flush=True)

    if what in bench.FACES:
        return _bench_face(args, what, paths, bench)

    if what == "kernels":
        repeat = bench.kernels.REPEAT if args.repeat is None else args.repeat
        print(f"the kernel contract, one call at a time on fusenn's thread count, best of "
              f"{repeat} timed loops of calls; x numpy-ref: the NumPy backend's time over the "
              f"path's; {bench.peer_versions()}", flush=True)
        bench.run_kernels(include=paths, repeat=repeat)
        return 0

    if args.configs is None:
        configs = list(bench.DEFAULT_CONFIGS[what])
    else:
        configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    try:
        bench.check_configs(configs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    repeat = bench.training.REPEAT if args.repeat is None else args.repeat
    rounds = bench.training.ROUNDS if args.rounds is None else args.rounds
    rows = bench.PREDICT_ROWS if args.rows is None else args.rows
    if what == "train":
        print(f"one epoch of SGD (lr {bench.LR}), softmax cross-entropy, float32; each path in "
              f"its own process, best of {repeat} epochs x {rounds} rounds; "
              f"{bench.peer_versions()}", flush=True)
    else:
        print(f"prediction (forward pass only) of {rows:,} rows of float32: fusenn's "
              f"model.predict, PyTorch's module under torch.no_grad() and ONNX Runtime on the "
              f"exported network, with the same weights and threads; "
              f"each path in its own process, best of {repeat} predictions x {rounds} rounds; "
              f"{bench.peer_versions()}", flush=True)
    bench.run(configs, repeat=repeat, include=paths, rounds=rounds, what=what, rows=rows)
    return 0


def _bench_face(args: argparse.Namespace, what: str, paths: Any, bench: Any) -> int:
    """``fusenn bench --what sklearn|keras``: a face against the library it replaces."""
    face = bench.FACES[what]
    tasks = None
    if args.configs is not None:
        tasks = [c.strip() for c in args.configs.split(",") if c.strip()]
        for task in tasks:
            if task not in face.tasks:
                raise UsageError(f"unknown task {task!r} for --what {what}; choose from "
                                 f"{', '.join(face.tasks)}")
    repeat = face.repeat if args.repeat is None else args.repeat
    mnist = None if args.mnist is None else bench.find_mnist_dir(args.mnist)  # fails first
    from ._threads import get_num_threads
    from ._version import __version__

    libraries = ", ".join(f"{name} {version or 'not installed'}"
                          for name, version in bench.face_versions(what).items())
    print(f"{face.title}; each row in its own process, best of {repeat} runs, the paths taking "
          f"turns{'; small sizes (a check, not a measurement)' if args.small else ''}; "
          f"fusenn {__version__} on {get_num_threads()} threads, {libraries}", flush=True)
    bench.run_face(what, tasks, include=paths, repeat=repeat, small=bool(args.small),
                   mnist_dir=mnist)
    return 0


class Command(NamedTuple):
    """A subcommand: ``add_parser(subparsers, name)`` adds its argument parser, ``run(args)``
    runs it and returns the exit status."""
    add_parser: Callable[..., Any]
    run: Callable[..., Any]


#: Every subcommand of ``fusenn``, in the order of its help.
COMMANDS = {"info": Command(_info_parser, cmd_info), "train": Command(_train_parser, cmd_train),
            "predict": Command(_predict_parser, cmd_predict),
            "bench": Command(_bench_parser, cmd_bench), "plot": Command(_plot_parser, cmd_plot),
            "export": Command(_export_parser, cmd_export)}


def _error_text(exc: Any) -> Any:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.strerror}: {exc.filename}"
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, KeyError):  # str(KeyError) is the repr of its key
        text = f"missing {text}"
    return " ".join(text.split())  # one line


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fusenn`` command with ``argv`` (default ``sys.argv[1:]``); return the exit
    status.

    Parameters
    ----------
    argv : sequence of str or None, default None
        The arguments after the program name.

    Returns
    -------
    int
        0 on success, 1 for an error in fusenn's input (printed as one line), 2 for a bad
        command line.

    Examples
    --------
    >>> main(["plot"])          # a usage error: one line on stderr, status 2
    2
    """
    from .errors import FusennError

    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            raise UsageError(f"choose a command: {', '.join(COMMANDS)} (see '{PROG} --help')")
        status: int = COMMANDS[args.command].run(args)
        return status
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``fusenn predict ... | head``): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (FusennError, OSError, ValueError, MemoryError, EOFError, UnicodeError,
            zlib.error) as exc:  # user faults: bad data, files, settings (corrupt .gz: zlib)
        print(f"{PROG}: error: {_error_text(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: still one line, the traceback only on request
        if os.environ.get("FUSENN_DEBUG"):
            raise
        print(f"{PROG}: internal error: {type(exc).__name__}: {_error_text(exc)} (set "
              f"FUSENN_DEBUG=1 to see the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
