"""The Karpenter layer's config (controller, NodePools) and the Kubernetes objects built from it:
the EC2NodeClass, the NodePools and the controller chart's values. Pure data, no provider bindings,
so config errors are instant and tests read the same builders the stack uses.

The objects follow Karpenter 1.14.1's CRDs, including the CEL rules the API server enforces on
top of the JSON Schema (``x-kubernetes-validations``; tests/test_cel.py evaluates them): a
NodePool's template labels may not use the ``karpenter.sh`` domain (except ``capacity-type``),
``karpenter.k8s.aws`` (except its well-known keys) or ``kubernetes.io/hostname``. Kubernetes also
reserves ``kubernetes.io`` and ``k8s.io`` for itself (Karpenter refuses such labels except under
``node.kubernetes.io`` and ``node-restriction.kubernetes.io``, its LabelDomainExceptions). The config
refuses those up front; Karpenter already labels each node ``karpenter.sh/nodepool=<pool>``.
"""

from __future__ import annotations

import functools
import json
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, StringConstraints, field_serializer, field_validator, model_validator

from model import aws, versions
from model.base import Duration, Model, hint
from model.cluster import CONTROLLER_LABEL, CONTROLLER_TOLERATION
from model.tags import Tags

NODE_CLASS = "default"
SEMVER_PATTERN = hint(r"^\d+\.\d+\.\d+$", lambda got: (
    f"drop the leading 'v': write {got[1:]}" if got.startswith("v") and got[1:].count(".") == 2 else
    "write the whole release number, major.minor.patch, such as 1.14.1 (model/versions.py lists the releases)"))
AMI_ALIAS_PATTERN = hint(r"^al2023@v\d{8}$", "use a pinned AL2023 alias such as al2023@v20260714 (al2023@latest would roll every node unannounced)")
POOL_NAME_PATTERN = hint(r"^[a-z][a-z0-9-]{0,62}$", "use up to 63 lower-case letters, digits and '-', starting with a letter")
LABEL_KEY_PATTERN = hint(r"^([a-z0-9.-]+/)?[A-Za-z0-9][-A-Za-z0-9_.]{0,62}$",
                         "use a Kubernetes label key: an optional DNS prefix and '/', then up to 63 letters, digits, '-', '_' or '.', e.g. example.com/team")
LABEL_VALUE_PATTERN = hint(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$",
                           "use up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit")
TAINT_PATTERN = hint(r"^[^=:\s]+(=[^:\s]*)?:(NoSchedule|PreferNoSchedule|NoExecute)$",
                     "write key=value:Effect with Effect NoSchedule, PreferNoSchedule or NoExecute, e.g. nvidia.com/gpu=true:NoSchedule")
WORD_PATTERN = hint(r"^[a-z]+$", "use lower-case letters only, e.g. c, m or r")
FAMILY_PATTERN = hint(r"^[a-z0-9-]+$", "use an instance family such as g5 or m7i")
BUDGET_PATTERN = hint(r"^((100|[0-9]{1,2})%|[0-9]+)$", "use a node count such as 1 or a percentage such as 10%")
CPU_PATTERN = hint(r"^\d+(\.\d+)?m?$", "use a CPU quantity such as 1, 0.5 or 500m")
MEMORY_PATTERN = hint(r"^\d+(Mi|Gi)$", "use a memory quantity in Mi or Gi such as 1Gi or 512Mi")

RESERVED_LABEL_DOMAINS = ("kubernetes.io", "k8s.io", "karpenter.sh", "karpenter.k8s.aws")
ALLOWED_RESERVED_DOMAINS = ("node.kubernetes.io", "node-restriction.kubernetes.io")
# Keys the 1.14.1 NodePool CRD lets a template label carry in Karpenter's own domains.
ALLOWED_RESERVED_KEYS = frozenset({"karpenter.sh/capacity-type"} | {f"karpenter.k8s.aws/{k}" for k in (
    "instance-tenancy", "capacity-reservation-type", "capacity-reservation-id", "capacity-reservation-interruptible",
    "ec2nodeclass", "instance-encryption-in-transit-supported", "instance-category", "instance-hypervisor",
    "instance-family", "instance-generation", "instance-local-nvme", "instance-size", "instance-cpu",
    "instance-cpu-manufacturer", "instance-cpu-sustained-clock-speed-mhz", "instance-memory", "instance-ebs-bandwidth",
    "instance-network-bandwidth", "instance-gpu-name", "instance-gpu-manufacturer", "instance-gpu-count",
    "instance-gpu-memory", "instance-accelerator-name", "instance-accelerator-manufacturer",
    "instance-accelerator-count", "instance-capability-flex", "placement-group-id", "placement-group-partition")})
GPU_CATEGORIES = ("g", "p")  # EC2 accelerated families with NVIDIA GPUs (g5, g6, p4d, p5...)


def reserved_label_problem(key: str) -> str | None:
    """Why a NodePool template label ``key`` would be refused (CRD rules, kubelet), or None."""
    domain = key.split("/", 1)[0] if "/" in key else ""
    if key in ALLOWED_RESERVED_KEYS or any(domain == d or domain.endswith("." + d) for d in ALLOWED_RESERVED_DOMAINS):
        return None
    for reserved in RESERVED_LABEL_DOMAINS:
        # the CRD's CEL rules test endsWith("karpenter.sh") without a dot: mykarpenter.sh is refused too
        dotless = reserved in ("karpenter.sh", "karpenter.k8s.aws")
        if domain == reserved or domain.endswith(reserved if dotless else "." + reserved):
            return (f"label {key} uses the {reserved} domain, which Kubernetes and Karpenter reserve (Karpenter "
                    f"already labels each node karpenter.sh/nodepool=<pool>); use your own domain, e.g. example.com/{key.split('/')[-1]}")
    return None


class NodePoolConfig(Model):
    """One Karpenter NodePool (karpenter.sh/v1) on the shared EC2NodeClass."""

    capacity_types: tuple[Literal["on-demand", "spot"], ...] = Field(
        ("on-demand",), min_length=1, description="karpenter.sh/capacity-type values; Karpenter prefers spot when both are allowed.")
    instance_categories: tuple[Annotated[str, StringConstraints(pattern=WORD_PATTERN)], ...] = Field(
        (), description="karpenter.k8s.aws/instance-category values, e.g. [c, m, r]."
    )
    instance_families: tuple[Annotated[str, StringConstraints(pattern=FAMILY_PATTERN)], ...] = Field(
        (), description="karpenter.k8s.aws/instance-family values, e.g. [g5, g6]."
    )
    min_generation: int | None = Field(5, ge=1, description="Lowest karpenter.k8s.aws/instance-generation (exclusive of older).")
    architectures: tuple[Literal["amd64", "arm64"], ...] = Field(("amd64",), min_length=1, description="kubernetes.io/arch values.")
    cpu_limit: int = Field(100, ge=1, description="Total vCPU the pool may provision.")
    memory_limit_gi: int = Field(400, ge=1, description="Total memory (GiB) the pool may provision.")
    labels: dict[Annotated[str, StringConstraints(pattern=LABEL_KEY_PATTERN)],
                 Annotated[str, StringConstraints(pattern=LABEL_VALUE_PATTERN)]] = Field(
        default_factory=dict,
        description="Labels on the pool's nodes (workloads select the pool with them); not in the kubernetes.io, "
        "k8s.io, karpenter.sh or karpenter.k8s.aws domains.")
    taints: tuple[Annotated[str, StringConstraints(pattern=TAINT_PATTERN)], ...] = Field(
        (), description="Taints as key=value:Effect, e.g. nvidia.com/gpu=true:NoSchedule."
    )
    consolidation_policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"] = Field(
        "WhenEmptyOrUnderutilized", description="WhenEmpty never moves running pods (databases); the other packs nodes tighter.")
    consolidate_after: Duration = Field(
        "1m", description="How long a node must be consolidatable before Karpenter acts (Go duration or Never).")
    expire_after: Duration = Field(
        "720h", description="Node lifetime before replacement (picks up new AMIs/patches), or Never.")
    termination_grace_period: Duration = Field(
        "1h",
        description="How long a node may drain before Karpenter terminates it anyway: a PodDisruptionBudget that "
        "never allows an eviction must not stall an AMI roll or a destroy forever. Never = wait for every PDB.")
    disruption_budget_nodes: Annotated[str, StringConstraints(pattern=BUDGET_PATTERN)] = Field(
        "10%", description="How many nodes (count or %) may be disrupted at once."
    )
    weight: int | None = Field(None, ge=1, le=100, description="Priority among pools that fit a pod (higher first).")
    enabled: bool = Field(True, description="false removes the pool (as `<name>: null` does): Karpenter drains and "
                                            "terminates its nodes.")

    @field_validator("labels")
    @classmethod
    def _label_domains(cls, v: dict[str, str]) -> dict[str, str]:
        problems = [p for p in map(reserved_label_problem, v) if p]
        if problems:
            raise ValueError("; ".join(problems))
        return v

    @model_validator(mode="after")
    def _selects_something(self) -> NodePoolConfig:
        if not self.instance_categories and not self.instance_families:
            raise ValueError("set instance_categories or instance_families so the pool has a bounded instance set")
        unknown = [c for c in self.instance_categories if c not in aws.categories()]
        unknown += [f for f in self.instance_families if f not in aws.families()]
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: no EC2 instance type has such a category or family; fix the "
                             f"spelling (categories such as c, m, r, g; families such as m7i, g6), or "
                             f"{aws.newer_hint()}")
        chosen = aws.selected_families(categories_=self.instance_categories, families_=self.instance_families,
                                       min_generation=self.min_generation, architectures=self.architectures)
        if not chosen:
            asked = [f"{k} [{', '.join(v)}]" for k, v in (("instance_categories", self.instance_categories),
                                                         ("instance_families", self.instance_families)) if v]
            asked.append(f"architectures [{', '.join(self.architectures)}]")
            if self.min_generation is not None:
                asked.append(f"min_generation {self.min_generation}")
            listed = ", ".join(asked[:-1]) + " and " + asked[-1]
            raise ValueError(f"{listed} select no EC2 instance type, so Karpenter would launch "
                             f"nothing for this pool; {self._conflict()}")
        return self

    def _conflict(self) -> str:
        """The requirement that empties the pool's selection, and its fix, in words."""
        def select(**changes: Any) -> list[str]:
            asked = dict(categories_=self.instance_categories, families_=self.instance_families,
                         min_generation=self.min_generation, architectures=self.architectures) | changes
            return aws.selected_families(**asked)

        archs = ", ".join(self.architectures)
        if not select(min_generation=None):  # the generation is not what empties it
            other = select(min_generation=None, architectures=("amd64", "arm64"))
            has = sorted({aws.architecture(f) for f in other})
            if other:
                return (f"they have {', '.join(has)} types only, none for architectures [{archs}]; set architectures "
                        f"to [{', '.join(has)}], or choose families that have {archs} types")
            return "no family is in both instance_categories and instance_families; keep one of the two lists"
        newest = max(aws.family_parts(f)[1] for f in select(min_generation=None))
        return (f"the newest generation they have is {newest}; set min_generation to {newest} or lower (or to null "
                "for a list of families)")

    @property
    def may_launch_nvidia_gpus(self) -> bool:
        """Whether the pool can launch NVIDIA GPU instances (g*/p* categories or families)."""
        return any(c in GPU_CATEGORIES for c in self.instance_categories) or any(
            f[:1] in GPU_CATEGORIES and f[1:2].isdigit() for f in self.instance_families)


def _default_pools() -> dict[str, NodePoolConfig]:
    """The default pools, with explicit weights: a pod that selects no pool lands on ``stateful``
    (on-demand, never consolidated while busy), so a database cannot land on spot by accident; pods
    opt into spot by selecting ``workload-type: stateless``; ``gpu`` is tainted, so only pods that
    tolerate ``nvidia.com/gpu`` land there. Weights are outside the NodePool template (Karpenter's
    drift hash): changing one replaces no node."""
    return {
        "stateful": NodePoolConfig(
            capacity_types=("on-demand",),
            instance_categories=("m", "r"),
            labels={"workload-type": "stateful"},
            consolidation_policy="WhenEmpty",
            consolidate_after="10m",
            expire_after="Never",
            # longer than the others: a database's PDB may legitimately hold a drain for a while; set
            # Never where a PDB must always win (a destroy then waits for it, up to the Helm timeout)
            termination_grace_period="4h",
            disruption_budget_nodes="1",
            weight=100,
        ),
        "stateless": NodePoolConfig(
            capacity_types=("spot", "on-demand"),
            instance_categories=("c", "m"),
            labels={"workload-type": "stateless"},
            consolidation_policy="WhenEmptyOrUnderutilized",
            consolidate_after="1m",
            expire_after="720h",
            disruption_budget_nodes="10%",
            weight=50,
        ),
        "gpu": NodePoolConfig(
            capacity_types=("on-demand",),
            instance_families=("g5", "g6"),
            min_generation=None,
            cpu_limit=64,
            memory_limit_gi=256,
            labels={"workload-type": "gpu", "nvidia.com/gpu.present": "true"},
            taints=("nvidia.com/gpu=true:NoSchedule",),
            consolidation_policy="WhenEmpty",
            consolidate_after="5m",
            expire_after="720h",
            disruption_budget_nodes="1",
            weight=10,
        ),
    }


@functools.cache
def _default_pool_settings() -> dict[str, dict[str, Any]]:
    return {n: p.model_dump(mode="json") for n, p in _default_pools().items()}


def merged_pools(listed: dict[str, Any]) -> dict[str, Any]:
    """``karpenter.nodepools`` as written in a file, merged over the default pools: a default pool
    stays unless the file sets it to ``null`` (or ``enabled: false``); a listed default pool takes
    the keys the file gives over the default's (a list replaces the default's list); any other name
    is a new pool. So adding ``batch`` keeps ``stateful``, ``stateless`` and ``gpu`` running. Within a
    listed default pool, ``labels`` merge with the default's (``<label>: null`` drops one: workloads
    select the pool by ``workload-type``, which a new label must not take away)."""
    defaults = _default_pool_settings()
    out: dict[str, Any] = {n: dict(v) for n, v in defaults.items()}
    for name, value in listed.items():
        if value is None:
            if name not in defaults:
                raise ValueError(f"nodepools.{name}: null removes a default pool ({', '.join(defaults)}), and "
                                 f"{name} is none of them; fix the name, or delete the line")
            out.pop(name)
        elif name in defaults and isinstance(value, dict):
            pool = {**defaults[name], **value}
            if isinstance(value.get("labels"), dict):  # a map merges (as Helm merges values); null drops a label
                labels = {**defaults[name]["labels"], **value["labels"]}
                pool["labels"] = {k: v for k, v in labels.items() if v is not None}
            out[name] = pool
        else:
            out[name] = value
    return out


def _nullable_values(schema: dict[str, Any]) -> None:
    """JSON Schema: a pool may be ``null`` (removes a default pool), so editors accept ``gpu: null``."""
    patterns = schema["patternProperties"]
    for key, value in patterns.items():
        patterns[key] = {"anyOf": [value, {"type": "null"}]}


class ControllerResources(Model):
    """CPU and memory of each Karpenter controller pod (requests = limits, as upstream recommends)."""

    cpu: Annotated[str, StringConstraints(pattern=CPU_PATTERN)] = Field("1", description="CPU, e.g. 1 or 500m.")
    memory: Annotated[str, StringConstraints(pattern=MEMORY_PATTERN)] = Field("1Gi", description="Memory, e.g. 1Gi.")

    @property
    def millicores(self) -> int:
        return int(self.cpu[:-1]) if self.cpu.endswith("m") else int(float(self.cpu) * 1000)

    @property
    def mebibytes(self) -> int:
        return int(self.memory[:-2]) * (1024 if self.memory.endswith("Gi") else 1)


class KarpenterConfig(Model):
    """Karpenter controller (Helm), its interruption queue and the NodePools."""

    version: Annotated[str, StringConstraints(pattern=SEMVER_PATTERN)] = Field(
        versions.DEFAULT_KARPENTER, description="Karpenter chart and controller version (karpenter-crd uses the same).")
    replicas: int | None = Field(
        None, ge=1, description="Controller replicas; default min(2, cluster.node_min_size). Never above the controller node count."
    )
    ami_alias: Annotated[str, StringConstraints(pattern=AMI_ALIAS_PATTERN)] = Field(
        versions.DEFAULT_AMI_ALIAS,
        description="EC2NodeClass amiSelectorTerms alias, pinned (not @latest: a new AMI would roll every node "
        "unannounced); its release must have AMIs for cluster.version.",
    )
    root_volume_size_gi: int = Field(100, ge=20, le=16384, description="Encrypted gp3 root volume of Karpenter's nodes, GiB.")
    node_tags: Tags = Field(
        default_factory=dict,
        description="Extra tags on the instances and volumes Karpenter launches (cost allocation), beside Environment, "
        "ManagedBy and Cluster. Changing them replaces every Karpenter node (EC2NodeClass drift); the top-level tags "
        "never reach Karpenter's nodes, so an organisation tag edit rolls no node.")
    controller_resources: ControllerResources = Field(default_factory=ControllerResources)
    log_level: Literal["debug", "info", "error"] = Field("info", description="Controller log level.")
    helm_timeout_seconds: int = Field(900, ge=60, le=3600, description="How long Helm waits for the releases to be ready.")
    nodepools: dict[Annotated[str, StringConstraints(pattern=POOL_NAME_PATTERN)], NodePoolConfig] = Field(
        default_factory=_default_pools, json_schema_extra=_nullable_values,
        description="NodePools by name, merged over the default stateful, stateless and gpu pools: a new name adds a "
        "pool; a default's name changes only the keys given (a list replaces the default's list, labels merge with "
        "its labels); `<name>: null` (or "
        "`enabled: false`) removes a default pool, and its nodes are drained. At least one pool must remain.")

    @model_validator(mode="before")
    @classmethod
    def _pools_over_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("nodepools"), dict):
            data = {**data, "nodepools": merged_pools(data["nodepools"])}
        return data

    @field_serializer("nodepools")
    def _dump_pools(self, pools: dict[str, NodePoolConfig]) -> dict[str, Any]:
        """The pools, and ``null`` for each default pool removed, so a dump loads back to the same pools."""
        return {**{n: None for n in _default_pool_settings() if n not in pools}, **pools}

    @field_validator("nodepools")
    @classmethod
    def _some_pool(cls, v: dict[str, NodePoolConfig]) -> dict[str, NodePoolConfig]:
        v = {name: pool for name, pool in v.items() if pool.enabled}
        if not v:
            raise ValueError("removes every pool: Karpenter would launch no node at all; keep at least one (a default "
                             "pool stays unless it is set to null or enabled: false)")
        return v

    @property
    def may_launch_nvidia_gpus(self) -> bool:
        return any(pool.may_launch_nvidia_gpus for pool in self.nodepools.values())


# ----------------------------------------------------------------------------- Kubernetes objects


class _Dumper(yaml.SafeDumper):
    """Plain YAML for Helm values: no &anchors/*aliases for repeated objects, and every string quoted.
    Helm reads values with a YAML 1.1 reader that turns more plain scalars into other types than
    PyYAML guards against (``y``/``n`` become booleans, ``1e3`` or ``0o17`` numbers): a label value
    would reach the API server as a non-string and be refused, or change meaning."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"' if "\n" in value else "'")


_Dumper.add_representer(str, _represent_str)


def to_yaml(value: Any) -> str:
    return yaml.dump(value, Dumper=_Dumper, sort_keys=False)


def taint(spec: str) -> dict[str, str]:
    """``key=value:Effect`` (value optional) -> a Kubernetes taint."""
    key_value, effect = spec.rsplit(":", 1)
    key, _, value = key_value.partition("=")
    out = {"key": key, "effect": effect}
    if value:
        out["value"] = value
    return out


def ec2_node_class(*, name: str, role_name: str, config: KarpenterConfig, tags: dict[str, str],
                   subnet_ids: tuple[str, ...] = ()) -> dict[str, Any]:
    """The EC2NodeClass every pool uses (karpenter.k8s.aws/v1). Subnets by the discovery tag, or by
    ``subnet_ids`` in a network the stack cannot tag (an existing one, often shared through AWS RAM)."""
    discovery = [{"tags": {"karpenter.sh/discovery": name}}]
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": NODE_CLASS},
        "spec": {
            "role": role_name,
            "amiSelectorTerms": [{"alias": config.ami_alias}],
            "subnetSelectorTerms": [{"id": s} for s in subnet_ids] or discovery,
            "securityGroupSelectorTerms": discovery,
            # IMDSv2 only, one hop: pods (one hop further away) cannot reach the node's credentials.
            "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                                "httpPutResponseHopLimit": 1, "httpTokens": "required"},
            "blockDeviceMappings": [{"deviceName": "/dev/xvda", "ebs": {
                "volumeSize": f"{config.root_volume_size_gi}Gi", "volumeType": "gp3", "encrypted": True,
                "deleteOnTermination": True}}],
            "tags": {"karpenter.sh/discovery": name, **tags},
        },
    }


def node_pool(pool_name: str, pool: NodePoolConfig) -> dict[str, Any]:
    """One NodePool (karpenter.sh/v1) from its typed config."""
    requirements: list[dict[str, Any]] = [
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(pool.capacity_types)},
        {"key": "kubernetes.io/arch", "operator": "In", "values": list(pool.architectures)},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
    ]
    if pool.instance_categories:
        requirements.append({"key": "karpenter.k8s.aws/instance-category", "operator": "In",
                             "values": list(pool.instance_categories)})
    if pool.instance_families:
        requirements.append({"key": "karpenter.k8s.aws/instance-family", "operator": "In",
                             "values": list(pool.instance_families)})
    if pool.min_generation is not None:
        requirements.append({"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt",
                             "values": [str(pool.min_generation - 1)]})
    template_spec: dict[str, Any] = {
        "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": NODE_CLASS},
        "requirements": requirements,
        "expireAfter": pool.expire_after,
    }
    if pool.termination_grace_period != "Never":
        template_spec["terminationGracePeriod"] = pool.termination_grace_period
    if pool.taints:
        template_spec["taints"] = [taint(t) for t in pool.taints]
    template: dict[str, Any] = {"spec": template_spec}
    if pool.labels:
        template = {"metadata": {"labels": dict(pool.labels)}, **template}
    spec: dict[str, Any] = {
        "template": template,
        "disruption": {"consolidationPolicy": pool.consolidation_policy, "consolidateAfter": pool.consolidate_after,
                       "budgets": [{"nodes": pool.disruption_budget_nodes}]},
        "limits": {"cpu": str(pool.cpu_limit), "memory": f"{pool.memory_limit_gi}Gi"},
    }
    if pool.weight is not None:
        spec["weight"] = pool.weight
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": pool_name}, "spec": spec}


POD_CREDENTIALS_ANNOTATION = "platform/pod-credentials"
"""A pod-template annotation naming the credential mode, set with Pod Identity only: EKS injects credentials
when a pod is created, so a switch must restart the controllers that use them (a changed pod template rolls
its Deployment); IRSA, the default, sets none, so an existing IRSA environment's pods are untouched."""


def pod_credentials_annotations(pod_credentials: str) -> dict[str, str]:
    """``{annotation: mode}`` for the pod templates of the platform's controllers, or ``{}`` under IRSA."""
    return {POD_CREDENTIALS_ANNOTATION: pod_credentials} if pod_credentials != "irsa" else {}


def controller_values(*, name: str, endpoint: str, queue_name: str, replicas: int, service_account: str,
                      config: KarpenterConfig, pod_credentials: str = "irsa") -> dict[str, Any]:
    """Values for the karpenter chart. Every key exists in the 1.14.1 chart's values.yaml. The service account
    is the stack's (``serviceAccount.create: false``): no IRSA annotation in the values in either mode."""
    resources = {"cpu": config.controller_resources.cpu, "memory": config.controller_resources.memory}
    annotations = pod_credentials_annotations(pod_credentials)
    return {
        "settings": {"clusterName": name, "clusterEndpoint": endpoint, "interruptionQueue": queue_name},
        "serviceAccount": {"create": False, "name": service_account},
        "replicas": replicas,
        "dnsPolicy": "Default",
        "nodeSelector": {"kubernetes.io/os": "linux", **CONTROLLER_LABEL},
        # tolerates the controller node group's taint (EKS spells NO_SCHEDULE, Kubernetes NoSchedule)
        "tolerations": [dict(CONTROLLER_TOLERATION)],
        "controller": {"resources": {"requests": resources, "limits": resources}},
        "logLevel": config.log_level,
        **({"podAnnotations": annotations} if annotations else {}),
    }


RUNNING_POOLS = "running_nodepools"


def removed_pools_check(pools: list[str], depends_on: list[str]) -> dict[str, Any]:
    """A ``check`` block (Terraform JSON) that says at plan, in words, which running NodePools the
    plan removes: it lists the cluster's NodePools (``kubernetes_resources``, a data source scoped to
    the check, so a cluster that cannot be read yet gives a warning, never a failed plan) and warns
    for each one ``pools`` no longer has: Karpenter drains and terminates its nodes. ``depends_on``:
    the CRD release (on a first apply the list is read once the NodePool kind exists); a plan that
    also upgrades that release reads the list at apply instead, and says it then."""
    listed = json.dumps(sorted(pools))
    running = f"data.kubernetes_resources.{RUNNING_POOLS}.objects"
    gone = f'join(", ", [for o in {running} : o.metadata.name if !contains({listed}, o.metadata.name)])'
    return {
        "data": {"kubernetes_resources": {RUNNING_POOLS: {
            "api_version": "karpenter.sh/v1", "kind": "NodePool", "depends_on": depends_on}}},
        "assert": [{
            "condition": f"${{alltrue([for o in {running} : contains({listed}, o.metadata.name)])}}",
            "error_message": f"karpenter.nodepools: this plan deletes the running NodePool ${{{gone}}}: Karpenter "
                             "drains and terminates its nodes (each within its pool's termination_grace_period). "
                             "If you meant to keep it, put it back in the environment file (a default pool stays "
                             "unless it is set to null or enabled: false) before you apply.",
        }],
    }


def longest_drain_seconds(config: KarpenterConfig) -> int:
    """The longest ``termination_grace_period`` of any pool, in seconds (0 when every pool says Never)."""
    def seconds(duration: str) -> int:
        total, number = 0, ""
        for ch in duration:
            if ch.isdigit():
                number += ch
            else:
                total += int(number) * {"h": 3600, "m": 60, "s": 1}[ch]
                number = ""
        return total
    return max((seconds(p.termination_grace_period) for p in config.nodepools.values()
                if p.termination_grace_period != "Never"), default=0)
