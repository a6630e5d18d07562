"""What a process must do before its first OpenGL context: keep Mesa's LLVM away from triton's.

Mesa's software renderer (llvmpipe, behind EGL, OSMesa and GLX alike) links the system's
libLLVM, and Mesa dlopens its driver with RTLD_GLOBAL, so from the first context on every LLVM
symbol of that libLLVM sits in the process's global symbol scope. triton (shipped with the
default-index torch wheels) carries its own, newer LLVM inside `triton/_C/libtriton.so` and
exports it unversioned. When torch later imports triton (lazily: `torch.optim.Adam` pulls in
torch._dynamo, which pulls in triton), the dynamic linker binds libtriton's LLVM calls to the
global libLLVM first: measured with LD_DEBUG=bindings on Mesa 22 (libLLVM-15) and triton 3.8,
12,006 of libtriton's bindings went to libLLVM-15, and its static initialisers died in
`llvm::DebugCounter` on LLVM 15's data layout (SIGSEGV, exit 139).

Loading libtriton first, RTLD_LOCAL and RTLD_NOW, binds all of its symbols to itself while no
other LLVM is in the global scope; when torch imports triton afterwards, the dynamic linker hands
back the same, already-bound library. Nothing here imports torch or triton's Python code: the
library is found by path, and only when triton is installed.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
from pathlib import Path

# Python packages that carry a private LLVM exporting unversioned LLVM symbols, and the glob of
# that library inside the package.
PRIVATE_LLVM_LIBS = (("triton", "_C/libtriton*.so"),)

_PRELOADED: list[ctypes.CDLL] = []  # kept so the handles live as long as the process
_DONE: list[bool] = []


def private_llvm_libraries() -> list[Path]:
    """The installed libraries of PRIVATE_LLVM_LIBS whose package is not imported yet."""
    found = []
    for package, pattern in PRIVATE_LLVM_LIBS:
        if package in sys.modules:
            continue  # imported already: its library was loaded (and bound) before us
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            continue  # a broken install: torch would fail to import it too, not our business
        if spec is None or not spec.submodule_search_locations:
            continue
        for folder in spec.submodule_search_locations:
            found.extend(sorted(Path(folder).glob(pattern)))
    return found


def prepare_first_context() -> list[Path]:
    """Preload every private-LLVM library (see the module docstring); call before the first
    OpenGL context of the process. Idempotent; returns the libraries it loaded this call."""
    if _DONE:
        return []
    _DONE.append(True)
    loaded = []
    for path in private_llvm_libraries():
        try:
            _PRELOADED.append(ctypes.CDLL(str(path), mode=os.RTLD_NOW | os.RTLD_LOCAL))
        except OSError:
            # Unloadable here (missing dependency, other platform): importing it later fails the
            # same way with its own message, and rendering must not break over it.
            continue
        loaded.append(path)
    return loaded
