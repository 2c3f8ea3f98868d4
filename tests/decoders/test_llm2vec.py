"""``llm2vec``: mntp then llm2vec-simcse as resumable stages (decone.train.stages), on a tiny random GPT-2 folder."""

from __future__ import annotations

import json
import os
import random
import signal

import pytest
import torch

pytest.importorskip("peft")

from decone.errors import ConfigError  # noqa: E402
from decone.methods import get_method  # noqa: E402
from decone.train import TrainConfig, fit  # noqa: E402
from decone.train.callbacks import Callback  # noqa: E402
from decone.train.config import stages_folder  # noqa: E402
from decone.train.stages import plan  # noqa: E402
from tests.decoders.conftest import WORDS, tiny_decoder, tiny_tokenizer  # noqa: E402


@pytest.fixture()
def gpt_folder(tmp_path):
    folder = tmp_path / "gpt"
    tiny_decoder("gpt2", causal_lm=True).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


@pytest.fixture()
def sentences(tmp_path):
    rng = random.Random(0)
    path = tmp_path / "sents.txt"
    path.write_text("\n".join(" ".join(rng.choices(WORDS, k=rng.randint(3, 9))) for _ in range(64)) + "\n")
    return path


def _config(model, data, out, **kw) -> TrainConfig:
    values = dict(method="llm2vec", model=str(model), data=str(data), output=str(out), max_steps=3, batch_size=8,
                  max_length=16, bf16=False, options={"lora_r": 4, "mask_token": "_"}, log_every=1, save_every=1000)
    return TrainConfig(**{**values, **kw})


def test_registered_as_two_stages_with_their_own_defaults(tmp_path):
    method = get_method("llm2vec")
    assert method.stages == ("mntp", "llm2vec-simcse") and method.objective is None
    cfg = TrainConfig(method="llm2vec", model="base", output=str(tmp_path / "out"), lr=1e-4,
                      options={"attention_dropout": 0.1, "lora_r": 8, "mask_ratio": 0.3})
    first, second = cfg.stage_configs()
    assert (first.method, first.model, first.output) == ("mntp", "base", str(tmp_path / "out.stages" / "1-mntp"))
    assert (second.method, second.model, second.output) == ("llm2vec-simcse", first.output, str(tmp_path / "out"))
    assert first.options == {"lora_r": 8, "mask_ratio": 0.3}  # each --set goes to the stages that have it
    assert second.options == {"attention_dropout": 0.1, "lora_r": 8}
    r1, r2 = first.resolved(), second.resolved()
    assert r1.lr == r2.lr == 1e-4  # a general flag given applies to every stage ...
    assert (r1.batch_size, r2.batch_size) == (32, 128)  # ... and each stage keeps its own defaults otherwise


def test_bad_settings_fail_before_any_stage_trains(tmp_path):
    with pytest.raises(ConfigError, match="not a setting of any stage"):
        TrainConfig(method="llm2vec", model="m", output=str(tmp_path / "o"), options={"nosuch": 1}).resolved()
    with pytest.raises(ConfigError, match="mask_ratio"):
        plan(TrainConfig(method="llm2vec", model="m", output=str(tmp_path / "o"), options={"mask_ratio": 2.0}))
    assert not (tmp_path / "o").exists() and not stages_folder(tmp_path / "o").exists()


def test_chain_trains_both_stages_and_the_folder_describes_the_chain(tmp_path, gpt_folder, sentences):
    from decone.encoder import Encoder

    out = tmp_path / "out"
    summary = fit(_config(gpt_folder, sentences, out))
    assert [s["method"] for s in summary["stages"]] == ["mntp", "llm2vec-simcse"] and summary["steps"] == 6
    mntp_folder = stages_folder(out) / "1-mntp"
    assert (mntp_folder / "decone.json").exists()  # the MNTP model is kept: the second stage's input
    info = json.loads((out / "decone.json").read_text())
    assert info["method"] == "llm2vec" and info["config"]["model"] == str(gpt_folder)
    assert [s["output"] for s in info["stages"]] == [str(mntp_folder), str(out)]
    assert info["attention"] == "bidirectional"
    assert "Stages, each trained on the previous one's output" in (out / "README.md").read_text()
    enc = Encoder.load(str(out))
    assert enc.pooling == "mean" and enc.encode(["the dog runs"]).shape == (1, 32)
    # the second stage started from the first stage's output, not from the base model
    second = json.loads((out / "decone.json").read_text())["stages"][1]
    assert second["output"] == str(out)
    assert json.loads((stages_folder(out) / "2-llm2vec-simcse.done.json").read_text())["steps"] == 3

    with pytest.raises(ConfigError, match="--resume to continue it or --overwrite"):
        plan(_config(gpt_folder, sentences, out))  # an earlier chain is there: neither flag, no start
    assert [action for _, action in plan(_config(gpt_folder, sentences, out, resume=True))] == ["done", "done"]
    again = fit(_config(gpt_folder, sentences, out, resume=True))  # nothing left to do: both skipped
    assert again["steps"] == 6 and again["stages"][0]["final_loss"] == summary["stages"][0]["final_loss"]
    assert [action for _, action in plan(_config(gpt_folder, sentences, out, overwrite=True))] == ["start", "start"]


class _CtrlCAt(Callback):
    """Sends this process SIGINT after step ``step`` of ``method``: the trainer checkpoints and stops."""

    def __init__(self, method: str, step: int):
        self.method, self.step = method, step

    def on_step_end(self, state):
        if state.config.method == self.method and state.step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_an_interrupted_chain_resumes_in_its_stage(tmp_path, gpt_folder, sentences):
    from decone.train.trainer import Interrupted

    out = tmp_path / "out"
    with pytest.raises(Interrupted):
        fit(_config(gpt_folder, sentences, out, max_steps=4), callbacks=[_CtrlCAt("llm2vec-simcse", 2)])
    steps = plan(_config(gpt_folder, sentences, out, max_steps=4, resume=True))
    assert [action for _, action in steps] == ["done", "resume"]
    summary = fit(_config(gpt_folder, sentences, out, max_steps=4, resume=True))
    assert [s["steps"] for s in summary["stages"]] == [4, 4]
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log if "loss" in row][-1] == 4
    assert torch.isfinite(torch.tensor(summary["final_loss"]))


def test_resume_without_stages_is_a_clear_error(tmp_path, gpt_folder, sentences):
    with pytest.raises(ConfigError, match="no stages to resume"):
        plan(_config(gpt_folder, sentences, tmp_path / "none", resume=True))


def test_a_stage_that_retrains_restarts_every_later_stage(tmp_path):
    """A stale checkpoint of stage 2 (from a run whose stage 1 is being redone) must not be resumed on the new
    stage-1 output; and only the last stage may be saved as an adapter (each earlier one is the next one's base)."""
    out = tmp_path / "out"
    work = stages_folder(out)
    (work / "1-mntp" / "checkpoint").mkdir(parents=True)
    (work / "1-mntp" / "checkpoint" / "trainer_state.json").write_text("{}")  # stage 1 was interrupted
    (out / "checkpoint").mkdir(parents=True)
    (out / "checkpoint" / "trainer_state.json").write_text("{}")  # a stale stage-2 checkpoint of an older run
    cfg = TrainConfig(method="llm2vec", model="m", output=str(out), resume=True, lora_save="adapter")
    steps = plan(cfg)
    assert [action for _, action in steps] == ["resume", "start"]
    assert [stage.lora_save for stage, _ in steps] == ["merged", "adapter"]
    assert steps[1][0].overwrite and not steps[1][0].resume
