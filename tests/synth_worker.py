"""The test session's synth, in a process of its own.

    python -m tests.synth_worker OUTDIR REPORT [STACK ...]        (cwd: the project root)

Synthesizes the STACKs (default: every environment and test variant, tests/variants.py) in one App,
plus ``state-bootstrap`` when they name S3 state buckets, into OUTDIR, writes REPORT, prints
``ready`` and exits. tests/conftest.py starts it when the session starts, so the synth runs while
pytest collects and runs the tests that need none; the pytest process itself never loads the
provider bindings (~1 GB of jsii kernel) for the fast tests. tests/test_fast_imports.py runs it a
second time with ``PLATFORM_FAST_IMPORTS=0`` and compares; the end-to-end rung runs it for the
``emulator`` stack.

It runs with the import context pytest gives (the project root first on ``sys.path``), so REPORT
also records where ``constructs`` and the layer modules came from (tests/test_layout.py), and what
the import machinery did to the provider packages (tests/test_fast_imports.py):

    {"fast_imports": bool,
     "packages": {name: {"imported", "ran_init", "submodules": [...]}},
     "constructs": {"sys_path_0", "constructs_file", "constructs_path", "construct_module",
                    "modules": {"constructs.<layer>": file}}}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY = "ready"


def _packages(names: tuple[str, ...]) -> dict[str, dict]:
    packages = {}
    for name in names:
        module = sys.modules.get(name)
        packages[name] = {
            "imported": module is not None,
            # a generated package's __init__ re-exports _jsii and sets __all__; the bare module has neither
            "ran_init": hasattr(module, "__all__") or hasattr(module, "__jsii_assembly__"),
            "submodules": sorted(m.split(".")[1] for m in sys.modules if m.startswith(name + ".") and m.count(".") == 1),
        }
    return packages


def _constructs() -> dict:
    """Where ``constructs`` and ``constructs.*`` came from (the keys tests/test_layout.py checks)."""
    library = sys.modules["constructs"]
    return {
        "sys_path_0": sys.path[0],
        "constructs_file": library.__file__,
        "constructs_path": list(library.__path__),
        "construct_module": library.Construct.__module__,
        "modules": {n: getattr(m, "__file__", None) for n, m in sys.modules.items() if n.startswith("constructs.")},
    }


def main(argv: list[str]) -> int:
    outdir, report, *stacks = argv
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from stacks import bootstrap
    from stacks.platform import build_app
    from tests.variants import VARIANTS, variant_configs

    build_app(variant_configs(tuple(stacks) or VARIANTS), outdir).synth()
    Path(report).write_text(json.dumps({
        "fast_imports": bootstrap.switched_on(),
        "packages": _packages(bootstrap.PROVIDER_PACKAGES),
        "constructs": _constructs(),
    }, indent=1))
    print(READY, flush=True)  # the output is complete: the reader need not wait for the kernel to stop
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
