"""Recall (candidate generation): registered channels, run and merged with provenance.

The contract and registry are in :mod:`~recpilot.funnel.recall.base`; each channel is
one module here (``semantic``, ``i2i``, ``collaborative``, ``popularity``, ordered by their
``plan_order``). :class:`~recpilot.funnel.recall.stage.Recall`
runs the planned channels and merges their hits.
"""

from recpilot.funnel.recall import collaborative, i2i, popularity, semantic  # noqa: F401
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
