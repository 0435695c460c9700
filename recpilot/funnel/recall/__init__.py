"""Recall (candidate generation): registered channels, run and merged with provenance.

The contract and registry are in :mod:`~recpilot.funnel.recall.base`; each channel is
one module here (``semantic``, ``i2i``, ``collaborative``, ``popularity``, ordered by their
``plan_order``). Every module of this package is imported below, so a new channel is one
file that decorates its class with ``@register``; nothing else is edited.
:class:`~recpilot.funnel.recall.stage.Recall` runs the planned channels and merges their hits.
"""

import importlib
import pkgutil

from recpilot.funnel.recall.base import (
    Hit,
    RecallChannel,
    RecallRequest,
    RecallResources,
    RecallSignals,
    by_explain_order,
    channel_names,
    channels,
    get_channel,
    register,
    registered,
    unregister,
    usable_channels,
    user_state_channels,
)
from recpilot.funnel.recall.stage import Recall, RecallCandidate

_NOT_CHANNELS = {"base", "stage"}
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module not in _NOT_CHANNELS and not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")  # each channel module registers itself

__all__ = [
    "Hit",
    "Recall",
    "RecallCandidate",
    "RecallChannel",
    "RecallRequest",
    "RecallResources",
    "RecallSignals",
    "by_explain_order",
    "channel_names",
    "channels",
    "get_channel",
    "register",
    "registered",
    "unregister",
    "usable_channels",
    "user_state_channels",
]
