"""ONNX export (decone.export), the ONNX encoding backend (decone.onnx_backend) and `decone export` (export_command).

One export per module (a cls-pooled tiny BERT, whose graph carries pooler_output, plus its int8 copy) through the CLI;
the other tests read it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="ONNX export needs the export extra: pip install 'decone[export]' (onnx)")
pytest.importorskip("onnxruntime", reason="ONNX export needs the export extra: pip install 'decone[export]' (onnxruntime)")
pytest.importorskip("onnxscript", reason="torch.onnx.export(dynamo=True) needs the export extra (onnxscript)")


from decone.encoder import Encoder  # noqa: E402
from decone.errors import ConfigError, DeconeError, ModelError  # noqa: E402
from decone.export import (  # noqa: E402
    QUANT_ARCHS, cpu_arch, export_onnx, onnx_files, quantized_file_name, resolve_quantize,
)
from decone.onnx_backend import OnnxTransformer, resolve_onnx_file  # noqa: E402

from tests.conftest import WORDS  # noqa: E402
from tests._cli import run_cli  # noqa: E402

TEXTS = [" ".join(WORDS[(7 * i) % 150: (7 * i) % 150 + 3 + i % 17]) for i in range(60)] + ["hi", "a", "the cat sat."]




def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def cls_folder(tiny_model_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cls-model")
    torch.manual_seed(0)
    Encoder.load(tiny_model_dir, pooling="cls", device="cpu").save(folder, meta={"method": "simcse"})
    (folder / "checkpoint").mkdir()
    (folder / "checkpoint" / "optimizer.pt").write_bytes(b"state")
    return folder


@pytest.fixture(scope="module")
def exported(cls_folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("served") / "model"
    code, text = run_cli(["export", str(cls_folder), "--format", "onnx", "--quantize", "int8", "--output", str(out)])
    assert code == 0, text
    assert "wrote" in text and "model.onnx" in text
    return out


def test_layout_is_sentence_transformers(exported):
    import onnxruntime as ort

    names = [p.relative_to(exported).as_posix() for p in onnx_files(exported)]
    assert names == ["onnx/model.onnx", f"onnx/{quantized_file_name(cpu_arch())}"]
    # a servable copy: the model, its sentence-transformers modules, no training checkpoint
    assert (exported / "config.json").is_file() and (exported / "modules.json").is_file()
    assert not (exported / "checkpoint").exists()
    sess = ort.InferenceSession(str(exported / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    inputs = {i.name: i for i in sess.get_inputs()}
    assert list(inputs) == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(i.type == "tensor(int64)" and len(i.shape) == 2 and all(isinstance(d, str) for d in i.shape)
               for i in inputs.values()), "batch and sequence axes must be dynamic"
    assert [o.name for o in sess.get_outputs()] == ["last_hidden_state", "pooler_output"]


def test_quantized_names_follow_sentence_transformers():
    # export_dynamic_quantized_onnx_model names files model_<weights dtype>_<preset>.onnx
    assert quantized_file_name("avx512_vnni") == "model_qint8_avx512_vnni.onnx"
    assert quantized_file_name("avx512") == "model_qint8_avx512.onnx"
    assert quantized_file_name("arm64") == "model_qint8_arm64.onnx"
    assert quantized_file_name("avx2") == "model_quint8_avx2.onnx"
    assert resolve_quantize(None) is None
    assert resolve_quantize("int8") in QUANT_ARCHS
    assert resolve_quantize("avx512-vnni") == "avx512_vnni"
    with pytest.raises(ConfigError, match="--quantize 'int4'"):
        resolve_quantize("int4")


def test_onnx_fp32_matches_torch(exported):
    ref = Encoder.load(exported, device="cpu").encode(TEXTS, batch_size=8)
    enc = Encoder.load(exported, backend="onnx")
    assert isinstance(enc.model, OnnxTransformer) and enc.pooling == "cls"
    got = enc.encode(TEXTS, batch_size=8)  # the same length-sorted batches, decone's own pooling
    assert got.shape == ref.shape
    assert cosines(ref, got).min() >= 0.9999
    # batch size 1 and the order of the input are kept
    one = enc.encode(TEXTS[:5], batch_size=1)
    assert cosines(one, ref[:5]).min() >= 0.9999
    # cores per run and providers reach ONNX Runtime's session; the default device of the ONNX backend is the CPU
    two = Encoder.load(exported, backend="onnx", onnx_threads=2, onnx_providers=["CPUExecutionProvider"])
    assert two.model.session.get_session_options().intra_op_num_threads == 2 and two.device.type == "cpu"
    assert two.model.session.get_providers() == ["CPUExecutionProvider"]
    assert cosines(two.encode(TEXTS[:5], workers=1), ref[:5]).min() >= 0.9999


def test_onnx_int8_is_close(exported):
    ref = Encoder.load(exported, device="cpu").encode(TEXTS)
    got = Encoder.load(exported, backend="onnx", onnx_file="int8").encode(TEXTS)
    assert cosines(ref, got).min() >= 0.99  # dynamic int8 of a random 2-layer BERT


def test_onnx_backend_refuses_what_the_graph_cannot_do(exported):
    enc = Encoder.load(exported, backend="onnx")
    with pytest.raises(ModelError, match="last layer only"):
        enc.encode(TEXTS[:3], layers=[0, 1])
    with pytest.raises(ModelError, match="save"):
        enc.model.save_pretrained(exported / "elsewhere")


def test_first_last_avg_cannot_be_exported(tiny_model_dir, tmp_path):
    folder = tmp_path / "fla"
    Encoder.load(tiny_model_dir, pooling="first_last_avg", device="cpu").save(folder)
    with pytest.raises(ModelError) as err:
        export_onnx(folder)
    assert "first_last_avg" in str(err.value) and "\n" not in str(err.value)
    assert not (folder / "onnx" / "model.onnx").exists()
    code, text = run_cli(["export", str(folder)])
    assert code == 2 and "first_last_avg" in text


def test_missing_graph_names_the_command(tiny_model_dir, tmp_path):
    folder = tmp_path / "plain"
    Encoder.load(tiny_model_dir, pooling="mean", device="cpu").save(folder)
    with pytest.raises(ModelError, match="decone export"):
        resolve_onnx_file(folder)
    with pytest.raises(ModelError, match="--quantize int8"):
        resolve_onnx_file(folder, "int8")
    with pytest.raises(ModelError, match="decone export"):
        Encoder.load(folder, backend="onnx")


def test_cli_rejects_bad_options(cls_folder, tmp_path):
    code, text = run_cli(["export", str(cls_folder), "--format", "tflite"])
    assert code == 2 and "--format 'tflite'" in text
    code, text = run_cli(["export", str(cls_folder), "--quantize", "int3"])
    assert code == 2 and "--quantize" in text
    code, text = run_cli(["export", str(tmp_path / "nope")])
    assert code == 2 and "does not exist" in text


def test_missing_extra_is_one_line(monkeypatch, cls_folder):
    import decone.onnx_layout as layout

    monkeypatch.setattr(layout, "_importable", lambda name: name != "onnxscript")
    with pytest.raises(DeconeError, match=r"needs onnxscript: pip install 'decone\[export\]'"):
        export_onnx(cls_folder)


def test_sentence_transformers_loads_the_export_without_exporting(exported, caplog):
    """Needs optimum's ONNX Runtime classes, which sentence-transformers' ONNX backend loads through."""
    pytest.importorskip("optimum.onnxruntime", reason="sentence-transformers' ONNX backend needs optimum-onnx "
                                                      "(pip install 'sentence-transformers[onnx]')")
    from sentence_transformers import SentenceTransformer

    ref = SentenceTransformer(str(exported), device="cpu").encode(TEXTS)
    with caplog.at_level("WARNING"):
        model = SentenceTransformer(str(exported), backend="onnx", device="cpu")
    assert not any("Exporting the model" in r.getMessage() for r in caplog.records)
    assert cosines(ref, model.encode(TEXTS)).min() >= 0.9999
    q = SentenceTransformer(str(exported), backend="onnx", device="cpu",
                            model_kwargs={"file_name": f"onnx/{quantized_file_name(cpu_arch())}"})
    assert cosines(ref, q.encode(TEXTS)).min() >= 0.99


def test_export_into_the_folder_itself(tiny_model_dir, tmp_path):
    folder = tmp_path / "mean"
    Encoder.load(tiny_model_dir, pooling="mean", device="cpu").save(folder)
    files = export_onnx(folder)
    assert files == [folder / "onnx" / "model.onnx"]
    import onnxruntime as ort

    sess = ort.InferenceSession(str(files[0]), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["last_hidden_state"]  # no pooler for mean pooling
    assert json.loads((folder / "decone.json").read_text())["pooling"] == "mean"
    ref = Encoder.load(folder, device="cpu").encode(TEXTS)
    assert cosines(ref, Encoder.load(folder, backend="onnx").encode(TEXTS)).min() >= 0.9999
    with pytest.raises(ModelError, match="pooler_output"):
        Encoder.load(folder, backend="onnx", pooling="cls")


@pytest.mark.parametrize("into", ["output", "itself"])
def test_a_failed_export_leaves_nothing_behind(tiny_model_dir, tmp_path, monkeypatch, into):
    """A graph that fails its check (here: an opset ONNX Runtime cannot run) stops with one line, and nothing is
    left: no copy of the folder at --output, no onnx/model.onnx in the model folder (which `--backend onnx` would pick
    up), no staging folder."""
    import decone.export as export

    folder = tmp_path / "model"
    Encoder.load(tiny_model_dir, pooling="mean", device="cpu").save(folder)
    before = sorted(p.name for p in folder.iterdir())
    out = tmp_path / "served" / "copy" if into == "output" else None
    code, text = run_cli(["export", str(folder), "--opset", "99", *(["--output", str(out)] if out else [])])
    assert code == 2 and "Traceback" not in text and len(text.strip().splitlines()) == 1, text
    assert f"{folder}: ONNX export not kept, nothing was written: ONNX Runtime cannot load it" in text, text
    assert ".decone-export-" not in text  # the staging folder, gone, is not named
    assert sorted(p.name for p in folder.iterdir()) == before
    assert not (tmp_path / "served").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no staging folder left beside it
    # the check itself failing (a mismatch with torch) after a successful export: the same
    monkeypatch.setattr(export, "check_onnx", lambda enc, path: (_ for _ in ()).throw(ModelError(f"{path}: mismatch")))
    with pytest.raises(ModelError, match="ONNX export not kept, nothing was written: mismatch"):
        export_onnx(folder, output=out)
    assert sorted(p.name for p in folder.iterdir()) == before and not (tmp_path / "served").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    if out is not None:  # a failure while the checked graph is moved into a new copy: the copy and its parents go
        monkeypatch.undo()
        monkeypatch.setattr(export.shutil, "move", lambda a, b: (_ for _ in ()).throw(OSError(28, "No space left")))
        with pytest.raises(OSError):
            export_onnx(folder, output=out)
        assert not (tmp_path / "served").exists() and [p.name for p in tmp_path.iterdir()] == ["model"]
        assert sorted(p.name for p in folder.iterdir()) == before
