"""Who may deploy an environment without keys: the roles the ``state-bootstrap`` stack makes for
Terraform Cloud and GitHub Actions (OIDC, no static credentials), each holding the environment's
deployer policy (model/permissions.py), and the trust each one's documentation prescribes.

Sources (read 2026-12; tests/test_bootstrap_trust.py names them):
- Terraform Cloud, "Dynamic credentials with the AWS provider":
  https://developer.hashicorp.com/terraform/cloud-docs/workspaces/dynamic-provider-credentials/aws-configuration
  provider ``https://<hostname>`` with audience ``aws.workload.identity``; the role's trust pins
  ``<hostname>:aud`` and ``<hostname>:sub`` =
  ``organization:<org>:project:<project>:workspace:<workspace>:run_phase:<plan|apply>``; the workspace
  sets ``TFC_AWS_PROVIDER_AUTH=true`` and ``TFC_AWS_RUN_ROLE_ARN`` (or ``TFC_AWS_PLAN_ROLE_ARN`` /
  ``TFC_AWS_APPLY_ROLE_ARN`` per phase).
- GitHub, "Configuring OpenID Connect in Amazon Web Services":
  https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/configuring-openid-connect-in-amazon-web-services
  provider ``https://token.actions.githubusercontent.com`` with audience ``sts.amazonaws.com``; the
  trust pins ``token.actions.githubusercontent.com:aud`` and ``...:sub`` =
  ``repo:<owner>/<repository>:environment:<environment>`` (a job that names the environment).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from model.base import Model, hint

TFC_AUDIENCE = "aws.workload.identity"
GITHUB_HOST = "token.actions.githubusercontent.com"
GITHUB_AUDIENCE = "sts.amazonaws.com"

PROJECT_PATTERN = hint(r"^(\*|[A-Za-z0-9 _-]{1,40})$",
                       "use the Terraform Cloud project's name (letters, digits, spaces, '-' and '_', up to 40), or * for any")
REPOSITORY_PATTERN = hint(r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$",
                          "write the GitHub repository as owner/name, e.g. my-org/platform")
GH_ENVIRONMENT_PATTERN = hint(r"^[^*?:\s][^*?:]{0,253}$",
                              "use the GitHub Actions environment's name (no '*', '?' or ':'), e.g. production")


class TerraformCloudTrust(Model):
    """A role Terraform Cloud runs of this environment's workspace assume (organization, workspace and
    hostname come from ``backend``, which must be ``cloud``)."""

    project: Annotated[str, StringConstraints(pattern=PROJECT_PATTERN)] = Field(
        "*", description="Terraform Cloud project of the workspace; * trusts the workspace in any project.")
    plan_role: bool = Field(
        False, description="Also a read-only role for the plan phase (TFC_AWS_PLAN_ROLE_ARN); the deployer role "
        "then trusts the apply phase only (TFC_AWS_APPLY_ROLE_ARN).")


class GitHubTrust(Model):
    """A role GitHub Actions jobs of one repository and environment assume."""

    repository: Annotated[str, StringConstraints(pattern=REPOSITORY_PATTERN)] = Field(
        description="owner/name of the repository whose workflows deploy this environment.")
    environment: Annotated[str, StringConstraints(pattern=GH_ENVIRONMENT_PATTERN)] = Field(
        description="GitHub Actions environment the deploying job names (environment: <name>).")


class DeployerConfig(Model):
    """Roles the state-bootstrap stack creates for this environment's deployers (none by default)."""

    terraform_cloud: TerraformCloudTrust | None = Field(
        None, description="A Terraform Cloud run role (needs backend.type cloud): OIDC provider, role, deployer policy.")
    github: GitHubTrust | None = Field(
        None, description="A GitHub Actions role: OIDC provider, role, deployer policy.")


def tfc_subject(organization: str, project: str, workspace: str, run_phase: str) -> str:
    """The ``sub`` claim of a Terraform Cloud run (``*`` allowed in project and run phase)."""
    return f"organization:{organization}:project:{project}:workspace:{workspace}:run_phase:{run_phase}"


def github_subject(repository: str, environment: str) -> str:
    """The ``sub`` claim of a GitHub Actions job that names ``environment``."""
    return f"repo:{repository}:environment:{environment}"
