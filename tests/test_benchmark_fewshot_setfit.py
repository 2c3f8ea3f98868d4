"""benchmarks/fewshot_vs_setfit.py without SetFit: arguments, the paired summary and its verdicts, the plot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests._bench import bench_module

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "fewshot_vs_setfit.py"


def _module():
    return bench_module("fewshot_vs_setfit")


@pytest.mark.parametrize("args,message", [
    (["--systems", "setfit,bert"], "unknown bert"),
    (["--shots", "1"], "at least 2 per class"),
    (["--noise", "1.0"], "fractions in [0, 1)"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--seeds", "3", "--only-seeds", "2,3"], "--only-seeds: each in 0 .. 2"),
    (["--only-seeds", "a"], "expected comma-separated integers"),
])
def test_bad_arguments_are_usage_errors(args, message):
    proc = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def _rows(acc: dict) -> list[dict]:
    """acc: system -> accuracies by seed, one setting."""
    return [{"task": "SST-2", "shots": 8, "noise": 0.0, "seed": s, "system": system, "accuracy": a, "wall_s": 1.0 + s}
            for system, accs in acc.items() for s, a in enumerate(accs)]


def test_summary_pairs_by_seed_and_calls_verdicts_by_the_stated_rule(tmp_path):
    m = _module()
    rows = _rows({"setfit": [0.80, 0.82, 0.81], "ce": [0.70, 0.72, 0.71], "scl": [0.705, 0.715, 0.72],
                  "logreg": [0.90, 0.60, 0.81]})
    summary = {r["system"]: r for r in m.summarize(rows)}
    ce = summary["ce"]
    assert ce["n"] == 3 and ce["mean"] == pytest.approx(71.0) and ce["std"] == pytest.approx(1.0)
    assert ce["vs_setfit"]["mean"] == pytest.approx(-10.0) and ce["vs_setfit"]["wins"] == 0
    assert ce["vs_setfit"]["verdict"] == "worse"  # every seed lower, by more than either spread
    assert summary["scl"]["vs_ce"]["verdict"] == "inside"  # +0.5, -0.5, +1.0: seeds disagree
    assert summary["logreg"]["vs_setfit"]["verdict"] == "inside"  # signs disagree
    assert "vs_setfit" not in summary["setfit"] and "vs_ce" not in ce
    assert summary["setfit"]["wall_s"] == 2.0  # median over seeds
    words = "\n".join(m.plain_words(list(summary.values())))
    assert "decone CE against SetFit: better in 0, worse in 1, inside the seed spread in 0 of 1 settings" in words
    assert "SetFit 2.0 s, decone CE 2.0 s" in words  # the medians of wall_s 1, 2, 3
    assert m.C.seed_verdict([1.0], 0.0, 0.0) == "n/a"
    m.plot(list(summary.values()), tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 0
    table = m.markdown(list(summary.values()))
    assert len(table) == 2 + 4 and "-10.00 ± 0.00; 0/3; worse" in table[3]


def test_report_only_reads_finished_runs_with_the_same_settings(tmp_path):
    import json

    m = _module()
    a = m.parse_args(["--output", str(tmp_path), "--report-only"])
    mine = [{**r, "settings": m.settings(a)} for r in _rows({"setfit": [0.8, 0.9], "ce": [0.7, 0.6]})]
    other = [{**r, "settings": {**m.settings(a), "lr": 1.0}, "accuracy": 0.0} for r in _rows({"setfit": [0.1]})]
    (tmp_path / "runs.jsonl").write_text("\n".join(json.dumps(r) for r in mine + other) + "\n{torn")
    m.main(["--output", str(tmp_path), "--report-only"])
    text = (tmp_path / "summary.md").read_text()
    assert "4 runs" in text and "85.00 ± 7.07" in text and (tmp_path / "accuracy_vs_shots.png").exists()
    assert "Torch threads a run (wall times depend on them): 4 not recorded." in text
    assert "Machines that ran them: 4 not recorded" in text  # the report's own machine is not claimed for them
    assert m.machines_said([{"cpu": "X", "native_bf16": True}, {"cpu": "Y", "native_bf16": False},
                            {"cpu": "X", "native_bf16": True}, {}]) == (
        "Machines that ran them: 2 on X (native bf16: yes); 1 on Y (native bf16: no); 1 not recorded (runs from "
        "before machines were recorded: the commits that added them name their machine).")
    assert m.threads_said([{"threads": 1}, {"threads": 2}, {"threads": 1}, {}]) == (
        "Torch threads a run (wall times depend on them): 2 at 1 thread, 1 at 2 threads, 1 not recorded.")
    data = json.loads((tmp_path / "summary.json").read_text())
    assert [r["system"] for r in data["summary"]] == ["setfit", "ce"] and "4 runs" in " ".join(data["intro"])


def test_compact_table_has_one_row_per_setting_and_bolds_the_best():
    m = _module()
    rows = _rows({"setfit": [0.80, 0.82], "ce": [0.70, 0.72]})
    rows += [{**r, "noise": 0.4, "accuracy": r["accuracy"] - (0.3 if r["system"] == "setfit" else 0.0)}
             for r in _rows({"setfit": [0.80, 0.82], "ce": [0.70, 0.72]})]
    table = m.compact_markdown(m.summarize(rows))
    assert len(table) == 2 + 2
    assert table[2] == "| SST-2 | 8 | 0 | **81.00 ± 1.41** | 71.00 ± 1.41 | — | — |"
    assert table[3] == "| SST-2 | 8 | 0.4 | 51.00 ± 1.41 | **71.00 ± 1.41** | — | — |"
    # a setting still being built: the system on fewer seeds is shown with its count, not ranked, no spread of one
    partial = [r for r in rows if not (r["system"] == "setfit" and r["seed"] == 1)]
    table = m.compact_markdown(m.summarize(partial))
    assert table[2] == "| SST-2 | 8 | 0 | 80.00 (1 of 2 seeds) | **71.00 ± 1.41** | — | — |"
    detail = m.markdown(m.summarize(partial))
    assert "| SST-2 | 8 | 0 | SetFit | 1 | 80.00 |  | +10.00; 1/1; n/a |" in detail[2]


def _results_module():
    return bench_module("results")


def test_results_splice_replaces_only_between_markers_and_portable_drops_machine_paths(tmp_path):
    r = _results_module()
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- setfit:begin -->\nold table\n<!-- setfit:end -->\noutro\n")
    assert r.splice(readme, "setfit", ["| a |", "| b |"])
    assert readme.read_text() == "intro\n<!-- setfit:begin -->\n| a |\n| b |\n<!-- setfit:end -->\noutro\n"
    assert not r.splice(readme, "decoders", ["x"]) and "x" not in readme.read_text()
    shared, out = tmp_path / "shared", tmp_path / "repo"
    text = f"decone fewshot --model {shared}/models/raw --output {out}/results/work/fewshot"
    assert r.portable(text, shared, out) == "decone fewshot --model ../shared/models/raw --output ./results/work/fewshot"


def test_readme_headline_is_generated_from_the_main_table_rows(tmp_path):
    """headline_markdown picks the raw-mini rows, bolds the best of each column among trained rows and states the
    comparisons from the same numbers."""
    r = _results_module()

    def row(label, sts, cos, wall=None, words=5.0):
        return {"label": label, "sts_avg": sts, "words_avg": words, "avg_cosine": cos, "seeds": [42],
                **({"train": {"wall_s": wall}} if wall else {})}

    rows = [row("raw-mini mean", 40.0, 0.6), row("raw-mini + decone simcse", 46.0, 0.4, 100.0, 9.0),
            row("raw-mini + decone simcse, no MLP head in training", 48.0, 0.07, 110.0, 6.0),
            row("raw-mini + sentence-transformers MNRL [s, s] (peer)", 45.0, 0.08, 200.0, 8.0),
            row("raw-mini + decone mirror", 43.0, 0.1, 50.0, 7.0), row("raw-mini mean + whitening", 58.0, 0.004)]
    lines = r.headline_markdown(rows, r.budget(False))
    assert lines[2] == "| raw, mean pooling | 40.00 | 0.600 | — |"
    assert "| `simcse --head none`, same data and steps | **48.00** | **0.070** | 110 s |" in lines
    assert "| `mirror`, 50 steps x 200, Mirror-BERT 10k sentences | 43.00 | 0.100 | **50 s** |" in lines
    text = lines[-1]
    assert "+1.00 STS points with the head and +3.00 like for like" in text and "0.50x its wall time" in text
    assert "`mirror` gains 50% of SimCSE's gain" in text and "still beats every contrastive run above" in text


def test_coverage_names_the_settings_of_the_study_that_are_missing_or_partial():
    m = _module()
    grid = {"tasks": ("SST-2",), "shots": (8, 64), "noise": (0.0, 0.2), "seeds": 2}
    summary = [{"task": "SST-2", "shots": 8, "noise": 0.0, "system": s, "n": 2} for s in m.SYSTEMS]
    summary += [{"task": "SST-2", "shots": 8, "noise": 0.2, "system": s, "n": 1 if s == "setfit" else 2}
                for s in m.SYSTEMS]
    said = m.coverage(summary, grid)
    assert said.startswith("1 of the study's 4 settings")
    assert "; partial: SST-2 8-shot noise 0.2 (so far SetFit on 1 of 2 seeds); not yet run: " in said
    assert "not yet run: SST-2 64-shot noise 0, SST-2 64-shot noise 0.2." in said and "8-shot noise 0," not in said
    summary += [{**r, "shots": 64} for r in summary[:4]] + [{**r, "shots": 64, "noise": 0.2} for r in summary[:4]]
    summary[4]["n"] = 2
    assert m.coverage(summary, grid) == "Every setting of the study (4) has all 4 systems on 2 seeds."


def test_a_setfit_run_resumed_from_its_checkpoint_ends_where_the_uninterrupted_run_ends(tmp_path, tiny_model_dir):
    """A 64-shot TREC SetFit run is 7,680 steps: one stopped part way resumes from SetFit's newest checkpoint, and
    the resumed run's body equals the body of the run that was never stopped."""
    pytest.importorskip("setfit", reason="setfit is not installed (pip install --no-deps setfit evaluate)")
    import json

    import numpy as np

    from decone import Encoder

    m = _module()
    body = tmp_path / "body"
    Encoder.load(tiny_model_dir, pooling="mean", device="cpu").save(body)
    words = ["good movie", "great film", "happy day", "good song", "bad movie", "terrible film", "sad night",
             "bad day", "great book", "terrible song", "happy city", "sad news"]
    shots = {"texts": words, "labels": ["pos", "pos", "pos", "pos", "neg", "neg", "neg", "neg", "pos", "neg", "pos",
                                        "neg"]}
    whole, first = m.train_setfit(str(body), shots, 0, m.parse_args(["--setfit-save-steps", "1000"]), tmp_path / "w")
    steps = first["steps"]  # SetFit's oversampling: 84 pairs, 6 steps of 16
    assert steps == 6 and first["resumed_at_step"] is None and first["before_s"] == 0.0
    every2 = tmp_path / "every2"
    m.train_setfit(str(body), shots, 0, m.parse_args(["--setfit-save-steps", "2"]), every2)
    assert [c.name for c in every2.glob("checkpoint-*")] == ["checkpoint-6"]  # the newest kept, as SetFit does
    assert json.loads((every2 / "elapsed-6.json").read_text())["step"] == 6 and m.latest_checkpoint(every2)

    from transformers import TrainerCallback

    class StopAfter5(TrainerCallback):  # a run killed during step 5
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 5:
                raise KeyboardInterrupt

    partial, every4 = tmp_path / "partial", m.parse_args(["--setfit-save-steps", "4"])
    with pytest.raises(KeyboardInterrupt):
        m.train_setfit(str(body), shots, 0, every4, partial, callbacks=[StopAfter5()])
    assert m.latest_checkpoint(partial).name == "checkpoint-4"
    # the next call resumes at checkpoint-4 and trains steps 5 and 6
    resumed, second = m.train_setfit(str(body), shots, 0, every4, partial)
    assert second["resumed_at_step"] == 4 and second["steps"] == steps and second["before_s"] > 0
    assert second["train_s"] > second["before_s"] and second["save_s"] > 0  # saves timed apart from training
    probe = ["good film", "sad song", "the city"]
    np.testing.assert_allclose(resumed.model_body.encode(probe), whole.model_body.encode(probe), atol=1e-5)


def test_setfit_checkpoints_are_per_run_complete_and_locked(tmp_path, monkeypatch):
    """The checkpoint folder is the run's alone (settings, shots, output); a checkpoint counts only when its trainer
    state parses and its elapsed-time file is there; a run another invocation is training is skipped."""
    import json

    m = _module()
    a = m.parse_args(["--checkpoints", str(tmp_path / "ck")])
    key, shots = m.run_key("TREC", 64, 0.0, 0, "setfit"), {"indices": [1, 2], "labels": ["a", "b"]}
    folder = m.checkpoint_folder(a, key, shots)
    assert folder.parent == tmp_path / "ck" and folder.name.startswith("TREC_64_0_0_setfit_")
    assert folder == m.checkpoint_folder(m.parse_args(["--checkpoints", str(tmp_path / "ck"),
                                                       "--setfit-save-steps", "9"]), key, shots)
    for other in (m.checkpoint_folder(m.parse_args(["--checkpoints", str(tmp_path / "ck"), "--setfit-iterations",
                                                    "20"]), key, shots),
                  m.checkpoint_folder(a, key, {**shots, "labels": ["a", "a"]}),
                  m.checkpoint_folder(m.parse_args(["--checkpoints", str(tmp_path / "ck"), "--output",
                                                    str(tmp_path / "quick")]), key, shots)):
        assert other != folder
    # a folder named the earlier way (by the absolute output path) is still found while it exists ...
    earlier = m._checkpoint_name(a, key, shots, str(Path(a.output).resolve()))
    assert earlier != folder
    earlier.mkdir(parents=True)
    assert m.checkpoint_folder(a, key, shots) == earlier
    earlier.rmdir()
    assert m.checkpoint_folder(a, key, shots) == folder
    # ... and the output is named relative to the repository: the same run in a moved checkout keeps its folder
    moved = tmp_path / "moved-checkout"
    monkeypatch.setattr(m.C, "ROOT", moved)
    assert m.checkpoint_folder(m.parse_args(["--checkpoints", str(tmp_path / "ck"), "--output",
                                             str(moved / "results/setfit")]), key, shots) == folder
    monkeypatch.undo()
    for step, state, elapsed in ((500, "{}", True), (1000, "{}", False), (1500, "{tor", True), (2000, None, True)):
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        if state is not None:
            (folder / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
        if elapsed:
            (folder / f"elapsed-{step}.json").write_text(json.dumps({"step": step, "train_s": 1.0, "save_s": 0.0}))
    assert m.latest_checkpoint(folder).name == "checkpoint-500"  # 1000: no elapsed file; 1500 torn; 2000 no state
    from filelock import FileLock

    with FileLock(str(folder) + ".lock"):  # another invocation trains this run: not claimed
        assert m.claim_run(folder) is None
    lock = m.claim_run(folder)
    assert lock is not None and lock.is_locked
    lock.release()


def test_a_setfit_run_that_another_invocation_trains_or_has_recorded_is_not_trained_again(tmp_path, monkeypatch):
    """Two invocations side by side share the grid: a run whose lock is held is skipped, and a run recorded by the
    other while this one worked on its own is skipped too (its row is read again under the lock), not trained twice."""
    import json

    from filelock import FileLock

    m = _module()

    class FakeTask:
        def __init__(self, name, model):
            self.name, self.model, self.test = name, model, [("q", "a")] * 4

        def draw(self, shots_per_class, noise, seed):
            return {"indices": [seed], "labels": ["a"], "flipped": [], "texts": ["t"]}

    trained = []
    out = tmp_path / "setfit"
    a = m.parse_args(["--tasks", "TREC", "--shots", "8", "--noise", "0", "--seeds", "3", "--systems", "setfit",
                      "--output", str(out), "--checkpoints", str(tmp_path / "ck")])
    key = lambda seed: m.run_key("TREC", 8, 0.0, seed, "setfit")  # noqa: E731

    def fake_run_setfit(task, shots, seed, a_, checkpoints):
        trained.append(seed)
        if seed == 0:  # meanwhile the other invocation finishes seed 1 and records it
            m.append_run(out / "runs.jsonl", {"key": key(1), "settings": m.settings(a), "task": "TREC", "shots": 8,
                                              "noise": 0.0, "seed": 1, "system": "setfit", "accuracy": 0.5,
                                              "wall_s": 1.0})
        return {"accuracy": 1.0, "steps": 1, "train_s": 1.0, "eval_s": 0.0, "save_s": 0.0, "wall_s": 1.0}

    monkeypatch.setattr(m, "Task", FakeTask)
    monkeypatch.setattr(m, "run_setfit", fake_run_setfit)
    monkeypatch.setattr(m.C, "model_path", lambda name: name)
    held = FileLock(str(m.checkpoint_folder(a, key(2), FakeTask("TREC", "").draw(8, 0.0, 2))) + ".lock")
    (tmp_path / "ck").mkdir()
    with held:  # the other invocation is training seed 2
        rows = m.run_grid(a)
    assert trained == [0]
    assert sorted(r["seed"] for r in rows) == [0, 1]
    assert [json.loads(line)["seed"] for line in (out / "runs.jsonl").read_text().splitlines()] == [1, 0]
    mine = json.loads((out / "runs.jsonl").read_text().splitlines()[1])  # the row records the machine that ran it
    assert mine["cpu"] == m.C.machine()["cpu"] and mine["native_bf16"] == m.C.native_bf16()


def test_results_setfit_section_names_the_runs_built_outside_its_budget(tmp_path):
    """results.py's setfit piece reads the folder's summary; runs built outside its budget (TREC 64: hours a SetFit
    run) are named with their command, and their finished rows are in the tables like the budget's."""
    import json

    r, m = _results_module(), _module()
    folder = tmp_path / "results" / "setfit"
    folder.mkdir(parents=True)
    summary = m.summarize(_rows({"setfit": [0.8, 0.82], "ce": [0.7, 0.72]}))
    (folder / "summary.json").write_text(json.dumps({"intro": ["2 runs."], "summary": summary}))
    b = {"setfit": [], "setfit_outside": [["--tasks", "TREC", "--shots", "64"]]}
    section, readme = r.setfit_piece(b, False, tmp_path, tmp_path / "figs")
    text = "\n".join(section)
    assert "outside this script, over several invocations" in text
    assert "`python benchmarks/fewshot_vs_setfit.py --tasks TREC --shots 64`" in text
    assert "| SST-2 | 8 | 0 | SetFit | 2 | 81.00 ± 1.41 |" in text and readme[0].startswith("| task | shots/class")
    section, _ = r.setfit_piece({"setfit": []}, False, tmp_path, tmp_path / "figs")
    assert "outside this script" not in "\n".join(section)
