"""AWS's tag rules, shared by the stack's organisation ``tags`` and Karpenter's ``node_tags``."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints

STACK_TAG_KEYS = ("Environment", "ManagedBy", "Cluster")
"""The organisation tags the stack adds to every resource itself (stacks/platform.py)."""
VOLUME_CLUSTER_TAG = "Cluster"
"""On every PVC volume (constructs/addons.py); the teardown lists kept ones by it, a zone removal refuses them."""
FUNCTIONAL_TAGS_PER_RESOURCE = 7
"""The most tags one resource carries beside the organisation tags: an instance Karpenter launches
(karpenter.sh/discovery from the EC2NodeClass; kubernetes.io/cluster/<name>, karpenter.sh/nodepool,
eks:eks-cluster-name, karpenter.k8s.aws/ec2nodeclass from Karpenter 1.14's ``utils.GetTags``; Name
and karpenter.sh/nodeclaim from its node tagging). A private subnet carries 4."""
MAX_USER_TAGS = 50 - len(STACK_TAG_KEYS) - FUNCTIONAL_TAGS_PER_RESOURCE
"""AWS allows 50 user tags per resource; default_tags count against every resource's 50."""
TAG_PUNCTUATION = " _.:/=+-@"
# EC2NodeClass spec.tags (Karpenter 1.14.1 CRD, x-kubernetes-validations) refuses these keys; the
# stack's tags reach it (constructs/karpenter.py), so such a tag would roll back the NodePools release.
KARPENTER_RESERVED_TAGS = ("eks:eks-cluster-name", "karpenter.sh/nodepool", "karpenter.sh/nodeclaim",
                           "karpenter.k8s.aws/ec2nodeclass")


def _tag_text_problem(text: str) -> str | None:
    bad = sorted({ch for ch in text if not (ch.isalnum() or ch in TAG_PUNCTUATION)})
    if bad:
        return (f"has {' '.join(repr(ch) for ch in bad)}: IAM and EKS tags allow only letters, digits, spaces and "
                f"_ . : / = + - @; remove or replace them")
    return None


IDENTITY_TAG_KEYS = (*STACK_TAG_KEYS, "karpenter.sh/discovery")
"""Tags the stack's teardown, Karpenter's subnet and security-group discovery and the cost table read
to tell this environment's resources apart: a user tag must not shadow one, in any case."""


def _check_tags(tags: dict[str, str]) -> dict[str, str]:
    """AWS's tag rules (EC2, IAM, EKS "Tagging best practices" / TagResource): at most 50 per
    resource, keys 1-128 and values 0-256 characters (the field's type), no ``aws:`` prefix, IAM's
    character set (default_tags reach the IAM roles), no two keys that differ only in case (IAM
    refuses them: "Duplicate tag keys found. Please note that Tag keys are case insensitive"); no key
    that shadows the stack's identity tags (in any case); and the keys Karpenter's EC2NodeClass refuses."""
    if len(tags) > MAX_USER_TAGS:
        raise ValueError(f"has {len(tags)} tags; use at most {MAX_USER_TAGS}: AWS allows 50 per resource and the "
                         f"stack and Karpenter add up to {len(STACK_TAG_KEYS) + FUNCTIONAL_TAGS_PER_RESOURCE} (on a node)")
    seen: dict[str, str] = {}
    for key in tags:
        first = seen.setdefault(key.lower(), key)
        if first != key:
            raise ValueError(f"keys {first!r} and {key!r} differ only in case, and AWS treats tag keys as one "
                             "regardless of case (IAM refuses both); keep one")
    identity = {k.lower(): k for k in IDENTITY_TAG_KEYS}
    taken = [(k, identity[k.lower()]) for k in tags if k.lower() in identity]
    if taken:
        key, ours = taken[0]
        raise ValueError(f"key {key!r} would replace the stack's own {ours} tag, which the destroy-time cleanup and "
                         "Karpenter's discovery rely on to find this environment's resources; use another key")
    for key, value in tags.items():
        if key.lower().startswith("aws:"):
            raise ValueError(f"key {key!r}: the aws: prefix is reserved for AWS; rename the tag")
        if key in KARPENTER_RESERVED_TAGS or key.startswith("kubernetes.io/cluster"):
            raise ValueError(f"key {key!r} is reserved by Karpenter and EKS (its EC2NodeClass refuses it); rename the tag")
        for what, text in (("key", key), ("value", value)):
            problem = _tag_text_problem(text)
            if problem:
                raise ValueError(f"{what} {text!r} {problem}")
    return tags


Tags = Annotated[dict[Annotated[str, StringConstraints(min_length=1, max_length=128)],
                      Annotated[str, StringConstraints(max_length=256)]], AfterValidator(_check_tags)]


