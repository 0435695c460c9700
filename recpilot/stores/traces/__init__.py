"""Run traces: what each graph run did, recorded in the data directory.

``recorder`` turns a graph run's stream into a :class:`~recpilot.stores.traces.recorder.RunTrace`,
``store`` keeps them in ``home/traces.sqlite``, ``export`` optionally sends them to
OpenTelemetry. The ``recpilot trace list|show`` commands live in ``recpilot.cli.traces``.
"""
