"""benchmarks/results.py's main table over seeds and benchmarks/full_budget.py: per-seed records become mean ± std rows
with the project's seed-spread verdicts; the full-budget run keeps its encoder at the asked steps and the last."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests._bench import BENCH, bench_module


_module = bench_module


def _rec(label: str, seed, sts_avg: float, cos: float = 0.1, wall: float | None = 10.0) -> dict:
    rec = {"label": label, "seed": seed, "sts": {"STS-B": sts_avg + 1, "SICK-R": sts_avg - 1}, "sts_avg": sts_avg,
           "words_avg": 5.0, "avg_cosine": cos, "isoscore": 0.1, "alignment": 0.2, "uniformity": -2.0,
           "machine": "test CPU", "bf16": False}
    if wall is not None:
        rec["train"] = {"wall_s": wall, "sentences_per_s": 100.0, "steps": 4}
    return rec


def test_aggregate_is_the_mean_and_sample_std_over_seeds_and_pm_prints_it_only_with_seeds():
    r = _module("results")
    row = r.aggregate("x", [_rec("x", 42, 40.0, wall=10), _rec("x", 43, 42.0, wall=20), _rec("x", 44, 44.0, wall=30)])
    assert row["sts_avg"] == pytest.approx(42.0) and row["sts_avg_std"] == pytest.approx(2.0)
    assert row["sts"] == {"STS-B": pytest.approx(43.0), "SICK-R": pytest.approx(41.0)}
    assert row["train"]["wall_s"] == pytest.approx(20.0) and row["per_seed"] == {42: 40.0, 43: 42.0, 44: 44.0}
    assert r.pm(row, "sts_avg") == "42.00 ± 2.00"
    one = r.aggregate("raw", [_rec("raw", None, 40.0, wall=None)])
    assert r.pm(one, "sts_avg") == "40.00" and "train" not in one


def _rows(r, simcse: list[float], peer: list[float]) -> list[dict]:
    seeds = [42, 43, 44]
    return [r.aggregate("raw-mini mean", [_rec("raw-mini mean", None, 40.0, wall=None)]),
            r.aggregate("raw-mini + decone simcse", [_rec("s", s, v) for s, v in zip(seeds, simcse)]),
            r.aggregate("raw-mini + sentence-transformers MNRL [s, s] (peer)",
                        [_rec("p", s, v, wall=20.0) for s, v in zip(seeds, peer)])]


def test_main_table_targets_state_the_seed_verdict_of_each_comparison():
    r = _module("results")
    lines = r.main_markdown(_rows(r, [46.0, 46.5, 47.0], [44.0, 44.2, 44.4]), r.budget(False), quick=False)
    simcse_row = next(line for line in lines if line.startswith("| raw-mini + decone simcse |"))
    assert "**46.50 ± 0.50**" in simcse_row
    target = next(line for line in lines if line.startswith("* decone simcse vs the peer"))
    assert "(+2.30, wins 3/3 seeds, **outside the seed spread**; target ≥ +1.0: **met**)" in target
    lines = r.main_markdown(_rows(r, [46.0, 44.0, 47.0], [44.0, 45.0, 44.4]), r.budget(False), quick=False)
    target = next(line for line in lines if line.startswith("* decone simcse vs the peer"))
    assert "wins 2/3 seeds, **inside the seed spread**" in target


def _write_main_records(r, out, shared, rows: dict) -> None:
    """Main-table records as main_table writes them: {row name: [(seed, record value), ...]}."""
    records = r.Records("main_table", out, shared, quick=False)
    for name, recs in rows.items():
        for seed, value in recs:
            records.get(name if seed is None else f"{name}-seed{seed}", {"row": name, "seed": seed}, lambda v=value: v)


def test_readme_headline_is_rebuilt_from_the_main_tables_records(tmp_path, monkeypatch):
    """``--only readme`` reads the committed records, not RESULTS.md's text: the seed count, the paired seed verdicts
    and the load warning survive (reading the table back lost them: "2 seeds" for 3)."""
    r = _module("results")
    monkeypatch.setattr(r.C, "machine", lambda: {"cpu": "Test CPU", "logical_cpus": 2})  # records name 2 cores
    out, shared = tmp_path / "repo", tmp_path / "shared"
    simcse = [(s, {**_rec("raw-mini + decone simcse", s, v), "train": {"wall_s": 100.0, "sentences_per_s": 10.0,
                                                                         "steps": 4, "load": 3.6}})
              for s, v in ((42, 46.0), (43, 46.5), (44, 47.0))]
    _write_main_records(r, out, shared, {
        "raw-mean": [(None, _rec("raw-mini mean", None, 40.0, wall=None))],
        "simcse": simcse,
        "simcse-nohead": [(s, _rec("raw-mini + decone simcse, no MLP head in training", s, v, wall=110.0))
                          for s, v in ((42, 48.0), (43, 48.5), (44, 49.0))],
        "peer": [(s, _rec("raw-mini + sentence-transformers MNRL [s, s] (peer)", s, v, wall=200.0))
                 for s, v in ((42, 45.0), (43, 45.2), (44, 45.4))]})
    r.Records("main_table", out, shared, quick=False).get(  # built under another budget: left out
        "mirror-seed42", {"row": "mirror", "seed": 42, "budget": {"simcse_steps": 1}},
        lambda: _rec("raw-mini + decone mirror", 42, 99.0))
    rows = r.rows_from_records(out, shared, r.budget(False))
    assert [x["label"] for x in rows] == ["raw-mini mean", "raw-mini + decone simcse",
                                          "raw-mini + decone simcse, no MLP head in training",
                                          "raw-mini + sentence-transformers MNRL [s, s] (peer)"]
    assert rows[1]["seeds"] == [42, 43, 44] and rows[1]["sts_avg"] == pytest.approx(46.5)
    lines = r.headline_markdown(rows, r.budget(False))
    assert lines[0].startswith("| decone-raw-mini | STS avg (mean ± std, 3 seeds) |")
    assert "| raw, mean pooling | 40.00 | 0.100 | — |" in lines
    text = lines[-1]
    assert "+1.30 STS points with the head (beyond the seed spread)" in text
    assert "load average up to 3.6 on 2 cores" in text  # the warning, on the cores the records name
    assert r.rows_from_records(tmp_path / "empty", shared, r.budget(False)) == []


def test_keep_at_saves_the_encoder_at_the_asked_steps_and_the_last_and_never_overwrites(tiny_model_dir, tmp_path):
    from decone.encoder import Encoder
    from decone.train import TrainConfig, fit

    fb = _module("full_budget")
    data = tmp_path / "s.txt"
    data.write_text("\n".join(f"the cat sat on mat number {i} and the dog ran" for i in range(24)) + "\n")
    kept = tmp_path / "kept"
    fit(TrainConfig(model=str(tiny_model_dir), data=str(data), output=str(tmp_path / "run"), max_steps=5, batch_size=4,
                    lr=1e-3, max_length=16, bf16=False, seed=7, adaptive_threads=False, pooling="mean"),
        callbacks=[fb.KeepAt(kept, [2])])
    assert sorted(p.name for p in kept.iterdir() if p.name.isdigit()) == ["2", "5"]
    final = Encoder.load(tmp_path / "run").encode(["a cat"])
    assert Encoder.load(kept / "5").encode(["a cat"]) == pytest.approx(final, abs=1e-6)
    assert Encoder.load(kept / "2").encode(["a cat"]) != pytest.approx(final, abs=1e-6)
    before = (kept / "2" / "decone.json").stat().st_mtime_ns

    class State:  # a resumed run passing step 2 again leaves the kept encoder alone
        step, max_steps, encoder = 2, 5, None

    fb.KeepAt(kept, [2]).on_step_end(State())
    assert (kept / "2" / "decone.json").stat().st_mtime_ns == before


def _fb_record(run: str, batch: int, sts: list[float], best: float, dev: float) -> dict:
    marks = [1_600]
    points = [{"step": m // batch, "sentences": m, "sts_avg": s} for m, s in zip(marks, sts)]
    points.append({"step": 16, "sentences": 3_200, "sts_avg": sts[-1]})
    return {"run": run, "batch": batch, "best_step": 10, "best_dev": dev, "wall_s": 120.0, "points": points, "sentences": 3_200,
            "best": {"sts_avg": best, "words_avg": 5.0, "avg_cosine": 0.1, "isoscore": 0.1}}


def test_full_budget_section_says_whether_training_beat_whitening():
    fb = _module("full_budget")
    b = fb.budget(quick=True)
    records = {"simcse": _fb_record("simcse", 64, [50.0, 55.0], 55.5, 70.0),
               "mirror": _fb_record("mirror", 200, [45.0, 44.0], 46.0, 65.0)}
    base = {"raw": {"sts_avg": 42.0}, "whitened": {"sts_avg": 58.0}}
    white = {"run": "simcse", "sts_avg": 60.0, "avg_cosine": 0.004}
    text = "\n".join(fb.markdown(records, white, base, b, "results/full_budget.png"))
    assert "| simcse (batch 64) | 50.00 | **55.00** | 70.00 (640) | 55.50 |" in text
    assert "no contrastive run beats training-free whitening (best: simcse 55.50 vs 58.00)" in text
    assert "Whitening on top of the best run by STS-B dev (simcse): 60.00 (+4.50" in text
    assert ("simcse's best kept point is the epoch's end (55.00), but its STS-B dev peaked earlier, after 640 sentences "
            "(STS avg 55.50 there)") in text and "mirror peaks at 45.00 after 1,600" in text
    records["simcse"]["best"]["sts_avg"] = 59.0
    assert "With the whole epoch, simcse beats training-free whitening" in "\n".join(
        fb.markdown(records, white, base, b, "x.png"))
    records["mirror"]["points"][0]["sentences"] = 1_400  # a point off the marks is a bug in the run, not a table
    with pytest.raises(AssertionError):
        fb.markdown(records, white, base, b, "x.png")


def test_committed_records_are_portable_and_in_the_one_records_layout():
    """Every committed record (every piece's folder under results/) holds no machine paths (a fresh checkout reads
    them) and has the layout of the one record mechanism, ``_common.Records``."""
    folders = [p for p in (BENCH.parent / "results").iterdir() if p.is_dir() and not p.name.startswith("work")]
    for path in (f for folder in folders for f in folder.glob("*.json")):
        if path.parent.name == "setfit":  # runs.jsonl's summary, not a record
            continue
        text = path.read_text()
        assert not re.search(r'"/(work|home|tmp|root|usr|opt)/', text), path  # an absolute path in a string
        assert set(json.loads(text)) == {"key", "value", "build_s", "machine", "bf16"}, path


def test_a_run_stopped_before_the_epochs_end_shows_the_marks_it_reached_and_where_it_stopped():
    fb = _module("full_budget")
    b = {**fb.budget(quick=True), "marks": (1_600, 3_200)}
    done = _fb_record("simcse", 64, [50.0, 55.0], 55.5, 70.0)
    done["points"] = [{"step": 25, "sentences": 1_600, "sts_avg": 50.0}, {"step": 50, "sentences": 3_200, "sts_avg": 52.0},
                      {"step": 60, "sentences": 3_840, "sts_avg": 55.0}]
    stopped = {**_fb_record("mirror", 200, [45.0], 46.0, 65.0), "complete": False, "stopped_at": 2_400, "sentences": 3_840}
    stopped["points"] = stopped["points"][:1]
    base = {"raw": {"sts_avg": 42.0}, "whitened": {"sts_avg": 58.0}}
    text = "\n".join(fb.markdown({"simcse": done, "mirror": stopped}, {"run": "simcse", "sts_avg": 60.0, "avg_cosine": 0.0},
                                 base, b, "x.png"))
    assert "| mirror (batch 200) | **45.00** | — | stopped at 2,400 | 65.00 (2,000) | 46.00 |" in text
    assert "mirror peaks at 45.00 after 1,600 sentences and was stopped at 2,400 of 3,840 sentences" in text


def test_records_reuse_a_value_while_its_settings_match_and_store_no_machine_paths(tmp_path):
    r = _module("results")
    shared, out = tmp_path / "shared", tmp_path / "repo"
    records = r.Records("piece", out, shared, quick=False)
    calls = []

    def build():
        calls.append(1)
        return {"path": str(out / "results/work/run"), "score": 1.5}

    key = {"model": str(shared / "models/raw"), "steps": 10}
    assert records.get("run a", key, build) == {"path": "./results/work/run", "score": 1.5}
    assert records.get("run a", key, build) == {"path": "./results/work/run", "score": 1.5} and len(calls) == 1
    stored = (out / "results/piece/run_a.json").read_text()
    assert str(tmp_path) not in stored and json.loads(stored)["key"] == {"model": "../shared/models/raw", "steps": 10}
    assert "build_s" in json.loads(stored) and "machine" in json.loads(stored)
    records.get("run a", {**key, "steps": 20}, build)  # a changed setting rebuilds that record
    assert len(calls) == 2
    assert r.Records("piece", out, shared, quick=True).folder == out / "results/work-quick/piece"
    # reuse: a record whose key matches is still rebuilt where the predicate refuses it (a run recorded while stopped)
    stopped = records.record("run b", key, lambda: {"complete": False})
    assert stopped["value"] == {"complete": False} and stopped["key"] == {"model": "../shared/models/raw", "steps": 10}
    whole = records.record("run b", key, lambda: {"complete": True}, reuse=lambda rec: rec["value"]["complete"])
    assert whole["value"] == {"complete": True}
    assert records.record("run b", key, build, reuse=lambda rec: rec["value"]["complete"]) == whole
    assert [rec["value"] for rec in records.all()] == [{"path": "./results/work/run", "score": 1.5}, {"complete": True}]
    # a file of an older layout (no "value") under the same key is rebuilt, not read as a record
    records.path("run c").write_text(json.dumps({"key": {"model": "../shared/models/raw", "steps": 10}, "score": 1.0}))
    assert records.get("run c", key, lambda: {"score": 2.0}) == {"score": 2.0}


def test_a_row_with_fewer_seeds_than_the_budget_says_which_it_has():
    r = _module("results")
    rows = _rows(r, [46.0, 46.5, 47.0], [44.0, 44.2, 44.4])
    rows[2] = r.aggregate("raw-mini + sentence-transformers MNRL [s, s] (peer)", [_rec("p", 42, 44.0, wall=20.0)])
    lines = r.main_markdown(rows, r.budget(False), quick=False)
    assert any(line.startswith("| raw-mini + sentence-transformers MNRL [s, s] (peer) (seed 42 so far) |") for line in lines)
    assert any(line.startswith("| raw-mini + decone simcse | ") for line in lines)
    target = next(line for line in lines if line.startswith("* decone simcse vs the peer"))
    assert "one seed: no spread to judge" in target


def test_every_piece_can_be_rebuilt_alone_between_its_markers(tmp_path):
    """A whole invocation wraps every piece's section in its markers, so ``--only PIECE`` (any piece) can replace
    it alone; the committed RESULTS.md has the markers of every piece, in the pieces' order."""
    r = _module("results")
    names = [name for name, *_ in r.PIECES]
    assert len(set(names)) == len(names) and {"main", "batch-size", "full-budget", "setfit"} <= set(names)
    path = tmp_path / "RESULTS.md"
    r.write_markdown(path, [(name, [f"## {name}", f"body of {name}"]) for name in names], 60.0, 1, quick=True)
    assert r.splice(path, "sweep", ["## sweep", "rebuilt"])
    text = path.read_text()
    assert "rebuilt" in text and "body of sweep" not in text and "body of batch-size" in text and "body of setfit" in text
    committed = (BENCH.parent / "RESULTS.md").read_text()
    at = [committed.index(f"<!-- {name}:begin -->") for name in names]
    assert at == sorted(at), "RESULTS.md's sections are out of the pieces' order"
    assert all(f"<!-- {name}:end -->" in committed for name in names)


def test_a_whole_invocation_writes_every_section_and_only_rebuilds_one(tmp_path, monkeypatch):
    """results.py's orchestration with stand-in pieces: a whole invocation writes RESULTS.md with every piece's
    section between its markers and splices the README's tables; ``--only NAME`` then replaces that section alone;
    a section without markers is a one-line error, not a half-written file."""
    r = _module("results")
    built = []

    class Ctx:
        def __init__(self, quick, out):
            self.quick, self.out, self.b, self.shared = quick, out, {}, tmp_path / "shared"
            self.work, self.figs, self.target = out / "results/work", out / "results", out / "RESULTS.md"

    def piece(name, readme=False):
        def build(ctx):
            built.append(name)
            return [(ctx.target, name, [f"## {name}", f"{name} run {len(built)}"])] + (
                [(ctx.out / "README.md", name, [f"{name} table {len(built)}"])] if readme else [])
        return build

    monkeypatch.setattr(r, "Context", Ctx)
    monkeypatch.setattr(r, "PIECES", [("main", piece("main", readme=True), "main_table", "main table"),
                                      ("sweep", piece("sweep"), "sweep", "decone sweep")])
    out = tmp_path / "repo"
    out.mkdir()
    (out / "README.md").write_text("intro\n<!-- main:begin -->\nold\n<!-- main:end -->\n")
    monkeypatch.setattr(sys, "argv", ["results.py", "--output", str(out)])
    r.main()
    text = (out / "RESULTS.md").read_text()
    assert built == ["main", "sweep"] and "main run 1" in text and "sweep run 2" in text
    assert "<!-- sweep:begin -->" in text and "<!-- costs:begin -->" in text and "Generated by" in text
    assert text.endswith("<!-- costs:end -->\n")  # no blank line at the end, so --only's splice changes nothing else
    assert "main table 1" in (out / "README.md").read_text()
    monkeypatch.setattr(sys, "argv", ["results.py", "--output", str(out), "--only", "sweep"])
    r.main()
    text = (out / "RESULTS.md").read_text()
    assert "sweep run 3" in text and "sweep run 2" not in text and "main run 1" in text
    assert "Last updated by `python benchmarks/results.py --only sweep`" in text
    (out / "RESULTS.md").write_text("# no markers\n")
    with pytest.raises(SystemExit, match="no <!-- sweep:begin -->"):
        r.main()


def test_the_batch_size_ablation_is_one_decone_sweep_with_equal_sentences_and_dynamics(tmp_path):
    """The batch-size piece runs `decone sweep` (the CLI a user would run): a batch_size axis, --sentences (equal
    data), --dynamics, GradCache above 128; its table has one row per batch size from the sweep's rows."""
    r = _module("results")
    b = r.budget(quick=False)
    args = r.batch_args(b, "RAW", tmp_path / "c.txt", tmp_path / "out")
    assert args[:2] == ["sweep", "simcse"] and "batch_size=32,64,128,256,512" in args
    assert args[args.index("--sentences") + 1] == str(b["ablation_sentences"]) and "--dynamics" in args
    assert "mini_batch_size=128" in args and "--max-steps" not in args
    rows = [{"batch_size": n, "steps": 6400 // n, "probe_dev_spearman": 50.0 + i, "probe_avg_cosine": 0.5,
             "probe_isoscore": 0.1, "probe_alignment": 0.3, "probe_uniformity": -2.0, "train_seconds": 60.0}
            for i, n in enumerate(b["batch_ablation"])]
    text = "\n".join(r.batch_markdown(rows, b, "results", ["sweep", "simcse"]))
    assert "`decone sweep simcse`" in text and "| 512 | 12 | 54.00 |" in text and text.count("\n| ") == 6


def test_the_cost_table_sums_records_and_names_a_partly_built_piece(tmp_path):
    r = _module("results")
    h2h = tmp_path / "results" / "head_to_head"
    h2h.mkdir(parents=True)
    for i, build_s in enumerate([60.0, 120.0]):
        (h2h / f"row{i}.json").write_text(json.dumps({"key": {}, "value": {}, "build_s": build_s,
                                                       "machine": "test CPU", "bf16": False}))
    lines = r.cost_markdown(tmp_path)
    row = next(line for line in lines if line.startswith("| head to head"))
    expected = r.EXPECTED_RECORDS["head_to_head"](r.budget(False))
    assert f"| 2 | 3.0 min | test CPU (native bf16: False) (partial: 2 of {expected};" in row
    assert "`--only head-to-head`" in row
    main = next(line for line in lines if line.startswith("| main table"))
    assert "| 0 | — | not yet recorded" in main and "`--only main`" in main


def test_seeds_builds_a_pieces_records_of_those_seeds_only_and_leaves_results_md_alone(tmp_path, monkeypatch):
    """``--only head-to-head --seeds 43`` trains the seed-43 rows of both tables (raw-mini and MiniLM) and writes no
    section; a seed outside the budget and --seeds with another piece are usage errors."""
    r = _module("results")
    asked = []

    class Ctx:
        def __init__(self, quick, out):
            self.quick, self.out, self.b = quick, out, r.budget(False)
            self.work, self.figs, self.target = out / "results/work", out / "results", out / "RESULTS.md"
            self.raw = self.minilm = self.corpus = self.probe = self.eval_data = None

        def records(self, piece):
            return piece

    monkeypatch.setattr(r, "Context", Ctx)
    monkeypatch.setattr(r, "head_to_head", lambda work, b, *rest: asked.append((b["h2h_seeds"], b["h2h_minilm_seeds"],
                                                                                rest[-1])))
    out = tmp_path / "repo"
    out.mkdir()
    monkeypatch.setattr(sys, "argv", ["results.py", "--output", str(out), "--only", "head-to-head", "--seeds", "43"])
    r.main()
    assert asked == [([43], [43], "head_to_head")] and not (out / "RESULTS.md").exists()
    monkeypatch.setattr(sys, "argv", ["results.py", "--output", str(out), "--only", "head-to-head", "--seeds", "44"])
    r.main()
    assert asked[-1] == ([44], [], "head_to_head")  # MiniLM's table has seeds 42 and 43 only
    for argv in (["--only", "head-to-head", "--seeds", "7"], ["--only", "sweep", "--seeds", "42"]):
        monkeypatch.setattr(sys, "argv", ["results.py", "--output", str(out), *argv])
        with pytest.raises(SystemExit):
            r.main()


def _build_record_in_a_process(out: str, shared: str, log: str) -> None:
    import time as _time

    r = _module("_common")

    def build():
        with open(log, "a") as f:
            f.write("built\n")
        _time.sleep(3.0)  # long enough for the other process to arrive while this one builds
        return {"score": 1.0}

    r.Records("piece", Path(out), Path(shared), quick=False).get("run", {"steps": 1}, build)


def test_two_invocations_wanting_the_same_record_build_it_once(tmp_path):
    """Side-by-side results.py invocations: the second waits on the record's lock, then reuses the first's record."""
    import multiprocessing

    out, shared, log = tmp_path / "repo", tmp_path / "shared", tmp_path / "builds.log"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_build_record_in_a_process, args=(str(out), str(shared), str(log))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert log.read_text() == "built\n"
    assert json.loads((out / "results/piece/run.json").read_text())["value"] == {"score": 1.0}
    assert not list((out / "results/piece").glob("*.tmp"))


def test_the_load_warning_counts_the_cores_of_the_machines_that_built_the_rows(monkeypatch):
    """RESULTS.md regenerated on a bigger machine still warns about rows trained under load on a 2-core one."""
    r = _module("results")
    monkeypatch.setattr(r.os, "cpu_count", lambda: 64)
    rows = [{"load": 3.4, "machines": ["Some CPU, 2 logical CPUs, native bf16: False"]}, {"label": "untrained"}]
    assert "load average up to 3.4 on 2 cores" in r.loaded(rows)
    assert r.loaded([{"load": 2.3, "machines": ["Some CPU, 2 logical CPUs, native bf16: False"]}]) == ""
    assert r.loaded([{"label": "untrained"}]) == ""


def test_a_method_whose_revision_rose_rebuilds_its_records_and_others_keep_their_keys(tmp_path, monkeypatch):
    """A record's key names its method's revision above 1 (at any depth, as the main table's recipe holds it), so a
    changed loss or default rebuilds the records of that method only; the records of revision-1 methods keep the keys
    they were committed with."""
    from decone.methods import METHODS

    c = _module("_common")
    assert METHODS["mirror"].revision >= 2 and METHODS["simcse"].revision == 1
    key = {"row": "mirror", "recipe": {"method": "mirror", "max_steps": "50"}, "seed": 42}
    assert c.with_method_revision(key) == {**key, "recipe": {**key["recipe"], "method_revision": METHODS["mirror"].revision}}
    plain = {"method": "simcse", "max_steps": 10, "nested": [{"method": "simcse"}]}
    assert c.with_method_revision(plain) == plain  # revision 1: nothing added
    records = c.Records("piece", tmp_path / "repo", tmp_path / "shared", quick=False)
    calls = []
    build = lambda: calls.append(1) or {"sts": len(calls)}  # noqa: E731
    assert records.get("m", {"method": "mirror", "steps": 1}, build) == {"sts": 1}
    assert records.get("m", {"method": "mirror", "steps": 1}, build) == {"sts": 1}  # reused
    import dataclasses

    monkeypatch.setitem(METHODS, "mirror", dataclasses.replace(METHODS["mirror"], revision=METHODS["mirror"].revision + 1))
    assert records.get("m", {"method": "mirror", "steps": 1}, build) == {"sts": 2} and len(calls) == 2  # rebuilt
    assert records.get("s", {"method": "simcse"}, build) and json.loads(records.path("s").read_text())["key"] == {"method": "simcse"}
