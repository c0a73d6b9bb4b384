"""What AWS offers, as botocore ships it: the region names (``endpoints.json`` partitions) and the
EC2 instance types (the ec2 service model's ``InstanceType`` enum), and the instance-type facts
Karpenter selects on (category, family, generation, architecture).

Read from botocore's data files without importing botocore (its import costs ~0.3 s), once, on
first use (~15 ms): a config check stays well under a second. botocore is pinned in the Pipfile; a
region or instance type AWS launched after that release is refused until the pin moves (the
messages say so).
"""

from __future__ import annotations

import functools
import gzip
import importlib.metadata
import importlib.util
import json
import re
from pathlib import Path

PARTITIONS = ("aws", "aws-cn", "aws-us-gov")  # where EKS runs; the isolated partitions are out of scope


def _data() -> Path:
    spec = importlib.util.find_spec("botocore")
    if spec is None or spec.origin is None:
        raise RuntimeError("botocore is not installed; run scripts/install.sh")
    return Path(spec.origin).parent / "data"


@functools.cache
def botocore_version() -> str:
    return importlib.metadata.version("botocore")


@functools.cache
def regions() -> frozenset[str]:
    """Every region of the commercial, China and GovCloud partitions."""
    endpoints = json.loads((_data() / "endpoints.json").read_text())
    return frozenset(r for p in endpoints["partitions"] if p["partition"] in PARTITIONS for r in p["regions"])


@functools.cache
def instance_types() -> frozenset[str]:
    """Every EC2 instance type name (``m6i.large``) of the ec2 API model."""
    (model,) = sorted((_data() / "ec2").glob("*/service-2.json.gz"))[-1:]
    raw = gzip.decompress(model.read_bytes())
    # only the one shape is needed: parse its enum, not the whole 3 MB model
    found = re.search(rb'"InstanceType"\s*:\s*\{\s*"type"\s*:\s*"string"\s*,\s*"enum"\s*:\s*(\[[^\]]*\])', raw)
    if found is None:
        raise RuntimeError(f"botocore {botocore_version()}: no InstanceType enum in {model}")
    return frozenset(json.loads(found.group(1)))


_FAMILY = re.compile(r"^([a-z]+(?:-[a-z]+)?)(\d+)([a-z0-9-]*)$")


def family(instance_type: str) -> str:
    """``m6i.large`` -> ``m6i``."""
    return instance_type.split(".", 1)[0]


def family_parts(name: str) -> tuple[str, int, str] | None:
    """A family's Karpenter category, generation and suffix (``m6i`` -> ``("m", 6, "i")``,
    ``c6gn`` -> ``("c", 6, "gn")``), or None for names outside that shape."""
    m = _FAMILY.match(name)
    return (m.group(1), int(m.group(2)), m.group(3)) if m else None


def architecture(name: str) -> str:
    """``arm64`` for Graviton families (a ``g`` right after the generation: m7g, c6gn, t4g, g5g; and
    a1), ``amd64`` for the rest. Apple families (mac*) run no Linux node and are never selected."""
    parts = family_parts(name)
    if name == "a1" or (parts and parts[2].startswith("g")):
        return "arm64"
    return "amd64"


@functools.cache
def families() -> frozenset[str]:
    return frozenset(family(t) for t in instance_types() if not t.startswith("mac"))


def categories() -> frozenset[str]:
    return frozenset(p[0] for p in map(family_parts, families()) if p)


def selected_families(*, categories_: tuple[str, ...], families_: tuple[str, ...], min_generation: int | None,
                      architectures: tuple[str, ...]) -> list[str]:
    """The instance families a NodePool's requirements select (Karpenter's instance-category,
    instance-family, instance-generation Gt and kubernetes.io/arch), sorted."""
    chosen = []
    for name in families():
        parts = family_parts(name)
        if parts is None:
            continue
        if categories_ and parts[0] not in categories_:
            continue
        if families_ and name not in families_:
            continue
        if min_generation is not None and parts[1] < min_generation:
            continue
        if architecture(name) not in architectures:
            continue
        chosen.append(name)
    return sorted(chosen)


def newer_hint() -> str:
    return f"if AWS launched it after botocore {botocore_version()}, raise the botocore pin in the Pipfile"
