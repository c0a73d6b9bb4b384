"""The teardown layer's destroy-time scripts (model/teardown.py), run by ``sh`` against fake ``kubectl``,
``aws`` and ``sleep`` on PATH that record their calls: no cluster API can be had here, and the
AWS-side sweep is exercised end to end on the emulator (tests/test_emulator.py, rung a).

The workload cleanup must delete every LoadBalancer Service and every Ingress of the AWS Load
Balancer Controller (and nothing else), without waiting on finalizers, then wait for the load
balancers through AWS; and it must let the destroy go on when kubectl is missing or the API server is
already unreachable. The sweep must refuse to run while the cluster exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from model.teardown import SWEEP, WORKLOAD_CLEANUP

# A kubectl that answers the cleanup's three reads from files ($FAKE/<verb>-<kind>), fails with the
# text of $FAKE/unreachable when that file exists, and records every call in $FAKE/calls.
KUBECTL = r"""#!/bin/sh
printf "%s\n" "kubectl $*" >> "$FAKE/calls"
if [ -f "$FAKE/unreachable" ]; then cat "$FAKE/unreachable" >&2; exit 1; fi
for arg in "$@"; do
  case "$arg" in
    services|ingressclasses|ingresses) kind=$arg ;;
    gatewayclasses.gateway.networking.k8s.io|gateways.gateway.networking.k8s.io) kind=${arg%%.*} ;;
    get|delete) verb=$arg ;;
  esac
done
[ "$verb" = get ] && cat "$FAKE/get-$kind" 2>/dev/null
exit 0
"""
# An aws CLI that records its calls and answers: describe-cluster per $FAKE/cluster (exit 0: the
# cluster exists); one load balancer tagged for the cluster for the first $FAKE/lb-checks listings;
# sts get-caller-identity fails as an expired session does for the first $FAKE/expired calls.
AWS = r"""#!/bin/sh
printf "%s\n" "aws $*" >> "$FAKE/calls"
case "$*" in
  *"sts get-caller-identity"*)
    left=$(cat "$FAKE/expired" 2>/dev/null || echo 0)
    if [ "$left" -gt 0 ]; then echo $((left - 1)) > "$FAKE/expired"
      echo "An error occurred (ExpiredToken) when calling the GetCallerIdentity operation: The security token included in the request is expired" >&2; exit 254; fi
    echo "arn:aws:sts::123456789012:assumed-role/ops/me"; exit 0 ;;
  *"eks update-kubeconfig"*) exit 0 ;;
  *"eks describe-cluster"*) if [ -f "$FAKE/cluster" ]; then cat "$FAKE/cluster"; exit 0; fi
    echo "An error occurred (ResourceNotFoundException) when calling the DescribeCluster operation: No cluster found" >&2; exit 254 ;;
  *"elbv2 describe-load-balancers"*)
    left=$(cat "$FAKE/lb-checks" 2>/dev/null || echo 0)
    if [ "$left" -gt 0 ]; then echo $((left - 1)) > "$FAKE/lb-checks"; echo "arn:aws:elasticloadbalancing:lb/net/k8s-shop-api-0123456789/1"; fi ;;
  *"elbv2 describe-tags"*) shift_args=$*; echo "${shift_args##* }" ;;
esac
exit 0
"""
SLEEP = '#!/bin/sh\necho "sleep $*" >> "$FAKE/calls"\n'
ENV = {"CLUSTER": "platform-dev", "REGION": "us-west-2", "VPC": "vpc-0123", "ATTEMPTS": "5"}


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("kubectl", KUBECTL), ("aws", AWS), ("sleep", SLEEP)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "calls").write_text("")
    return tmp_path


def run(script: str, fake: Path, *, path: str | None = None) -> tuple[subprocess.CompletedProcess, list[str]]:
    env = {"PATH": path or f"{fake / 'bin'}:/usr/bin:/bin", "FAKE": str(fake), "HOME": str(fake), **ENV}
    proc = subprocess.run([shutil.which("sh") or "/bin/sh", "-c", script], env=env, capture_output=True, text=True,
                          timeout=60, cwd=fake)
    return proc, (fake / "calls").read_text().splitlines()


def deletes(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith("kubectl ") and " delete " in c]


def test_cleanup_deletes_load_balancer_services_and_alb_ingresses_then_waits_for_their_load_balancers(fake):
    (fake / "get-services").write_text("default web\nshop api\n")
    (fake / "get-ingressclasses").write_text("alb-internal ")
    # namespace, name, spec.ingressClassName, the kubernetes.io/ingress.class annotation
    (fake / "get-ingresses").write_text("default app  alb\nshop store alb-internal \nshop nginx nginx \n")
    (fake / "lb-checks").write_text("2")
    proc, calls = run(WORKLOAD_CLEANUP, fake)
    assert proc.returncode == 0, proc.stderr
    assert [" ".join(c.split()[-4:]) for c in deletes(calls)] == [
        "default web --wait=false --ignore-not-found", "shop api --wait=false --ignore-not-found",
        "default app --wait=false --ignore-not-found", "shop store --wait=false --ignore-not-found"], calls
    assert [c.split(" delete ")[1].split()[0] for c in deletes(calls)] == ["service", "service", "ingress", "ingress"]
    assert all("--request-timeout=20s" in c for c in calls if c.startswith("kubectl "))
    # the wait: two listings still show the NLB (two sleeps), the third shows nothing left
    assert sum(c.startswith("aws ") and "elbv2 describe-load-balancers" in c for c in calls) == 3, calls
    assert [c for c in calls if c.startswith("sleep ")] == ["sleep 10", "sleep 10"]
    assert "the controllers deleted every load balancer of platform-dev" in proc.stdout


def test_cleanup_without_load_balancers_deletes_nothing_and_does_not_wait(fake):
    (fake / "get-ingresses").write_text("shop nginx nginx \n")
    proc, calls = run(WORKLOAD_CLEANUP, fake)
    assert proc.returncode == 0 and deletes(calls) == [] and not [c for c in calls if c.startswith("sleep")], calls
    assert "no LoadBalancer Service, ALB Ingress or AWS Load Balancer Controller Gateway in platform-dev" in proc.stdout


def test_cleanup_deletes_ingresses_without_a_class_when_the_default_class_is_the_alb_controllers(fake):
    """An Ingress with neither ``spec.ingressClassName`` nor the annotation is served by the cluster's
    default IngressClass (``ingressclass.kubernetes.io/is-default-class: "true"``)."""
    (fake / "get-ingressclasses").write_text("alb-default true\nalb-internal \n")
    (fake / "get-ingresses").write_text("default web  \nshop nginx nginx \n")
    proc, calls = run(WORKLOAD_CLEANUP, fake)
    assert proc.returncode == 0, proc.stderr
    assert [c.split(" delete ")[1] for c in deletes(calls)] == ["ingress --namespace default web --wait=false --ignore-not-found"], calls
    assert "deleting ALB Ingress default/web (no class: the default IngressClass is the AWS Load Balancer " \
           "Controller's)" in proc.stdout


def test_cleanup_leaves_classless_ingresses_alone_when_the_default_class_is_anothers(fake):
    (fake / "get-ingressclasses").write_text("alb-internal \n")  # an ALB class, not the default
    (fake / "get-ingresses").write_text("default web  \n")
    proc, calls = run(WORKLOAD_CLEANUP, fake)
    assert proc.returncode == 0 and deletes(calls) == [], calls


def test_cleanup_deletes_the_gateways_of_the_load_balancer_controllers_gateway_classes(fake):
    """AWS Load Balancer Controller 2.13+ serves Gateway API: GatewayClasses of controller
    ``gateway.k8s.aws/alb`` or ``gateway.k8s.aws/nlb``; their Gateways own load balancers (eksctl's
    cluster deletion deletes them too). Gateways of another class (Istio's, Envoy's) are left alone,
    and the kinds are fully qualified (``gateways`` alone may name Istio's kind)."""
    (fake / "get-gatewayclasses").write_text("aws-alb aws-nlb ")
    (fake / "get-gateways").write_text("shop web aws-alb\nshop tcp aws-nlb\nmesh edge istio\n")
    proc, calls = run(WORKLOAD_CLEANUP, fake)
    assert proc.returncode == 0, proc.stderr
    assert [c.split(" delete ")[1] for c in deletes(calls)] == [
        "gateways.gateway.networking.k8s.io --namespace shop web --wait=false --ignore-not-found",
        "gateways.gateway.networking.k8s.io --namespace shop tcp --wait=false --ignore-not-found"], calls
    listing = [c for c in calls if c.startswith("kubectl ") and " get gatewayclasses" in c]
    assert listing and 'controllerName=="gateway.k8s.aws/alb"' in listing[0] and \
        'controllerName=="gateway.k8s.aws/nlb"' in listing[0], calls


def test_cleanup_without_gateway_api_crds_lists_no_gateways(fake):
    (fake / "get-services").write_text("default web\n")
    proc, calls = run(WORKLOAD_CLEANUP, fake)
    assert proc.returncode == 0, proc.stderr
    assert not [c for c in calls if " get gateways." in c], calls  # no class of the controller: no listing


def test_the_waits_retry_an_expired_session_and_take_the_renewed_one(fake):
    """A session that expires during the wait (SSO, an assumed role) is reported with its fix and
    retried: every attempt runs a new aws CLI, which re-reads the credentials, so a session renewed
    in another terminal carries on the destroy."""
    (fake / "get-services").write_text("default web\n")
    (fake / "lb-checks").write_text("1")
    (fake / "expired").write_text("2")
    proc, calls = run(WORKLOAD_CLEANUP, fake)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("the AWS session of this destroy has expired") == 2, proc.stderr
    assert "aws sso login" in proc.stderr
    assert "the controllers deleted every load balancer of platform-dev" in proc.stdout


def test_cleanup_goes_on_when_the_api_server_is_unreachable(fake):
    (fake / "unreachable").write_text("E1201 12:00:00 memcache.go:265] couldn't get current server API group list\n"
                                      "Unable to connect to the server: dial tcp: lookup example.eks.amazonaws.com: no such host\n")
    proc, calls = run(WORKLOAD_CLEANUP, fake)
    assert proc.returncode == 0, proc.stderr
    assert deletes(calls) == [] and not [c for c in calls if "elbv2" in c or c.startswith("sleep")], calls
    assert proc.stderr.strip() == (
        "teardown: kubectl cannot list the Services of platform-dev (API server unreachable or access refused: "
        "Unable to connect to the server: dial tcp: lookup "
        "example.eks.amazonaws.com: no such host): LoadBalancer Services, ALB Ingresses and Gateways of platform-dev "
        "were not "
        "deleted; the sweep after the cluster's deletion removes what their controllers left.")


def test_cleanup_goes_on_without_kubectl(fake):
    (fake / "bin" / "kubectl").unlink()
    bare = fake / "bare"
    bare.mkdir()
    for tool in ("sh", "mktemp", "rm"):  # just enough for the script's first lines; no kubectl anywhere
        os.symlink(shutil.which(tool), bare / tool)
    proc, calls = run(WORKLOAD_CLEANUP, fake, path=f"{fake / 'bin'}:{bare}")
    assert proc.returncode == 0 and calls == [], (proc.stderr, calls)
    assert "kubectl is not installed" in proc.stderr


@pytest.mark.parametrize("state, file, text, message", [
    ("the cluster still exists", "cluster", "ACTIVE\n", "cluster platform-dev still exists (ACTIVE)"),
    ("the session stays expired", "expired", "99", "the AWS session stayed expired for 5 attempts"),
])
def test_sweep_refuses_to_delete_anything(fake, state, file, text, message):
    (fake / file).write_text(text)
    proc, calls = run(SWEEP, fake)
    assert proc.returncode == 1, state
    assert message in proc.stderr
    assert not [c for c in calls if "delete" in c], calls


def test_scripts_hold_no_terraform_template_sequences():
    """Terraform reads ``${`` and ``%{`` in a provisioner command as its own templates."""
    for script in (WORKLOAD_CLEANUP, SWEEP):
        assert "${" not in script and "%{" not in script


def test_docs_destroy_lists_the_permission_of_every_aws_call_the_destroy_makes():
    """docs/destroy.md names what the destroying identity needs beyond the apply's: each aws CLI call of
    the teardown scripts and of Karpenter's node wait (constructs/karpenter.py, read as text: importing
    it loads the provider bindings). It once omitted ec2:DescribeInstances, which the node wait calls."""
    import re

    root = Path(__file__).resolve().parent.parent
    node_wait = (root / "constructs" / "karpenter.py").read_text()
    scripts = WORKLOAD_CLEANUP + SWEEP + node_wait[node_wait.index("NODE_CLEANUP_WAIT = "):]
    calls = set(re.findall(r"\baws (?:--\S+ (?:\"[^\"]*\"|\S+) )*(ec2|elb|elbv2|eks) ([a-z-]+)", scripts))
    assert ("ec2", "describe-instances") in calls and ("eks", "describe-cluster") in calls, calls
    documented = (root / "docs" / "destroy.md").read_text()
    action = {("eks", "update-kubeconfig"): "DescribeCluster"}  # update-kubeconfig describes the cluster
    calls.discard(("ec2", "delete-volume"))  # printed for the user (kept volumes), never run by the destroy
    missing = []
    for service, command in sorted(calls):
        name = action.get((service, command), "".join(w.capitalize() for w in command.split("-")))
        if service.startswith("elb") and name.startswith("Describe"):
            name = "elasticloadbalancing:Describe*"
        if f"`{name}`" not in documented and f"`{service}:{name}`" not in documented and name not in documented:
            missing.append(f"{service} {command} ({name})")
    assert not missing, f"docs/destroy.md does not list the permission of: {missing}"


# the VPC CNI's interfaces, as EC2 answers the sweep's two reads (cluster tag; node tag only) and the
# instances of this cluster among their nodes
CNI_AWS = r"""#!/bin/sh
printf "%s\n" "aws $*" >> "$FAKE/calls"
case "$*" in
  *"describe-network-interfaces"*"tag:cluster.k8s.amazonaws.com/name"*) echo "eni-tagged" ;;
  *"describe-network-interfaces"*"tag-key,Values=node.k8s.amazonaws.com/instance_id"*)
    printf 'eni-ours\ti-0ours\neni-theirs\ti-0theirs\n' ;;
  *"describe-instances"*"tag:kubernetes.io/cluster/platform-dev,Values=owned"*) echo "i-0ours" ;;
esac
exit 0
"""


def test_leaked_interfaces_without_the_cluster_tag_are_found_by_their_node(fake):
    """The CNI writes ``cluster.k8s.amazonaws.com/name`` only with CLUSTER_NAME set, which EKS's vpc-cni
    add-on schema does not take (tests/fixtures/vpc-cni/); ``node.k8s.amazonaws.com/instance_id`` it
    writes always. An untagged interface is this cluster's when its node is, never otherwise."""
    from model.teardown import FIND

    (fake / "bin" / "aws").write_text(CNI_AWS)
    proc, calls = run(FIND + "\nleaked_interfaces\n", fake)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["eni-tagged", "eni-ours"], (proc.stdout, calls)
    (instances,) = [c for c in calls if "describe-instances" in c]
    assert "Name=instance-id,Values=i-0ours,i-0theirs" in instances, instances


def test_the_sweep_filters_on_the_tags_the_vpc_cni_writes():
    """Upstream's tag keys (aws/amazon-vpc-cni-k8s pkg/awsutils/awsutils.go, vendored) are the ones the
    sweep filters on, and the EKS add-on's configuration schema for vpc-cni (vendored) has no
    CLUSTER_NAME, so the node tag is the one the sweep can count on."""
    import json

    from model.teardown import FIND

    fixtures = Path(__file__).resolve().parent / "fixtures" / "vpc-cni"
    upstream = json.loads((fixtures / "awsutils-tags.json").read_text())
    assert f"tag:{upstream['eniClusterTagKey']},Values=$CLUSTER" in FIND
    assert f"tag-key,Values={upstream['eniNodeTagKey']}" in FIND
    # EC2 answers an interface's tags as TagSet (not Tags): a query on Tags matches nothing
    assert f"TagSet[?Key=='{upstream['eniNodeTagKey']}']" in FIND
    assert f"TagSet[?Key=='{upstream['eniClusterTagKey']}']" in FIND
    assert f"(Tags[?Key=='{upstream['eniClusterTagKey']}']" not in FIND and f" Tags[?Key=='{upstream['eniNodeTagKey']}']" not in FIND
    schema = json.loads(json.loads((fixtures / "addon-configuration-v1.15.1-eksbuild.1.json").read_text())
                        ["configurationSchema"])
    env = schema["definitions"]["Env"]
    assert env["additionalProperties"] is False and upstream["clusterNameEnvVar"] not in env["properties"]
    assert "CLUSTER_ENDPOINT" in env["properties"]  # the schema is the real one: it lists its neighbours
