"""CPU threads for training: give cores back to other processes while they need them.

``decone train`` leaves OpenMP's wait policy at its default, under which a thread that finishes its share of an
operation spins for a while before it sleeps, instead of decone's usual ``OMP_WAIT_POLICY=PASSIVE`` (see
``decone/__init__.py``). A training step runs a few thousand parallel operations, most of them short; waking a
sleeping thread for each can cost as much as a small operation itself, so spinning threads get more out of a second
core. Spinning is only good while nothing else wants the cores: beside another busy process, spinning threads make
the same step slower than sleeping ones. ``benchmarks/thread_scaling.py`` measures both; docs/performance.md
("Threads") has the figures and the machines.

:class:`CoreGovernor` handles that case. Every ``window_s`` seconds of training it reads how much CPU time the rest of
the machine used (``/proc/stat`` minus this process) and sets torch's thread count to the cores left over, never above
the count training started with and never below one; when the other work stops, the threads come back. With one
thread, idle OpenMP workers sleep, so nothing spins on the cores that others use. Linux only (elsewhere it does
nothing); it changes how fast a step runs, not the maths, though another thread count may sum large reductions in
another order (``--fixed-threads`` for bitwise-identical reruns, docs/reliability.md).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

CpuSample = tuple[float, float]  # (CPU-seconds all processes have used, CPU-seconds this process has used)


def threads_for(max_threads: int, cores: int, others_busy: float) -> int:
    """Threads to use when other processes keep ``others_busy`` cores busy: the cores left over, rounded (another
    process using half a core or more takes one), between 1 and ``max_threads``."""
    free = cores - max(0.0, others_busy)
    return max(1, min(max_threads, math.ceil(free - 0.5)))


def proc_stat_sample(path: str = "/proc/stat") -> tuple[CpuSample, int] | None:
    """((CPU-seconds used by everything, by this process), logical CPUs) from ``/proc/stat``; None where unreadable."""
    try:
        with open(path, encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    if not lines or not lines[0].startswith("cpu "):
        return None
    fields = [int(x) for x in lines[0].split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already inside user and nice]
    busy = sum(fields[:8]) - fields[3] - (fields[4] if len(fields) > 4 else 0)
    cores = sum(1 for line in lines[1:] if line.startswith("cpu") and line[3:4].isdigit())
    return (busy / os.sysconf("SC_CLK_TCK"), time.process_time()), max(cores, 1)


class CoreGovernor:
    """Sets torch's thread count, every ``window_s`` seconds of :meth:`step` calls, to the cores other processes
    leave free. ``sample`` and ``set_threads`` are injectable for tests."""

    def __init__(self, max_threads: int, window_s: float = 2.0,
                 sample: Callable[[], tuple[CpuSample, int] | None] = proc_stat_sample,
                 set_threads: Callable[[int], None] | None = None, clock: Callable[[], float] = time.monotonic):
        import torch

        self.max_threads = self.threads = max_threads
        self.window_s = window_s
        self._sample, self._clock = sample, clock
        self._set = set_threads or torch.set_num_threads
        first = sample()
        self.enabled = first is not None and max_threads > 1
        self._last = (clock(), first[0]) if first is not None else None

    def step(self) -> int | None:
        """Call once per training step. Returns the new thread count when it changed, else None."""
        if not self.enabled:
            return None
        now = self._clock()
        t0, (all0, own0) = self._last
        if now - t0 < self.window_s:
            return None
        got = self._sample()
        if got is None:
            self.enabled = False
            return None
        (all1, own1), cores = got
        self._last = (now, (all1, own1))
        others = ((all1 - all0) - (own1 - own0)) / (now - t0)  # cores the rest of the machine kept busy
        want = threads_for(self.max_threads, cores, others)
        if want == self.threads:
            return None
        self.threads = want
        self._set(want)
        return want

    def restore(self) -> None:
        """Back to the thread count training started with."""
        if self.threads != self.max_threads:
            self._set(self.max_threads)
            self.threads = self.max_threads
