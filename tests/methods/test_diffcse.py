"""DiffCSE: BERT masking, the generator (the model's own MLM head by default, refused where there is none), the RTD
gradient reaching the encoder through the discriminator's conditioning, one step lowering the objective, and an
end-to-end run whose folder holds the encoder alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from decone.encoder import Encoder
from decone.errors import ConfigError
from decone.methods import get_method
from decone.methods.diffcse import DiffCSE, DiffCSEOptions, mask_tokens
from tests.methods.test_sncse import SENTENCES, _end_to_end


def make_tiny_mlm(folder: Path, like: Path, seed: int = 1) -> Path:
    """A tiny random BertForMaskedLM with the tokenizer (and config) of the tiny BERT at ``like``."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    BertForMaskedLM(BertConfig.from_pretrained(like)).save_pretrained(folder, safe_serialization=True)
    AutoTokenizer.from_pretrained(like).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_mlm_dir(tiny_model_dir, tmp_path_factory) -> Path:
    return make_tiny_mlm(tmp_path_factory.mktemp("tiny-mlm"), tiny_model_dir)


def _model(model_dir, **kw):
    from decone.train import Trainable

    torch.manual_seed(0)
    enc = Encoder.load(model_dir, pooling="cls_before_pooler", device="cpu")
    objective = DiffCSE(**kw)
    model = Trainable(enc, None, objective, max_length=16)
    objective.setup(model, None)
    return model


def test_mask_tokens_masks_the_ratio_of_real_non_special_tokens():
    torch.manual_seed(0)
    n, length, special = 400, 30, [0, 2, 3]  # [PAD], [CLS], [SEP] in the tiny vocabulary
    ids = torch.randint(5, 60, (n, length))
    ids[:, 0], ids[:, -1] = 2, 3
    attention = torch.ones(n, length, dtype=torch.long)
    attention[: n // 2, 20:] = 0  # padding in half the rows
    ids[: n // 2, 20:] = 0
    out = mask_tokens(ids, attention, special, ratio=0.3, mask_id=4, vocab_size=60)
    candidates = (attention == 1) & ~torch.isin(ids, torch.tensor(special))
    assert torch.equal(out[~candidates], ids[~candidates])  # specials and padding untouched
    became_mask = (out == 4) & candidates
    share_masked = became_mask.sum() / candidates.sum()
    assert 0.3 * 0.8 - 0.02 < float(share_masked) < 0.3 * 0.8 + 0.02  # 80% of the chosen 30% become [MASK]
    changed = (out != ids) & candidates
    assert 0.3 * 0.9 - 0.02 < float(changed.sum() / candidates.sum()) < 0.3 * 0.9 + 0.02  # + most of the random 10%


def test_generator_defaults_to_the_models_own_mlm_head(tiny_mlm_dir):
    model = _model(tiny_mlm_dir)
    gen = model.objective.generator
    assert type(gen).__name__ == "BertForMaskedLM"
    assert all(not p.requires_grad for p in gen.parameters())
    torch.testing.assert_close(gen.bert.embeddings.word_embeddings.weight,
                               model.encoder.model.embeddings.word_embeddings.weight)


def test_model_without_mlm_head_is_refused_naming_the_setting(tiny_model_dir, tmp_path):
    with pytest.raises(ConfigError, match="--set generator="):
        _model(tiny_model_dir)  # the tiny BERT has no MLM head
    with pytest.raises(ConfigError, match="generator"):
        _model(tiny_model_dir, generator=str(tmp_path / "missing"))
    from transformers import BertConfig, BertForMaskedLM

    other = tmp_path / "other-vocab"
    BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64)).save_pretrained(other)
    with pytest.raises(ConfigError, match="another vocabulary"):
        _model(tiny_model_dir, generator=str(other))


def test_a_generator_folder_without_tokenizer_files_is_judged_by_its_embeddings(tiny_model_dir, tiny_mlm_dir, tmp_path):
    """Under transformers 5 a folder without tokenizer files loads as a near-empty tokenizer: such a generator (same
    vocabulary size) is accepted, not refused as "another vocabulary"."""
    import shutil

    bare = tmp_path / "weights-only"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_mlm_dir / name, bare / name)
    gen = _model(tiny_model_dir, generator=str(bare)).objective.generator
    torch.testing.assert_close(gen.bert.embeddings.word_embeddings.weight,
                               Encoder.load(tiny_mlm_dir, device="cpu").model.embeddings.word_embeddings.weight)


def test_a_pickle_only_generator_needs_allow_pickle(tiny_model_dir, tiny_mlm_dir, tmp_path):
    """``--set generator=DIR`` goes through the same weights gate as the model: pickle weights are refused unless
    the user passes --allow-pickle (then loaded with weights_only=True)."""
    import shutil

    from safetensors.torch import load_file

    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_mlm_dir, pickled)
    torch.save(load_file(pickled / "model.safetensors"), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    with pytest.raises(ConfigError, match="diffcse: generator .*only pickle weights.*--allow-pickle"):
        _model(tiny_model_dir, generator=str(pickled))
    gen = _model(tiny_model_dir, generator=str(pickled), allow_pickle=True).objective.generator
    torch.testing.assert_close(gen.bert.embeddings.word_embeddings.weight,
                               Encoder.load(tiny_mlm_dir, device="cpu").model.embeddings.word_embeddings.weight)


def test_a_tokenizer_without_mask_token_is_a_clear_error(tiny_mlm_dir, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    folder = tmp_path / "no-mask"
    shutil.copytree(tiny_mlm_dir, folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.mask_token = None
    tok.save_pretrained(folder)
    assert AutoTokenizer.from_pretrained(folder).mask_token is None
    with pytest.raises(ConfigError, match="diffcse: the tokenizer has no mask token"):
        _model(folder)


def test_rtd_gradient_reaches_the_encoder_through_the_conditioning(tiny_model_dir, tiny_mlm_dir):
    model = _model(tiny_model_dir, generator=str(tiny_mlm_dir), rtd_weight=1.0)
    obj, hf = model.objective, model.encoder.model
    assert not {id(p) for p in obj.discriminator.parameters()} & {id(p) for p in hf.parameters()}  # a separate copy
    model.train()
    texts = SENTENCES[:6] * 2
    encoder_weight = hf.encoder.layer[0].attention.self.query.weight

    torch.manual_seed(0)
    z = obj.embed(model, texts, False)
    rtd = obj.rtd_loss(model, texts, z, False)  # the RTD term alone (no InfoNCE)
    rtd.backward()
    assert encoder_weight.grad is not None and encoder_weight.grad.abs().sum() > 0
    assert obj.rtd_head.weight.grad.abs().sum() > 0
    assert not obj.discriminator.embeddings._forward_hooks  # the conditioning hook is removed after the pass

    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    z = obj.embed(model, texts, False)
    obj.rtd_loss(model, texts, z.detach(), False).backward()  # cut the conditioning: nothing reaches the encoder
    assert encoder_weight.grad is None or encoder_weight.grad.abs().sum() == 0
    assert obj.rtd_head.weight.grad.abs().sum() > 0

    # the condition is what the discriminator sees at position 0
    ids = model.encoder.tokenize(texts[:2])
    obj.eval()
    with torch.no_grad():
        a = obj.discriminate(ids["input_ids"], ids["attention_mask"], torch.zeros(2, hf.config.hidden_size))
        b = obj.discriminate(ids["input_ids"], ids["attention_mask"], torch.ones(2, hf.config.hidden_size))
    assert not torch.allclose(a, b)


def test_one_step_lowers_the_objective(tiny_model_dir, tiny_mlm_dir):
    model = _model(tiny_model_dir, generator=str(tiny_mlm_dir), rtd_weight=0.5)
    model.train()
    views = [SENTENCES, list(SENTENCES)]
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def loss_at_seed():
        torch.manual_seed(0)  # the same masks, edits and dropout
        return model.compute_loss(views, None, use_bf16=False)

    before = loss_at_seed()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss_at_seed()
    assert float(after) < float(before.detach())
    metrics = model.objective.after_step(model)
    assert set(metrics) == {"infonce", "rtd", "rtd_acc", "replaced"}


def test_generator_outside_the_checkpoint_trained_parts_inside(tiny_model_dir, tiny_mlm_dir):
    model = _model(tiny_model_dir, generator=str(tiny_mlm_dir))
    keys = set(model.state_dict())
    assert any(k.startswith("objective.discriminator.") for k in keys)
    assert {"objective.rtd_head.weight", "objective.projector.net.0.weight"} <= keys
    assert not any("generator" in k for k in keys)
    model.double()  # .to() and friends reach the generator too
    assert model.objective.generator.bert.embeddings.word_embeddings.weight.dtype == torch.float64
    model.eval()
    assert not model.objective.generator.training


def test_registered_with_paper_defaults_and_refusals():
    method = get_method("diffcse")
    assert "2204.10298" in method.citation
    d = method.defaults
    assert (d["temperature"], d["lr"], d["batch_size"], d["max_length"]) == (0.05, 7e-6, 64, 32)
    opts = DiffCSEOptions()
    assert (opts.rtd_weight, opts.mask_ratio, opts.generator, opts.projector) == (0.005, 0.3, None, "batchnorm")
    with pytest.raises(ConfigError, match="projector"):
        DiffCSEOptions(projector="mlp").validate()
    assert DiffCSE.gradcache_refusal and DiffCSE.distributed_refusal


def test_end_to_end_folder_loads_in_sentence_transformers(tiny_model_dir, tiny_mlm_dir, tmp_path):
    _end_to_end("diffcse", tiny_model_dir, tmp_path, options={"generator": str(tiny_mlm_dir)})


def test_end_to_end_refuses_a_model_without_mlm_head(tiny_model_dir, tmp_path):
    from decone.train import TrainConfig, fit

    data = tmp_path / "s.txt"
    data.write_text("\n".join(SENTENCES) + "\n")
    with pytest.raises(ConfigError, match="generator"):
        fit(TrainConfig(method="diffcse", model=str(tiny_model_dir), data=str(data), output=str(tmp_path / "o"),
                        max_steps=1, batch_size=4, bf16=False))
    assert not (tmp_path / "o").exists()
