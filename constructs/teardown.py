"""Teardown layer: a destroy leaves nothing of the cluster's workloads behind (``exec`` mode).

A cluster's workloads create AWS resources Terraform never sees: a ``Service`` of type
``LoadBalancer`` gets a classic ELB (the EKS cloud controller: tag ``kubernetes.io/cluster/<name>=owned``,
security group ``k8s-elb-<lb name>`` with an ingress rule on the cluster security group) or an
NLB/ALB (the AWS Load Balancer Controller: tags ``elbv2.k8s.aws/cluster=<name>``,
``service.k8s.aws/stack``, ``service.k8s.aws/resource``; security groups ``k8s-<ns>-<svc>-<hash>`` and
``k8s-traffic-<cluster>-<hash>``, target groups ``k8s-...``); the VPC CNI sometimes leaks interfaces
(status ``available``, tagged ``node.k8s.amazonaws.com/instance_id=<node>``, and
``cluster.k8s.amazonaws.com/name=<name>`` only where the CNI's ``CLUSTER_NAME`` is set, which the EKS
add-on's configuration schema does not take: an untagged one is this cluster's when its node is). Left in place they make the
subnets, the internet gateway and the VPC undeletable (``DependencyViolation``) after the cluster is
gone. eksctl's ``delete cluster`` handles them the same way (``pkg/elb/cleanup.go``).

Creates two ``terraform_data`` resources whose destroy-time ``local-exec`` provisioners run on the
machine running Terraform (sh, the aws CLI, kubectl):

- **workload-cleanup**, destroyed *first* (it depends on every Helm release and Kubernetes object,
  so the controllers and nodes still run): deletes every ``LoadBalancer`` Service and every Ingress
  of the AWS Load Balancer Controller (class ``alb`` or an IngressClass of controller
  ``ingress.k8s.aws/alb``) with ``--wait=false``, then waits (up to 5 minutes) until no load
  balancer, target group or ``k8s-*`` security group tagged for this cluster remains. When kubectl
  is missing or the API server cannot be reached it says so and goes on (nothing in the cluster can
  act any more; the sweep below removes what is left);
- **sweep**, destroyed *after the cluster* and before the subnets, the internet gateway and the VPC
  (the cluster depends on it; it depends on those: interfaces keep subnets and groups, an
  internet-facing load balancer's public addresses keep the gateway from detaching). It refuses to
  run while the cluster still exists (a sweep never races a running controller), then deletes, by
  tag only, the load balancers and target groups tagged for this cluster, the VPC CNI's leaked
  (``available``) interfaces in the VPC, this cluster's ``k8s-*`` security groups in the VPC (first
  revoking the rules other groups hold that reference them) and the cluster security group if EKS
  left it (an interface still used it), retrying for up to 5 minutes while AWS releases the load
  balancers' interfaces. Nothing without this cluster's tags is deleted.

PVC volumes are **kept** (their data may be the only copy): the EBS CSI add-on tags each volume it
creates ``Cluster=<name>`` beside its own ``ebs.csi.aws.com/cluster=true`` (``constructs.addons``:
the driver refuses extra tags in the ``kubernetes.io`` domain), and the sweep lists the kept volume
ids, found by both tags, in the destroy output with the command that deletes them.

Inputs are only the cluster name, the region and the VPC id, which never change without replacing
the cluster itself: a replaced ``terraform_data`` runs its destroy provisioner, and this one deletes
load balancers. In ``token`` mode (Terraform Cloud: no aws CLI or kubectl on the runner) the layer is
not created; removing it from a configuration never runs its provisioners (Terraform runs destroy
provisioners only for resources still in the configuration).

Takes ``name``, ``region``, the ``network`` and ``cluster`` layers and ``in_cluster`` (everything
whose destroy needs the running cluster: the Helm releases and Kubernetes objects). Exposes
``workload_cleanup`` and ``sweep``.
"""

from __future__ import annotations

from cdktf import DataResource, LocalExecProvisioner
from constructs import Construct

from constructs.cluster import Cluster
from constructs.network import Network
from model.teardown import ATTEMPTS, SWEEP, WORKLOAD_CLEANUP


def _waiter(scope: Construct, id_: str, *, script: str, name: str, region: str, vpc_id: str,
            depends_on: list) -> DataResource:
    return DataResource(scope, id_, input={"cluster": name, "region": region, "vpc": vpc_id}, depends_on=depends_on,
                        provisioners=[LocalExecProvisioner(
                            # the script travels in the environment: Terraform prints the command, not it
                            type="local-exec", when="destroy", command=f'sh -c "$TEARDOWN_SCRIPT" {id_}',
                            environment={"TEARDOWN_SCRIPT": script, "CLUSTER": "${self.input.cluster}",
                                         "REGION": "${self.input.region}", "VPC": "${self.input.vpc}",
                                         "ATTEMPTS": str(ATTEMPTS)})])


class Teardown(Construct):
    """Destroy-time cleanup of what the cluster's workloads created in AWS (before and after the cluster)."""

    def __init__(self, scope: Construct, id_: str, *, name: str, region: str, network: Network, cluster: Cluster,
                 in_cluster: list) -> None:
        super().__init__(scope, id_)
        self.sweep = _waiter(self, "sweep", script=SWEEP, name=name, region=region, vpc_id=network.vpc_id,
                             depends_on=network.foundation)
        # the cluster goes before the sweep runs (Terraform destroys dependents first)
        address = f"{self.sweep.terraform_resource_type}.{self.sweep.friendly_unique_id}"
        cluster.cluster.depends_on = [*(cluster.cluster.depends_on or []), address]
        self.workload_cleanup = _waiter(self, "workload-cleanup", script=WORKLOAD_CLEANUP, name=name, region=region,
                                        vpc_id=network.vpc_id, depends_on=[cluster.cluster, *in_cluster])
