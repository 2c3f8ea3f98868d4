"""Training scl end to end on the tiny model, saving and reloading the classifier, and reading labelled input."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from decone.classify.model import Classifier, read_labelled
from decone.classify.scl import HEAD_FILE, HEAD_INFO, SCLClassifierLoss
from decone.data import Dataset
from decone.errors import DataError, ModelError

POS = ["good movie", "great film", "happy day", "good song", "great book", "happy child"]
NEG = ["bad movie", "terrible film", "sad day", "bad song", "terrible book", "sad child"]


def _data(labels=None):
    texts = POS + NEG
    return Dataset([(t,) for t in texts], "mem", labels=labels or ["pos"] * len(POS) + ["neg"] * len(NEG))


def test_save_reload_gives_identical_predictions(tiny_encoder, tmp_path):
    loss = SCLClassifierLoss(0.9)
    loss.setup(SimpleNamespace(encoder=tiny_encoder), _data())
    tiny_encoder.save(tmp_path / "clf")
    loss.save(tmp_path / "clf")
    info = json.loads((tmp_path / "clf" / HEAD_INFO).read_text())
    assert info["labels"] == ["neg", "pos"] and info["scl_lambda"] == 0.9 and info["in_features"] == tiny_encoder.dim
    before = Classifier(tiny_encoder, loss.classifier, loss.label_names)
    after = Classifier.load(tmp_path / "clf", device="cpu")
    texts = POS + NEG + ["the cat sat on the mat"]
    p1, p2 = before.predict_proba(texts, bf16=False), after.predict_proba(texts, bf16=False)
    np.testing.assert_allclose(p1, p2, rtol=0, atol=1e-6)
    assert before.predict(texts, bf16=False) == after.predict(texts, bf16=False)
    np.testing.assert_allclose(p2.sum(axis=1), 1.0, atol=1e-5)


def test_fit_scl_saves_a_classifier_and_an_encoder(tiny_model_dir, tmp_path):
    from decone.encoder import Encoder
    from decone.train import TrainConfig, fit

    out = tmp_path / "run"
    summary = fit(TrainConfig(method="scl", model=str(tiny_model_dir), output=str(out), max_steps=3, batch_size=6,
                              lr=1e-3, bf16=False), data=_data())
    assert summary["steps"] == 3 and np.isfinite(summary["final_loss"])
    assert (out / HEAD_FILE).exists() and (out / HEAD_INFO).exists()
    assert json.loads((out / "decone.json").read_text())["pooling"] == "cls_before_pooler"
    enc = Encoder.load(out, device="cpu")  # still an ordinary encoder folder
    assert enc.encode(["good movie"], bf16=False).shape == (1, enc.dim)
    clf = Classifier.load(out, device="cpu")
    assert clf.labels == ["neg", "pos"]
    probs = clf.predict_proba(POS, bf16=False)
    assert probs.shape == (len(POS), 2)
    np.testing.assert_allclose(clf.predict_proba(POS, bf16=False), probs, atol=1e-6)  # eval mode: deterministic


def test_fit_scl_one_class_is_a_data_error(tiny_model_dir, tmp_path):
    from decone.train import TrainConfig, fit

    with pytest.raises(DataError, match="only one class"):
        fit(TrainConfig(method="scl", model=str(tiny_model_dir), output=str(tmp_path / "x"), max_steps=1, bf16=False),
            data=_data(["pos"] * 12))


def test_fit_scl_reads_a_labelled_csv(tiny_model_dir, tmp_path):
    from decone.train import TrainConfig, fit

    csv = tmp_path / "train.csv"
    csv.write_text("text,label\n" + "".join(f"{t},pos\n" for t in POS) + "".join(f"{t},neg\n" for t in NEG))
    out = tmp_path / "run"
    fit(TrainConfig(method="scl", model=str(tiny_model_dir), data=str(csv), output=str(out), max_steps=2, bf16=False))
    assert Classifier.load(out, device="cpu").labels == ["neg", "pos"]


def test_load_refuses_a_plain_encoder(tiny_encoder, tmp_path):
    tiny_encoder.save(tmp_path / "enc")
    with pytest.raises(ModelError, match="not a classifier"):
        Classifier.load(tmp_path / "enc")
    with pytest.raises(ModelError, match="does not exist"):
        Classifier.load(tmp_path / "missing")


def test_unknown_gold_label_names_file_and_line(tiny_encoder):
    head = torch.nn.Linear(tiny_encoder.dim, 2)
    clf = Classifier(tiny_encoder, head, ["neg", "pos"])
    with pytest.raises(DataError, match=r"test.tsv:7: label 'neutral'"):
        clf.label_indices(["pos", "neutral"], "test.tsv", [3, 7])


def test_read_labelled_formats(tmp_path):
    sst = tmp_path / "sentiment-test"
    sst.write_text("good movie \t1\n\nbad movie\t0\n")
    data = read_labelled(sst)
    assert data.texts == ["good movie", "bad movie"] and data.labels == ["1", "0"] and data.lines == [1, 3]
    plain = tmp_path / "plain.txt"
    plain.write_text("good movie\nbad movie\n")
    assert read_labelled(plain).labels is None
    csv = tmp_path / "pairs.csv"
    csv.write_text("sentence1,sentence2,label\na cat,a dog,1\n")
    pairs = read_labelled(csv)
    assert pairs.texts == ["a cat [SEP] a dog"] and pairs.labels == ["1"] and pairs.lines == [2]
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\ngood,pos\n,neg\n")
    with pytest.raises(DataError, match="bad.csv:3: empty text"):
        read_labelled(bad)
    with pytest.raises(DataError, match="no labels"):
        read_labelled(plain, require_labels=True)


def test_fit_uses_the_class_balanced_sampler(tiny_model_dir, tmp_path, monkeypatch):
    from collections import Counter

    import decone.classify.scl as scl
    from decone.methods import get_method
    from decone.train import TrainConfig, fit

    method = get_method("scl")
    assert method.data == "labelled" and method.defaults["scl_lambda"] == 0.9 and method.defaults["temperature"] == 0.3
    seen = []
    real = scl.class_balanced_batches

    def spy(labels, batch_size, seed, epoch):
        batches = real(labels, batch_size, seed, epoch)
        seen.extend([labels[i] for i in b] for b in batches)
        return batches

    monkeypatch.setattr(scl, "class_balanced_batches", spy)
    labels = ["pos"] * 6 + ["neg"] * 4 + ["meh"] * 2
    fit(TrainConfig(method="scl", model=str(tiny_model_dir), output=str(tmp_path / "r"), epochs=2, batch_size=4,
                    bf16=False), data=_data(labels))
    assert seen and all(min(Counter(b).values()) >= 2 for b in seen)


def test_probe_head_is_fitted_once_the_model_is_built_and_not_on_resume(tiny_model_dir, tmp_path, monkeypatch):
    """scl's head starts from the probe (ready(), after the model is complete), differs from the random start, and a
    run resumed from a checkpoint written before scl had options ({}) continues without refitting the probe."""
    import glob

    import torch

    from decone.classify.scl import SCLClassifierLoss
    from decone.errors import ConfigError
    from decone.train import TrainConfig, Trainer, fit

    calls = []
    real = SCLClassifierLoss.fit_probe
    monkeypatch.setattr(SCLClassifierLoss, "fit_probe", lambda self, m, d: calls.append(m.training) or real(self, m, d))
    base = dict(method="scl", model=str(tiny_model_dir), max_steps=4, batch_size=6, lr=1e-3, bf16=False, save_every=2,
                adaptive_threads=False)
    probe = Trainer(TrainConfig(output=str(tmp_path / "p"), **base), data=_data())
    probe.setup()
    rand = Trainer(TrainConfig(output=str(tmp_path / "r"), options={"head_init": "random"}, **base), data=_data())
    rand.setup()
    assert len(calls) == 1  # the probe run only
    assert not torch.equal(probe.objective.classifier.weight, rand.objective.classifier.weight)
    with pytest.raises(ConfigError, match="head_init must be one of probe, random"):
        TrainConfig(method="scl", model="m", options={"head_init": "zeros"}).resolved()  # before any model loads

    class Crash:
        def on_step_end(self, state):
            if state.step == 3:
                raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(TrainConfig(output=str(tmp_path / "cut"), **base), data=_data(), callbacks=[Crash()])
    for state_file in glob.glob(str(tmp_path / "cut" / "**" / "trainer_state.json"), recursive=True):
        state = json.loads(open(state_file).read())
        state["config"]["options"] = {}  # as written before scl had options
        open(state_file, "w").write(json.dumps(state))
    calls.clear()
    summary = fit(TrainConfig(output=str(tmp_path / "cut"), resume=True, **base), data=_data())
    assert summary["steps"] == 4 and calls == []
