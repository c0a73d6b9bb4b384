"""What AWS offers: the region names and the EC2 instance types, and the instance-type facts
Karpenter selects on (category, family, generation, architecture).

The data is botocore's, vendored in ``model/aws_data.json`` with its source and date: the regions of
the commercial, China and GovCloud partitions (``botocore/data/endpoints.json``) and the ec2 API
model's ``InstanceType`` enum (``botocore/data/ec2/2016-11-15/service-2.json``); and each type's
vCPUs, memory and the pods a node of it holds (``sizes``), from moto's copy of EC2's
DescribeInstanceTypes answers (``moto/ec2/resources/instance_types.json.gz``): pods are EKS's
max-pods formula without prefix delegation, network interfaces x (IPv4 addresses per interface - 1)
+ 2 (amazon-vpc-cni-k8s ``misc/eni-max-pods.txt``). Vendored rather
than read from an installed botocore: the botocore the test tools pin (through awscli and boto3)
is older than AWS's current families (m8i, c8i, g7e, ...), and a config check must not refuse real
instance types; loading the file costs ~2 ms. Refresh it from a newer botocore with

    python -m model.aws <botocore package> <moto package>   # the folders holding their __init__.py

e.g. of a newer unpacked wheel of each (tests/test_config.py runs it on the installed ones and checks
the vendored file is a superset of the installed botocore's data).
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


def sizes() -> dict[str, tuple[int, int, int]]:
    """``{instance type: (vCPUs, memory MiB, max pods)}`` for the types EC2's answers describe."""
    return _data().get("sizes", {})


def read_moto_sizes(package: Path) -> dict[str, list[int]]:
    """``{type: [vCPUs, memory MiB, max pods]}`` from a moto package directory's DescribeInstanceTypes data."""
    described = json.loads(gzip.decompress((package / "ec2" / "resources" / "instance_types.json.gz").read_bytes()))
    out = {}
    for name, info in sorted(described.items()):
        net = info["NetworkInfo"]
        pods = net["MaximumNetworkInterfaces"] * (net["Ipv4AddressesPerInterface"] - 1) + 2
        out[name] = [info["VCpuInfo"]["DefaultVCpus"], info["MemoryInfo"]["SizeInMiB"], pods]
    return out


def nearest(name: str, choices, count: int = 3) -> list[str]:
    """The ``count`` names of ``choices`` closest to ``name`` (a typo's likely meaning), closest first."""
    import difflib

    return difflib.get_close_matches(name, sorted(choices), n=count, cutoff=0.5)


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
    return (f"if AWS launched it after {source().split(' (')[0]}, refresh model/aws_data.json (python -m model.aws "
            "<botocore package> <moto package>, see model/aws.py)")


def write_data(path: Path, data: dict) -> None:
    """The vendored file: one line per region and type, one line per type's sizes (reviewable diffs)."""
    head = json.dumps({k: v for k, v in data.items() if k != "sizes"}, indent=0)[:-2]
    rows = ",\n".join(f"{json.dumps(t)}: {json.dumps(v)}" for t, v in data["sizes"].items())
    path.write_text(f'{head},\n"sizes": {{\n{rows}\n}}\n}}\n')


USAGE = ("usage: python -m model.aws <botocore package> <moto package> (the folders holding each one's "
         "__init__.py, e.g. of newer unpacked wheels); rewrites model/aws_data.json")


def main(argv: list[str], data: Path = DATA) -> int:
    if len(argv) != 2 or not all((Path(a) / "__init__.py").is_file() for a in argv):
        print(f"error: {USAGE}", file=sys.stderr)
        return 2
    package, moto = map(Path, argv)
    found_regions, types = read_botocore(package)
    version = re.search(r"__version__ = '([^']+)'", (package / "__init__.py").read_text()).group(1)
    moto_version = re.search(r"__version__ = \"([^\"]+)\"", (moto / "__init__.py").read_text())
    found_sizes = {t: v for t, v in read_moto_sizes(moto).items() if t in types}
    source = (f"botocore {version} (read {datetime.date.today()}); sizes: moto "
              f"{moto_version.group(1) if moto_version else '?'}")
    write_data(data, {"source": source, "regions": found_regions, "instance_types": types, "sizes": found_sizes})
    print(f"{data}: {source}, {len(found_regions)} regions, {len(types)} instance types ({len(found_sizes)} sized)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
