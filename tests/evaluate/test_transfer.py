"""Transfer tasks: readers (load_task), MRPC pair features, the classifier protocols on small separable data."""

from __future__ import annotations

import numpy as np
import pytest

from decone.errors import ConfigError, DataError
from decone.evaluate import transfer


def test_pair_features_layout():
    u = np.array([[1.0, -2.0], [0.5, 3.0]])
    v = np.array([[3.0, 1.0], [0.5, -1.0]])
    f = transfer.pair_features(u, v)
    assert f.shape == (2, 8) and f.dtype == np.float32
    np.testing.assert_allclose(f[0], [1, -2, 3, 1, 2, 3, 3, -2])  # u, v, |u - v|, u * v
    np.testing.assert_allclose(f[1], [0.5, 3, 0.5, -1, 0, 4, 0.25, -3])
    with pytest.raises(ValueError):
        transfer.pair_features(u, v[:, :1])


def test_mrpc_examples_are_pairs_and_features_use_both(mini_data, hash_encoder):
    data = transfer.load_task("MRPC", mini_data)
    (s1, s2), y = data["train"][0]
    assert isinstance(s1, str) and isinstance(s2, str) and y in (0, 1)
    assert data["labels"] == ["not_paraphrase", "paraphrase"] and data["dev"] is None and len(data["test"]) == 12
    x, ys = transfer.features(hash_encoder, data["train"][:3])
    d = hash_encoder.dim
    u, v = hash_encoder.vector(s1), hash_encoder.vector(s2)
    np.testing.assert_allclose(x[0], np.concatenate([u, v, np.abs(u - v), u * v]), rtol=1e-6)
    assert x.shape == (3, 4 * d) and ys[0] == y


def test_readers(mini_data):
    trec = transfer.load_task("TREC", mini_data)
    assert trec["labels"] == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert trec["train"][1][1] == 1 and not trec["train"][1][0].startswith("DESC")  # coarse label, text without it
    sst = transfer.load_task("sst-2", mini_data)
    assert len(sst["train"]) == 40 and len(sst["dev"]) == 12 and len(sst["test"]) == 12
    mr = transfer.load_task("MR", mini_data)
    assert mr["test"] is None and mr["dev"] is None and len(mr["train"]) == 30
    assert {y for _, y in mr["train"]} == {0, 1} and mr["labels"] == ["negative", "positive"]
    assert all(t.startswith("good") for t, y in mr["train"] if y == 1)


def test_reader_errors(tmp_path, mini_data):
    bad = tmp_path / "t.label"
    bad.write_text("DESC:def What is it ?\nWHAT:x nonsense\n")
    with pytest.raises(DataError, match=r"t.label:2: expected 'LABEL:sub question'"):
        transfer.read_trec(bad)
    bad.write_text("good film\t1\nno label here\n")
    with pytest.raises(DataError, match=r"t.label:2: expected 'text<TAB>label'"):
        transfer.read_sst(bad)
    bad.write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tonly one\n")
    with pytest.raises(DataError, match=r"t.label:2: expected Quality"):
        transfer.read_mrpc(bad)
    with pytest.raises(DataError, match=r"MR classification data not found: expected .*rt-polarity.neg"):
        transfer.load_task("MR", tmp_path / "empty")
    with pytest.raises(ConfigError, match="unknown transfer task 'XYZ'"):
        transfer.load_task("XYZ", mini_data)


def test_protocols_on_separable_synthetic_data(mini_data):
    """Texts starting with 'good' vs 'bad' are separable by a stub whose first coordinate says which."""

    class Sentiment:
        def encode(self, texts, batch_size=32):
            rng = np.random.default_rng(0)
            x = rng.standard_normal((len(texts), 8)).astype(np.float32)
            x[:, 0] = [3.0 if t.startswith("good") else -3.0 for t in texts]
            return x

    # 27 training examples a fold: the strongest regularisation of the default grid would only learn the prior
    res = transfer.evaluate_transfer(Sentiment(), mini_data, tasks=["MR", "SST2"], seed=7, grid=(0.1, 1.0, 10.0))
    assert res["seed"] == 7
    mr, sst = res["tasks"]["MR"], res["tasks"]["SST2"]
    assert mr["acc"] == 100.0 and len(mr["C"]) == 10 and "10-fold" in mr["protocol"]
    assert sst["acc"] == 100.0 and sst["C"] in (0.1, 1.0, 10.0) and sst["n_dev"] == 12 and "dev" in sst["protocol"]
    assert res["avg"] == pytest.approx(100.0)


def test_held_out_dev_protocol_and_seed(mini_data, hash_encoder):
    a = transfer.evaluate_task(hash_encoder, "TREC", mini_data, seed=3)
    b = transfer.evaluate_task(hash_encoder, "TREC", mini_data, seed=3)
    assert a["acc"] == b["acc"] and a["C"] == b["C"]  # seeded: reproducible
    assert a["n_train"] == 60 and a["n_dev"] == 6 and a["n_test"] == 18 and "10% of train" in a["protocol"]
    m = transfer.evaluate_task(hash_encoder, "MRPC", mini_data, seed=3)
    assert 0 <= m["f1"] <= 100


def test_max_train_subsamples(mini_data, hash_encoder):
    res = transfer.evaluate_task(hash_encoder, "SST2", mini_data, max_train=20)
    assert res["n_train"] == 20


SENTEVAL_COUNTS = {"MR": (10662, None, None), "CR": (3775, None, None), "SUBJ": (10000, None, None),
                   "MPQA": (10606, None, None), "SST2": (67349, 872, 1821), "TREC": (5452, None, 500),
                   "MRPC": (4076, None, 1725)}


@pytest.mark.parametrize("task", list(SENTEVAL_COUNTS))
def test_shared_counts_match_senteval(shared, task):
    data = transfer.load_task(task, shared / "data")
    got = tuple(None if data[s] is None else len(data[s]) for s in ("train", "dev", "test"))
    assert got == SENTEVAL_COUNTS[task]
