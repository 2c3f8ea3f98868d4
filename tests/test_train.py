"""The trainer: a step lowers the loss, runs save what they say, resume continues from the same state, determinism."""

import json

import numpy as np
import pytest
import torch

from decone.encoder import Encoder, MLPHead
from decone.errors import ConfigError
from decone.objectives import InfoNCE
from decone.train import TrainConfig, Trainable, batch_order, fit

SENTENCES = [
    "the cat sat on the mat", "a dog ran in the city", "the man plays music", "a woman reads a book",
    "the child is happy", "the movie was terrible", "phone sales rise", "holiday shopping day", "a red car on the road",
    "the old house by the tree", "water is cold", "the fire is hot", "the teacher and the student",
    "a small green tree", "two big blue cars", "the news at night",
]


@pytest.fixture()
def sentences_file(tmp_path):
    f = tmp_path / "sents.txt"
    f.write_text("\n".join(SENTENCES) + "\n")
    return f


def test_one_step_lowers_the_loss(tiny_encoder):
    model = Trainable(tiny_encoder, MLPHead(32), InfoNCE(0.05))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    views = [SENTENCES[:8], SENTENCES[:8]]

    def loss_at_seed():
        torch.manual_seed(0)  # same dropout masks
        return model.compute_loss(views, None, use_bf16=False)

    before = loss_at_seed()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss_at_seed()
    assert float(after) < float(before.detach())


def test_batch_order_is_a_partition_and_reproducible():
    lengths = list(range(100))
    a = batch_order(lengths, 8, seed=1, epoch=0, group_by_length=True)
    assert sorted(np.concatenate(a).tolist()) == list(range(100))  # last batch of 4 kept (>= 2)
    assert all(np.array_equal(x, y) for x, y in zip(a, batch_order(lengths, 8, seed=1, epoch=0, group_by_length=True)))
    assert not all(np.array_equal(x, y) for x, y in zip(a, batch_order(lengths, 8, seed=1, epoch=1, group_by_length=True)))
    assert len(batch_order(list(range(9)), 8, 0, 0, False)) == 1  # the single leftover example is dropped


def _config(model, data, out, **kw):
    base = dict(method="simcse", model=str(model), data=str(data), output=str(out), max_steps=6, batch_size=4,
                lr=1e-3, max_length=16, bf16=False, save_every=3, log_every=1, seed=7, adaptive_threads=False)
    base.update(kw)
    return TrainConfig(**base)


def _losses(out):
    return [r["loss"] for r in map(json.loads, (out / "train_log.jsonl").read_text().splitlines()) if "loss" in r]


def test_fit_writes_a_loadable_model_and_log(tiny_model_dir, sentences_file, tmp_path):
    out = tmp_path / "run"
    summary = fit(_config(tiny_model_dir, sentences_file, out))
    assert summary["steps"] == 6
    assert len(_losses(out)) == 6
    info = json.loads((out / "decone.json").read_text())
    assert info["method"] == "simcse" and info["config"]["temperature"] == 0.05 and info["summary"]["steps"] == 6
    assert info["pooling"] == "cls_before_pooler" and info["dense"] == []  # MLP head used in training only
    enc = Encoder.load(out)
    assert enc.encode(["the cat"]).shape == (1, 32)


def test_same_seed_same_losses(tiny_model_dir, sentences_file, tmp_path):
    # bit for bit at a fixed thread count: the core governor (adaptive_threads) changes it when other processes load
    # the machine, and a GEMM split over another number of threads sums in another order (differences of 1e-6)
    fixed = dict(adaptive_threads=False)
    fit(_config(tiny_model_dir, sentences_file, tmp_path / "a", **fixed))
    fit(_config(tiny_model_dir, sentences_file, tmp_path / "b", **fixed))
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")
    fit(_config(tiny_model_dir, sentences_file, tmp_path / "c", seed=8, **fixed))
    assert _losses(tmp_path / "a") != _losses(tmp_path / "c")


class StopAt:
    """Simulates a crash after the checkpoint of step 3 was written."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, state):
        if state.step == self.step:
            raise RuntimeError("simulated crash")


def test_resume_continues_from_the_same_state(tiny_model_dir, sentences_file, tmp_path):
    from safetensors.torch import load_file

    fit(_config(tiny_model_dir, sentences_file, tmp_path / "full", method="mirror"))
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(_config(tiny_model_dir, sentences_file, tmp_path / "cut", method="mirror"), callbacks=[StopAt(5)])
    fit(_config(tiny_model_dir, sentences_file, tmp_path / "cut", method="mirror", resume=True))
    full = load_file(tmp_path / "full" / "model.safetensors")
    cut = load_file(tmp_path / "cut" / "model.safetensors")
    assert full.keys() == cut.keys()
    assert all(torch.equal(full[k], cut[k]) for k in full)  # bitwise on CPU fp32
    assert _losses(tmp_path / "full") == _losses(tmp_path / "cut")


def test_output_folder_rules(tiny_model_dir, sentences_file, tmp_path):
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a decone run; pass --overwrite"):
        fit(_config(tiny_model_dir, sentences_file, stranger))
    assert (stranger / "notes.txt").read_text() == "mine"
    fit(_config(tiny_model_dir, sentences_file, tmp_path / "run", max_steps=2, keep_checkpoint=True))
    with pytest.raises(ConfigError, match="earlier decone run; pass --resume"):
        fit(_config(tiny_model_dir, sentences_file, tmp_path / "run", max_steps=2))
    with pytest.raises(ConfigError, match="--resume given but there is no run"):
        fit(_config(tiny_model_dir, sentences_file, tmp_path / "new", resume=True))
    with pytest.raises(ConfigError, match="--resume: the interrupted run used --fast-dropout, now --torch-dropout"):
        fit(_config(tiny_model_dir, sentences_file, tmp_path / "run", max_steps=2, resume=True, fast_dropout=False))


def test_resume_refuses_changed_data_and_settings_and_a_checkpoint_that_does_not_fit(tiny_model_dir, sentences_file,
                                                                                        tmp_path):
    """A resumed run must train what the interrupted one trained: another data file, max_length or masking span is a
    one-line ConfigError, the same file under another spelling of its path is not; a checkpoint whose weights do not
    fit the model is a ConfigError too, not a traceback."""
    from safetensors.torch import save_file

    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(_config(tiny_model_dir, sentences_file, tmp_path / "cut", method="mirror"), callbacks=[StopAt(4)])
    other = tmp_path / "other.txt"
    other.write_text(sentences_file.read_text())
    for data, change, match in ((other, {}, "--resume: data was"), (sentences_file, dict(max_length=12), "--resume: max_length was"),
                                (sentences_file, dict(mask_span=3), "--resume: mask_span was")):
        with pytest.raises(ConfigError, match=match):
            fit(_config(tiny_model_dir, data, tmp_path / "cut", method="mirror", resume=True, **change))
    (tmp_path / "x").mkdir()
    spelled = tmp_path / "x" / ".." / sentences_file.name  # the same file (sentences_file lies in tmp_path)
    ckpt = tmp_path / "cut" / "checkpoint"
    state = (ckpt / "trainer_state.json").read_text()
    save_file({"not.a.weight": torch.zeros(2)}, ckpt / "model.safetensors")
    with pytest.raises(ConfigError, match="--resume: .*checkpoint does not fit this model"):
        fit(_config(tiny_model_dir, spelled, tmp_path / "cut", method="mirror", resume=True))
    assert (ckpt / "trainer_state.json").read_text() == state  # the failed resume left the checkpoint as it was


def test_resume_from_another_directory_accepts_the_same_files_by_other_paths(tiny_model_dir, sentences_file, tmp_path,
                                                                             monkeypatch):
    """The checkpoint records paths as typed: a relative one that does not resolve from where the run resumes cannot
    be checked, so the path given now is taken; a model or data path that resolves on both sides is compared."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(_config(tiny_model_dir, sentences_file.name, tmp_path / "cut", method="mirror"), callbacks=[StopAt(4)])
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    fit(_config(tiny_model_dir, f"../{sentences_file.name}", tmp_path / "cut", method="mirror", resume=True))
    assert (tmp_path / "cut" / "model.safetensors").exists()


@pytest.mark.parametrize("field,value,match", [
    ("temperature", 0.0, "temperature must be > 0"),
    ("batch_size", 1, "batch-size must be >= 2"),
    ("max_length", 1000, "exceeds the model's position limit"),
    ("pooling", "max", "--pooling 'max' unknown"),
    ("method", "nope", "unknown method 'nope'"),
])
def test_bad_config_writes_nothing(tiny_model_dir, sentences_file, tmp_path, field, value, match):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=match):
        fit(_config(tiny_model_dir, sentences_file, out, **{field: value}))
    assert not out.exists()


def test_every_method_trains(tiny_model_dir, tmp_path):
    words = tmp_path / "w.txt"
    words.write_text("\n".join(w for s in SENTENCES for w in s.split()) + "\n")
    triples = tmp_path / "t.tsv"
    triples.write_text("anchor\tpositive\thard_negative\n" + "".join(f"{a}\t{b}\t{c}\n" for a, b, c in zip(SENTENCES, SENTENCES[1:], SENTENCES[2:])))
    for method, data in (("simcse-sup", triples), ("mirror-word", words), ("mirror", words)):
        summary = fit(_config(tiny_model_dir, data, tmp_path / method, method=method, max_steps=2))
        assert summary["steps"] == 2 and np.isfinite(summary["final_loss"])
    # simcse-sup keeps its MLP head in the saved model
    assert len(Encoder.load(tmp_path / "simcse-sup").dense) == 1


def test_eval_data_keeps_the_best_checkpoint(tiny_model_dir, sentences_file, tmp_path):
    dev = tmp_path / "dev.tsv"
    dev.write_text("sentence1\tsentence2\tscore\n" + "".join(f"{a}\t{b}\t{i % 5}\n" for i, (a, b) in enumerate(zip(SENTENCES, SENTENCES[3:]))))
    summary = fit(_config(tiny_model_dir, sentences_file, tmp_path / "run", eval_data=str(dev), eval_every=2))
    rows = [json.loads(r) for r in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    scores = {r["step"]: r["eval_spearman"] for r in rows if "eval_spearman" in r}
    assert sorted(scores) == [2, 4, 6]
    assert summary["best_eval_spearman"] == pytest.approx(max(scores.values()), abs=1e-4)
    assert json.loads((tmp_path / "run" / "decone.json").read_text())["summary"]["best_step"] == summary["best_step"]
