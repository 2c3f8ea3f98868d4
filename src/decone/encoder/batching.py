"""Batching for inference: tokenise once, batch by length, run the batches in one-core worker threads on CPU."""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from decone.errors import ConfigError


@dataclass
class Tokenized:
    """Token ids of a list of texts, unpadded, with each text's length, ready to batch by length."""

    input_ids: list[list[int]]

    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self.input_ids))


def cpu_workers(device: torch.device, n_batches: int, workers: int | None = None) -> int:
    """How many one-core worker threads :func:`run_batches` should use: 1 off CPU or for fewer than two batches."""
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    if device.type != "cpu" or n_batches < 2:
        return 1
    return min(torch.get_num_threads() if workers is None else workers, n_batches)


def run_batches(fn, batches: Sequence, workers: int = 1) -> None:
    """Call ``fn(batch)`` for every batch: in this thread, or spread over ``workers`` threads of one core each.

    Worker threads take the next batch from a shared iterator (long batches first keeps the tail short). Each sets its
    own intra-op thread count to 1 (an OpenMP per-thread setting), so ``workers`` GEMMs run side by side instead of
    one GEMM split over the cores; torch releases the GIL inside its kernels. The first error stops the others.
    """
    if workers <= 1:
        for batch in batches:
            fn(batch)
        return
    pending = iter(batches)
    lock = threading.Lock()
    failed = threading.Event()
    grad_enabled, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

    def worker() -> None:
        torch.set_num_threads(1)
        # grad modes are thread-local: carry the caller's into the worker
        with torch.inference_mode(inference), torch.set_grad_enabled(grad_enabled):
            while not failed.is_set():
                with lock:
                    batch = next(pending, None)
                if batch is None:
                    return
                try:
                    fn(batch)
                except BaseException:
                    failed.set()
                    raise

    # torch.set_num_threads also records a process-wide default that threads started later inherit: restore it
    threads = torch.get_num_threads()
    executor = ThreadPoolExecutor(workers, thread_name_prefix="decone-encode")
    try:
        for future in [executor.submit(worker) for _ in range(workers)]:
            future.result()
    except BaseException:  # a worker's error, or Ctrl-C in this thread: the others stop after their current batch
        failed.set()
        raise
    finally:
        executor.shutdown(wait=True)
        torch.set_num_threads(threads)


class Progress:
    """A rich progress bar that costs nothing when disabled."""

    def __init__(self, enabled: bool, description: str, total: int):
        self.bar = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn  # only when a bar is shown

            self.bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(description, total=total)

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.advance(self.task, n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def length_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length, longest first (so the padding of each batch is small)."""
    order = np.argsort(-lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def for_each_batch(encoder, sentences: Sequence[str], batch_size: int, fn, show_progress: bool | None = None,
                   workers: int | None = None, description: str = "encoding") -> None:
    """Tokenise once, batch by length, and call ``fn(idx, feats)`` for every batch, in eval mode.

    ``idx`` (B,) are the batch's positions in ``sentences``; ``feats`` holds ``input_ids`` and ``attention_mask``
    (B, L) on the encoder's device, padded to the batch's longest text. On CPU the batches run in one-core worker
    threads (:func:`run_batches`), so ``fn`` must only write to rows ``idx`` of shared outputs.
    """
    device = encoder.device
    was_training = encoder.training
    encoder.eval()
    tok = encoder.tokenize_ids(sentences)
    batches = length_batches(tok.lengths(), batch_size)
    if show_progress is None:
        show_progress = len(batches) > 20 and sys.stderr.isatty()
    progress = Progress(show_progress, description, len(batches))

    def one(idx: np.ndarray) -> None:
        fn(idx, {k: v.to(device) for k, v in encoder.collate([tok.input_ids[i] for i in idx]).items()})
        progress.advance()

    try:
        run_batches(one, batches, cpu_workers(device, len(batches), workers))
    finally:
        progress.close()
        encoder.train(was_training)


def collate(ids: Sequence[Sequence[int]], pad_id: int | None) -> dict[str, torch.Tensor]:
    """Pad a batch of id lists to its own longest member (dynamic padding, on the right).
    -> input_ids, attention_mask (B, L)."""
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id if pad_id is not None else 0, dtype=torch.long)
    attention_mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = torch.as_tensor(row, dtype=torch.long)
        attention_mask[i, : len(row)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}
