"""recpilot: an LLM agent (LangGraph) that controls a recommender funnel."""

__version__ = "0.1.0"
