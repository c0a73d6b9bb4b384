"""One output folder that does not depend on what ran last (``cdktf.out/``).

``cdktf.out/manifest.json`` lists the stacks a synth wrote, and the cdktf CLI deletes every stack
folder the manifest does not list once the app returns ("orphaned" stacks). So a synth of one
environment (``scripts/synth.sh dev``, ``PLATFORM_ENVIRONMENTS=dev``) used to delete the others'
output, after which ``python -m stacks.docs`` failed, and ``python main.py`` (no CLI) left the folder
of a deleted environment behind. ``settle`` runs after ``app.synth()``, in both:

- a stack this synth did not write keeps its output and its manifest entry while its environment
  file exists (it is what the last synth of that environment wrote);
- a stack folder whose environment no longer exists (nor ``state-bootstrap``) is removed, with its
  manifest entry, so nothing stale is ever planned or documented.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

MANIFEST = "manifest.json"


def read_manifest(outdir: Path) -> dict | None:
    """The manifest a previous synth left in ``outdir``, or None."""
    try:
        return json.loads((outdir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def settle(outdir: Path, previous: dict | None, stacks: set[str], remove: bool = True) -> list[str]:
    """Keep the output of every stack in ``stacks`` (the environments that exist, and
    ``state-bootstrap``) that this synth did not write, and drop every other stack from the manifest
    and (``remove``) its folder; returns the names dropped. ``previous``: the manifest read before
    the synth. Under the cdktf CLI pass ``remove=False``: the CLI deletes the folders the manifest
    does not list itself, and fails on one that is already gone."""
    manifest = read_manifest(outdir)
    if manifest is None:
        return []
    written = manifest.setdefault("stacks", {})
    for name, entry in ((previous or {}).get("stacks") or {}).items():
        kept = outdir / str(entry.get("synthesizedStackPath", ""))
        if name not in written and name in stacks and kept.is_file():
            written[name] = entry
    removed = []
    folder = outdir / "stacks"
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        if path.is_dir() and (path.name not in written or path.name not in stacks):
            removed.append(path.name)
            if remove:
                shutil.rmtree(path)
    for name in [n for n in written if n not in stacks]:
        written.pop(name)
        removed.append(name)
    (outdir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return sorted(set(removed))
