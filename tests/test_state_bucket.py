"""The state-bootstrap stack: a hardened S3 bucket for every S3 backend the environments name."""

from __future__ import annotations

import json

import pytest

from stacks.config import StackConfig, state_buckets
from tests.conftest import conditions, one, policy_statements
from tests.tf import Terraform

BUCKET = "my-org-terraform-state"


def test_bootstrap_stack_keeps_its_own_state_locally(synth):
    doc = synth["state-bootstrap"]
    # in the project root, three levels above cdktf.out/stacks/state-bootstrap/: never inside cdktf.out
    assert doc["terraform"]["backend"] == {"local": {"path": "../../../terraform.state-bootstrap.tfstate"}}


def test_one_bucket_for_the_bucket_dev_and_prod_share(synth):
    doc = synth["state-bootstrap"]
    bucket = one(doc, "aws_s3_bucket", f"bucket-{BUCKET}")
    assert bucket["bucket"] == BUCKET and bucket["lifecycle"] == {"prevent_destroy": True}
    assert bucket["provider"] == "aws.us-west-2"


def test_bucket_is_versioned_encrypted_private_and_tls_only(synth):
    doc = synth["state-bootstrap"]
    assert one(doc, "aws_s3_bucket_versioning", f"versioning-{BUCKET}")["versioning_configuration"] == {"status": "Enabled"}
    (rule,) = one(doc, "aws_s3_bucket_server_side_encryption_configuration", f"encryption-{BUCKET}")["rule"]
    assert rule["apply_server_side_encryption_by_default"] == {"sse_algorithm": "aws:kms"}
    block = one(doc, "aws_s3_bucket_public_access_block", f"public-access-{BUCKET}")
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                          "restrict_public_buckets"))
    assert one(doc, "aws_s3_bucket_ownership_controls", f"ownership-{BUCKET}")["rule"] == {"object_ownership": "BucketOwnerEnforced"}
    (deny,) = policy_statements(doc, one(doc, "aws_s3_bucket_policy", f"policy-{BUCKET}")["policy"])
    assert deny["effect"] == "Deny" and deny["actions"] == ["s3:*"]
    assert conditions(deny) == {("Bool", "aws:SecureTransport"): ["false"]}
    assert len(deny["resources"]) == 2 and deny["resources"][1].endswith(".arn}/*")


def test_state_history_is_bounded_and_access_is_logged(synth):
    doc = synth["state-bootstrap"]
    (rule,) = one(doc, "aws_s3_bucket_lifecycle_configuration", f"lifecycle-{BUCKET}")["rule"]
    assert rule["status"] == "Enabled"
    assert rule["noncurrent_version_expiration"] == [{"noncurrent_days": 90}]
    logging = one(doc, "aws_s3_bucket_logging", f"logging-{BUCKET}")
    logs = one(doc, "aws_s3_bucket", f"logs-{BUCKET}")
    assert logs["bucket"] == f"{BUCKET}-logs" and logging["target_bucket"].startswith("${aws_s3_bucket.logs-")
    assert logging["depends_on"] == [f"aws_s3_bucket_policy.policy-logs-{BUCKET}"]
    writer, deny = policy_statements(doc, one(doc, "aws_s3_bucket_policy", f"policy-logs-{BUCKET}")["policy"])
    assert writer["principals"] == [{"type": "Service", "identifiers": ["logging.s3.amazonaws.com"]}]
    assert deny["effect"] == "Deny"


def test_buckets_are_collected_per_region_and_only_for_s3_backends():
    def cfg(name, backend):
        return StackConfig.model_validate({"name": name, "backend": backend})

    configs = {
        "a": cfg("a1", {"type": "s3", "bucket": "state-a", "region": "eu-west-1"}),
        "b": cfg("b1", {"type": "s3", "bucket": "state-a"}),
        "c": cfg("c1", {"type": "s3", "bucket": "state-c"}),
        "d": cfg("d1", {"type": "cloud", "organization": "o", "workspace": "w"}),
        "e": cfg("e1", {"type": "local"}),
    }
    assert state_buckets(configs) == {"state-a": "eu-west-1", "state-c": "us-west-2"}


EMULATOR_BUCKET = "platform-emu-state"


@pytest.fixture(scope="module")
def emulator_bootstrap(tmp_path_factory) -> dict:
    """The bootstrap stack for one bucket in the emulator's region, synthesized once."""
    from cdktf import App

    from stacks.config import EmulatorConfig
    from stacks.state_bucket import STACK_NAME, StateBucketStack

    outdir = tmp_path_factory.mktemp("bootstrap-synth")
    app = App(outdir=str(outdir))
    StateBucketStack(app, STACK_NAME, buckets={EMULATOR_BUCKET: "us-east-1"}, log_regions=("us-east-1",),
                     emulator=EmulatorConfig(enabled=True))
    app.synth()
    return json.loads((outdir / "stacks" / STACK_NAME / "cdk.tf.json").read_text())


@pytest.mark.emulator
def test_state_bootstrap_applies_to_the_emulator_and_keeps_state_outside_cdktf_out(emulator, emulator_bootstrap,
                                                                                   tmp_path):
    """The bootstrap stack applied by real Terraform to the emulator: the bucket exists hardened, the
    re-plan is clean, and the local state lands in the project root, not in cdktf.out."""
    from stacks.state_bucket import STACK_NAME

    emulator.reset()
    bucket = EMULATOR_BUCKET
    project = tmp_path / "project"
    tf = Terraform(project / "cdktf.out" / "stacks" / STACK_NAME, env=emulator.terraform_env())
    tf.write(emulator_bootstrap)
    tf.run("init", "-no-color", "-input=false", label="state-bootstrap: init")
    tf.run("apply", "-auto-approve", "-no-color", "-input=false", label="state-bootstrap: apply")
    assert tf.run("plan", "-detailed-exitcode", "-no-color", "-input=false", check=False,
                  label="state-bootstrap: re-plan").returncode == 0
    assert (project / f"terraform.{STACK_NAME}.tfstate").is_file()
    # (.terraform/terraform.tfstate is Terraform's backend-settings cache, not state)
    assert [p for p in (project / "cdktf.out").rglob("*.tfstate") if ".terraform" not in p.parts] == []

    s3 = emulator.client("s3")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["DenyInsecureTransport"]
    assert s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]["TargetBucket"] == f"{bucket}-logs"
    # the kept-logs key, found by the environments through its parameter (constructs/cluster.py)
    from model.names import KEPT_LOGS_KEY_ALIAS, KEPT_LOGS_PARAMETER

    kms = emulator.client("kms")
    arn = emulator.client("ssm").get_parameter(Name=KEPT_LOGS_PARAMETER)["Parameter"]["Value"]
    meta = kms.describe_key(KeyId=KEPT_LOGS_KEY_ALIAS)["KeyMetadata"]
    assert meta["Arn"] == arn and meta["KeyState"] == "Enabled"
    assert kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"] is True
    # a fresh account gets the Spot service-linked role (the re-plan above was clean with it)
    assert [r["RoleName"] for r in emulator.client("iam").list_roles(
        PathPrefix="/aws-service-role/spot.amazonaws.com/")["Roles"]] == ["AWSServiceRoleForspot"]  # moto's name


@pytest.mark.emulator
def test_state_bootstrap_adopts_the_spot_role_that_exists_and_never_destroys_it(emulator, emulator_bootstrap,
                                                                                 tmp_path):
    """An account that has the Spot service-linked role already (any earlier spot request makes it)
    has it imported instead of a failed create, re-plans clean, and a destroy of it is refused.
    (The apply above creates it in a fresh account.) Only the role is targeted: cheap."""
    from stacks.state_bucket import STACK_NAME

    doc = emulator_bootstrap
    target = ("-target", f"aws_iam_service_linked_role.{next(iter(doc['resource']['aws_iam_service_linked_role']))}")
    emulator.reset()
    iam = emulator.client("iam")
    before = iam.create_service_linked_role(AWSServiceName="spot.amazonaws.com")["Role"]
    tf = Terraform(tmp_path / "project" / "cdktf.out" / "stacks" / STACK_NAME, env=emulator.terraform_env())
    tf.write(doc)
    tf.run("init", "-no-color", "-input=false", label="state-bootstrap: init")
    applied = tf.run("apply", "-auto-approve", "-no-color", "-input=false", *target, label="state-bootstrap: adopt")
    assert "1 imported, 0 added" in applied.stdout, applied.stdout[-2000:]
    (role,) = iam.list_roles(PathPrefix="/aws-service-role/spot.amazonaws.com/")["Roles"]
    assert role["RoleId"] == before["RoleId"], "the existing role was replaced, not adopted"
    assert tf.run("plan", "-detailed-exitcode", "-no-color", "-input=false", *target, check=False,
                  label="state-bootstrap: re-plan").returncode == 0
    refused = tf.run("plan", "-destroy", "-no-color", "-input=false", *target, check=False,
                     label="state-bootstrap: plan -destroy of the role")
    assert refused.returncode == 1 and "prevent_destroy" in " ".join(refused.stderr.split()), refused.stderr[-2000:]
