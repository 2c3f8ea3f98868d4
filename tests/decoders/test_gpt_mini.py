"""The real decoder stand-in (../shared/models/decone-raw-gpt-mini): per-layer token anisotropy, the switch, MNTP.

Skipped, saying why, where ../shared or the model is absent. ``pytest -s`` prints the per-layer table that
docs/decoders.md quotes beside Ethayarajh (2019)'s GPT-2 figures.
"""

from __future__ import annotations

import json

import pytest
import torch

from decone import decoders

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def loaded(gpt_mini):
    from transformers import AutoModel, AutoTokenizer

    folder, stsb = gpt_mini
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    note = decoders.ensure_pad_token(tok, model.config)
    return model, tok, note, decoders.read_stsb_sentences(stsb, 300, seed=0)


def test_it_is_a_decoder_without_a_pad_token(loaded):
    model, tok, note, _ = loaded
    assert decoders.is_decoder_config(model.config)
    assert note is not None and tok.pad_token == tok.eos_token  # GPT-2 style: no pad token of its own


def test_per_layer_token_cosine_with_and_without_the_first_token(loaded):
    model, tok, _, texts = loaded
    stats = decoders.token_anisotropy(model, tok, texts, n_pairs=3000, seed=0)
    gpt2 = decoders.ETHAYARAJH_2019["gpt2"]
    print("\nlayer  all tokens  without first  | GPT-2 (Ethayarajh 2019, 12 layers: first and last)")
    for layer, (a, b) in enumerate(zip(stats["all_tokens"], stats["without_first"])):
        print(f"{layer:5d}  {a:10.3f}  {b:13.3f}")
    print(f"GPT-2 layer 0 {gpt2[0]}, layer 12 {gpt2[-1]}; BERT-base layer 12 {decoders.ETHAYARAJH_2019['bert-base-cased'][-1]}")
    print(json.dumps(stats))
    assert len(stats["all_tokens"]) == model.config.n_layer + 1
    # the stand-in is NOT GPT-2's extreme cone (its MEASURED.md: 0.19 last layer, 3,000 pairs on 1,000 sentences)
    assert 0.1 < stats["all_tokens"][-1] < 0.35 < gpt2[-1]
    assert stats["all_tokens"][1] > stats["all_tokens"][0]  # contextual layers are more anisotropic than embeddings


def test_bidirectional_switch_on_the_real_model(loaded):
    model, tok, _, texts = loaded
    enc = tok(texts[:4], padding=True, return_tensors="pt")
    later = enc["input_ids"].clone()
    later[:, 3] = (later[:, 3] + 1) % model.config.vocab_size
    with torch.no_grad():
        causal = (model(**enc).last_hidden_state[:, 1] - model(input_ids=later, attention_mask=enc["attention_mask"]).last_hidden_state[:, 1]).abs().max()
        with decoders.bidirectional(model):
            both = (model(**enc).last_hidden_state[:, 1] - model(input_ids=later, attention_mask=enc["attention_mask"]).last_hidden_state[:, 1]).abs().max()
    assert float(causal) == 0.0 and float(both) > 1e-3


def test_mntp_one_step_on_the_real_model(gpt_mini):
    """Setup (pad, <mask>, LoRA r 16, bidirectional) and one LoRA step lower the MNTP loss of the real decoder."""
    pytest.importorskip("peft")
    from types import SimpleNamespace

    from transformers import AutoModel, AutoTokenizer

    from decone.methods.mntp import MNTP, MNTPOptions

    folder, stsb = gpt_mini
    texts = decoders.read_stsb_sentences(stsb, 32, seed=1)
    hf, tok = AutoModel.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    model = SimpleNamespace(encoder=SimpleNamespace(model=hf, tokenizer=tok, max_length=64), max_length=64)
    objective = MNTP(MNTPOptions())
    objective.setup(model)
    model.encoder.model.eval()
    params = [p for p in model.encoder.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    torch.manual_seed(0)
    loss = objective.loss(model, [texts], None, False)
    loss.backward()
    before = float(loss.detach())
    optimizer.step()
    with torch.no_grad():
        torch.manual_seed(0)
        after = float(objective.loss(model, [texts], None, False))
    print(f"\nMNTP loss on decone-raw-gpt-mini, 32 STS-B sentences: {before:.3f} -> {after:.3f} after one LoRA step")
    assert after < before


def test_diagnose_reports_decoder_token_metrics_with_and_without_the_first_token(gpt_mini, tmp_path):
    """`decone diagnose` on the real decoder: every layer has the token metrics twice, the second without each
    sentence's first word (the attention sink), and the table prints the decoder rows."""
    from tests._cli import run_cli

    folder, stsb = gpt_mini
    code, output = run_cli(["diagnose", "--model", str(folder), "--data", str(stsb), "--output", str(tmp_path),
                            "--sample", "200", "--pairs", "2000", "--token-sample", "100"])
    assert code == 0, output
    doc = json.loads((tmp_path / "diagnostics.json").read_text())
    layers = doc["models"][0]["layers"]
    assert all("token" in layer and "token_without_first" in layer for layer in layers)
    first_left_out = [layer["token_without_first"]["n_words"] for layer in layers]
    dropped = layers[0]["token"]["n_words"] - first_left_out[0]  # one a sentence, less those opening with punctuation
    assert 0.9 * layers[0]["token"]["n_sentences"] <= dropped <= layers[0]["token"]["n_sentences"]
    assert layers[-1]["token_without_first"]["baseline"] != layers[-1]["token"]["baseline"]
    assert "first token left out" in output


def test_without_first_words_drops_one_word_per_sentence():
    import numpy as np

    from decone.diagnostics.tokens import WordStates, without_first_words

    states = WordStates(vectors=np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3),
                        words=["a", "b", "c", "d", "e"], sentence_ids=np.array([0, 0, 1, 1, 1]))
    rest = without_first_words(states)
    assert rest.words == ["b", "d", "e"] and rest.sentence_ids.tolist() == [0, 1, 1]
    assert np.array_equal(rest.vectors, states.vectors[:, [1, 3, 4]])
