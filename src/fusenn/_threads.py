"""Thread counts for OpenMP, Numba and BLAS, set in one place.

On a 2-core machine threads decide speed more than instructions do: two BLAS pools fighting, or
idle OpenMP threads spinning after a parallel region, can halve throughput. fusenn therefore
keeps one number, ``FUSENN_NUM_THREADS`` or :func:`set_num_threads`, and applies it to every
pool only inside :func:`thread_limits` (a ``try/finally`` that restores what was there).

Where the user has set no number, the count follows the size of the work (:func:`threads_for`):
a mini-batch of a small network is done before a second thread has started, and two threads
that must meet after every product are slowed down badly by any other busy process on the
machine, so below :data:`ONE_THREAD_BELOW` multiply-adds per batch (or per prediction chunk)
fusenn runs on one thread, and above it on every core that no other process keeps busy when
the fit (or prediction) starts.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any, Iterator, List, Optional, Tuple
from .errors import ArgumentError, ArgumentTypeError

_num_threads: Optional[int] = None
#: The most threads :func:`set_num_threads` takes (the C kernels keep the count in an int).
MAX_THREADS = 4096
#: True in a child made by ``fork()`` (``multiprocessing``'s default start method on Linux):
#: there every kernel runs on one thread. GNU OpenMP's thread pool does not survive a fork -
#: a parallel region in the child waits forever for threads that were not copied (and Numba
#: kills such a child) - while one thread never touches the pool. BLAS's own pools reset
#: themselves at fork.
_in_forked_child = False


def _after_fork_in_child() -> None:
    global _in_forked_child
    _in_forked_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _env_threads() -> Optional[int]:
    raw = os.environ.get("FUSENN_NUM_THREADS", "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        raise ArgumentError(f"FUSENN_NUM_THREADS must be a positive integer, got {raw!r}") from None
    if not 1 <= n <= MAX_THREADS:
        raise ArgumentError(f"FUSENN_NUM_THREADS must be a positive integer (at most "
                            f"{MAX_THREADS}), got {raw!r}")
    return n


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def set_num_threads(n: int | None) -> None:
    """Set the thread count used by fusenn's kernels (``None``: the environment or all cores).

    Applied to OpenMP, Numba and BLAS alike while fusenn computes, and restored after.

    Parameters
    ----------
    n : int or None
        Threads, from 1 to the machine's limit; None: ``FUSENN_NUM_THREADS`` or all cores.

    Raises
    ------
    TypeError
        ``n`` is not an integer.
    ValueError
        ``n`` is out of range.

    Examples
    --------
    >>> import fusenn as fn
    >>> fn.set_num_threads(1)
    >>> fn.get_num_threads()
    1
    >>> fn.set_num_threads(None)
    """
    global _num_threads
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, (int,)) and not hasattr(n, "__index__"):
            raise ArgumentTypeError(f"number of threads must be an integer, got {n!r}")
        n = int(n)
        if not 1 <= n <= MAX_THREADS:
            raise ArgumentError(f"number of threads must be >= 1 and at most {MAX_THREADS}, "
                                f"got {n}")
    _num_threads = n


#: Multiply-adds per mini-batch (or prediction chunk) below which one thread is as fast as
#: every core, so that fusenn uses one. Measured on the 2-core development machine: with
#: ``python -m fusenn.bench.threads`` two threads gain nothing up to 238,200 (784-30-10 at
#: batch 10: 1.02x) and 1.41x at 6,987,776 (784-128-64-10 at batch 64); at 2,540,800
#: (784-100-10 at batch 32) the short fit there gained 1.28x but the MNIST split's 20 epochs
#: ran 0.75 s on one thread against 0.89 s on two, so the crossover lies between.
ONE_THREAD_BELOW = 4_000_000


def threads_for(work: float) -> int:
    """The thread count for calls of ``work`` multiply-adds each.

    The number the user set (:func:`set_num_threads` or ``FUSENN_NUM_THREADS``) wins. Else
    one thread below :data:`ONE_THREAD_BELOW`; above it every core but those that other
    processes keep busy right now (:func:`busy_elsewhere`): threads that must meet after
    every product wait for each other's time slices on a shared core, which made a 2-thread
    epoch several times slower than a 1-thread one beside one busy process.

    Parameters
    ----------
    work : int
        Multiply-adds per call (a mini-batch, a prediction chunk).

    Returns
    -------
    int
    """
    if _in_forked_child:
        return 1
    if _num_threads is not None:
        return _num_threads
    env = _env_threads()
    if env is not None:
        return env
    if work < ONE_THREAD_BELOW:
        return 1
    cores = cpu_count()
    return max(1, cores - busy_elsewhere(cores))


#: The Cython backend's training epoch splits every layer between threads (each with a
#: one-thread BLAS; ``_epoch_split`` in ``csrc/_kernels.pxi``) for mini-batches of
#: ``SPLIT_FROM`` to ``SPLIT_BELOW`` multiply-adds (rows x parameters). Measured on the 2-core
#: development machine, one epoch, samples/s of the split against BLAS's own two threads and
#: one thread: 64-64-10 at batch 32 (153,920) 1.94M against 2.50M / 2.56M; 784-30-10 at batch
#: 10 (238,600) 610k against 505k / 504k; 784-100-10 at batch 32 (2.5M) 1.5x one thread;
#: 784-128-64-10 at batch 64 (7.0M) 286k against 260k / 183k; 784-1024-1024-10 at batch 64
#: (119M) 13.2k against 12.8k; at batch 512 (954M) 15.1k against 18.0k.
SPLIT_FROM = 200_000
#: See :data:`SPLIT_FROM`.
SPLIT_BELOW = 200_000_000


def split_threads(work: float) -> int:
    """The threads of the Cython backend's split training epoch for mini-batches of ``work``
    multiply-adds: 1 (no split) outside ``[SPLIT_FROM, SPLIT_BELOW)``, else as
    :func:`threads_for` picks for large work (the number the user set, or every core but
    those other processes keep busy).

    Parameters
    ----------
    work : int
        Multiply-adds per mini-batch (rows x parameters).

    Returns
    -------
    int
    """
    if _in_forked_child or not SPLIT_FROM <= work < SPLIT_BELOW:
        return 1
    return threads_for(max(work, ONE_THREAD_BELOW))


def busy_elsewhere(cores: Optional[int] = None) -> int:
    """How many of this process's ``cores`` other processes keep busy now: the runnable
    threads of the machine (``/proc/loadavg``) less this process's own running ones, scaled
    from the machine's CPUs to this process's; 0 where that cannot be read (not Linux). A
    reading serves the calls of the next :data:`BUSY_FOR` seconds.

    Parameters
    ----------
    cores : int, optional
        This process's cores (default :func:`cpu_count`).

    Returns
    -------
    int
    """
    global _busy_seen
    cores = cpu_count() if cores is None else cores
    now = time.monotonic()
    if now - _busy_seen[0] < BUSY_FOR:
        others = _busy_seen[1]
    else:
        try:
            with open("/proc/loadavg") as f:
                runnable = int(f.read().split()[3].split("/")[0])
            own = 0
            for tid in os.listdir("/proc/self/task"):
                with open(f"/proc/self/task/{tid}/stat") as f:
                    stat = f.read()
                own += stat[stat.rindex(")") + 2] == "R"
        except (OSError, ValueError, IndexError):
            return 0
        others = max(0, runnable - own)
        _busy_seen = (now, others)
    return min(cores, int(round(others * cores / (os.cpu_count() or cores))))


#: Seconds for which :func:`busy_elsewhere` keeps what it read (reading /proc takes about
#: 0.1-0.3 ms, which a fit calling it once per epoch would pay every few milliseconds).
BUSY_FOR = 0.1
_busy_seen = (-BUSY_FOR, 0)  # (time.monotonic() of the last reading, busy threads seen)


def get_num_threads() -> int:
    """The thread count fusenn uses now (1 in a child made by ``fork()``).

    Returns
    -------
    int
    """
    if _in_forked_child:
        return 1
    if _num_threads is not None:
        return _num_threads
    env = _env_threads()
    return env if env is not None else cpu_count()


_controller: Any = None  # a threadpoolctl.ThreadpoolController (imported when first needed)
_controller_key: Optional[int] = None


def _thread_pools() -> Any:
    """threadpoolctl's view of the loaded BLAS/OpenMP libraries, rescanned only when modules
    were imported since the last look (a scan reads /proc/self/maps: about a millisecond)."""
    global _controller, _controller_key
    key = len(sys.modules)
    if _controller is None or key != _controller_key:
        from threadpoolctl import ThreadpoolController

        _controller, _controller_key = ThreadpoolController(), key
    return _controller


@contextlib.contextmanager
def thread_limits(n: Optional[int] = None, work: Optional[float] = None) -> Iterator[int]:
    """Limit BLAS, OpenMP and (if loaded) Numba to ``n`` threads inside the block (default:
    :func:`threads_for` ``work``, the multiply-adds of each call inside, when given, else
    :func:`get_num_threads`).

    Only the pools whose count differs are touched, and restored on the way out: when every
    pool already runs ``n`` threads (the common case) the block costs a few microseconds,
    which matters for a fit that lasts a millisecond.
    """
    if n is None:
        n = get_num_threads() if work is None else threads_for(work)
    n = int(n)
    numba = sys.modules.get("numba")
    old_numba: Optional[int] = None
    changed: List[Tuple[Any, int]] = []  # (threadpoolctl library controller, its old count)
    try:
        for lib in _thread_pools().lib_controllers:
            old = lib.num_threads
            if old != n:
                lib.set_num_threads(n)
                changed.append((lib, old))
        if numba is not None:
            old_numba = numba.get_num_threads()
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        yield n
    finally:
        if numba is not None and old_numba is not None:
            numba.set_num_threads(old_numba)
        for lib, old in reversed(changed):
            lib.set_num_threads(old)
