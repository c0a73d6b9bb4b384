"""The emulator stack with some configuration keys changed, for the rungs that plan or apply a change
against an applied emulator stack (tests/test_emulator.py: the upgrade rung and the change-impact rung).

    python -m tests.emulator.synth_variants OUTDIR SPEC.json      (cwd: the project root)

``SPEC.json`` maps a variant name to ``{dotted.key: new value}``, written into the file as a user
writes the edit (``changed``; ``null`` is YAML's null: ``karpenter.nodepools.gpu: null`` removes that
pool). For each variant,
writes ``OUTDIR/<variant>/stacks/emulator/cdk.tf.json``: the stack of tests/environments/emulator.yaml
with exactly those keys changed, validated by the same loader as every environment (a value the
config refuses fails here, with the config's own message). Every variant keeps the environment key
``emulator`` and with it the local state path ``terraform.emulator.tfstate``, so one Terraform workdir
can switch between them without re-initialising. Prints ``ready`` once everything is written (like
tests/synth_worker.py).

``synthesize`` runs it in its own process group with a bounded wait: the pytest process never loads
the provider bindings, and a hung jsii kernel is killed with it.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
READY = "ready"
TIMEOUT = 300.0

Changes = dict[str, Any]
REMOVE = "<remove the line>"
"""A change's value that deletes the key from the file (the user removes the line), where ``None``
writes YAML's null."""


def variant_path(outdir: Path, variant: str) -> Path:
    return outdir / variant / "stacks" / "emulator" / "cdk.tf.json"


def changed(raw: dict, changes: Changes) -> dict:
    """``raw`` (an environment file's data) with ``changes`` applied as a user writes them into the
    file: each dotted key is set where it would be written (a missing section is created) and
    ``None`` is written as YAML's ``null`` (``karpenter.nodepools.gpu: null`` removes that default
    pool); ``REMOVE`` deletes the line. Nothing else is written: no default is expanded into the file first, so a case means what
    the same edit means in a user's file."""
    data = copy.deepcopy(raw)
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        node = data
        for part in path:
            node = node.setdefault(part, {})
        if value == REMOVE:
            node.pop(last, None)
        else:
            node[last] = copy.deepcopy(value)
    return data


def emulator_raw() -> dict:
    import yaml

    from tests.variants import EMULATOR_ENV

    return yaml.safe_load((EMULATOR_ENV / "emulator.yaml").read_text())


def main(argv: list[str]) -> int:
    outdir, spec = argv
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from stacks.config import parse_config
    from stacks.platform import build_app
    from tests.variants import EMULATOR, EMULATOR_ENV

    raw = emulator_raw()
    for variant, changes in json.loads(Path(spec).read_text()).items():
        print(f"variant {variant}: {changes}", flush=True)
        config = parse_config(changed(raw, changes), EMULATOR_ENV / "emulator.yaml")
        build_app({EMULATOR: config}, str(Path(outdir) / variant)).synth()
    print(READY, flush=True)
    return 0


def synthesize(outdir: Path, variants: dict[str, Changes], timeout: float = TIMEOUT) -> dict[str, dict]:
    """``{variant: synthesized JSON}``, synthesized in a subprocess; RuntimeError with its output
    when it fails or takes longer than ``timeout``."""
    from tests.processes import stop_group

    outdir.mkdir(parents=True, exist_ok=True)
    spec = outdir / "variants.json"
    spec.write_text(json.dumps(variants, indent=1))
    log = outdir / "synth.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.emulator.synth_variants", str(outdir), str(spec)],
                                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass
    finally:
        stop_group(proc, timeout=10)  # finished: reaps the jsii kernel; hung: kills the group
    text = log.read_text(errors="replace")
    if proc.returncode != 0 or READY not in text.split():
        why = f"exit {proc.returncode}" if proc.returncode not in (None, -9, -15) else f"not done in {timeout:.0f}s"
        raise RuntimeError(f"synthesizing {len(variants)} variants of the emulator stack failed ({why}, "
                           f"{time.monotonic() - started:.0f}s):\n{text[-6000:]}")
    return {v: json.loads(variant_path(outdir, v).read_text()) for v in variants}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
