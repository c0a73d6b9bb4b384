"""The state-bootstrap stack: a hardened S3 bucket for every S3 backend the environments name."""

from __future__ import annotations

from stacks.config import StackConfig
from stacks.state_bucket import state_buckets
from tests.conftest import conditions, one, policy_statements

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
    assert rule["noncurrent_version_expiration"] == [{"noncurrent_days": 90, "newer_noncurrent_versions": 20}]
    logging = one(doc, "aws_s3_bucket_logging", f"logging-{BUCKET}")
    logs = one(doc, "aws_s3_bucket", f"logs-{BUCKET}")
    assert logs["bucket"] == f"{BUCKET}-logs" and logging["target_bucket"].startswith("${aws_s3_bucket.logs-")
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
