"""Two gloo processes on CPU train exactly like one process on the combined batch (global negatives, averaged grads)."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from decone.distributed import DistContext, destroy
from tests.test_gradcache import SENTS as GRADCACHE_SENTS

SENTS = GRADCACHE_SENTS[:20]
LABELS = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1]

# name -> (texts per view, number of views, loss, GradCache mini-batch or 0)
SCENARIOS = {
    "simcse": (12, 2, "infonce", 0),
    "uneven_hardneg_symmetric": (11, 3, "infonce-sym", 0),  # shards of 6 and 5 rows
    "gradcache": (12, 2, "infonce", 2),  # cached locally (3 passes a rank), gathered globally
    "supcon": (12, 1, "supcon", 0),  # a loss without offset: the whole gathered batch on every rank
    "nt_xent_uneven": (11, 2, "nt-xent", 0),  # Mirror-BERT's loss: both views of the whole gathered batch
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(model_dir: str, loss_name: str):
    from decone import Encoder
    from decone.encoder import MLPHead
    from decone.objectives import InfoNCE, NTXent, SupCon
    from decone.train import Trainable

    torch.manual_seed(0)
    enc = Encoder.load(model_dir, pooling="mean", device="cpu")
    head = MLPHead(enc.model.config.hidden_size)
    loss = {"infonce": lambda: InfoNCE(0.05), "infonce-sym": lambda: InfoNCE(0.05, symmetric=True),
            "supcon": lambda: SupCon(0.3), "nt-xent": lambda: NTXent(0.04)}[loss_name]()
    model = Trainable(enc, head, loss, max_length=16)
    model.eval()  # dropout off: the shards see different masks than one process would
    return model


def views_of(n: int, k: int) -> list[list[str]]:
    return [[SENTS[(i + 5 * v) % len(SENTS)] for i in range(n)] for v in range(k)]


def run_step(model, views, labels, mini_batch: int):
    model.zero_grad(set_to_none=True)
    if mini_batch:
        from decone.gradcache import cached_loss_and_backward

        loss = cached_loss_and_backward(model, views, labels, False, mini_batch)
    else:
        loss = model.compute_loss(views, labels, False)
        loss.backward()
    return loss


def _worker(rank: int, world: int, port: int, model_dir: str, out_dir: str, fit_args: tuple) -> None:
    """One rank: every scenario's loss and averaged gradients, then the whole trainer (one spawn: imports are slow)."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    ctx = DistContext(rank, world, rank, torch.device("cpu"), "gloo")
    results = {}
    for name, (n, k, loss_name, mini_batch) in SCENARIOS.items():
        model = build(model_dir, loss_name)
        model.dist = ctx
        views = ctx.shard_views(views_of(n, k))
        labels = ctx.shard_labels(torch.tensor(LABELS[:n])) if loss_name == "supcon" else None
        loss = run_step(model, views, labels, mini_batch)
        ctx.all_reduce_grads(model)
        results[name] = {"loss": ctx.mean_scalar(loss),
                         "grads": {p: g.grad.clone() for p, g in model.named_parameters() if g.grad is not None}}
    torch.save(results, Path(out_dir) / f"rank{rank}.pt")

    # the trainer, as under torchrun (it finds the process group already joined)
    from decone.train import fit

    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank))
    fit(fit_config(*fit_args))
    for method in OWN_MODULE_METHODS:  # objectives with their own modules: a momentum queue, a prompt, a second tower
        fit(method_config(method, *fit_args))
    if LORA:
        fit(lora_config(*fit_args, mini_batch_size=2))  # LoRA adapters under DDP, with GradCache
    destroy(ctx=ctx)  # barrier, then leave the group (as fit does when it created the group)


@pytest.fixture(scope="module")
def fit_inputs(tiny_model_dir, tmp_path_factory) -> tuple[str, str]:
    """The tiny model with dropout off (so that 1 and 2 processes see the same network) and a text file."""
    folder = tmp_path_factory.mktemp("fit")
    model_dir = folder / "tiny-no-dropout"
    model_dir.mkdir()
    for f in Path(tiny_model_dir).iterdir():
        (model_dir / f.name).write_bytes(f.read_bytes())
    config = json.loads((model_dir / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (model_dir / "config.json").write_text(json.dumps(config))
    data = folder / "sents.txt"
    data.write_text("\n".join(SENTS) + "\n")
    return str(model_dir), str(data)


@pytest.fixture(scope="module")
def two_ranks(tiny_model_dir, fit_inputs, tmp_path_factory):
    """Spawn 2 gloo processes once; returns each rank's scenario results and the 2-process trainer's output folder."""
    import torch.multiprocessing as mp

    out = tmp_path_factory.mktemp("ddp")
    fit_args = (*fit_inputs, str(out / "fit"))
    mp.spawn(_worker, args=(2, free_port(), str(tiny_model_dir), str(out), fit_args), nprocs=2, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)], out / "fit"


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_two_processes_equal_one_on_the_combined_batch(two_ranks, tiny_model_dir, name):
    n, k, loss_name, mini_batch = SCENARIOS[name]
    model = build(str(tiny_model_dir), loss_name)
    labels = torch.tensor(LABELS[:n]) if loss_name == "supcon" else None
    ref_loss = run_step(model, views_of(n, k), labels, 0).detach()  # one process, whole batch, no GradCache
    ref = {p: g.grad for p, g in model.named_parameters() if g.grad is not None}
    assert ref and any(float(g.abs().sum()) > 0 for g in ref.values()), "the reference gradients are all zero"
    for rank_results in two_ranks[0]:
        got = rank_results[name]
        assert abs(float(got["loss"]) - float(ref_loss)) <= 1e-5
        assert got["grads"].keys() == ref.keys()
        worst = max(float((got["grads"][p] - ref[p]).abs().max()) for p in ref)
        assert worst <= 1e-5, f"{name}: max |grad diff| {worst:.2e}"


def test_shards_are_disjoint_and_cover_the_batch():
    for world in (1, 2, 3, 8):
        for n in (2, 7, 64):
            seen = []
            for r in range(world):
                seen += DistContext(r, world, r, torch.device("cpu"), "gloo").shard_positions(n)
            assert sorted(seen) == list(range(n))


# ------------------------------------------------------------------------------------------------ the trainer itself
def fit_config(model_dir: str, data_path: str, out: str):
    from decone.train import TrainConfig

    return TrainConfig(method="simcse", model=model_dir, data=data_path, output=out, batch_size=8, max_steps=3,
                       bf16=False, pooling="mean", head="mlp-train", lr=1e-3, save_every=2, log_every=1,
                       mini_batch_size=2, keep_checkpoint=True)


OWN_MODULE_METHODS = ("esimcse", "promptbert", "ct")


def method_config(method: str, model_dir: str, data_path: str, out: str):
    from decone.train import TrainConfig

    return TrainConfig(method=method, model=model_dir, data=data_path, output=f"{out}-{method}", batch_size=8,
                       max_steps=3, bf16=False, lr=1e-3, max_length=32, save_every=100, log_every=1,
                       options={"queue_ratio": 1.0} if method == "esimcse" else {})


@pytest.mark.parametrize("method", OWN_MODULE_METHODS)
def test_methods_with_their_own_modules_train_alike_on_two_processes_and_one(two_ranks, fit_inputs, tmp_path, method):
    """The 2-process run (rank 0's model) equals the 1-process run: ESimCSE's queue takes the gathered batch on every
    rank, CT's second tower is averaged like the encoder, PromptBERT's views gather like SimCSE's."""
    from safetensors.torch import load_file

    from decone.train import fit

    two_dir = Path(f"{two_ranks[1]}-{method}")
    fit(method_config(method, *fit_inputs, str(tmp_path / "one")))
    two, one = load_file(two_dir / "model.safetensors"), load_file(tmp_path / f"one-{method}" / "model.safetensors")
    assert two.keys() == one.keys()
    # the losses of steps 2 and 3 depend on every earlier update: a wrong gather, queue or tower would move them
    losses = [[json.loads(x)["loss"] for x in (d / "train_log.jsonl").read_text().splitlines() if '"loss"' in x]
              for d in (two_dir, tmp_path / f"one-{method}")]
    assert len(losses[0]) == 3 and max(abs(a - b) for a, b in zip(*losses)) <= 2e-4
    # weights: equal up to float noise, except where AdamW normalises a gradient that is zero up to rounding (an
    # attention key bias has none: softmax ignores it) into a full-size step of either sign
    diff = torch.cat([(two[k] - one[k]).abs().flatten() for k in one])
    assert float((diff <= 1e-5).float().mean()) >= 0.99 and float(diff.max()) <= 3 * 1e-3
    start = load_file(Path(fit_inputs[0]) / "model.safetensors")
    assert max(float((one[k] - start[k]).abs().max()) for k in one if k in start) > 1e-4  # it did train


LORA = importlib.util.find_spec("peft") is not None


def lora_config(model_dir: str, data_path: str, out: str, mini_batch_size: int):
    """SimCSE with LoRA r 4 (no LoRA dropout: 1 and 2 processes must see the same network)."""
    return replace(fit_config(model_dir, data_path, f"{out}-lora"), lora_r=4, lora_alpha=8, lora_dropout=0.0,
                   mini_batch_size=mini_batch_size, lr=1e-2, keep_checkpoint=False)


@pytest.mark.skipif(not LORA, reason="LoRA needs peft (pip install -e '.[decoders]')")
def test_lora_with_gradcache_and_two_processes_matches_one_without(two_ranks, fit_inputs, tmp_path):
    """LoRA composes with GradCache and DDP: the 2-process run with mini-batches of 2 and 1-process runs with and
    without GradCache have the same loss curve and the same merged weights."""
    from safetensors.torch import load_file

    from decone.train import fit

    two_dir = Path(f"{two_ranks[1]}-lora")
    runs = {"two processes, GradCache": two_dir}
    for name, mbs in (("one process, GradCache", 2), ("one process, whole batch", 0)):
        fit(lora_config(*fit_inputs, str(tmp_path / name.replace(" ", "_").replace(",", "")), mbs))
        runs[name] = Path(f"{tmp_path / name.replace(' ', '_').replace(',', '')}-lora")
    losses = {k: [json.loads(x)["loss"] for x in (d / "train_log.jsonl").read_text().splitlines() if '"loss"' in x]
              for k, d in runs.items()}
    ref = losses["one process, whole batch"]
    assert len(ref) == 3 and ref[-1] != ref[0]
    for name, curve in losses.items():
        assert max(abs(a - b) for a, b in zip(curve, ref)) <= 1e-5, (name, curve, ref)
    weights = {k: load_file(d / "model.safetensors") for k, d in runs.items()}
    one = weights["one process, whole batch"]
    start = load_file(Path(fit_inputs[0]) / "model.safetensors")
    assert one.keys() == start.keys()  # merged on save: a plain model, no adapter tensors
    assert max(float((one[k] - start[k]).abs().max()) for k in one) > 1e-4  # the adapters trained and were merged
    for name, w in weights.items():
        assert max(float((w[k] - one[k]).abs().max()) for k in one) <= 1e-5, name


def test_fit_under_two_processes_matches_one(two_ranks, fit_inputs, tmp_path):
    """The whole trainer with WORLD_SIZE=2 (as under torchrun): rank 0 writes one log, checkpoint and model, and the
    weights equal a 1-process run of the same config (dropout off; GradCache on, so the composition is covered)."""
    from safetensors.torch import load_file

    from decone.train import fit

    two_dir = two_ranks[1]
    fit(fit_config(*fit_inputs, str(tmp_path / "one")))
    two, one = load_file(two_dir / "model.safetensors"), load_file(tmp_path / "one" / "model.safetensors")
    assert two.keys() == one.keys()
    assert max(float((two[k] - one[k]).abs().max()) for k in one) <= 1e-5
    log_two = [json.loads(x) for x in (two_dir / "train_log.jsonl").read_text().splitlines()]
    log_one = [json.loads(x) for x in (tmp_path / "one" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log_two] == [r["step"] for r in log_one] == [1, 2, 3]  # one log, written once
    for a, b in zip(log_two, log_one):
        assert abs(a["loss"] - b["loss"]) <= 1e-5
    assert (two_dir / "checkpoint" / "trainer_state.json").exists()


@pytest.mark.parametrize("synchronise,calls", [(True, ["barrier", "destroy"]), (False, ["destroy"])])
def test_destroy_waits_for_the_other_ranks_only_after_a_run_that_ended_well(monkeypatch, synchronise, calls):
    import torch.distributed as dist

    seen = []
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "barrier", lambda *a, **k: seen.append("barrier"))
    monkeypatch.setattr(dist, "destroy_process_group", lambda *a, **k: seen.append("destroy"))
    destroy(synchronise=synchronise)
    assert seen == calls
