"""moto's server plus the EKS, CloudWatch Logs and EC2-delete fidelity patches this project's Terraform
round-trips need.

Run it like ``moto_server``::

    python tests/emulator/moto_plus.py -H 127.0.0.1 -p PORT

Stock moto 5.2.5 emulates EKS well enough for boto3 smoke tests, but not for ``terraform apply``
followed by a clean re-plan of this stack. Each patch below fills one gap and says which; together:

==========================  ================================================================
patch                       moto 5.2.5 gap it fills (what breaks without it)
==========================  ================================================================
``cluster_oidc_issuer``     one OIDC issuer id per *process* (ISSUER_TEMPLATE is formatted at
                            import): all clusters share one issuer, so a second cluster's (or an
                            orphaned cluster's) ``aws_iam_openid_connect_provider`` collides
                            (EntityAlreadyExists) and IRSA trusts of clusters look alike.
``cluster_security_group``  no EKS-created cluster security group: ``clusterSecurityGroupId``
                            is absent, so ``aws_ec2_tag`` on it fails (``InvalidID ''``). The
                            group is created in EC2 with the cluster and deleted with it.
``cluster_access_config``   ``accessConfig`` is dropped on CreateCluster: DescribeCluster
                            returns none, so every plan wants to replace ``aws_eks_cluster``.
``cluster_updates``         UpdateClusterConfig replaces the whole VPC config (losing the
                            cluster SG), ignores ``accessConfig``, answers without an
                            ``update``; DescribeUpdate/ListUpdates do not exist. In-place
                            cluster / node group / add-on changes therefore cannot complete.
``cluster_versions``        a cluster without ``version`` runs 1.19, any version string is
                            taken, and UpdateClusterVersion does not exist: a Kubernetes
                            upgrade cannot be applied. EKS's rules: supported minors only, one
                            minor per step, node groups at the cluster's version first.
``cluster_upgrade_policy``  ``upgradePolicy`` is dropped on Create/UpdateClusterConfig: every
                            plan wants to update ``aws_eks_cluster.upgrade_policy``.
``nodegroup_remote_access`` a node group created without ``remoteAccess`` gets an invented
                            ``{ec2SshKey: eksKeypair}`` and a fake remote-access SG id, so every
                            plan wants to replace ``aws_eks_node_group``.
``nodegroup_update_config`` CreateNodegroup drops ``updateConfig``; DescribeNodegroup returns
                            none (EKS: the request's, default ``{maxUnavailable: 1}``), so every
                            plan wants to update ``aws_eks_node_group.update_config``.
``nodegroup_versions``      a node group defaults to 1.19 / release 1.19.8-20210414 whatever its
                            cluster runs; UpdateNodegroupVersion does not exist, so
                            ``aws_eks_node_group.version`` cannot follow a cluster upgrade.
``addons``                  EKS add-ons are not implemented (no routes): ``aws_eks_addon`` and
                            ``data.aws_eks_addon_version`` fail. Versions per Kubernetes minor
                            1.30-1.36 with one ``defaultVersion`` each (``ADDON_VERSIONS``).
``access_entries``          EKS access entries and access-policy associations are not
                            implemented (no routes): ``aws_eks_access_entry`` cannot be created.
``access_policies``         AssociateAccessPolicy (of ``access_entries``) takes any policy ARN
                            and scope; EKS refuses unknown policies, malformed scopes and
                            policies on node-type entries. ListAccessPolicies does not exist.
``pod_identity_associations`` EKS Pod Identity associations are not implemented (no routes):
                            ``aws_eks_pod_identity_association`` cannot be created. (The
                            ``eks-pod-identity-agent`` add-on is one of ``addons``' versions.)
``tagging``                 TagResource/UntagResource/ListTagsForResource only know clusters;
                            tag changes on node groups, access entries, add-ons and
                            associations fail.
``logs_kms_key``            CloudWatch Logs has no AssociateKmsKey/DisassociateKmsKey (500, the
                            provider retries for minutes): an imported log group (EKS re-creates
                            ``/aws/eks/<name>/cluster`` after a destroy) cannot get its
                            ``kms_key_id``.
``ec2_delete_dependencies`` EC2 deletes a subnet with interfaces or a load balancer in it, a
                            security group another group's rule, an interface or a load balancer
                            uses, a VPC with non-default groups or an attached internet gateway
                            (AWS: ``DependencyViolation``); DeleteNatGateway keeps its interface;
                            TerminateInstances keeps the primary interface EC2 made at launch
                            (AWS: DeleteOnTermination, so the subnet can go once the node is gone).
                            A destroy that leaves workload leftovers passes here, fails in AWS.
``service_quotas``          Service Quotas knows only ``vpc``: no EC2 quota (Elastic IPs, vCPUs),
                            no GetAWSDefaultServiceQuota or RequestServiceQuotaIncrease, so the
                            preflight's ``aws_servicequotas_service_quota`` reads fail.
``iam_enforcement``         moto enforces IAM when asked (``POST /moto-api/reset-auth``), but:
                            every EKS call (any GET without a query) fails
                            ``SignatureDoesNotMatch`` (the check signs the headers as the body
                            when there is none); a statement naming a
                            resource never allows anything (moto passes ``*`` as the resource of
                            nearly every call, and ``arn:...`` does not match ``*``); conditions
                            are not evaluated. This patch signs an empty body as empty, takes an unknown
                            resource as matching (the emulator proves actions; resources are
                            reviewed), evaluates ``aws:RequestedRegion`` (the request's region)
                            and leaves condition keys it cannot know (tags, ``iam:*``) satisfied,
                            listing each in its log; a failed condition leaves a statement out
                            (AWS), never turning an Allow into a Deny (moto 5.2.5 returns DENIED);
                            AccessDenied comes in each protocol's error shape, naming the
                            action (moto's one XML shape reads as ``UnknownError`` to the Go SDK).
``logs_kms_reads``          CloudWatch Logs reads and writes events whatever the state of the
                            KMS key they were ingested under: a kept log group whose key a
                            destroy scheduled for deletion stays readable here, never in AWS
                            (GetLogEvents/FilterLogEvents/PutLogEvents: AccessDeniedException).
``local_zones``             an account sees only its region's availability zones; an opted-in
                            Local Zone (``us-east-1-bos-1a``, zone type ``local-zone``), which
                            DescribeAvailabilityZones lists beside them in AWS, is missing.
==========================  ================================================================

The patches are written against moto **5.2.5** internals (class attributes, private response
plumbing). ``apply()`` refuses any other version with ``MotoVersionError``: when moto is upgraded,
re-check every gap (``tests/test_moto_extension.py`` asserts the stock behaviours these patches
replace, so a gap fixed upstream is noticed) and move the pin deliberately.

This module has no side effects on import; only ``apply()`` patches moto, and only in the process
that calls it (the emulator subprocess, never the test process).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

PINNED_MOTO_VERSION = "5.2.5"


class MotoVersionError(RuntimeError):
    """The installed moto is not the version the patches were written against."""


def check_moto_version(version: str | None = None) -> str:
    """Return moto's version; raise ``MotoVersionError`` unless it is ``PINNED_MOTO_VERSION``."""
    if version is None:
        import moto

        version = moto.__version__
    if version != PINNED_MOTO_VERSION:
        raise MotoVersionError(
            f"tests/emulator/moto_plus.py patches moto {PINNED_MOTO_VERSION} internals but moto {version} is "
            f"installed. Pin moto[server]=={PINNED_MOTO_VERSION}, or port the patches: run "
            "tests/test_moto_extension.py against the new version, drop the patches whose gap is fixed "
            "upstream, then update PINNED_MOTO_VERSION."
        )
    return version


# ----------------------------------------------------------------------------- helpers


def _eks():
    """moto's EKS modules (imported lazily so importing this module never needs them)."""
    import moto.eks.models as models
    import moto.eks.responses as responses
    import moto.eks.urls as urls

    return models, responses, urls


def _wrap(owner: Any, name: str, make: Callable[[Callable], Callable]) -> None:
    """Replace ``owner.name`` by ``make(original)``; refuse when the original is missing."""
    original = getattr(owner, name, None)
    if original is None:
        raise MotoVersionError(f"moto {PINNED_MOTO_VERSION} layout changed: {owner.__name__}.{name} is missing")
    setattr(owner, name, functools.wraps(original)(make(original)))


def _not_found(message: str) -> Exception:
    from moto.eks.exceptions import ResourceNotFoundException

    return ResourceNotFoundException(clusterName=None, nodegroupName=None, fargateProfileName=None, addonName=None,
                                     message=message)


def _in_use(message: str) -> Exception:
    from moto.eks.exceptions import ResourceInUseException

    return ResourceInUseException(clusterName=None, nodegroupName=None, addonName=None, message=message)


def _invalid(message: str) -> Exception:
    from moto.eks.exceptions import InvalidParameterException

    return InvalidParameterException(clusterName=None, nodegroupName=None, fargateProfileName=None, addonName=None,
                                     message=message)


def _cluster(backend: Any, name: str) -> Any:
    try:
        return backend.clusters[name]
    except KeyError:
        raise _not_found(f"No cluster found for name: {name}.") from None


def _ec2(account_id: str, region: str) -> Any:
    from moto.ec2.models import ec2_backends

    return ec2_backends[account_id][region]


def _random() -> Any:
    from moto.moto_api._internal import mock_random

    return mock_random


def _now() -> Any:
    from moto.core.utils import utcnow

    return utcnow()


def _log(message: str) -> None:
    print(f"moto_plus: {message}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- cluster


def cluster_oidc_issuer() -> None:
    """Gap: moto formats ``ISSUER_TEMPLATE`` with one random id at import, so every cluster of the
    process shares one OIDC issuer: two clusters alive at once (a second stack, a cluster orphaned by
    a crashed apply) collide on the IAM OIDC provider URL. EKS gives each cluster its own
    ``https://oidc.eks.<region>.amazonaws.com/id/<32 upper-case hex>``; so does this patch."""
    models, _, _ = _eks()

    def make(original: Callable) -> Callable:
        def create_cluster(self: Any, *args: Any, **kwargs: Any) -> Any:
            cluster = original(self, *args, **kwargs)
            issuer_id = _random().get_random_hex(32).upper()
            cluster.identity = {"oidc": {"issuer": f"https://oidc.eks.{self.region_name}.amazonaws.com/id/{issuer_id}"}}
            return cluster

        return create_cluster

    _wrap(models.EKSBackend, "create_cluster", make)


def cluster_security_group() -> None:
    """Gap: EKS creates a "cluster security group" in the cluster's VPC and returns its id as
    ``resourcesVpcConfig.clusterSecurityGroupId`` (plus ``vpcId``); moto returns the request's VPC
    config verbatim. This patch validates the subnets, creates that group in moto's EC2 (tagged
    like EKS does), fills ``clusterSecurityGroupId``/``vpcId`` and EKS's defaults for the endpoint
    flags, and deletes the group again on DeleteCluster, as EKS does."""
    models, _, _ = _eks()

    def make_create(original: Callable) -> Callable:
        def create_cluster(self: Any, name: str, role_arn: str, resources_vpc_config: dict, *args: Any,
                           **kwargs: Any) -> Any:
            vpc_config = dict(resources_vpc_config or {})
            subnet_ids = vpc_config.get("subnetIds") or []
            ec2 = _ec2(self.account_id, self.region_name)
            vpc_ids = set()
            for subnet_id in subnet_ids:
                try:
                    vpc_ids.add(ec2.get_subnet(subnet_id).vpc_id)
                except Exception:
                    raise _invalid(f"Subnet {subnet_id} does not exist") from None
            if len(vpc_ids) > 1:
                raise _invalid("Subnets specified must be in the same VPC")
            if name not in self.clusters and vpc_ids:
                vpc_id = vpc_ids.pop()
                group = ec2.create_security_group(
                    name=f"eks-cluster-sg-{name}-{_random().get_random_string(10, lower_case=True)}",
                    description="EKS created security group applied to ENI that is attached to EKS Control Plane "
                                "master nodes, as well as any managed workloads.",
                    vpc_id=vpc_id,
                    tags={"Name": f"eks-cluster-sg-{name}", f"kubernetes.io/cluster/{name}": "owned",
                          "aws:eks:cluster-name": name},
                )
                vpc_config.update(clusterSecurityGroupId=group.id, vpcId=vpc_id)
            vpc_config.setdefault("securityGroupIds", [])
            vpc_config.setdefault("endpointPublicAccess", True)
            vpc_config.setdefault("endpointPrivateAccess", False)
            vpc_config.setdefault("publicAccessCidrs", ["0.0.0.0/0"])
            try:
                return original(self, name, role_arn, vpc_config, *args, **kwargs)
            except Exception:
                if vpc_config.get("clusterSecurityGroupId") and name not in self.clusters:
                    ec2.delete_security_group(group_id=vpc_config["clusterSecurityGroupId"])
                raise

        return create_cluster

    def make_delete(original: Callable) -> Callable:
        def delete_cluster(self: Any, name: str) -> Any:
            cluster = original(self, name)
            group_id = (cluster.resources_vpc_config or {}).get("clusterSecurityGroupId")
            if group_id:
                try:
                    _ec2(self.account_id, self.region_name).delete_security_group(group_id=group_id)
                except Exception as exc:  # the cluster is gone already; leave a trace, the SG shows up in checks
                    _log(f"could not delete cluster security group {group_id} of {name}: {exc!r}")
            return cluster

        return delete_cluster

    _wrap(models.EKSBackend, "create_cluster", make_create)
    _wrap(models.EKSBackend, "delete_cluster", make_delete)


def cluster_access_config() -> None:
    """Gap: moto's CreateCluster ignores ``accessConfig``, so DescribeCluster returns none and
    Terraform plans to replace the cluster on every run. This patch stores it on the cluster (EKS's
    defaults when absent: ``CONFIG_MAP``, bootstrap admin ``true``) so DescribeCluster returns it."""
    _, responses, _ = _eks()

    def make(original: Callable) -> Callable:
        def create_cluster(self: Any) -> Any:
            result = original(self)
            cluster = self.eks_backend.clusters[self._get_param("name")]
            requested = self._get_param("accessConfig") or {}
            cluster.access_config = {
                "authenticationMode": requested.get("authenticationMode", "CONFIG_MAP"),
                "bootstrapClusterCreatorAdminPermissions": requested.get("bootstrapClusterCreatorAdminPermissions", True),
            }
            return result

        return create_cluster

    _wrap(responses.EKSResponse, "create_cluster", make)


def _record_update(owner: Any, update_type: str, params: list[dict[str, str]], update_id: str | None = None) -> dict:
    """Store a completed EKS ``Update`` on a cluster or node group (for DescribeUpdate)."""
    update = {
        "id": update_id or str(_random().uuid4()),
        "status": "Successful",
        "type": update_type,
        "params": params,
        "createdAt": _now(),
        "errors": [],
    }
    owner.__dict__.setdefault("plus_updates", {})[update["id"]] = update
    return update


def cluster_updates() -> None:
    """Gaps: moto's UpdateClusterConfig (a) *replaces* ``resourcesVpcConfig`` with the request's
    partial one, dropping ``clusterSecurityGroupId``/``vpcId``/subnets; (b) ignores ``accessConfig``;
    (c) answers ``{cluster}`` where EKS answers ``{update}``; and DescribeUpdate/ListUpdates do not
    exist, so Terraform cannot wait for any in-place cluster, node group or add-on change. This patch
    merges the VPC config, applies ``authenticationMode``, records every cluster and node group
    update as ``Successful`` and serves DescribeUpdate/ListUpdates for them (and for the add-on
    updates of ``addons``: ``?addonName=``)."""
    models, responses, urls = _eks()
    from moto.core.responses import ActionResult

    def make_backend_update(original: Callable) -> Callable:
        def update_cluster_config(self: Any, name: str, resources_vpc_config: dict | None, *args: Any,
                                  **kwargs: Any) -> Any:
            if resources_vpc_config:
                current = _cluster(self, name).resources_vpc_config or {}
                resources_vpc_config = {**current, **resources_vpc_config}
            return original(self, name, resources_vpc_config, *args, **kwargs)

        return update_cluster_config

    def make_response_update(original: Callable) -> Callable:
        def update_cluster_config(self: Any) -> Any:
            name = self._get_param("name")
            cluster = _cluster(self.eks_backend, name)
            params: list[dict[str, str]] = []
            kinds = []
            access = self._get_param("accessConfig")
            if access and access.get("authenticationMode"):
                config = cluster.__dict__.setdefault("access_config", {})
                config["authenticationMode"] = access["authenticationMode"]
                params.append({"type": "AuthenticationMode", "value": access["authenticationMode"]})
                kinds.append("AccessConfigUpdate")
            vpc = self._get_param("resourcesVpcConfig")
            if vpc:
                params += [{"type": k[0].upper() + k[1:], "value": str(v)} for k, v in vpc.items()]
                kinds.append("EndpointAccessUpdate")
            if self._get_param("logging"):
                params.append({"type": "ClusterLogging", "value": str(self._get_param("logging"))})
                kinds.append("LoggingUpdate")
            if vpc or self._get_param("logging") or self._get_param("kubernetesNetworkConfig") \
                    or self._get_param("remoteNetworkConfig"):
                original(self)  # moto applies these (with the VPC merge above)
            update = _record_update(cluster, kinds[0] if len(kinds) == 1 else "ConfigUpdate", params)
            return ActionResult({"update": update})

        return update_cluster_config

    def make_nodegroup_update(original: Callable) -> Callable:
        def update_nodegroup_config(self: Any, cluster_name: str, nodegroup_name: str, *args: Any, **kwargs: Any) -> Any:
            update = original(self, cluster_name, nodegroup_name, *args, **kwargs)
            nodegroup = self.clusters[cluster_name].nodegroups[nodegroup_name]
            return _record_update(nodegroup, update["type"], update["params"], update["id"])

        return update_nodegroup_config

    def owner(self: Any) -> Any:
        """The cluster, or its node group / add-on named by the ``nodegroupName``/``addonName`` query."""
        cluster = _cluster(self.eks_backend, self._get_param("name"))
        nodegroup_name, addon_name = self._get_param("nodegroupName"), self._get_param("addonName")
        if nodegroup_name:
            if nodegroup_name not in cluster.nodegroups:
                raise _not_found(f"No node group found for name: {nodegroup_name}.")
            return cluster.nodegroups[nodegroup_name]
        if addon_name:
            if addon_name not in _addons(cluster):
                raise _not_found(f"No addon: {addon_name} found in cluster: {cluster.name}")
            return _addons(cluster)[addon_name]
        return cluster

    def describe_update(self: Any) -> Any:
        update_id = self._get_param("updateId")
        update = owner(self).__dict__.get("plus_updates", {}).get(update_id)
        if update is None:
            raise _not_found(f"No update found for ID: {update_id}")
        return ActionResult({"update": update})

    def list_updates(self: Any) -> Any:
        return ActionResult({"updateIds": list(owner(self).__dict__.get("plus_updates", {}))})

    _wrap(models.EKSBackend, "update_cluster_config", make_backend_update)
    _wrap(responses.EKSResponse, "update_cluster_config", make_response_update)
    _wrap(models.EKSBackend, "update_nodegroup_config", make_nodegroup_update)
    responses.EKSResponse.describe_update = describe_update
    responses.EKSResponse.list_updates = list_updates
    urls.url_paths["{0}/clusters/(?P<name>[^/]+)/updates$"] = urls.response.dispatch
    urls.url_paths["{0}/clusters/(?P<name>[^/]+)/updates/(?P<updateId>[^/]+)$"] = urls.response.dispatch


# ----------------------------------------------------------------------------- Kubernetes versions

#: The Kubernetes minors the emulator supports, each with its newest patch release (which names
#: the EKS AMI release versions ``<minor>.<patch>-<AMI_RELEASE_DATE>``). EKS's default for a
#: cluster created without ``version`` is the newest.
KUBERNETES_PATCHES: dict[str, int] = {"1.30": 14, "1.31": 14, "1.32": 13, "1.33": 13, "1.34": 9, "1.35": 6, "1.36": 2}
#: kube-proxy versions EKS lists for these minors (the EKS user guide's table; model/versions.py pins them)
PINNED_KUBE_PROXY: dict[str, str] = {"1.30": "v1.30.14-eksbuild.28", "1.31": "v1.31.14-eksbuild.20", "1.32": "v1.32.13-eksbuild.16", "1.33": "v1.33.10-eksbuild.13",
                                     "1.34": "v1.34.6-eksbuild.13", "1.35": "v1.35.3-eksbuild.13",
                                     "1.36": "v1.36.0-eksbuild.14"}
DEFAULT_KUBERNETES_VERSION = max(KUBERNETES_PATCHES, key=lambda v: int(v.split(".")[1]))
AMI_RELEASE_DATE = "20260714"  # the project's pinned AL2023 AMI release (karpenter.ami_alias al2023@v20260714)


def _minor(version: str) -> int:
    return int(str(version).split(".")[1])


def _supported(version: str) -> str:
    if version not in KUBERNETES_PATCHES:
        raise _invalid("unsupported Kubernetes version")  # EKS's wording (CreateCluster/UpdateClusterVersion)
    return version


def release_version(version: str) -> str:
    """The newest EKS AMI release of a Kubernetes minor (what EKS gives a node group by default)."""
    return f"{version}.{KUBERNETES_PATCHES[_supported(version)]}-{AMI_RELEASE_DATE}"


def cluster_versions() -> None:
    """Gaps: moto creates a cluster without ``version`` at Kubernetes 1.19 and any string is
    accepted; UpdateClusterVersion does not exist (POST ``/clusters/<name>/updates``), so no
    ``aws_eks_cluster.version`` change can be applied. This patch gives a cluster EKS's default
    (the newest of ``KUBERNETES_PATCHES``), refuses other versions (``unsupported Kubernetes
    version``), and serves UpdateClusterVersion with EKS's rules and wording: one minor at a time
    (``Unsupported Kubernetes minor version update from 1.34 to 1.36``), and only when every
    managed node group runs the cluster's current version (``Nodegroups <names> must be updated to
    match cluster version 1.35 before updating cluster version``). The update is recorded
    ``Successful`` for DescribeUpdate (``cluster_updates``)."""
    models, responses, _ = _eks()
    from moto.core.responses import ActionResult

    def make_create(original: Callable) -> Callable:
        def create_cluster(self: Any, *args: Any, **kwargs: Any) -> Any:
            kwargs["version"] = _supported(kwargs.get("version") or DEFAULT_KUBERNETES_VERSION)
            return original(self, *args, **kwargs)

        return create_cluster

    def update_cluster_version(self: Any) -> Any:
        cluster = _cluster(self.eks_backend, self._get_param("name"))
        version = _supported(self._get_param("version"))
        if _minor(version) != _minor(cluster.version) + 1:
            raise _invalid(f"Unsupported Kubernetes minor version update from {cluster.version} to {version}")
        behind = sorted(name for name, group in cluster.nodegroups.items() if group.version != cluster.version)
        if behind:
            raise _invalid(f"Nodegroups {', '.join(behind)} must be updated to match cluster version "
                           f"{cluster.version} before updating cluster version")
        cluster.version = version
        update = _record_update(cluster, "VersionUpdate", [{"type": "Version", "value": version},
                                                           {"type": "PlatformVersion", "value": cluster.platformVersion}])
        return ActionResult({"update": update})

    if hasattr(responses.EKSResponse, "update_cluster_version"):
        raise MotoVersionError(f"moto {PINNED_MOTO_VERSION} layout changed: EKSResponse.update_cluster_version exists")
    _wrap(models.EKSBackend, "create_cluster", make_create)
    responses.EKSResponse.update_cluster_version = update_cluster_version
    # POST /clusters/<name>/updates is routed by ``cluster_updates`` (GET there is ListUpdates)


SUPPORT_TYPES = ("STANDARD", "EXTENDED")


def cluster_upgrade_policy() -> None:
    """Gap: moto drops ``upgradePolicy`` on CreateCluster and UpdateClusterConfig; DescribeCluster
    returns none, so Terraform plans ``aws_eks_cluster.upgrade_policy`` on every run and cannot
    change it. This patch stores it (EKS's default: ``EXTENDED``), returns it, and applies
    UpdateClusterConfig ``{upgradePolicy}`` as an ``UpgradePolicyUpdate`` (alone, as EKS requires:
    ``Only one type of update can be allowed.``)."""
    _, responses, _ = _eks()
    from moto.core.responses import ActionResult

    def support_type(policy: dict | None) -> str:
        value = (policy or {}).get("supportType") or "EXTENDED"
        if value not in SUPPORT_TYPES:
            raise _invalid(f"Invalid upgrade policy support type: {value}. Valid values: {', '.join(SUPPORT_TYPES)}")
        return value

    def make_create(original: Callable) -> Callable:
        def create_cluster(self: Any) -> Any:
            chosen = support_type(self._get_param("upgradePolicy"))  # refused before anything is created
            result = original(self)
            self.eks_backend.clusters[self._get_param("name")].upgrade_policy = {"supportType": chosen}
            return result

        return create_cluster

    def make_update(original: Callable) -> Callable:
        def update_cluster_config(self: Any) -> Any:
            policy = self._get_param("upgradePolicy")
            if not policy:
                return original(self)
            others = ("resourcesVpcConfig", "logging", "accessConfig", "kubernetesNetworkConfig", "remoteNetworkConfig",
                      "zonalShiftConfig", "computeConfig", "storageConfig")
            if any(self._get_param(other) for other in others):
                raise _invalid("Only one type of update can be allowed.")
            cluster = _cluster(self.eks_backend, self._get_param("name"))
            cluster.upgrade_policy = {"supportType": support_type(policy)}
            update = _record_update(cluster, "UpgradePolicyUpdate",
                                    [{"type": "UpgradePolicy", "value": cluster.upgrade_policy["supportType"]}])
            return ActionResult({"update": update})

        return update_cluster_config

    _wrap(responses.EKSResponse, "create_cluster", make_create)
    _wrap(responses.EKSResponse, "update_cluster_config", make_update)


# ----------------------------------------------------------------------------- node groups


def nodegroup_remote_access() -> None:
    """Gap: moto's Nodegroup defaults ``remoteAccess`` to ``{ec2SshKey: eksKeypair}`` and always
    invents a ``remoteAccessSecurityGroup``; EKS returns neither for a node group created without
    remote access, and Terraform plans to replace such a node group on every run. This patch keeps
    ``remoteAccess`` (and the SG) only when the request had one."""
    models, _, _ = _eks()

    def make(original: Callable) -> Callable:
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            if not kwargs.get("remote_access"):
                self.remote_access = None
                self.resources.pop("remoteAccessSecurityGroup", None)

        return __init__

    _wrap(models.Nodegroup, "__init__", make)


def nodegroup_update_config() -> None:
    """Gap: moto's CreateNodegroup drops ``updateConfig`` (and ``nodeRepairConfig``) from the
    request, and DescribeNodegroup returns none; EKS stores them and defaults ``updateConfig`` to
    ``{maxUnavailable: 1}``. Without it Terraform plans an in-place update of
    ``aws_eks_node_group.update_config`` on every run. This patch stores both like EKS."""
    _, responses, _ = _eks()

    def make(original: Callable) -> Callable:
        def create_nodegroup(self: Any) -> Any:
            result = original(self)
            cluster = self.eks_backend.clusters[self._get_param("name")]
            nodegroup = cluster.nodegroups[self._get_param("nodegroupName")]
            nodegroup.update_config = self._get_param("updateConfig") or {"maxUnavailable": 1}
            if self._get_param("nodeRepairConfig") is not None:
                nodegroup.node_repair_config = self._get_param("nodeRepairConfig")
            return result

        return create_nodegroup

    _wrap(responses.EKSResponse, "create_nodegroup", make)


def nodegroup_versions() -> None:
    """Gaps: moto gives a node group created without ``version`` Kubernetes 1.19 and release
    ``1.19.8-20210414`` whatever the cluster runs (EKS: the cluster's version and that version's
    newest AMI release), and UpdateNodegroupVersion does not exist (no route, no handler), so an
    ``aws_eks_node_group.version`` change cannot be applied. This patch defaults both like EKS,
    refuses a release version of another minor with EKS's wording (``Requested Nodegroup release
    version X is invalid. Allowed release version is Y``) and a node group newer than its cluster,
    and serves UpdateNodegroupVersion (default target: the cluster's version; no downgrade),
    recorded ``Successful`` for DescribeUpdate (``cluster_updates``)."""
    models, responses, urls = _eks()
    from moto.core.responses import ActionResult

    def target(cluster: Any, version: str | None, release: str | None, current: str | None = None) -> tuple[str, str]:
        version = _supported(version or cluster.version)
        if _minor(version) > _minor(cluster.version):
            raise _invalid(f"Requested Nodegroup version {version} is invalid. Nodegroup version cannot be newer than "
                           f"the cluster version {cluster.version}")
        if current and _minor(version) < _minor(current):
            raise _invalid(f"Requested Nodegroup version {version} is invalid. Nodegroup version cannot be "
                           f"downgraded from {current}")
        allowed = release_version(version)
        if release and not release.startswith(f"{version}."):
            raise _invalid(f"Requested Nodegroup release version {release} is invalid. Allowed release version is "
                           f"{allowed}")
        return version, release or allowed

    def make_create(original: Callable) -> Callable:
        def create_nodegroup(self: Any, *args: Any, **kwargs: Any) -> Any:
            cluster = self.clusters.get(kwargs.get("cluster_name"))
            if cluster is not None:  # else moto raises its own ResourceNotFoundException
                kwargs["version"], kwargs["release_version"] = target(cluster, kwargs.get("version"),
                                                                      kwargs.get("release_version"))
            return original(self, *args, **kwargs)

        return create_nodegroup

    def update_nodegroup_version(self: Any) -> Any:
        cluster = _cluster(self.eks_backend, self._get_param("name"))
        name = self._get_param("nodegroupName")
        nodegroup = cluster.nodegroups.get(name)
        if nodegroup is None:
            raise _not_found(f"No node group found for name: {name}.")
        version, release = target(cluster, self._get_param("version"), self._get_param("releaseVersion"),
                                  nodegroup.version)
        params = [{"type": "Version", "value": version}, {"type": "ReleaseVersion", "value": release}]
        template = self._get_param("launchTemplate")
        if template:
            nodegroup.launch_template = {**(nodegroup.launch_template or {}), **template}
            params += [{"type": "LaunchTemplateVersion", "value": str(template.get("version"))}]
        nodegroup.version, nodegroup.release_version, nodegroup.modified_at = version, release, _now()
        return ActionResult({"update": _record_update(nodegroup, "VersionUpdate", params)})

    if hasattr(responses.EKSResponse, "update_nodegroup_version"):
        raise MotoVersionError(f"moto {PINNED_MOTO_VERSION} layout changed: EKSResponse.update_nodegroup_version exists")
    _wrap(models.EKSBackend, "create_nodegroup", make_create)
    responses.EKSResponse.update_nodegroup_version = update_nodegroup_version
    urls.url_paths["{0}/clusters/(?P<name>[^/]+)/node-groups/(?P<nodegroupName>[^/]+)/update-version$"] = \
        urls.response.dispatch


# ----------------------------------------------------------------------------- add-ons

#: ``{add-on: [(version, oldest minor, newest minor), ...]}``, newest first. Each minor has at least
#: two compatible versions, among them the ones model/versions.py pins (real EKS versions; the
#: newer builds are the emulator's), so ``most_recent`` and the default can differ as in EKS. For each
#: Kubernetes minor EKS flags one compatible version ``defaultVersion``: here the second newest (the
#: newest when only one is), until ``move_addon_defaults`` makes it the newest, as AWS does when it
#: moves its defaults under running clusters.
ADDON_VERSIONS: dict[str, list[tuple[str, str, str]]] = {
    "vpc-cni": [("v1.23.1-eksbuild.1", "1.33", "1.36"), ("v1.22.4-eksbuild.3", "1.30", "1.36"),
                ("v1.20.1-eksbuild.3", "1.30", "1.35")],
    "coredns": [("v1.14.3-eksbuild.23", "1.36", "1.36"), ("v1.14.3-eksbuild.16", "1.35", "1.36"),
                ("v1.14.2-eksbuild.4", "1.35", "1.35"), ("v1.13.2-eksbuild.7", "1.33", "1.35"),
                ("v1.13.2-eksbuild.4", "1.33", "1.36"), ("v1.11.4-eksbuild.33", "1.30", "1.34"),
                ("v1.11.4-eksbuild.24", "1.30", "1.32")],
    "aws-ebs-csi-driver": [("v1.66.0-eksbuild.1", "1.31", "1.36"), ("v1.63.1-eksbuild.1", "1.30", "1.36"),
                           ("v1.48.0-eksbuild.2", "1.30", "1.35")],
    # not tied to a minor, like vpc-cni: a newer build, the pinned one (model/versions.py), an older one
    "eks-pod-identity-agent": [("v1.3.11-eksbuild.1", "1.31", "1.36"), ("v1.3.10-eksbuild.2", "1.30", "1.36"),
                               ("v1.3.4-eksbuild.1", "1.30", "1.33")],
    # per minor: a newer build than the pinned one, the pinned one (model/versions.py), an older one
    "kube-proxy": [entry for minor, patch in sorted(KUBERNETES_PATCHES.items(), key=lambda kv: -_minor(kv[0]))
                   for entry in ((f"v{minor}.{patch}-eksbuild.25", minor, minor),
                                 (PINNED_KUBE_PROXY.get(minor, f"v{minor}.{patch}-eksbuild.16"), minor, minor),
                                 (f"v{minor}.{patch - 1}-eksbuild.5", minor, minor))],
}
ADDON_TYPES = {"vpc-cni": "networking", "coredns": "networking", "kube-proxy": "networking",
               "aws-ebs-csi-driver": "storage", "eks-pod-identity-agent": "security"}


def addon_versions(addon: str, kubernetes_version: str) -> list[str]:
    """The versions of ``addon`` compatible with ``kubernetes_version``, newest first."""
    minor = _minor(kubernetes_version)
    return [v for v, low, high in ADDON_VERSIONS.get(addon, []) if _minor(low) <= minor <= _minor(high)]


ADDON_DEFAULTS_FILE = "MOTO_PLUS_ADDON_DEFAULTS"
"""Environment variable naming a file; while it holds ``newest``, EKS's default add-on versions are
the newest compatible ones (``move_addon_defaults``). Read at every call: the test moves the defaults
of a running emulator without restarting it."""


def defaults_moved() -> bool:
    import os

    path = os.environ.get(ADDON_DEFAULTS_FILE)
    return bool(path) and os.path.exists(path) and open(path).read().strip() == "newest"


def move_addon_defaults(path: str) -> None:
    """What AWS does now and then: every add-on's default version becomes its newest compatible one."""
    with open(path, "w") as out:
        out.write("newest\n")


def default_addon_version(addon: str, kubernetes_version: str) -> str | None:
    compatible = addon_versions(addon, kubernetes_version)
    if defaults_moved():
        return compatible[0] if compatible else None
    return compatible[1] if len(compatible) > 1 else (compatible[0] if compatible else None)


class Addon:
    """One EKS add-on (kept on its cluster; deleted with it, as in EKS)."""

    def __init__(self, cluster: Any, name: str, version: str, role_arn: str | None, configuration: str | None,
                 tags: dict[str, str]) -> None:
        self.cluster_name = cluster.name
        self.name = name
        self.version = version
        self.service_account_role_arn = role_arn
        self.configuration_values = configuration
        self.arn = f"{_arn_prefix(cluster)}:addon/{cluster.name}/{name}/{_random().uuid4()}"
        self.created_at = self.modified_at = _now()
        self.status = "ACTIVE"
        self.tags = dict(tags)

    def describe(self) -> dict:
        found = {
            "addonName": self.name,
            "clusterName": self.cluster_name,
            "status": self.status,
            "addonVersion": self.version,
            "health": {"issues": []},
            "addonArn": self.arn,
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
            "tags": self.tags,
            "publisher": "eks",
            "owner": "aws",
            "podIdentityAssociations": [],
        }
        if self.service_account_role_arn:
            found["serviceAccountRoleArn"] = self.service_account_role_arn
        if self.configuration_values:
            found["configurationValues"] = self.configuration_values
        return found


def _arn_prefix(cluster: Any) -> str:
    """``arn:<partition>:eks:<region>:<account>`` of the cluster's own ARN: what EKS puts before a sub-resource."""
    return cluster.arn.rsplit(":", 1)[0]


def _kept(cluster: Any, kind: str) -> dict:
    """What the extension keeps on a cluster object (``kind``: add-ons, access entries, ...), by key: it goes
    with the cluster, as in EKS."""
    return cluster.__dict__.setdefault(f"plus_{kind}", {})


def _addons(cluster: Any) -> dict[str, Addon]:
    return _kept(cluster, "addons")


def _addon_minor(version: str) -> int:
    """``v1.22.4-eksbuild.3`` -> 22."""
    return int(version.lstrip("v").split(".")[1])


def addons() -> None:
    """Gap: moto 5.2.5 implements none of EKS's add-on API (no routes, no handlers):
    ``aws_eks_addon`` and ``data.aws_eks_addon_version`` fail. This patch adds Create/Describe/
    List/Update/DeleteAddon and DescribeAddonVersions over ``ADDON_VERSIONS`` (per Kubernetes
    minor, newest first, one ``defaultVersion`` each; compatibilities filtered to the requested
    ``kubernetesVersion`` as EKS does). Add-ons are ``ACTIVE`` at once; CreateAddon without
    ``addonVersion`` gets the default; a version the cluster's Kubernetes minor does not support,
    non-JSON/YAML ``configurationValues`` and malformed role ARNs are refused
    (InvalidParameterException); a duplicate is ResourceInUseException, unless it repeats the
    create's ``clientRequestToken`` (EKS is idempotent on it: an SDK retry of a create whose answer
    was lost gets the add-on, as Terraform's parallel creates showed); UpdateAddon is an
    ``AddonUpdate`` recorded ``Successful`` for DescribeUpdate ``?addonName=``; an UpdateAddon that
    moves vpc-cni by more than one minor version is refused as EKS refuses it ("Updating VPC-CNI can
    only go up or down 1 minor version at a time", terraform-aws-eks#2749)."""
    _, responses, urls = _eks()
    from moto.core.responses import ActionResult
    from moto.eks.utils import validate_role_arn

    def addon(response: Any) -> tuple[Any, Addon]:
        cluster = _cluster(response.eks_backend, response._get_param("name"))
        name = response._get_param("addonName")
        if name not in _addons(cluster):
            raise _not_found(f"No addon: {name} found in cluster: {cluster.name}")
        return cluster, _addons(cluster)[name]

    def check(cluster: Any, name: str, version: str | None, role_arn: str | None, configuration: str | None) -> str:
        if name not in ADDON_VERSIONS:
            raise _invalid(f"Addon {name} specified is not supported")
        version = version or default_addon_version(name, cluster.version)
        if version not in addon_versions(name, cluster.version):
            raise _invalid(f"Addon version {version} specified is not supported for {name} on Kubernetes version "
                           f"{cluster.version}")
        if role_arn:
            validate_role_arn(role_arn)
        if configuration:
            import json

            try:
                json.loads(configuration)
            except ValueError:
                try:
                    import yaml

                    yaml.safe_load(configuration)
                except Exception:
                    raise _invalid("ConfigurationValue provided in request is not supported: it is neither JSON nor "
                                   "YAML") from None
        return version

    def create_addon(self: Any) -> Any:
        cluster = _cluster(self.eks_backend, self._get_param("name"))
        name = self._get_param("addonName")
        token = self._get_param("clientRequestToken")
        if name in _addons(cluster):
            existing = _addons(cluster)[name]
            if token and getattr(existing, "client_request_token", None) == token:
                # EKS is idempotent on clientRequestToken: an SDK retry of a create that went through
                # (e.g. the connection dropped before the answer) gets the add-on, not a conflict
                return ActionResult({"addon": existing.describe()})
            raise _in_use("Addon already exists.")
        role_arn, configuration = self._get_param("serviceAccountRoleArn"), self._get_param("configurationValues")
        version = check(cluster, name, self._get_param("addonVersion"), role_arn, configuration)
        created = _addons(cluster)[name] = Addon(cluster, name, version, role_arn, configuration,
                                                 self._get_param("tags") or {})
        created.client_request_token = token
        return ActionResult({"addon": created.describe()})

    def describe_addon(self: Any) -> Any:
        return ActionResult({"addon": addon(self)[1].describe()})

    def list_addons(self: Any) -> Any:
        cluster = _cluster(self.eks_backend, self._get_param("name"))
        return ActionResult({"addons": sorted(_addons(cluster))})

    def update_addon(self: Any) -> Any:
        cluster, found = addon(self)
        role_arn, configuration = self._get_param("serviceAccountRoleArn"), self._get_param("configurationValues")
        version = check(cluster, found.name, self._get_param("addonVersion") or found.version, role_arn, configuration)
        if found.name == "vpc-cni" and abs(_addon_minor(version) - _addon_minor(found.version)) > 1:
            raise _invalid("Updating VPC-CNI can only go up or down 1 minor version at a time")
        params = []
        if version != found.version:
            params.append({"type": "AddonVersion", "value": version})
        if role_arn is not None:  # "" removes the role, as in EKS
            params.append({"type": "ServiceAccountRoleArn", "value": role_arn})
        if configuration is not None:
            params.append({"type": "ConfigurationValues", "value": configuration})
        if self._get_param("resolveConflicts"):
            params.append({"type": "ResolveConflicts", "value": self._get_param("resolveConflicts")})
        found.version = version
        if role_arn is not None:
            found.service_account_role_arn = role_arn or None
        if configuration is not None:
            found.configuration_values = configuration or None
        found.modified_at = _now()
        return ActionResult({"update": _record_update(found, "AddonUpdate", params)})

    def delete_addon(self: Any) -> Any:
        cluster, found = addon(self)
        del _addons(cluster)[found.name]
        found.status = "DELETING"
        return ActionResult({"addon": found.describe()})

    def describe_addon_versions(self: Any) -> Any:
        wanted = self._get_param("kubernetesVersion")
        names = [self._get_param("addonName")] if self._get_param("addonName") else sorted(ADDON_VERSIONS)
        found = []
        for name in names:
            versions = []
            for version, low, high in ADDON_VERSIONS.get(name, []):
                minors = [v for v in KUBERNETES_PATCHES if _minor(low) <= _minor(v) <= _minor(high)]
                if wanted:
                    minors = [v for v in minors if v == wanted]
                if not minors:
                    continue
                versions.append({
                    "addonVersion": version,
                    "architecture": ["amd64", "arm64"],
                    "computeTypes": ["ec2"],
                    "compatibilities": [{"clusterVersion": v, "platformVersions": ["*"],
                                         "defaultVersion": version == default_addon_version(name, v)} for v in minors],
                    "requiresConfiguration": False,
                    "requiresIamPermissions": name in ("vpc-cni", "aws-ebs-csi-driver"),
                })
            if versions:
                found.append({"addonName": name, "type": ADDON_TYPES[name], "addonVersions": versions,
                              "publisher": "eks", "owner": "aws"})
        return ActionResult({"addons": found})

    for handler in (create_addon, describe_addon, list_addons, update_addon, delete_addon, describe_addon_versions):
        if hasattr(responses.EKSResponse, handler.__name__):
            raise MotoVersionError(f"moto {PINNED_MOTO_VERSION} layout changed: EKSResponse.{handler.__name__} exists")
        setattr(responses.EKSResponse, handler.__name__, handler)
    urls.url_paths["{0}/clusters/(?P<name>[^/]+)/addons$"] = urls.response.dispatch
    urls.url_paths["{0}/clusters/(?P<name>[^/]+)/addons/(?P<addonName>[^/]+)$"] = urls.response.dispatch
    urls.url_paths["{0}/clusters/(?P<name>[^/]+)/addons/(?P<addonName>[^/]+)/update$"] = urls.response.dispatch
    urls.url_paths["{0}/addons/supported-versions$"] = urls.response.dispatch


# ----------------------------------------------------------------------------- access entries


class AccessEntry:
    """One EKS access entry (kept on its cluster; deleted with it, as in EKS)."""

    NODE_TYPES = ("EC2_LINUX", "EC2_WINDOWS", "FARGATE_LINUX", "HYBRID_LINUX")

    def __init__(self, cluster: Any, principal_arn: str, entry_type: str, username: str | None,
                 groups: list[str], tags: dict[str, str]) -> None:
        self.cluster_name = cluster.name
        self.principal_arn = principal_arn
        self.type = entry_type
        self.username = username or (
            "system:node:{{EC2PrivateDNSName}}" if entry_type in self.NODE_TYPES else principal_arn)
        self.kubernetes_groups = list(groups)
        kind, _, principal_name = principal_arn.split(":")[-1].partition("/")
        self.arn = (f"{_arn_prefix(cluster)}:access-entry/{cluster.name}/"
                    f"{kind}/{principal_arn.split(':')[4]}/{principal_name.split('/')[-1]}/{_random().uuid4()}")
        self.created_at = self.modified_at = _now()
        self.tags = dict(tags)
        self.policies: dict[str, dict] = {}

    def describe(self) -> dict:
        return {
            "clusterName": self.cluster_name,
            "principalArn": self.principal_arn,
            "kubernetesGroups": self.kubernetes_groups,
            "accessEntryArn": self.arn,
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
            "tags": self.tags,
            "username": self.username,
            "type": self.type,
        }


def _entries(cluster: Any) -> dict[str, AccessEntry]:
    return _kept(cluster, "access_entries")


def _entry(response: Any) -> AccessEntry:
    cluster = _cluster(response.eks_backend, response._get_param("name"))
    principal = response._get_param("principalArn")
    try:
        return _entries(cluster)[principal]
    except KeyError:
        raise _not_found("The specified principalArn could not be found. You can view your available access "
                         "entries with 'list-access-entries'.") from None


def access_entries() -> None:
    """Gap: moto 5.2.5 implements none of EKS's access-entry API (no routes, no handlers). This
    patch adds Create/Describe/List/Update/DeleteAccessEntry and Associate/Disassociate/
    ListAssociatedAccessPolicies, with EKS's defaults (node types get the
    ``system:node:{{EC2PrivateDNSName}}`` username) and errors (duplicate principal: 409
    ResourceInUseException; unknown: 404 ResourceNotFoundException)."""
    _, responses, urls = _eks()
    from moto.core.responses import ActionResult, EmptyResult

    def create_access_entry(self: Any) -> Any:
        cluster = _cluster(self.eks_backend, self._get_param("name"))
        principal = self._get_param("principalArn")
        entry_type = self._get_param("type") or "STANDARD"
        if principal in _entries(cluster):
            raise _in_use("The specified access entry resource is already in use on this cluster.")
        groups = self._get_param("kubernetesGroups") or []
        if entry_type in AccessEntry.NODE_TYPES and (groups or self._get_param("username")):
            raise _invalid(f"The kubernetesGroups and username can not be specified for type {entry_type}.")
        entry = AccessEntry(cluster, principal, entry_type, self._get_param("username"), groups,
                            self._get_param("tags") or {})
        _entries(cluster)[principal] = entry
        return ActionResult({"accessEntry": entry.describe()})

    def describe_access_entry(self: Any) -> Any:
        return ActionResult({"accessEntry": _entry(self).describe()})

    def list_access_entries(self: Any) -> Any:
        cluster = _cluster(self.eks_backend, self._get_param("name"))
        return ActionResult({"accessEntries": list(_entries(cluster))})

    def update_access_entry(self: Any) -> Any:
        entry = _entry(self)
        if self._get_param("kubernetesGroups") is not None:
            entry.kubernetes_groups = list(self._get_param("kubernetesGroups"))
        if self._get_param("username") is not None:
            entry.username = self._get_param("username")
        entry.modified_at = _now()
        return ActionResult({"accessEntry": entry.describe()})

    def delete_access_entry(self: Any) -> Any:
        entry = _entry(self)
        del _entries(_cluster(self.eks_backend, entry.cluster_name))[entry.principal_arn]
        return EmptyResult()

    def associate_access_policy(self: Any) -> Any:
        entry = _entry(self)
        now = _now()
        arn = self._get_param("policyArn")
        policy = {"policyArn": arn, "accessScope": self._get_param("accessScope") or {"type": "cluster"},
                  "associatedAt": entry.policies.get(arn, {}).get("associatedAt", now), "modifiedAt": now}
        entry.policies[arn] = policy
        return ActionResult({"clusterName": entry.cluster_name, "principalArn": entry.principal_arn,
                             "associatedAccessPolicy": policy})

    def list_associated_access_policies(self: Any) -> Any:
        entry = _entry(self)
        return ActionResult({"clusterName": entry.cluster_name, "principalArn": entry.principal_arn,
                             "associatedAccessPolicies": list(entry.policies.values())})

    def disassociate_access_policy(self: Any) -> Any:
        entry = _entry(self)
        arn = self._get_param("policyArn")
        if arn not in entry.policies:
            raise _not_found(f"The specified policy {arn} is not associated with the access entry.")
        del entry.policies[arn]
        return EmptyResult()

    for handler in (create_access_entry, describe_access_entry, list_access_entries, update_access_entry,
                    delete_access_entry, associate_access_policy, list_associated_access_policies,
                    disassociate_access_policy):
        setattr(responses.EKSResponse, handler.__name__, handler)
    # Werkzeug routing only sends the request to moto's dispatcher; the operation and its URI
    # parameters (a principalArn contains '/') are resolved from botocore's EKS model.
    urls.url_paths["{0}/clusters/(?P<name>[^/]+)/access-entries$"] = urls.response.dispatch
    urls.url_paths["{0}/clusters/(?P<name>[^/]+)/access-entries/(?P<rest>.+)$"] = urls.response.dispatch


#: The EKS access policies (ListAccessPolicies; ``arn:<partition>:eks::aws:cluster-access-policy/<name>``).
ACCESS_POLICIES = ("AmazonEKSAdminPolicy", "AmazonEKSAdminViewPolicy", "AmazonEKSAutoNodePolicy",
                   "AmazonEKSBlockStoragePolicy", "AmazonEKSClusterAdminPolicy", "AmazonEKSComputePolicy",
                   "AmazonEKSEditPolicy", "AmazonEKSLoadBalancingPolicy", "AmazonEKSNetworkingPolicy",
                   "AmazonEKSViewPolicy", "AmazonEMRJobPolicy")


def access_policies() -> None:
    """Gap (after ``access_entries``): AssociateAccessPolicy takes any policy ARN and access scope,
    where EKS refuses a policy that is not one of its access policies, a ``namespace`` scope
    without namespaces (or a ``cluster`` scope with some), and policies on node-type entries
    (EC2_LINUX, EC2_WINDOWS, FARGATE_LINUX, HYBRID_LINUX); a wrong ARN or scope in the stack would
    pass here and fail in AWS. ListAccessPolicies does not exist. This patch adds the checks
    (InvalidParameterException; the wording is the emulator's) and ListAccessPolicies."""
    _, responses, urls = _eks()
    from moto.core.responses import ActionResult

    def make_associate(original: Callable) -> Callable:
        def associate_access_policy(self: Any) -> Any:
            entry = _entry(self)
            arn = self._get_param("policyArn") or ""
            prefix, _, policy = arn.rpartition("/")
            if not (prefix.startswith("arn:aws") and prefix.endswith(":eks::aws:cluster-access-policy")
                    and policy in ACCESS_POLICIES):
                raise _invalid(f"The policy {arn} is not an EKS access policy (see list-access-policies).")
            if entry.type in AccessEntry.NODE_TYPES:
                raise _invalid(f"Access policies cannot be associated with an access entry of type {entry.type}.")
            scope = self._get_param("accessScope") or {}
            kind, namespaces = scope.get("type"), scope.get("namespaces") or []
            if kind not in ("cluster", "namespace"):
                raise _invalid(f"accessScope type must be cluster or namespace, not {kind!r}.")
            if (kind == "namespace") != bool(namespaces):
                raise _invalid("A namespace accessScope needs namespaces; a cluster accessScope takes none.")
            return original(self)

        return associate_access_policy

    def list_access_policies(self: Any) -> Any:
        partition = "aws"  # EKS's access policies are global: arn:aws:eks::aws:...
        return ActionResult({"accessPolicies": [
            {"name": name, "arn": f"arn:{partition}:eks::aws:cluster-access-policy/{name}"} for name in ACCESS_POLICIES]})

    if hasattr(responses.EKSResponse, "list_access_policies"):
        raise MotoVersionError(f"moto {PINNED_MOTO_VERSION} layout changed: EKSResponse.list_access_policies exists")
    _wrap(responses.EKSResponse, "associate_access_policy", make_associate)
    responses.EKSResponse.list_access_policies = list_access_policies
    urls.url_paths["{0}/access-policies$"] = urls.response.dispatch


# ----------------------------------------------------------------------------- Pod Identity associations


class PodIdentityAssociation:
    """One EKS Pod Identity association (kept on its cluster; deleted with it, as in EKS)."""

    def __init__(self, cluster: Any, namespace: str, service_account: str, role_arn: str,
                 disable_session_tags: bool, target_role_arn: str | None, tags: dict[str, str]) -> None:
        self.cluster_name = cluster.name
        self.namespace = namespace
        self.service_account = service_account
        self.role_arn = role_arn
        self.disable_session_tags = disable_session_tags
        self.target_role_arn = target_role_arn
        self.id = "a-" + _random().get_random_string(length=17, lower_case=True)
        self.arn = f"{_arn_prefix(cluster)}:podidentityassociation/{cluster.name}/{self.id}"
        self.created_at = self.modified_at = _now()
        self.tags = dict(tags)

    def summary(self) -> dict:
        return {"clusterName": self.cluster_name, "namespace": self.namespace, "serviceAccount": self.service_account,
                "associationArn": self.arn, "associationId": self.id}

    def describe(self) -> dict:
        target = {"targetRoleArn": self.target_role_arn} if self.target_role_arn else {}
        return {**self.summary(), "roleArn": self.role_arn, "tags": self.tags, "createdAt": self.created_at,
                "modifiedAt": self.modified_at, "disableSessionTags": self.disable_session_tags, **target}


def _associations(cluster: Any) -> dict[str, PodIdentityAssociation]:
    return _kept(cluster, "pod_identity_associations")


def pod_identity_associations() -> None:
    """Gap: moto 5.2.5 implements none of EKS Pod Identity's API (no routes, no handlers), so
    ``aws_eks_pod_identity_association`` cannot be created. This patch adds Create/Describe/List/Update/
    DeletePodIdentityAssociation as EKS answers them: an id ``a-`` + 17 characters and an ARN
    ``...:podidentityassociation/<cluster>/<id>``; a second association for the same namespace and service
    account is ResourceInUseException; a malformed role ARN or a missing namespace or service account is
    InvalidParameterException; an unknown id is ResourceNotFoundException; an update changes only the role,
    the target role and ``disableSessionTags`` (namespace and service account are the association's identity);
    List filters by ``namespace`` and ``serviceAccount``; associations go with their cluster."""
    _, responses, urls = _eks()
    from moto.core.responses import ActionResult
    from moto.eks.utils import validate_role_arn

    def association(response: Any) -> tuple[Any, PodIdentityAssociation]:
        cluster = _cluster(response.eks_backend, response._get_param("name"))
        found = _associations(cluster).get(response._get_param("associationId"))
        if found is None:
            raise _not_found(f"Association {response._get_param('associationId')} not found in cluster "
                             f"{cluster.name}")
        return cluster, found

    def roles(response: Any) -> tuple[str | None, str | None]:
        role_arn, target = response._get_param("roleArn"), response._get_param("targetRoleArn")
        for arn in (role_arn, target):
            if arn:
                validate_role_arn(arn)
        return role_arn, target

    def create_pod_identity_association(self: Any) -> Any:
        cluster = _cluster(self.eks_backend, self._get_param("name"))
        namespace, account = self._get_param("namespace"), self._get_param("serviceAccount")
        role_arn, target = roles(self)
        if not namespace or not account or not role_arn:
            raise _invalid("namespace, serviceAccount and roleArn are required.")
        if any((a.namespace, a.service_account) == (namespace, account) for a in _associations(cluster).values()):
            raise _in_use(f"Association already exists for namespace {namespace} and service account {account} "
                          f"in cluster {cluster.name}.")
        created = PodIdentityAssociation(cluster, namespace, account, role_arn,
                                         bool(self._get_param("disableSessionTags")), target,
                                         self._get_param("tags") or {})
        _associations(cluster)[created.id] = created
        return ActionResult({"association": created.describe()})

    def describe_pod_identity_association(self: Any) -> Any:
        return ActionResult({"association": association(self)[1].describe()})

    def list_pod_identity_associations(self: Any) -> Any:
        cluster = _cluster(self.eks_backend, self._get_param("name"))
        namespace, account = self._get_param("namespace"), self._get_param("serviceAccount")
        found = [a.summary() for a in _associations(cluster).values()
                 if (not namespace or a.namespace == namespace) and (not account or a.service_account == account)]
        return ActionResult({"associations": found})

    def update_pod_identity_association(self: Any) -> Any:
        _, found = association(self)
        role_arn, target = roles(self)
        if role_arn:
            found.role_arn = role_arn
        if target is not None:
            found.target_role_arn = target or None
        if self._get_param("disableSessionTags") is not None:
            found.disable_session_tags = bool(self._get_param("disableSessionTags"))
        found.modified_at = _now()
        return ActionResult({"association": found.describe()})

    def delete_pod_identity_association(self: Any) -> Any:
        cluster, found = association(self)
        del _associations(cluster)[found.id]
        return ActionResult({"association": found.describe()})

    for handler in (create_pod_identity_association, describe_pod_identity_association, list_pod_identity_associations,
                    update_pod_identity_association, delete_pod_identity_association):
        if hasattr(responses.EKSResponse, handler.__name__):
            raise MotoVersionError(f"moto {PINNED_MOTO_VERSION} layout changed: EKSResponse.{handler.__name__} exists")
        setattr(responses.EKSResponse, handler.__name__, handler)
    urls.url_paths["{0}/clusters/(?P<name>[^/]+)/pod-identity-associations$"] = urls.response.dispatch
    urls.url_paths["{0}/clusters/(?P<name>[^/]+)/pod-identity-associations/(?P<associationId>[^/]+)$"] = \
        urls.response.dispatch


# ----------------------------------------------------------------------------- tagging


def tagging() -> None:
    """Gap: moto's EKS TagResource/UntagResource/ListTagsForResource resolve only cluster ARNs (its
    docstrings say so); node group, access entry and add-on ARNs get 404, so a tag change on them
    fails. This patch resolves those and Pod Identity associations."""
    models, _, _ = _eks()

    def taggable(backend: Any, arn: str) -> Any:
        for cluster in backend.clusters.values():
            if cluster.arn == arn:
                return cluster
            for nodegroup in cluster.nodegroups.values():
                if nodegroup.arn == arn:
                    return nodegroup
            for owned in (*_entries(cluster).values(), *_addons(cluster).values(),
                          *_associations(cluster).values()):
                if owned.arn == arn:
                    return owned
        raise _not_found("Resource was not found")

    def tag_resource(self: Any, resource_arn: str, tags: dict[str, str]) -> None:
        taggable(self, resource_arn).tags.update(tags)

    def untag_resource(self: Any, resource_arn: str, tag_keys: list[str] | str) -> None:
        target = taggable(self, resource_arn)
        for key in [tag_keys] if isinstance(tag_keys, str) else tag_keys:
            target.tags.pop(key, None)

    def list_tags_for_resource(self: Any, resource_arn: str) -> dict[str, str]:
        return taggable(self, resource_arn).tags

    for fn in (tag_resource, untag_resource, list_tags_for_resource):
        _wrap(models.EKSBackend, fn.__name__, lambda _original, fn=fn: fn)


# ----------------------------------------------------------------------------- CloudWatch Logs


def logs_kms_key() -> None:
    """Gap: moto's CloudWatch Logs has no AssociateKmsKey/DisassociateKmsKey (a 500
    ``NotImplementedError`` the aws provider retries for minutes). ``kmsKeyId`` given to
    CreateLogGroup is kept, so a log group Terraform creates is fine, but one that exists first
    (EKS re-creates ``/aws/eks/<name>/cluster`` after a destroy) and is then imported can never be
    converged to ``kms_key_id``. This patch adds both actions (by ``logGroupName`` or
    ``resourceIdentifier``; unknown group: ResourceNotFoundException, as CloudWatch Logs answers)."""
    import moto.logs.responses as logs_responses
    from moto.core.responses import EmptyResult
    from moto.logs.exceptions import ResourceNotFoundException

    def group(response: Any) -> Any:
        name = response._get_param("logGroupName")
        identifier = response._get_param("resourceIdentifier")
        for candidate in response.logs_backend.groups.values():
            if candidate.name == name or identifier in (candidate.arn, f"{candidate.arn}:*", candidate.name):
                return candidate
        raise ResourceNotFoundException()

    def associate_kms_key(self: Any) -> Any:
        group(self).kms_key_id = self._get_param("kmsKeyId")
        return EmptyResult()

    def disassociate_kms_key(self: Any) -> Any:
        group(self).kms_key_id = None
        return EmptyResult()

    for handler in (associate_kms_key, disassociate_kms_key):
        if hasattr(logs_responses.LogsResponse, handler.__name__):
            raise MotoVersionError(f"moto {PINNED_MOTO_VERSION} layout changed: LogsResponse.{handler.__name__} exists")
        setattr(logs_responses.LogsResponse, handler.__name__, handler)


# ----------------------------------------------------------------------------- EC2 delete refusals (issue 16)
# What AWS refuses on delete and stock moto 5.2.5 allows: without these the emulator deletes a VPC
# that still holds a load balancer's security group, so a destroy that would fail in AWS passes here.


def _dependency_violation(message: str) -> Exception:
    from moto.ec2.exceptions import DependencyViolationError

    return DependencyViolationError(message)


def _load_balancers(account_id: str, region: str) -> list[Any]:
    """Every classic and v2 load balancer of the account/region (both keep subnets and SG ids)."""
    from moto.elb.models import elb_backends
    from moto.elbv2.models import elbv2_backends

    return [*elb_backends[account_id][region].load_balancers.values(),
            *elbv2_backends[account_id][region].load_balancers.values()]


def _subnet_id(subnet: Any) -> str:
    return subnet if isinstance(subnet, str) else subnet.id


def ec2_delete_dependencies() -> None:
    """Gap: stock moto deletes a subnet that still holds network interfaces (or a load balancer), a
    security group that another group's rule, an interface or a load balancer still uses, and a VPC
    that still holds non-default security groups or an attached internet gateway; and its
    DeleteNatGateway leaves the gateway's interface in the subnet. EC2 refuses each of those deletes
    with ``DependencyViolation`` and AWS's messages (below), and deleting a NAT gateway releases its
    interface. Terminating an instance deletes the primary interface RunInstances created for it (EC2
    creates it with DeleteOnTermination true; stock moto with false, so it stays ``in-use`` in the
    subnet for ever). (DeleteVolume of an attached volume is refused by stock moto already:
    ``VolumeInUse``.)"""
    import moto.ec2.models as ec2_models
    from moto.ec2.models.instances import Instance

    backend = ec2_models.EC2Backend

    def make_delete_subnet(original: Callable) -> Callable:
        def delete_subnet(self: Any, subnet_id: str) -> Any:
            in_subnet = [eni for eni in self.enis.values() if eni.subnet is not None and eni.subnet.id == subnet_id]
            balancers = [lb for lb in _load_balancers(self.account_id, self.region_name)
                         if subnet_id in {_subnet_id(s) for s in lb.subnets}]
            if in_subnet or balancers:
                raise _dependency_violation(f"The subnet '{subnet_id}' has dependencies and cannot be deleted.")
            return original(self, subnet_id)

        return delete_subnet

    def make_delete_security_group(original: Callable) -> Callable:
        def delete_security_group(self: Any, name: str | None = None, group_id: str | None = None) -> Any:
            group = self.get_security_group_by_name_or_id(group_id or name)
            if group is not None:
                referenced = any(
                    rule.source_group and rule.source_group.get("GroupId") == group.id
                    for other in (g for groups in self.groups.values() for g in groups.values() if g.id != group.id)
                    for rule in (*other.ingress_rules, *other.egress_rules))
                used = any(group.id in {g.id for g in eni.group_set} for eni in self.enis.values())
                balanced = any(group.id in (lb.security_groups or [])
                               for lb in _load_balancers(self.account_id, self.region_name))
                if referenced or used or balanced:
                    raise _dependency_violation(f"resource {group.id} has a dependent object")
            return original(self, name=name, group_id=group_id)

        return delete_security_group

    def make_delete_vpc(original: Callable) -> Callable:
        def delete_vpc(self: Any, vpc_id: str) -> Any:
            others = [g for g in self.groups.get(vpc_id, {}).values() if g.name != "default"]
            gateways = [g for g in self.internet_gateways.values() if g.vpc is not None and g.vpc.id == vpc_id]
            if others or gateways:
                raise _dependency_violation(f"The vpc '{vpc_id}' has dependencies and cannot be deleted.")
            return original(self, vpc_id)

        return delete_vpc

    def make_prep_nics(original: Callable) -> Callable:
        def prep_nics(self: Any, nic_spec: list, *args: Any, **kwargs: Any) -> Any:
            given = {int(n.get("DeviceIndex", 0)) for n in nic_spec if n.get("NetworkInterfaceId")}
            explicit = {int(n.get("DeviceIndex", 0)): n.get("DeleteOnTermination") for n in nic_spec}
            out = original(self, nic_spec, *args, **kwargs)
            primary = self.nics.get(0)
            if primary is not None and 0 not in given and explicit.get(0) is not False:
                primary.delete_on_termination = True  # EC2's default for the interface it creates at launch
            return out

        return prep_nics

    _wrap(Instance, "prep_nics", make_prep_nics)

    def make_delete_nat_gateway(original: Callable) -> Callable:
        def delete_nat_gateway(self: Any, nat_gateway_id: str) -> Any:
            gateway = original(self, nat_gateway_id)
            eni = getattr(gateway, "_eni", None)
            if eni is not None and eni.id in self.enis:
                for address in self.addresses:
                    if address.eni is eni:
                        address.eni = None
                        address.association_id = None
                self.enis.pop(eni.id)
            return gateway

        return delete_nat_gateway

    _wrap(backend, "delete_subnet", make_delete_subnet)
    _wrap(backend, "delete_security_group", make_delete_security_group)
    _wrap(backend, "delete_vpc", make_delete_vpc)
    _wrap(backend, "delete_nat_gateway", make_delete_nat_gateway)
# ----------------------------------------------------------------------------- Service Quotas (preflight)
# The fresh-account preflight (constructs/preflight.py, issue 16) reads EC2 quotas at plan.

EC2_QUOTAS: dict[str, tuple[str, float]] = {
    # code: (QuotaName, AWS default). Defaults as the EC2 User Guide lists them for a new account.
    "L-0263D0A3": ("EC2-VPC Elastic IPs", 5.0),
    "L-1216C47A": ("Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", 5.0),
    "L-34B43A08": ("All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests", 5.0),
    "L-DB2E81BA": ("Running On-Demand G and VT instances", 0.0),
    "L-3819A6DF": ("All G and VT Spot Instance Requests", 0.0),
    "L-417A185B": ("Running On-Demand P instances", 0.0),
    "L-7212CCBC": ("All P4, P3 and P2 Spot Instance Requests", 0.0),
}


def service_quotas() -> None:
    """Gap: moto's Service Quotas knows only ``vpc`` quotas. ``GetServiceQuota`` for any EC2 code
    answers NoSuchResourceException, and ``GetAWSDefaultServiceQuota`` (which
    ``data.aws_servicequotas_service_quota`` calls first) and ``RequestServiceQuotaIncrease`` do not
    exist, so the preflight's quota reads fail. This patch serves ``EC2_QUOTAS`` (default and applied
    value; an EC2 quota always has an applied value, the default until raised) and approves an
    increase at once (AWS opens a request that takes minutes to days); a desired value not above the
    current one is refused, as AWS does. Per account and region; a moto reset forgets increases."""
    import json

    import moto.servicequotas.models as models
    import moto.servicequotas.responses as responses
    from moto.core.exceptions import JsonRESTError
    from moto.servicequotas.exceptions import NoSuchResource

    def quota(backend: Any, code: str, applied: bool) -> dict[str, Any]:
        if code not in EC2_QUOTAS:
            raise NoSuchResource
        name, default = EC2_QUOTAS[code]
        value = backend.__dict__.setdefault("plus_applied", {}).get(code, default) if applied else default
        account = backend.account_id if applied else ""
        return {"ServiceCode": "ec2", "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
                "QuotaArn": f"arn:aws:servicequotas:{backend.region_name}:{account}:ec2/{code}", "QuotaCode": code,
                "QuotaName": name, "Value": value, "Unit": "None", "Adjustable": True, "GlobalQuota": False}

    def make_get(original: Callable) -> Callable:
        def get_service_quota(self: Any, service_code: str, quota_code: str) -> dict[str, Any]:
            return quota(self, quota_code, applied=True) if service_code == "ec2" else original(self, service_code, quota_code)
        return get_service_quota

    def make_list(original: Callable) -> Callable:
        def list_aws_default_service_quotas(self: Any, service_code: str) -> list[dict[str, Any]]:
            if service_code == "ec2":
                return [quota(self, code, applied=False) for code in EC2_QUOTAS]
            return original(self, service_code)
        return list_aws_default_service_quotas

    def get_aws_default_service_quota(self: Any) -> str:
        params = json.loads(self.body)
        if params.get("ServiceCode") != "ec2":
            raise NoSuchResource
        return json.dumps({"Quota": quota(self.backend, str(params.get("QuotaCode")), applied=False)})

    def request_service_quota_increase(self: Any) -> str:
        params = json.loads(self.body)
        code, desired = str(params.get("QuotaCode")), float(params.get("DesiredValue"))
        if params.get("ServiceCode") != "ec2":
            raise NoSuchResource
        current = quota(self.backend, code, applied=True)
        if desired <= current["Value"]:
            raise JsonRESTError("IllegalArgumentException",
                                f"The desired value {desired} must be greater than the current value {current['Value']}.")
        self.backend.__dict__.setdefault("plus_applied", {})[code] = desired
        return json.dumps({"RequestedQuota": {
            "Id": _random().uuid4().hex, "ServiceCode": "ec2", "QuotaCode": code, "QuotaName": current["QuotaName"],
            "DesiredValue": desired, "Status": "APPROVED", "QuotaArn": current["QuotaArn"], "Unit": "None"}})

    _wrap(models.ServiceQuotasBackend, "get_service_quota", make_get)
    _wrap(models.ServiceQuotasBackend, "list_aws_default_service_quotas", make_list)
    for handler in (get_aws_default_service_quota, request_service_quota_increase):
        if hasattr(responses.ServiceQuotasResponse, handler.__name__):
            raise MotoVersionError(f"moto {PINNED_MOTO_VERSION} layout changed: "
                                   f"ServiceQuotasResponse.{handler.__name__} exists")
        setattr(responses.ServiceQuotasResponse, handler.__name__, handler)


# ----------------------------------------------------------------------------- IAM enforcement

#: condition keys the emulator evaluates, from the request; every other key is left satisfied
KNOWN_CONDITION_KEYS = ("aws:requestedregion",)


def _condition_met(operator: str, expected: Any, actual: str | None) -> bool:
    """One condition operator on one known key (``actual`` None: the key is absent)."""
    import fnmatch

    values = expected if isinstance(expected, list) else [expected]
    base = operator.removesuffix("IfExists")
    if actual is None:
        return operator.endswith("IfExists") or base.startswith("StringNot")
    if base == "Null":
        return str(values[0]).lower() == "false"
    if base in ("StringEquals", "ArnEquals"):
        return actual in values
    if base == "StringEqualsIgnoreCase":
        return actual.lower() in [str(v).lower() for v in values]
    if base in ("StringLike", "ArnLike"):
        return any(fnmatch.fnmatchcase(actual, str(v)) for v in values)
    if base == "StringNotEquals":
        return actual not in values
    if base == "StringNotLike":
        return not any(fnmatch.fnmatchcase(actual, str(v)) for v in values)
    return True  # an operator this emulator does not know: left satisfied, as the key


def _statement_applies(statement: dict, action: str, resource: str, context: dict[str, str],
                       unevaluated: set[str]) -> bool:
    """Whether ``statement`` covers ``action`` on ``resource`` under ``context`` (IAM's rules:
    actions and resources match case-insensitively / by glob, every condition must hold)."""
    import fnmatch

    def listed(key: str) -> list[str]:
        value = statement.get(key, [])
        return value if isinstance(value, list) else [value]

    def matches(patterns: list[str], value: str, fold: bool) -> bool:
        return any(fnmatch.fnmatchcase(value.lower() if fold else value, p.lower() if fold else p) for p in patterns)

    if "NotAction" in statement:
        if matches(listed("NotAction"), action, True):
            return False
    elif not matches(listed("Action"), action, True):
        return False
    if resource != "*":  # moto names the resource of S3 calls only; for the rest it passes "*"
        if "NotResource" in statement and matches(listed("NotResource"), resource, False):
            return False
        if "Resource" in statement and not matches(listed("Resource"), resource, False):
            return False
    for operator, pairs in (statement.get("Condition") or {}).items():
        for key, expected in pairs.items():
            if key.lower() not in KNOWN_CONDITION_KEYS:
                unevaluated.add(key)
                continue
            if not _condition_met(operator, expected, context.get(key.lower())):
                return False
    return True


#: signing names of the services that answer in the query protocol's XML (EC2 has its own shape)
QUERY_SERVICES = ("iam", "sts", "elasticloadbalancing", "autoscaling", "cloudformation", "rds", "sns")


def _denied(service: str, identity: str, action: str, explicit: bool) -> Exception:
    """AccessDenied as the service answers it, so the SDK (Terraform's, the aws CLI's) reports the
    code and the message naming the action (moto sends one XML shape to every service: the Go SDK
    reads it as ``UnknownError``)."""
    import json
    from werkzeug.exceptions import HTTPException

    why = "with an explicit deny in an identity-based policy" if explicit else \
        f"because no identity-based policy allows the {action} action"
    message = f"User: {identity} is not authorized to perform: {action} {why}"
    request_id = _random().get_random_hex(length=32)
    if service == "ec2":
        body = (f"<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to "
                f"perform this operation. {message}</Message></Error></Errors><RequestID>{request_id}</RequestID>"
                "</Response>")
    elif service in QUERY_SERVICES:
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>{message}</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")
    else:  # JSON and REST-JSON services (EKS, KMS, Logs, EventBridge, SQS, Service Quotas)
        body = json.dumps({"__type": "AccessDeniedException", "message": message, "Message": message})

    class Denied(HTTPException):
        code = 403

        def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
            kind = "text/xml" if body.startswith("<") else "application/x-amz-json-1.1"
            return [("Content-Type", kind), ("x-amzn-ErrorType", "AccessDeniedException")]

    return Denied(description=body)


def iam_enforcement() -> None:
    """Gap: under ``/moto-api/reset-auth`` moto 5.2.5 refuses every EKS call (SignatureDoesNotMatch),
    lets no resource-scoped statement allow anything and ignores conditions (or, where it evaluates
    them, turns a failed Allow into a Deny). This patch: the signature is computed over the raw body;
    identity policies are evaluated as IAM does (explicit Deny wins, else some Allow must apply;
    actions case-insensitively; a resource moto does not name matches any Resource element, a named
    one (S3) must match; ``aws:RequestedRegion`` is the request's region; other condition keys are
    left satisfied and each is logged once). moto_plus's own handlers (add-ons, access entries,
    updates, Service Quotas, log group keys) are methods of moto's response classes, so they pass
    through this check like moto's own. AccessDenied names the action, as AWS does."""
    import moto.iam.access_control as access_control
    from botocore.awsrequest import AWSRequest

    logged: set[str] = set()

    def _create_aws_request(self: Any) -> Any:
        signed = self._get_string_between("SignedHeaders=", ",", self._headers["Authorization"]).split(";")
        headers = self._create_headers_for_aws_request(signed, self._headers)
        # a form body (query protocol) reaches moto parsed: the parsed form is what was signed;
        # otherwise the raw body, empty for a GET (moto's own check signs the headers then)
        form = "x-www-form-urlencoded" in str(self._headers.get("Content-Type", ""))
        body = self._body or (self._data if form else b"")
        request = AWSRequest(method=self._method, url=self._path, data=body, headers=headers)
        request.context["timestamp"] = headers["X-Amz-Date"]
        return request

    def check_action_permitted(self: Any, resource: str) -> None:
        if self._action == "sts:GetCallerIdentity":  # AWS allows it to every identity
            return
        context = {"aws:requestedregion": self._region}
        unevaluated: set[str] = set()
        allowed = False
        for policy in self._access_key.collect_policies():
            document = access_control.IAMPolicy(policy)._policy_json
            statements = document.get("Statement", [])
            for statement in statements if isinstance(statements, list) else [statements]:
                if not _statement_applies(statement, self._action, resource, context, unevaluated):
                    continue
                if statement.get("Effect") == "Deny":
                    _log(f"iam: AccessDenied {self._access_key.arn} {self._action} in {self._region} (explicit deny)")
                    raise _denied(self._service, self._access_key.arn, self._action, explicit=True)
                allowed = True
        for key in sorted(unevaluated - logged):
            logged.add(key)
            _log(f"iam: condition key {key} is not evaluated by the emulator (left satisfied)")
        if self._is_assuming_role_operation(resource):
            allowed = allowed and self._check_role_trust_relationship(resource)
        if not allowed:
            _log(f"iam: AccessDenied {self._access_key.arn} {self._action} in {self._region}")
            if isinstance(self, access_control.S3IAMRequest):
                self._raise_access_denied()  # S3's own error shape (moto's is right there)
            raise _denied(self._service, self._access_key.arn, self._action, explicit=False)

    for name, replacement in (("_create_aws_request", _create_aws_request),
                              ("check_action_permitted", check_action_permitted)):
        if not hasattr(access_control.IAMRequestBase, name):
            raise MotoVersionError(f"moto {PINNED_MOTO_VERSION} layout changed: IAMRequestBase.{name} is missing")
        setattr(access_control.IAMRequestBase, name, replacement)
# ----------------------------------------------------------------------------- issue 20: kept logs, zones


def _key_unusable(account_id: str, region: str, key_id: str | None) -> str | None:
    """The state of KMS key ``key_id`` when CloudWatch Logs cannot use it (Disabled, PendingDeletion,
    gone), else None."""
    if not key_id:
        return None
    from moto.kms.models import kms_backends

    backend = kms_backends[account_id][region]
    key = backend.keys.get(backend.get_key_id(key_id))
    if key is None:
        return "deleted"
    return key.key_state if key.key_state != "Enabled" else None


def _kms_refused(key_id: str, state: str) -> Exception:
    from moto.core.exceptions import JsonRESTError

    return JsonRESTError("AccessDeniedException",
                         f"The specified KMS key {key_id} is {state}: CloudWatch Logs cannot use it to decrypt or "
                         "encrypt the log events of this log group. Re-enable the key (or cancel its deletion) "
                         "and retry.")


def logs_kms_reads() -> None:
    """Gap: CloudWatch Logs needs the KMS key a log event was ingested under to read it, and the group's
    current key to ingest new ones; a key disabled or pending deletion cannot be used (CloudWatch Logs
    user guide, "Encrypt log data in CloudWatch Logs using AWS KMS": events ingested while a key was
    associated stay encrypted with it, after a re-association too). Stock moto reads and writes events
    whatever the key's state. This patch records the group's key on every event it ingests and refuses
    (``AccessDeniedException``, the code CloudWatch Logs gives for a key it may not use) GetLogEvents
    and FilterLogEvents when any event read was ingested under an unusable key, and PutLogEvents when
    the group's key is unusable (EKS's late deliveries fail)."""
    from moto.logs.models import LogStream

    def refuse_unusable(stream: Any, key_ids: set) -> None:
        for key_id in sorted(k for k in key_ids if k):
            state = _key_unusable(stream.account_id, stream.region, key_id)
            if state:
                raise _kms_refused(key_id, state)

    def make_put(original: Callable) -> Callable:
        def put_log_events(self: Any, log_events: list[dict[str, Any]]) -> Any:
            key_id = self.log_group.kms_key_id
            refuse_unusable(self, {key_id})
            before = len(self.events)
            result = original(self, log_events)
            for event in self.events[before:]:
                event.plus_kms_key_id = key_id
            return result
        return put_log_events

    def make_read(original: Callable) -> Callable:
        def read(self: Any, *args: Any, **kwargs: Any) -> Any:
            refuse_unusable(self, {getattr(e, "plus_kms_key_id", None) for e in self.events})
            return original(self, *args, **kwargs)
        return read

    _wrap(LogStream, "put_log_events", make_put)
    _wrap(LogStream, "get_log_events", make_read)
    _wrap(LogStream, "filter_log_events", make_read)


LOCAL_ZONE = {"name": "us-east-1-bos-1a", "zone_id": "use1-bos1-az1", "group": "us-east-1-bos-1",
              "parent": "us-east-1a"}


def local_zones() -> None:
    """Gap: moto lists only a region's availability zones. In AWS, DescribeAvailabilityZones (and so
    ``data.aws_availability_zones`` without a filter) also lists every Local Zone the account opted in
    to, with ``ZoneType`` ``local-zone``, where EKS places no control plane and most instance types
    are not offered. This patch adds one opted-in Local Zone to us-east-1 (Boston, ``LOCAL_ZONE``)."""
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend, Zone

    zones = RegionsAndZonesBackend.zones.get("us-east-1")
    if zones is None:
        raise MotoVersionError(f"moto {PINNED_MOTO_VERSION} layout changed: no us-east-1 zones")
    if any(z.name == LOCAL_ZONE["name"] for z in zones):
        return
    zone = Zone(region_name="us-east-1", name=LOCAL_ZONE["name"], zone_id=LOCAL_ZONE["zone_id"],
                zone_type="local-zone")
    zone.opt_in_status, zone.group_name, zone.parent_zone_name = "opted-in", LOCAL_ZONE["group"], LOCAL_ZONE["parent"]
    zones.append(zone)


# ----------------------------------------------------------------------------- entry points

PATCHES: tuple[Callable[[], None], ...] = (
    cluster_oidc_issuer,
    cluster_security_group,
    cluster_access_config,
    cluster_updates,
    cluster_versions,
    cluster_upgrade_policy,
    nodegroup_remote_access,
    nodegroup_update_config,
    nodegroup_versions,
    addons,
    access_entries,
    access_policies,
    pod_identity_associations,
    tagging,
    logs_kms_key,
    ec2_delete_dependencies,
    service_quotas,
    iam_enforcement,
    logs_kms_reads,
    local_zones,
)
_applied = False


def apply() -> None:
    """Check the moto pin, then apply every patch (once per process)."""
    global _applied
    check_moto_version()
    if _applied:
        return
    for patch in PATCHES:
        patch()
    _applied = True


def main(argv: list[str] | None = None) -> None:
    """``moto_server`` with the patches applied; same command line."""
    apply()
    from moto.server import main as moto_main

    _log(f"moto {PINNED_MOTO_VERSION} + {len(PATCHES)} patches: {', '.join(p.__name__ for p in PATCHES)}")
    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
