"""Building llama-cpp-python for this machine: feature probes, CMake flags, the wheel cache."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from recpilot.llm import build as b

ALL_FLAGS = frozenset(f for feature in b.FEATURES for f in feature.cpu_flags)
needs_x86 = pytest.mark.skipif(
    not b.is_x86_64() or b.compiler() is None, reason="x86-64 probes need a C compiler"
)


def results(usable: set[str]) -> list[b.ProbeResult]:
    return [b.ProbeResult(f.option, f.option in usable, "ok") for f in b.FEATURES]


def test_cmake_args_set_every_option_explicitly_with_native_off():
    args = b.cmake_args(results({"GGML_AVX", "GGML_AVX2"}))
    assert args[0] == "-DGGML_NATIVE=OFF"
    assert "-DGGML_AVX2=ON" in args and "-DGGML_AVX512=OFF" in args
    assert "-DGGML_AMX_INT8=OFF" in args
    assert len(args) == 1 + len(b.FEATURES)


@needs_x86
def test_features_the_cpu_does_not_advertise_are_off_and_so_are_their_dependents():
    flags = frozenset({"sse4_2", "avx", "avx2", "fma", "f16c", "bmi2"})  # no avx512 at all
    by_option = {r.option: r for r in b.probe_features(flags)}
    assert by_option["GGML_AVX2"].usable and by_option["GGML_FMA"].usable
    assert not by_option["GGML_AVX512"].usable
    assert by_option["GGML_AVX512"].detail == "not advertised by the CPU"
    assert not by_option["GGML_AVX512_VNNI"].usable
    assert not by_option["GGML_AMX_INT8"].usable


@needs_x86
def test_a_probe_that_dies_turns_its_feature_off(monkeypatch):
    """A feature the CPU advertises but whose instruction kills the process stays off."""
    real = b._run_probe

    def run(cc, feature, workdir):
        if feature.option == "GGML_AVX2":  # run a program that really dies with SIGILL
            dying = b.Feature(feature.option, (), (), "__builtin_trap();")
            return real(cc, dying, workdir)
        return real(cc, feature, workdir)

    monkeypatch.setattr(b, "_run_probe", run)
    flags = frozenset({"sse4_2", "avx", "avx2", "fma", "f16c"})
    by_option = {r.option: r for r in b.probe_features(flags)}
    assert by_option["GGML_AVX"].usable
    assert not by_option["GGML_AVX2"].usable
    assert by_option["GGML_AVX2"].detail == f"advertised but dies with {signal.SIGILL.name}"
    assert by_option["GGML_AVX_VNNI"].detail.startswith(("requires", "not advertised"))


@needs_x86
def test_amx_is_probed_the_way_ggml_uses_it():
    """Without asking Linux for AMX state (as ggml 0.3.36 does not), AMX is never usable on
    Linux >= 5.16, whatever the CPU flags say; on a CPU without AMX it is not advertised."""
    by_option = {r.option: r for r in b.probe_features()}
    assert not by_option["GGML_AMX_TILE"].usable
    assert not by_option["GGML_AMX_INT8"].usable


def test_refused_in_build_reads_llama_system_info():
    info = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | OPENMP = 1 |"
    probe = results({"GGML_AVX", "GGML_AVX2", "GGML_AVX512"})
    assert b.refused_in_build(info, probe) == ["AMX_INT8"]
    assert b.refused_in_build("CPU : AVX = 1 | AVX2 = 1 |", probe) == []
    assert {"AVX", "AVX2", "AVX512", "AMX_INT8", "SSE3", "OPENMP"} <= b.compiled_features(info)


def test_build_key_changes_with_the_flags():
    cc = b.compiler() or "cc"
    one = b.build_key(["-DGGML_NATIVE=OFF", "-DGGML_AVX512=ON"], cc)
    assert one == b.build_key(["-DGGML_NATIVE=OFF", "-DGGML_AVX512=ON"], cc)
    assert one != b.build_key(["-DGGML_NATIVE=OFF", "-DGGML_AVX512=OFF"], cc)


@pytest.fixture
def fake_pip(tmp_path, monkeypatch):
    """Record pip invocations; `pip wheel` drops a fake wheel where it was told to."""
    calls: list[tuple[tuple[str, ...], dict | None]] = []

    def pip(*args, env=None):
        calls.append((args, env))
        if args[0] == "wheel":
            folder = Path(args[args.index("-w") + 1])
            (folder / "llama_cpp_python-0.3.36-cp311-cp311-linux_x86_64.whl").write_bytes(b"")

    monkeypatch.setattr(b, "_pip", pip)
    monkeypatch.setenv("RECPILOT_WHEEL_CACHE", str(tmp_path / "wheels"))
    monkeypatch.setattr(b, "marker_path", lambda: tmp_path / "prefix" / "llama-build.json")
    monkeypatch.setattr(b, "installed_version", lambda: b.LLAMA_CPP_VERSION)
    return calls


def test_build_compiles_with_the_flags_and_without_pips_wheel_cache(fake_pip):
    probe = results({"GGML_AVX", "GGML_AVX2", "GGML_FMA", "GGML_F16C"})
    report = b.build(results=probe, log=lambda line: None)
    assert report.compiled and report.installed
    (wheel_args, env), install, deps = fake_pip
    assert wheel_args[0] == "wheel" and "--no-cache-dir" in wheel_args
    assert env["CMAKE_ARGS"] == " ".join(b.cmake_args(probe))
    assert "--no-cache-dir" in install[0] and "--force-reinstall" in install[0]
    assert report.wheel.parent.name == report.key
    saved = json.loads((report.wheel.parent / "build.json").read_text())
    assert saved["cmake_args"] == report.cmake_args


def test_build_reuses_the_installed_build_then_the_cached_wheel(fake_pip, tmp_path):
    probe = results({"GGML_AVX"})
    first = b.build(results=probe, log=lambda line: None)
    fake_pip.clear()
    again = b.build(results=probe, log=lambda line: None)
    assert not again.installed and fake_pip == []  # same build already in this environment
    b.marker_path().unlink()  # a new environment on the same kind of CPU
    cached = b.build(results=probe, log=lambda line: None)
    assert cached.installed and not cached.compiled and cached.wheel == first.wheel
    assert [args[0] for args, _ in fake_pip] == ["install", "install"]


def test_another_cpu_never_gets_this_cpus_wheel(fake_pip):
    avx512 = b.build(results=results({"GGML_AVX", "GGML_AVX2", "GGML_AVX512"}), log=print)
    b.marker_path().unlink()
    avx2 = b.build(results=results({"GGML_AVX", "GGML_AVX2"}), log=print)
    assert avx2.compiled and avx2.key != avx512.key and avx2.wheel != avx512.wheel
