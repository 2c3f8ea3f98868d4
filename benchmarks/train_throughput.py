"""CPU training throughput: decone ``simcse`` against sentence-transformers' own SimCSE recipe.

    python benchmarks/train_throughput.py                      # both models, 30 timed steps after 5 warm-up steps
    python benchmarks/train_throughput.py --models minilm --steps 10 --rounds 3
    python benchmarks/train_throughput.py --whole-command --models minilm --steps 60   # start-up + training + save

Both sides train the same encoder on the same 10k sentences (the Mirror-BERT STS-B sample), batch 64, max length 32,
for a fixed number of optimizer steps after a warm-up:

* decone: ``decone.train.fit`` with method ``simcse`` (the CLI's code path: length-grouped batches, one forward over
  both dropout views, bf16 autocast where the CPU has native bf16, fused AdamW, gradient clipping);
* the peer: ``SentenceTransformerTrainer`` + ``MultipleNegativesRankingLoss`` over ``(s, s)`` pairs (the
  sentence-transformers SimCSE recipe), measured twice: its default training arguments, and with ``bf16=True``.

Throughput is training examples per second: 64 per optimizer step on both sides (each example is embedded twice).
Each system runs in its own subprocess; with ``--rounds R`` the systems alternate R times and the median is reported
(with the range), since other work on a shared machine moves single timings.

Achieved FLOP/s counts the useful work of the timed steps: 6 x non-embedding parameters x real (non-padding) tokens,
plus attention (4 L^2 H per layer and sequence forward, x3 with backward) at each sequence's real length L; the
embedding lookup, pooler, heads, loss and optimizer are not counted. The tokens are counted by a hook on the encoder,
so padding that a system adds is not credited to it (its padded-token count is printed beside). The 2048^3 GEMM
peak in fp32 and bf16 is measured in the same run, before and after the workers.

``--whole-command`` times whole processes instead, as a user waits for them: ``decone train simcse`` (the console
script: imports, model load, data, training, the final save) against a script that does the same with
sentence-transformers (import, load, its SimCSE recipe for the same steps, ``save``). It prints each side's wall
time, its training time (decone's from the saved ``decone.json``, the peer's ``train_runtime``) and the rest
(start-up plus save; target <= 8 s for MiniLM), and decone's whole command against the peer's training time alone
(target >= 2.5x on CPUs without native bf16) and against the peer's whole script.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

SYSTEMS = ("decone", "st-default", "st-bf16")
WORKERS = (*SYSTEMS, "st-script")


# ---------------------------------------------------------------------------------------------------------- workers
class _StepTimer:
    """Step-end timestamps and token counts at the end of warm-up and of the timed steps."""

    def __init__(self, warmup: int, steps: int, counter: C.TokenCounter):
        self.warmup, self.steps, self.counter = warmup, steps, counter
        self.marks: dict[int, tuple[float, tuple]] = {}

    def mark(self, step: int) -> None:
        if step in (self.warmup, self.warmup + self.steps):
            self.marks[step] = (time.perf_counter(), time.process_time(), self.counter.snapshot())

    def result(self, batch_size: int, shape: dict) -> dict:
        (t0, p0, c0), (t1, p1, c1) = self.marks[self.warmup], self.marks[self.warmup + self.steps]
        real, padded, sum_sq, _ = (b - a for a, b in zip(c0, c1))
        seconds, cpu_seconds = t1 - t0, p1 - p0
        flops = C.train_flops(shape, real, sum_sq)
        return {"seconds": seconds, "cpu_seconds": cpu_seconds, "steps": self.steps,
                "sentences_per_s": self.steps * batch_size / seconds,
                "sentences_per_cpu_s": self.steps * batch_size / cpu_seconds,
                "real_tokens": real, "padded_tokens": padded, "flops": flops, "flops_per_s": flops / seconds,
                "flops_per_cpu_s": flops / cpu_seconds, **shape}


def worker_decone(a) -> dict:
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)

    from decone.data import read_dataset
    from decone.train import TrainConfig, fit

    counter = C.TokenCounter()
    timer = _StepTimer(a.warmup, a.steps, counter)
    info: dict = {}

    class Callback:
        def on_train_begin(self, state):
            counter.attach(state.encoder.model)
            info["shape"] = C.encoder_shape(state.encoder.model)
            timer.mark(0)

        def on_step_end(self, state):
            timer.mark(state.step)

    data = read_dataset(str(C.shared() / C.SENTS_10K), "sentences")
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainConfig(method="simcse", model=C.model_path(a.model), output=out, batch_size=a.batch_size,
                          max_length=a.max_length, max_steps=a.warmup + a.steps, save_every=10**9, log_every=10**9,
                          bf16=None if a.bf16 == "auto" else a.bf16 == "on", seed=42)
        summary = fit(cfg, callbacks=[Callback()], data=data)
    res = timer.result(a.batch_size, info["shape"])
    res.update(system="decone", model=a.model, threads=torch.get_num_threads(), final_loss=summary["final_loss"])
    return res


def worker_st(a, bf16: bool) -> dict:
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    from sentence_transformers import SentenceTransformer
    from transformers import TrainerCallback

    sents = (C.shared() / C.SENTS_10K).read_text(encoding="utf-8").splitlines()
    sents = [s for s in sents if s.strip()]
    model = SentenceTransformer(C.model_path(a.model), device="cpu")
    model.max_seq_length = a.max_length
    hf = model[0].auto_model
    counter = C.TokenCounter().attach(hf)
    timer = _StepTimer(a.warmup, a.steps, counter)

    class Timer(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            timer.mark(0)

        def on_step_end(self, args, state, control, **kw):
            timer.mark(state.global_step)

    with tempfile.TemporaryDirectory() as out:
        trainer, args = C.st_simcse_trainer(model, sents, out, a.batch_size, a.warmup + a.steps, bf16,
                                            callbacks=[Timer()])
        trainer.train()
    res = timer.result(a.batch_size, C.encoder_shape(hf))
    res.update(system="st-bf16" if bf16 else "st-default", model=a.model, threads=torch.get_num_threads(),
               optim=str(args.optim))
    return res


def worker_st_script(a) -> dict:
    """The peer's whole script: import, load, train ``a.steps`` steps of its SimCSE recipe, save."""
    import torch

    from sentence_transformers import SentenceTransformer

    sents = [s for s in (C.shared() / C.SENTS_10K).read_text(encoding="utf-8").splitlines() if s.strip()]
    model = SentenceTransformer(C.model_path(a.model), device="cpu")
    model.max_seq_length = a.max_length
    with tempfile.TemporaryDirectory() as out:
        trainer, _ = C.st_simcse_trainer(model, sents, out, a.batch_size, a.steps, False)
        metrics = trainer.train().metrics
        model.save(str(Path(out) / "model"))
    return {"train_s": metrics["train_runtime"], "threads": torch.get_num_threads()}


def whole_command(a, models: list[str]) -> None:
    """``--whole-command``: decone's console script against the peer's whole script, each in a fresh process."""
    import subprocess

    data = str(C.shared() / C.SENTS_10K)
    print(f"whole commands: simcse, {a.steps} steps of batch {a.batch_size}, max_length {a.max_length}, "
          f"{a.rounds} round(s), median; decone's bf16: {a.bf16}, the peer's script: fp32 (its default)")
    for m in models:
        runs = {"decone": [], "peer": []}
        for r in range(a.rounds):
            with tempfile.TemporaryDirectory() as tmp:
                t = time.perf_counter()
                subprocess.run(["decone", "train", "simcse", "--model", C.model_path(m), "--data", data,
                                "--max-steps", str(a.steps), "--batch-size", str(a.batch_size), "--max-length",
                                str(a.max_length), "--output", f"{tmp}/out",
                                *({"on": ["--bf16"], "off": ["--no-bf16"]}.get(a.bf16, []))],
                               check=True, capture_output=True)
                wall = time.perf_counter() - t
                train = json.loads(Path(f"{tmp}/out/decone.json").read_text())["summary"]["wall_time_s"]
            runs["decone"].append((wall, train))
            t = time.perf_counter()
            res = C.run_worker([str(Path(__file__).resolve()), "--worker", "st-script", "--model", m, "--steps",
                                str(a.steps), "--batch-size", str(a.batch_size), "--max-length", str(a.max_length)])
            runs["peer"].append((time.perf_counter() - t, res["train_s"]))
            print(f"  round {r + 1}: decone {runs['decone'][-1][0]:.1f} s (training {train:.1f} s), peer "
                  f"{runs['peer'][-1][0]:.1f} s (training {res['train_s']:.1f} s)", flush=True)
        med = {k: (statistics.median(w for w, _ in v), statistics.median(t for _, t in v)) for k, v in runs.items()}
        (dw, dt), (pw, pt) = med["decone"], med["peer"]
        print(f"{m}: decone whole {dw:.1f} s = training {dt:.1f} s + start-up and save {dw - dt:.1f} s "
              f"(target <= 8 s: {'met' if dw - dt <= 8 else 'NOT met'}); peer whole {pw:.1f} s = training {pt:.1f} s "
              f"+ {pw - pt:.1f} s")
        print(f"{m}: decone's whole command vs the peer's training alone: {pt / dw:.2f}x; whole vs whole: {pw / dw:.2f}x")


def mean_tokens(model: str, max_length: int) -> float:
    """Mean tokens per sentence of the training file (truncated at max_length), with the model's tokenizer."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(C.model_path(model))
    sents = [s for s in (C.shared() / C.SENTS_10K).read_text(encoding="utf-8").splitlines() if s.strip()]
    ids = tok(sents, truncation=True, max_length=max_length)["input_ids"]
    return sum(len(x) for x in ids) / len(ids)


# ---------------------------------------------------------------------------------------------------------- driver
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="raw-mini,minilm", help="comma-separated: raw-mini, minilm, or model folders")
    p.add_argument("--systems", default=",".join(SYSTEMS))
    p.add_argument("--steps", type=int, default=30, help="timed optimizer steps (after --warmup)")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=32)
    p.add_argument("--rounds", type=int, default=1, help="alternate the systems this many times; report the median")
    p.add_argument("--bf16", default="auto", choices=["auto", "on", "off"], help="decone's bf16 (auto: CPU support)")
    p.add_argument("--threads", type=int, default=0, help="torch threads in every worker (0: torch's default)")
    C.add_omp_flag(p, training=True)
    p.add_argument("--json", help="also write all results here")
    p.add_argument("--whole-command", action="store_true",
                   help="time whole processes: `decone train simcse` against the peer's whole script")
    p.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    a = p.parse_args()
    C.set_omp(a)

    if a.worker:
        res = worker_decone(a) if a.worker == "decone" else worker_st_script(a) if a.worker == "st-script" \
            else worker_st(a, bf16=a.worker == "st-bf16")
        print(json.dumps(res))
        return
    if a.whole_command:
        print(C.machine_line(C.machine()))
        return whole_command(a, a.models.split(","))

    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    info = C.machine()
    print(C.machine_line(info))
    peak_before = C.gemm_peak()
    print(f"GEMM 2048^3 peak: {C.peak_line(peak_before)}")
    models = a.models.split(",")
    systems = a.systems.split(",")
    if not C.native_bf16():
        print(C.NO_BF16)
        systems = [s for s in systems if s != "st-bf16"]
        if a.bf16 == "on":
            raise SystemExit("--bf16 on: " + C.NO_BF16)
    results: list[dict] = []
    base = [str(Path(__file__).resolve()), "--steps", str(a.steps), "--warmup", str(a.warmup),
            "--batch-size", str(a.batch_size), "--max-length", str(a.max_length), "--bf16", a.bf16,
            "--threads", str(a.threads)]
    for r in range(a.rounds):
        for m in models:
            for s in systems:
                t = time.perf_counter()
                res = C.run_worker([*base, "--worker", s, "--model", m])
                res["round"] = r
                results.append(res)
                print(f"  round {r + 1}/{a.rounds} {m:>9} {s:<10} {res['sentences_per_s']:8.1f} sent/s "
                      f"{C.gflops(res['flops_per_s']):>7} GFLOP/s  (worker {time.perf_counter() - t:.0f} s)",
                      flush=True)
    peak_after = C.gemm_peak()
    kinds = ("fp32", "bf16") if peak_before["bf16"] else ("fp32",)
    peak = {k: max(peak_before[k]["best"], peak_after[k]["best"]) for k in kinds}
    peak_cpu = {k: max(peak_before[k]["per_cpu_s"], peak_after[k]["per_cpu_s"]) for k in kinds}
    ref = "bf16" if "bf16" in peak else "fp32"  # the fastest arithmetic this CPU has natively
    print(f"GEMM 2048^3 peak after: {C.peak_line(peak_after)}; load {C.machine()['loadavg_1m']:.2f}")

    threads = results[0]["threads"] if results else 0
    mean_len = {m: mean_tokens(m, a.max_length) for m in models}
    for x in results:  # examples/s at the dataset's mean length: tokens/s over (2 views x mean tokens per sentence)
        x["adjusted_sentences_per_s"] = x["real_tokens"] / x["seconds"] / (2 * mean_len[x["model"]])
    print()
    print(f"batch {a.batch_size}, max_length {a.max_length}, {a.steps} timed steps after {a.warmup} warm-up, "
          f"{threads} torch thread(s); sentences/s = 64 training examples per step; median (min-max) over rounds")
    print("wall: sentences per wall-clock second; cpu: per CPU-second of the process (all its threads), which other")
    print("processes on the machine disturb much less than wall-clock time; GFLOP/cpu-s is against the GEMM's own")
    print("per CPU-second peak; adj: real tokens/s / (2 x the dataset's mean tokens per sentence), i.e. sentences/s")
    print("corrected for the lengths of the sentences that the timed steps happened to draw")
    head = f"{'model':>9} {'system':<11} {'wall sentences/s':>28} {'adj':>6} {'cpu sent/s':>10} {'GFLOP/s':>8} " \
           f"{'%fp32pk':>7} {'%' + ref + 'pk':>7} {'GFLOP/cpu-s (%' + ref + ')':>11} {'tokens/step':>11} {'padded/step':>11}"
    print(head)
    print("-" * len(head))
    wall: dict = {}
    cpu: dict = {}
    adj: dict = {}
    for m in models:
        for s in systems:
            rows = [x for x in results if x["model"] == m and x["system"] == s]
            if not rows:
                continue
            sps = [x["sentences_per_s"] for x in rows]
            fl = statistics.median(x["flops_per_s"] for x in rows)
            wall[(m, s)] = statistics.median(sps)
            adj[(m, s)] = statistics.median(x["adjusted_sentences_per_s"] for x in rows)
            cpu[(m, s)] = statistics.median(x["sentences_per_cpu_s"] for x in rows)
            flc = statistics.median(x["flops_per_cpu_s"] for x in rows)
            print(f"{m:>9} {s:<11} {C.spread(sps):>28} {adj[(m, s)]:>6.1f} {cpu[(m, s)]:>10.1f} {C.gflops(fl):>8} "
                  f"{100 * fl / peak['fp32']:>6.0f}% {100 * fl / peak[ref]:>6.0f}% {C.gflops(flc):>6} ({100 * flc / peak_cpu[ref]:.0f}%) "
                  f"{rows[0]['real_tokens'] / rows[0]['steps']:>11.0f} {rows[0]['padded_tokens'] / rows[0]['steps']:>11.0f}")
    print()
    for m in models:
        if (m, "decone") not in wall:
            continue
        parts = []
        for s in ("st-default", "st-bf16"):
            if (m, s) in wall:
                parts.append(f"{wall[(m, 'decone')] / wall[(m, s)]:.2f}x {s} (length-adjusted "
                             f"{adj[(m, 'decone')] / adj[(m, s)]:.2f}x, cpu-time {cpu[(m, 'decone')] / cpu[(m, s)]:.2f}x)")
        print(f"{m}: decone = " + ", ".join(parts))
    if a.json:
        Path(a.json).write_text(json.dumps({"machine": info, "gemm_peak_before": peak_before,
                                            "gemm_peak_after": peak_after, "results": results}, indent=2))


if __name__ == "__main__":
    main()
