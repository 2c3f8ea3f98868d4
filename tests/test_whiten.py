"""BERT-whitening: identity covariance on the fitting data, and the saved model reapplies it (decone and
sentence-transformers)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from decone.errors import ConfigError, DataError
from decone.whiten import apply_whitening, covariance, fit_whitening, unwhitened_embeddings, whiten_encoder, whitening_layer

WORDS = ("the a of to and in is was cat dog sat mat man woman child play ran good bad movie film great happy sad day "
         "night city news phone sales market stock price car road house tree water fire music song book").split()


def make_sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = set()
    while len(out) < n:
        out.add(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))))
    return sorted(out)


def test_covariance_becomes_identity():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 8)) @ rng.standard_normal((8, 8)) * 3 + 7
    mu, w = fit_whitening(x)
    y = apply_whitening(x, mu, w)
    np.testing.assert_allclose(covariance(y), np.eye(8), atol=1e-9)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-9)
    # keeping k columns keeps the top-k principal directions, still white
    mu3, w3 = fit_whitening(x, dim=3)
    np.testing.assert_allclose(covariance(apply_whitening(x, mu3, w3)), np.eye(3), atol=1e-9)
    np.testing.assert_allclose(w3, w[:, :3])


def test_rank_deficient_data():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 3)) @ rng.standard_normal((3, 6))  # rank 3 in 6 dimensions
    mu, w = fit_whitening(x)  # default: the numerical rank
    assert w.shape == (6, 3)
    np.testing.assert_allclose(covariance(apply_whitening(x, mu, w)), np.eye(3), atol=1e-8)
    with pytest.raises(DataError, match="rank 3 < 5"):
        fit_whitening(x, dim=5)
    with pytest.raises(ConfigError):
        fit_whitening(x, dim=7)
    with pytest.raises(DataError):
        fit_whitening(np.ones((5, 3)))


def test_layer_matches_manual():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((100, 6)) + 2
    mu, w = fit_whitening(x, dim=4)
    layer = whitening_layer(mu, w)
    got = layer(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(got, apply_whitening(x, mu, w), atol=1e-4)


@pytest.fixture()
def whitened(tiny_encoder, tmp_path):
    sentences = make_sentences(150)
    base = unwhitened_embeddings(tiny_encoder, sentences)
    info = whiten_encoder(tiny_encoder, sentences, dim=16)
    out = tmp_path / "whitened"
    tiny_encoder.save(out, meta={"whitening": info})
    return sentences, base, info, out


def test_save_reload_applies_whitening(whitened):
    from decone import Encoder

    sentences, base, info, out = whitened
    assert info["dim"] == 16 and info["dim_in"] == 32 and info["n_sentences"] == 150
    mu, w = fit_whitening(base, dim=16)
    manual = apply_whitening(base, mu, w)
    np.testing.assert_allclose(covariance(manual), np.eye(16), atol=1e-6)
    reloaded = Encoder.load(out, device="cpu")
    got = reloaded.encode(sentences)
    assert got.shape == (150, 16)
    assert np.abs(got - manual).max() <= 1e-4
    np.testing.assert_allclose(covariance(got), np.eye(16), atol=1e-3)


def test_sentence_transformers_applies_whitening(whitened):
    st = pytest.importorskip("sentence_transformers")
    sentences, base, _, out = whitened
    mu, w = fit_whitening(base, dim=16)
    model = st.SentenceTransformer(str(out), device="cpu")
    got = model.encode(sentences, convert_to_numpy=True, batch_size=32)
    assert np.abs(got - apply_whitening(base, mu, w)).max() <= 1e-4


def test_whitening_before_normalisation(tiny_encoder, tmp_path):
    from decone import Encoder

    sentences = make_sentences(80, seed=1)
    tiny_encoder.normalize = True
    base = unwhitened_embeddings(tiny_encoder, sentences)
    assert not np.allclose(np.linalg.norm(base, axis=1), 1.0)  # the raw pooled vectors
    whiten_encoder(tiny_encoder, sentences, dim=8)
    assert tiny_encoder.normalize
    mu, w = fit_whitening(base, dim=8)
    manual = apply_whitening(base, mu, w)
    manual /= np.linalg.norm(manual, axis=1, keepdims=True)
    tiny_encoder.save(tmp_path / "m")
    got = Encoder.load(tmp_path / "m", device="cpu").encode(sentences)
    assert np.abs(got - manual).max() <= 1e-4


def test_default_dim_drops_layernorm_null_direction(tiny_encoder):
    # a random-init BERT's LayerNorm (gain 1, bias 0) makes every mean-pooled vector sum to 0: rank 31 of 32
    info = whiten_encoder(tiny_encoder, make_sentences(120, seed=2))
    assert info["dim"] == 31


def test_whiten_cli(tiny_model_dir, tmp_path):
    from decone import Encoder
    from decone.diagnostics.command import register

    app = typer.Typer()
    register(app)
    data = tmp_path / "fit.txt"
    data.write_text("\n".join(make_sentences(120, seed=3)) + "\n")
    out = tmp_path / "white"
    result = CliRunner().invoke(app, ["whiten", "--model", str(tiny_model_dir), "--data", str(data), "--output",
                                      str(out), "--dim", "12", "--pooling", "mean", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "decone.json").read_text())
    assert meta["method"] == "whitening" and meta["whitening"]["dim"] == 12
    assert Encoder.load(out, device="cpu").encode(["the cat sat"]).shape == (1, 12)

    bad = CliRunner().invoke(app, ["whiten", "--model", str(tiny_model_dir), "--data", str(tmp_path / "nope.txt"),
                                   "--output", str(tmp_path / "x")])
    assert bad.exit_code == 2
    lines = [line for line in bad.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "nope.txt" in lines[0]

    too_many = CliRunner().invoke(app, ["whiten", "--model", str(tiny_model_dir), "--data", str(data), "--output",
                                        str(tmp_path / "y"), "--dim", "32", "--device", "cpu"])
    assert too_many.exit_code == 2 and "rank 31 < 32" in too_many.output
