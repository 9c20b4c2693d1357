"""What this installation of fusenn is: version, backends, threads, BLAS and OpenMP."""
from __future__ import annotations

import platform
from typing import IO, Any

from . import backends
from ._threads import get_num_threads
from ._version import __version__


def _build_record() -> Any:
    """The generated ``fusenn._build_info`` module (what setup.py built), or None when this
    copy of fusenn was not installed by setup.py (a bare source tree on ``sys.path``)."""
    import importlib

    try:
        return importlib.import_module("fusenn._build_info")
    except ImportError:
        return None


def cython_status() -> str:
    """Whether the Cython extension was built and loads here; if not, why and how to get it.

    The reason comes from the record that ``setup.py`` writes at build time
    (``fusenn/_build_info.py``): no working C compiler (with the compiler's error),
    ``FUSENN_NO_EXTENSIONS=1``, or, when the extension was built but does not load, the
    import error's text.

    Returns
    -------
    str
        One line: ``"built, loaded (avx2 variant)"``, or ``"not built: <reason>. To get it, ..."``,
        or ``"built but fails to load: <error>. ..."``.

    Examples
    --------
    >>> from fusenn.config import cython_status
    >>> cython_status().startswith(("built", "not built", "no build record"))
    True
    """
    record = _build_record()
    if "cython" in backends.available_backends():
        variant = getattr(backends._load("cython"), "VARIANT", None)
        return f"built, loaded ({variant} variant)"
    error = backends.unavailable_reasons().get("cython", "unknown error")
    if record is None:
        return (f"no build record and the extension does not load ({error}); install fusenn "
                "with pip ('pip install .' in a source tree) to build it")
    if not record.EXTENSIONS:
        return f"not built: {record.REASON}. To get it, {record.HOW}"
    return (f"built ({', '.join(record.EXTENSIONS)}) but fails to load: {error}. Reinstall "
            "fusenn for this Python and platform: 'pip install --force-reinstall "
            "--no-cache-dir fusenn'")


def config() -> dict[str, Any]:
    """A dict describing the installation (what :func:`show_config` prints).

    Returns
    -------
    dict
        The version, Python and NumPy versions, the selected backend and what ``"auto"``
        picks, the available backends and why the others are not, threads and thread pools,
        and how the Cython extension was built.

    Examples
    --------
    >>> import fusenn as fn
    >>> "numpy" in fn.config()["available backends"]
    True
    """
    import numpy as np

    info = {
        "fusenn": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "selected backend": backends.get_backend(),
        "auto resolves to": backends.resolve("auto"),
        "auto picks per kernel (work: multiply-adds, elements or parameters)":
            backends.auto_picks(),
        "available backends": backends.available_backends(),
        "unavailable backends": backends.unavailable_reasons(),
        "cython extension": cython_status(),
        "threads": get_num_threads(),
    }
    cy = backends._load("cython") if "cython" in info["available backends"] else None
    info["cython built with OpenMP"] = getattr(cy, "OPENMP", None) if cy else None
    info["cython build"] = getattr(cy, "VARIANT", None) if cy else None
    info["cython's BLAS"] = getattr(cy, "BLAS", None) if cy else None
    try:
        from threadpoolctl import threadpool_info

        info["thread pools"] = [
            f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads, "
            f"{p.get('prefix')})" for p in threadpool_info()]
    except Exception as exc:  # pragma: no cover - threadpoolctl missing or failing
        info["thread pools"] = [f"unknown ({exc})"]
    return info


def show_config(file: IO[str] | None = None) -> str:
    """Print the installation's configuration: which backends run here and why not.

    Parameters
    ----------
    file : file-like or None, default None
        Where to print (None: ``sys.stdout``).

    Returns
    -------
    str
        The text printed.

    Examples
    --------
    >>> import io
    >>> import fusenn as fn
    >>> text = fn.show_config(file=io.StringIO())
    >>> "available backends:" in text
    True
    """
    lines = []
    for key, value in config().items():
        if isinstance(value, dict):
            lines.append(f"{key}:" + ("" if value else " none"))
            lines += [f"    {k}: {v}" for k, v in value.items()]
        elif isinstance(value, list):
            lines.append(f"{key}:" + ("" if value else " none"))
            lines += [f"    {v}" for v in value]
        else:
            lines.append(f"{key}: {value}")
    text = "\n".join(lines)
    print(text, file=file)
    return text
