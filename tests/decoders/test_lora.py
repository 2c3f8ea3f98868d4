"""decone.lora (peft): targets per family, only LoRA trains, merged weights reproduce the adapter model."""

from __future__ import annotations

import json

import pytest
import torch

peft = pytest.importorskip("peft")

from decone import lora  # noqa: E402
from decone.decoders import enable_bidirectional, is_bidirectional  # noqa: E402
from tests.decoders.conftest import FAMILIES, tiny_decoder  # noqa: E402


def _with_random_adapters(model, seed: int = 1):
    """LoRA's B starts at zero (the adapter a no-op); give it values so that merging has something to merge."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    return model


def _inputs():
    ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11], [12, 13, 14, 15, 0, 0, 0]])
    return {"input_ids": ids, "attention_mask": (torch.arange(7) < torch.tensor([[7], [4]])).long()}


def _out(model, inputs):
    with torch.no_grad():
        return model(**inputs).last_hidden_state


@pytest.mark.parametrize("family", FAMILIES)
def test_only_lora_parameters_train(family):
    model = lora.apply_lora(tiny_decoder(family), r=4, alpha=8)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable}
    assert adapted == set(lora.default_lora_targets(model.config))  # every default target of the family is hit
    n, total = lora.trainable_parameters(model)
    assert 0 < n < total
    assert not model.training  # the eval model stays in eval mode (no LoRA dropout at inference)


def test_targets_are_checked_and_parsed():
    assert lora.parse_targets(" q_proj, v_proj ,") == ["q_proj", "v_proj"] and lora.parse_targets("") is None
    model = lora.apply_lora(tiny_decoder("llama"), r=2, targets="q_proj,v_proj")
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, p in model.named_parameters() if p.requires_grad} == {"q_proj", "v_proj"}
    with pytest.raises(ValueError, match="match no module"):
        lora.apply_lora(tiny_decoder("llama"), targets="c_attn")
    with pytest.raises(ValueError, match="rank"):
        lora.apply_lora(tiny_decoder("llama"), r=0)
    with pytest.raises(ValueError, match="already has LoRA"):
        lora.apply_lora(model)


@pytest.mark.parametrize("family", ["gpt2", "llama", "qwen3"])
def test_merged_save_reload_reproduces_the_adapter_model(tmp_path, family):
    """GPT-2 (Conv1D weights, fan_in_fan_out), Llama and Qwen3 (with q/k norms): merged == adapter outputs."""
    from transformers import AutoModel

    model = _with_random_adapters(lora.apply_lora(tiny_decoder(family), r=4, alpha=8))
    inputs = _inputs()
    reference = _out(model, inputs)
    assert (reference - _out(tiny_decoder(family), inputs)).abs().max() > 1e-3  # the adapters do change the output

    lora.save_merged(model, tmp_path / "merged")
    assert sorted(p.name for p in (tmp_path / "merged").iterdir()) == ["config.json", "model.safetensors"]
    reloaded = AutoModel.from_pretrained(tmp_path / "merged").eval()
    torch.testing.assert_close(_out(reloaded, inputs), reference, atol=1e-5, rtol=1e-4)
    assert lora.is_lora(model)  # save_merged left the training model's adapters in place
    torch.testing.assert_close(_out(model, inputs), reference)

    lora.save_adapter(model, tmp_path / "adapter")
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["r"] == 4
    again = lora.load_adapter(tiny_decoder(family), tmp_path / "adapter")  # the same seed: the same base
    torch.testing.assert_close(_out(again, inputs), reference, atol=1e-6, rtol=1e-5)

    merged = lora.merge_lora(model)
    assert not lora.is_lora(merged) and type(merged).__name__.endswith("Model")
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(_out(merged, inputs), reference, atol=1e-5, rtol=1e-4)


def test_save_pretrained_merges_and_keeps_config_causal(tmp_path):
    model = _with_random_adapters(lora.apply_lora(tiny_decoder("mistral"), r=4, alpha=8))
    enable_bidirectional(model)
    lora.save_pretrained(model, tmp_path)
    assert "is_causal" not in json.loads((tmp_path / "config.json").read_text())
    assert is_bidirectional(model) and model.config.is_causal is False
    assert not (tmp_path / "adapter_config.json").exists()


def test_a_model_without_adapters_passes_through(tmp_path):
    model = tiny_decoder("gpt2")
    assert lora.merge_lora(model) is model and not lora.is_lora(model)
    assert set(lora.merged_state_dict(model)) == set(model.state_dict())
    with pytest.raises(ValueError, match="no LoRA adapters"):
        lora.save_adapter(model, tmp_path)


def test_unknown_family_asks_for_targets():
    from transformers import PretrainedConfig

    with pytest.raises(ValueError, match="--lora-targets"):
        lora.default_lora_targets(PretrainedConfig(model_type="no-such-model"))


# ------------------------------------------------------------------------------------- --lora-save merged | adapter
def _gpt_run(tmp_path, name: str, **kw):
    """Two SimCSE steps with LoRA on a tiny GPT-2 folder (same seed every call); -> the output folder."""
    import random

    from decone.train import TrainConfig, fit
    from tests.decoders.conftest import WORDS, tiny_tokenizer

    base = tmp_path / "base"
    if not base.exists():
        tiny_decoder("gpt2").save_pretrained(base)
        tiny_tokenizer().save_pretrained(base)
        rng = random.Random(0)
        (tmp_path / "s.txt").write_text("\n".join(" ".join(rng.choices(WORDS, k=6)) for _ in range(32)) + "\n")
    out = tmp_path / name
    fit(TrainConfig(**{**dict(method="simcse", model=str(base), data=str(tmp_path / "s.txt"), output=str(out),
                               max_steps=2, batch_size=8, max_length=16, pooling="mean", head="none", lr=1e-2,
                               bf16=False, lora_r=4), **kw}))
    return base, out


def test_adapter_save_reloads_equal_to_the_merged_save(tmp_path):
    from transformers import AutoModel

    from decone.encoder import Encoder

    base, merged = _gpt_run(tmp_path, "merged")
    _, adapter = _gpt_run(tmp_path, "adapter", lora_save="adapter")
    names = {p.name for p in adapter.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "decone.json", "tokenizer.json"} <= names
    assert "config.json" not in names and not any(n.startswith("model") for n in names)  # no full model
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(base.resolve())
    assert json.loads((adapter / "decone.json").read_text())["lora"] == {"saved": "adapter", "base": str(base.resolve())}
    texts = ["the dog runs on the mat", "a red car", "music"]
    want = Encoder.load(str(merged)).encode(texts)
    got = Encoder.load(str(adapter)).encode(texts)
    assert (want - Encoder.load(str(base), pooling="mean").encode(texts)).__abs__().max() > 1e-4  # training moved it
    assert abs(got - want).max() < 1e-5
    inputs = _inputs()
    plain = AutoModel.from_pretrained(merged).eval()
    via_peft = AutoModel.from_pretrained(adapter).eval()  # transformers' peft integration reads the adapter folder
    torch.testing.assert_close(_out(via_peft, inputs), _out(plain, inputs), atol=1e-5, rtol=1e-4)
    if (adapter / "modules.json").exists():  # mean pooling on a causal decoder: sentence-transformers can load it
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(adapter), device="cpu").encode(texts, convert_to_numpy=True)
        assert abs(st - want).max() < 1e-5


def test_adapter_save_refusals(tmp_path):
    import shutil

    from decone.encoder import Encoder
    from decone.errors import ConfigError, ModelError
    from decone.train import TrainConfig

    with pytest.raises(ConfigError, match="--lora-save 'both' unknown"):
        TrainConfig(method="simcse", model="m", lora_save="both").resolved()
    with pytest.raises(ConfigError, match="trains no LoRA adapters"):
        _gpt_run(tmp_path, "none", lora_save="adapter", lora_r=0)
    base, adapter = _gpt_run(tmp_path, "adapter", lora_save="adapter")
    shutil.move(base, tmp_path / "moved")
    with pytest.raises(ModelError, match="adapter's base model .* does not exist"):
        Encoder.load(str(adapter))


def test_an_adapter_loaded_model_cannot_be_saved_as_a_new_adapter(tmp_path):
    """A model loaded from an adapter folder is base + adapter merged: a new adapter would point at the bare base."""
    from decone.errors import ConfigError

    base, adapter = _gpt_run(tmp_path, "adapter", lora_save="adapter")

    from decone.train import TrainConfig, fit

    with pytest.raises(ConfigError, match="loaded from the adapter folder"):
        fit(TrainConfig(method="simcse", model=str(adapter), data=str(tmp_path / "s.txt"), output=str(tmp_path / "again"),
                        max_steps=1, batch_size=8, max_length=16, pooling="mean", head="none", bf16=False, lora_r=4,
                        lora_save="adapter"))
    assert not (tmp_path / "again").exists()


def test_every_method_that_trains_through_lora_takes_the_same_lora_settings():
    """mntp and llm2vec-simcse inherit one LoRAOptions: the same names, defaults and checks (a bad value names its
    --set flag), and attach_to puts the adapter on with those settings."""
    from dataclasses import fields

    from decone.errors import ConfigError
    from types import SimpleNamespace

    from decone.methods import get_method

    shared = {f.name: f.default for f in fields(lora.LoRAOptions)}
    for name in ("mntp", "llm2vec-simcse"):
        options = get_method(name).options
        assert issubclass(options, lora.LoRAOptions)
        assert {f.name: f.default for f in fields(options) if f.name in shared} == shared
        with pytest.raises(ConfigError, match="--set lora_dropout"):
            options(lora_dropout=1.0).validate()
    encoder = SimpleNamespace(model=tiny_decoder("gpt2"))  # attach reads and replaces encoder.model only
    note = lora.LoRAOptions(lora_r=2, lora_alpha=4.0).attach_to(encoder)
    assert "LoRA r=2 alpha=4" in note and lora.is_lora(encoder.model)
    assert lora.LoRAOptions(lora_r=2).attach_to(encoder) is None  # already adapted: nothing more
