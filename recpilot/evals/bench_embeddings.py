"""Benchmarks of recall's building blocks: embedding throughput and Chroma query latency.

Run ``python -m recpilot.evals.bench_embeddings [ML100K_DIR]`` to print both for the 1,682
MovieLens-100K item texts (index built in a temporary folder).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from recpilot.data.embeddings import Encoder
    from recpilot.data.item_index import ItemIndex


def measure_throughput(encoder: Encoder, texts: list[str], warmup: int = 32) -> dict[str, Any]:
    """Time one ``encoder.encode(texts)`` call (wall clock) after a small warm-up.

    Args:
        encoder: Any :class:`~recpilot.data.embeddings.Encoder`.
        texts: The texts to embed (all in one call, so the encoder batches them itself).
        warmup: Texts encoded first and not timed (session/graph initialisation).

    Returns:
        ``{"items": int, "seconds": float, "cpu_seconds": float, "items_per_s": float,
        "dim": int, "max_norm_error": float}``: wall-clock and process CPU seconds (all
        threads; ``cpu_seconds / seconds`` well below the thread count means other processes
        competed for the cores), items per wall-clock second, vector width, and
        ``max |‖row‖ - 1|`` as a sanity check.

    Raises:
        ValueError: ``texts`` is empty.
    """
    if not texts:
        raise ValueError("texts is empty")
    encoder.encode(texts[:warmup])
    t0, c0 = time.perf_counter(), time.process_time()
    vecs = encoder.encode(texts)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "items": len(texts),
        "seconds": round(seconds, 4),
        "cpu_seconds": round(cpu, 4),
        "items_per_s": round(len(texts) / seconds, 1),
        "dim": int(vecs.shape[1]),
        "max_norm_error": float(np.abs(np.linalg.norm(vecs, axis=1) - 1.0).max()),
    }


def measure_query_latency(
    index: ItemIndex, queries: np.ndarray, n: int = 100, warmup: int = 5
) -> dict[str, Any]:
    """Latency of ``index.query`` with one vector per call, in milliseconds.

    Args:
        index: A built :class:`~recpilot.data.item_index.ItemIndex`.
        queries: Shape ``(q, dim)``; each row is one timed call.
        n: Neighbours requested per call.
        warmup: Untimed calls first (the first rows, reused).

    Returns:
        ``{"calls": int, "n": int, "p50_ms": float, "p95_ms": float, "mean_ms": float}``.
    """
    for row in queries[:warmup]:
        index.query(row[None, :], n)
    times = []
    for row in queries:
        t0 = time.perf_counter()
        index.query(row[None, :], n)
        times.append((time.perf_counter() - t0) * 1000)
    ms = np.asarray(times)
    return {
        "calls": len(ms),
        "n": n,
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "mean_ms": round(float(ms.mean()), 3),
    }


def ml100k_item_texts(ml100k_dir: Path) -> tuple[list[str], list[str]]:
    """Item ids and texts ``"Title (Year). Genres: A, B."`` from ml-100k ``u.item``/``u.genre``.

    ``u.item`` is latin-1 and ``|``-separated; its last 19 fields are genre flags in the
    order of ``u.genre``. The title already carries the year in ml-100k, so it is used as is.

    Raises:
        FileNotFoundError: the files are missing.
    """
    genres = [
        line.split("|")[0]
        for line in (ml100k_dir / "u.genre").read_text(encoding="latin-1").splitlines()
        if line.strip()
    ]
    ids, texts = [], []
    for line in (ml100k_dir / "u.item").read_text(encoding="latin-1").splitlines():
        if not line.strip():
            continue
        f = line.split("|")
        flags = f[-len(genres) :]
        names = [g for g, flag in zip(genres, flags, strict=True) if flag == "1"]
        ids.append(f[0])
        texts.append(f"{f[1]}. Genres: {', '.join(names) or 'unknown'}.")
    return ids, texts


def _main(ml100k_dir: Path) -> None:
    from recpilot.config.settings import Settings
    from recpilot.data.embeddings import MiniLMEncoder
    from recpilot.data.item_index import ItemIndex

    ids, texts = ml100k_item_texts(ml100k_dir)
    encoder = MiniLMEncoder()
    result: dict[str, Any] = {"throughput": measure_throughput(encoder, texts)}
    with tempfile.TemporaryDirectory() as home:
        index = ItemIndex.open(Settings(home=Path(home), _env_file=None))
        index.build(ids, texts, encoder)
        queries = index.vectors(ids[:200])
        result["query"] = measure_query_latency(index, queries, n=100)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    _main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/ml-100k"))
