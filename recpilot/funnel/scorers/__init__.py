"""Coarse scorers: the classic trained models that score recalled candidates."""
