"""Compare two ``recpilot eval`` results.json files field by field (every number but time).

Used to prove that a change to the code left every metric unchanged::

    python -m recpilot.evals.compare_results BEFORE/results.json AFTER/results.json

Every leaf value of both files is compared by its path (``results.full.popularity.
NDCG@10``, ``_per_user.17.rank``...), except what measures time or names the run:
``created_at``, ``command``, ``git``, ``timing_s``, the output folder, ``jobs`` (worker
processes: the numbers do not depend on them), and any key ending in ``_ms`` or named
``wall_ms``/``stage_ms_p50``/``llm_ms`` (wall times). Exit
status 0 when nothing differs, 1 otherwise (the differences are printed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SKIPPED_KEYS = {
    "created_at", "command", "git", "timing_s", "out_dir", "stage_ms_p50", "llm_ms", "jobs",
}  # fmt: skip


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """``{dotted path: leaf value}`` of a JSON value, without the skipped (timing) keys."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if key in SKIPPED_KEYS or key.endswith("_ms"):
                continue
            out.update(flatten(item, f"{path}.{key}" if path else str(key)))
    elif isinstance(value, list):
        for k, item in enumerate(value):
            out.update(flatten(item, f"{path}.{k}"))
    else:
        out[path] = value
    return out


def compare(before: dict[str, Any], after: dict[str, Any]) -> tuple[int, list[str]]:
    """``(values compared, differences as lines)`` between two results dicts."""
    a, b = flatten(before), flatten(after)
    paths = sorted(set(a) | set(b))
    gone = "<missing>"
    diffs = [
        f"{p}: {a.get(p, gone)!r} → {b.get(p, gone)!r}"
        for p in paths
        if not _same(a.get(p, gone), b.get(p, gone))
    ]
    return len(paths), diffs


def _same(x: Any, y: Any) -> bool:
    """Equal, counting NaN as equal to NaN."""
    return x == y or (isinstance(x, float) and isinstance(y, float) and x != x and y != y)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the number of values compared and every difference."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("error: usage: python -m recpilot.evals.compare_results A.json B.json",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        before, after = (json.loads(Path(p).read_text(encoding="utf-8")) for p in args)
    except (OSError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n, diffs = compare(before, after)
    for line in diffs:
        print(line)
    print(f"{n} values compared, {len(diffs)} differ")
    return 1 if diffs else 0


if __name__ == "__main__":
    raise SystemExit(main())
