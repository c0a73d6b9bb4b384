"""What AWS offers: the region names and the EC2 instance types, and the instance-type facts
Karpenter selects on (category, family, generation, architecture).

The data is botocore's, vendored in ``model/aws_data.json`` with its source and date: the regions of
the commercial, China and GovCloud partitions (``botocore/data/endpoints.json``) and the ec2 API
model's ``InstanceType`` enum (``botocore/data/ec2/2016-11-15/service-2.json``). Vendored rather
than read from an installed botocore: the botocore the test tools pin (through awscli and boto3)
is older than AWS's current families (m8i, c8i, g7e, ...), and a config check must not refuse real
instance types; loading the file costs ~2 ms. Refresh it from a newer botocore with

    python -m model.aws <path to a botocore package>     # e.g. an unpacked botocore wheel

(tests/test_config.py checks it is a superset of the installed botocore's data).
"""

from __future__ import annotations

import datetime
import functools
import gzip
import json
import re
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent / "aws_data.json"
PARTITIONS = ("aws", "aws-cn", "aws-us-gov")  # where EKS runs; the isolated partitions are out of scope


@functools.cache
def _data() -> dict:
    return json.loads(DATA.read_text())


def source() -> str:
    return _data()["source"]


def regions() -> frozenset[str]:
    """Every region of the commercial, China and GovCloud partitions."""
    return frozenset(_data()["regions"])


def instance_types() -> frozenset[str]:
    """Every EC2 instance type name (``m6i.large``)."""
    return frozenset(_data()["instance_types"])


def read_botocore(package: Path) -> tuple[list[str], list[str]]:
    """``(regions, instance types)`` from a botocore package directory (the one holding ``data/``)."""
    endpoints = json.loads((package / "data" / "endpoints.json").read_text())
    found_regions = sorted(r for p in endpoints["partitions"] if p["partition"] in PARTITIONS for r in p["regions"])
    model = package / "data" / "ec2" / "2016-11-15" / "service-2.json.gz"
    shapes = json.loads(gzip.decompress(model.read_bytes()))["shapes"]
    return found_regions, sorted(shapes["InstanceType"]["enum"])


_FAMILY = re.compile(r"^([a-z]+(?:-[a-z]+)?)(\d+)([a-z0-9-]*)$")


def family(instance_type: str) -> str:
    """``m6i.large`` -> ``m6i``."""
    return instance_type.split(".", 1)[0]


def family_parts(name: str) -> tuple[str, int, str] | None:
    """A family's Karpenter category, generation and suffix (``m6i`` -> ``("m", 6, "i")``,
    ``c6gn`` -> ``("c", 6, "gn")``), or None for names outside that shape (``u-6tb1``)."""
    m = _FAMILY.match(name)
    return (m.group(1), int(m.group(2)), m.group(3)) if m else None


def architecture(name: str) -> str:
    """``arm64`` for Graviton families (a ``g`` right after the generation: m7g, c6gn, t4g, g5g; and
    a1), ``amd64`` for the rest."""
    parts = family_parts(name)
    if name == "a1" or (parts and parts[2].startswith("g")):
        return "arm64"
    return "amd64"


@functools.cache
def families() -> frozenset[str]:
    """Instance families a Linux node can run on (Apple's mac* families cannot)."""
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
    return f"if AWS launched it after {source()}, refresh model/aws_data.json (python -m model.aws, see model/aws.py)"


def main(argv: list[str]) -> int:
    (package,) = argv
    package = Path(package)
    found_regions, types = read_botocore(package)
    version = re.search(r"__version__ = '([^']+)'", (package / "__init__.py").read_text()).group(1)
    DATA.write_text(json.dumps({"source": f"botocore {version} (read {datetime.date.today()})", "regions": found_regions, "instance_types": types},
                               indent=0) + "\n")
    print(f"{DATA}: botocore {version}, {len(found_regions)} regions, {len(types)} instance types")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
