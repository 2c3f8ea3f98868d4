"""Model folders: reading their settings, checking what they hold, loading the parts, and writing them.

A decone folder is a Hugging Face model folder (``config.json``, ``model.safetensors``, tokenizer files) plus the
sentence-transformers modules (``modules.json``, ``1_Pooling``, ``*_Dense``, ``*_Normalize``) where they can express
the encoder, and ``decone.json`` (pooling, dense layers, method, config, training summary). Loading checks the folder
first and reports one line for what is wrong: no weights, pickle-only weights, a config that does not parse, no
tokenizer files or a tokenizer that does not fit the embedding matrix, weights that do not fit the architecture.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from decone.encoder.pooling import ST_ACTIVATION, Dense, pooler_as_dense
from decone import card, decoders, lora
from decone.errors import ConfigError, ModelError

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spiece.model", "sentencepiece.bpe.model",
                   "tokenizer.model", "merges.txt")


def _read_json(path: Path, kind: type):
    """A folder's JSON file as ``kind`` (dict or list); ModelError naming the file where it is missing, unreadable,
    not JSON or not that shape."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: missing (the folder's module list names it)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not isinstance(value, kind):
        raise ModelError(f"{path}: expected a JSON {'object' if kind is dict else 'list'}, got {type(value).__name__}")
    return value


def read_folder_settings(folder: Path) -> tuple[str, dict]:
    """Pooling, dense layers, normalisation and max length from ``decone.json`` or a sentence-transformers folder."""
    settings: dict = {"pooling": "mean", "dense": [], "normalize": False, "max_length": None, "meta": {}, "pooling_set": False}
    model_dir = str(folder)
    decone_json = folder / "decone.json"
    if decone_json.exists():
        info = _read_json(decone_json, dict)
        settings.update(pooling=info.get("pooling", "mean"), dense=info.get("dense", []),
                        normalize=bool(info.get("normalize", False)), max_length=info.get("max_length"), meta=info,
                        pooling_set="pooling" in info, template=info.get("template"), attention=info.get("attention"))
        return model_dir, settings
    modules_json = folder / "modules.json"
    if modules_json.exists():
        modules = _read_json(modules_json, list)
        for i, module in enumerate(modules):
            if not isinstance(module, dict) or not isinstance(module.get("type"), str):
                raise ModelError(f"{modules_json}: entry {i} has no \"type\" (a sentence-transformers module list)")
            kind = module["type"].rsplit(".", 1)[-1]
            sub = folder / module.get("path", "")
            if kind == "Transformer":
                model_dir = str(sub) if module.get("path") else model_dir
            elif kind == "Pooling":
                cfg = _read_json(sub / "config.json", dict)
                mode = cfg.get("pooling_mode")
                if mode is None:
                    mode = "cls" if cfg.get("pooling_mode_cls_token") else "mean" if cfg.get("pooling_mode_mean_tokens") else None
                if mode not in ("cls", "mean"):
                    raise ModelError(f"{sub / 'config.json'}: sentence-transformers pooling {mode!r} is not supported (cls or mean)")
                settings["pooling"] = "cls_before_pooler" if mode == "cls" else "mean"
                settings["pooling_set"] = True
            elif kind == "Dense":
                cfg = _read_json(sub / "config.json", dict)
                if not all(isinstance(cfg.get(k), int) for k in ("in_features", "out_features")):
                    raise ModelError(f"{sub / 'config.json'}: a Dense layer needs integer in_features and out_features")
                act = {v: k for k, v in ST_ACTIVATION.items()}.get(cfg.get("activation_function", ST_ACTIVATION["tanh"]))
                if act is None:
                    raise ModelError(f"{sub / 'config.json'}: unsupported activation {cfg.get('activation_function')!r}")
                settings["dense"].append({"path": module.get("path", ""), "in_features": cfg["in_features"],
                                          "out_features": cfg["out_features"], "activation": act, "bias": cfg.get("bias", True)})
            elif kind == "Normalize":
                settings["normalize"] = True
            else:
                raise ModelError(f"{modules_json}: module type {module['type']!r} is not supported by decone")
        sbert = Path(model_dir) / "sentence_bert_config.json"
        if not sbert.exists():
            sbert = folder / "sentence_bert_config.json"
        if sbert.exists():
            settings["max_length"] = _read_json(sbert, dict).get("max_seq_length")
    return model_dir, settings


def check_weights(folder: Path, allow_pickle: bool) -> None:
    names = {p.name for p in folder.iterdir()}
    if "config.json" not in names:
        raise ModelError(f"{folder}: no config.json: not a Hugging Face model folder")
    if any(n == "model.safetensors" or (n.startswith("model-") and n.endswith(".safetensors")) for n in names):
        return
    if "model.safetensors.index.json" in names:
        return
    pickles = sorted(n for n in names if n.endswith(".bin") or n.endswith(".pt") or n.endswith(".pth"))
    if pickles:
        if allow_pickle:
            return
        raise ModelError(
            f"{folder}: only pickle weights ({', '.join(pickles)}), which can execute code when loaded; "
            "convert them to safetensors, or pass --allow-pickle to load them with torch.load(weights_only=True)"
        )
    raise ModelError(f"{folder}: no model weights (model.safetensors) in the folder")


def default_max_length(tokenizer, config) -> int:
    limits = [512]
    tmax = getattr(tokenizer, "model_max_length", None)
    if tmax and tmax < 100_000:
        limits.append(int(tmax))
    pmax = getattr(config, "max_position_embeddings", None)
    if pmax:
        limits.append(int(pmax) - (2 if config.model_type in ("roberta", "xlm-roberta", "camembert") else 0))
    return min(limits)


def looks_local(source: str) -> bool:
    """A path that cannot be a hub id (``org/name`` or ``name``) is a missing local path."""
    return source.startswith((".", "/", "~")) or source.count("/") > 1 or os.sep in source.replace("/", "") or source.endswith("/")


def quiet_transformers() -> None:
    """Loading a masked-LM checkpoint as an encoder drops the MLM head by design; don't print a report about it."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n")


def replace_folder_contents(src: Path, dst: Path) -> None:
    """Move every entry of ``src`` into ``dst`` with renames (each atomic), replacing what is there."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in src.iterdir():
        target = dst / entry.name
        if target.is_dir() and not target.is_symlink():
            old = dst / f".{entry.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(target, old)
            os.replace(entry, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(entry, target)


def version() -> str:
    from decone import __version__  # here: decone/__init__ imports this package

    return __version__


def position_limit(config) -> int | None:
    """The longest input the model's position embeddings allow (RoBERTa reserves two for the padding offset)."""
    limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if limit is not None and getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        limit -= 2
    return limit


def check_max_length(config, max_length: int) -> None:
    limit = position_limit(config)
    if max_length < 2:
        raise ConfigError(f"max_length must be at least 2 tokens, got {max_length}")
    if limit is not None and max_length > limit:
        raise ConfigError(f"max_length {max_length} exceeds the model's position limit {limit} (max_position_embeddings)")


def check_architecture(config, source: str) -> None:
    """Bidirectional encoders (BERT, RoBERTa, MiniLM, ...) and decoder-only LMs (GPT-2, Llama, Mistral, Qwen, Gemma)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    if decoders.is_decoder_config(config):
        return
    model_type = getattr(config, "model_type", "?")
    if getattr(config, "is_encoder_decoder", False) or getattr(config, "is_decoder", False) or model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        raise ModelError(f"{source}: architecture {model_type!r} is neither a bidirectional encoder (BERT, RoBERTa, "
                         "MiniLM, ...) nor a decoder-only LM (GPT-2, Llama, Qwen, ...)")


def check_tokenizer_files(folder: Path, source: str) -> None:
    """A local model folder must hold its tokenizer: without it transformers builds a near-empty one silently."""
    if not any((folder / name).exists() for name in TOKENIZER_FILES):
        raise ModelError(f"{source}: no tokenizer files in {folder} (expected one of {', '.join(TOKENIZER_FILES[:4])}, ...)")


def check_tokenizer(tokenizer, config, source: str) -> None:
    """The tokenizer must fit the embedding matrix: no id past its rows, and not a handful of tokens for many rows."""
    size, rows = len(tokenizer), getattr(config, "vocab_size", None)
    if rows is None:
        return
    if size > rows:
        raise ModelError(f"{source}: the tokenizer has {size} tokens but the embedding matrix only {rows} rows")
    if size < rows // 2:
        raise ModelError(f"{source}: the tokenizer has only {size} tokens for an embedding matrix of {rows} rows "
                         "(missing or wrong tokenizer files?)")


def check_loading_info(info: dict, source: str) -> list[str]:
    """Weights that do not fit the architecture: missing encoder weights are an error (they would be random);
    unexpected ones a warning (a checkpoint's task head, such as an MLM head, is dropped on purpose)."""
    missing = [k for k in info.get("missing_keys", []) if not k.startswith("pooler.")]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ModelError(f"{source}: the weights lack {', '.join(sorted(missing)[:3])}{more}; they do not fit the architecture in config.json")
    heads = ("cls.", "lm_head", "mlm", "predictions", "generator", "discriminator")
    unexpected = [k for k in info.get("unexpected_keys", []) if not any(h in k for h in heads)]
    return [f"{source}: ignored {len(unexpected)} weights the architecture does not use ({', '.join(sorted(unexpected)[:3])})"] \
        if unexpected else []


def apply_default_modes(folder: Path) -> None:
    """Files 0644 and folders 0755 under the process umask (temporary folders start as 0700)."""
    umask = os.umask(0)
    os.umask(umask)
    for root, dirs, files in os.walk(folder):
        os.chmod(root, 0o777 & ~umask)
        for name in files:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, 0o666 & ~umask)
        for name in dirs:
            os.chmod(os.path.join(root, name), 0o777 & ~umask)



def write_folder(encoder, folder: Path, meta: dict, lora_save: str = "merged") -> list[str]:
    """Write ``encoder`` into an empty ``folder``. Returns warnings (a pooling sentence-transformers cannot express).
    A LoRA model is written with its adapters merged in, or (``lora_save="adapter"``) as the adapter alone with a
    pointer to its base (:func:`decone.lora.save_adapter_folder`)."""
    warnings: list[str] = []
    if lora_save == "adapter":
        lora.save_adapter_folder(encoder.model, folder)
        meta = {**meta, "lora": {"saved": "adapter", "base": lora.base_reference(encoder.model)}}
    else:
        lora.save_pretrained(encoder.model, folder, safe_serialization=True)  # LoRA adapters merged in, if any
    encoder.tokenizer.save_pretrained(folder)
    bidirectional = decoders.is_bidirectional(encoder.model)
    hidden = int(encoder.model.config.hidden_size)
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"}]
    st_dense: list[Dense] = []
    st_ok = encoder.pooling_module.sentence_transformers_mode is not None and not bidirectional
    if encoder.pooling == "cls" and getattr(encoder.model, "pooler", None) is not None:
        pooler = pooler_as_dense(encoder.model.pooler, hidden)
        st_ok = st_ok and pooler is not None
        st_dense = [pooler] if pooler is not None else []
    if st_ok and encoder.pooling_module.save(folder, hidden):
        modules.append({"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"})
    else:
        st_ok = False
        warnings.append(
            ("a decoder switched to bidirectional attention" if bidirectional else f"pooling {encoder.pooling!r}") +
            " cannot be expressed in sentence-transformers: no modules.json is written, "
            "so SentenceTransformer(path) would NOT reproduce these embeddings; load it with decone.Encoder.load "
            "(or transformers.AutoModel for the raw transformer)"
        )
    dense_specs = []
    for layer in [*st_dense, *encoder.dense]:
        idx = len(modules)
        sub = f"{idx}_Dense"
        (folder / sub).mkdir()
        write_json(folder / sub / "config.json", layer.st_config())
        save_file({k: v.detach().cpu().contiguous() for k, v in layer.state_dict().items()}, folder / sub / "model.safetensors")
        modules.append({"idx": idx, "name": str(idx), "path": sub, "type": "sentence_transformers.models.Dense"})
        if layer in list(encoder.dense):
            dense_specs.append({"path": sub, "in_features": layer.linear.in_features, "out_features": layer.linear.out_features,
                                "activation": layer.activation_name, "bias": layer.linear.bias is not None})
    if encoder.normalize:
        idx = len(modules)
        (folder / f"{idx}_Normalize").mkdir()
        modules.append({"idx": idx, "name": str(idx), "path": f"{idx}_Normalize", "type": "sentence_transformers.models.Normalize"})
    if st_ok:
        write_json(folder / "modules.json", modules)
        write_json(folder / "sentence_bert_config.json", {"max_seq_length": encoder.max_length, "do_lower_case": False})
        write_json(folder / "config_sentence_transformers.json",
                   {"__version__": {"decone": version()}, "prompts": {}, "default_prompt_name": None, "similarity_fn_name": "cosine"})
    write_json(folder / "decone.json", {
        "decone_version": version(), **encoder.pooling_module.config(), "max_length": encoder.max_length,
        **({"attention": "bidirectional"} if bidirectional else {}),
        "normalize": encoder.normalize, "dense": dense_specs, "sentence_transformers_compatible": st_ok, **meta})
    try:  # the model card (README.md), from the decone.json just written
        card.write_card(folder)
    except Exception as exc:  # a card is documentation: its failure must not lose the model
        warnings.append(f"no model card written ({one_line(exc)})")
    apply_default_modes(folder)
    return warnings


def load_dense(base: Path, specs: list[dict], hidden: int, source: str) -> list[Dense]:
    """The dense layers a folder lists, with their weights (safetensors); the first must take the model's width."""
    if specs and specs[0]["in_features"] != hidden:
        raise ModelError(f"{source}: dense layer expects {specs[0]['in_features']} features, model has {hidden}")
    layers = []
    for spec in specs:
        layer = Dense(spec["in_features"], spec["out_features"], spec["activation"], spec.get("bias", True))
        layer.load_state_dict(load_file(os.path.join(base, spec["path"], "model.safetensors")))
        layers.append(layer)
    return layers


def _adapter_base(folder: Path, source: str) -> str:
    """The base model an adapter folder names (``adapter_config.json``'s ``base_model_name_or_path``)."""
    base = _read_json(folder / "adapter_config.json", dict).get("base_model_name_or_path")
    if not base:
        raise ModelError(f"{source}/adapter_config.json: no base_model_name_or_path: the adapter's base is unknown")
    if looks_local(base) and not Path(base).is_dir():
        raise ModelError(f"{source}: the adapter's base model {base} does not exist (it was moved or deleted)")
    return base


def load_parts(source: str, allow_pickle: bool = False, trust_remote_code: bool = False):
    """The checked parts of a model: ``(model, tokenizer, settings, base)``.

    ``settings`` holds the folder's pooling (and template), dense layer specs, normalisation and max length (from
    ``decone.json``, else ``modules.json``); ``base`` is where the dense layers' folders are.

    Raises:
        ModelError: the path does not exist, has no weights, holds only pickle weights, its config does not parse,
            its tokenizer is missing or does not fit, its weights do not fit, or it is not an encoder.
    """
    from transformers import AutoConfig, AutoModel, AutoTokenizer  # start-up cost: only when loading

    quiet_transformers()
    local = Path(source)
    settings: dict = {"pooling": "mean", "dense": [], "normalize": False, "max_length": None, "pooling_set": False}
    model_dir = source
    adapter = None
    if local.exists():
        if not local.is_dir():
            raise ModelError(f"{source}: a model must be a folder, not a file")
        model_dir, settings = read_folder_settings(local)
        if lora.is_adapter_folder(model_dir):  # a LoRA adapter saved with --lora-save adapter: load its base
            adapter, model_dir = model_dir, _adapter_base(Path(model_dir), source)
        if Path(model_dir).is_dir():  # not for an adapter whose base is a hub name
            check_weights(Path(model_dir), allow_pickle)
    elif looks_local(source):
        raise ModelError(f"{source}: model path does not exist")
    try:
        config = AutoConfig.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    except Exception as exc:  # hub unreachable, bad config.json, ...
        raise ModelError(f"{source}: cannot load the model config ({one_line(exc)})") from None
    check_architecture(config, source)
    tokenizer_dir = adapter or model_dir
    if local.exists():
        check_tokenizer_files(Path(tokenizer_dir), source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir, trust_remote_code=trust_remote_code)
        model, info = AutoModel.from_pretrained(model_dir, config=config, trust_remote_code=trust_remote_code,
                                                use_safetensors=None if allow_pickle else True, output_loading_info=True)
        if adapter is not None:
            model = lora.merge_lora(lora.load_adapter(model, adapter))
            model.decone_merged_adapter = str(adapter)  # not the base any more: see lora.save_adapter_folder
    except Exception as exc:
        raise ModelError(f"{source}: cannot load the model weights or tokenizer ({one_line(exc)})") from None
    check_tokenizer(tokenizer, config, source)
    settings["warnings"] = check_loading_info(info, source)
    if decoders.is_decoder_config(config):
        try:
            note = decoders.ensure_pad_token(tokenizer, model.config)
        except ValueError as exc:
            raise ModelError(f"{source}: {exc}") from None
        settings["warnings"] += [note] if note else []
        if settings.get("attention") == "bidirectional":
            decoders.enable_bidirectional(model)
    if tokenizer.pad_token_id is None:
        raise ModelError(f"{source}: the tokenizer has no padding token")
    return model, tokenizer, settings, source if local.exists() else model_dir
