"""Run real Terraform on synthesized JSON, offline where a provider mirror exists.

Terraform gets its own CLI config (``TF_CLI_CONFIG_FILE``): a ``filesystem_mirror`` block for the
providers present in ``/opt/tf-plugins`` and the normal registry for the rest. Where helm or
kubernetes provider binaries are not available, ``strip_unavailable`` removes their providers,
resources, data sources and the outputs/dependencies that reference them from a *copy* of the JSON;
callers report what was stripped so a test always says what it covered.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from tests.progress import progress

MIRROR = Path(os.environ.get("PLATFORM_TF_MIRROR", "/opt/tf-plugins"))
TERRAFORM = shutil.which("terraform")


def mirrored_providers(mirror: Path = MIRROR) -> set[str]:
    """Provider type names (``aws``, ``helm``...) whose binaries the filesystem mirror holds."""
    if not mirror.is_dir():
        return set()
    return {p.name for p in mirror.glob("registry.terraform.io/*/*") if p.is_dir()}


def cli_config(directory: Path, mirror: Path = MIRROR) -> Path:
    """Write a Terraform CLI config using the mirror for what it holds, the registry for the rest."""
    path = directory / "terraformrc"
    names = sorted(mirrored_providers(mirror))
    if names:
        include = ", ".join(f'"registry.terraform.io/hashicorp/{n}"' for n in names)
        path.write_text(
            "provider_installation {\n"
            f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = [{include}]\n  }}\n'
            f"  direct {{\n    exclude = [{include}]\n  }}\n"
            "}\n"
        )
    else:
        path.write_text("")
    return path


def available_providers(doc: dict, mirror: Path = MIRROR) -> set[str]:
    """The providers of ``doc`` Terraform can install here (all of them when no mirror exists)."""
    wanted = set(doc.get("terraform", {}).get("required_providers", {}))
    mirrored = mirrored_providers(mirror)
    return wanted & mirrored if mirrored else wanted


def strip_unavailable(doc: dict, keep: set[str]) -> tuple[dict, list[str]]:
    """A copy of ``doc`` without the providers not in ``keep`` and everything that uses them.

    Returns the copy and the sorted list of removed addresses (``helm_release.x``, ``provider.helm``)."""
    out = copy.deepcopy(doc)
    removed: list[str] = []
    drop = set(out.get("terraform", {}).get("required_providers", {})) - keep
    if not drop:
        return out, removed
    for name in drop:
        out["terraform"]["required_providers"].pop(name, None)
        if out.get("provider", {}).pop(name, None) is not None:
            removed.append(f"provider.{name}")

    def dropped_type(rtype: str) -> bool:
        return any(rtype == n or rtype.startswith(f"{n}_") for n in drop)

    for block in ("resource", "data"):
        for rtype in list(out.get(block, {})):
            if dropped_type(rtype):
                prefix = "data." if block == "data" else ""
                removed += [f"{prefix}{rtype}.{name}" for name in out[block].pop(rtype)]
        if block in out and not out[block]:
            out.pop(block)

    for name, body in list(out.get("check", {}).items()):  # a check whose scoped data source uses one
        if any(dropped_type(rtype) for rtype in body.get("data", {})):
            out["check"].pop(name)
            removed.append(f"check.{name}")
    if "check" in out and not out["check"]:
        out.pop("check")

    gone = [re.escape(a) for a in removed if not a.startswith("provider.")]
    pattern = re.compile(r"\b(" + "|".join(gone) + r")\b") if gone else None
    if pattern:
        for name, output in list(out.get("output", {}).items()):
            if pattern.search(json.dumps(output)):
                out["output"].pop(name)
                removed.append(f"output.{name}")
        for block in ("resource", "data"):
            for rtype, items in out.get(block, {}).items():
                for body in items.values():
                    deps = body.get("depends_on")
                    if deps:
                        body["depends_on"] = [d for d in deps if not pattern.search(d)]
                        if not body["depends_on"]:
                            body.pop("depends_on")
    return out, sorted(removed)


class Terraform:
    """``terraform -chdir=<workdir>`` with its own CLI config, plugin cache and progress lines."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        if TERRAFORM is None:
            raise RuntimeError("terraform is not on PATH; install Terraform 1.10+")
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "TF_CLI_CONFIG_FILE": str(cli_config(workdir)),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
            # the venv's bin first: destroy-time provisioners and kubeconfigs run the pinned `aws` CLI
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
            **(env or {}),
        }

    def write(self, doc: dict) -> Path:
        path = self.workdir / "cdk.tf.json"
        path.write_text(json.dumps(doc, indent=2))
        return path

    def run(self, *args: str, check: bool = True, timeout: float = 900, label: str | None = None,
            stdin: str | None = None) -> subprocess.CompletedProcess:
        started = time.monotonic()
        label = label or args[0]
        progress(f"[terraform] {label} ...")
        proc = subprocess.run([TERRAFORM, f"-chdir={self.workdir}", *args], env=self.env, capture_output=True,
                              text=True, timeout=timeout, input=stdin)
        progress(f"[terraform] {label} exit {proc.returncode} in {time.monotonic() - started:.1f}s")
        if check and proc.returncode != 0:
            raise AssertionError(f"terraform {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n"
                                 f"{proc.stderr[-4000:]}")
        return proc
