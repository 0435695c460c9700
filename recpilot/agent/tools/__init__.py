"""The agent's tools and their registry (a new tool = one module that calls ``register``).

:func:`agent_tools` lists them in prompt order; :func:`get_tool` finds one by name;
:func:`langchain_tools` gives them as LangChain tools (native ``tool_calls``);
:func:`calls_schema` gives the JSON schema of a whole plan (the JSON-schema path).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from langchain_core.tools import StructuredTool

from recpilot.agent.tools.base import AgentTool, FunnelRequest, ToolContext, ToolOutcome

_TOOLS: dict[str, AgentTool] = {}
MAX_CALLS = 3  # tool calls per turn (a short plan)


def register(tool_cls: type[AgentTool]) -> type[AgentTool]:
    """Class decorator: add one instance of ``tool_cls`` to the registry.

    Raises:
        ValueError: a tool of the same name is already registered.
    """
    if tool_cls.name in _TOOLS:
        raise ValueError(f"agent tool {tool_cls.name!r} registered twice")
    _TOOLS[tool_cls.name] = tool_cls()
    return tool_cls


PROMPT_ORDER = ("recommend", "refine", "item_info", "compare", "explain", "feedback",
                "profile", "reply")  # fmt: skip
"""The order tools are listed to the LLM (a tool not named here comes after them)."""


def agent_tools() -> list[AgentTool]:
    """All registered tools, in prompt order (``PROMPT_ORDER``, then by name)."""
    rank = {name: i for i, name in enumerate(PROMPT_ORDER)}
    return sorted(_TOOLS.values(), key=lambda t: (rank.get(t.name, len(rank)), t.name))


def tool_names() -> list[str]:
    """Names of the registered tools, in prompt order."""
    return [t.name for t in agent_tools()]


def get_tool(name: str) -> AgentTool | None:
    """The tool called ``name``, or None."""
    return _TOOLS.get(name)


def langchain_tools() -> list[StructuredTool]:
    """Every tool as a LangChain ``StructuredTool`` (for ``bind_tools``)."""
    return [t.as_langchain_tool() for t in agent_tools()]


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema without titles and with ``$defs`` inlined (grammar-friendly)."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(defs[node["$ref"].split("/")[-1]])
            return {k: walk(v) for k, v in node.items()
                    if k not in ("title", "$defs", "default", "description")}  # fmt: skip
        if isinstance(node, list):
            return [walk(n) for n in node]
        return node

    return walk(schema)


def args_json_schema(tool: AgentTool, categories: list[str] | None = None) -> dict[str, Any]:
    """The JSON schema of ``tool``'s arguments; with ``categories``, every
    ``*_categories`` field is an enum of them (the LLM cannot name an unknown one)."""
    schema = _inline(tool.args_schema.model_json_schema())
    if categories:
        for name, prop in schema.get("properties", {}).items():
            if name.endswith("_categories") and prop.get("type") == "array":
                prop["items"] = {"type": "string", "enum": categories}
    return schema


def calls_schema(categories: list[str] | None = None) -> dict[str, Any]:
    """JSON schema of a plan: ``{"calls": [{"tool": name, "args": {...}}, ...]}``, one
    ``anyOf`` branch per tool (its name a ``const``, its arguments its schema)."""
    branches = [
        {
            "type": "object",
            "properties": {"tool": {"const": t.name}, "args": args_json_schema(t, categories)},
            "required": ["tool", "args"],
        }
        for t in agent_tools()
    ]
    return {
        "type": "object",
        "properties": {
            "calls": {"type": "array", "items": {"anyOf": branches}, "minItems": 1,
                      "maxItems": MAX_CALLS},
        },
        "required": ["calls"],
    }  # fmt: skip


# every module of this package but ``base`` is a tool that registers itself: a new tool
# is one file
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module != "base" and not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")

__all__ = [
    "AgentTool", "FunnelRequest", "ToolContext", "ToolOutcome", "agent_tools", "calls_schema",
    "get_tool", "langchain_tools", "register", "tool_names",
]  # fmt: skip
