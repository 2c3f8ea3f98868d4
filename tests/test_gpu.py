"""The CUDA path: bf16 autocast, fused AdamW, SDPA attention, and DDP over NCCL (2+ GPUs). Skipped without a GPU;
``python benchmarks/gpu.py`` runs them with the GPU benchmarks."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

SENTS = [f"sentence number {i} about {w}" for i, w in enumerate(("cats dogs cars trees roads music books water "
                                                                 "cities rivers").split() * 4)]


@pytest.fixture()
def data(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text("\n".join(SENTS) + "\n")
    return path


def test_training_on_cuda_uses_bf16_fused_adamw_and_sdpa(tiny_model_dir, data, tmp_path):
    from decone.train import TrainConfig, Trainer

    trainer = Trainer(TrainConfig(method="simcse", model=str(tiny_model_dir), data=str(data), output=str(tmp_path / "o"),
                                  max_steps=3, batch_size=16, max_length=16, pooling="mean", log_every=1))
    trainer.setup()
    assert trainer.device.type == "cuda" and trainer.use_bf16 == torch.cuda.is_bf16_supported()
    assert all(group.get("fused") for group in trainer.optimizer.param_groups)
    assert trainer.encoder.model.config._attn_implementation == "sdpa"
    summary = trainer.run()
    assert summary["steps"] == 3 and torch.isfinite(torch.tensor(summary["final_loss"]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _nccl_worker(rank: int, world: int, port: int, model: str, data: str, out: str) -> None:
    from decone.train import TrainConfig, fit

    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    fit(TrainConfig(method="simcse", model=model, data=data, output=out, max_steps=3, batch_size=16, max_length=16,
                    pooling="mean", log_every=1, bf16=False))


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="DDP over NCCL needs 2 GPUs")
def test_ddp_over_nccl_trains_and_rank_zero_writes_once(tiny_model_dir, data, tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_nccl_worker, args=(2, _free_port(), str(tiny_model_dir), str(data), str(tmp_path / "ddp")), nprocs=2,
             join=True)
    log = [json.loads(x) for x in (tmp_path / "ddp" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3]
    assert Path(tmp_path / "ddp" / "model.safetensors").exists()
