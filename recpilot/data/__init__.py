"""Data layer: the catalogue, dataset ingest and meta, item-text embeddings and the item index.

Imports only ``recpilot.config`` and ``recpilot.llm`` (see ``tests/unit/test_layers.py``).
"""
