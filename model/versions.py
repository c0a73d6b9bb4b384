"""Version knowledge: what AWS and upstream support today, in one place.

Moving to a new release is one reviewed change here plus the vendored spec it was checked against
(``tests/fixtures/karpenter-<version>/``). Facts and their sources (checked 2026-11-28):

- EKS calendar: the EKS user guide, "Understand the Kubernetes version lifecycle on EKS"
  (awsdocs/amazon-eks-user-guide ``latest/ug/versioning/kubernetes-versions.adoc``; 1.34-1.36 from
  the published page). On the end of extended support "you can no longer create new Amazon EKS
  clusters with the unsupported version"; existing control planes are auto-upgraded, node groups
  are not.
- Karpenter <-> Kubernetes: Karpenter's compatibility matrix
  (aws/karpenter-provider-aws ``website/content/en/v1.14/upgrading/compatibility.md``) and its
  start-up version check (``pkg/providers/version/version.go``: MinK8sVersion / MaxK8sVersion;
  Karpenter 1.0/1.1 panic above their MaxK8sVersion, issues #7629 and #7630; 1.1.2+ only log it,
  which is still unsupported).
- AMI releases: awslabs/amazon-eks-ami ``CHANGELOG.md``: which Kubernetes versions each AL2023
  release ships AMIs for. An ``al2023@<release>`` alias resolves per cluster version; a release with
  no AMI for the cluster's version makes Karpenter launch nothing ("failed to discover AMIs").
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

# ----------------------------------------------------------------------------- defaults

DEFAULT_KUBERNETES = "1.36"  # newest on EKS, standard support until 2027-08-02: the longest runway
DEFAULT_KARPENTER = "1.14.1"  # newest release verified (2026-08-20); its spec is vendored in tests/fixtures


# ----------------------------------------------------------------------------- EKS calendar


@dataclass(frozen=True)
class EksVersion:
    """One Kubernetes minor on EKS: when it came and when each support phase ends."""

    released: _dt.date
    standard_end: _dt.date
    extended_end: _dt.date


EKS_CALENDAR: dict[str, EksVersion] = {
    "1.28": EksVersion(_dt.date(2023, 9, 26), _dt.date(2024, 11, 26), _dt.date(2025, 11, 26)),
    "1.29": EksVersion(_dt.date(2024, 1, 23), _dt.date(2025, 3, 23), _dt.date(2026, 3, 23)),
    "1.30": EksVersion(_dt.date(2024, 5, 23), _dt.date(2025, 7, 23), _dt.date(2026, 7, 23)),
    "1.31": EksVersion(_dt.date(2024, 9, 26), _dt.date(2025, 11, 26), _dt.date(2026, 11, 26)),
    "1.32": EksVersion(_dt.date(2025, 1, 23), _dt.date(2026, 3, 23), _dt.date(2027, 3, 23)),
    "1.33": EksVersion(_dt.date(2025, 5, 29), _dt.date(2026, 7, 29), _dt.date(2027, 7, 29)),
    "1.34": EksVersion(_dt.date(2025, 10, 2), _dt.date(2026, 12, 2), _dt.date(2027, 12, 2)),
    "1.35": EksVersion(_dt.date(2026, 1, 27), _dt.date(2027, 3, 27), _dt.date(2028, 3, 27)),
    "1.36": EksVersion(_dt.date(2026, 6, 2), _dt.date(2027, 8, 2), _dt.date(2028, 8, 2)),
}
STANDARD_SUPPORT_WARNING_DAYS = 90  # warn this long before standard support ends


# ----------------------------------------------------------------------------- Karpenter


@dataclass(frozen=True)
class KarpenterMinor:
    """The Kubernetes versions one Karpenter minor release supports (its version check's bounds).

    ``patch_floors``: Kubernetes versions whose support was added in a patch release of this minor
    (``{"1.34": 6}``: only 1.6.6 and later support 1.34; earlier patches stop one version lower)."""

    min_k8s: str
    max_k8s: str
    patch_floors: tuple[tuple[str, int], ...] = ()


KARPENTER: dict[str, KarpenterMinor] = {
    "1.0": KarpenterMinor("1.26", "1.31", (("1.31", 5),)),
    "1.1": KarpenterMinor("1.26", "1.31"),
    "1.2": KarpenterMinor("1.26", "1.32"),
    "1.3": KarpenterMinor("1.26", "1.32"),
    "1.4": KarpenterMinor("1.26", "1.32"),
    "1.5": KarpenterMinor("1.26", "1.33"),
    "1.6": KarpenterMinor("1.26", "1.34", (("1.34", 6),)),
    "1.7": KarpenterMinor("1.26", "1.34", (("1.34", 4),)),
    "1.8": KarpenterMinor("1.26", "1.34"),
    "1.9": KarpenterMinor("1.26", "1.35"),
    "1.10": KarpenterMinor("1.26", "1.35"),
    "1.11": KarpenterMinor("1.26", "1.35"),
    "1.12": KarpenterMinor("1.26", "1.35"),
    "1.13": KarpenterMinor("1.26", "1.36"),
    "1.14": KarpenterMinor("1.26", "1.36"),
}
# Only 1.14's lower bound (1.26) is read from its version.go; older minors are given the same floor,
# which no longer matters: EKS creates no cluster below 1.32.


# ----------------------------------------------------------------------------- Karpenter releases

# The releases of each minor: patches 0..N were all published (charts ``karpenter`` and
# ``karpenter-crd`` at oci://public.ecr.aws/karpenter, one per release tag). Source: the release tags
# of aws/karpenter-provider-aws (v1.0.0 ... v1.14.1; repository state of 2026-08-21). A version not
# listed has no chart: Helm's pull would fail at apply, after the VPC and the cluster exist.
KARPENTER_NEWEST_PATCH: dict[str, int] = {
    "1.0": 14, "1.1": 10, "1.2": 8, "1.3": 8, "1.4": 4, "1.5": 8, "1.6": 8, "1.7": 6, "1.8": 8,
    "1.9": 2, "1.10": 2, "1.11": 3, "1.12": 2, "1.13": 1, "1.14": 1,
}


def karpenter_released(version: str) -> bool:
    """Whether ``version`` (x.y.z) is a published Karpenter release."""
    major, min_, patch = minor(version)
    newest = KARPENTER_NEWEST_PATCH.get(f"{major}.{min_}")
    return newest is not None and patch <= newest


def newest_karpenter_patch(version: str) -> str:
    """The newest release of ``version``'s minor line (or the default release for an unknown minor)."""
    major, min_, _ = minor(version)
    newest = KARPENTER_NEWEST_PATCH.get(f"{major}.{min_}")
    return f"{major}.{min_}.{newest}" if newest is not None else DEFAULT_KARPENTER


# ----------------------------------------------------------------------------- AL2023 AMI releases

# (release, lowest Kubernetes, highest Kubernetes) with AL2023 AMIs, newest first; AL2-only
# releases are left out (no AL2 AMI exists for 1.33+, and this platform runs AL2023 only).
AL2023_RELEASES: tuple[tuple[str, str, str], ...] = (
    ("v20260714", "1.30", "1.36"),
    ("v20260625", "1.30", "1.36"),
    ("v20260618", "1.30", "1.36"),
    ("v20260610", "1.30", "1.36"),
    ("v20260505", "1.30", "1.35"),
    ("v20260423", "1.30", "1.35"),
    ("v20260415", "1.30", "1.35"),
    ("v20260409", "1.30", "1.35"),
    ("v20260403", "1.30", "1.35"),
    ("v20260318", "1.29", "1.35"),
    ("v20260304", "1.29", "1.35"),
    ("v20260224", "1.29", "1.35"),
    ("v20260209", "1.29", "1.35"),
    ("v20260129", "1.29", "1.35"),
    ("v20260120", "1.29", "1.35"),
    ("v20260116", "1.29", "1.35"),
    ("v20260114", "1.29", "1.35"),
    ("v20260107", "1.29", "1.34"),
    ("v20251217", "1.29", "1.34"),
    ("v20251209", "1.29", "1.34"),
    ("v20251120", "1.29", "1.34"),
    ("v20251112", "1.28", "1.34"),
    ("v20251108", "1.28", "1.34"),
    ("v20251029", "1.28", "1.34"),
    ("v20251023", "1.28", "1.34"),
    ("v20251016", "1.28", "1.34"),
    ("v20251007", "1.28", "1.34"),
    ("v20251002", "1.28", "1.34"),
    ("v20250920", "1.28", "1.34"),
    ("v20250915", "1.28", "1.34"),
    ("v20250904", "1.28", "1.33"),
    ("v20250829", "1.28", "1.33"),
    ("v20250821", "1.28", "1.33"),
    ("v20250819", "1.28", "1.33"),
    ("v20250813", "1.28", "1.33"),
    ("v20250807", "1.28", "1.33"),
    ("v20250715", "1.27", "1.33"),
    ("v20250704", "1.27", "1.33"),
    ("v20250627", "1.27", "1.33"),
    ("v20250620", "1.27", "1.33"),
    ("v20250519", "1.26", "1.33"),
    ("v20250514", "1.26", "1.32"),
    ("v20250505", "1.26", "1.32"),
    ("v20250501", "1.26", "1.32"),
    ("v20250419", "1.25", "1.32"),
    ("v20250410", "1.25", "1.32"),
    ("v20250403", "1.25", "1.32"),
    ("v20250317", "1.25", "1.32"),
    ("v20250304", "1.25", "1.32"),
    ("v20250228", "1.25", "1.32"),
    ("v20250224", "1.25", "1.32"),
    ("v20250212", "1.25", "1.32"),
    ("v20250203", "1.25", "1.32"),
    ("v20250123", "1.24", "1.32"),
    ("v20250116", "1.24", "1.32"),
    ("v20250103", "1.24", "1.32"),
    ("v20241225", "1.24", "1.32"),
    ("v20241213", "1.24", "1.31"),
    ("v20241205", "1.24", "1.31"),
    ("v20241121", "1.24", "1.31"),
    ("v20241115", "1.24", "1.31"),
    ("v20241109", "1.24", "1.31"),
    ("v20241106", "1.24", "1.31"),
    ("v20241024", "1.24", "1.31"),
    ("v20241016", "1.24", "1.31"),
    ("v20241011", "1.24", "1.31"),
    ("v20240928", "1.23", "1.31"),
    ("v20240924", "1.23", "1.31"),
    ("v20240917", "1.23", "1.31"),
    ("v20240910", "1.23", "1.30"),
    ("v20240904", "1.23", "1.30"),
    ("v20240828", "1.23", "1.30"),
    ("v20240817", "1.23", "1.30"),
    ("v20240729", "1.23", "1.30"),
    ("v20240703", "1.23", "1.30"),
    ("v20240625", "1.23", "1.30"),
    ("v20240615", "1.23", "1.30"),
    ("v20240605", "1.23", "1.30"),
    ("v20240531", "1.23", "1.30"),
    ("v20240522", "1.23", "1.30"),
    ("v20240514", "1.23", "1.30"),
    ("v20240506", "1.23", "1.29"),
    ("v20240424", "1.23", "1.29"),
    ("v20240415", "1.23", "1.29"),
    ("v20240409", "1.23", "1.29"),
    ("v20240329", "1.23", "1.29"),
    ("v20240315", "1.23", "1.29"),
    ("v20240307", "1.23", "1.29"),
    ("v20240227", "1.23", "1.29"),
    ("v20240213", "1.23", "1.29"),
)


DEFAULT_AMI_ALIAS = f"al2023@{AL2023_RELEASES[0][0]}"  # the newest release with a changelog entry (1.30-1.36)

# The EKS "release version" of an AMI release per Kubernetes minor (``<patch>-<date>``): what the
# controller node group's ``release_version`` takes, so it runs the same AMI release as the Karpenter
# nodes (``karpenter.ami_alias``) and one bump rolls every node. Source: awslabs/amazon-eks-ami
# CHANGELOG.md, the "Release version" column of each release (one value for every AL2023 AMI type).
AMI_RELEASE_VERSIONS: dict[str, dict[str, str]] = {
    "v20260714": {"1.30": "1.30.14-20260714", "1.31": "1.31.14-20260714", "1.32": "1.32.13-20260714", "1.33": "1.33.13-20260714", "1.34": "1.34.9-20260714",
                  "1.35": "1.35.6-20260714", "1.36": "1.36.2-20260714"},
    "v20260625": {"1.30": "1.30.14-20260625", "1.31": "1.31.14-20260625", "1.32": "1.32.13-20260625", "1.33": "1.33.13-20260625", "1.34": "1.34.9-20260625",
                  "1.35": "1.35.6-20260625", "1.36": "1.36.2-20260625"},
}


def node_release_version(alias: str, k8s: str) -> str | None:
    """The node group release version of ``al2023@<release>`` for Kubernetes ``k8s``, or None."""
    return AMI_RELEASE_VERSIONS.get(alias.partition("@")[2], {}).get(k8s)


# ----------------------------------------------------------------------------- queries


def minor(version: str) -> tuple[int, ...]:
    """``"1.36"`` -> ``(1, 36)``, ``"1.14.1"`` -> ``(1, 14, 1)``: versions compare as numbers."""
    return tuple(int(part) for part in version.split("."))


def karpenter_range(karpenter: str) -> tuple[str, str] | None:
    """The lowest and highest Kubernetes minor that Karpenter release ``karpenter`` (x.y.z)
    supports, or None when its minor is not in the table."""
    major, min_, patch = minor(karpenter)
    known = KARPENTER.get(f"{major}.{min_}")
    if known is None:
        return None
    top = known.max_k8s
    for k8s, first_patch in known.patch_floors:
        if k8s == top and patch < first_patch:
            top = f"1.{minor(top)[1] - 1}"
    return known.min_k8s, top


def karpenter_for(k8s: str, at_least: str = "0.0.0") -> str | None:
    """The oldest Karpenter release (x.y.z), not older than ``at_least``, that supports Kubernetes
    ``k8s``; None when no release in the table does."""
    for name, known in sorted(KARPENTER.items(), key=lambda item: minor(item[0])):
        if not minor(known.min_k8s) <= minor(k8s) <= minor(known.max_k8s):
            continue
        release = f"{name}.{dict(known.patch_floors).get(k8s, 0)}"
        if minor(release) >= minor(at_least):
            return release
        if minor(name) == minor(at_least)[:2]:
            return at_least  # the same minor, already at or past the patch that added k8s
    return None


def ami_release(alias: str) -> tuple[str, str] | None:
    """The Kubernetes range ``(lowest, highest)`` with AMIs in the release of ``al2023@<release>``,
    or None for a release not in the table."""
    release = alias.partition("@")[2]
    for name, low, high in AL2023_RELEASES:
        if name == release:
            return low, high
    return None


def _releases_with(k8s: str) -> list[str]:
    """AL2023 releases with AMIs for Kubernetes ``k8s``, newest first."""
    return [name for name, low, high in AL2023_RELEASES if minor(low) <= minor(k8s) <= minor(high)]


def first_ami_release(k8s: str) -> str | None:
    """The oldest AL2023 release with AMIs for Kubernetes ``k8s``, or None."""
    return next(reversed(_releases_with(k8s)), None)


def newest_ami_release(k8s: str) -> str | None:
    """The newest AL2023 release with AMIs for Kubernetes ``k8s``, or None."""
    return next(iter(_releases_with(k8s)), None)


def standard_support_versions(today: _dt.date) -> list[str]:
    """Kubernetes minors EKS creates in standard support on ``today``, oldest first."""
    return [v for v, cal in EKS_CALENDAR.items() if cal.released <= today <= cal.standard_end]


def support_state(k8s: str, today: _dt.date) -> str:
    """``standard``, ``extended``, ``ended`` (no new clusters) or ``unknown`` (not in the calendar)."""
    cal = EKS_CALENDAR.get(k8s)
    if cal is None:
        return "unknown"
    if today <= cal.standard_end:
        return "standard"
    if today < cal.extended_end:
        return "extended"
    return "ended"


# ----------------------------------------------------------------------------- add-ons

# NVIDIA device plugin (NVIDIA/k8s-device-plugin, Helm repository https://nvidia.github.io/k8s-device-plugin):
# AL2023 NVIDIA AMIs carry the driver and container toolkit but not the plugin, so without it no node
# advertises nvidia.com/gpu. v0.19.2 (2026-05-27) supports every Kubernetes version EKS creates.
NVIDIA_DEVICE_PLUGIN_REPOSITORY = "https://nvidia.github.io/k8s-device-plugin"
NVIDIA_DEVICE_PLUGIN_VERSION = "0.19.2"

# EKS managed add-ons the stack installs, each pinned per Kubernetes minor (never resolved at plan:
# AWS moves its default version under a running cluster, and an add-on resolved afresh at every plan
# would move with it, unasked; vpc-cni must move one minor at a time, terraform-aws-eks #2749). A
# Kubernetes step moves them with the cluster, in the same apply, after the node group.
# Sources (2026-12-01): kube-proxy and CoreDNS, the EKS user guide's version tables ("Manage
# kube-proxy", "Manage CoreDNS": latest version per Kubernetes minor; CoreDNS 1.36 is not in the
# table yet: the version a new 1.36 cluster got in 2026-09). vpc-cni and the EBS CSI driver are not
# tied to one Kubernetes minor (the user guide lists one vpc-cni version for every minor): the versions
# a new 1.36 cluster got as EKS's default in 2026-09, kept for every minor so a step never moves them.
# eks-pod-identity-agent (installed with ``cluster.pod_credentials: pod_identity`` only) is not tied to a
# Kubernetes minor either: v1.3.10-eksbuild.2 is the version awslabs/cdk-eks-blueprints pins for every minor
# 1.31-1.35 (lib/addons/eks-pod-identity-agent, 2026), kept for 1.30 and 1.36 likewise.
# Override any of them with ``cluster.addon_versions``.
EKS_ADDONS = ("vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver")
POD_IDENTITY_AGENT = "eks-pod-identity-agent"
_VPC_CNI, _EBS_CSI, _AGENT = "v1.22.4-eksbuild.3", "v1.63.1-eksbuild.1", "v1.3.10-eksbuild.2"
ADDON_VERSIONS: dict[str, dict[str, str]] = {
    "1.30": {"vpc-cni": _VPC_CNI, "kube-proxy": "v1.30.14-eksbuild.28", "coredns": "v1.11.4-eksbuild.24",
             "aws-ebs-csi-driver": _EBS_CSI, POD_IDENTITY_AGENT: _AGENT},
    "1.31": {"vpc-cni": _VPC_CNI, "kube-proxy": "v1.31.14-eksbuild.20", "coredns": "v1.11.4-eksbuild.24",
             "aws-ebs-csi-driver": _EBS_CSI, POD_IDENTITY_AGENT: _AGENT},
    "1.32": {"vpc-cni": _VPC_CNI, "kube-proxy": "v1.32.13-eksbuild.16", "coredns": "v1.11.4-eksbuild.33",
             "aws-ebs-csi-driver": _EBS_CSI, POD_IDENTITY_AGENT: _AGENT},
    "1.33": {"vpc-cni": _VPC_CNI, "kube-proxy": "v1.33.10-eksbuild.13", "coredns": "v1.13.2-eksbuild.4",
             "aws-ebs-csi-driver": _EBS_CSI, POD_IDENTITY_AGENT: _AGENT},
    "1.34": {"vpc-cni": _VPC_CNI, "kube-proxy": "v1.34.6-eksbuild.13", "coredns": "v1.13.2-eksbuild.7",
             "aws-ebs-csi-driver": _EBS_CSI, POD_IDENTITY_AGENT: _AGENT},
    "1.35": {"vpc-cni": _VPC_CNI, "kube-proxy": "v1.35.3-eksbuild.13", "coredns": "v1.14.2-eksbuild.4",
             "aws-ebs-csi-driver": _EBS_CSI, POD_IDENTITY_AGENT: _AGENT},
    "1.36": {"vpc-cni": _VPC_CNI, "kube-proxy": "v1.36.0-eksbuild.14", "coredns": "v1.14.3-eksbuild.16",
             "aws-ebs-csi-driver": _EBS_CSI, POD_IDENTITY_AGENT: _AGENT},
}


def vpc_cni_minor(version: str) -> int:
    """``v1.22.4-eksbuild.3`` -> 22 (EKS moves vpc-cni one minor at a time: terraform-aws-eks#2749)."""
    return int(version.lstrip("v").split(".")[1])


def addon_rank(version: str) -> int:
    """A number that orders EKS add-on versions ``vX.Y.Z-eksbuild.N`` (``vpc_cni_rank_hcl`` is its HCL twin)."""
    major, minor, patch_build = version.lstrip("v").split(".", 2)
    patch, build = patch_build.split("-eksbuild.")
    return ((int(major) * 1000 + int(minor)) * 1000 + int(patch)) * 1000 + int(build)


def addon_rank_hcl(expression: str) -> str:
    """HCL: ``addon_rank`` of the version the HCL ``expression`` holds (``v1.22.4-eksbuild.3`` splits on "."
    into v1, 22, 4-eksbuild, 3)."""
    part = f'split(".", {expression})'
    return (f'(((tonumber(trimprefix({part}[0], "v")) * 1000 + tonumber({part}[1])) * 1000 '
            f'+ tonumber(split("-", {part}[2])[0])) * 1000 + tonumber({part}[3]))')


def addon_versions(k8s: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """``{add-on: version}`` for Kubernetes ``k8s`` with ``overrides`` applied (``missing_addon_pins``
    names what a minor without pins lacks; the config guard refuses that)."""
    return {**ADDON_VERSIONS.get(k8s, {}), **(overrides or {})}


def installed_addons(pod_identity: bool) -> tuple[str, ...]:
    """The EKS add-ons a stack installs: ``EKS_ADDONS``, after the Pod Identity agent with Pod Identity."""
    return (POD_IDENTITY_AGENT, *EKS_ADDONS) if pod_identity else EKS_ADDONS


def missing_addon_pins(k8s: str, overrides: dict[str, str] | None = None,
                       addons: tuple[str, ...] = EKS_ADDONS) -> list[str]:
    """The ``addons`` with no version for Kubernetes ``k8s``, neither pinned nor in ``overrides``."""
    pinned = addon_versions(k8s, overrides)
    return [a for a in addons if a not in pinned]
