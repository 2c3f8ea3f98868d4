"""TSDAE: deletion noise, a decoder tied to the encoder that sees only the sentence embedding, its reconstruction loss
falling on a repeated batch, checkpoints with tied weights, and an end-to-end run that saves the encoder alone."""

from __future__ import annotations

import random

import pytest
import torch

from decone.encoder import Encoder
from decone.errors import ConfigError
from decone.methods import get_method
from decone.methods.tsdae import TSDAE, TSDAEOptions, delete_words, deletion_views
from tests.methods.test_sncse import SENTENCES, _end_to_end


def _trainable(tiny_model_dir, tie=True):
    from decone.train import Trainable

    torch.manual_seed(0)
    enc = Encoder.load(tiny_model_dir, pooling="cls_before_pooler", device="cpu")
    objective = TSDAE(tie_encoder_decoder=tie)
    model = Trainable(enc, None, objective, max_length=16)
    objective.setup(model, None)
    return model


def test_deletion_noise_keeps_about_forty_percent_and_never_nothing():
    rng = random.Random(0)
    text = " ".join(f"w{i}" for i in range(1000))
    kept = delete_words(text, 0.6, rng).split()
    assert 340 <= len(kept) <= 460  # Binomial(1000, 0.4)
    assert kept == [w for w in text.split() if w in set(kept)]  # order kept, nothing invented
    assert all(delete_words("hello", 0.99, random.Random(s)) == "hello" for s in range(20))  # one word always stays
    assert delete_words("", 0.6, rng) == ""
    assert delete_words("A man, a plan.", 0.0, rng) == "A man, a plan."  # punctuation re-attached
    views = deletion_views(0.6)([("the cat sat on the mat",), ("a dog ran",)], random.Random(1))
    assert views[1] == ["the cat sat on the mat", "a dog ran"] and len(views[0]) == 2


def test_decoder_is_tied_to_the_encoder_and_sees_only_the_embedding(tiny_model_dir):
    model = _trainable(tiny_model_dir)
    decoder, hf = model.objective.decoder, model.encoder.model
    assert decoder.config.is_decoder and decoder.config.add_cross_attention
    enc_ids = {id(p) for p in hf.parameters()}
    own = [n for n, p in decoder.named_parameters() if id(p) not in enc_ids]
    shared = [n for n, p in decoder.named_parameters() if id(p) in enc_ids]
    assert decoder.base_model.embeddings.word_embeddings.weight is hf.embeddings.word_embeddings.weight
    assert decoder.get_output_embeddings().weight is hf.embeddings.word_embeddings.weight
    query = hf.encoder.layer[0].attention.self.query.weight
    assert decoder.base_model.encoder.layer[0].attention.self.query.weight is query
    assert own and all("crossattention" in n or n.startswith("cls.") for n in own), own
    assert any("crossattention" in n for n in own) and len(shared) > len(own)
    # the self-attention is causal: a later token does not change an earlier position's logits
    z = torch.randn(1, 1, hf.config.hidden_size)
    ids = model.encoder.tokenize(["the cat sat on the mat"])["input_ids"]
    decoder.eval()
    with torch.no_grad():
        a = decoder(input_ids=ids, encoder_hidden_states=z, use_cache=False).logits
        later_changed = torch.cat([ids[:, :3], ids[:, 3:].flip(1)], 1)
        b = decoder(input_ids=later_changed, encoder_hidden_states=z, use_cache=False).logits
        c = decoder(input_ids=ids, encoder_hidden_states=z + 1.0, use_cache=False).logits
    torch.testing.assert_close(a[:, :3], b[:, :3])
    assert not torch.allclose(a, c)  # ... and the embedding (the only memory) matters


def test_reconstruction_loss_falls_on_a_repeated_batch(tiny_model_dir):
    model = _trainable(tiny_model_dir)
    model.train()
    views = deletion_views(0.6)([(s,) for s in SENTENCES], random.Random(0))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(6):
        torch.manual_seed(0)
        loss = model.compute_loss(views, None, use_bf16=False)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 0.5, losses
    # gradients reach the encoder through the embedding (not only through the tied weights' other uses)
    loss = model.compute_loss(views, None, use_bf16=False)
    opt.zero_grad()
    loss.backward()
    assert model.encoder.model.encoder.layer[-1].output.dense.weight.grad.abs().sum() > 0


def test_untied_decoder_has_its_own_weights(tiny_model_dir):
    model = _trainable(tiny_model_dir, tie=False)
    enc_ids = {id(p) for p in model.encoder.model.parameters()}
    assert not any(id(p) in enc_ids for p in model.objective.decoder.parameters())


def test_registered_with_paper_defaults_and_refusals():
    method = get_method("tsdae")
    assert "2104.06979" in method.citation
    d = method.defaults
    assert (d["pooling"], d["head"], d["lr"], d["batch_size"]) == ("cls_before_pooler", "none", 3e-5, 8)
    assert TSDAEOptions().deletion_ratio == 0.6 and TSDAEOptions().tie_encoder_decoder
    with pytest.raises(ConfigError, match="deletion_ratio"):
        TSDAEOptions(deletion_ratio=1.0).validate()
    assert TSDAE.gradcache_refusal and TSDAE.distributed_refusal


def test_end_to_end_folder_loads_in_sentence_transformers(tiny_model_dir, tmp_path):
    _end_to_end("tsdae", tiny_model_dir, tmp_path, max_length=32)


def test_checkpoint_with_tied_weights_resumes(tiny_model_dir, tmp_path):
    """keep_checkpoint: the decoder's own weights are in the checkpoint and load back with the ties intact."""
    from safetensors.torch import load_file

    from decone.train import TrainConfig, Trainer, fit, load_checkpoint

    data = tmp_path / "sents.txt"
    data.write_text("\n".join(SENTENCES) + "\n")
    cfg = dict(method="tsdae", model=str(tiny_model_dir), data=str(data), max_steps=2, batch_size=4, bf16=False,
               max_length=32, lr=1e-3)
    fit(TrainConfig(output=str(tmp_path / "a"), keep_checkpoint=True, **cfg))
    saved = load_file(tmp_path / "a" / "checkpoint" / "model.safetensors")
    cross = [k for k in saved if "crossattention" in k]
    assert cross
    trainer = Trainer(TrainConfig(output=str(tmp_path / "b"), **cfg))
    trainer.setup()
    load_checkpoint(tmp_path / "a" / "checkpoint", trainer.model, trainer.optimizer, trainer.scheduler)
    state = trainer.model.state_dict()
    for k in cross:
        torch.testing.assert_close(state[k], saved[k])
    hf, decoder = trainer.model.encoder.model, trainer.model.objective.decoder
    assert decoder.base_model.embeddings.word_embeddings.weight is hf.embeddings.word_embeddings.weight
    torch.testing.assert_close(hf.embeddings.word_embeddings.weight,
                               saved["encoder.model.embeddings.word_embeddings.weight"])


def test_lora_is_refused_with_a_tied_decoder_and_runs_with_an_untied_one(tiny_model_dir, tmp_path):
    """The decoder is tied to the encoder's weight tensors: LoRA would freeze them and its adapters would not reach the
    decoder (its linear layers are its own modules), so the run would not be TSDAE; refused before anything is
    written. An untied decoder is a model of its own, and LoRA runs."""
    from decone.train import TrainConfig, fit
    from tests.methods.helpers import write_corpus

    with pytest.raises(ConfigError, match="--lora-r: tsdae: its decoder shares the encoder's weight tensors"):
        fit(TrainConfig(method="tsdae", model=str(tiny_model_dir), data=str(write_corpus(tmp_path)),
                        output=str(tmp_path / "out"), max_steps=1, batch_size=8, bf16=False, max_length=32, lora_r=2))
    assert not (tmp_path / "out").exists()
    pytest.importorskip("peft", reason="LoRA needs the decoders extra (peft)")
    # untied, the decoder is a model of its own: LoRA adapts the encoder and the run trains
    fit(TrainConfig(method="tsdae", model=str(tiny_model_dir), data=str(write_corpus(tmp_path)),
                    output=str(tmp_path / "untied"), max_steps=1, batch_size=8, bf16=False, max_length=32, lora_r=2,
                    options={"tie_encoder_decoder": False}))
    assert (tmp_path / "untied" / "model.safetensors").exists()
