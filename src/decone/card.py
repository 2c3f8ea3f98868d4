"""Model cards: a Hugging Face ``README.md`` for a trained decone folder.

``render_card(info)`` takes what ``decone.json`` holds (``method``, ``config``, ``summary``, ``data``, and optionally
``hardware``, ``eval``) and returns markdown with YAML front matter (``library_name: sentence-transformers``,
``pipeline_tag: sentence-similarity``, ``base_model``, tags for the method and its loss, ``datasets`` where the training
data is a known public set), then: the method and its paper with BibTeX, every training setting, the data (file name,
example count, sha256), training time and hardware, evaluation results, and usage for sentence-transformers and decone.

``write_card(folder)`` writes ``folder/README.md`` from the folder's own ``decone.json``; ``update_card(folder,
results)`` merges ``decone eval`` results (the dict of ``decone.evaluate.runner.run`` or its ``--output`` JSON file) into
``folder/eval_results.json`` and rewrites the card.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

from decone.errors import ConfigError, ModelError

CARD_FILE = "README.md"
EVAL_FILE = "eval_results.json"

# ---------------------------------------------------------------------------------------------------- papers
_SIMCSE = """@inproceedings{gao2021simcse,
  title = {{SimCSE}: Simple Contrastive Learning of Sentence Embeddings},
  author = {Gao, Tianyu and Yao, Xingcheng and Chen, Danqi},
  booktitle = {Proceedings of the 2021 Conference on Empirical Methods in Natural Language Processing (EMNLP)},
  year = {2021},
  eprint = {2104.08821},
  archivePrefix = {arXiv},
  url = {https://arxiv.org/abs/2104.08821}
}"""
_MIRROR = """@inproceedings{liu2021mirrorbert,
  title = {Fast, Effective, and Self-Supervised: Transforming Masked Language Models into Universal Lexical and Sentence Encoders},
  author = {Liu, Fangyu and Vuli{\\'c}, Ivan and Korhonen, Anna and Collier, Nigel},
  booktitle = {Proceedings of the 2021 Conference on Empirical Methods in Natural Language Processing (EMNLP)},
  year = {2021},
  eprint = {2104.08027},
  archivePrefix = {arXiv},
  url = {https://arxiv.org/abs/2104.08027}
}"""
_SCL = """@inproceedings{gunel2021scl,
  title = {Supervised Contrastive Learning for Pre-trained Language Model Fine-tuning},
  author = {Gunel, Beliz and Du, Jingfei and Conneau, Alexis and Stoyanov, Ves},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year = {2021},
  eprint = {2011.01403},
  archivePrefix = {arXiv},
  url = {https://arxiv.org/abs/2011.01403}
}"""
_ESIMCSE = """@inproceedings{wu2022esimcse,
  title = {{ESimCSE}: Enhanced Sample Building Method for Contrastive Learning of Unsupervised Sentence Embedding},
  author = {Wu, Xing and Gao, Chaochen and Zang, Liangjun and Han, Jizhong and Wang, Zhongyuan and Hu, Songlin},
  booktitle = {Proceedings of the 29th International Conference on Computational Linguistics (COLING)},
  year = {2022},
  eprint = {2109.04380},
  archivePrefix = {arXiv},
  url = {https://arxiv.org/abs/2109.04380}
}"""
_PROMPTBERT = """@inproceedings{jiang2022promptbert,
  title = {{PromptBERT}: Improving {BERT} Sentence Embeddings with Prompts},
  author = {Jiang, Ting and Jiao, Jian and Huang, Shaohan and Zhang, Zihan and Wang, Deqing and Zhuang, Fuzhen and Wei, Furu and Huang, Haizhen and Deng, Denvy and Zhang, Qi},
  booktitle = {Proceedings of the 2022 Conference on Empirical Methods in Natural Language Processing (EMNLP)},
  year = {2022},
  eprint = {2201.04337},
  archivePrefix = {arXiv},
  url = {https://arxiv.org/abs/2201.04337}
}"""
# Contrastive Tension was published at ICLR 2021 through OpenReview only (no arXiv version)
_CT = """@inproceedings{carlsson2021ct,
  title = {Semantic Re-tuning with Contrastive Tension},
  author = {Carlsson, Fredrik and Gyllensten, Amaru Cuba and Gogoulou, Evangelia and Hellqvist, Erik Ylip{\\"a}{\\"a} and Sahlgren, Magnus},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year = {2021},
  url = {https://openreview.net/forum?id=Ov_sMNau-PF}
}"""
_DIFFCSE = """@inproceedings{chuang2022diffcse,
  title = {{DiffCSE}: Difference-based Contrastive Learning for Sentence Embeddings},
  author = {Chuang, Yung-Sung and Dangovski, Rumen and Luo, Hongyin and Zhang, Yang and Chang, Shiyu and Solja{\\v{c}}i{\\'c}, Marin and Li, Shang-Wen and Yih, Wen-tau and Kim, Yoon and Glass, James},
  booktitle = {Proceedings of the 2022 Conference of the North American Chapter of the Association for Computational Linguistics (NAACL)},
  year = {2022},
  eprint = {2204.10298},
  archivePrefix = {arXiv},
  url = {https://arxiv.org/abs/2204.10298}
}"""
_SNCSE = """@article{wang2022sncse,
  title = {{SNCSE}: Contrastive Learning for Unsupervised Sentence Embedding with Soft Negative Samples},
  author = {Wang, Hao and Li, Yangguang and Huang, Zhen and Dou, Yong and Kong, Lingpeng and Shao, Jing},
  journal = {arXiv preprint arXiv:2201.05979},
  year = {2022},
  eprint = {2201.05979},
  archivePrefix = {arXiv},
  url = {https://arxiv.org/abs/2201.05979}
}"""
_TSDAE = """@inproceedings{wang2021tsdae,
  title = {{TSDAE}: Using Transformer-based Sequential Denoising Auto-Encoder for Unsupervised Sentence Embedding Learning},
  author = {Wang, Kexin and Reimers, Nils and Gurevych, Iryna},
  booktitle = {Findings of the Association for Computational Linguistics: EMNLP 2021},
  year = {2021},
  eprint = {2104.06979},
  archivePrefix = {arXiv},
  url = {https://arxiv.org/abs/2104.06979}
}"""
_LLM2VEC = """@inproceedings{behnamghader2024llm2vec,
  title = {{LLM2Vec}: Large Language Models Are Secretly Powerful Text Encoders},
  author = {BehnamGhader, Parishad and Adlakha, Vaibhav and Mosbach, Marius and Bahdanau, Dzmitry and Chapados, Nicolas and Reddy, Siva},
  booktitle = {First Conference on Language Modeling (COLM)},
  year = {2024},
  eprint = {2404.05961},
  archivePrefix = {arXiv},
  url = {https://arxiv.org/abs/2404.05961}
}"""
#: method name -> BibTeX of its paper (the ``decone train`` METHOD names)
BIBTEX: dict[str, str] = {
    "simcse": _SIMCSE, "simcse-sup": _SIMCSE, "mirror": _MIRROR, "mirror-word": _MIRROR, "scl": _SCL,
    "esimcse": _ESIMCSE, "promptbert": _PROMPTBERT, "ct": _CT, "diffcse": _DIFFCSE, "sncse": _SNCSE,
    "tsdae": _TSDAE, "mntp": _LLM2VEC, "llm2vec-simcse": _LLM2VEC, "llm2vec": _LLM2VEC,
}

#: method name -> (paper in one line, the loss it optimises: a card tag ``loss:<name>``)
METHOD_INFO: dict[str, tuple[str, str]] = {
    "simcse": ("Gao et al. 2021, SimCSE (unsupervised: two dropout views)", "InfoNCE"),
    "simcse-sup": ("Gao et al. 2021, SimCSE (supervised: NLI entailment positives, contradiction hard negatives)", "InfoNCE"),
    "mirror": ("Liu et al. 2021, Mirror-BERT (sentence level: span masking + dropout)", "NTXent"),
    "mirror-word": ("Liu et al. 2021, Mirror-BERT (word level)", "NTXent"),
    "scl": ("Gunel et al. 2021, supervised contrastive fine-tuning: (1-lambda) CE + lambda SupCon", "SupCon"),
    "esimcse": ("Wu et al. 2022, ESimCSE (word repetition + momentum-contrast queue)", "InfoNCE"),
    "promptbert": ("Jiang et al. 2022, PromptBERT (template [MASK] representation)", "InfoNCE"),
    "ct": ("Carlsson et al. 2021, Contrastive Tension", "ContrastiveTension"),
    "diffcse": ("Chuang et al. 2022, DiffCSE (SimCSE + replaced-token detection)", "InfoNCE"),
    "sncse": ("Wang et al. 2022, SNCSE (negated soft negatives, bidirectional margin loss)", "InfoNCE"),
    "tsdae": ("Wang et al. 2021, TSDAE (denoising auto-encoder)", "DenoisingAutoEncoder"),
    "mntp": ("BehnamGhader et al. 2024, LLM2Vec step 2: masked next-token prediction", "MNTP"),
    "llm2vec-simcse": ("BehnamGhader et al. 2024, LLM2Vec step 3: SimCSE on a bidirectional decoder", "InfoNCE"),
    "llm2vec": ("BehnamGhader et al. 2024, LLM2Vec (bidirectional attention + MNTP + SimCSE)", "InfoNCE"),
}

#: training-data file or folder names that are public data sets on the Hugging Face Hub
KNOWN_DATASETS: dict[str, str] = {
    "wiki1m_for_simcse.txt": "princeton-nlp/datasets-for-simcse",
    "nli_for_simcse.csv": "princeton-nlp/datasets-for-simcse",
    "sts-train.csv": "sentence-transformers/stsb",
    "sts-dev.csv": "sentence-transformers/stsb",
    "snli": "stanfordnlp/snli",
}

_HUB_BASE_MODELS = {"all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2",
                    "all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2"}


# ---------------------------------------------------------------------------------------------------- helpers
def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file; of a folder, the sha256 of its files' ``name sha256`` lines (sorted, recursive)."""
    path = Path(path)
    if path.is_dir():
        lines = [f"{p.relative_to(path).as_posix()} {file_sha256(p)}\n" for p in sorted(path.rglob("*")) if p.is_file()]
        return hashlib.sha256("".join(lines).encode()).hexdigest()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def data_fingerprint(source: str | os.PathLike | None, examples: int | None = None) -> dict:
    """``{"source", "name", "examples", "sha256", "bytes"}`` of a training file or folder (sha256 None if absent)."""
    out: dict[str, Any] = {"source": str(source) if source is not None else None,
                           "name": Path(str(source)).name if source else None, "examples": examples,
                           "sha256": None, "bytes": None}
    if source is not None and Path(source).exists():
        p = Path(source)
        out["sha256"] = file_sha256(p)
        out["bytes"] = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    return out


def hardware_info() -> dict:
    """CPU model, cores, GPU (if any), OS and library versions: for ``decone.json`` at save time."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "platform": platform.platform(terse=True), "python": platform.python_version(), "torch": torch.__version__}
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:  # pragma: no cover
        pass
    return info


def _is_hub_id(name: str | None) -> bool:
    if not name or name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1 or os.path.exists(name):
        return False
    return all(part and all(c.isalnum() or c in "-_." for c in part) for part in name.split("/"))


def base_model_id(model: str | None) -> str | None:
    """The hub id of the base model, or None for a local folder (front matter must name a hub model)."""
    if not model:
        return None
    if _is_hub_id(model):
        return model
    low = str(model).lower()
    for key, hub in _HUB_BASE_MODELS.items():
        if key in low:
            return hub
    return None


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True) if value else "-"
    return str(value)


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _yaml_value(value) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string/number/list is valid YAML flow syntax


def _front_matter(meta: dict) -> str:
    lines = ["---"]
    for key, value in meta.items():
        if value is None or value == []:
            continue
        if isinstance(value, list):
            lines.append(f"{key}:")
            lines.extend(f"- {_yaml_value(v)}" for v in value)
        else:
            lines.append(f"{key}: {_yaml_value(value)}")
    lines.append("---")
    return "\n".join(lines) + "\n"


def _method_citation(method: str | None) -> str | None:
    if not method:
        return None
    try:
        from decone.methods import METHODS

        m = METHODS.get(method)
        return getattr(m, "citation", None) if m is not None else None
    except Exception:  # noqa: BLE001 - the registry is optional for rendering
        return None


# ---------------------------------------------------------------------------------------------------- the card
def render_card(info: dict, eval_results: dict | None = None, citation: str | None = None,
                bibtex: str | None = None, repo_id: str | None = None, onnx_files: list[str] | None = None) -> str:
    """The model card (markdown with YAML front matter) for one trained model.

    Args:
        info: ``decone.json``'s content: ``method``, ``config`` (every training setting), ``summary`` (steps, loss,
            wall time, throughput, best dev Spearman), ``data`` (``source``, ``examples``, optional ``sha256``),
            optional ``hardware`` (see :func:`hardware_info`), ``pooling``, ``normalize``, ``dense``, ...
        eval_results: one model's ``decone eval`` row (``sts``/``words``/``transfer`` groups), or None; defaults to
            ``info["eval"]``.
        citation: the paper in one line (default: the method registry's ``citation``).
        bibtex: the BibTeX entry (default: :data:`BIBTEX` for the method).
        repo_id: the hub id used in the usage snippets (default: a placeholder).
        onnx_files: ONNX files in the folder (``onnx/model.onnx``, ...), for an ONNX usage snippet.
    """
    method = info.get("method") or (info.get("config") or {}).get("method")
    config = dict(info.get("config") or {})
    summary = dict(info.get("summary") or {})
    data = dict(info.get("data") or {})
    if not data.get("source") and config.get("data"):
        data["source"] = config.get("data")
    if data.get("source") and not data.get("sha256") and Path(str(data["source"])).exists():
        data.update({k: v for k, v in data_fingerprint(data["source"], data.get("examples")).items() if v is not None})
    hardware = info.get("hardware") or summary.get("hardware")
    eval_results = eval_results if eval_results is not None else info.get("eval")
    paper, loss = METHOD_INFO.get(method, (method or "unknown method", info.get("loss") or "contrastive"))
    loss = info.get("loss") or loss
    citation = citation or _method_citation(method)
    bibtex = bibtex if bibtex is not None else BIBTEX.get(method)
    base = base_model_id(config.get("model"))
    data_name = Path(str(data["source"])).name if data.get("source") else None
    dataset = KNOWN_DATASETS.get(data_name or "")
    repo = repo_id or "REPO_ID"
    st_ok = info.get("sentence_transformers_compatible", True)
    title = repo_id.split("/")[-1] if repo_id else f"decone {method or 'encoder'}"

    tags = ["sentence-transformers", "sentence-similarity", "feature-extraction", "decone"]
    if method:
        tags.append(f"decone-{method}")
    tags.append(f"loss:{loss}")
    front = {
        "library_name": "sentence-transformers",
        "pipeline_tag": "sentence-similarity",
        "base_model": base,
        "tags": tags,
        "datasets": [dataset] if dataset else [],
        "language": info.get("language"),
        "license": info.get("license"),
    }
    out = [_front_matter(front), f"# {title}\n"]
    out.append(
        f"A sentence encoder trained with decone using **{method}**: {paper}. "
        f"It maps a text to a vector "
        f"({info.get('pooling', config.get('pooling') or '-')} pooling"
        f"{', L2-normalised' if info.get('normalize') else ''}); compare vectors with cosine similarity.\n")
    if not st_ok:
        out.append(f"> Its pooling ({info.get('pooling')}) cannot be expressed in sentence-transformers: load it with "
                   "decone to reproduce its embeddings.\n")

    out.append("## Method\n")
    out.append(f"- Method: `{method}`, {paper}")
    if info.get("stages"):
        out.append("- Stages, each trained on the previous one's output: " + "; ".join(
            f"{i}. `{s.get('method')}` ({s.get('steps')} steps, {s.get('wall_time_s')} s)"
            for i, s in enumerate(info["stages"], 1)))
    if citation:
        out.append(f"- Paper: {citation}")
    local_model = config.get("model") or "-"
    base_text = f"[{base}](https://huggingface.co/{base})" if base else f"`{local_model}` (a local folder)"
    out.append(f"- Base model: {base_text}")
    out.append(f"- Loss: {loss}\n")

    out.append("## Training data\n")
    if data.get("source"):
        out.append("| file | examples | sha256 |\n|---|---|---|")
        out.append(f"| `{_md(data_name)}` | {_fmt(data.get('examples'))} | `{data.get('sha256') or 'not recorded'}` |\n")
        if dataset:
            out.append(f"Public data set: [{dataset}](https://huggingface.co/datasets/{dataset}).\n")
    else:
        out.append("Not recorded.\n")

    out.append("## Training\n")
    rows = [("steps", summary.get("steps")), ("final loss", summary.get("final_loss")),
            ("wall time", f"{summary['wall_time_s']:.1f} s" if isinstance(summary.get("wall_time_s"), (int, float)) else None),
            ("throughput", f"{summary['sentences_per_s']} sentences/s" if summary.get("sentences_per_s") is not None else None),
            ("best dev Spearman x100", summary.get("best_eval_spearman")), ("best step", summary.get("best_step"))]
    out.append("| | |\n|---|---|")
    out.extend(f"| {k} | {_fmt(v)} |" for k, v in rows if v is not None)
    out.append("")
    if hardware:
        out.append("Hardware: " + "; ".join(f"{k} {_fmt(v)}" for k, v in hardware.items() if v is not None) + "\n")
    else:
        out.append("Hardware: not recorded.\n")
    out.append("### Settings\n")
    out.append("Every setting of the run, as resolved by `decone train` (`-`: not set, or not used by this method):\n")
    out.append("| setting | value |\n|---|---|")
    out.extend(f"| `{k}` | `{_md(_fmt(v))}` |" for k, v in sorted(config.items()))
    out.append("")
    extra = {k: info.get(k) for k in ("pooling", "max_length", "normalize", "decone_version") if k in info}
    if extra:
        out.append("Saved model: " + ", ".join(f"{k} `{_fmt(v)}`" for k, v in extra.items()) + "\n")

    out.append("## Evaluation\n")
    out.append(_eval_section(summary, eval_results))

    out.append("## Usage\n")
    if st_ok:
        out.append("With [sentence-transformers](https://sbert.net):\n")
        out.append("```python\nfrom sentence_transformers import SentenceTransformer\n\n"
                   f'model = SentenceTransformer("{repo}")\n'
                   'embeddings = model.encode(["A man is playing a guitar.", "Someone plays an instrument."])\n'
                   "print(model.similarity(embeddings, embeddings))\n```\n")
    out.append("With decone:\n")
    out.append("```python\nfrom decone import Encoder\n\n"
               f'encoder = Encoder.load("{repo}")\n'
               'embeddings = encoder.encode(["A man is playing a guitar."], normalize=True)\n```\n')
    out.append(f"```bash\ndecone encode --model {repo} --input sentences.txt --output embeddings.npy\n"
               f"decone eval sts --model {repo}\n```\n")
    if onnx_files and st_ok:
        quant = [f for f in onnx_files if Path(f).name != "model.onnx"]
        out.append("ONNX (CPU serving; `pip install sentence-transformers[onnx]`):\n")
        snippet = f'model = SentenceTransformer("{repo}", backend="onnx")'
        if quant:
            snippet += f'\nmodel_int8 = SentenceTransformer("{repo}", backend="onnx", model_kwargs={{"file_name": "{quant[0]}"}})'
        out.append(f"```python\n{snippet}\n```\n")

    out.append("## Citation\n")
    if bibtex:
        out.append(f"```bibtex\n{bibtex}\n```\n")
    else:
        out.append("No BibTeX entry is recorded for this method.\n")
    return "\n".join(out)


def _eval_section(summary: dict, results: dict | None) -> str:
    lines: list[str] = []
    if summary.get("best_eval_spearman") is not None:
        lines.append(f"Best STS-B dev Spearman x100 during training: {_fmt(summary['best_eval_spearman'])} "
                     f"(step {_fmt(summary.get('best_step'))}).\n")
    if results:
        sts = results.get("sts")
        if sts and sts.get("tasks"):
            tasks = sts["tasks"]
            names = [t.get("display", k) if isinstance(t, dict) else k for k, t in tasks.items()]
            vals = [_fmt(_score(t)) for t in tasks.values()]
            avg = _fmt(_score(sts.get("avg"), key=None))
            lines.append("STS, Spearman x100 of cosine (`decone eval sts`, SentEval protocol):\n")
            lines.append("| " + " | ".join([*names, "avg"]) + " |")
            lines.append("|" + "---|" * (len(names) + 1))
            lines.append("| " + " | ".join([*vals, avg]) + " |\n")
        words = results.get("words")
        if words and words.get("sets"):
            sets = words["sets"]
            lines.append("Word similarity, Spearman x100 (`decone eval words`):\n")
            lines.append("| " + " | ".join([*(s.get("short", k) for k, s in sets.items()), "avg"]) + " |")
            lines.append("|" + "---|" * (len(sets) + 1))
            lines.append("| " + " | ".join([*(_fmt(s.get("spearman")) for s in sets.values()), _fmt(words.get("avg"))]) + " |\n")
        transfer = results.get("transfer")
        if transfer and transfer.get("tasks"):
            tt = transfer["tasks"]
            lines.append("SentEval transfer, accuracy x100 (`decone eval transfer`):\n")
            lines.append("| " + " | ".join([*tt, "avg"]) + " |")
            lines.append("|" + "---|" * (len(tt) + 1))
            lines.append("| " + " | ".join([*(_fmt(t.get("acc")) for t in tt.values()), _fmt(transfer.get("avg"))]) + " |\n")
        for key, value in results.items():  # anything else (e.g. MTEB scores) as key: value
            if key not in ("sts", "words", "transfer", "label", "source", "pooling", "load_seconds") and isinstance(value, (int, float, str)):
                lines.append(f"- {key}: {_fmt(value)}")
        if lines and lines[-1].startswith("- "):
            lines.append("")
    if not lines:
        lines.append("No evaluation recorded; run `decone eval sts --model FOLDER --output results.json` and "
                     "`decone card FOLDER --eval results.json`.\n")
    return "\n".join(lines)


def _score(entry, key: str | None = "spearman"):
    """Spearman 'all' from a task entry (``{"spearman": {"all": x}}``) or an aggregate (``{"all": x}``)."""
    if entry is None:
        return None
    value = entry.get(key) if key and isinstance(entry, dict) else entry
    if isinstance(value, dict):
        value = value.get("all")
    return value if isinstance(value, (int, float)) else None


# ---------------------------------------------------------------------------------------------------- files
def read_info(folder: str | os.PathLike) -> dict:
    """``decone.json`` (plus ``eval_results.json`` as ``info["eval"]``) of a model folder."""
    folder = Path(folder)
    path = folder / "decone.json"
    if not path.is_file():
        raise ModelError(f"{folder}: no decone.json; a model card needs a folder written by `decone train`")
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from None
    ev = folder / EVAL_FILE
    if ev.is_file() and "eval" not in info:
        info["eval"] = _read_eval_file(ev)
    return info


#: the groups of ``decone eval`` results a card renders, and the per-task/set mapping inside each
_EVAL_GROUPS = {"sts": "tasks", "words": "sets", "transfer": "tasks"}


def check_eval_row(row: Any, where: str, error: type[Exception] = ConfigError) -> dict:
    """``row`` if it has the shape of one model's ``decone eval`` results (an object whose ``sts``, ``words`` and
    ``transfer`` groups, where present, are objects with an object of tasks/sets); else ``error`` naming ``where`` and
    the field, so that a hand-edited or foreign file stops with one line before anything is written."""
    if not isinstance(row, dict):
        raise error(f"{where}: expected a JSON object of `decone eval` results, got {type(row).__name__}")
    for group, inner in _EVAL_GROUPS.items():
        value = row.get(group)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise error(f"{where}: field '{group}': expected an object, got {type(value).__name__}")
        entries = value.get(inner)
        if entries is None:
            continue
        if not isinstance(entries, dict):
            raise error(f"{where}: field '{group}.{inner}': expected an object, got {type(entries).__name__}")
        for name, entry in entries.items():
            if not isinstance(entry, dict) and not (group == "sts" and isinstance(entry, (int, float))):
                raise error(f"{where}: field '{group}.{inner}.{name}': expected an object, got {type(entry).__name__}")
    return row


def _read_eval_file(path: Path) -> dict:
    """A model folder's ``eval_results.json``, checked; ModelError naming it where it is not valid."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc}); fix or delete it, then run `decone card` again") from None
    return check_eval_row(data, str(path), ModelError)


def write_card(folder: str | os.PathLike, info: dict | None = None, repo_id: str | None = None, **kwargs) -> Path:
    """Write ``folder/README.md`` (atomically) from ``info`` or the folder's own ``decone.json``; returns its path."""
    folder = Path(folder)
    info = read_info(folder) if info is None else info
    from decone.onnx_layout import onnx_files

    files = [p.relative_to(folder).as_posix() for p in onnx_files(folder)]
    text = render_card(info, repo_id=repo_id, onnx_files=files or None, **kwargs)
    path = folder / CARD_FILE
    tmp = folder / f".{CARD_FILE}.tmp"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def model_row(results: dict | str | os.PathLike, folder: str | os.PathLike | None = None) -> dict:
    """One model's row from ``decone eval`` results (a dict or its JSON file): the row whose source is ``folder``,
    else the only row. A row itself (with ``sts``/``words``/``transfer``) is returned as is."""
    if not isinstance(results, dict):
        path = Path(results)
        try:
            results = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not a decone eval JSON file ({exc})") from None
        where = str(path)
    else:
        where = "the eval results"
    if not isinstance(results, dict):
        raise ConfigError(f"{where}: expected a JSON object of `decone eval` results, got {type(results).__name__}")
    models = results.get("models")
    if models is None:
        return check_eval_row(results, where)
    if not isinstance(models, list) or not all(isinstance(row, dict) for row in models):
        raise ConfigError(f"{where}: field 'models': expected a list of objects (one per model)")
    if folder is not None:
        want = Path(folder).resolve()
        for k, row in enumerate(models):
            src = row.get("source")
            if src and Path(src).exists() and Path(src).resolve() == want:
                return check_eval_row(row, f"{where}: models[{k}]")
    if len(models) == 1:
        return check_eval_row(models[0], f"{where}: models[0]")
    raise ConfigError(f"the eval results hold {len(models)} models and none is {folder}; evaluate this model alone")


def update_card(folder: str | os.PathLike, eval_results: dict | str | os.PathLike, repo_id: str | None = None) -> Path:
    """Merge ``decone eval`` results into ``folder/eval_results.json`` (a group evaluated again replaces the old one)
    and rewrite ``folder/README.md``; returns the card's path."""
    folder = Path(folder)
    row = model_row(eval_results, folder)
    path = folder / EVAL_FILE
    merged = _read_eval_file(path) if path.is_file() else {}
    merged.update({k: v for k, v in row.items() if k not in ("label", "source", "load_seconds", "pooling")})
    tmp = folder / f".{EVAL_FILE}.tmp"
    tmp.write_text(json.dumps(merged, indent=2) + "\n")
    os.replace(tmp, path)
    info = read_info(folder)
    info["eval"] = merged
    return write_card(folder, info, repo_id=repo_id)
