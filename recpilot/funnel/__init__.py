"""Funnel layer: recall channels, coarse scorers, fine rerankers and their training.

Each stage has one contract and a registry (``recall``, ``scorers``, ``fine_rank``); the
agent plans, runs and explains the stages through those registries only. Imports only
the config, llm and data layers.
"""
