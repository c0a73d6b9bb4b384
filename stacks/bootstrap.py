"""Import plumbing that must run before the first layer or provider import. Idempotent.

1. ``constructs/`` name clash. The layer folder is named ``constructs/`` (the layout promised to
   users), which is also the name of the library cdktf is built on (``from constructs import
   Construct``). The folder deliberately has no ``__init__.py``: a folder without one is only a
   namespace-package *portion*, and Python prefers the library's regular package wherever the two
   meet on ``sys.path`` (script dir, pytest rootdir, ``cdktf synth``). ``attach_layers`` then adds
   the folder to the library package's ``__path__``, so ``constructs.network`` etc. resolve to the
   project's layer files while ``constructs.Construct`` stays the library's.

2. Fast provider imports. Each prebuilt provider package's ``__init__`` imports *all* its
   submodules (2,137 for aws): ``from cdktf_cdktf_provider_aws.vpc import Vpc`` costs as much as
   importing everything (~15 s, ~1 GB). ``register_provider_packages`` places each parent package
   in ``sys.modules`` as a bare package module (right ``__path__`` and spec) without running that
   ``__init__``; importing a submodule then loads only that submodule and the shared ``_jsii``
   assembly. Synth output is byte-identical (guarded by tests/test_fast_imports.py). If a package
   is not laid out as expected it is left to the normal import, so the worst case is a slow synth,
   never a broken one. ``PLATFORM_FAST_IMPORTS=0`` turns it off.

3. The same on the node side: each provider's ``lib/index.js`` requires all its JavaScript
   submodules (~250 MB for aws) when jsii loads the assembly. ``start_kernel`` starts the jsii
   kernel with ``lazy_provider_index.js`` preloaded (``NODE_OPTIONS`` set only while node starts),
   which makes those requires lazy. Same switch, same equivalence test.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import types
from pathlib import Path

LAYERS_DIR = Path(__file__).resolve().parent.parent / "constructs"
LAZY_INDEX = Path(__file__).resolve().parent / "lazy_provider_index.js"
PROVIDER_PACKAGES = ("cdktf_cdktf_provider_aws", "cdktf_cdktf_provider_kubernetes", "cdktf_cdktf_provider_helm")
SWITCH = "PLATFORM_FAST_IMPORTS"


def switched_on() -> bool:
    """The fast path is on unless ``PLATFORM_FAST_IMPORTS`` is 0/false/no/off."""
    return os.environ.get(SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def start_kernel() -> None:
    """Start the jsii kernel (importing the constructs library does) with the lazy provider index
    preloaded; ``NODE_OPTIONS`` is changed only while node starts. Without the fast path (or once
    the kernel runs) this does nothing and the first import starts a plain kernel."""
    if "constructs" in sys.modules or not switched_on() or not LAZY_INDEX.is_file():
        return
    before = os.environ.get("NODE_OPTIONS")
    os.environ["NODE_OPTIONS"] = f'{before or ""} --require "{LAZY_INDEX}"'.strip()
    try:
        import constructs  # noqa: F401  (spawns the kernel with this environment)
    finally:
        if before is None:
            os.environ.pop("NODE_OPTIONS", None)
        else:
            os.environ["NODE_OPTIONS"] = before


def attach_layers() -> None:
    """Make ``constructs.<layer>`` resolve to ``constructs/<layer>.py`` beside the library's modules."""
    start_kernel()
    import constructs as library

    if getattr(library, "Construct", None) is None:  # pragma: no cover - would mean the folder shadowed the library
        raise ImportError(
            f"'constructs' resolved to {getattr(library, '__path__', '?')}, not the constructs library; "
            "the project's constructs/ folder must not contain an __init__.py"
        )
    path = str(LAYERS_DIR)
    if path not in library.__path__:
        library.__path__.append(path)


def _expected_layout(spec: importlib.machinery.ModuleSpec) -> bool:
    """The package is a generated jsii binding whose __init__ only imports submodules."""
    if not spec.submodule_search_locations or not spec.origin:
        return False
    root = Path(next(iter(spec.submodule_search_locations)))
    if not (root / "_jsii" / "__init__.py").is_file():
        return False
    try:
        head = Path(spec.origin).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "from ._jsii import *" in head and "publication.publish()" in head


def register_provider_packages(packages: tuple[str, ...] = PROVIDER_PACKAGES) -> list[str]:
    """Register each provider package without running its ``__init__``. Returns the names registered."""
    if not switched_on():
        return []
    registered = []
    for name in packages:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or not _expected_layout(spec):
            continue  # not installed or unexpected layout: the normal import applies
        module = types.ModuleType(name, "prebuilt provider bindings (registered without __init__)")
        module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        module.__spec__.submodule_search_locations = list(spec.submodule_search_locations)
        module.__path__ = list(spec.submodule_search_locations)
        module.__package__ = name
        module.__file__ = spec.origin
        sys.modules[name] = module
        registered.append(name)
    return registered


def prepare() -> None:
    attach_layers()
    register_provider_packages()
