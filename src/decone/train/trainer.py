"""The trainer: ``setup`` builds the run, ``train_step`` is one optimizer step, ``run`` is the loop around it.

    batch of examples -> method views (K x B texts) -> objective.prepare -> objective.loss (ONE forward for
    embedding objectives) -> backward (whole, or in GradCache mini-batches) -> all-reduce (several processes) ->
    clip, AdamW step, schedule -> objective.after_step (EMA, queues)

bf16 autocast runs on CPUs with native bf16 and on GPUs. Checkpoints hold the weights, the objective's modules,
optimizer, scheduler, RNG states and position in the data order, written atomically: an interrupted run resumes
exactly.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from decone import distributed, lora
from decone.decoders import enable_bidirectional
from decone.card import data_fingerprint, hardware_info
from decone.data import Dataset, LineFile, read_dataset, read_scored_pairs
from decone.dropout import cpu_dropout
from decone.embedding_grad import KeptEmbeddingGrad
from decone.encoder import Encoder, MLPHead, Pooling, resolve_bf16
from decone.errors import ConfigError, DeconeError
from decone.evaluate.sts import spearman_on_pairs
from decone.gradcache import cached_loss_and_backward
from decone.methods import get_method
from decone.threads import CoreGovernor
from decone.train.batches import WindowBatches, batch_order, token_lengths
from decone.train.callbacks import RunLog, TrainProgress, TrainState, call, merge, note, warn
from decone.train.checkpoint import LOG_FILE, OutputFolder, load_checkpoint, prepare_output, save_checkpoint
from decone.train.config import TrainConfig, resolve_options
from decone.train.schedule import linear_schedule, make_optimizer
from decone.train.trainable import Trainable

# settings that must not change when a run is resumed (each compared where the interrupted run recorded it): what
# is trained, on what, in which order, with which objective and weights to fit the checkpoint
RESUME_KEYS = ("method", "model", "data", "text_column", "batch_size", "lr", "temperature", "pooling", "template", "seed",
               "max_steps", "epochs", "head", "max_length", "hard_negative_weight", "mask_span", "scl_lambda",
               "warmup_ratio", "weight_decay", "group_by_length", "attention", "lora_r", "lora_alpha", "lora_targets",
               "lora_dropout", "options")
PATH_KEYS = ("model", "data")  # compared as the folders or files they name, wherever the run is resumed from


def _same_setting(key: str, was, now) -> bool:
    """Whether a setting is what the interrupted run had. A model or data path is compared as the file it names when
    both spellings name one here; a recorded relative path that does not resolve from this directory cannot be
    checked and is taken as given; hub names and everything else are compared as values."""
    if key in PATH_KEYS and isinstance(was, str) and isinstance(now, str) and was and now:
        was_here, now_here = os.path.exists(was), os.path.exists(now)
        if was_here and now_here:
            return os.path.realpath(was) == os.path.realpath(now)
        if now_here and not os.path.isabs(was):
            return True
    return was == now


class Interrupted(DeconeError):
    """Training was interrupted (Ctrl-C); a checkpoint was saved."""

    exit_code = 130


class Trainer:
    """One training run. ``setup()`` (called by ``run()`` if not yet) may be called alone, e.g. by a benchmark that
    then times :meth:`train_step` on batches of its choice."""

    def __init__(self, config: TrainConfig, callbacks: Sequence = (), data: Dataset | None = None, console=None):
        self.given, self.callbacks, self.data, self.console = config, list(callbacks), data, console
        self.model: Trainable | None = None
        self._batches: tuple[int, list] | None = None  # (epoch, its batches): computed once an epoch

    # ------------------------------------------------------------------------------------------------- setup
    def setup(self) -> None:
        """Check everything, then load the data, the encoder and the objective, build the optimizer, resume."""
        cfg = self.config = self.given.resolved()
        self.method = get_method(cfg.method)
        self.dist = distributed.init_from_env()  # None unless launched by torchrun with WORLD_SIZE > 1
        self.main = self.dist is None or self.dist.is_main  # rank 0 alone writes the folder, logs, runs callbacks
        self.callbacks = self.callbacks if self.main else []
        self.resume_from = prepare_output(cfg)
        if self.dist is not None:
            self.dist.barrier()  # every rank has checked the output folder before rank 0 writes to it
        with ThreadPoolExecutor(1, thread_name_prefix="decone-data") as pool:  # read the data while the model loads
            reading = pool.submit(self._read_data)
            try:
                self._load_encoder()
            except BaseException:
                reading.result()  # a data error is reported first, as when the two ran one after the other
                raise
            self.data, first_epoch = reading.result()
            self._report_data()
        self.evaluator = self._dev_evaluator() if cfg.eval_data and self.main else None
        self._build_model()
        self.use_bf16 = resolve_bf16(cfg.bf16, self.device)
        note(f"precision: {_precision_reason(cfg.bf16, self.use_bf16, self.device)}", self.console)
        self.views_fn = self.method.views(cfg, self.encoder.tokenizer)
        self._fit_memory()
        self.labels = self.objective.labels(self.data)
        self.lengths = self._lengths()
        if first_epoch is not None:  # planned beside the model's loading; the tokens are counted as windows come
            self._batches = (0, first_epoch)
        self.per_epoch = len(self.epoch_batches(0))
        if self.per_epoch == 0:
            raise ConfigError(f"{self.data.source}: {len(self.data)} examples make no batch of >= 2")
        self.total = cfg.max_steps or cfg.epochs * self.per_epoch
        self.optimizer = make_optimizer(self.model, cfg.lr, cfg.weight_decay, self.device)
        self.scheduler = linear_schedule(self.optimizer, self.total, cfg.warmup_ratio)
        self.out = OutputFolder(cfg.output, cfg.keep_checkpoint)
        self.state = TrainState(cfg, self.encoder, self.out.path, self.out.path / LOG_FILE, max_steps=self.total)
        self.log = RunLog(self.state.log_path, self.main)
        self.data_info = None  # for the model card (file, count, sha256): hashed at the first save, not before step 1

    def _read_data(self) -> tuple[Dataset, WindowBatches | None]:
        """The training data and, for a large file, its first epoch's plan (the permutation and its windows: no
        model needed). Runs in a thread beside the model's loading: the file's index and the imports overlap on two
        cores."""
        cfg = self.config
        data = self.data
        if data is None:
            columns = {"text": cfg.text_column} if cfg.text_column else None
            data = read_dataset(cfg.data, self.method.data, columns=columns, encoding=cfg.encoding)
        if not self._windowed(data):
            return data, None
        return data, self._window_batches(len(data), 0)

    def _windowed(self, data: Dataset) -> bool:
        """A large file grouped by length: its batches come window by window (:class:`WindowBatches`)."""
        return (isinstance(data.examples, LineFile) and self.config.group_by_length and self.method.sampler is None
                and len(data) >= 2)

    def _window_batches(self, n: int, epoch: int) -> WindowBatches:
        world = self.dist.world_size if self.dist is not None else 1
        return WindowBatches(n, self.config.batch_size, self.config.seed, epoch,
                             count_tokens=self._count_tokens, min_size=max(2, world))

    def _count_tokens(self, idx: np.ndarray) -> list[int]:
        """Token counts of the examples ``idx`` (a window of a large file), each text cut at ``--max-length``."""
        return token_lengths(self.encoder, [self.data.examples[int(i)] for i in idx], self.config.max_length)

    def _report_data(self) -> None:
        if len(self.data) < 2:
            raise ConfigError(f"{self.data.source}: {len(self.data)} example; need at least 2")
        for message in self.data.warnings[:5]:
            warn(message)
        if len(self.data.warnings) > 5:
            warn(f"... and {len(self.data.warnings) - 5} more warnings about {self.data.source}")
        blank = f" ({self.data.skipped_blank} blank lines skipped)" if self.data.skipped_blank else ""
        note(f"read {len(self.data):,} examples from {self.data.source}{blank}", self.console)

    def _load_encoder(self) -> None:
        """The encoder; its pooling: the flag if given, else the folder's own (a sentence-tuned model keeps its
        pooling), else the method's. On resume, the settings must be those the run started with."""
        cfg = self.config
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        self.encoder = Encoder.load(cfg.model, pooling=None, allow_pickle=cfg.allow_pickle,
                                    trust_remote_code=cfg.trust_remote_code)
        self.encoder.check_max_length(cfg.max_length)
        if self.given.pooling is not None or not self.encoder.pooling_from_folder or cfg.pooling == "mask":
            self.encoder.pooling_module = Pooling(cfg.pooling, cfg.template if cfg.pooling == "mask" else None)
        cfg.pooling, cfg.template = self.encoder.pooling, self.encoder.pooling_module.template
        self.device = self.encoder.device
        started_fast = True
        if self.resume_from is not None:
            saved = json.loads((self.resume_from / "trainer_state.json").read_text())["config"]
            if "options" in saved:  # an option added since the run started counts at its default
                saved["options"] = resolve_options(self.method, saved["options"])
            for key in RESUME_KEYS:
                if key not in saved and key != "options":  # a run from before the key was checked
                    continue
                was, now = saved.get(key, {}), getattr(cfg, key)
                if not _same_setting(key, was, now):
                    raise ConfigError(f"--resume: {key} was {was!r} in the interrupted run, now {now!r}; keep it, "
                                      "or start again with --overwrite")
            started_fast = bool(saved.get("fast_dropout", False))  # runs from before decone.dropout used torch's
            if cfg.fast_dropout is not None and cfg.fast_dropout != started_fast and self.device.type == "cpu":
                flag = {True: "--fast-dropout", False: "--torch-dropout"}
                raise ConfigError(f"--resume: the interrupted run used {flag[started_fast]}, now {flag[cfg.fast_dropout]}; "
                                  "drop the flag to continue as it started")
        if cfg.fast_dropout is None:
            cfg.fast_dropout = started_fast

    def _build_model(self) -> None:
        """The training head, the objective (set up on the encoder and the data) and the :class:`Trainable`."""
        cfg = self.config
        torch.manual_seed(cfg.seed)
        head = MLPHead(self.encoder.model.config.hidden_size) if cfg.head in ("mlp-train", "mlp") else None
        if cfg.head == "mlp":  # kept: part of the saved encoder
            self.encoder.dense.append(head)
            head = None
        self.objective = self.method.objective(cfg)
        refusal = self.objective.gradcache_refusal if cfg.mini_batch_size else None
        if refusal:
            raise ConfigError(f"--mini-batch-size: {cfg.method}: {refusal}")
        if cfg.lora_r and self.objective.lora_refusal:
            raise ConfigError(f"--lora-r: {cfg.method}: {self.objective.lora_refusal}; use --lora-r 0")
        if self.dist is not None and self.objective.distributed_refusal:
            raise ConfigError(f"{cfg.method} on several processes: {self.objective.distributed_refusal}")
        self.model = Trainable(self.encoder, head, self.objective, max_length=cfg.max_length)
        rows = self.encoder.model.get_input_embeddings().num_embeddings
        self.objective.setup(self.model, self.data)
        if cfg.attention == "bidirectional":
            if not self.encoder.is_decoder:
                raise ConfigError("--attention bidirectional is for decoder models (GPT-2, Llama, Qwen, ...)")
            enable_bidirectional(self.encoder.model)
        if cfg.lora_r:  # after the objective's setup, which may resize the embeddings (mntp)
            note(lora.attach(self.encoder, cfg.lora_r, cfg.lora_alpha or 2 * cfg.lora_r, cfg.lora_targets,
                             cfg.lora_dropout) or "", self.console)
        if cfg.lora_save == "adapter":
            _check_adapter_save(self.encoder.model, rows)
        self.model.to(self.device)
        if self.resume_from is None:  # a resumed run takes every weight from its checkpoint
            self.objective.ready(self.model, self.data)
        if self.dist is not None:
            self.dist.broadcast_parameters(self.model)
            self.model.dist = self.dist
            if self.dist.rank > 0:  # each rank its own dropout masks
                torch.manual_seed(cfg.seed + 1_000_003 * self.dist.rank)

    def _fit_memory(self) -> None:
        """``--max-memory`` (default: what the process holds now plus 70% of the memory free now): where a step's
        estimated peak exceeds it, GradCache with the largest mini-batch that fits (the same loss and gradients),
        said at start. Without ``--max-memory`` an estimate that nothing fits only warns."""
        from decone import memory

        cfg = self.config
        if cfg.max_memory and self.device.type == "cpu" and memory.return_freed_memory():
            note("memory: freed activations go back to the system at once (a fixed malloc mmap threshold), so the "
                 "resident set stays near what is in use; this costs some speed", self.console)
        if cfg.mini_batch_size:
            return
        held, free = memory.held_and_free(self.device)
        budget = memory.parse_size(cfg.max_memory) if cfg.max_memory else held + int(memory.DEFAULT_SHARE * free)
        world = self.dist.world_size if self.dist is not None else 1
        batch = max(2, cfg.batch_size // world)  # this process's share of the global batch
        views = len(self.views_fn([self.data.examples[0], self.data.examples[1]], random.Random(0)))
        fixed = held + memory.optimizer_bytes(self.model)
        per_example = memory.activation_bytes(self.encoder.model.config, 1, views, cfg.max_length)
        size = memory.largest_mini_batch(fixed, per_example, batch, budget)
        if size == batch:
            return
        need = (f"a batch of {batch} x {views} views x {cfg.max_length} tokens needs about "
                f"{(fixed + batch * per_example) / 2**30:.1f} GB, over the budget of {budget / 2**30:.1f} GB"
                f"{'' if cfg.max_memory else ' (what this process holds plus 70% of the free memory; --max-memory sets it)'}")
        if self.objective.gradcache_refusal or size < 2:
            why = f"{cfg.method} cannot use GradCache ({self.objective.gradcache_refusal})" if size >= 2 else \
                "not even a mini-batch of 2 fits"
            if cfg.max_memory and size < 2:
                raise ConfigError(f"--max-memory {cfg.max_memory}: {need}, and {why}; raise it or use a smaller model")
            warn(f"memory: {need}, and {why}; lower --batch-size if the run runs out of memory")
            return
        cfg.mini_batch_size = size
        note(f"memory: {need}: GradCache with mini-batches of {size} (about "
             f"{(fixed + size * per_example) / 2**30:.1f} GB; the loss and gradients are the same)", self.console)

    def _lengths(self):
        """Each example's length, the key of length grouping: token counts; a large file's byte lengths (tokenising
        10M lines before the first step would take minutes)."""
        cfg, examples = self.config, self.data.examples
        if isinstance(examples, LineFile):  # windows are grouped by tokens as they come (WindowBatches)
            return examples.byte_lengths
        if cfg.group_by_length and self.method.sampler is None:
            return token_lengths(self.encoder, examples, cfg.max_length)
        return [sum(map(len, ex)) for ex in examples]

    def epoch_batches(self, epoch: int) -> Sequence[np.ndarray]:
        """The index arrays of one epoch's batches (a pure function of the seed and the epoch; the last one kept): a
        list, or for a large file a :class:`WindowBatches` (whose slices are iterators)."""
        if self._batches is None or self._batches[0] != epoch:
            self._batches = (epoch, self._epoch_batches(epoch))
        return self._batches[1]

    def _epoch_batches(self, epoch: int) -> list[np.ndarray]:
        cfg = self.config
        if self.method.sampler is not None:
            batches = self.method.sampler(self.data, cfg.batch_size, cfg.seed, epoch)
        elif self._windowed(self.data):
            return self._window_batches(len(self.data), epoch)  # short batches already left out for DDP
        else:
            batches = batch_order(self.lengths, cfg.batch_size, cfg.seed, epoch, cfg.group_by_length)
        return self._shard_filter(batches)

    def _shard_filter(self, batches: list[np.ndarray]) -> list[np.ndarray]:
        """Under DDP, only batches every process gets a share of."""
        return batches if self.dist is None else [b for b in batches if len(b) >= self.dist.world_size]

    # ------------------------------------------------------------------------------------------------- one step
    def train_step(self, idx: Sequence[int]) -> dict:
        """One optimizer step on the examples ``idx`` of the data; returns the step's metrics (``loss``, ...)."""
        cfg, model = self.config, self.model
        batch = [self.data.examples[i] for i in idx]
        views = self.views_fn(batch, random.Random(cfg.seed * 1_000_003 + self.state.step))  # K lists of B texts
        labels = self.labels[torch.as_tensor(np.asarray(idx))].to(self.device) if self.labels is not None else None
        if self.dist is not None:  # this rank's disjoint slice of the global batch (views made on the whole)
            views, labels = self.dist.shard_views(views), self.dist.shard_labels(labels)
        self.objective.prepare(model, views, self.use_bf16)
        if cfg.mini_batch_size and cfg.mini_batch_size < len(views[0]):  # GradCache: backward in mini-batches
            loss = cached_loss_and_backward(model, views, labels, self.use_bf16, cfg.mini_batch_size)
        else:
            loss = model.compute_loss(views, labels, self.use_bf16)
            loss.backward()
        if self.dist is not None:
            self.dist.all_reduce_grads(model)
            loss = self.dist.mean_scalar(loss)  # the global batch's loss
        if cfg.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)  # frozen modules have no grad
        self.optimizer.step()
        self.scheduler.step()
        self.kept_grad.zero_grad(self.optimizer)
        metrics = {"loss": float(loss.detach())}
        metrics.update(self.objective.after_step(model) or {})
        self.state.step += 1
        self.state.last_loss = metrics["loss"]
        if not math.isfinite(metrics["loss"]):
            raise DeconeError(f"loss became {metrics['loss']} at step {self.state.step}; lower --lr or raise --temperature")
        return metrics

    # ------------------------------------------------------------------------------------------------- the loop
    def run(self) -> dict:
        """Set up (unless done), train to the last step, save the model; returns the training summary."""
        if self.model is None:
            self.setup()
        finished, interrupted = False, {"flag": False}
        previous_handler = _install_sigint(interrupted)
        with contextlib.ExitStack() as stack:
            try:
                self._start(stack)
                self.model.train()
                while self.state.step < self.total:
                    self.state.epoch, offset = divmod(self.state.step, self.per_epoch)
                    for idx in self.epoch_batches(self.state.epoch)[offset:]:
                        metrics = self.train_step(idx)
                        if self.dist is not None:
                            interrupted["flag"] = self.dist.any(interrupted["flag"])
                        self._after_step(metrics, len(idx), interrupted["flag"])
                        if self.state.step >= self.total:
                            break
                summary = self._finish()
                finished = True
                return summary
            finally:
                signal.signal(signal.SIGINT, previous_handler)
                if self.main:
                    message = self.out.close(finished)
                    if message and not finished:
                        note(message, self.console)
                if self.dist is not None and self.dist.owns_group:
                    stack.callback(distributed.destroy, synchronise=finished, ctx=self.dist)

    def _start(self, stack: contextlib.ExitStack) -> None:
        """Open the folder (lock), resume, and enter the run's contexts (CPU dropout, kept gradient, threads)."""
        cfg = self.config
        if self.main:
            self.out.open(overwrite=cfg.overwrite and self.resume_from is None)
        if self.resume_from is not None:
            try:
                saved = load_checkpoint(self.resume_from, self.model, self.optimizer, self.scheduler)
            except torch.OutOfMemoryError:
                raise
            except (RuntimeError, KeyError, ValueError) as exc:  # weights or optimizer state of another shape
                line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                raise ConfigError(f"--resume: {self.resume_from} does not fit this model ({line}); start again "
                                  "with --overwrite") from None
            self.state.step, self.state.best_metric, self.state.best_step = saved["step"], saved["best_metric"], saved["best_step"]
            if self.dist is not None and self.dist.rank > 0:  # the checkpoint holds rank 0's RNG
                torch.manual_seed(cfg.seed + 1_000_003 * self.dist.rank + self.state.step)
        self.log.start(self.state.step if self.resume_from is not None else None)
        stack.enter_context(self.stepping())
        self.governor = None
        if cfg.adaptive_threads and self.device.type == "cpu":  # give cores back while other processes need them
            self.governor = CoreGovernor(torch.get_num_threads())
            stack.callback(self.governor.restore)
        self.progress = TrainProgress(self.total, self.state.step, self.console) if self.main else distributed.NoProgress()
        stack.callback(self.progress.close)
        self.t_start, self.examples, self.t_last, self.n_last = time.perf_counter(), 0, time.perf_counter(), 0
        if self.state.step == 0:
            row = merge({}, call(self.callbacks, "on_train_begin", self.state))
            if row:
                self._write_row({"step": 0, **row})

    def _after_step(self, metrics: dict, n_examples: int, interrupted: bool) -> None:
        """Log, evaluate (saving the best model), checkpoint, and stop cleanly after Ctrl-C."""
        cfg, state = self.config, self.state
        self.examples += n_examples
        row: dict = {}
        if self.governor is not None:
            self.governor.step()
        if state.step % cfg.log_every == 0 or state.step == self.total:
            now = time.perf_counter()
            speed = (self.examples - self.n_last) / max(now - self.t_last, 1e-9)
            self.t_last, self.n_last = now, self.examples
            row = {"step": state.step, "epoch": state.epoch, "loss": round(metrics["loss"], 6),
                   "lr": self.scheduler.get_last_lr()[0], "sentences_per_s": round(speed, 1),
                   **{k: v for k, v in metrics.items() if k != "loss"}}
            if self.governor is not None and self.governor.enabled:  # the thread count this row's steps ended with
                row["threads"] = self.governor.threads
            self.progress.speed = speed
        if self.evaluator is not None and (state.step % cfg.eval_every == 0 or state.step == self.total):
            score = self.evaluator(self.encoder)
            row.update(step=state.step, eval_spearman=round(score, 4))
            if state.best_metric is None or score > state.best_metric:
                state.best_metric, state.best_step = score, state.step
                self._save_model(final=False)
        row = merge(row, call(self.callbacks, "on_step_end", state))
        if row:
            self._write_row({"step": state.step, **row})
        self.progress.update(state.step, metrics["loss"])
        if state.step % cfg.save_every == 0 or interrupted:
            self.checkpoint()
        if interrupted:
            raise Interrupted(f"interrupted at step {state.step}/{self.total}; checkpoint saved in "
                              f"{self.out.path / 'checkpoint'}; continue with --resume")

    @contextlib.contextmanager
    def stepping(self):
        """The contexts :meth:`train_step` runs in (``run`` enters them; a benchmark timing steps does too)."""
        with contextlib.ExitStack() as stack:
            if self.config.fast_dropout:  # CPU: dropout masks from a quarter of torch's random numbers (decone.dropout)
                stack.enter_context(cpu_dropout(self.encoder.model))
            # CPU: the word-embedding gradient stays allocated and is filled row by row (decone.embedding_grad)
            self.kept_grad = stack.enter_context(KeptEmbeddingGrad.for_model(self.encoder.model, self.device))
            yield self

    def _write_row(self, row: dict) -> None:
        if self.main:
            self.log.write(row)
            call(self.callbacks, "on_log", self.state, row)

    def checkpoint(self) -> None:
        """Rank 0 writes the checkpoint; the others wait for it."""
        if self.main:
            save_checkpoint(self.out.path, self.model, self.optimizer, self.scheduler, self.state)
        if self.dist is not None:
            self.dist.barrier()

    def _finish(self) -> dict:
        summary = self.summary()
        if self.main:
            if self.config.keep_checkpoint:
                save_checkpoint(self.out.path, self.model, self.optimizer, self.scheduler, self.state)
            if self.evaluator is None:
                self._save_model(final=True)
            else:  # the best model is already saved; record the summary
                _update_summary(self.out.path, summary)
        if self.dist is not None:
            self.dist.barrier()  # the others wait until rank 0 has written the model
        call(self.callbacks, "on_train_end", self.state)
        return summary

    def summary(self) -> dict:
        elapsed = time.perf_counter() - self.t_start
        return {"steps": self.state.step, "final_loss": self.state.last_loss, "wall_time_s": round(elapsed, 2),
                "sentences_per_s": round(self.examples / max(elapsed, 1e-9), 1),
                "best_eval_spearman": self.state.best_metric, "best_step": self.state.best_step}

    def _save_model(self, final: bool) -> None:
        """Save the encoder (and whatever the objective keeps, e.g. a classifier head); rank 0 only."""
        if not self.main:
            return
        if self.data_info is None:
            self.data_info = data_fingerprint(self.data.source, len(self.data))
        meta = {"method": self.config.method, "config": asdict(self.config), "summary": self.summary(),
                "data": self.data_info, "hardware": hardware_info()}
        warnings = self.objective.encoder_to_save(self.model).save(self.out.path, meta=meta, lora_save=self.config.lora_save)
        self.objective.save(self.out.path)
        for w in warnings:
            if final or self.state.best_step == self.state.step:
                warn(w)

    def _dev_evaluator(self):
        """Spearman x100 on a small (s1, s2, score) dev file, the trainer's model-selection signal."""
        pairs = read_scored_pairs(self.config.eval_data)
        return lambda encoder: spearman_on_pairs(encoder, pairs, bf16=self.config.bf16)


def _check_adapter_save(model, rows_at_load: int) -> None:
    """``--lora-save adapter`` checked before training: :func:`lora.check_adapter_save`, and a base that the adapter
    alone completes (no embeddings resized for an added token)."""
    lora.check_adapter_save(model)
    if model.get_input_embeddings().num_embeddings != rows_at_load:
        raise ConfigError("--lora-save adapter: the embeddings were resized for an added token, which an adapter "
                          "cannot carry; use --lora-save merged, or an existing token (mntp: --set mask_token=_)")


def _precision_reason(asked: bool | None, use_bf16: bool, device: torch.device) -> str:
    if asked is not None:
        return f"{'bf16' if use_bf16 else 'fp32'} (as asked)"
    if device.type == "cpu":
        return "bf16 autocast (this CPU has native bf16)" if use_bf16 else \
            "fp32 (this CPU has no native bf16: emulated bf16 would be far slower)"
    return f"{'bf16' if use_bf16 else 'fp32'} ({device.type})"


def _update_summary(out: Path, summary: dict) -> None:
    path = out / "decone.json"
    info = json.loads(path.read_text())
    info["summary"] = summary
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp, path)


def _install_sigint(flag: dict):
    def handler(signum, frame):
        if flag["flag"]:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        flag["flag"] = True

    try:
        return signal.signal(signal.SIGINT, handler)
    except ValueError:  # not in the main thread
        return signal.getsignal(signal.SIGINT)
