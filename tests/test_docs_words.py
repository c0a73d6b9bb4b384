"""The words a user follows are right (issue 23 item 8): commands that run as written, steps that are
steps, the permissions the plan-time checks need, AMI aliases that draw no warning, and the paths a
Terraform Cloud-only account can take. The README's own generated blocks are checked in
tests/test_readme.py."""

from __future__ import annotations

import re

import pytest

from model import versions
from tests.conftest import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _prose(path) -> list[tuple[int, str]]:
    """``(line number, line)`` outside fenced code blocks."""
    out, fenced = [], False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            out.append((number, line))
    return out


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_cdktf_commands_are_written_as_they_run(path):
    """The cdktf CLI is the project's (node_modules): a command to run is `npx cdktf ...`, never a bare
    `cdktf ...` (which finds no CLI, or another version)."""
    text = path.read_text()
    bare = [m.group(0) for m in re.finditer(r"(?<![\w/-])(?<!npx )cdktf (plan|deploy|destroy|diff|output|list)\b",
                                            text)]
    assert bare == [], f"{path.name}: {bare}"


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_no_paragraph_starts_mid_sentence(path):
    lines = _prose(path)
    starts = [(n, line) for (p, prev), (n, line) in zip(lines, lines[1:])
              if not prev.strip() and re.match(r"\s+[a-z]", line) and not re.match(r"\s+[-*\d]", line)]
    assert starts == [], f"{path.name}: {starts}"


@pytest.mark.parametrize("path", DOCS, ids=[p.name for p in DOCS])
def test_every_ami_alias_the_docs_name_is_one_the_controller_nodes_can_follow(path):
    """An alias without a node group release version draws a warning (stacks/config.py support_warning)."""
    named = set(re.findall(r"al2023@(v\d{8})", path.read_text()))
    assert named <= set(versions.AMI_RELEASE_VERSIONS), f"{path.name}: {sorted(named - set(versions.AMI_RELEASE_VERSIONS))}"


# the plan-time reads and the IAM action each needs (the AWS provider's data sources)
READ_ACTIONS = {
    "aws_availability_zones": "ec2:DescribeAvailabilityZones",
    "aws_eips": "ec2:DescribeAddresses",
    "aws_ec2_instance_type": "ec2:DescribeInstanceTypes",
    "aws_ec2_instance_type_offerings": "ec2:DescribeInstanceTypeOfferings",
    "aws_iam_roles": "iam:ListRoles",
    "aws_servicequotas_service_quota": "servicequotas:GetServiceQuota",
}


def test_the_new_account_page_names_the_permission_of_every_account_check(synth):
    page = (ROOT / "docs" / "new-account.md").read_text()
    reads = set(synth["prod"]["data"]) & set(READ_ACTIONS)
    assert reads == set(READ_ACTIONS), sorted(set(synth["prod"]["data"]))
    assert [READ_ACTIONS[r] for r in sorted(reads) if READ_ACTIONS[r] not in page] == []


def test_a_terraform_cloud_only_account_is_told_a_way_to_the_spot_role_it_has(synth):
    """No state-bootstrap stack exists without an S3 backend: the message leads with the aws CLI command."""
    message = synth["t-cloud"]["check"]["spot_service_linked_role"]["assert"][0]["error_message"]
    assert "create it once per account with `aws iam create-service-linked-role --aws-service-name " \
           "spot.amazonaws.com` (or `npx cdktf deploy state-bootstrap`, where an environment keeps its state in " \
           "S3 or sets deployer:)" in message
    readme = (ROOT / "README.md").read_text()
    assert "With neither an S3 backend nor `deployer:` in any environment (Terraform Cloud or local state only) there is no\n`state-bootstrap` stack" in readme


def test_the_readme_tells_the_environment_from_the_cluster_name_and_how_to_remove_one():
    readme = (ROOT / "README.md").read_text()
    assert "`<env>` is an **environment**: the name of its file `stacks/environments/<env>.yaml`" in readme
    assert "the cluster it builds is named by the file's `name:`" in readme
    assert "`my-org-terraform-state` is a placeholder" in readme
    remove = readme.split("**Remove an environment**", 1)[1].split("\n\n", 1)[0]
    assert "destroy it first (`npx cdktf destroy <env>`), then delete its file" in remove and "state" in remove


STALE = [
    ("README.md", "(there its first line must name"),  # read as a step; the copied file has it already
    ("README.md", "checks every environment file in ~0.2 s"),  # 0.5-0.8 s through `pipenv run`
    ("docs/upgrading.md", "(their versions are EKS's defaults"),  # they are pinned (model/versions.py)
    ("docs/destroy.md", "5. **Network, IAM, KMS**"),  # the README deletes IAM in step 3
]


@pytest.mark.parametrize("name,words", STALE, ids=[f"{n}:{w[:24]}" for n, w in STALE])
def test_words_that_were_wrong_stay_gone(name, words):
    assert words not in (ROOT / name).read_text()
