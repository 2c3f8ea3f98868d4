"""The one pooling against manual computations (padding included), save/reload, and loading rules."""

import json
import threading
import time

import numpy as np
import pytest
import torch

from decone.encoder import Dense, Encoder, MLPHead, cpu_workers, pool, run_batches
from decone.errors import ConfigError, ModelError

TEXTS = ["the cat sat on the mat with a happy dog", "hello", "a b c"]


def _outputs(enc, texts):
    feats = enc.tokenize(texts)
    enc.eval()
    with torch.no_grad():
        out = enc.model(**feats, output_hidden_states=True, return_dict=True)
    return feats, out


def test_mean_pooling_ignores_padding(tiny_encoder):
    feats, out = _outputs(tiny_encoder, TEXTS)
    got = pool(out.hidden_states, feats["attention_mask"], "mean")
    assert feats["attention_mask"][1].sum() < feats["attention_mask"].shape[1]  # padding present
    for i in range(len(TEXTS)):
        n = int(feats["attention_mask"][i].sum())
        want = out.last_hidden_state[i, :n].mean(0)
        assert torch.allclose(got[i], want, atol=1e-6)


def test_cls_poolings(tiny_encoder):
    feats, out = _outputs(tiny_encoder, TEXTS)
    before = pool(out.hidden_states, feats["attention_mask"], "cls_before_pooler")
    assert torch.equal(before, out.last_hidden_state[:, 0])
    after = pool(out.hidden_states, feats["attention_mask"], "cls", pooler_output=out.pooler_output)
    pooler = tiny_encoder.model.pooler
    assert torch.allclose(after, torch.tanh(pooler.dense(out.last_hidden_state[:, 0])), atol=1e-6)


def test_first_last_avg(tiny_encoder):
    feats, out = _outputs(tiny_encoder, TEXTS)
    got = pool(out.hidden_states, feats["attention_mask"], "first_last_avg")
    for i in range(len(TEXTS)):
        n = int(feats["attention_mask"][i].sum())
        want = ((out.hidden_states[1][i, :n] + out.hidden_states[-1][i, :n]) / 2).mean(0)
        assert torch.allclose(got[i], want, atol=1e-6)


def test_unknown_pooling(tiny_encoder):
    with pytest.raises(ConfigError, match="unknown pooling"):
        pool((torch.zeros(1, 2, 3),), torch.ones(1, 2), "max")


@pytest.mark.parametrize("pooling", ["cls", "cls_before_pooler", "mean", "first_last_avg"])
def test_encode_equals_forward_and_is_batch_invariant(tiny_encoder, pooling):
    tiny_encoder.pooling = pooling
    alone = np.stack([tiny_encoder.encode([t])[0] for t in TEXTS])
    batched = tiny_encoder.encode(TEXTS, batch_size=2)  # sorted by length, padded per batch
    assert np.allclose(alone, batched, atol=1e-5)
    tiny_encoder.eval()
    with torch.no_grad():
        direct = tiny_encoder(tiny_encoder.tokenize(TEXTS))["embedding"].numpy()
    assert np.allclose(direct, batched, atol=1e-5)


def test_encode_normalize_and_empty(tiny_encoder):
    emb = tiny_encoder.encode(TEXTS, normalize=True)
    assert emb.shape == (3, 32) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert tiny_encoder.encode([]).shape == (0, 32)
    assert tiny_encoder.encode("one text").shape == (1, 32)


def test_encode_layers(tiny_encoder):
    per_layer = tiny_encoder.encode(TEXTS, layers=[0, 1, 2])
    assert per_layer.shape == (3, 3, 32)
    assert np.allclose(per_layer[2], tiny_encoder.encode(TEXTS), atol=1e-5)  # last layer, mean pooling


def test_encode_worker_threads_match_serial(tiny_encoder):
    texts = [" ".join(["word"] * (i % 17 + 1)) + f" {i}" for i in range(90)]
    serial = tiny_encoder.encode(texts, batch_size=4, workers=1)
    threaded = tiny_encoder.encode(texts, batch_size=4, workers=3)
    assert np.array_equal(serial, threaded)  # each batch is computed whole by one thread: bit-identical
    layers = tiny_encoder.encode(texts, batch_size=4, layers=[0, 2], workers=2)
    assert np.array_equal(layers, tiny_encoder.encode(texts, batch_size=4, layers=[0, 2], workers=1))
    # the workers' one-thread setting does not leak into threads started afterwards
    seen = []
    worker = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    worker.start()
    worker.join()
    assert seen == [torch.get_num_threads()]
    with pytest.raises(ConfigError, match="workers must be >= 1"):
        tiny_encoder.encode(texts, batch_size=4, workers=0)
    with pytest.raises(ConfigError, match="workers must be >= 1"):
        tiny_encoder.encode(texts[:2], batch_size=4, workers=0)  # rejected even where it would run serially


def test_run_batches_visits_each_once_and_reraises():
    seen = []
    run_batches(seen.append, list(range(50)), workers=3)
    assert sorted(seen) == list(range(50))
    assert cpu_workers(torch.device("cpu"), 1) == 1 and cpu_workers(torch.device("cpu"), 10, 4) == 4
    assert cpu_workers(torch.device("cuda"), 10, 4) == 1

    def boom(batch):
        if batch == 7:
            raise ValueError("bad batch 7")
    with pytest.raises(ValueError, match="bad batch 7"):
        run_batches(boom, list(range(20)), workers=2)

    done, failing = [], threading.Event()

    def first_fails(batch):
        if batch == 0:
            failing.set()
            raise ValueError("bad batch 0")
        failing.wait(timeout=10)  # every other batch finishes only after batch 0 has failed ...
        time.sleep(0.05)  # ... and the failure has had ample time to be recorded
        done.append(batch)
    with pytest.raises(ValueError, match="bad batch 0"):
        run_batches(first_fails, list(range(50)), workers=2)
    assert len(done) <= 2  # the other worker stops after its current batch instead of running all 49


@pytest.mark.parametrize("pooling,dense", [("mean", []), ("cls_before_pooler", ["tanh"]), ("cls", []),
                                           ("mean", ["identity", "tanh"])])
def test_save_reload_identical_and_sentence_transformers(tiny_encoder, tmp_path, pooling, dense):
    tiny_encoder.pooling = pooling
    torch.manual_seed(1)
    for act in dense:
        tiny_encoder.dense.append(Dense(32, 32, act))
    want = tiny_encoder.encode(TEXTS)
    assert tiny_encoder.save(tmp_path / "m", meta={"method": "test"}) == []
    again = Encoder.load(tmp_path / "m", device="cpu")
    assert again.pooling == pooling and len(again.dense) == len(dense)
    assert np.array_equal(again.encode(TEXTS), want)
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(tmp_path / "m"), device="cpu")
    assert np.abs(st.encode(TEXTS) - want).max() <= 1e-5
    from transformers import AutoModel

    AutoModel.from_pretrained(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "decone.json").read_text())["method"] == "test"


def test_first_last_avg_says_plainly_it_is_not_sentence_transformers(tiny_encoder, tmp_path):
    tiny_encoder.pooling = "first_last_avg"
    warnings = tiny_encoder.save(tmp_path / "m")
    assert warnings and "cannot be expressed in sentence-transformers" in warnings[0]
    assert not (tmp_path / "m" / "modules.json").exists()
    info = json.loads((tmp_path / "m" / "decone.json").read_text())
    assert info["sentence_transformers_compatible"] is False
    again = Encoder.load(tmp_path / "m", device="cpu")
    assert again.pooling == "first_last_avg"
    assert np.array_equal(again.encode(TEXTS), tiny_encoder.encode(TEXTS))


def test_save_is_atomic_over_an_existing_folder(tiny_encoder, tmp_path):
    tiny_encoder.save(tmp_path / "m")
    tiny_encoder.pooling = "cls_before_pooler"
    tiny_encoder.save(tmp_path / "m")
    assert Encoder.load(tmp_path / "m").pooling == "cls_before_pooler"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".decone-save")]


def test_load_errors(tmp_path, tiny_model_dir):
    with pytest.raises(ModelError, match="does not exist"):
        Encoder.load(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text((tiny_model_dir / "config.json").read_text())
    with pytest.raises(ModelError, match="no model weights"):
        Encoder.load(empty)


@pytest.mark.parametrize("file,content,match", [
    ("modules.json", "[{", "modules.json: not valid JSON"),
    ("modules.json", '{"type": "x"}', "modules.json: expected a JSON list"),
    ("modules.json", '[{"idx": 0, "path": ""}]', "modules.json: entry 0 has no \"type\""),
    ("1_Pooling/config.json", None, "1_Pooling/config.json: missing"),
    ("1_Pooling/config.json", "\xff\xfe", "1_Pooling/config.json: not valid JSON"),
    ("sentence_bert_config.json", "[]", "sentence_bert_config.json: expected a JSON object"),
    ("decone.json", "{oops", "decone.json: not valid JSON"),
])
def test_a_corrupt_sentence_transformers_folder_is_a_model_error_naming_the_file(tmp_path, tiny_model_dir, file,
                                                                               content, match):
    """Every JSON file a folder describes itself with is read through one check: a broken one is a ModelError
    (one line, naming it) rather than a JSONDecodeError or KeyError traceback."""
    import shutil

    folder = tmp_path / "st"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling/config.json").write_text(json.dumps({"word_embedding_dimension": 32, "pooling_mode": "mean"}))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 20}))
    assert Encoder.load(folder, device="cpu").max_length == 20  # the intact folder loads
    if content is None:
        (folder / file).unlink()
    else:
        (folder / file).write_bytes(content.encode("latin-1"))
    with pytest.raises(ModelError, match=match):
        Encoder.load(folder, device="cpu")


def test_pickle_weights_refused_unless_allowed(tmp_path, tiny_model_dir):
    from transformers import BertModel

    folder = tmp_path / "pickled"
    folder.mkdir()
    model = BertModel.from_pretrained(tiny_model_dir)
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    for f in tiny_model_dir.iterdir():
        if f.name != "model.safetensors":
            (folder / f.name).write_bytes(f.read_bytes())
    assert not (folder / "model.safetensors").exists()
    with pytest.raises(ModelError, match="only pickle weights.*--allow-pickle"):
        Encoder.load(folder)
    enc = Encoder.load(folder, allow_pickle=True, device="cpu")
    reference = Encoder.load(tiny_model_dir, device="cpu")
    assert np.array_equal(enc.encode(["the cat"]), reference.encode(["the cat"]))


def test_crafted_pickle_is_never_executed(tmp_path, tiny_model_dir):
    """A .bin whose unpickling would run code: refused by default, and weights_only=True blocks it when allowed."""
    import os

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    folder = tmp_path / "evil"
    folder.mkdir()
    torch.save({"x": Evil()}, folder / "pytorch_model.bin")
    for f in tiny_model_dir.iterdir():
        if f.name != "model.safetensors":
            (folder / f.name).write_bytes(f.read_bytes())
    with pytest.raises(ModelError, match="only pickle weights"):
        Encoder.load(folder)
    with pytest.raises(ModelError):
        Encoder.load(folder, allow_pickle=True)
    assert not (tmp_path / "pwned").exists()


def test_encoder_decoder_architecture_refused(tmp_path):
    from transformers import T5Config, T5Model

    folder = tmp_path / "t5"
    T5Model(T5Config(num_layers=1, d_model=16, d_kv=8, d_ff=32, num_heads=2, vocab_size=50)).save_pretrained(folder)
    with pytest.raises(ModelError, match="neither a bidirectional encoder"):
        Encoder.load(folder)


def test_a_folder_without_tokenizer_files_is_refused(tiny_model_dir, tmp_path):
    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((tiny_model_dir / name).read_bytes())
    with pytest.raises(ModelError, match="no tokenizer files"):
        Encoder.load(folder)


def test_a_tokenizer_that_does_not_fit_the_embeddings_is_refused(tiny_model_dir, tmp_path):
    import json as _json

    folder = tmp_path / "big-vocab"
    folder.mkdir()
    for f in tiny_model_dir.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    config = _json.loads((folder / "config.json").read_text())
    config["vocab_size"] *= 4  # the embedding matrix no longer matches the weights or the tokenizer
    (folder / "config.json").write_text(_json.dumps(config))
    with pytest.raises(ModelError):
        Encoder.load(folder)


def test_weights_missing_from_the_architecture_are_refused(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "cut"
    folder.mkdir()
    for f in tiny_model_dir.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    weights = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in weights.items() if "layer.1." not in k}, folder / "model.safetensors")
    with pytest.raises(ModelError, match="the weights lack"):
        Encoder.load(folder)


def test_max_length_beyond_position_limit(tiny_model_dir):
    with pytest.raises(ConfigError, match="exceeds the model's position limit 64"):
        Encoder.load(tiny_model_dir, max_length=100)


def test_mlp_head_shape():
    head = MLPHead(8)
    assert head(torch.zeros(3, 8)).shape == (3, 8)
    assert head.st_config()["activation_function"].endswith("Tanh")
