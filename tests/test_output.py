"""stacks/output.py: one output folder, whatever ran last (issue 23 item 5); no synth needed."""

from __future__ import annotations

import json
from pathlib import Path

from stacks.output import read_manifest, settle


def _stack(outdir: Path, name: str, text: str) -> dict:
    folder = outdir / "stacks" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cdk.tf.json").write_text(text)
    return {"name": name, "synthesizedStackPath": f"stacks/{name}/cdk.tf.json", "workingDirectory": f"stacks/{name}"}


def _synth(outdir: Path, *names: str) -> None:
    """What App.synth() leaves: the stacks it wrote and a manifest of those only."""
    stacks = {n: _stack(outdir, n, "new") for n in names}
    (outdir / "manifest.json").write_text(json.dumps({"version": "0.21.0", "stacks": stacks}))


def test_a_synth_of_one_environment_keeps_the_others_output(tmp_path):
    _synth(tmp_path, "dev", "prod", "state-bootstrap")
    previous = read_manifest(tmp_path)
    _synth(tmp_path, "dev", "state-bootstrap")
    assert settle(tmp_path, previous, {"dev", "prod", "state-bootstrap"}) == []
    assert set(read_manifest(tmp_path)["stacks"]) == {"dev", "prod", "state-bootstrap"}
    assert (tmp_path / "stacks" / "prod" / "cdk.tf.json").is_file()


def test_a_deleted_environment_leaves_no_stack(tmp_path):
    _synth(tmp_path, "dev", "qa", "state-bootstrap")
    previous = read_manifest(tmp_path)
    _synth(tmp_path, "dev", "state-bootstrap")  # qa.yaml was deleted
    assert settle(tmp_path, previous, {"dev", "state-bootstrap"}) == ["qa"]
    assert not (tmp_path / "stacks" / "qa").exists() and "qa" not in read_manifest(tmp_path)["stacks"]


def test_a_folder_no_manifest_lists_is_removed(tmp_path):
    _stack(tmp_path, "leftover", "old")
    _synth(tmp_path, "dev")
    assert settle(tmp_path, None, {"dev", "leftover"}) == ["leftover"]


def test_nothing_happens_without_a_manifest(tmp_path):
    assert settle(tmp_path, None, {"dev"}) == []


def test_under_the_cli_a_dropped_stack_keeps_its_folder_for_the_cli_to_delete(tmp_path):
    _synth(tmp_path, "dev", "qa")
    previous = read_manifest(tmp_path)
    _synth(tmp_path, "dev")
    assert settle(tmp_path, previous, {"dev"}, remove=False) == ["qa"]
    assert (tmp_path / "stacks" / "qa").is_dir() and "qa" not in read_manifest(tmp_path)["stacks"]
