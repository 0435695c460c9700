"""Prompt templates as versioned files, loaded by name.

Each prompt is ``recpilot/prompts/<name>.v<N>.md``, a plain :meth:`str.format`
template (literal braces are doubled). A new wording gets a new version number, so
traces and evaluations can say which prompt produced a result.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_FILE = re.compile(r"^(?P<name>[a-z0-9_]+)\.v(?P<version>\d+)\.md$")
_VERSIONED = re.compile(r"^(?P<name>[a-z0-9_]+)\.v(?P<version>\d+)$")


def available_prompts() -> dict[str, list[int]]:
    """All prompt names with their versions.

    Returns:
        ``{name: [versions ascending]}``, e.g. ``{"fine_listwise": [1]}``.
    """
    found: dict[str, list[int]] = {}
    for entry in resources.files(__package__).iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.setdefault(match["name"], []).append(int(match["version"]))
    return {name: sorted(versions) for name, versions in sorted(found.items())}


@cache
def load_prompt(name: str) -> str:
    """Load a prompt template by name.

    Args:
        name: ``"fine_listwise"`` (the highest version) or ``"fine_listwise.v1"`` (that
            version).

    Returns:
        The template text, for ``str.format``.

    Raises:
        KeyError: no such prompt or version (the message lists the available ones).
    """
    match = _VERSIONED.match(name)
    base, version = (match["name"], int(match["version"])) if match else (name, None)
    versions = available_prompts().get(base, [])
    if not versions or (version is not None and version not in versions):
        known = ", ".join(f"{n}.v{v}" for n, vs in available_prompts().items() for v in vs)
        raise KeyError(f"unknown prompt {name!r}; available: {known or 'none'}")
    chosen = version if version is not None else versions[-1]
    return (resources.files(__package__) / f"{base}.v{chosen}.md").read_text(encoding="utf-8")
