"""The faces against the libraries they stand in for (``fusenn bench --what sklearn`` and
``--what keras``): the same user code, run once with fusenn and once with the original.

**scikit-learn** (issue 13): ``fusenn.sklearn.MLPClassifier`` against
``sklearn.neural_network.MLPClassifier`` with identical arguments on identical data, three
tasks of :data:`SKLEARN_TASKS`:

=======  =====================================================================  ============
task     what is timed                                                          data
=======  =====================================================================  ============
mnist    ``fit``: 784-100-10 relu, sgd, momentum 0.9, batch 32, 20 epochs       MNIST 8,000
digits   ``fit``: 64-64-10 relu, sgd, momentum 0.9, batch 16, 50 epochs         8x8 digits
predict  ``predict_proba`` of the fitted mnist network on 100,000 rows          MNIST
=======  =====================================================================  ============

MNIST is the t10k set of :func:`find_mnist_dir` (its first 8,000 images to train, the last
2,000 to test); where none is found, the mnist and predict tasks run on the embedded 8x8
digits instead, and each row says which data it used. Both estimators produce the same model
(tests/test_sklearn.py checks that), so the ratio of times is the whole story; the test
accuracies are printed beside them.

**Keras** (issue 14): the scripts of :data:`KERAS_SCRIPTS` (in ``keras_scripts/`` beside this
module, as text: the course notes' XOR and an MNIST MLP, written for Keras), run with their imports
pointed at ``fusenn.keras`` (path ``fusenn.keras``) and, when Keras 3 and JAX are installed,
as written on Keras 3 with ``KERAS_BACKEND=jax`` (path ``keras-jax``). The driver wraps
``Sequential.fit`` to time every ``fit`` call; the whole script's time is kept too.

Every row runs in a Python process of its own, the paths taking turns over ``repeat`` runs (so
that a busy moment of a shared machine falls on every path alike), and the best time is kept.
``small=True`` shrinks every task to seconds (a check that it runs, not a measurement).
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import (Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple,
                    Union)

import numpy as np

from ..errors import ArgumentError

__all__ = ["SklearnTask", "SKLEARN_TASKS", "SKLEARN_PATHS", "KERAS_SCRIPTS", "KERAS_PATHS",
           "KERAS_SCRIPT_DIR", "KERAS_SMALL_EPOCHS", "MNIST_CANDIDATES", "FACES",
           "find_mnist_dir", "load_sklearn_task",
           "sklearn_estimator", "sklearn_face_row", "swap_imports", "keras_script_text",
           "keras_face_row", "face_versions", "run_face", "format_face_table"]

#: The repository's checkout, when fusenn runs from one (``src/fusenn/bench/faces.py``).
_CHECKOUT = Path(__file__).resolve().parents[3]
#: Where MNIST is looked for when no directory is given (after ``$MNIST_DIR``): the shared
#: data folder beside the working directory and beside the checkout.
MNIST_CANDIDATES = (Path("..") / "shared" / "data", _CHECKOUT / ".." / "shared" / "data")


@dataclass(frozen=True)
class SklearnTask:
    """One row of the scikit-learn face: ``params`` are the arguments both ``MLPClassifier``
    get, ``data`` is ``"mnist"`` or ``"digits"``, ``train`` the number of leading samples fitted
    (the rest are the test set), ``predict_rows`` > 0 times ``predict_proba`` on that many rows
    instead of ``fit``.

    Parameters
    ----------
    name : str
        The task's name in the table.
    data : {"mnist", "digits"}
        The data set.
    params : dict
        The arguments of both estimators.
    train : int
        How many leading samples are fitted.
    predict_rows : int, default 0
        When > 0, ``predict_proba`` on this many rows is timed instead of ``fit``.
    """
    name: str
    data: str
    params: Dict[str, Any] = field(hash=False)
    train: int
    predict_rows: int = 0


_MNIST_PARAMS: Dict[str, Any] = dict(
    hidden_layer_sizes=(100,), activation="relu", solver="sgd", momentum=0.9, batch_size=32,
    max_iter=20, learning_rate_init=0.01, random_state=0)
_DIGITS_PARAMS: Dict[str, Any] = dict(
    hidden_layer_sizes=(64,), activation="relu", solver="sgd", momentum=0.9, batch_size=16,
    max_iter=50, learning_rate_init=0.01, random_state=0)
#: The tasks of ``--what sklearn``, by name.
SKLEARN_TASKS = {
    "mnist": SklearnTask("mnist", "mnist", _MNIST_PARAMS, 8000),
    "digits": SklearnTask("digits", "digits", _DIGITS_PARAMS, 1437),
    "predict": SklearnTask("predict", "mnist", _MNIST_PARAMS, 8000, predict_rows=100_000),
}
#: The paths of ``--what sklearn``: the face, then the library it replaces (the reference).
SKLEARN_PATHS = ("fusenn.sklearn", "sklearn")
#: The embedded 8x8 digits' split (1,437 of 1,797 to train), used when MNIST is absent.
DIGITS_TRAIN = 1437

#: The directory of the Keras scripts, shipped with the package as ``<script>.txt`` (data, not
#: modules of fusenn: the MNIST script reads MNIST as it is imported).
KERAS_SCRIPT_DIR = Path(__file__).resolve().parent / "keras_scripts"
#: The scripts of ``--what keras``, by task name.
KERAS_SCRIPTS = {"xor": "xor_notes.py", "mnist": "mnist_mlp.py"}
#: The paths of ``--what keras``: the face, then Keras 3 on JAX (the reference).
KERAS_PATHS = ("fusenn.keras", "keras-jax")
#: Epochs of each script with ``small=True`` (the scripts' own: 10,000 and 5).
KERAS_SMALL_EPOCHS = {"xor": 20, "mnist": 1}


# --------------------------------------------------------------------------- data
def find_mnist_dir(directory: Optional[Union[str, os.PathLike[str]]] = None
                   ) -> Optional[Path]:
    """The directory holding the MNIST t10k files, or None when there is none to be found.

    Parameters
    ----------
    directory : str or path-like, optional
        Look only here; a directory without the files is an error. Otherwise the first of
        ``$MNIST_DIR`` and :data:`MNIST_CANDIDATES` that holds them.

    Returns
    -------
    pathlib.Path or None

    Raises
    ------
    FileNotFoundError
        When ``directory`` is given and does not hold the t10k images and labels.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as empty:
    ...     find_mnist_dir(empty)
    Traceback (most recent call last):
    ...
    FileNotFoundError: no MNIST t10k images file in ...
    """
    from ..datasets import find_mnist

    if directory is not None:
        find_mnist(directory, "t10k")
        return Path(os.fspath(directory))
    env = os.environ.get("MNIST_DIR")
    for candidate in ([Path(env)] if env else []) + list(MNIST_CANDIDATES):
        try:
            find_mnist(candidate, "t10k")
        except (FileNotFoundError, ValueError):
            continue
        return candidate.resolve()
    return None


def load_sklearn_task(task: SklearnTask, dtype: Any = np.float32, small: bool = False,
                      mnist_dir: Optional[Union[str, os.PathLike[str]]] = None
                      ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, str]:
    """The data of a scikit-learn face task.

    Parameters
    ----------
    task : SklearnTask
    dtype : numpy dtype, default float32
    small : bool, default False
        The first 256 training and last 64 test samples only.
    mnist_dir : path-like, optional
        MNIST's directory (see :func:`find_mnist_dir`); None looks for it.

    Returns
    -------
    (X_train, y_train, X_test, y_test, data) : tuple
        ``data`` says which data these are, in words.

    Examples
    --------
    >>> Xtr, ytr, Xte, yte, data = load_sklearn_task(SKLEARN_TASKS["digits"])
    >>> Xtr.shape, Xte.shape, Xtr.dtype.name, data
    ((1437, 64), (360, 64), 'float32', 'embedded 8x8 digits, 1,437/360')
    """
    import fusenn as fn

    folder = find_mnist_dir(mnist_dir) if task.data == "mnist" else None
    if folder is not None:
        X, y = fn.datasets.load_mnist(folder, kind="t10k", dtype=dtype)
        split = task.train
        data = f"MNIST t10k in {folder}, {split:,}/{len(y) - split:,}"
    else:
        X, y = fn.datasets.load_digits(dtype=dtype)
        split = DIGITS_TRAIN
        data = f"embedded 8x8 digits, {split:,}/{len(y) - split:,}"
        if task.data == "mnist":
            data += " (no MNIST found)"
    if small:
        return X[:256], y[:256], X[-64:], y[-64:], data + ", small"
    return X[:split], y[:split], X[split:], y[split:], data


def sklearn_estimator(path: str) -> Any:
    """The ``MLPClassifier`` class of a path of :data:`SKLEARN_PATHS`.

    Parameters
    ----------
    path : {"fusenn.sklearn", "sklearn"}
        The path.

    Returns
    -------
    type
        Its ``MLPClassifier``.

    Raises
    ------
    ArgumentError
        An unknown path.
    """
    if path == "sklearn":
        from sklearn.neural_network import MLPClassifier
    elif path == "fusenn.sklearn":
        from ..sklearn import MLPClassifier
    else:
        raise ArgumentError(f"unknown path {path!r}; choose from {', '.join(SKLEARN_PATHS)}")
    return MLPClassifier


def _task(tasks: Mapping[str, Any], name: str, what: str) -> Any:
    if name not in tasks:
        raise ArgumentError(f"unknown task {name!r} for --what {what}; choose from "
                            f"{', '.join(tasks)}")
    return tasks[name]


# --------------------------------------------------------------------------- one row
def sklearn_face_row(task: str, path: str, dtype: Any = "float32", small: bool = False,
                     mnist_dir: Optional[Union[str, os.PathLike[str]]] = None
                     ) -> Dict[str, Any]:
    """Time one scikit-learn face row in this process.

    A first, tiny fit imports and compiles what a fit needs, so that the time is of the work
    itself. scikit-learn's BLAS is held to fusenn's thread count (``FUSENN_NUM_THREADS`` or
    ``fusenn.set_num_threads``), so that both run on the same threads.

    Parameters
    ----------
    task : str
        A key of :data:`SKLEARN_TASKS`.
    path : str
        ``"fusenn.sklearn"`` or ``"sklearn"``.
    dtype : str, default "float32"
    small : bool, default False
        Tiny sizes: 256 samples, 2 epochs, 1,000 rows predicted.
    mnist_dir : path-like, optional

    Returns
    -------
    dict
        ``seconds`` (of ``fit``, or of ``predict_proba`` for the predict task), ``accuracy``
        (on the test samples) and ``data`` (which data, in words).

    Raises
    ------
    ValueError
        For an unknown task or path.
    ImportError
        When scikit-learn is not installed.

    Examples
    --------
    >>> row = sklearn_face_row("digits", "fusenn.sklearn", small=True)
    >>> sorted(row), row["seconds"] > 0
    (['accuracy', 'data', 'seconds'], True)
    """
    from threadpoolctl import threadpool_limits

    from .._threads import get_num_threads

    spec = _task(SKLEARN_TASKS, task, "sklearn")
    cls = sklearn_estimator(path)
    Xtr, ytr, Xte, yte, data = load_sklearn_task(spec, np.dtype(dtype), small, mnist_dir)
    params = dict(spec.params, max_iter=2) if small else dict(spec.params)
    limits = threadpool_limits(get_num_threads(), "blas") if path == "sklearn" else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning of the short runs
            cls(**dict(params, max_iter=1)).fit(Xtr[:64], ytr[:64])
            clf = cls(**params)
            start = time.perf_counter()
            clf.fit(Xtr, ytr)
            seconds = time.perf_counter() - start
        accuracy = float(clf.score(Xte, yte))
        if spec.predict_rows:
            rows = 1000 if small else spec.predict_rows
            Xbig = np.ascontiguousarray(np.resize(Xte, (rows, Xte.shape[1])))
            clf.predict_proba(Xbig[:100])
            start = time.perf_counter()
            clf.predict_proba(Xbig)
            seconds = time.perf_counter() - start
    finally:
        if limits is not None:
            limits.restore_original_limits()
    return {"seconds": seconds, "accuracy": accuracy, "data": data}


def swap_imports(text: str, to: str) -> str:
    """A Keras script's text with its Keras imports pointed at module ``to``.

    Parameters
    ----------
    text : str
        The script, importing from ``tensorflow.keras`` or ``keras``.
    to : str
        ``"fusenn.keras"`` or ``"keras"``.

    Returns
    -------
    str
        The script with ``tensorflow.keras`` and ``keras`` imports replaced, and
        ``import tensorflow as tf`` (which the notes' script never uses) dropped.

    Examples
    --------
    >>> swap_imports("import tensorflow as tf\\nfrom tensorflow.keras.layers import Dense\\n",
    ...              "fusenn.keras")
    'from fusenn.keras.layers import Dense\\n'
    >>> swap_imports("from keras.models import Sequential\\n", "fusenn.keras")
    'from fusenn.keras.models import Sequential\\n'
    """
    text = re.sub(r"^import tensorflow as tf\n", "", text, flags=re.M)
    text = text.replace("tensorflow.keras", to)
    return re.sub(r"^from keras(\.| import)", rf"from {to}\1", text, flags=re.M)


def keras_script_text(task: str, path: str, epochs: Optional[int] = None) -> str:
    """The text of Keras script ``task`` as path ``path`` runs it.

    Parameters
    ----------
    task : str
        A key of :data:`KERAS_SCRIPTS`.
    path : str
        ``"fusenn.keras"`` (imports changed to fusenn.keras) or ``"keras-jax"`` (imports
        pointed at Keras 3 itself).
    epochs : int, optional
        Replace the ``epochs=`` of its ``fit`` call (for quick checks); None keeps the script's.

    Returns
    -------
    str

    Examples
    --------
    >>> text = keras_script_text("xor", "fusenn.keras", epochs=3)
    >>> "from fusenn.keras.models import Sequential" in text, "epochs=3," in text
    (True, True)
    """
    spec = _task(KERAS_SCRIPTS, task, "keras")
    if path not in KERAS_PATHS:
        raise ArgumentError(f"unknown path {path!r}; choose from {', '.join(KERAS_PATHS)}")
    text = swap_imports((KERAS_SCRIPT_DIR / f"{spec}.txt").read_text(),
                        "fusenn.keras" if path == "fusenn.keras" else "keras")
    if epochs is not None:
        text, n = re.subn(r"\bepochs=\d+", f"epochs={int(epochs)}", text)
        if n != 1:
            raise ArgumentError(f"script {spec} has {n} 'epochs=' arguments, expected one")
    return text


#: The Keras script runs under this driver, which times every ``fit`` of the model class.
_KERAS_DRIVER = r"""
import importlib, json, sys, time
path, module = sys.argv[1], sys.argv[2]
text = open(path).read()
t0 = time.perf_counter()
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
print("RESULT", json.dumps({"fit_s": sum(fits), "total_s": time.perf_counter() - t0}))
"""
_ACCURACY = re.compile(r"accuracy:\s*([0-9.]+)(%?)", re.I)


def keras_face_row(task: str, path: str, small: bool = False,
                   mnist_dir: Optional[Union[str, os.PathLike[str]]] = None) -> Dict[str, Any]:
    """Run one Keras script on one path in a fresh Python process, and time it.

    Parameters
    ----------
    task : str
        A key of :data:`KERAS_SCRIPTS`.
    path : str
        ``"fusenn.keras"`` or ``"keras-jax"`` (Keras 3 with ``KERAS_BACKEND=jax`` on the CPU).
    small : bool, default False
        Run :data:`KERAS_SMALL_EPOCHS` epochs instead of the script's.
    mnist_dir : path-like, optional
        MNIST's directory for the MNIST script (see :func:`find_mnist_dir`).

    Returns
    -------
    dict
        ``seconds`` (the time of every ``fit`` call), ``total_s`` (the whole script, imports
        included, the interpreter's start excluded), ``accuracy`` (what the script printed,
        as a fraction; None if it printed none) and ``data``.

    Raises
    ------
    FileNotFoundError
        For the MNIST script when no MNIST is found.
    RuntimeError
        When the script fails; the message ends with its error output.

    Examples
    --------
    >>> row = keras_face_row("xor", "fusenn.keras", small=True)
    >>> row["seconds"] > 0 and row["total_s"] >= row["seconds"]
    True
    """
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    data = "the notes' XOR, 4 samples"
    if task == "mnist":
        folder = find_mnist_dir(mnist_dir)
        if folder is None:
            raise FileNotFoundError("no MNIST t10k files found for the MNIST script (give "
                                    "--mnist DIR or set MNIST_DIR)")
        env["MNIST_DIR"] = str(folder)
        data = f"MNIST t10k in {folder}, 8,000/2,000"
    epochs = KERAS_SMALL_EPOCHS.get(task) if small else None
    text = keras_script_text(task, path, epochs)
    module = "fusenn.keras.models" if path == "fusenn.keras" else "keras.models"
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / KERAS_SCRIPTS[task]
        script.write_text(text)
        proc = subprocess.run([sys.executable, "-c", _KERAS_DRIVER, str(script), module],
                              env=env, capture_output=True, text=True, cwd=tmp)
    result = _result_line(proc, f"the {task} script on {path}")
    found = _ACCURACY.findall(proc.stdout)
    accuracy: Optional[float] = None
    if found:
        value, percent = found[-1]
        accuracy = float(value) / (100 if percent else 1)
    return {"seconds": result["fit_s"], "total_s": result["total_s"], "accuracy": accuracy,
            "data": data + (f", {epochs} epoch{'s' if epochs != 1 else ''}" if epochs else "")}


def _result_line(proc: subprocess.CompletedProcess[str], what: str) -> Dict[str, Any]:
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result: Dict[str, Any] = json.loads(line[7:])
            return result
    tail = " ".join(proc.stderr.strip().splitlines()[-3:])
    raise RuntimeError(f"{what} failed: {tail}")


# --------------------------------------------------------------------------- the tables
@dataclass(frozen=True)
class _Face:
    """One ``--what`` of this module: its tasks, its paths (the last is the reference), the
    modules each path needs, the default repeats, and what it compares, in words."""
    tasks: Dict[str, Any]
    paths: Tuple[str, ...]
    needs: Dict[str, Tuple[str, ...]]
    repeat: int
    title: str


#: The faces ``fusenn bench --what`` takes, by name.
FACES = {
    "sklearn": _Face(SKLEARN_TASKS, SKLEARN_PATHS,
                     {"fusenn.sklearn": ("sklearn",), "sklearn": ("sklearn",)}, 3,
                     "fusenn.sklearn.MLPClassifier against sklearn.neural_network."
                     "MLPClassifier with the same arguments"),
    "keras": _Face(KERAS_SCRIPTS, KERAS_PATHS, {"fusenn.keras": (), "keras-jax": ("keras", "jax")},
                   2, "Keras scripts with their imports changed to fusenn.keras against the "
                      "same scripts on Keras 3 with KERAS_BACKEND=jax"),
}


def _face(what: str) -> _Face:
    if what not in FACES:
        raise ArgumentError(f"unknown face {what!r}; choose from {', '.join(FACES)}")
    return FACES[what]


def face_versions(what: str) -> Dict[str, Optional[str]]:
    """The versions of what face ``what`` is compared with, read from the installed packages'
    metadata (nothing is imported): Python and NumPy, then scikit-learn, or Keras and JAX.

    Parameters
    ----------
    what : {"sklearn", "keras"}

    Returns
    -------
    dict
        Distribution name -> version (None: not installed).

    Examples
    --------
    >>> list(face_versions("keras"))
    ['python', 'numpy', 'keras', 'jax']
    """
    import platform
    from importlib import metadata

    _face(what)
    out: Dict[str, Optional[str]] = {"python": platform.python_version(), "numpy": np.__version__}
    for dist in {"sklearn": ("scikit-learn",), "keras": ("keras", "jax")}[what]:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _missing_module(what: str, path: str) -> Optional[str]:
    """The first module path ``path`` of face ``what`` needs and cannot find (None: none)."""
    for module in _face(what).needs[path]:
        if importlib.util.find_spec(module) is None:
            return module
    return None


def _row_in_child(what: str, task: str, path: str, small: bool,
                  mnist_dir: Optional[Union[str, os.PathLike[str]]]
                  ) -> Tuple[Optional[Dict[str, Any]], Optional[str]]:
    """One row in a fresh Python process: ``(result dict, None)`` or ``(None, why not)``."""
    if what == "keras":  # the script runs in a process of its own already
        try:
            return keras_face_row(task, path, small, mnist_dir), None
        except FileNotFoundError as exc:
            return None, str(exc)
    call = (f"faces.sklearn_face_row({task!r}, {path!r}, small={small!r}, "
            f"mnist_dir={None if mnist_dir is None else os.fspath(mnist_dir)!r})")
    code = ("import json\nfrom fusenn.bench import faces\n"
            f"print('RESULT', json.dumps({call}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return _result_line(proc, f"the {task} task on {path}"), None


def run_face(what: str, tasks: Optional[Iterable[str]] = None,
             include: Optional[Sequence[str]] = None, repeat: Optional[int] = None,
             small: bool = False, mnist_dir: Optional[Union[str, os.PathLike[str]]] = None,
             print_fn: Optional[Callable[[str], Any]] = print) -> List[Dict[str, Any]]:
    """Time a face against the library it replaces; print and return the table's rows.

    Parameters
    ----------
    what : {"sklearn", "keras"}
    tasks : list of str, optional
        Keys of the face's tasks (:data:`SKLEARN_TASKS` or :data:`KERAS_SCRIPTS`); default all.
    include : list of str, optional
        The paths to run (default both).
    repeat : int, optional
        Runs of every row, the paths taking turns; the best time is kept (default 3 for
        sklearn, 2 for keras).
    small : bool, default False
        Tiny sizes, to check that it runs.
    mnist_dir : path-like, optional
        MNIST's directory (see :func:`find_mnist_dir`).
    print_fn : callable or None, default print
        Receives the table's text.

    Returns
    -------
    list of dict
        One per task and path: ``task``, ``path``, ``seconds``, ``accuracy``, ``data``,
        ``vs_reference`` (the reference path's time over this one's) and ``ran`` (the path,
        or why it did not run); keras rows also have ``total_s``.

    Raises
    ------
    ValueError
        For an unknown face, task or path, or ``repeat`` below 1.
    FileNotFoundError
        When ``mnist_dir`` is given and does not hold MNIST's t10k files.

    Examples
    --------
    >>> rows = run_face("sklearn", ["digits"], include=["fusenn.sklearn"], repeat=1,
    ...                 small=True, print_fn=None)
    >>> [(r["task"], r["path"], r["ran"]) for r in rows]
    [('digits', 'fusenn.sklearn', 'fusenn.sklearn')]
    """
    face = _face(what)
    tasks = list(face.tasks) if tasks is None else list(tasks)
    for name in tasks:
        _task(face.tasks, name, what)
    paths = list(face.paths) if include is None else [p for p in face.paths if p in include]
    for p in include or ():
        if p not in face.paths:
            raise ArgumentError(f"unknown path {p!r} for --what {what}; choose from "
                                f"{', '.join(face.paths)}")
    repeat = face.repeat if repeat is None else repeat
    if repeat < 1:
        raise ArgumentError(f"repeat must be >= 1, got {repeat}")
    if mnist_dir is not None:
        mnist_dir = find_mnist_dir(mnist_dir)  # a wrong directory fails here, once
    best: Dict[Tuple[str, str], Tuple[Optional[Dict[str, Any]], Optional[str]]] = {}
    for _ in range(repeat):
        for name in tasks:
            for path in paths:
                missing = _missing_module(what, path)
                if missing is not None:
                    best[(name, path)] = (None, f"not installed ({missing})")
                    continue
                result, why = _row_in_child(what, name, path, small, mnist_dir)
                old = best.get((name, path), (None, None))[0]
                if result is None:
                    best.setdefault((name, path), (None, why))
                elif old is None or result["seconds"] < old["seconds"]:
                    best[(name, path)] = (result, path)
    reference = face.paths[-1]
    rows: List[Dict[str, Any]] = []
    for name in tasks:
        ref = best.get((name, reference), (None,))[0]
        for path in paths:
            result, ran = best[(name, path)]
            row = {"task": name, "path": path, "seconds": None, "accuracy": None, "data": None,
                   "vs_reference": None, "ran": ran}
            if result is not None:
                row.update(result)
                if ref is not None:
                    row["vs_reference"] = ref["seconds"] / result["seconds"]
            rows.append(row)
    if print_fn is not None:
        print_fn(format_face_table(rows, reference))
    return rows


def format_face_table(rows: Iterable[Mapping[str, Any]], reference: str) -> str:
    """The rows of :func:`run_face` as a text table, ratios to path ``reference``.

    Parameters
    ----------
    rows : list of dict
    reference : str
        The path the ``x <reference>`` column compares with (``sklearn`` or ``keras-jax``).

    Returns
    -------
    str

    Examples
    --------
    >>> print(format_face_table([{"task": "xor", "path": "keras-jax", "seconds": 9.0,
    ...                           "total_s": 12.0, "accuracy": 1.0, "vs_reference": 1.0,
    ...                           "data": "XOR", "ran": "keras-jax"}], "keras-jax"))
    task     path              seconds    total s  accuracy   x keras-jax  data
    ---------------------------------------------------------------------------
    xor      keras-jax           9.000     12.000    1.0000          1.00  XOR
    """
    ratio = f"x {reference}"
    width = max(9, len(ratio))
    head = (f"{'task':<8} {'path':<15} {'seconds':>9} {'total s':>10} {'accuracy':>9} "
            f"{ratio:>{width + 2}}  data")
    lines = [head, "-" * len(head)]
    for r in rows:
        if r["seconds"] is None:
            lines.append(f"{r['task']:<8} {r['path']:<15} {'-':>9} {'-':>10} {'-':>9} "
                         f"{'-':>{width + 2}}  {r['ran']}")
            continue
        total = f"{r['total_s']:.3f}" if r.get("total_s") is not None else "-"
        acc = f"{r['accuracy']:.4f}" if r["accuracy"] is not None else "-"
        vs = f"{r['vs_reference']:.2f}" if r["vs_reference"] else "-"
        lines.append(f"{r['task']:<8} {r['path']:<15} {r['seconds']:>9.3f} {total:>10} "
                     f"{acc:>9} {vs:>{width + 2}}  {r['data']}")
    return "\n".join(lines)
