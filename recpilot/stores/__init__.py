"""Stores layer: long-term profiles, conversation checkpoints, feedback rows and run traces.

Imports only the config, llm and data layers.
"""
