"""Build llama-cpp-python for the machine it runs on: CPU features probed by running them.

Why not the defaults: llama-cpp-python compiles llama.cpp with ``GGML_NATIVE``
(``-march=native``). On a VM whose CPU advertises AMX but whose hypervisor does not let
the guest use it, the first completion dies with SIGILL (``tilezero``). Neither the
CPU flags nor the kernel say so: ``/proc/cpuinfo`` lists ``amx_tile``, and
``arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA)`` succeeds (measured on this project's
machine, 2026-12), and with it a probe runs AMX fine — but Linux (>= 5.16) hands AMX
tile state only to a process that asked for it, and ggml as built here executes
``tilezero`` without having asked, so Linux answers with SIGILL. The AMX probe below
therefore runs AMX the way ggml does, without asking: it dies, and AMX stays off.
ggml's runtime CPU-variant dispatch (``GGML_CPU_ALL_VARIANTS``)
scores variants from CPUID alone (``ggml-cpu/arch/x86/cpu-feats.cpp``), so it would
pick the AMX variant and die the same way.

What this module does instead: for every instruction-set extension ggml can use, it
compiles a tiny C program that executes one instruction of that extension and runs
it in a child process (:func:`probe_features`). An extension is used only when the CPU
advertises it *and* the probe exits cleanly. :func:`cmake_args` turns the result into
explicit ``-DGGML_*=ON/OFF`` flags with ``GGML_NATIVE=OFF``; :func:`build` compiles
the wheel with them into a wheel cache keyed by those flags, the compiler and the
Python tag (``~/.cache/recpilot/llama-wheels/<key>/``), and installs it. pip's own
wheel cache is bypassed (``--no-cache-dir``): it keys a built wheel by the sdist
alone, so a wheel compiled for one CPU could be reused on another.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

LLAMA_CPP_VERSION = "0.3.36"
PACKAGE = "llama-cpp-python"

# ggml option, gcc flags, CPU flags in /proc/cpuinfo, C body run by the probe, and the
# options it requires. Order matters: a feature is probed only if its requirements passed.
_AMX_CFG = (
    "unsigned char cfg[64] = {0}; cfg[0] = 1; "
    "for (int t = 0; t < 3; t++) { cfg[16 + 2 * t] = 64; cfg[48 + t] = 16; } "
    "_tile_loadconfig(cfg); "
)  # deliberately without arch_prctl(ARCH_REQ_XCOMP_PERM): see the module docstring


@dataclass(frozen=True)
class Feature:
    """One instruction-set extension ggml can be built with.

    Attributes:
        option: the ggml CMake option, e.g. ``"GGML_AVX2"``.
        gcc_flags: compiler flags the probe needs, e.g. ``("-mavx2",)``.
        cpu_flags: flags that ``/proc/cpuinfo`` must list, e.g. ``("avx2",)``.
        body: C statements executing at least one instruction of the extension.
        requires: options that must be usable first.
    """

    option: str
    gcc_flags: tuple[str, ...]
    cpu_flags: tuple[str, ...]
    body: str
    requires: tuple[str, ...] = ()


FEATURES: tuple[Feature, ...] = (
    Feature("GGML_SSE42", ("-msse4.2",), ("sse4_2",),
            "volatile unsigned r = _mm_crc32_u32(n, n); (void)r;"),
    Feature("GGML_AVX", ("-mavx",), ("avx",),
            "volatile __m256 a = _mm256_set1_ps(n); volatile __m256 b = _mm256_add_ps(a, a);"),
    Feature("GGML_AVX2", ("-mavx2",), ("avx2",),
            "volatile __m256i a = _mm256_set1_epi32(n); "
            "volatile __m256i b = _mm256_add_epi32(a, a);", ("GGML_AVX",)),
    Feature("GGML_FMA", ("-mfma",), ("fma",),
            "volatile __m256 a = _mm256_set1_ps(n); "
            "volatile __m256 b = _mm256_fmadd_ps(a, a, a);", ("GGML_AVX",)),
    Feature("GGML_F16C", ("-mf16c",), ("f16c",),
            "volatile __m128i h = _mm_set1_epi16(n); volatile __m256 f = _mm256_cvtph_ps(h);",
            ("GGML_AVX",)),
    Feature("GGML_BMI2", ("-mbmi2",), ("bmi2",),
            "volatile unsigned r = _pdep_u32(n, 0xF0F0u); (void)r;"),
    Feature("GGML_AVX_VNNI", ("-mavxvnni",), ("avx_vnni",),
            "volatile __m256i a = _mm256_set1_epi32(n); "
            "volatile __m256i b = _mm256_dpbusd_avx_epi32(a, a, a);", ("GGML_AVX2",)),
    Feature("GGML_AVX512",
            ("-mavx512f", "-mavx512cd", "-mavx512vl", "-mavx512dq", "-mavx512bw"),
            ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"),
            "volatile __m512i a = _mm512_set1_epi32(n); "
            "volatile __m512i b = _mm512_add_epi8(a, _mm512_conflict_epi32(a)); "
            "volatile __m512d d = _mm512_cvtepi64_pd(a); "
            "volatile __m256i v = _mm256_maskz_add_epi32(0x55, _mm256_set1_epi32(n), "
            "_mm256_set1_epi32(n));", ("GGML_AVX2", "GGML_FMA", "GGML_F16C")),
    Feature("GGML_AVX512_VBMI", ("-mavx512f", "-mavx512vbmi"), ("avx512vbmi",),
            "volatile __m512i a = _mm512_set1_epi32(n); "
            "volatile __m512i b = _mm512_permutexvar_epi8(a, a);", ("GGML_AVX512",)),
    Feature("GGML_AVX512_VNNI", ("-mavx512f", "-mavx512vnni"), ("avx512_vnni",),
            "volatile __m512i a = _mm512_set1_epi32(n); "
            "volatile __m512i b = _mm512_dpbusd_epi32(a, a, a);", ("GGML_AVX512",)),
    Feature("GGML_AVX512_BF16", ("-mavx512f", "-mavx512bf16"), ("avx512_bf16",),
            "volatile __m512 a = _mm512_set1_ps(n); "
            "volatile __m512bh b = _mm512_cvtne2ps_pbh(a, a);", ("GGML_AVX512",)),
    Feature("GGML_AMX_TILE", ("-mamx-tile",), ("amx_tile",),
            _AMX_CFG + "_tile_zero(0); _tile_release();", ("GGML_AVX512",)),
    Feature("GGML_AMX_INT8", ("-mamx-tile", "-mamx-int8"), ("amx_int8",),
            _AMX_CFG + "_tile_zero(0); _tile_zero(1); _tile_zero(2); "
            "_tile_dpbssd(0, 1, 2); _tile_release();", ("GGML_AMX_TILE", "GGML_AVX512_VNNI")),
    Feature("GGML_AMX_BF16", ("-mamx-tile", "-mamx-bf16"), ("amx_bf16",),
            _AMX_CFG + "_tile_zero(0); _tile_zero(1); _tile_zero(2); "
            "_tile_dpbf16ps(0, 1, 2); _tile_release();", ("GGML_AMX_TILE",)),
)  # fmt: skip

_PROGRAM = """\
#include <immintrin.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    int n = argc + 1; (void)argv;
    %s
    return 0;
}
"""


class BuildError(RuntimeError):
    """Building or installing llama-cpp-python failed; the message says why and what to do."""


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of one feature probe.

    Attributes:
        option: the ggml option probed.
        usable: True when advertised by the CPU and the probe ran cleanly.
        detail: ``"ok"``, ``"not advertised by the CPU"``, ``"requires GGML_X"``,
            ``"compiler cannot build it"`` or how the probe died, e.g.
            ``"advertised but dies with SIGILL"``.
    """

    option: str
    usable: bool
    detail: str


def is_x86_64() -> bool:
    """True on x86-64 (the only architecture whose build flags are chosen here)."""
    return platform.machine().lower() in {"x86_64", "amd64"}


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU flags Linux reports (the first ``flags`` line of ``/proc/cpuinfo``).

    Returns:
        Lower-case flag names; empty when the file is unreadable (not Linux).
    """
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def compiler() -> str | None:
    """The C compiler to probe and build with: ``$CC``, else ``cc``/``gcc`` on PATH."""
    for name in (os.environ.get("CC"), "cc", "gcc"):
        if name and shutil.which(name):
            return name
    return None


def _run_probe(cc: str, feature: Feature, workdir: Path) -> str:
    src = workdir / f"{feature.option}.c"
    exe = workdir / feature.option
    src.write_text(_PROGRAM % feature.body)
    built = subprocess.run(
        [cc, "-O0", *feature.gcc_flags, str(src), "-o", str(exe)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    if built.returncode != 0:
        return "compiler cannot build it"
    try:
        ran = subprocess.run([str(exe)], capture_output=True, timeout=20)
    except subprocess.TimeoutExpired:
        return "probe hung"
    if ran.returncode == 0:
        return "ok"
    if ran.returncode < 0:
        import signal

        return f"advertised but dies with {signal.Signals(-ran.returncode).name}"
    return f"advertised but the probe exited with code {ran.returncode}"


def probe_features(flags: frozenset[str] | None = None) -> list[ProbeResult]:
    """Which of :data:`FEATURES` this machine can execute, each tried in a child process.

    Args:
        flags: CPU flags (default: :func:`cpu_flags`).

    Returns:
        One :class:`ProbeResult` per feature, in :data:`FEATURES` order (about 2 s in all).

    Raises:
        BuildError: not x86-64, or no C compiler on PATH.
    """
    if not is_x86_64():
        raise BuildError(f"CPU feature probing is for x86-64; this is {platform.machine()}")
    cc = compiler()
    if cc is None:
        raise BuildError("no C compiler found (cc/gcc); fix: apt-get install build-essential")
    flags = cpu_flags() if flags is None else flags
    results: list[ProbeResult] = []
    usable: set[str] = set()
    with tempfile.TemporaryDirectory(prefix="recpilot-cpu-probe-") as tmp:
        for feature in FEATURES:
            missing = [r for r in feature.requires if r not in usable]
            if not all(f in flags for f in feature.cpu_flags):
                detail = "not advertised by the CPU"
            elif missing:
                detail = f"requires {', '.join(missing)}"
            else:
                detail = _run_probe(cc, feature, Path(tmp))
            ok = detail == "ok"
            if ok:
                usable.add(feature.option)
            results.append(ProbeResult(feature.option, ok, detail))
    return results


def cmake_args(results: list[ProbeResult]) -> list[str]:
    """Explicit llama.cpp CMake flags for the probed features.

    ``GGML_NATIVE=OFF`` and every feature option set ON or OFF explicitly (with
    ``GGML_NATIVE=OFF`` ggml would otherwise default AVX/AVX2/FMA/F16C/BMI2 to ON).

    Args:
        results: from :func:`probe_features`.

    Returns:
        e.g. ``["-DGGML_NATIVE=OFF", "-DGGML_SSE42=ON", ..., "-DGGML_AMX_TILE=OFF"]``.
    """
    args = ["-DGGML_NATIVE=OFF"]
    args += [f"-D{r.option}={'ON' if r.usable else 'OFF'}" for r in results]
    return args


def _compiler_version(cc: str) -> str:
    out = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.splitlines()[0] if out.stdout else cc


def build_key(args: list[str], cc: str) -> str:
    """Wheel-cache key: sha256 (16 hex) of the package version, CMake flags, compiler, Python.

    Two machines with the same key can share a wheel: it uses only instructions both run.
    """
    payload = json.dumps(
        {
            "version": LLAMA_CPP_VERSION,
            "cmake_args": args,
            "compiler": _compiler_version(cc),
            "python": sys.implementation.cache_tag,
            "machine": platform.machine(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def wheel_cache() -> Path:
    """Folder of built wheels: ``$RECPILOT_WHEEL_CACHE`` or ``~/.cache/recpilot/llama-wheels``."""
    env = os.environ.get("RECPILOT_WHEEL_CACHE")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "recpilot" / "llama-wheels"


def marker_path() -> Path:
    """File recording which build is installed in this environment (``sys.prefix``)."""
    return Path(sys.prefix) / "share" / "recpilot" / "llama-build.json"


def installed_version() -> str | None:
    """The installed llama-cpp-python version, or None."""
    try:
        return importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None


def installed_build() -> dict[str, object] | None:
    """The build recorded by :func:`build` for this environment, or None."""
    try:
        return json.loads(marker_path().read_text())
    except (OSError, ValueError):
        return None


def system_info(timeout_s: float = 60.0) -> str | None:
    """``llama_cpp.llama_print_system_info()`` of the installed build (in a child process).

    Returns:
        e.g. ``"CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | ..."``; None when llama_cpp is missing
        or fails to load.
    """
    code = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def compiled_features(info: str) -> set[str]:
    """Feature names compiled in, from :func:`system_info`'s text (``NAME = 1`` pairs)."""
    found = set()
    for part in info.replace("\n", "|").split("|"):
        if "=" in part:
            name, _, value = part.rpartition("=")
            name = name.split(":")[-1].strip()
            if value.strip() == "1" and name:
                found.add(name)
    return found


def refused_in_build(info: str, results: list[ProbeResult]) -> list[str]:
    """Features the installed build uses that this machine cannot execute.

    Args:
        info: :func:`system_info` text.
        results: :func:`probe_features` results.

    Returns:
        e.g. ``["AMX_INT8"]``; empty when the build is safe here.
    """
    compiled = compiled_features(info)
    bad = []
    for r in results:
        name = r.option.removeprefix("GGML_")
        if not r.usable and name in compiled:
            bad.append(name)
    return bad


def _pip(*args: str, env: dict[str, str] | None = None) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    done = subprocess.run(cmd, env=env)
    if done.returncode != 0:
        raise BuildError(f"`{' '.join(cmd)}` failed (exit {done.returncode}); see its output above")


@dataclass(frozen=True)
class BuildReport:
    """What :func:`build` did.

    Attributes:
        cmake_args: the flags used.
        key: wheel-cache key.
        wheel: the wheel installed.
        compiled: True if it was compiled now, False if taken from the wheel cache.
        installed: False when the environment already had this build (nothing done).
        seconds: wall-clock time, seconds.
    """

    cmake_args: list[str]
    key: str
    wheel: Path
    compiled: bool
    installed: bool
    seconds: float


def build(
    *, force: bool = False, results: list[ProbeResult] | None = None, log=print
) -> BuildReport:
    """Compile (or reuse) and install llama-cpp-python with flags this machine can run.

    Steps: probe the CPU (:func:`probe_features`), derive :func:`cmake_args`, look for a
    wheel under ``wheel_cache()/<key>/``; if absent, ``pip wheel --no-deps --no-cache-dir``
    the pinned sdist with ``CMAKE_ARGS`` set (~5–6 min on 2 cores); then
    ``pip install --force-reinstall --no-deps`` it and its ``[server]`` dependencies.

    Args:
        force: rebuild and reinstall even if this build is installed or cached.
        results: probe results to use (default: probe now).
        log: callable taking one line of progress text.

    Returns:
        A :class:`BuildReport`.

    Raises:
        BuildError: not x86-64, no compiler, or pip failed.
    """
    import time

    start = time.perf_counter()
    results = probe_features() if results is None else results
    args = cmake_args(results)
    cc = compiler() or "cc"
    key = build_key(args, cc)
    folder = wheel_cache() / key
    marker = installed_build()
    if (
        not force
        and marker is not None
        and marker.get("key") == key
        and installed_version() == LLAMA_CPP_VERSION
    ):
        wheel = Path(str(marker.get("wheel", "")))
        return BuildReport(args, key, wheel, False, False, time.perf_counter() - start)
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    compiled = False
    if force or not wheels:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        log(f"compiling {PACKAGE}=={LLAMA_CPP_VERSION} with {' '.join(args)} (~5–6 min on 2 cores)")
        env = {
            **os.environ,
            "CMAKE_ARGS": " ".join(args),
            "FORCE_CMAKE": "1",
            "CMAKE_BUILD_PARALLEL_LEVEL": str(os.cpu_count() or 1),
        }
        _pip("wheel", "--no-deps", "--no-cache-dir", "--no-binary", PACKAGE, "-w", str(folder),
             f"{PACKAGE}=={LLAMA_CPP_VERSION}", env=env)  # fmt: skip
        wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
        if not wheels:
            raise BuildError(f"pip built no wheel into {folder}")
        (folder / "build.json").write_text(
            json.dumps({"key": key, "cmake_args": args, "probe": [r.__dict__ for r in results]},
                       indent=2)
        )  # fmt: skip
        compiled = True
    else:
        log(f"using the cached wheel {wheels[-1]} (built for these flags)")
    wheel = wheels[-1]
    _pip("install", "--no-cache-dir", "--force-reinstall", "--no-deps", str(wheel))
    _pip("install", "--no-cache-dir", f"{wheel}[server]")
    marker_file = marker_path()
    marker_file.parent.mkdir(parents=True, exist_ok=True)
    marker_file.write_text(json.dumps({"key": key, "cmake_args": args, "wheel": str(wheel)}))
    return BuildReport(args, key, wheel, compiled, True, time.perf_counter() - start)
