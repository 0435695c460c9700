"""Content understanding: what the LLM writes *about items*, always checked against data.

- :mod:`.facts` — an item's facts (catalogue row, its text, rating statistics) and the
  code fact-check that every generated text must pass;
- :mod:`.grounded` — ``describe`` (an item description) and ``promote`` (short ad copy
  for an audience), regenerated or dropped when the fact-check fails;
- :mod:`.enrich` — the batch job that writes a description and keyword tags for every
  item (cached per item and model, resumable), which item embeddings then read.

Layer: next to ``funnel`` and ``stores`` (imports config, llm and data only).
"""
