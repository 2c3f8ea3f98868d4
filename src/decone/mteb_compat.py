"""Run decone encoders in `mteb <https://github.com/embeddings-benchmark/mteb>`_ (v2).

:class:`DeconeMTEBModel` implements mteb's ``EncoderProtocol``: ``encode(inputs: DataLoader[BatchedInput], *,
task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs)``, ``similarity``, ``similarity_pairwise`` (cosine)
and ``mteb_model_meta``. ``encode`` gathers every text of the loader and embeds them in one
:meth:`decone.encoder.Encoder.encode` call, so they are length-sorted and dynamically padded as everywhere in decone.
The full English benchmark, on a machine with internet::

    import mteb
    from decone.mteb_compat import to_mteb
    results = mteb.evaluate(to_mteb("runs/simcse"), mteb.get_benchmark("MTEB(eng, v2)"))

Offline, :func:`local_sts_task` is mteb's STS task on STS-B test read from the data directory (``shared/data``), so
mteb's own STS protocol can be checked against ``decone eval sts`` without a download.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from decone.errors import DeconeError


def require_mteb():
    try:
        import mteb
    except ImportError:
        raise DeconeError("MTEB evaluation needs mteb (v2): pip install 'mteb>=2'") from None
    major = int(str(getattr(mteb, "__version__", "2")).split(".")[0] or 2)
    if major < 2:
        raise DeconeError(f"decone supports mteb v2, found {mteb.__version__}: pip install -U 'mteb>=2'")
    return mteb


class DeconeMTEBModel:
    """A decone :class:`~decone.encoder.Encoder` (or a folder to load) as an mteb v2 encoder.

    Args:
        model_name: an ``Encoder``, or a decone / sentence-transformers folder or hub name (``Encoder.load``).
        revision: recorded in the model meta.
        device: where to load it (``Encoder.load``).
        batch_size: texts per forward pass unless mteb's ``encode_kwargs`` give ``batch_size``.
        normalize: L2-normalise the embeddings (cosine scores are unchanged).
        backend: ``"torch"`` or ``"onnx"`` (``Encoder.load(..., backend="onnx")``).
        name: the model name in mteb's results (``org/name``; default ``decone/<folder name>``).
    """

    def __init__(self, model_name: Any, revision: str | None = None, *, device: str | None = None,
                 batch_size: int = 64, normalize: bool = False, backend: str = "torch", name: str | None = None,
                 **load_kwargs: Any):
        from decone.encoder import Encoder

        if isinstance(model_name, (str, os.PathLike)):
            source = str(model_name)
            self.encoder = Encoder.load(source, device=device, backend=backend, **load_kwargs)
        else:
            self.encoder = model_name
            source = str(getattr(model_name, "source", "encoder"))
        self.source = source
        self.revision = revision
        self.batch_size = int(batch_size)
        self.normalize = normalize
        self.name = name or _meta_name(source)
        self._meta = None

    # ------------------------------------------------------------------ EncoderProtocol
    def encode(self, inputs, *, task_metadata=None, hf_split: str | None = None, hf_subset: str | None = None,
               prompt_type=None, **kwargs: Any) -> np.ndarray:
        """All texts of ``inputs`` (a DataLoader of ``{"text": [...]}`` batches) -> float32 (n, dim), in order."""
        texts: list[str] = []
        for batch in inputs:
            for text in batch["text"]:
                texts.append(text if isinstance(text, str) else " ".join(map(str, text)))
        return self.encoder.encode(texts, batch_size=int(kwargs.get("batch_size") or self.batch_size),
                                   normalize=self.normalize, show_progress=bool(kwargs.get("show_progress_bar", False)))

    def similarity(self, embeddings1, embeddings2) -> torch.Tensor:
        """Cosine similarity matrix (n1, n2)."""
        a, b = _as_2d(embeddings1), _as_2d(embeddings2)
        return torch.nn.functional.normalize(a, dim=-1) @ torch.nn.functional.normalize(b, dim=-1).T

    def similarity_pairwise(self, embeddings1, embeddings2) -> torch.Tensor:
        """Cosine similarity of each row pair (n,)."""
        return torch.nn.functional.cosine_similarity(_as_2d(embeddings1), _as_2d(embeddings2), dim=-1)

    @property
    def mteb_model_meta(self):
        if self._meta is None:
            from mteb.models import ModelMeta

            enc = self.encoder
            n_params = sum(p.numel() for p in enc.parameters()) or None
            backend = getattr(enc, "backend", "torch")
            self._meta = ModelMeta.create_empty(overwrites=dict(
                name=self.name, revision=self.revision, loader=None, embed_dim=int(enc.dim),
                max_tokens=int(enc.max_length), n_parameters=n_params if backend != "onnx" else None,
                similarity_fn_name="cosine", framework=["PyTorch"] if backend != "onnx" else ["ONNX"],
                open_weights=True, use_instructions=False, modalities=["text"],
            ))
        return self._meta

    def __repr__(self) -> str:
        return f"DeconeMTEBModel({self.source!r}, pooling={self.encoder.pooling!r})"


def to_mteb(model: Any, **kwargs: Any) -> DeconeMTEBModel:
    """A decone encoder or model folder as an mteb v2 model (see :class:`DeconeMTEBModel`)."""
    require_mteb()
    return DeconeMTEBModel(model, **kwargs)


def _as_2d(x) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
    return t.unsqueeze(0) if t.dim() == 1 else t


def _meta_name(source: str) -> str:
    if "/" in source and not Path(source).exists() and source.count("/") == 1:
        return source  # a hub id
    name = Path(source.rstrip("/")).name or "encoder"
    return f"decone/{name}"


# ---------------------------------------------------------------------------------------------------- offline task
def local_sts_task(data_dir: str | os.PathLike | None = None, split: str = "test", name: str = "DeconeSTSBenchmark"):
    """mteb's STS task (``AbsTaskSTS``: cosine Spearman, main score ``cosine_spearman`` in [-1, 1]) on the STS-B split
    read from ``data_dir`` (default: ``$DECONE_DATA`` or ``shared/data``), with no download.

    Raises:
        DeconeError: mteb is missing, or the data directory has no STS-B.
    """
    require_mteb()
    from mteb.abstasks.sts import AbsTaskSTS
    from mteb.abstasks.task_metadata import TaskMetadata

    from decone.evaluate.sts import read_sts_benchmark
    from decone.paths import data_dir as resolve_data_dir

    root = resolve_data_dir(data_dir)
    path = Path(root) / "sts" / "STSBenchmark" / f"sts-{split}.csv" if root else None
    if path is None or not path.is_file():
        raise DeconeError(f"STS-B {split} not found ({path or 'no data directory'}); pass data_dir or set DECONE_DATA")

    class LocalSTSBenchmark(AbsTaskSTS):
        min_score = 0
        max_score = 5
        metadata = TaskMetadata(
            name=name,
            dataset={"path": f"local/{name}", "revision": "local"},
            description=f"STS Benchmark {split} split read from {path} (decone offline check of mteb's STS protocol).",
            reference="https://aclanthology.org/S17-2001",
            type="STS", category="t2t", modalities=["text"], eval_splits=[split], eval_langs=["eng-Latn"],
            main_score="cosine_spearman", date=("2017-01-01", "2017-12-31"), domains=["News", "Written"],
            task_subtypes=[], license="not specified", annotations_creators="human-annotated", dialect=[],
            sample_creation="found", bibtex_citation="",
        )

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            if self.data_loaded:
                return
            from datasets import Dataset

            pairs = read_sts_benchmark(path)
            self.dataset = {"default": {split: Dataset.from_dict({
                "sentence1": [p[0] for p in pairs], "sentence2": [p[1] for p in pairs],
                "score": [float(p[2]) for p in pairs]})}}
            self.data_loaded = True

    return LocalSTSBenchmark()


def evaluate_local_sts(model: Any, data_dir: str | os.PathLike | None = None, split: str = "test",
                       **kwargs: Any) -> float:
    """mteb's cosine Spearman x100 of ``model`` (an Encoder, a folder or a :class:`DeconeMTEBModel`) on local STS-B."""
    mteb = require_mteb()
    wrapped = model if isinstance(model, DeconeMTEBModel) else to_mteb(model, **kwargs)
    task = local_sts_task(data_dir, split)
    result = mteb.evaluate(wrapped, task, cache=None, show_progress_bar=False, co2_tracker=False)
    task_result = result.task_results[0]
    return 100.0 * float(task_result.scores[split][0]["cosine_spearman"])
