"""decone encoders in mteb v2 (decone.mteb_compat): the real mteb package, offline, on an STS task whose data is
STS-B test from ../shared; its score must equal decone's own STS-B Spearman (`decone eval sts`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

mteb = pytest.importorskip("mteb", reason="MTEB compatibility is tested with the real mteb v2 package (pip install 'mteb>=2')")
pytest.importorskip("datasets", reason="mteb's tasks hold their data as datasets.Dataset (pip install datasets)")

from decone.mteb_compat import DeconeMTEBModel, evaluate_local_sts, to_mteb  # noqa: E402


@pytest.fixture(scope="module")
def encoder(tiny_model_dir):
    from decone.encoder import Encoder

    torch.manual_seed(0)
    return Encoder.load(tiny_model_dir, pooling="mean", device="cpu")


def test_protocol(encoder):
    from torch.utils.data import DataLoader

    model = to_mteb(encoder, batch_size=4)
    assert isinstance(model, mteb.EncoderProtocol)
    meta = model.mteb_model_meta
    assert meta.embed_dim == encoder.dim and meta.name.startswith("decone/") and "cosine" in str(meta.similarity_fn_name).lower()
    texts = ["the cat sat on the mat", "a dog", "the cat sat on the mat", "music"]
    loader = DataLoader([{"text": t} for t in texts], batch_size=3, collate_fn=lambda b: {"text": [x["text"] for x in b]})
    emb = model.encode(loader, task_metadata=None, hf_split="test", hf_subset="default")
    assert emb.shape == (4, encoder.dim)
    np.testing.assert_allclose(emb, encoder.encode(texts), atol=1e-5)  # same vectors, same order
    sim = model.similarity(emb, emb)
    assert sim.shape == (4, 4) and torch.allclose(sim[0, 2], torch.tensor(1.0), atol=1e-5)
    pair = model.similarity_pairwise(emb[:2], emb[2:])
    assert pair.shape == (2,) and torch.allclose(pair[0], torch.tensor(1.0), atol=1e-5)


def test_mteb_sts_equals_decone_sts(encoder, shared):
    """mteb's STS protocol (AbsTaskSTS, cosine Spearman) on STS-B test == decone's SentEval-protocol STS-B."""
    from decone.evaluate import evaluate_sts

    data_dir = shared / "data"
    ours = evaluate_sts(encoder, data_dir, tasks=["STSBenchmark"])["tasks"]["STSBenchmark"]["spearman"]["all"]
    theirs = evaluate_local_sts(encoder, data_dir)
    assert abs(theirs - ours) < 0.01, (theirs, ours)


def test_wrapper_loads_a_folder(tiny_model_dir):
    model = DeconeMTEBModel(str(tiny_model_dir), revision="r1", device="cpu")
    assert model.mteb_model_meta.revision == "r1" and model.mteb_model_meta.name == f"decone/{tiny_model_dir.name}"
