"""The stacks the test session synthesizes: the shipped environments plus variants that exercise
other branches (backends, NAT modes, auth modes, versions). All synthesized in one App."""

from __future__ import annotations

from pathlib import Path

from stacks.config import ENVIRONMENTS_DIR, StackConfig, environment_files, load_config

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


def _variants() -> dict[str, StackConfig]:
    dev = load_config(ENVIRONMENTS_DIR / "dev.yaml")
    return {
        "t-cloud": load_config(ENVIRONMENTS_DIR / "examples" / "tfc.yaml"),
        # every other non-default branch of dev at once (one stack, not one per branch: each stack
        # costs the session synth ~0.3 s): two explicit AZs with a NAT per AZ, a cloud backend that
        # opts back into exec auth, and the newer Kubernetes/Karpenter pair
        "t-alt": _override(dev, name="platform-alt",
                           network={"availability_zones": ["us-west-2a", "us-west-2b"], "single_nat_gateway": False},
                           backend={"type": "cloud", "organization": "acme", "workspace": "alt"},
                           kubernetes_auth={"mode": "exec"},
                           cluster={"version": "1.32"}, karpenter={"version": "1.2.1"}),
    }


VARIANTS = ("dev", "prod", "emulator", "t-cloud", "t-alt")


def variant_configs() -> dict[str, StackConfig]:
    configs = {env: load_config(path) for env, path in environment_files().items()}
    configs.update(_variants())
    configs["emulator"] = load_config(EMULATOR_ENV / "emulator.yaml")
    assert set(configs) == set(VARIANTS), sorted(configs)
    return configs
