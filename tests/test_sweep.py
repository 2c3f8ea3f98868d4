import json
from pathlib import Path

import pytest

from decone.errors import ConfigError
from decone.sweep import parse_grid, sweep
from tests.test_train import SENTENCES


def test_parse_grid_casts_by_field_type():
    grid = parse_grid(["temperature=0.01,0.05", "batch_size=16,64", "pooling=cls,mean"])
    assert grid == {"temperature": [0.01, 0.05], "batch_size": [16, 64], "pooling": ["cls", "mean"]}
    with pytest.raises(ConfigError, match="not a training setting"):
        parse_grid(["colour=red"])
    with pytest.raises(ConfigError, match="must be float"):
        parse_grid(["temperature=hot"])
    with pytest.raises(ConfigError, match="use --seeds"):
        parse_grid(["seed=1,2"])


def test_a_setting_both_fixed_and_swept_is_refused(tiny_model_dir, tmp_path):
    data, _ = _sentences_and_dev(tmp_path)
    with pytest.raises(ConfigError, match="temperature: both a fixed setting and a --grid axis"):
        sweep("simcse", str(tiny_model_dir), str(data), {"temperature": [0.05, 0.1]}, tmp_path / "sw",
              base={"temperature": 0.05, "max_steps": 1})
    assert not (tmp_path / "sw").exists()


def _sentences_and_dev(folder):
    """Training sentences and (s1, s2, score) probe pairs made of them."""
    data = folder / "s.txt"
    data.write_text("\n".join(SENTENCES) + "\n")
    dev = folder / "dev.tsv"
    dev.write_text("sentence1\tsentence2\tscore\n" + "".join(
        f"{a}\t{b}\t{(i % 6) * 1.0}\n" for i, (a, b) in enumerate(zip(SENTENCES, SENTENCES[2:]))))
    return data, dev


def test_sweep_runs_the_product_and_resumes(tiny_model_dir, tmp_path):
    data, dev = _sentences_and_dev(tmp_path)
    grid = {"temperature": [0.05, 0.5], "pooling": ["mean", "cls"]}
    base = {"max_steps": 2, "batch_size": 4, "max_length": 16, "bf16": False, "eval_data": str(dev)}
    rows = sweep("simcse", str(tiny_model_dir), str(data), grid, tmp_path / "sw", base=dict(base))
    assert len(rows) == 4 and {(r["temperature"], r["pooling"]) for r in rows} == {(0.05, "mean"), (0.05, "cls"), (0.5, "mean"), (0.5, "cls")}
    assert all(-100 <= r["probe_dev_spearman"] <= 100 and -1 <= r["probe_avg_cosine"] <= 1 for r in rows)
    table = [line for line in (tmp_path / "sw" / "sweep.md").read_text().splitlines() if line.startswith("| 0.")]
    assert len(table) == 4 and not any("±" in line for line in table)  # one seed: no spread printed
    for name in ("sweep.md", "sweep_temperature.png", "sweep_pooling.png", "sweep_sts_vs_anisotropy.png"):
        assert (tmp_path / "sw" / name).exists()
    # resume: nothing left to do, rows unchanged
    again = sweep("simcse", str(tiny_model_dir), str(data), grid, tmp_path / "sw", base=dict(base))
    assert len(again) == 4
    assert len((tmp_path / "sw" / "sweep.jsonl").read_text().splitlines()) == 4
    assert not (tmp_path / "sw" / "runs").exists() or not any((tmp_path / "sw" / "runs").iterdir())
    # the folder holds runs of these fixed settings only: another lr, model or data would mix rows into one table
    for change, match in ((dict(base=dict(base, lr=1e-3)), "holds a sweep with base"),
                          (dict(data=str(dev)), "holds a sweep with data"),
                          (dict(grid={"temperature": [0.05]}), "holds a sweep with axes")):
        args = dict(method="simcse", model=str(tiny_model_dir), data=str(data), grid=grid, output=tmp_path / "sw",
                    base=dict(base))
        with pytest.raises(ConfigError, match=match):
            sweep(**{**args, **change})
    assert len((tmp_path / "sw" / "sweep.jsonl").read_text().splitlines()) == 4
    # a grid axis may gain values: only the new points run
    more = sweep("simcse", str(tiny_model_dir), str(data), {**grid, "pooling": ["mean", "cls", "first_last_avg"]},
                 tmp_path / "sw", base=dict(base))
    assert len(more) == 6 and sum(r["pooling"] == "first_last_avg" for r in more) == 2


def test_a_sweep_whose_first_run_failed_can_be_rerun_with_other_settings(tiny_model_dir, tmp_path, monkeypatch):
    """The fixed settings are kept once a run has finished: a sweep that failed before that (bad data, a crash) may
    be corrected and rerun into the same folder; a folder the failed sweep made itself is removed, not left empty."""
    import decone.train as train

    data, dev = _sentences_and_dev(tmp_path)
    base = {"max_steps": 1, "batch_size": 4, "max_length": 16, "bf16": False, "eval_data": str(dev)}

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash in the first run")

    real_fit = train.fit
    monkeypatch.setattr(train, "fit", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        sweep("simcse", str(tiny_model_dir), str(data), {"temperature": [0.05]}, tmp_path / "sw", base=dict(base))
    assert not (tmp_path / "sw").exists()  # the folder it made is gone with its failed first run
    with pytest.raises(RuntimeError, match="simulated crash"):  # and the folders above it that it made too
        sweep("simcse", str(tiny_model_dir), str(data), {"temperature": [0.05]}, tmp_path / "new" / "sw", base=dict(base))
    assert not (tmp_path / "new").exists()

    def crash_after_a_checkpoint(cfg, *args, **kwargs):  # as an interrupted run: its checkpoint stays to resume from
        (Path(cfg.output) / "checkpoint").mkdir(parents=True)
        (Path(cfg.output) / "checkpoint" / "model.safetensors").write_bytes(b"x")
        raise RuntimeError("simulated crash after a checkpoint")

    monkeypatch.setattr(train, "fit", crash_after_a_checkpoint)
    with pytest.raises(RuntimeError, match="after a checkpoint"):
        sweep("simcse", str(tiny_model_dir), str(data), {"temperature": [0.05]}, tmp_path / "kept", base=dict(base))
    assert list((tmp_path / "kept").rglob("model.safetensors"))
    monkeypatch.setattr(train, "fit", crash)
    (tmp_path / "sw").mkdir()  # a folder the user made is kept
    with pytest.raises(RuntimeError, match="simulated crash"):
        sweep("simcse", str(tiny_model_dir), str(data), {"temperature": [0.05]}, tmp_path / "sw", base=dict(base))
    assert (tmp_path / "sw").is_dir() and not (tmp_path / "sw" / "sweep_settings.json").exists()
    monkeypatch.setattr(train, "fit", real_fit)
    rows = sweep("simcse", str(tiny_model_dir), str(data), {"temperature": [0.05]}, tmp_path / "sw",
                 base=dict(base, lr=1e-4))
    assert len(rows) == 1 and (tmp_path / "sw" / "sweep_settings.json").exists()


def test_every_grid_point_is_checked_before_the_first_run(tiny_model_dir, tmp_path):
    data, _ = _sentences_and_dev(tmp_path)
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        sweep("simcse", str(tiny_model_dir), str(data), {"temperature": [0.05, 0.0]}, tmp_path / "sw",
              base={"max_steps": 1, "batch_size": 4})
    assert not (tmp_path / "sw").exists()


def test_sweep_cli_with_seed_and_set(tiny_model_dir, tmp_path):
    """The CLI always passes --seed in the fixed settings: each run's seed must be offset from it, not clash."""
    from tests.test_reliability import run_cli

    data, dev = _sentences_and_dev(tmp_path)
    proc = run_cli("sweep", "simcse", "--model", str(tiny_model_dir), "--data", str(data), "--grid",
                   "temperature=0.05,0.5", "--max-steps", "1", "--seeds", "2", "--seed", "7", "--set", "lr=0.0001",
                   "--set", "batch_size=4", "--set", "max_length=16", "--no-bf16", "--eval-data", str(dev),
                   "--probe-pairs", "8", "--output", "sw", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in (tmp_path / "sw" / "sweep.jsonl").read_text().splitlines()]
    assert sorted((r["temperature"], r["seed"]) for r in rows) == [(0.05, 0), (0.05, 1), (0.5, 0), (0.5, 1)]
    table = [line for line in (tmp_path / "sw" / "sweep.md").read_text().splitlines() if line.startswith("| 0.")]
    assert len(table) == 2 and all(line.count("±") == 5 for line in table)  # mean ± std over the 2 seeds


def test_batch_size_axis_with_equal_sentences_seen(tiny_model_dir, tmp_path):
    """--sentences: each point trains sentences // batch steps; the batch above mini_batch_size goes through
    GradCache (exact), so a batch-size ablation compares the same data at every batch size."""
    data, dev = _sentences_and_dev(tmp_path)
    base = {"max_length": 16, "bf16": False, "eval_data": str(dev), "mini_batch_size": 4}
    rows = sweep("simcse", str(tiny_model_dir), str(data), {"batch_size": [4, 8, 16]}, tmp_path / "sw",
                 base=dict(base), sentences=32)
    assert {r["batch_size"]: r["steps"] for r in rows} == {4: 8, 8: 4, 16: 2}
    assert (tmp_path / "sw" / "sweep_batch_size.png").exists()
    with pytest.raises(ConfigError, match="--sentences"):
        sweep("simcse", str(tiny_model_dir), str(data), {"batch_size": [4]}, tmp_path / "sw2",
              base={**base, "max_steps": 3}, sentences=32)


def test_dynamics_probes_each_run_while_it_trains_and_plots_every_point(tiny_model_dir, tmp_path):
    """--dynamics N: each run is probed at step 0, every max_steps // N steps and at its last step; the row keeps
    (step, examples seen, metrics) and sweep_dynamics.png is drawn; without a step budget it is refused up front."""
    data, dev = _sentences_and_dev(tmp_path)
    base = {"max_length": 16, "bf16": False, "eval_data": str(dev)}
    rows = sweep("simcse", str(tiny_model_dir), str(data), {"batch_size": [4, 8]}, tmp_path / "sw", base=dict(base),
                 sentences=32, dynamics=2)
    by = {r["batch_size"]: r for r in rows}
    assert [d["step"] for d in by[4]["dynamics"]] == [0, 4, 8] and [d["step"] for d in by[8]["dynamics"]] == [0, 2, 4]
    assert [d["examples"] for d in by[8]["dynamics"]] == [0, 16, 32]
    first, last = by[4]["dynamics"][0], by[4]["dynamics"][-1]
    assert {"probe_dev_spearman", "probe_avg_cosine"} <= set(first)
    assert last["probe_avg_cosine"] == pytest.approx(by[4]["probe_avg_cosine"], abs=1e-4)  # the last step's model
    assert any(first[k] != last[k] for k in first if k.startswith("probe_"))  # the untrained model, not the last
    assert (tmp_path / "sw" / "sweep_dynamics.png").exists()
    assert json.loads((tmp_path / "sw" / "sweep.jsonl").read_text().splitlines()[0])["dynamics"]
    with pytest.raises(ConfigError, match="--dynamics"):
        sweep("simcse", str(tiny_model_dir), str(data), {"batch_size": [4]}, tmp_path / "sw2", base=dict(base),
              dynamics=2)
    with pytest.raises(ConfigError, match="--dynamics must be >= 0"):
        sweep("simcse", str(tiny_model_dir), str(data), {"batch_size": [4]}, tmp_path / "sw3", base=dict(base),
              sentences=32, dynamics=-1)
