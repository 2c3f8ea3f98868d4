"""Publishing (decone.hub) and `decone push`: offline, without a token and without a network every failure is one
line (DeconeError), never a traceback; --dry-run lists the files and needs neither."""

from __future__ import annotations

import json

import pytest

from decone.errors import ConfigError, DeconeError, ModelError
from decone.hub import push, upload_files
from tests._cli import run_cli


@pytest.fixture()
def folder(tiny_model_dir, tmp_path):
    from decone.encoder import Encoder

    out = tmp_path / "model"
    Encoder.load(tiny_model_dir, pooling="mean", device="cpu").save(
        out, meta={"method": "simcse", "config": {"method": "simcse", "model": "bert-base-uncased"},
                   "summary": {"steps": 3}})
    (out / "checkpoint").mkdir()
    (out / "checkpoint" / "optimizer.pt").write_bytes(b"x")
    (out / "runs").mkdir()
    (out / "runs" / "events.out.tfevents.1").write_bytes(b"x")
    (out / ".README.md.tmp").write_text("partial")
    (out / "train_log.jsonl").write_text(json.dumps({"step": 1, "loss": 1.0}) + "\n")
    return out




def test_dry_run_lists_files_without_network_or_token(folder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    before = sorted((p.relative_to(folder).as_posix(), p.stat().st_mtime_ns) for p in folder.rglob("*"))
    files = push(folder, "me/tiny", dry_run=True)
    assert "model.safetensors" in files and "config.json" in files and "modules.json" in files
    assert "train_log.jsonl" in files and "1_Pooling/config.json" in files
    assert "README.md" in files  # the card that push writes first
    assert not any(f.startswith(("checkpoint/", "runs/", ".")) for f in files)
    assert sorted((p.relative_to(folder).as_posix(), p.stat().st_mtime_ns) for p in folder.rglob("*")) == before  # a dry run writes nothing
    code, text = run_cli(["push", str(folder), "me/tiny", "--dry-run"])
    assert code == 0 and "model.safetensors" in text and "would be uploaded to me/tiny" in text


def test_offline_is_one_line(folder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DeconeError) as err:
        push(folder, "me/tiny", token="hf_dummy")
    assert "offline" in str(err.value) and "\n" not in str(err.value)
    code, text = run_cli(["push", str(folder), "me/tiny", "--private"])
    assert code == 2 and "HF_HUB_OFFLINE" in text


def test_no_token_is_one_line(folder, monkeypatch):
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    card = (folder / "README.md").stat().st_mtime_ns  # written at save; push would refresh it
    with pytest.raises(DeconeError) as err:
        push(folder, "me/tiny")
    assert "no token" in str(err.value) and "hf auth login" in str(err.value) and "\n" not in str(err.value)
    assert (folder / "README.md").stat().st_mtime_ns == card  # nothing written before the checks pass


def test_no_network_is_one_line(folder, monkeypatch):
    """A token but no Hub to reach (a closed local port): the connection error becomes one line."""
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # read once, when it was imported
    with pytest.raises(DeconeError) as err:
        push(folder, "me/tiny", token="hf_dummy", endpoint="http://127.0.0.1:9")
    message = str(err.value)
    assert message.startswith("push to me/tiny failed: no network") and "\n" not in message


def test_bad_input(folder, tmp_path):
    with pytest.raises(ConfigError, match="repo id"):
        push(folder, "not a repo id", dry_run=True)
    with pytest.raises(ConfigError, match="repo id"):
        push(folder, "a/b/c", dry_run=True)
    with pytest.raises(ModelError, match="does not exist"):
        push(tmp_path / "missing", "me/x", dry_run=True)
    assert upload_files(folder) == sorted(upload_files(folder))
