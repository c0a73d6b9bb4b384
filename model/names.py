"""Every AWS name derived from the cluster name, with the AWS limit it must fit.

The config accepts a cluster name only as long as every name derived from it fits
(``MAX_NAME_LENGTH``): what AWS would refuse at apply is refused at synth, and nothing shorter.
Most layers take their names from here; the few built beside their resources (the five controller
policy names, the interruption rules' suffixes, the cluster tag key) are listed by their longest
form. tests/test_limits.py checks every name in the synthesized JSON at the longest accepted name,
so neither can drift past a limit unnoticed.

Identity: every name here is fixed by the cluster name, and each of these resources is replaced when
its name changes (IAM roles, the queue, the log groups and the cluster itself cannot be renamed in
place), so ``name`` is latched at the first apply and a later change is refused at plan
(``constructs/network.py``, the identity latch). The controller node group is the exception on
purpose: a name *prefix*, so a replacement group can exist beside the old one.

Limits (AWS documentation, "IAM and AWS STS quotas", "Amazon EventBridge quotas", "Amazon SQS
quotas", "CreateCluster"): IAM role names 64 characters, IAM policy names 128, EventBridge rule
names 64, SQS queue names 80, EKS cluster names 100, KMS alias names 256, CloudWatch log group
names 512, EC2 tag keys 128.
"""

from __future__ import annotations

# what -> (template, AWS limit). ``{name}`` is the cluster name.
TEMPLATES: dict[str, tuple[str, int]] = {
    "cluster": ("{name}", 100),
    "queue": ("{name}", 80),
    "cluster_role": ("{name}-cluster", 64),
    "node_role": ("KarpenterNodeRole-{name}", 64),
    "controller_node_role": ("{name}-controller-node", 64),
    "controller_role": ("KarpenterController-{name}", 64),
    "ebs_csi_role": ("{name}-ebs-csi-driver", 64),
    "flow_logs_role": ("{name}-vpc-flow-logs", 64),
    "deployer_tfc_role": ("{name}-deployer-tfc", 64),  # state-bootstrap (model/deployer.py)
    "planner_tfc_role": ("{name}-planner-tfc", 64),
    "deployer_github_role": ("{name}-deployer-github", 64),
    "deployer_policy": ("{name}-deployer-10", 128),  # the longest of the deployer's managed policies
    "controller_policy": ("KarpenterControllerResourceDiscoveryPolicy-{name}", 128),  # the longest of the five
    "interruption_rule": ("{name}-karpenter-rebalance", 64),  # the longest suffix (karpenter.INTERRUPTION_EVENTS)
    "kms_alias": ("alias/{name}", 256),
    "cluster_log_group": ("/aws/eks/{name}/cluster", 512),
    "flow_log_group": ("/aws/vpc/{name}/flow-logs", 512),
    "cluster_tag_key": ("kubernetes.io/cluster/{name}", 128),
}

CONTROLLER_NODE_GROUP_PREFIX = "karpenter-controllers-"
"""The controller node group's name prefix; Terraform appends a 26-character unique suffix, so the name
is 48 of EKS's 63 characters. A prefix (not a fixed name) lets a replacement group exist beside the old
one (create_before_destroy: constructs/cluster.py)."""

MAX_NAME_LENGTH = min(limit - len(template.format(name="")) for template, limit in TEMPLATES.values())
"""The longest cluster name whose every derived name fits its AWS limit (44: KarpenterController-<name>)."""

LIMITING = min(TEMPLATES, key=lambda what: TEMPLATES[what][1] - len(TEMPLATES[what][0].format(name="")))


def derived(what: str, name: str) -> str:
    """The name ``what`` (a key of ``TEMPLATES``) for cluster ``name``."""
    return TEMPLATES[what][0].format(name=name)


def too_long_message(name: str) -> str:
    template, limit = TEMPLATES[LIMITING]
    return (f"is {len(name)} characters; use at most {MAX_NAME_LENGTH}: the IAM role "
            f"{template.replace('{name}', '<name>')} must fit AWS's {limit}-character limit")


# Account-wide, per region (the state-bootstrap stack's, stacks/state_bucket.py): the KMS key of the
# control-plane log groups, which outlive their environments (DESIGN fact 25), and where each
# environment finds it at plan. Fixed: one per account and region, whatever the environments are named.
KEPT_LOGS_KEY_ALIAS = "alias/platform/kept-logs"
KEPT_LOGS_PARAMETER_PATH = "/platform/kept-logs"
KEPT_LOGS_PARAMETER = f"{KEPT_LOGS_PARAMETER_PATH}/key-arn"
KEPT_LOG_GROUPS = TEMPLATES["cluster_log_group"][0].format(name="*")
"""The log groups the kept-logs key serves (its key policy's condition): every environment's control-plane group."""
