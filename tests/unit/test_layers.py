"""The layer contract: every module of ``recpilot`` imports only downward.

    config (settings, prompts) → llm → data → funnel | stores | content → agent → service
    → evals → cli

``funnel``, ``stores`` and ``content`` are one level and must not import each other. A module may
import anything in its own layer and any layer below; every ``import`` statement counts,
including the ones inside functions (a deferred import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "recpilot"

# (layer, rank, module prefixes); the longest matching prefix decides a module's layer.
LAYERS: list[tuple[str, int, tuple[str, ...]]] = [
    ("config", 0, ("recpilot", "recpilot.config", "recpilot.prompts")),
    ("llm", 1, ("recpilot.llm",)),
    ("data", 2, ("recpilot.data",)),
    ("funnel", 3, ("recpilot.funnel",)),
    ("stores", 3, ("recpilot.stores",)),
    ("content", 3, ("recpilot.content",)),
    ("agent", 4, ("recpilot.agent",)),
    ("service", 5, ("recpilot.service",)),
    ("evals", 6, ("recpilot.evals",)),
    ("cli", 7, ("recpilot.cli",)),
]
# ``recpilot.agent.cli`` is the old home of the command line, kept as a re-export of
# ``recpilot.cli.main`` (``python -m recpilot.agent.cli`` still works): a CLI module.
TRANSITIONAL_CLI = ("recpilot.agent.cli",)


def layer_of(module: str) -> tuple[str, int]:
    """``(layer name, rank)`` of a dotted module name inside ``recpilot``."""
    best: tuple[int, str, int] | None = None
    for name, rank, prefixes in LAYERS:
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[0]:
                    best = (len(prefix), name, rank)
    assert best is not None, f"{module} is in no layer"
    if module in TRANSITIONAL_CLI:
        return "cli", 7
    return best[1], best[2]


def module_name(path: Path) -> str:
    """Dotted module name of a file under the package."""
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    """``(line, imported recpilot module)`` for every import statement in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # ``from recpilot import service`` / ``from .. import cli`` import a module:
            # judge the module named, not the package it is taken from
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((node.lineno, sub if is_module(sub) else target))
    return [(line, t) for line, t in found if t == "recpilot" or t.startswith("recpilot.")]


def is_module(dotted: str) -> bool:
    """True when ``dotted`` (``recpilot.x.y``) is a module or package of this project."""
    if not dotted.startswith("recpilot."):
        return False
    path = PACKAGE.joinpath(*dotted.split(".")[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def all_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def violations() -> list[str]:
    out = []
    for path in all_modules():
        module = module_name(path)
        src_layer, src_rank = layer_of(module)
        for line, target in imports_of(path, module):
            dst_layer, dst_rank = layer_of(target)
            if dst_layer == src_layer or dst_rank < src_rank:
                continue
            out.append(f"{module}:{line} ({src_layer}) imports {target} ({dst_layer})")
    return out


def test_every_module_imports_only_downward():
    assert violations() == []


def test_every_module_belongs_to_a_layer():
    names = {layer_of(module_name(p))[0] for p in all_modules()}
    assert names <= {name for name, _, _ in LAYERS}
    assert {"config", "llm", "data", "funnel", "stores", "agent", "cli"} <= names


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [
        ("recpilot.agent.graph", "recpilot.funnel.recall", True),
        ("recpilot.funnel.recall", "recpilot.agent.state", False),
        ("recpilot.funnel.recall", "recpilot.stores.profiles", False),  # siblings
        ("recpilot.stores.profiles", "recpilot.funnel.recall", False),
        ("recpilot.content.enrich", "recpilot.funnel.recall", False),
        ("recpilot.agent.graph", "recpilot.content.grounded", True),
        ("recpilot.cli.traces", "recpilot.agent.runner", True),
    ],
)
def test_the_rule_itself(source, target, allowed):
    (s_layer, s_rank), (t_layer, t_rank) = layer_of(source), layer_of(target)
    assert (s_layer == t_layer or t_rank < s_rank) is allowed


def test_imports_of_names_the_module_a_from_import_takes(tmp_path):
    """``from recpilot import service`` and ``from .. import cli`` are judged as imports of
    ``recpilot.service`` and ``recpilot.cli``, not of the root package."""
    funnel = PACKAGE / "funnel" / "coarse_rank.py"
    fake = tmp_path / "coarse_rank.py"
    fake.write_text("from recpilot import service\nfrom .. import cli\nfrom . import fine_rank\n")
    targets = [t for _, t in imports_of(fake, module_name(funnel))]
    assert targets == ["recpilot.service", "recpilot.cli", "recpilot.funnel.fine_rank"]
