"""cffi build script for the C search core (out-of-line API mode).

Run by setuptools through ``cffi_modules`` (see setup.py) on ``pip install .`` / ``pip install -e .``.
The cdef is the block between the ``CDEF`` markers of ``csrc/mcts.h``, so the C source, its header and
the Python binding share one declaration.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from cffi import FFI

CSRC = Path(__file__).resolve().parent / "csrc"
# -ffp-contract=off: no fused multiply-add, so the C core and the NumPy reference round identically.
COMPILE_ARGS = ["-std=c99", "-O3", "-g", "-ffp-contract=off", "-Wall", "-Wextra"]


def read_cdef(header: Path = CSRC / "mcts.h") -> str:
    """Return the cffi declarations of ``header`` (the text between the CDEF markers)."""
    match = re.search(r"/\* CDEF BEGIN \*/(.*?)/\* CDEF END \*/", header.read_text(), re.S)
    if match is None:
        raise RuntimeError(f"{header} has no CDEF BEGIN/END block")
    return match.group(1)


ffibuilder = FFI()
ffibuilder.cdef(read_cdef())
ffibuilder.set_source(
    "scalezero_agents.search._mcts",
    '#include "mcts.h"',
    # paths relative to the project root, where setuptools runs this script
    sources=["scalezero_agents/search/csrc/mcts.c"],
    include_dirs=["scalezero_agents/search/csrc"],
    extra_compile_args=COMPILE_ARGS if sys.platform != "win32" else [],
    libraries=["m"] if sys.platform != "win32" else [],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
