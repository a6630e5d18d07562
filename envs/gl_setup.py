"""Before any OpenGL library loads: keep Mesa's LLVM and triton's LLVM apart.

Mesa's software renderer (llvmpipe, behind EGL, OSMesa and GLX alike) links the system's
libLLVM and is loaded RTLD_GLOBAL (Mesa dlopens its EGL driver so; PyOpenGL loads libOSMesa so),
which puts every symbol of that libLLVM in the process's global scope. triton, shipped with the
default-index torch wheels, carries its own newer LLVM inside `triton/_C/libtriton.so` and
exports it unversioned. When torch later imports triton (lazily: `torch.optim.Adam` pulls in
torch._dynamo, which pulls in triton), the dynamic linker binds libtriton's LLVM calls to the
global libLLVM first. Measured with LD_DEBUG=bindings on Mesa 22.3 (libLLVM-15) and triton 3.8:
12,006 of libtriton's bindings went to libLLVM-15, and its static initialisers died in
`llvm::DebugCounter` on LLVM 15's data layout (SIGSEGV, exit 139).

Loading libtriton first, RTLD_LOCAL and RTLD_NOW, binds all of its symbols to itself while no
other LLVM is global; Mesa's libLLVM, loaded later, binds to itself too (libtriton is not in the
global scope), and when torch imports triton the dynamic linker hands back the same library.
It must happen before mujoco is imported: with MUJOCO_GL=osmesa, importing mujoco already loads
libOSMesa and its libLLVM (with EGL, the first context does). So ami_robot.envs calls
`preload_private_llvms` first thing. Nothing here imports torch or triton's Python code: the
library is found by path, and only when triton is installed.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import sys
import warnings
from pathlib import Path

# Python packages that carry a private LLVM exporting unversioned LLVM symbols, and the glob of
# that library inside the package.
PRIVATE_LLVM_LIBS = (("triton", "_C/libtriton*.so"),)
LLVM_PROBE = "LLVMContextCreate"  # an LLVM C API function: every libLLVM exports it

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


def global_llvm_loaded() -> bool:
    """Whether some libLLVM's symbols are in the global scope already (dlsym on the main
    program's handle searches exactly that scope: the program, its start-up libraries and
    everything dlopened RTLD_GLOBAL)."""
    return hasattr(ctypes.CDLL(None), LLVM_PROBE)


def preload_private_llvms() -> list[Path]:
    """Preload every private-LLVM library (see the module docstring); call before mujoco is
    imported. Idempotent; returns the libraries it loaded this call."""
    if _DONE:
        return []
    _DONE.append(True)
    libraries = private_llvm_libraries()
    if libraries and global_llvm_loaded():
        # Too late: loading now would bind to the global LLVM and crash here, at import. Leave
        # the crash to where it would happen anyway, and say how to avoid it.
        warnings.warn(
            f"an LLVM library is already loaded globally (Mesa's, from mujoco imported with "
            f"MUJOCO_GL=osmesa or a context created before ami_robot.envs was imported), so "
            f"{', '.join(p.name for p in libraries)} cannot be kept apart from it: torch will crash "
            "when it imports triton (torch.optim, torch.compile). Import ami_robot.envs (or "
            "torch._dynamo) before mujoco.", RuntimeWarning, stacklevel=3)
        return []
    loaded = []
    for path in libraries:
        try:
            _PRELOADED.append(ctypes.CDLL(str(path), mode=os.RTLD_NOW | os.RTLD_LOCAL))
        except OSError:
            # Unloadable here (missing dependency, other platform): importing it later fails the
            # same way with its own message, and rendering must not break over it.
            continue
        loaded.append(path)
    return loaded
