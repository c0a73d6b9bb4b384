"""The state-bootstrap stack makes the trust (model/deployer.py, stacks/state_bucket.py): per
environment that asks (``deployer:``), a role for Terraform Cloud and/or GitHub Actions trusted
through the account's OIDC provider, holding exactly that environment's deployer policy; the
environment gives each role an access entry (but the one that created the cluster).

Trust policies are checked against the documented subject and audience formats:
- Terraform Cloud, "Dynamic credentials with the AWS provider" (configure the OIDC provider and the
  role's trust; the workspace variables TFC_AWS_PROVIDER_AUTH, TFC_AWS_RUN_ROLE_ARN,
  TFC_AWS_PLAN_ROLE_ARN, TFC_AWS_APPLY_ROLE_ARN):
  https://developer.hashicorp.com/terraform/cloud-docs/workspaces/dynamic-provider-credentials/aws-configuration
  and the token's claims (``sub`` = organization:<org>:project:<project>:workspace:<workspace>:run_phase:<plan|apply>):
  https://developer.hashicorp.com/terraform/cloud-docs/workspaces/dynamic-provider-credentials/workload-identity-tokens
- GitHub Actions, "Configuring OpenID Connect in Amazon Web Services" (provider
  token.actions.githubusercontent.com, audience sts.amazonaws.com) and the subject claim of a job
  that names an environment (``repo:<owner>/<repo>:environment:<name>``):
  https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/configuring-openid-connect-in-amazon-web-services
  https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/about-security-hardening-with-openid-connect
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from model import permissions
from stacks.config import ConfigError, load_config
from tests.conftest import ROOT, resources

TFC_SUBJECT = re.compile(r"^organization:[A-Za-z0-9_-]+:project:[^:]+:workspace:[A-Za-z0-9_-]+:run_phase:(plan|apply|\*)$")
GITHUB_SUBJECT = re.compile(r"^repo:[A-Za-z0-9-]+/[A-Za-z0-9._-]+:environment:[^:*?]+$")
PLACEHOLDER = "000000000000"


def trust_of(doc: dict, role: dict) -> list[dict]:
    ref = role["assume_role_policy"].removeprefix("${data.aws_iam_policy_document.").removesuffix(".json}")
    return doc["data"]["aws_iam_policy_document"][ref]["statement"]


def roles_by_name(doc: dict) -> dict[str, tuple[str, dict]]:
    return {body["name"]: (key, body) for key, body in resources(doc, "aws_iam_role").items()}


def attached(doc: dict, role_key: str) -> list[str]:
    """The aws_iam_policy keys attached to the role ``role_key``."""
    return sorted(a["policy_arn"].split(".")[1] for a in resources(doc, "aws_iam_role_policy_attachment").values()
                  if a["role"] == f"${{aws_iam_role.{role_key}.name}}")


def conditions(statement: dict) -> dict[tuple[str, str], list[str]]:
    return {(c["test"], c["variable"]): c["values"] for c in statement.get("condition", [])}


def test_terraform_cloud_role_trusts_the_workspace_as_documented(synth):
    boot = synth["state-bootstrap"]
    (provider_key, provider), = [(k, p) for k, p in resources(boot, "aws_iam_openid_connect_provider").items()
                                 if p["url"] == "https://app.terraform.io"]
    assert provider["client_id_list"] == ["aws.workload.identity"]
    key, role = roles_by_name(boot)["platform-tfc-deployer-tfc"]
    (statement,) = trust_of(boot, role)
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"] and statement["effect"] == "Allow"
    assert statement["principals"] == [{"type": "Federated",
                                        "identifiers": [f"${{aws_iam_openid_connect_provider.{provider_key}.arn}}"]}]
    found = conditions(statement)
    assert found[("StringEquals", "app.terraform.io:aud")] == ["aws.workload.identity"]
    (subject,) = found[("StringLike", "app.terraform.io:sub")]
    assert subject == "organization:my-org:project:*:workspace:platform-tfc:run_phase:*"
    assert TFC_SUBJECT.match(subject), subject
    assert role["max_session_duration"] == 12 * 3600  # a destroy's drains outlast IAM's default hour
    # the workspace variables to set, exactly
    variables = boot["output"]["deployer_t_cloud_workspace_variables"]["value"]
    assert variables == {"TFC_AWS_PROVIDER_AUTH": "true", "TFC_AWS_RUN_ROLE_ARN": f"${{aws_iam_role.{key}.arn}}"}
    assert boot["output"]["deployer_t_cloud_terraform_cloud_role_arn"]["value"] == f"${{aws_iam_role.{key}.arn}}"


def test_github_role_trusts_the_repository_environment_as_documented(synth):
    boot = synth["state-bootstrap"]
    (provider_key, provider), = [(k, p) for k, p in resources(boot, "aws_iam_openid_connect_provider").items()
                                 if p["url"] == "https://token.actions.githubusercontent.com"]
    assert provider["client_id_list"] == ["sts.amazonaws.com"]
    alt = synth["t-alt"]
    name = next(iter(resources(alt, "aws_eks_cluster").values()))["name"]
    key, role = roles_by_name(boot)[f"{name}-deployer-github"]
    assert len(role["name"]) <= 64
    (statement,) = trust_of(boot, role)
    found = conditions(statement)
    assert found[("StringEquals", "token.actions.githubusercontent.com:aud")] == ["sts.amazonaws.com"]
    (subject,) = found[("StringLike", "token.actions.githubusercontent.com:sub")]
    assert subject == "repo:my-org/platform:environment:alt" and GITHUB_SUBJECT.match(subject)
    assert boot["output"]["deployer_t_alt_github_role_arn"]["value"] == f"${{aws_iam_role.{key}.arn}}"


@pytest.mark.parametrize("env, role", [("t-cloud", "platform-tfc-deployer-tfc"), ("t-alt", None)])
def test_each_role_holds_exactly_the_environments_deployer_policy(synth, env, role):
    """Not a copy: the bootstrap's policies are the generator's output for the environment's JSON
    (a stale or hand-edited policy fails here), within IAM's limits (at most 10 per role)."""
    boot = synth["state-bootstrap"]
    expected = permissions.deployer_policy(synth[env], account=PLACEHOLDER).documents
    prefix = f"deployer-{env}-"
    policies = {k: p for k, p in resources(boot, "aws_iam_policy").items() if k.startswith(prefix)}
    got = [json.loads(policies[k]["policy"].replace("${data.aws_caller_identity.deployer-account.account_id}",
                                                    PLACEHOLDER))
           for k in sorted(policies, key=lambda k: int(k.rsplit("-", 1)[1]))]
    assert got == expected
    name = role or f"{next(iter(resources(synth[env], 'aws_eks_cluster').values()))['name']}-deployer-github"
    key, _ = roles_by_name(boot)[name]
    assert attached(boot, key) == sorted(policies) and len(policies) <= permissions.POLICIES_PER_ROLE


def test_the_environment_gives_each_role_an_access_entry_but_the_creator(synth):
    doc = synth["t-cloud"]
    (latch_key, latch), = [(k, v) for k, v in resources(doc, "terraform_data").items() if "_creator_" in k]
    assert latch["lifecycle"] == {"ignore_changes": ["input"]}
    (clusters,) = doc["data"]["aws_eks_clusters"]
    (caller,) = doc["data"]["aws_iam_session_context"]
    assert latch["input"] == {"arn": f'${{contains(tolist(data.aws_eks_clusters.{clusters}.names), "platform-tfc") '
                                     f'? "" : data.aws_iam_session_context.{caller}.issuer_arn}}'}
    arn = ("arn:${data.aws_partition.partition.partition}:iam::${data.aws_caller_identity.account.account_id}"
           ":role/platform-tfc-deployer-tfc")
    (entry,) = [e for k, e in resources(doc, "aws_eks_access_entry").items() if "_deployer-terraform-cloud_" in k]
    assert entry["principal_arn"] == arn and entry["type"] == "STANDARD"
    assert entry["count"] == f'${{(terraform_data.{latch_key}.input.arn == "{arn}") ? 0 : 1}}'
    (association,) = [a for k, a in resources(doc, "aws_eks_access_policy_association").items() if "_deployer-" in k]
    assert association["count"] == entry["count"]
    assert association["policy_arn"].endswith("cluster-access-policy/AmazonEKSClusterAdminPolicy")
    assert not [k for k in resources(synth["dev"], "terraform_data") if "_creator_" in k]  # none asked: none


def _config(tmp_path: Path, extra: str) -> Path:
    base = (ROOT / "stacks/environments/dev.yaml").read_text()
    path = tmp_path / "dev.yaml"
    path.write_text(base + extra)
    return path


@pytest.mark.parametrize("extra, message", [
    ("deployer:\n  terraform_cloud: {}\n",
     "dev.yaml: deployer.terraform_cloud needs backend.type cloud (its organization, workspace and hostname are what "
     "the role trusts), not s3; set backend to cloud or remove deployer.terraform_cloud"),
    ("deployer:\n  github: {repository: platform, environment: prod}\n",
     "dev.yaml: deployer.github.repository (got 'platform'): write the GitHub repository as owner/name, e.g. "
     "my-org/platform"),
    ("deployer:\n  github: {repository: my-org/platform, environment: 'prod*'}\n",
     "dev.yaml: deployer.github.environment (got 'prod*'): use the GitHub Actions environment's name (no '*', '?' "
     "or ':'), e.g. production"),
])
def test_deployer_config_errors_are_one_line(tmp_path, extra, message):
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, extra))
    assert str(err.value) == message


# ----------------------------------------------------------------------------- applied on the emulator


@pytest.mark.emulator
def test_bootstrap_trust_applies_on_the_emulator(emulator, emulator_synth, tmp_path):
    """The state-bootstrap stack of the trust variant (Terraform Cloud with a plan role, GitHub)
    applied to the emulator: the OIDC providers, the roles with their trust and policies exist as
    planned (read back through IAM), the outputs name the workspace variables, and a re-plan is clean."""
    from tests.emulator.server import bootstrapped
    from tests.emulator.tfrun import run
    from tests.tf import Terraform

    doc = emulator_synth["state-bootstrap"]
    emulator.reset()
    bootstrapped(emulator, kept_logs=False)  # the Spot role to adopt; the kept-logs key is this stack's to make
    tf = Terraform(tmp_path / "bootstrap", env=emulator.terraform_env())
    doc = json.loads(json.dumps(doc).replace("../../../terraform.state-bootstrap.tfstate", "terraform.tfstate"))
    tf.write(doc)
    tf.run("init", "-no-color", "-input=false", label="bootstrap: init", timeout=180)
    run(tf, "apply", "-auto-approve", "-no-color", "-input=false", label="bootstrap: apply", timeout=300)
    job = run(tf, "plan", "-detailed-exitcode", "-no-color", "-input=false", label="bootstrap: re-plan", timeout=180,
              check=False)
    assert job.proc.returncode == 0, job.output[-3000:]
    outputs = json.loads(tf.run("output", "-json", label="bootstrap: outputs", timeout=120).stdout)

    iam = emulator.client("iam")
    providers = {p["Arn"].split("/", 1)[1] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]}
    assert providers == {"app.terraform.io", "token.actions.githubusercontent.com"}
    expected = {"platform-trust-deployer-tfc": ("app.terraform.io", "organization:my-org:project:platform:workspace:"
                                                "platform-trust:run_phase:apply"),
                "platform-trust-planner-tfc": ("app.terraform.io", "organization:my-org:project:platform:workspace:"
                                               "platform-trust:run_phase:plan"),
                "platform-trust-deployer-github": ("token.actions.githubusercontent.com",
                                                   "repo:my-org/platform:environment:production")}
    for name, (host, subject) in expected.items():
        role = iam.get_role(RoleName=name)["Role"]
        trust = role["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        (statement,) = trust["Statement"]
        assert statement["Principal"]["Federated"] == f"arn:aws:iam::123456789012:oidc-provider/{host}"
        assert statement["Condition"]["StringLike"][f"{host}:sub"] == subject
        policies = [p["PolicyName"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]]
        kind = "planner" if "planner" in name else "deployer"
        assert policies and all(p.startswith(f"platform-trust-{kind}-") for p in policies), policies
    variables = outputs["deployer_emulator_trust_workspace_variables"]["value"]
    assert variables == {"TFC_AWS_PROVIDER_AUTH": "true",
                         "TFC_AWS_PLAN_ROLE_ARN": "arn:aws:iam::123456789012:role/platform-trust-planner-tfc",
                         "TFC_AWS_APPLY_ROLE_ARN": "arn:aws:iam::123456789012:role/platform-trust-deployer-tfc"}
    # what the plan role holds reads only: a plan needs nothing else
    planner = [p for p in iam.list_attached_role_policies(RoleName="platform-trust-planner-tfc")["AttachedPolicies"]]
    actions = {a for p in planner for s in json.loads(json.dumps(iam.get_policy_version(
        PolicyArn=p["PolicyArn"], VersionId="v1")["PolicyVersion"]["Document"]))["Statement"] for a in s["Action"]}
    assert "eks:CreateCluster" not in actions and "eks:DescribeCluster" in actions
