"""Publish a model folder to the Hugging Face Hub.

``push(folder, repo_id)`` writes the model card (``README.md``, :mod:`decone.card`) if the folder has none, creates
the repository (``exist_ok``) and uploads the folder with ``huggingface_hub.HfApi.upload_folder``, leaving out the
training checkpoint (``checkpoint/``: optimizer state), TensorBoard event files (``runs/``) and hidden or temporary
files. ``dry_run=True`` lists the files that would go, touching neither the network nor the token.

Every failure is one line (:class:`~decone.errors.DeconeError`): offline mode (``HF_HUB_OFFLINE``), no token, no
network, a refused repository. Nothing is printed as a traceback.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from decone.errors import ConfigError, DeconeError, ModelError

#: never uploaded: training state, TensorBoard logs, temporary and hidden files
IGNORE_PATTERNS = ["checkpoint/*", "checkpoint/**", "runs/*", "runs/**", ".*", "**/.*", "*.tmp", "**/*.tmp"]
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_TRUE = {"1", "true", "yes", "on"}


def upload_files(folder: str | os.PathLike) -> list[str]:
    """The files ``push`` uploads, relative to ``folder``, sorted."""
    folder = Path(folder)
    out = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(folder).as_posix()
        parts = rel.split("/")
        if parts[0] in ("checkpoint", "runs") or any(p.startswith(".") for p in parts) or rel.endswith(".tmp"):
            continue
        out.append(rel)
    return out


def check_folder(folder: str | os.PathLike) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: model folder does not exist")
    if not (folder / "config.json").is_file():
        raise ModelError(f"{folder}: no config.json: not a model folder")
    return folder


def check_repo_id(repo_id: str) -> str:
    if not _REPO_ID.match(repo_id or "") or "--" in repo_id or ".." in repo_id:
        raise ConfigError(f"repo id {repo_id!r}: expected 'name' or 'user/name' (letters, digits, '-', '_', '.')")
    return repo_id


def offline() -> bool:
    """True where ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) asks for no network."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return True
    return os.environ.get("TRANSFORMERS_OFFLINE", "").strip().lower() in _TRUE


def push(folder: str | os.PathLike, repo_id: str, private: bool = False, dry_run: bool = False,
         token: str | None = None, commit_message: str | None = None, write_card: bool = True,
         endpoint: str | None = None) -> list[str]:
    """Upload a model folder to ``repo_id`` on the Hugging Face Hub; returns the uploaded files (relative paths).

    Args:
        folder: a decone or sentence-transformers model folder.
        repo_id: ``user/name`` or ``org/name`` (created if missing, ``private`` as asked).
        private: create the repository private.
        dry_run: only list the files (no network, no token needed).
        token: a Hub token; default ``HF_TOKEN`` or the one saved by ``hf auth login``.
        write_card: write ``README.md`` from ``decone.json`` first where the folder has none.
        endpoint: another Hub endpoint (default ``HF_ENDPOINT`` or huggingface.co).

    Raises:
        DeconeError: offline, no token, no network, or the Hub refused the upload (one line).
    """
    folder = check_folder(folder)
    check_repo_id(repo_id)
    files = upload_files(folder)
    card_missing = write_card and "README.md" not in files and (folder / "decone.json").is_file()
    if dry_run:
        return sorted([*files, "README.md"]) if card_missing else files
    if offline():
        raise DeconeError("cannot push to the Hugging Face Hub: offline mode (HF_HUB_OFFLINE=1) allows no network; "
                          "unset it on a machine with internet")
    try:
        import huggingface_hub
        from huggingface_hub import HfApi
    except ImportError:
        raise DeconeError("pushing needs huggingface_hub: pip install 'decone[export]'") from None
    token = token or os.environ.get("HF_TOKEN") or huggingface_hub.get_token()
    if not token:
        raise DeconeError("cannot push to the Hugging Face Hub: no token; run `hf auth login` or set HF_TOKEN "
                          "(a token with write access)")
    if card_missing:
        from decone.card import write_card as write_model_card

        write_model_card(folder, repo_id=repo_id)
        files = upload_files(folder)
    api = HfApi(token=token, endpoint=endpoint)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(repo_id=repo_id, folder_path=str(folder), repo_type="model", ignore_patterns=IGNORE_PATTERNS,
                          commit_message=commit_message or f"Upload {folder.name} with decone")
    except Exception as exc:  # noqa: BLE001 - every Hub or network failure becomes one line
        raise DeconeError(f"push to {repo_id} failed: {describe_hub_error(exc)}") from None
    return files


def describe_hub_error(exc: BaseException) -> str:
    """One line for a Hub failure: offline, no network, bad token, no permission, or the Hub's own message."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    text = " ".join(str(exc).split())[:200]
    if "OfflineModeIsEnabled" in names:
        return "offline mode (HF_HUB_OFFLINE=1) allows no network"
    if names & {"ConnectError", "ConnectionError", "ConnectTimeout", "Timeout", "TimeoutException", "NewConnectionError",
                "MaxRetryError", "gaierror"} or "Name or service not known" in text or "Failed to resolve" in text:
        return f"no network: cannot reach the Hugging Face Hub ({type(exc).__name__})"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 401:
        return "the token was refused (401): run `hf auth login` with a valid token"
    if status == 403:
        return "no write access to this repository (403): use a write token, or a namespace you own"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
