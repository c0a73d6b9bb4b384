"""The emulator stack at other Kubernetes versions, for the upgrade rung (tests/test_emulator.py).

    python -m tests.emulator.synth_versions OUTDIR VERSION [VERSION ...]      (cwd: the project root)

For each VERSION, writes ``OUTDIR/<VERSION>/stacks/emulator/cdk.tf.json``: the stack of
tests/environments/emulator.yaml with ``cluster.version`` replaced and nothing else, validated by the
same loader as every environment (a version the config refuses fails here, with the config's own
message). Every variant keeps the environment key ``emulator`` and with it the local state path
``terraform.emulator.tfstate``, so one Terraform workdir can switch between them without
re-initialising. Prints ``ready`` once everything is written (like tests/synth_worker.py).

``synthesize`` runs it in its own process group with a bounded wait: the pytest process never
loads the provider bindings, and a hung jsii kernel is killed with it.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
READY = "ready"
TIMEOUT = 300.0


def variant_path(outdir: Path, version: str) -> Path:
    return outdir / version / "stacks" / "emulator" / "cdk.tf.json"


def main(argv: list[str]) -> int:
    outdir, *wanted = argv
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import yaml

    from stacks.config import parse_config
    from stacks.platform import build_app
    from tests.variants import EMULATOR, EMULATOR_ENV

    source = EMULATOR_ENV / "emulator.yaml"
    raw = yaml.safe_load(source.read_text())
    for version in wanted:
        data = copy.deepcopy(raw)
        data.setdefault("cluster", {})["version"] = version
        build_app({EMULATOR: parse_config(data, source)}, str(Path(outdir) / version)).synth()
    print(READY, flush=True)
    return 0


def synthesize(outdir: Path, versions: tuple[str, ...], timeout: float = TIMEOUT) -> dict[str, dict]:
    """``{version: synthesized JSON}``, synthesized in a subprocess; RuntimeError with its output
    when it fails or takes longer than ``timeout``."""
    from tests.processes import stop_group

    outdir.mkdir(parents=True, exist_ok=True)
    log = outdir / "synth.log"
    started = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.emulator.synth_versions", str(outdir), *versions],
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
        raise RuntimeError(f"synthesizing the emulator stack at {', '.join(versions)} failed ({why}, "
                           f"{time.monotonic() - started:.0f}s):\n{text[-6000:]}")
    return {v: json.loads(variant_path(outdir, v).read_text()) for v in versions}


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
