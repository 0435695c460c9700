"""recpilot settings.

Precedence, highest first: command-line flags (passed as keyword arguments to
:class:`Settings`) > environment variables ``RECPILOT_*`` > a ``.env`` file in the
working directory > the defaults below (pydantic-settings). Every setting is listed,
commented, in ``.env.example``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from recpilot.config.db_urls import is_postgres_url, redact_url

FineMode = Literal["pointwise", "listwise", "off"]
JsonMode = Literal["auto", "json_object_schema", "json_schema"]


class Settings(BaseSettings):
    """All of recpilot's configuration; one instance per process or request.

    Raises:
        pydantic.ValidationError: a value has the wrong type or is out of range.
    """

    model_config = SettingsConfigDict(
        env_prefix="RECPILOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # -- storage -----------------------------------------------------------------------
    home: Path = Field(
        default=Path.home() / ".recpilot",
        description="Data directory: datasets, Chroma, trained models, the GGUF, SQLite files.",
    )
    dataset: str = Field(default="movielens-100k", description="Active dataset name.")

    # -- LLM -----------------------------------------------------------------------------
    llm_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible base URL (…/v1). Unset: start the embedded model.",
    )
    llm_api_key: str = Field(default="not-needed", description="API key for llm_base_url.")
    llm_model: str = Field(default="qwen2.5-coder-1.5b-instruct", description="Model name.")
    llm_timeout_s: float = Field(default=60.0, gt=0, description="Per-call timeout, seconds.")
    llm_retries: int = Field(default=2, ge=0, le=10, description="Retries after a failed call.")
    llm_json_mode: JsonMode = Field(  # an unknown value: pydantic lists the allowed ones
        default="auto",
        description=(
            "How to ask for schema-constrained JSON: 'json_schema' (OpenAI, vLLM), "
            "'json_object_schema' (llama-cpp-python), 'auto' (embedded → llama form)."
        ),
    )
    llm_context_tokens: int = Field(default=4096, ge=512, description="Context window, tokens.")
    llm_max_in_flight: int = Field(
        default=4,
        ge=1,
        le=256,
        description="LLM calls in flight at once per process, hosted endpoint (vLLM, OpenAI); "
        "the embedded server always gets 1.",
    )
    llm_max_waiting: int = Field(
        default=4,
        ge=0,
        le=1024,
        description="LLM calls that may wait for a slot per process; beyond that the call "
        "falls back and the service answers 503 with Retry-After.",
    )
    llm_wait_timeout_s: float = Field(
        default=30.0, gt=0, description="Longest wait for an LLM slot, seconds; then it falls back."
    )
    embedded_port: int = Field(default=0, ge=0, le=65535, description="0 = a free port.")
    embedded_threads: int = Field(default=2, ge=1, description="CPU threads for llama.cpp.")
    embedded_nice: int | None = Field(
        default=None, ge=0, le=19,
        description="CPU priority of the embedded LLM server (Unix nice, 0-19; higher yields "
        "more). Unset: 10 under `recpilot serve` (requests that need no LLM take the CPU "
        "first, generation uses what is left), 0 for every other command.",
    )  # fmt: skip
    embedded_start_timeout_s: float = Field(default=120.0, gt=0, description="Seconds.")

    # -- recall / index ----------------------------------------------------------------
    embedding_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible /v1 for embeddings. Unset: local MiniLM int8 ONNX.",
    )
    embedding_model: str = Field(
        default="all-MiniLM-L6-v2", description="Embedding model (for embedding_base_url)."
    )
    embedding_api_key: str = Field(default="not-needed", description="Key for embedding_base_url.")
    chroma_host: str | None = Field(
        default=None, description="Chroma server host (HttpClient). Unset: PersistentClient."
    )
    chroma_port: int = Field(default=8000, description="Chroma server port.")
    chroma_timeout_s: float = Field(
        default=10.0, gt=0, description="Per-call timeout of the Chroma server client, seconds."
    )
    recall_per_channel: int = Field(default=100, ge=1, le=2000, description="Items per channel.")

    # -- coarse ranking ----------------------------------------------------------------
    coarse_keep: int = Field(default=20, ge=1, le=200, description="Short list for fine rank.")
    coarse_model: str = Field(
        default="hybrid",
        min_length=1,
        description="Coarse model, a registered scorer kind (built in: hybrid = ALS + "
        "co-visitation + recent popularity, als = ALS alone; unknown names are refused "
        "when the services are built).",
    )
    recall_model: str | None = Field(
        default=None,
        description="Scorer kind of the collaborative recall channel (unset: the coarse model).",
    )
    # ALS defaults: chosen by `recpilot eval` on MovieLens 100K validation items.
    als_factors: int = Field(default=32, ge=2, description="ALS latent factors.")
    als_iterations: int = Field(default=20, ge=1, description="ALS iterations.")
    als_regularization: float = Field(default=0.5, ge=0, description="ALS L2 weight.")
    als_alpha: float = Field(default=1.0, gt=0, description="ALS confidence scale.")
    als_seed: int = Field(default=42, description="ALS random seed (factor initialisation).")

    # -- controller / fine ranking -----------------------------------------------------
    controller: Literal["llm", "rules", "pipeline"] = Field(
        default="rules",
        description="Who chooses each chat turn's tools: the rules (default: the embedded "
        "1.5B model chose worse tools than the rules, see README), the LLM (one call; rules "
        "on failure), or 'pipeline' (the earlier fixed understand → plan workflow).",
    )
    controller_call: Literal["json_schema", "tool_calls"] = Field(
        default="json_schema",
        description="How the LLM controller answers: a JSON plan under a schema, or the "
        "backend's native tool calls.",
    )
    planner: Literal["llm", "rules"] = Field(
        default="llm", description="Who plans the stages: the LLM (schema-checked) or rules."
    )
    fine_mode: FineMode = Field(default="listwise", description="LLM fine-ranking mode.")
    fine_top_n: int = Field(
        default=5, ge=1, le=100, description="Listwise: ids the LLM returns; the rest keep order."
    )
    fine_max_llm_items: int = Field(
        default=20, ge=1, le=200, description="Candidates shown to the LLM (the coarse head)."
    )
    fine_weight: float = Field(
        default=0.5, ge=0, le=1, description="Weight of the LLM score in the blend with coarse."
    )
    fine_prompt_tokens: int = Field(
        default=1500, ge=200, description="Token budget for the fine-ranking prompt."
    )
    history_items: int = Field(default=10, ge=0, description="Recent history items in prompts.")

    # -- traces and the HTTP service ---------------------------------------------------
    traces: bool = Field(default=True, description="Record every run in home/traces.sqlite.")
    traces_keep: int = Field(default=5000, ge=1, description="Newest runs kept in the trace store.")
    trace_otel: bool = Field(
        default=False,
        description="Also export traces as OpenTelemetry spans (OTLP; OTEL_EXPORTER_OTLP_*).",
    )
    api_keys: list[str] = Field(
        default_factory=list,
        description="HTTP service admin API keys (every user), JSON list: "
        "RECPILOT_API_KEYS='[\"key1\"]'.",
    )
    user_api_keys: dict[str, str] = Field(
        default_factory=dict,
        description="HTTP service user keys, each bound to one user id (only that user's "
        "profile, threads, traces, feedback; 403 otherwise), JSON object key -> user id: "
        "RECPILOT_USER_API_KEYS='{\"key2\": \"196\"}'.",
    )
    service_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="`recpilot serve` worker processes; more than 1 needs "
        "RECPILOT_DATABASE_URL (PostgreSQL) and RECPILOT_CHROMA_HOST (a Chroma server).",
    )
    database_url: str | None = Field(
        default=None,
        description="postgresql://… : chat checkpoints (PostgresSaver), traces, feedback and "
        "(unless store_url is set) profiles in PostgreSQL (extra 'postgres'). Unset: SQLite "
        "files in the data directory.",
    )
    service_host: str = Field(default="127.0.0.1", description="`recpilot serve` address.")
    service_port: int = Field(default=8080, ge=0, le=65535, description="`recpilot serve` port.")
    max_request_bytes: int = Field(
        default=65536, ge=1024, description="Largest accepted HTTP request body, bytes."
    )

    # -- memory / cold start -----------------------------------------------------------
    store_url: str | None = Field(
        default=None,
        description=(
            "Profile store: unset = SqliteStore at home/profiles.sqlite; a file path = "
            "SqliteStore there; postgresql://… = PostgresStore (extra 'postgres')."
        ),
    )
    sample_generation: bool = Field(
        default=False,
        description="Cold users: the LLM proposes catalogue items that seed collaborative recall.",
    )
    sample_items: int = Field(
        default=5, ge=1, le=20, description="Sample generation: titles the LLM proposes."
    )
    named_titles: bool = Field(
        default=True,
        description="Find titles named in a message by code (no LLM) and use them as liked "
        "items: seeds of i2i, of the collaborative model's fold-in and of co-visitation.",
    )
    genre_preference: Literal["soft", "hard"] = Field(
        default="soft",
        description="Genres a user says they like ('I mostly enjoy Drama'): soft = a boost "
        "in recall and coarse ranking; hard = a filter. 'only X' and 'no X' always filter.",
    )
    preference_weight: float = Field(
        default=0.3, ge=0, le=1,
        description="Weight of the soft-preference match (in [-1, 1]) added to the coarse "
        "score (itself in [0, 1]).",
    )

    @field_validator("dataset")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", value):
            raise ValueError(
                f"dataset name {value!r}: use letters, digits, '.', '_' or '-' (no paths)"
            )
        return value

    @field_validator("llm_base_url", "embedding_base_url", mode="before")
    @classmethod
    def _http_url(cls, value: object, info: ValidationInfo) -> object:
        """An endpoint URL needs its scheme: ``localhost:8000/v1`` is refused with the fix."""
        if value is None:
            return None
        text = str(value).strip()
        if text == "":
            return None  # an empty variable means unset
        scheme = re.match(r"^(https?)://", text, flags=re.IGNORECASE)
        if scheme:  # URL schemes are case-insensitive
            text = scheme.group(1).lower() + text[scheme.end(1):]
        if not re.match(r"^https?://[^/\s:]+", text):
            env = f"RECPILOT_{str(info.field_name).upper()}"
            bare = text if re.match(r"^[A-Za-z0-9.\[\]-]+(:\d+)?(/|$)", text) else ""
            example = f"http://{bare}" + ("" if bare.rstrip("/").endswith("/v1") else "/v1")
            if not bare:
                example = "http://HOST:PORT/v1"
            raise ValueError(f"{env}={text!r} is not an http(s) URL; fix: {env}={example}")
        return text.rstrip("/")

    @field_validator("user_api_keys")
    @classmethod
    def _user_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key, user in value.items():
            if not key.strip() or not re.fullmatch(r"[A-Za-z0-9._:@-]{1,64}", user or ""):
                raise ValueError(
                    f"user API key for {user!r}: keys must be non-empty and user ids 1-64 "
                    "letters, digits, '.', '_', ':', '@' or '-'"
                )
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not is_postgres_url(value.strip()):
            raise ValueError(
                f"RECPILOT_DATABASE_URL={redact_url(value)!r} is not a PostgreSQL URL; fix: "
                "RECPILOT_DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DBNAME, or unset "
                "it for the SQLite files"
            )
        return value.strip()

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return Path(value).expanduser().absolute()

    @property
    def dataset_dir(self) -> Path:
        """Folder of the active dataset's canonical files: ``home/datasets/<dataset>``."""
        return self.home / "datasets" / self.dataset

    @property
    def models_dir(self) -> Path:
        """Folder of trained models for the active dataset: ``home/models/<dataset>``."""
        return self.home / "models" / self.dataset

    @property
    def chroma_dir(self) -> Path:
        """Chroma PersistentClient folder: ``home/chroma``."""
        return self.home / "chroma"

    @property
    def llm_dir(self) -> Path:
        """Folder of the assembled embedded GGUF: ``home/llm``."""
        return self.home / "llm"


ENV_EXAMPLE_HEADER = """\
# recpilot settings. Copy to .env and uncomment what you change.
# Precedence: command-line flags > RECPILOT_* environment > .env > these defaults.
# Generated from recpilot/config/settings.py: python -m recpilot.config.settings > .env.example
"""


def env_example() -> str:
    """The text of ``.env.example``: every setting, its description and default, commented."""
    blocks = [ENV_EXAMPLE_HEADER]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        value = "" if default is None else default
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, list | dict):
            value = json.dumps(value)
        if name == "home":
            value = "~/.recpilot"
        blocks.append(f"# {field.description}\n# RECPILOT_{name.upper()}={value}\n")
    return "\n".join(blocks)


if __name__ == "__main__":
    print(env_example(), end="")
