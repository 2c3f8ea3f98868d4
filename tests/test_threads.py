"""decone.threads: the core governor of CPU training, and which processes let OpenMP threads spin."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

import pytest
import torch

from decone import _is_train_command
from decone import threads as T
from decone.train import TrainConfig, fit


@pytest.mark.parametrize("max_threads,cores,others,want", [
    (2, 2, 0.0, 2), (2, 2, 0.3, 2), (2, 2, 0.5, 1), (2, 2, 0.7, 1), (2, 2, 1.0, 1), (2, 2, 2.0, 1),
    (8, 16, 4.0, 8), (8, 16, 12.0, 4), (8, 16, 11.6, 4), (8, 16, 11.4, 5), (4, 4, -0.2, 4), (1, 2, 0.0, 1),
])
def test_threads_for_leaves_other_processes_their_cores(max_threads, cores, others, want):
    assert T.threads_for(max_threads, cores, others) == want


def test_proc_stat_sample_counts_busy_time_and_cores(tmp_path):
    stat = tmp_path / "stat"
    #                user nice system idle  iowait irq softirq steal guest guest_nice
    stat.write_text("cpu  100 10 50 1000 40 5 5 2 7 0\ncpu0 50 5 25 500 20 2 3 1 0 0\ncpu1 50 5 25 500 20 3 2 1 7 0\n"
                    "intr 12345\nctxt 678\n")
    (busy, own), cores = T.proc_stat_sample(str(stat))
    assert cores == 2
    assert busy == pytest.approx((100 + 10 + 50 + 5 + 5 + 2) / os.sysconf("SC_CLK_TCK"))  # no idle, iowait, guest
    assert math.isfinite(own) and own >= 0  # this process's CPU time (from /proc/self/stat)
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:  # busy work: 0.3 s of this process's CPU
        sum(i * i for i in range(1000))
    (_, own_after), _ = T.proc_stat_sample(str(stat))
    assert own_after >= own + 0.15  # clock ticks are 10 ms; the busy work shows up
    assert T.proc_stat_sample(str(tmp_path / "missing")) is None
    (tmp_path / "bad").write_text("intr 1\n")
    assert T.proc_stat_sample(str(tmp_path / "bad")) is None


class FakeMachine:
    """/proc/stat and a clock: ``others`` cores of other processes' work and ``own`` of ours per second."""

    def __init__(self, cores=2):
        self.t, self.all, self.own, self.cores = 0.0, 0.0, 0.0, cores
        self.set_calls: list[int] = []

    def run(self, seconds: float, others: float, own: float) -> None:
        self.t += seconds
        self.all += seconds * (others + own)
        self.own += seconds * own

    def governor(self, max_threads=2, window_s=2.0) -> T.CoreGovernor:
        return T.CoreGovernor(max_threads, window_s=window_s, sample=lambda: ((self.all, self.own), self.cores),
                              set_threads=self.set_calls.append, clock=lambda: self.t)


def test_governor_gives_a_core_back_while_another_process_is_busy_and_takes_it_back_after():
    m = FakeMachine()
    g = m.governor()
    assert g.enabled and g.threads == 2
    m.run(1.0, others=1.0, own=1.0)
    assert g.step() is None and m.set_calls == []  # within the first window: nothing decided yet
    m.run(1.5, others=0.67, own=1.33)  # CFS gives the busy process a third of the two cores
    assert g.step() == 1 and m.set_calls == [1]
    m.run(2.5, others=1.0, own=1.0)
    assert g.step() is None and g.threads == 1  # still busy: stays at one
    m.run(2.5, others=0.05, own=1.0)  # the other process stopped
    assert g.step() == 2 and m.set_calls == [1, 2]
    m.run(2.5, others=0.2, own=2.0)  # light background work keeps both threads
    assert g.step() is None and g.threads == 2


def test_governor_restore_returns_to_the_starting_thread_count():
    m = FakeMachine()
    g = m.governor()
    m.run(3.0, others=1.0, own=1.0)
    assert g.step() == 1
    g.restore()
    assert g.threads == 2 and m.set_calls == [1, 2]
    g.restore()  # idempotent
    assert m.set_calls == [1, 2]


def test_governor_is_off_with_one_thread_or_without_proc_stat():
    m = FakeMachine()
    one = m.governor(max_threads=1)
    m.run(5.0, others=2.0, own=1.0)
    assert not one.enabled and one.step() is None
    blind = T.CoreGovernor(2, sample=lambda: None, set_threads=m.set_calls.append)
    assert not blind.enabled and blind.step() is None and m.set_calls == []


def test_fit_follows_the_governor_logs_threads_and_restores_them(tmp_path, tiny_model_dir, monkeypatch):
    """A machine whose other processes stay busy: fit drops to one thread, logs it, and restores torch's count."""
    m = FakeMachine(cores=2)

    class Busy(T.CoreGovernor):
        def __init__(self, max_threads):
            super().__init__(max_threads, window_s=1.5, sample=lambda: ((m.all, m.own), m.cores), clock=lambda: m.t)

        def step(self):
            m.run(1.0, others=1.0, own=1.0)
            return super().step()

    import decone.train.trainer

    monkeypatch.setattr(decone.train.trainer, "CoreGovernor", Busy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        data = tmp_path / "s.txt"
        data.write_text("\n".join(f"sentence number {i} about the cat and the dog" for i in range(32)) + "\n")
        fit(TrainConfig(method="simcse", model=str(tiny_model_dir), data=str(data), output=str(tmp_path / "a"),
                        max_steps=4, batch_size=8, log_every=1, bf16=False))
        assert torch.get_num_threads() == 2  # restored after the run
        rows = [json.loads(x) for x in (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()]
        assert [r["threads"] for r in rows] == [2, 1, 1, 1]  # the first window ends at step 2
        fit(TrainConfig(method="simcse", model=str(tiny_model_dir), data=str(data), output=str(tmp_path / "b"),
                        max_steps=4, batch_size=8, log_every=1, bf16=False, adaptive_threads=False))
        fixed = [json.loads(x) for x in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
        assert all("threads" not in r for r in fixed)
        assert [r["loss"] for r in fixed] == pytest.approx([r["loss"] for r in rows], abs=1e-6)  # speed, not maths
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("argv,train", [
    (["/usr/bin/decone", "train", "simcse"], True), (["-m", "train", "--help"], True),
    (["/usr/bin/decone", "encode", "x"], False), (["-m", "eval"], False), (["/usr/bin/pytest", "train"], False),
    (["script.py", "train"], False), (["/usr/bin/decone"], False),
])
def test_is_train_command(argv, train):
    assert _is_train_command(argv) is train


@pytest.mark.parametrize("args,policy", [(["train", "--help"], "None"), (["encode", "--help"], "PASSIVE")])
def test_only_decone_train_lets_openmp_threads_spin(tmp_path, args, policy):
    """Through the real entry point: `python -m decone train` leaves OMP_WAIT_POLICY unset, other commands sleep."""
    (tmp_path / "sitecustomize.py").write_text(
        "import atexit, os, sys\n"
        "atexit.register(lambda: sys.stderr.write('OMP=%s\\n' % os.environ.get('OMP_WAIT_POLICY')))\n")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-m", "decone", *args], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"OMP={policy}" in proc.stderr
