"""The one LLM client: every LLM call in recpilot goes through :class:`LLMClient`.

It wraps a LangChain chat model — ``langchain_openai.ChatOpenAI`` against any
OpenAI-compatible endpoint (the embedded llama-cpp-python server, vLLM, OpenAI), or a
LangChain fake chat model in unit tests — and adds what recpilot needs on top:
``tenacity`` retries on transient failures only, schema-validated JSON output, Yes/No
probabilities from token logprobs, and a record (:class:`LLMCall`) of every call.

Backends differ in two request details, both chosen by ``json_mode``:

- ``"json_object_schema"`` (llama-cpp-python's server): ``response_format`` is
  ``{"type": "json_object", "schema": ...}`` (its OpenAI form answers HTTP 500), and the
  output cap is sent as ``max_tokens`` in the request body (the server ignores
  ``max_completion_tokens``, which is what ``ChatOpenAI`` sends).
- ``"json_schema"`` (OpenAI, vLLM): ``{"type": "json_schema", "json_schema": {...}}`` and
  ``ChatOpenAI``'s own ``max_completion_tokens``.

LLM output is untrusted input: :meth:`LLMClient.json` parses and validates it with
``jsonschema`` and raises :class:`LLMError` rather than returning something invalid.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, Literal

import httpx
import jsonschema
import openai
from langchain_core.exceptions import (
    ModelAPIError,
    ModelConnectionError,
    ModelRateLimitError,
    ModelTimeoutError,
)
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, convert_to_messages
from pydantic import BaseModel, Field
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from recpilot.config.settings import Settings
from recpilot.llm import calls as call_log
from recpilot.llm.errors import LLMBusyError, LLMConfigError, LLMError
from recpilot.llm.limiter import LLMLimiter, limiter_from_settings
from recpilot.llm.server import death_report

_log = logging.getLogger(__name__)
# llama-cpp-python's server (0.3.36) answers OpenAI's json_schema response_format with an
# HTTP 500 whose text contains this.
_REFUSES_JSON_SCHEMA = "Input should be 'text' or 'json_object'"

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": str}
JsonForm = Literal["json_object_schema", "json_schema"]

CALLS_KEPT = 64  # LLMClient.calls: the last calls kept on the client for inspection
YES_TOKENS = frozenset({"yes"})  # compared after strip() and lower()
NO_TOKENS = frozenset({"no"})

_TRANSIENT: tuple[type[BaseException], ...] = (
    openai.APIConnectionError,  # includes APITimeoutError
    openai.RateLimitError,
    openai.InternalServerError,
    ModelConnectionError,
    ModelTimeoutError,
    ModelRateLimitError,
    ModelAPIError,
    httpx.TransportError,
    TimeoutError,
    ConnectionError,
)
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


_CONFIG_STATUS = {401, 403, 404}


def _status(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    return int(code) if isinstance(code, int) else None


def config_error(exc: BaseException, base_url: str | None, model: str) -> LLMConfigError | None:
    """Turn an HTTP 401/403/404 from the endpoint into an :class:`LLMConfigError` with the fix.

    Args:
        exc: the exception a call raised.
        base_url: the endpoint (for the message).
        model: the configured model name.

    Returns:
        The error to raise, or None when ``exc`` is not a configuration fault.
    """
    code = _status(exc)
    if code not in _CONFIG_STATUS:
        return None
    where = base_url or "the LLM endpoint"
    if code in {401, 403}:
        return LLMConfigError(
            f"{where} refused the API key (HTTP {code}); "
            "fix: set RECPILOT_LLM_API_KEY to a key this endpoint accepts"
        )
    return LLMConfigError(
        f"{where} does not serve model {model!r} (HTTP 404); fix: set RECPILOT_LLM_MODEL to a "
        f"model listed by GET {where.rstrip('/')}/models, and check that the base URL ends in /v1"
    )


class LLMCall(BaseModel):
    """Record of one logical LLM call (retries included), successful or not.

    Attributes:
        purpose: caller's label, e.g. ``"plan"``, ``"fine_pointwise"``.
        messages: the chat messages sent, ``[{"role", "content"}]``.
        response: the completion text ("" when the call failed).
        prompt_tokens: prompt tokens as reported by the backend (0 if not reported).
        completion_tokens: generated tokens as reported by the backend.
        latency_ms: wall-clock over all attempts, milliseconds.
        retries: attempts after the first.
        error: ``"ExceptionType: message"`` or the validation failure; None on success.
        extra: call-specific values, e.g. ``{"p_yes": 0.73}``.
    """

    purpose: str
    messages: list[Message]
    response: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    retries: int = 0
    error: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


class Speed(BaseModel):
    """Throughput measured by :meth:`LLMClient.measure_speed`.

    Attributes:
        prompt_tokens: tokens in the long prompt (as the backend reports them).
        prompt_seconds: wall time of the 1-token call on it, seconds.
        prompt_tps: prompt tokens per second (prompt processing).
        generated_tokens: tokens generated in the streamed call.
        first_token_seconds: time to the first streamed token, seconds.
        generation_tps: generated tokens per second, first to last token.
    """

    prompt_tokens: int
    prompt_seconds: float
    prompt_tps: float
    generated_tokens: int
    first_token_seconds: float
    generation_tps: float


_TIMEOUTS: tuple[type[BaseException], ...] = (
    openai.APITimeoutError,
    ModelTimeoutError,
    httpx.TimeoutException,
    TimeoutError,
)


def _is_transient(exc: BaseException) -> bool:
    # A timed-out request keeps the (single-slot) local server busy: retrying it only
    # queues behind itself, so timeouts fail at once (LLMError.unreachable=True).
    if isinstance(exc, _TIMEOUTS):
        return False
    if isinstance(exc, _TRANSIENT):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


def _usage(message: AIMessage) -> tuple[int, int]:
    usage = message.usage_metadata
    if usage:
        return int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    token_usage = message.response_metadata.get("token_usage") or {}
    return int(token_usage.get("prompt_tokens", 0)), int(token_usage.get("completion_tokens", 0))


def _text(message: AIMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(c if isinstance(c, str) else str(c.get("text", "")) for c in content)


_SLOW_KEYWORDS = ("maxLength", "minLength", "minimum", "maximum")


def grammar_friendly(schema: Any) -> Any:
    """A copy of ``schema`` without the bounds llama.cpp's grammar handles badly.

    llama-cpp-python 0.3.36 compiles a JSON schema into a GBNF grammar; bounds such as a
    string ``maxLength``, integer ``minimum``/``maximum`` and array ``minItems`` !=
    ``maxItems`` expand into nested optional rules. Seen here (on a loaded machine, so
    a hint rather than a measurement): the plan schema with those bounds did not answer
    within 120 s, without them it answered. The bounds are dropped from what the server
    sees; the full schema still validates the answer, and ``max_tokens`` bounds its
    length. Exact counts (``minItems == maxItems``) are kept.
    """
    if isinstance(schema, list):
        return [grammar_friendly(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: grammar_friendly(v) for k, v in schema.items() if k not in _SLOW_KEYWORDS}
    if out.get("minItems") != out.get("maxItems"):
        out.pop("minItems", None)
        out.pop("maxItems", None)
    return out


def parse_json(text: str) -> Any:
    """Parse a model's JSON answer, tolerating a surrounding Markdown code fence.

    Args:
        text: the raw completion.

    Returns:
        The decoded JSON value.

    Raises:
        LLMError: not valid JSON.
    """
    fenced = _FENCE.match(text)
    try:
        return json.loads(fenced.group(1) if fenced else text)
    except json.JSONDecodeError as exc:
        raise LLMError(f"invalid JSON from the LLM: {exc}; text={text[:200]!r}") from exc


def yes_no_probability(logprobs: Any) -> float:
    """P(Yes) from the first generated token's top logprobs (pointwise item scoring).

    ``p_yes / (p_yes + p_no)`` where each sums the probabilities of the token variants
    ("Yes", " Yes", "yes", "YES"...; compared stripped and lower-cased) among the top
    logprobs of the first position — the Yes/No item scoring of TALLRec (Bao et al.
    2023) and the "item scoring" use in Lin et al. 2023's survey.

    Args:
        logprobs: the OpenAI chat ``choice.logprobs`` shape,
            ``{"content": [{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}]}``.

    Returns:
        A probability in [0, 1]; 0.5 when neither Yes nor No is among the top tokens.

    Raises:
        LLMError: no logprobs in the response (backend without logprobs support).
    """
    content = (logprobs or {}).get("content") if isinstance(logprobs, dict) else None
    if not content:
        raise LLMError("the LLM response carries no logprobs")
    first = content[0]
    top = first.get("top_logprobs") or [first]
    p_yes = p_no = 0.0
    for entry in top:
        token = str(entry.get("token", "")).strip().lower()
        logprob = entry.get("logprob")
        if logprob is None:
            continue
        if token in YES_TOKENS:
            p_yes += math.exp(float(logprob))
        elif token in NO_TOKENS:
            p_no += math.exp(float(logprob))
    if p_yes + p_no <= 0.0:
        return 0.5
    return p_yes / (p_yes + p_no)


class LLMClient:
    """recpilot's single LLM client around a LangChain chat model.

    Args:
        model: any LangChain chat model (``ChatOpenAI`` in production, fake chat models
            in tests); it must not retry on its own (``max_retries=0``).
        json_mode: request form for the backend, see the module docstring.
        adapt_json_mode: switch to the llama-cpp-python form for good when the backend
            refuses OpenAI's ``json_schema`` form (``llm_json_mode='auto'`` with a base URL).
        retries: retries after a transient failure (connection error, timeout, HTTP 5xx,
            rate limit); invalid output is not retried (temperature 0 would repeat it).
        retry_wait_s: first back-off in seconds (exponential, capped at 8 s).
        base_url: the endpoint, used by :meth:`ping` (None for fake models).
        api_key: bearer token for :meth:`ping`'s HTTP probe.
        limiter: bounds calls in flight and waiting (:mod:`recpilot.llm.limiter`); the
            default lets 1 run and 4 wait. Share one per process and backend.

    Attributes:
        calls: the last ``CALLS_KEPT`` :class:`LLMCall` records of this client, failed
            ones included (for inspection; bounded). A run's own calls are recorded with
            :func:`recpilot.llm.calls.recording`.
    """

    def __init__(
        self,
        model: BaseChatModel,
        *,
        json_mode: JsonForm = "json_schema",
        adapt_json_mode: bool = False,
        retries: int = 2,
        retry_wait_s: float = 0.5,
        base_url: str | None = None,
        api_key: str | None = None,
        limiter: LLMLimiter | None = None,
    ) -> None:
        self.model = model
        self.limiter = limiter or LLMLimiter()
        self.json_mode: JsonForm = json_mode
        self.adapt_json_mode = adapt_json_mode
        self.retries = retries
        self.retry_wait_s = retry_wait_s
        self.base_url = base_url
        self.api_key = api_key
        self.model_name = str(getattr(model, "model_name", "") or getattr(model, "model", ""))
        self.calls: deque[LLMCall] = deque(maxlen=CALLS_KEPT)

    @classmethod
    def from_settings(
        cls, settings: Settings, base_url: str, *, embedded: bool | None = None
    ) -> LLMClient:
        """Build the production client: ``ChatOpenAI`` against ``base_url``.

        Args:
            settings: ``llm_api_key``, ``llm_model``, ``llm_timeout_s`` (seconds, per
                attempt), ``llm_retries``, ``llm_json_mode``.
            base_url: OpenAI-compatible URL ending in ``/v1`` (see ``resolve_llm``).
            embedded: whether recpilot started the embedded llama-cpp-python server;
                None = ``settings.llm_base_url`` is unset. With ``llm_json_mode='auto'``
                it selects the llama form, otherwise the OpenAI form.

        Returns:
            An :class:`LLMClient` (temperature 0, LangChain retries off).
        """
        from langchain_openai import ChatOpenAI

        if embedded is None:
            embedded = not settings.llm_base_url
        mode = settings.llm_json_mode
        json_mode: JsonForm = (
            ("json_object_schema" if embedded else "json_schema") if mode == "auto" else mode
        )
        model = ChatOpenAI(
            base_url=base_url,
            api_key=settings.llm_api_key,
            model=settings.llm_model,
            timeout=settings.llm_timeout_s,
            max_retries=0,
            temperature=0,
        )
        return cls(
            model,
            json_mode=json_mode,
            adapt_json_mode=mode == "auto" and not embedded,
            retries=settings.llm_retries,
            base_url=base_url,
            api_key=settings.llm_api_key,
            limiter=limiter_from_settings(settings, embedded=embedded),
        )

    # -- plumbing ------------------------------------------------------------------------

    def reset_calls(self) -> None:
        """Forget the calls kept on this client (runs' logs are their own)."""
        self.calls.clear()

    def _cap(self, max_tokens: int) -> dict[str, Any]:
        if self.json_mode == "json_object_schema":
            return {"extra_body": {"max_tokens": max_tokens}}
        return {"max_tokens": max_tokens}

    def _invoke(
        self,
        messages: Sequence[Message],
        purpose: str,
        *,
        model: Any = None,
        **kwargs: Any,
    ) -> tuple[AIMessage, LLMCall]:
        record = LLMCall(purpose=purpose, messages=[dict(m) for m in messages])
        self.calls.append(record)
        call_log.record(record)  # the active run's log, keyed by node
        lc_messages = convert_to_messages(list(messages))
        start = time.perf_counter()
        attempts = 0
        try:
            for attempt in Retrying(
                stop=stop_after_attempt(self.retries + 1),
                wait=wait_exponential(multiplier=self.retry_wait_s, max=8),
                retry=retry_if_exception(_is_transient),
                reraise=True,
            ):
                with attempt, self.limiter.slot() as waited_ms:
                    attempts += 1
                    record.extra["queue_wait_ms"] = round(
                        record.extra.get("queue_wait_ms", 0.0) + waited_ms, 1
                    )
                    result = (model or self.model).invoke(lc_messages, **kwargs)
        except LLMBusyError as exc:  # never reached the backend: no death or config check
            record.retries = max(0, attempts - 1)
            record.latency_ms = (time.perf_counter() - start) * 1000
            record.error = str(exc)
            raise
        except Exception as exc:
            record.retries = attempts - 1
            record.latency_ms = (time.perf_counter() - start) * 1000
            died = death_report(self.base_url, wait_s=2.0 if _is_transient(exc) else 0.0)
            if died is not None:  # the embedded server is gone: say so, not "Connection error"
                record.error = died
                raise LLMError(died, unreachable=True) from exc
            misconfigured = config_error(exc, self.base_url, self.model_name)
            if misconfigured is not None:
                record.error = str(misconfigured)
                raise misconfigured from exc
            record.error = f"{type(exc).__name__}: {exc}"
            raise LLMError(
                f"LLM call '{purpose}' failed after {attempts} attempt(s): {record.error}",
                unreachable=_is_transient(exc) or isinstance(exc, _TIMEOUTS),
            ) from exc
        record.retries = attempts - 1
        record.latency_ms = (time.perf_counter() - start) * 1000
        if not isinstance(result, AIMessage):
            result = AIMessage(content=str(getattr(result, "content", result)))
        record.response = _text(result)
        record.prompt_tokens, record.completion_tokens = _usage(result)
        return result, record

    # -- public calls --------------------------------------------------------------------

    def json(
        self,
        messages: Sequence[Message],
        schema: dict[str, Any],
        purpose: str,
        max_tokens: int,
        *,
        validate_schema: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Schema-constrained JSON completion, parsed and validated.

        The schema is sent as ``response_format`` (llama-cpp-python turns it into a
        grammar, OpenAI/vLLM into structured output); the answer is validated again here
        because no backend is trusted.

        Args:
            messages: chat messages, ``[{"role": ..., "content": ...}, ...]``.
            schema: JSON Schema the answer must follow (sent to the backend).
            purpose: short label recorded in :attr:`calls` (e.g. ``"fine_listwise"``).
            max_tokens: cap on generated tokens.
            validate_schema: validate against this instead of ``schema`` (a caller that
                repairs some violations itself, e.g. duplicate ids, passes a looser one).

        Returns:
            The decoded JSON object.

        Raises:
            LLMError: unreachable/timeout after retries, invalid JSON, not a JSON object,
                or a schema violation.
        """
        if self.json_mode == "json_object_schema":
            response_format: dict[str, Any] = {
                "type": "json_object",
                "schema": grammar_friendly(schema),
            }
        else:
            name = re.sub(r"[^A-Za-z0-9_-]", "_", purpose)[:64] or "response"
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": False},
            }
        try:
            message, record = self._invoke(
                messages, purpose, response_format=response_format, **self._cap(max_tokens)
            )
        except LLMError as exc:
            if self.adapt_json_mode and _REFUSES_JSON_SCHEMA in str(exc):
                # a llama-cpp-python server behind a base URL (e.g. `recpilot llm serve`):
                # it takes only its own form; switch once, for the rest of this client
                _log.info("the endpoint refuses OpenAI's json_schema form; using json_object")
                self.json_mode, self.adapt_json_mode = "json_object_schema", False
                return self.json(messages, schema, purpose, max_tokens,
                                 validate_schema=validate_schema)  # fmt: skip
            raise
        try:
            value = parse_json(record.response)
            if not isinstance(value, dict):
                raise LLMError(f"expected a JSON object from the LLM ({purpose})")
            jsonschema.validate(value, validate_schema or schema)
        except LLMError as exc:
            record.error = str(exc)
            raise
        except jsonschema.ValidationError as exc:
            record.error = f"schema violation: {exc.message}"
            raise LLMError(f"LLM output violates the schema ({purpose}): {exc.message}") from exc
        return value

    def tool_calls(
        self,
        messages: Sequence[Message],
        tools: Sequence[Any],
        purpose: str,
        max_tokens: int,
    ) -> tuple[list[dict[str, Any]], str]:
        """A completion with OpenAI-style ``tools`` (the backend's native tool calling).

        llama-cpp-python's server returns real ``tool_calls`` when started with
        ``--chat_format chatml-function-calling``; OpenAI and vLLM do natively. The
        arguments are *not* validated here (the caller validates them against each
        tool's schema and the catalogue).

        Args:
            messages: chat messages.
            tools: LangChain tools (or OpenAI tool dicts) offered to the model.
            purpose: label recorded in :attr:`calls`.
            max_tokens: cap on generated tokens.

        Returns:
            (``[{"name": str, "args": dict}, ...]`` in the model's order, the text content
            when the model answered with text instead).

        Raises:
            LLMError: unreachable/timeout after retries, or the backend cannot bind tools.
        """
        try:
            bound = self.model.bind_tools(list(tools), tool_choice="auto")
        except NotImplementedError as exc:
            raise LLMError(f"this chat model has no tool calling ({purpose})") from exc
        message, record = self._invoke(messages, purpose, model=bound, **self._cap(max_tokens))
        calls = [{"name": c["name"], "args": dict(c.get("args") or {})}
                 for c in message.tool_calls or []]  # fmt: skip
        record.extra["tool_calls"] = calls
        return calls, _text(message)

    def yes_probability(self, messages: Sequence[Message], purpose: str) -> float:
        """P(Yes) for a Yes/No question, from the first token's logprobs.

        Requests ``max_tokens=1, logprobs=True, top_logprobs=10``; see
        :func:`yes_no_probability` for the formula (pointwise item scoring, TALLRec —
        Bao et al. 2023; Lin et al. 2023).

        Args:
            messages: chat messages ending with the Yes/No question.
            purpose: label recorded in :attr:`calls`.

        Returns:
            A probability in [0, 1] (0.5 when neither Yes nor No is in the top tokens).

        Raises:
            LLMError: unreachable/timeout after retries, or no logprobs returned.
        """
        message, record = self._invoke(
            messages, purpose, logprobs=True, top_logprobs=10, **self._cap(1)
        )
        try:
            p = yes_no_probability(message.response_metadata.get("logprobs"))
        except LLMError as exc:
            record.error = str(exc)
            raise
        record.extra["p_yes"] = p
        return p

    @classmethod
    def connect(cls, settings: Settings, base_url: str) -> LLMClient:
        """:meth:`from_settings`, then refuse a misconfigured hosted endpoint at once.

        For ``settings.llm_base_url`` (a hosted endpoint) one 1-token call is made
        (:meth:`check_endpoint`); the embedded server needs none (its readiness check
        already completed a token). The probe's call record is dropped.

        Raises:
            LLMConfigError: HTTP 401/403/404 from the endpoint (the message has the fix).
        """
        client = cls.from_settings(settings, base_url)
        if settings.llm_base_url:
            problem = client.check_endpoint()
            client.reset_calls()
            if problem:
                _log.warning("LLM endpoint check failed (%s); LLM stages will fall back", problem)
        return client

    def check_endpoint(self) -> str | None:
        """One ``max_tokens=1`` completion, to refuse a misconfigured endpoint at start.

        Returns:
            None when it answered; the error text when it failed transiently (timeout,
            connection, HTTP 5xx: the run goes on and falls back, marked).

        Raises:
            LLMConfigError: HTTP 401/403 (bad key) or 404 (unknown model or path), with
                the fix.
        """
        try:
            self._invoke([{"role": "user", "content": "Say OK."}], "probe", **self._cap(1))
        except LLMConfigError:
            raise
        except LLMError as exc:
            return str(exc)
        return None

    def measure_speed(self, prompt: str, answer_prompt: str, max_tokens: int = 48) -> Speed:
        """Prompt and generation throughput measured now, in two calls.

        1. ``prompt`` with ``max_tokens=1``: prompt tokens / wall time = prompt tokens/s.
        2. ``answer_prompt`` streamed with ``max_tokens``: (tokens − 1) / (time from the
           first to the last streamed token) = generated tokens/s.

        Args:
            prompt: a long fixed prompt (a few hundred tokens).
            answer_prompt: a short prompt whose answer runs to ``max_tokens``.
            max_tokens: generation length for call 2.

        Returns:
            A :class:`Speed`.

        Raises:
            LLMError: a call failed (LLMConfigError for 401/403/404).
        """
        start = time.perf_counter()
        _, record = self._invoke([{"role": "user", "content": prompt}], "speed_prompt",
                                 **self._cap(1))  # fmt: skip
        prompt_s = time.perf_counter() - start
        lc_messages = convert_to_messages([{"role": "user", "content": answer_prompt}])
        times: list[float] = []
        completion_tokens = 0
        t0 = time.perf_counter()
        try:
            for chunk in self.model.stream(lc_messages, **self._cap(max_tokens)):
                if _text(chunk):  # type: ignore[arg-type]
                    times.append(time.perf_counter())
                usage = getattr(chunk, "usage_metadata", None)
                if usage:
                    completion_tokens = int(usage.get("output_tokens", 0)) or completion_tokens
        except Exception as exc:
            died = death_report(self.base_url)
            raise LLMError(died or f"speed test failed: {type(exc).__name__}: {exc}",
                           unreachable=True) from exc  # fmt: skip
        tokens = completion_tokens or len(times)
        gen_s = (times[-1] - times[0]) if len(times) > 1 else 0.0
        return Speed(
            prompt_tokens=record.prompt_tokens,
            prompt_seconds=prompt_s,
            prompt_tps=record.prompt_tokens / prompt_s if prompt_s > 0 else 0.0,
            generated_tokens=tokens,
            first_token_seconds=(times[0] - t0) if times else 0.0,
            generation_tps=(tokens - 1) / gen_s if gen_s > 0 and tokens > 1 else 0.0,
        )

    def ping(self, timeout_s: float = 5.0) -> bool:
        """True if the backend answers: ``GET {base_url}/models`` (or a 1-token call).

        Args:
            timeout_s: seconds for the HTTP probe.

        Returns:
            Whether the backend is reachable; never raises.
        """
        if self.base_url:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            url = f"{self.base_url.rstrip('/')}/models"
            try:
                return httpx.get(url, headers=headers, timeout=timeout_s).is_success
            except httpx.HTTPError:
                return False
        try:
            self._invoke([{"role": "user", "content": "ping"}], "ping", **self._cap(1))
        except LLMError:
            return False
        return True
