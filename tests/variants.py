"""The stacks the tests synthesize.

``VARIANTS``: the shipped environments plus variants that exercise the other branches (backends,
NAT modes, auth modes, versions, the emulator switch), synthesized in one App by the session's synth
worker for every test session. ``EMULATOR``: the stack the end-to-end rung applies to the AWS
emulator (tests/environments/emulator.yaml), synthesized only when that rung runs, with
``EMULATOR_PREFLIGHT`` beside it."""

from __future__ import annotations

from pathlib import Path

import yaml

from stacks.config import ENVIRONMENTS_DIR, StackConfig, environment_files, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent
EMULATOR_ENV = ROOT / "tests" / "environments"


def _override(base: StackConfig, **changes: dict) -> StackConfig:
    data = base.model_dump(mode="json", exclude_unset=False)
    for section, values in changes.items():
        if isinstance(values, dict) and isinstance(data.get(section), dict) and section != "backend":
            data[section] = {**data[section], **values}
        else:
            data[section] = values
    return StackConfig.model_validate(data)


def name_of_length(length: int) -> str:
    """A cluster name of exactly ``length`` characters: lower-case letters, digits and '-', starting
    with a letter and ending with a letter (``platform-alt-xxxx...``)."""
    name = ("platform-alt-" + "x" * length)[:length]
    return name[:-1] + "x" if name.endswith("-") else name


def longest_name(base: StackConfig, limit: int = 1024) -> str:
    """The longest cluster name ``base`` accepts, found black-box: ``name_of_length(1, 2, ...)``
    until the first refusal after an accepted one."""
    accepted = None
    for length in range(1, limit + 1):
        try:
            _override(base, name=name_of_length(length))
        except ValueError:  # pydantic's ValidationError
            if accepted:
                return accepted
            continue
        accepted = name_of_length(length)
    raise RuntimeError(f"StackConfig accepts cluster names of {limit} characters: no limit found")


def _variants() -> dict[str, StackConfig]:
    dev = load_config(ENVIRONMENTS_DIR / "dev.yaml")
    return {
        # the Terraform Cloud example behind an agent pool: the public endpoint off, the agents' subnet let in
        "t-cloud": _override(load_config(ENVIRONMENTS_DIR / "examples" / "tfc.yaml"),
                             cluster={"endpoint_public_access": False, "private_access_cidrs": ["10.20.0.0/24"]}),
        # an existing network (the network team's VPC, shared through AWS RAM): the shipped example
        "t-shared-vpc": load_config(ENVIRONMENTS_DIR / "examples" / "shared-vpc.yaml"),
        # every other non-default branch of dev at once (one stack, not one per branch: each stack
        # costs the session ~0.25 s): two explicit AZs with a NAT per AZ, the local backend, the
        # emulator switch, the preflight without quota reads, EKS Pod Identity, and the newer Kubernetes/Karpenter pair
        # the longest cluster name the config accepts (tests/test_limits.py checks AWS's name and
        # policy size limits at it)
        "t-alt": _override(dev, name=longest_name(dev),
                           network={"availability_zones": ["us-west-2a", "us-west-2b"], "single_nat_gateway": False},
                           backend={"type": "local"}, emulator={"enabled": True},
                           preflight={"quotas": False, "spot_role": False},
                           cluster={"version": "1.32", "pod_credentials": "pod_identity"}, karpenter={"version": "1.2.1"},
                           deployer={"github": {"repository": "my-org/platform", "environment": "alt"}}),
    }


VARIANTS = ("dev", "prod", "t-cloud", "t-alt", "t-shared-vpc")
EMULATOR = "emulator"
# the emulator stack with two defects only the account can reveal (tests/test_preflight.py): a zone
# whose id (in the emulator's mapping, as in an AWS account's) holds no EKS control plane, and
# controller nodes above the default On-Demand Standard vCPU quota (5)
EMULATOR_PREFLIGHT = "emulator-preflight"
# the emulator stack run by Terraform Cloud and GitHub Actions: the state-bootstrap stack beside it makes
# their OIDC providers and roles (tests/test_bootstrap_trust.py applies it to the emulator)
EMULATOR_TRUST = "emulator-trust"
# the emulator stack in an existing network (tests/test_emulator.py rung f): placeholder ids, which the rung
# swaps in the JSON for those of the network it builds in the emulator (the ids exist only then)
EMULATOR_EXISTING = "emulator-existing"
PLACEHOLDER_VPC = "vpc-0000000000000000e"
PLACEHOLDER_SUBNETS = ("subnet-00000000000000001", "subnet-00000000000000002", "subnet-00000000000000003")


def variant_configs(names: tuple[str, ...] = VARIANTS) -> dict[str, StackConfig]:
    """The configs of ``names`` (any of ``VARIANTS`` and ``EMULATOR``), in that order."""
    shipped, variants = environment_files(), None
    configs = {}
    for name in names:
        if name in shipped:
            configs[name] = load_config(shipped[name])
        elif name == EMULATOR:
            configs[name] = load_config(EMULATOR_ENV / "emulator.yaml")
        elif name == EMULATOR_PREFLIGHT:
            configs[name] = _override(load_config(EMULATOR_ENV / "emulator.yaml"),
                                      network={"availability_zones": ["us-east-1a", "us-east-1b", "us-east-1e"]},
                                      cluster={"node_instance_type": "m6i.4xlarge"})
        elif name == EMULATOR_TRUST:
            configs[name] = _override(load_config(EMULATOR_ENV / "emulator.yaml"), name="platform-trust",
                                      backend={"type": "cloud", "organization": "my-org", "workspace": "platform-trust"},
                                      deployer={"terraform_cloud": {"project": "platform", "plan_role": True},
                                                "github": {"repository": "my-org/platform",
                                                           "environment": "production"}})
        elif name == EMULATOR_EXISTING:
            path = EMULATOR_ENV / "emulator.yaml"
            raw = yaml.safe_load(path.read_text())
            raw["network"] = {"existing": {"vpc_id": PLACEHOLDER_VPC, "private_subnet_ids": list(PLACEHOLDER_SUBNETS)}}
            configs[name] = parse_config(raw, path)
        else:
            variants = variants or _variants()
            configs[name] = variants[name]
    return configs
