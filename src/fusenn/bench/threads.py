"""Where more than one thread starts to pay: the measurement behind
:data:`fusenn._threads.ONE_THREAD_BELOW`.

``python -m fusenn.bench.threads`` trains networks of growing size for a few epochs (softmax
cross-entropy, SGD, synthetic float32 data) on one thread and on every core, alternating, and
prints each network's multiply-adds per batch with the two times. The crossover is the
smallest work from which every core is clearly faster (by ``margin``) than one; below it, one
thread is as fast, and it is the one that does not suffer when another busy process shares
the machine.
"""
from __future__ import annotations

import argparse
import time
from typing import List, Optional, Sequence, Tuple

import numpy as np

from .._threads import cpu_count, set_num_threads
from ..backends._auto import epoch_work

#: (layer widths, batch size) of the networks measured, from tiny to large.
NETWORKS: Tuple[Tuple[Tuple[int, ...], int], ...] = (
    ((2, 8, 2), 4),
    ((64, 64, 10), 16),
    ((784, 30, 10), 10),
    ((784, 100, 10), 32),
    ((784, 128, 64, 10), 64),
    ((784, 256, 128, 10), 128),
    ((784, 512, 512, 10), 256),
    ((784, 1024, 1024, 10), 512),
)


def time_fit(widths: Sequence[int], batch_size: int, threads: int, samples: int = 4096,
             repeat: int = 3, seed: int = 0) -> float:
    """Best seconds of a 2-epoch fit of the network on ``threads`` threads."""
    from .. import Sequential, Trainer, optim
    from ..layers import Dense

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((samples, widths[0])).astype(np.float32)
    y = rng.integers(0, widths[-1], samples)
    best = np.inf
    set_num_threads(threads)
    try:
        for _ in range(repeat):
            layers = [Dense(a, b, "relu") for a, b in zip(widths[:-2], widths[1:-1])]
            model = Sequential(layers + [Dense(widths[-2], widths[-1])], dtype=np.float32,
                               random_state=seed)
            trainer = Trainer(model, optimizer=optim.SGD(lr=0.01), batch_size=batch_size,
                              metrics=[], random_state=seed)
            start = time.perf_counter()
            trainer.fit(X, y, epochs=2)
            best = min(best, time.perf_counter() - start)
    finally:
        set_num_threads(None)
    return best


def measure(networks: Sequence[Tuple[Sequence[int], int]] = NETWORKS, margin: float = 1.05
            ) -> Tuple[List[Tuple[int, float, float]], Optional[int]]:
    """Rows ``(work, seconds on one thread, seconds on every core)`` and the crossover (the
    smallest work from which every core is ``margin`` times faster at each larger size)."""
    cores = cpu_count()
    rows: List[Tuple[int, float, float]] = []
    for widths, bs in networks:
        one = time_fit(widths, bs, 1)
        many = time_fit(widths, bs, cores)
        rows.append((epoch_work(widths, bs), one, many))
    crossover: Optional[int] = None
    for work, one, many in sorted(rows, reverse=True):
        if one < margin * many:
            break
        crossover = work
    return rows, crossover


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--margin", type=float, default=1.05)
    args = parser.parse_args(argv)
    rows, crossover = measure(margin=args.margin)
    print(f"{'work/batch':>14} {'1 thread':>10} {f'{cpu_count()} threads':>11} {'ratio':>6}")
    for work, one, many in rows:
        print(f"{work:>14,} {one:>10.4f} {many:>11.4f} {one / many:>6.2f}")
    print(f"every core pays from {crossover:,} multiply-adds per batch" if crossover else
          "one thread is as fast at every size measured")


if __name__ == "__main__":  # pragma: no cover
    main()
