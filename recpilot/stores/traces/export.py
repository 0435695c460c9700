"""Optional export of run traces to OpenTelemetry (off by default).

With ``RECPILOT_TRACE_OTEL=true`` each stored :class:`RunTrace` is also sent as spans: one
``recpilot.run`` span, a child span per node with its real start and end time, and a
child span per LLM call (prompt/response as attributes, cut to 4,000 characters). The
exporter is OTLP over gRPC, configured by the standard ``OTEL_EXPORTER_OTLP_*`` variables.

LangSmith needs nothing here: LangGraph traces itself to LangSmith when
``LANGSMITH_TRACING=true`` and ``LANGSMITH_API_KEY`` are set.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from recpilot.config.settings import Settings
from recpilot.stores.traces.recorder import RunTrace

Exporter = Callable[[RunTrace], None]
MAX_ATTR = 4000


def _ns(started_at: str, offset_ms: float) -> int:
    base = datetime.fromisoformat(started_at).timestamp()
    return int((base + offset_ms / 1000) * 1e9)


def export_otel(trace: RunTrace, tracer: Any) -> None:
    """Emit ``trace`` as spans through an OpenTelemetry ``tracer``.

    Args:
        trace: the finished run.
        tracer: an ``opentelemetry.trace.Tracer`` (from any ``TracerProvider``).
    """
    from opentelemetry import trace as otel

    root = tracer.start_span(
        "recpilot.run",
        start_time=_ns(trace.started_at, 0),
        attributes={
            "recpilot.run_id": trace.run_id,
            "recpilot.user_id": trace.user_id or "",
            "recpilot.thread_id": trace.thread_id or "",
            "recpilot.message": (trace.message or "")[:MAX_ATTR],
            "recpilot.items": [i["item_id"] for i in trace.items],
            "recpilot.fallbacks": trace.fallbacks,
            "recpilot.dropped_ids": trace.dropped_ids,
        },
    )
    ctx = otel.set_span_in_context(root)
    for node in trace.nodes:
        span = tracer.start_span(
            f"recpilot.node.{node.node}",
            context=ctx,
            start_time=_ns(trace.started_at, node.start_ms),
            attributes={
                "recpilot.node": node.node,
                "recpilot.ms": node.ms,
                "recpilot.fell_back": node.fell_back,
                "recpilot.note": node.note[:MAX_ATTR],
                "recpilot.candidates": [c.item_id for c in (node.candidates or [])][:50],
                "recpilot.outputs": json.dumps(node.outputs)[:MAX_ATTR],
            },
        )
        node_ctx = otel.set_span_in_context(span)
        offset = node.start_ms
        for call in node.llm_calls:
            llm_span = tracer.start_span(
                f"llm.{call.purpose}",
                context=node_ctx,
                start_time=_ns(trace.started_at, offset),
                attributes={
                    "gen_ai.usage.input_tokens": call.prompt_tokens,
                    "gen_ai.usage.output_tokens": call.completion_tokens,
                    "recpilot.llm.retries": call.retries,
                    "recpilot.llm.prompt": json.dumps(call.messages)[:MAX_ATTR],
                    "recpilot.llm.response": call.response[:MAX_ATTR],
                    "recpilot.llm.error": call.error or "",
                },
            )
            offset += call.latency_ms
            llm_span.end(end_time=_ns(trace.started_at, min(offset, node.end_ms)))
        span.end(end_time=_ns(trace.started_at, node.end_ms))
    if trace.error:
        root.set_status(otel.Status(otel.StatusCode.ERROR, trace.error))
    root.end(end_time=_ns(trace.started_at, trace.total_ms))


def exporters_from(settings: Settings) -> list[Exporter]:
    """The exporters the settings switch on (empty by default).

    Raises:
        ImportError: ``trace_otel`` is on but the OTLP exporter package is missing.
    """
    out: list[Exporter] = []
    if settings.trace_otel:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": "recpilot"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        tracer = provider.get_tracer("recpilot")
        out.append(lambda trace: export_otel(trace, tracer))
    return out
