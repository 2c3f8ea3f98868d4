"""PromptBERT: the template at the token level, [MASK] pooling, template denoising, two templates, the round trip."""

from __future__ import annotations

import pytest
import torch

from decone.encoder import Encoder, Pooling
from decone.errors import ConfigError
from decone.methods.promptbert import POSITIVE_TEMPLATE, TEMPLATE
from decone.train import TrainConfig, fit
from tests.methods.helpers import SENTS, build, loss_only, step, views, write_corpus


def test_the_authors_unsupervised_bert_recipe_is_the_default():
    """kongds/Prompt-BERT run.sh unsup-bert: 'This sentence of' is the anchor (saved) template, 'This sentence :' the
    positive; --mlp_only_train; lr 1e-5, batch 256, T 0.05."""
    from decone.methods import get_method

    m = get_method("promptbert")
    assert TEMPLATE == 'This sentence of "[X]" means [MASK] .' and POSITIVE_TEMPLATE == 'This sentence : "[X]" means [MASK] .'
    assert (m.defaults["template"], m.defaults["head"], m.defaults["lr"], m.defaults["batch_size"],
            m.defaults["temperature"]) == (TEMPLATE, "mlp-train", 1e-5, 256, 0.05)
    assert m.revision >= 2 and "arXiv:2201.04337" in m.citation


def test_the_default_length_leaves_a_bert_tokenizer_the_papers_30_tokens_of_text(shared):
    """The authors cut a sentence to 32 tokens ([CLS] and [SEP] included) before the template goes around it."""
    from decone.methods import get_method

    tok = Encoder.load(shared / "models/decone-raw-mini", device="cpu").tokenizer  # bert-base-uncased's vocabulary
    for template in (TEMPLATE, POSITIVE_TEMPLATE):
        ids = Pooling("mask", template).wrap_ids(tok, [" ".join(["word"] * 100)], get_method("promptbert").defaults["max_length"])
        assert len(ids[0]) - 10 == 30 and len(tok.convert_ids_to_tokens(ids[0])) == 40


def test_the_template_wraps_the_text_and_truncation_cuts_the_text_not_the_mask(tiny_encoder):
    tok = tiny_encoder.tokenizer
    pooling = Pooling("mask", TEMPLATE)
    head, pre, suf, tail = pooling.template_parts(tok)
    ids = pooling.wrap_ids(tok, ["the cat sat", " ".join(["dog"] * 100)], 40)
    assert ids[0] == head + pre + tok("the cat sat", add_special_tokens=False)["input_ids"] + suf + tail
    assert len(ids[1]) == 40 and ids[1][-len(suf + tail):] == suf + tail and ids[1].count(tok.mask_token_id) == 1
    with pytest.raises(ConfigError, match="leaves no room for the text"):
        pooling.wrap_ids(tok, ["the cat"], len(head + pre + suf + tail))
    with pytest.raises(ConfigError, match="exactly one"):
        Pooling("mask", "no placeholders")
    with pytest.raises(ConfigError, match="needs a prompt template"):
        Pooling("mask")


def test_mask_pooling_takes_the_mask_state(tiny_encoder):
    enc = tiny_encoder
    enc.pooling_module = Pooling("mask", TEMPLATE)
    feats = enc.tokenize(["the cat sat", "a dog ran to the road"])
    out = enc.model(**feats, return_dict=True).last_hidden_state
    got = enc(feats)["embedding"]
    for row in range(2):
        pos = feats["input_ids"][row].tolist().index(enc.tokenizer.mask_token_id)
        assert torch.equal(got[row], out[row, pos])


def test_denoising_subtracts_the_template_only_state(tiny_model_dir):
    model, cfg = build("promptbert", tiny_model_dir, head="none")  # the training head comes after the denoising
    model.eval()
    obj, enc = model.objective, model.encoder
    texts = ["the cat sat", "a dog ran to the road"]
    with torch.no_grad():
        denoised = obj.embed(model, enc.pooling_module, texts, False)
        obj.denoise = False
        raw = obj.embed(model, enc.pooling_module, texts, False)
    head, pre, suf, tail = enc.pooling_module.template_parts(enc.tokenizer)
    wrapped = enc.pooling_module.wrap_ids(enc.tokenizer, texts, model.max_length)
    for row, text in enumerate(texts):  # by hand: the template alone, its suffix where it sits after the (cut) text
        n = len(wrapped[row]) - len(head + pre + suf + tail)
        ids = torch.tensor([head + pre + suf + tail])
        positions = torch.tensor([list(range(len(head + pre))) + [len(head + pre) + n + i for i in range(len(suf + tail))]])
        with torch.no_grad():
            states = enc.model(input_ids=ids, position_ids=positions, return_dict=True).last_hidden_state[0]
        bias = states[(head + pre + suf + tail).index(enc.tokenizer.mask_token_id)]
        assert torch.allclose(denoised[row], raw[row] - bias, atol=1e-5)


def test_the_two_views_use_two_templates(tiny_model_dir):
    model, cfg = build("promptbert", tiny_model_dir)
    model.eval()
    with torch.no_grad():
        z1 = model.objective.embed(model, model.encoder.pooling_module, SENTS[:4], False)
        z2 = model.objective.embed(model, model.objective.positive, SENTS[:4], False)
    assert model.objective.positive.template == POSITIVE_TEMPLATE
    assert not torch.allclose(z1, z2)  # different prompts, different states even without dropout


def test_the_training_head_maps_the_denoised_state(tiny_model_dir):
    model, cfg = build("promptbert", tiny_model_dir)
    assert cfg.head == "mlp-train" and model.head is not None
    model.eval()
    with torch.no_grad():
        with_head = model.objective.embed(model, model.encoder.pooling_module, SENTS[:4], False)
        head, model.head = model.head, None
        without = model.objective.embed(model, model.encoder.pooling_module, SENTS[:4], False)
        assert torch.allclose(with_head, head(without), atol=1e-6)


def test_one_step_lowers_the_objective(tiny_model_dir):
    model, cfg = build("promptbert", tiny_model_dir)
    model.eval()
    v = views((model, cfg))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    first = loss_only(model, v)
    step(model, opt, v)
    assert loss_only(model, v) < first


def test_trains_and_the_template_survives_the_round_trip(tiny_model_dir, tmp_path):
    out = tmp_path / "pb"
    fit(TrainConfig(method="promptbert", model=str(tiny_model_dir), data=str(write_corpus(tmp_path)),
                    output=str(out), max_steps=2, batch_size=8, bf16=False, lr=1e-3))
    enc = Encoder.load(out, device="cpu")
    assert enc.pooling == "mask" and enc.pooling_module.template == TEMPLATE
    assert not (out / "modules.json").exists()  # sentence-transformers has no [MASK] pooling: refused, said at save
    again = Encoder.load(out, device="cpu")
    assert torch.equal(torch.from_numpy(enc.encode(SENTS)), torch.from_numpy(again.encode(SENTS)))
    with pytest.raises(ConfigError, match="GradCache does not replay"):
        fit(TrainConfig(method="promptbert", model=str(tiny_model_dir), data=str(write_corpus(tmp_path)),
                        output=str(tmp_path / "gc"), max_steps=1, batch_size=8, bf16=False, mini_batch_size=2))
