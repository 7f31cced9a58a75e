"""The C core compiles warning-free as plain C99 and runs clean under AddressSanitizer + UBSan."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CSRC = ROOT / "scalezero_agents" / "search" / "csrc"
TEST_C = Path(__file__).resolve().parent / "csrc" / "test_mcts.c"
CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
WARNINGS = ["-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Wshadow", "-Wconversion", "-Werror"]

pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler on PATH")


def test_core_is_warning_free_c99(tmp_path: Path) -> None:
    result = subprocess.run([CC, *WARNINGS, "-O2", "-c", str(CSRC / "mcts.c"), "-o", str(tmp_path / "mcts.o")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


@pytest.mark.asan
def test_core_under_address_sanitizer(tmp_path: Path) -> None:
    exe = tmp_path / "test_mcts"
    build = subprocess.run(
        [CC, "-std=c99", "-Wall", "-Wextra", "-Werror", "-g", "-O1", "-fno-omit-frame-pointer",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=all", f"-I{CSRC}",
         str(CSRC / "mcts.c"), str(TEST_C), "-lm", "-o", str(exe)],
        capture_output=True, text=True,
    )
    if build.returncode != 0 and "sanitize" in build.stderr and "cannot find" in build.stderr:
        pytest.skip(f"compiler lacks sanitizer runtimes: {build.stderr.strip()}")
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300,
                         env={"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all checks passed" in run.stdout
    assert "ERROR: AddressSanitizer" not in run.stderr and "runtime error" not in run.stderr
