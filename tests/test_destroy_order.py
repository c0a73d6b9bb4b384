"""Destroy order, read from the dependency graph of the synthesized JSON.

Terraform destroys in reverse dependency order: a resource goes before everything it depends on.
Karpenter's finalizers call EC2 and IAM through the NAT while its releases uninstall (the NodePools
release terminates the instances Karpenter launched; the Karpenter release must still run meanwhile),
so every ``helm_release``, every ``kubernetes_*`` resource and every destroy-time waiter (a resource
with a ``when = destroy`` provisioner) must *transitively depend on* what that traffic and those
identities need, or Terraform may tear it down first:

- the internet gateway(s), EVERY NAT gateway;
- EVERY route through a NAT gateway or the internet gateway (the private default routes and the
  public default route), every route of a route table associated with a subnet the cluster or its
  node groups use, and route tables with such inline routes;
- EVERY ``aws_route_table_association``;
- every ``aws_eks_node_group`` (the controller nodes Karpenter runs on), and the policy attachments /
  inline policies of each node group's role;
- the pod-networking add-ons (``aws_eks_addon`` vpc-cni, kube-proxy, coredns): without them the
  controller cannot reach AWS or the API server while it uninstalls;
- for a Helm release that runs under an IRSA role (it references the role, or a service account
  annotated with it): that role's ``aws_iam_role_policy_attachment``s and inline policies;
- with EKS Pod Identity: the ``eks-pod-identity-agent`` add-on (it serves every pod's credentials); for a
  Helm release that runs as or after one of the platform's service accounts (Karpenter, its NodePools)
  EVERY ``aws_eks_pod_identity_association`` (Karpenter's, and the EBS CSI controller's, which detaches
  volumes while nodes drain); and for a Helm release whose service account (``serviceAccount.name`` in its values, in its
  namespace) has an association: that association's role's policy attachments and inline policies. Found
  from the service account's name, not from the release's edges, so a missing ``depends_on`` is caught.

The graph has an edge A -> B when A's ``depends_on`` names B, when any attribute of A (strings,
lists, nested blocks, function arguments) holds a ``${...}`` expression naming ``B`` (``type.name``
or ``data.type.name``), and when A uses a provider whose configuration references B (a resource uses
the provider its ``provider`` argument names, else the one its type's prefix names: ``helm_*`` ->
``helm``, ``kubernetes_*`` -> ``kubernetes``).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator

import pytest
import yaml

from tests.iam_policies import expressions
from tests.variants import VARIANTS

Graph = dict[str, set[str]]

# type.name or data.type.name, not preceded by an identifier character or a dot (``x.aws_vpc.y``)
_ADDRESS = re.compile(r"(?<![\w.\-])(?:data\.)?[a-z][a-z0-9_]*\.[A-Za-z_][A-Za-z0-9_-]*")
_PLAIN_REFERENCE_KEYS = ("depends_on", "replace_triggered_by")  # lists of bare addresses


# ----------------------------------------------------------------------------- graph


def _blocks(doc: dict) -> Iterator[tuple[str, str, dict]]:
    """``(address, type, body)`` of every resource and data source."""
    for rtype, items in doc.get("resource", {}).items():
        for name, body in items.items():
            yield f"{rtype}.{name}", rtype, body
    for rtype, items in doc.get("data", {}).items():
        for name, body in items.items():
            yield f"data.{rtype}.{name}", rtype, body


def _strings(value, key: str = "") -> Iterator[tuple[str, str]]:
    """``(innermost key, string)`` of every string anywhere in ``value`` (dict keys included)."""
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, key)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield "", k
            yield from _strings(v, k)


def _resolve(candidate: str, known: set[str]) -> str | None:
    """``candidate`` if it is an address of the stack; also ``aws_x.y-1`` -> ``aws_x.y`` (subtraction)."""
    while candidate not in known and "-" in candidate.split(".")[-1]:
        candidate = candidate.rsplit("-", 1)[0]
    return candidate if candidate in known else None


def references(value, known: set[str]) -> set[str]:
    """The addresses of ``known`` that ``value`` refers to (``${...}`` anywhere, bare in ``depends_on``)."""
    found: set[str] = set()
    for key, text in _strings(value):
        if key in _PLAIN_REFERENCE_KEYS and not text.startswith("${"):
            address = _resolve(text.strip(), known)
            if address:
                found.add(address)
            continue
        for _, _, expr in expressions(text):
            for m in _ADDRESS.finditer(expr):
                address = _resolve(m[0], known)
                if address:
                    found.add(address)
    return found


def _provider_key(rtype: str, body: dict) -> str:
    """``helm`` or ``helm.<alias>``: the provider configuration a resource or data source uses."""
    explicit = body.get("provider")
    if isinstance(explicit, str):
        return explicit.removeprefix("${").removesuffix("}")
    return rtype.split("_", 1)[0]


def _provider_configs(doc: dict) -> dict[str, object]:
    configs: dict[str, object] = {}
    for pname, blocks in doc.get("provider", {}).items():
        for block in blocks if isinstance(blocks, list) else [blocks]:
            alias = block.get("alias")
            configs[f"{pname}.{alias}" if alias else pname] = block
    return configs


def dependency_graph(doc: dict) -> Graph:
    """``{address: addresses it depends on directly}`` for every resource and data source."""
    known = {address for address, _, _ in _blocks(doc)}
    provider_refs = {key: references(block, known) for key, block in _provider_configs(doc).items()}
    graph: Graph = {}
    for address, rtype, body in _blocks(doc):
        deps = references(body, known) | provider_refs.get(_provider_key(rtype, body), set())
        deps.discard(address)
        graph[address] = deps
    return graph


def closure(graph: Graph, start: str) -> set[str]:
    """Everything ``start`` depends on, transitively (without itself)."""
    seen: set[str] = set()
    stack = list(graph.get(start, ()))
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(graph.get(node, ()))
    return seen


# ----------------------------------------------------------------------------- what must stay until last


def _res(doc: dict, rtype: str) -> dict[str, dict]:
    return doc.get("resource", {}).get(rtype, {})


def destroy_waiters(doc: dict) -> list[str]:
    """Resources with a ``when = destroy`` provisioner (terraform_data, null_resource, ...)."""
    found = []
    for rtype, items in doc.get("resource", {}).items():
        for name, body in items.items():
            provisioners = body.get("provisioner", [])
            for block in provisioners if isinstance(provisioners, list) else [provisioners]:
                if any(isinstance(p, dict) and p.get("when") == "destroy" for p in block.values()):
                    found.append(f"{rtype}.{name}")
                    break
    return found


def protected(doc: dict) -> list[str]:
    """Every helm_release, every kubernetes_* resource and every destroy-time waiter."""
    out = [f"{rtype}.{name}" for rtype, items in doc.get("resource", {}).items()
           if rtype == "helm_release" or rtype.startswith("kubernetes_") for name in items]
    return sorted(set(out) | set(destroy_waiters(doc)))


def after_cluster_waiters(doc: dict, graph: Graph) -> list[str]:
    """Destroy-time waiters an ``aws_eks_cluster`` depends on: Terraform destroys them after the cluster."""
    clusters = [f"aws_eks_cluster.{name}" for name in _res(doc, "aws_eks_cluster")]
    return sorted(w for w in destroy_waiters(doc) if any(w in closure(graph, c) for c in clusters))


def _commands(doc: dict, address: str) -> str:
    rtype, name = address.split(".", 1)
    provisioners = _res(doc, rtype)[name].get("provisioner", [])
    return json.dumps(provisioners)


def _role_permissions(doc: dict, graph: Graph, role: str) -> dict[str, str]:
    """The policy attachments and inline policies that grant ``role`` (an address) its permissions."""
    out = {}
    for rtype, what in (("aws_iam_role_policy_attachment", "policy attachment"), ("aws_iam_role_policy", "inline policy")):
        for name in _res(doc, rtype):
            if role in graph[f"{rtype}.{name}"]:
                out[f"{rtype}.{name}"] = f"{what} of {role}"
    return out


def _irsa_roles(doc: dict, graph: Graph) -> set[str]:
    """Roles assumable through a web identity (IRSA): their trust policy allows AssumeRoleWithWebIdentity."""
    roles = set()
    for name, body in _res(doc, "aws_iam_role").items():
        trust = body.get("assume_role_policy", "")
        text = json.dumps(trust)
        for dep in references(trust, set(graph)):
            if dep.startswith("data.aws_iam_policy_document."):
                text += json.dumps(doc["data"]["aws_iam_policy_document"][dep.split(".")[2]])
        if "sts:AssumeRoleWithWebIdentity" in text:
            roles.add(f"aws_iam_role.{name}")
    return roles


def irsa_roles_used(doc: dict, graph: Graph, address: str) -> set[str]:
    """IRSA roles a Helm release runs under: referenced by it, or by a service account it references."""
    irsa = _irsa_roles(doc, graph)
    direct = graph[address]
    via_accounts = {dep for sa in direct if sa.startswith("kubernetes_service_account") for dep in graph[sa]}
    return (direct | via_accounts) & irsa


def _release_service_account(body: dict) -> tuple[str, str] | None:
    """``(namespace, service account)`` a Helm release's pods run as (``serviceAccount.name`` in its values)."""
    for values in body.get("values") or []:
        name = ((yaml.safe_load(values) or {}).get("serviceAccount") or {}).get("name")
        if name:
            return body.get("namespace", "default"), name
    return None


def _literal_namespace(doc: dict, graph: Graph, namespace: str) -> str:
    for dep in references(namespace, set(graph)):
        if dep.startswith("kubernetes_namespace"):
            return _res(doc, dep.split(".")[0])[dep.split(".")[1]]["metadata"]["name"]
    return namespace


def pod_identity_needs(doc: dict, graph: Graph) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """What every in-cluster resource needs with Pod Identity (the agent add-on, every association), and
    ``{(namespace, service account): association address}``."""
    needs: dict[str, str] = {}
    for name, body in _res(doc, "aws_eks_addon").items():
        if body.get("addon_name") == "eks-pod-identity-agent":
            needs[f"aws_eks_addon.{name}"] = "the Pod Identity agent add-on"
    by_account = {}
    for name, body in _res(doc, "aws_eks_pod_identity_association").items():
        address = f"aws_eks_pod_identity_association.{name}"
        namespace = _literal_namespace(doc, graph, body["namespace"])
        needs[address] = f"Pod Identity association of {namespace}/{body['service_account']}"
        by_account[(namespace, body["service_account"])] = address
    return needs, by_account


def requirements(doc: dict, graph: Graph) -> dict[str, dict[str, str]]:
    """``{protected address: {address it must transitively depend on: why}}``."""
    network: dict[str, str] = {}
    for name in _res(doc, "aws_internet_gateway"):
        network[f"aws_internet_gateway.{name}"] = "internet gateway"
    for name in _res(doc, "aws_nat_gateway"):
        network[f"aws_nat_gateway.{name}"] = "NAT gateway"
    igws = {a for a in network if a.startswith("aws_internet_gateway.")}
    nats = {a for a in network if a.startswith("aws_nat_gateway.")}

    def egress(address: str, route: dict) -> str | None:
        deps = references(route, set(graph))
        if route.get("nat_gateway_id") or deps & nats:
            return "route through a NAT gateway"
        if deps & igws:
            return "route through the internet gateway"
        return None

    for name, body in _res(doc, "aws_route").items():
        why = egress(f"aws_route.{name}", body)
        if why:
            network[f"aws_route.{name}"] = why
    for name, body in _res(doc, "aws_route_table").items():
        routes = body.get("route") or []
        if any(egress("", r) for r in (routes if isinstance(routes, list) else [routes])):
            network[f"aws_route_table.{name}"] = "route table with an inline route through a NAT/internet gateway"
    # routes of the route tables associated with a subnet the cluster or a node group uses
    node_subnets = {dep for rtype in ("aws_eks_cluster", "aws_eks_node_group") for name in _res(doc, rtype)
                    for dep in graph[f"{rtype}.{name}"] if dep.startswith("aws_subnet.")}
    node_tables = {dep for name in _res(doc, "aws_route_table_association")
                   if graph[f"aws_route_table_association.{name}"] & node_subnets
                   for dep in graph[f"aws_route_table_association.{name}"] if dep.startswith("aws_route_table.")}
    for name in _res(doc, "aws_route"):
        if graph[f"aws_route.{name}"] & node_tables:
            network.setdefault(f"aws_route.{name}", "route of a node subnet's route table")
    for name in _res(doc, "aws_route_table_association"):
        network[f"aws_route_table_association.{name}"] = "route table association"

    nodes: dict[str, str] = {}
    for name in _res(doc, "aws_eks_node_group"):
        address = f"aws_eks_node_group.{name}"
        nodes[address] = "controller node group"
        for role in (d for d in graph[address] if d.startswith("aws_iam_role.")):
            nodes.update(_role_permissions(doc, graph, role))

    for name, body in _res(doc, "aws_eks_addon").items():
        if body.get("addon_name") in ("vpc-cni", "kube-proxy", "coredns"):
            nodes[f"aws_eks_addon.{name}"] = f"pod-networking add-on {body['addon_name']}"

    pod_identity, associations = pod_identity_needs(doc, graph)
    agent = {a: why for a, why in pod_identity.items() if a.startswith("aws_eks_addon.")}
    out: dict[str, dict[str, str]] = {}
    after = set(after_cluster_waiters(doc, graph))
    for address in protected(doc):
        if address in after:  # runs once the cluster and its nodes are gone: its needs are checked apart
            continue
        need = {**network, **nodes, **agent}
        if address.startswith("helm_release.") and any(a.startswith("kubernetes_service_account")
                                                        for a in closure(graph, address)):
            need.update(pod_identity)  # runs as (or after) a platform service account: Karpenter, its NodePools
        if address.startswith("helm_release."):
            for role in sorted(irsa_roles_used(doc, graph, address)):
                need.update({a: f"IRSA {why}" for a, why in _role_permissions(doc, graph, role).items()})
            body = _res(doc, "helm_release")[address.split(".", 1)[1]]
            account = _release_service_account(body)
            if account:
                account = (_literal_namespace(doc, graph, account[0]), account[1])
            association = associations.get(account) if account else None
            if association:
                assoc_body = _res(doc, "aws_eks_pod_identity_association")[association.split(".", 1)[1]]
                for role in references(assoc_body["role_arn"], set(graph)):
                    need.update({a: f"Pod Identity {why}" for a, why in _role_permissions(doc, graph, role).items()})
        need.pop(address, None)
        out[address] = need
    return out


def missing_edges(graph: Graph, required: dict[str, dict[str, str]]) -> list[str]:
    """``"<protected> -> <required>  (<why>)"`` for every requirement not in the protected one's closure."""
    lines = []
    for address, need in sorted(required.items()):
        reach = closure(graph, address)
        lines += [f"{address} -> {dep}  ({why})" for dep, why in sorted(need.items()) if dep not in reach]
    return lines


def report(lines: list[str]) -> str:
    return (f"{len(lines)} missing destroy-order dependencies (the first is destroyed while the second is "
            "still needed; add depends_on so the second outlives the first):\n" + "\n".join(lines))


def fix_up(graph: Graph, required: dict[str, dict[str, str]]) -> tuple[Graph, list[tuple[str, str]]]:
    """A copy of ``graph`` with the fewest direct edges added so nothing is missing, and those edges.

    Protected resources go dependencies-first and, for each, the missing requirements dependents-first:
    an edge is added only while its target is still unreachable, so each added edge is the only path
    from its source to its target."""
    fixed = copy.deepcopy(graph)
    order = _topological(graph)  # dependencies first
    rank = {a: i for i, a in enumerate(order)}
    added = []
    for address in sorted(required, key=rank.__getitem__):
        for dep in sorted(required[address], key=rank.__getitem__, reverse=True):
            if dep not in closure(fixed, address):
                fixed[address].add(dep)
                added.append((address, dep))
    return fixed, added


def _topological(graph: Graph) -> list[str]:
    order, state = [], {}

    def visit(node: str) -> None:
        if state.get(node) == 2:
            return
        assert state.get(node) != 1, f"dependency cycle through {node}"
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            visit(dep)
        state[node] = 2
        order.append(node)

    for node in sorted(graph):
        visit(node)
    return order


# ----------------------------------------------------------------------------- the stacks


@pytest.mark.parametrize("stack", VARIANTS)
def test_releases_and_kubernetes_objects_outlive_nothing_they_need_on_destroy(synth, stack):
    doc = synth[stack]
    graph = dependency_graph(doc)
    required = requirements(doc, graph)
    karpenter = [a for a in required if a.startswith("helm_release.")
                 and _res(doc, "helm_release")[a.split(".", 1)[1]].get("chart") == "karpenter"]
    assert len(karpenter) == 1, f"expected one Karpenter release, found {karpenter}"
    identity = [dep for dep, why in required[karpenter[0]].items()
                if why.startswith(("IRSA policy attachment", "Pod Identity policy attachment"))]
    assert identity, (f"{karpenter[0]} runs under no IRSA or Pod Identity role with policy attachments: the check "
                      "lost track of its identity")
    if "aws_eks_pod_identity_association" in doc["resource"]:
        assert any(why == "the Pod Identity agent add-on" for why in required[karpenter[0]].values())
        assert sum(why.startswith("Pod Identity association") for why in required[karpenter[0]].values()) == 2
    if _res(doc, "aws_vpc"):  # an existing network has no egress of ours to keep
        assert any(dep.startswith("aws_nat_gateway.") for dep in required[karpenter[0]])
    else:
        assert not any(dep.startswith(("aws_nat_gateway.", "aws_route")) for dep in required[karpenter[0]])
    lines = missing_edges(graph, required)
    if lines:
        pytest.fail(report(lines), pytrace=False)


def teardown_order(doc: dict, graph: Graph) -> list[str]:
    """What is wrong with the teardown layer's place in the destroy order (empty: nothing).

    exec mode: the workload cleanup (kubectl deletes LoadBalancer Services and ALB Ingresses) is
    destroyed first, while every Helm release, Kubernetes object, other waiter and the cluster still
    run; the sweep is destroyed after the cluster and its node groups, before the VPC, every subnet
    and the internet gateway (a leaked interface keeps a subnet, an internet-facing load balancer's
    public addresses keep the gateway from detaching). token mode (no aws CLI or
    kubectl on the runner): neither exists."""
    waiters = destroy_waiters(doc)
    cleanups = [w for w in waiters if "kubectl" in _commands(doc, w) and "delete service" in _commands(doc, w)]
    sweeps = [w for w in waiters if "delete-load-balancer" in _commands(doc, w)]
    if "aws_eks_cluster_auth" in doc.get("data", {}):  # token mode
        return [f"{w}: a teardown waiter in token mode (no aws CLI/kubectl there)" for w in cleanups + sweeps]
    if len(cleanups) != 1 or len(sweeps) != 1:
        return [f"expected one workload cleanup and one sweep, found {cleanups} and {sweeps}"]
    cleanup, sweep = cleanups[0], sweeps[0]
    problems = []
    clusters = {f"aws_eks_cluster.{n}" for n in _res(doc, "aws_eks_cluster")}
    in_cluster = {a for a in protected(doc) if a not in (cleanup, sweep)} | clusters
    problems += [f"{cleanup} -> {a}  (destroyed first, while it still runs)" for a in sorted(in_cluster - closure(graph, cleanup))]
    problems += [f"{a} -> {cleanup}  (must not depend on the workload cleanup)" for a, deps in sorted(graph.items())
                 if cleanup in deps]
    network = {f"{rtype}.{n}" for rtype in ("aws_vpc", "aws_subnet", "aws_internet_gateway") for n in _res(doc, rtype)}
    problems += [f"{sweep} -> {a}  (destroyed after the sweep)" for a in sorted(network - closure(graph, sweep))]
    later = {f"{rtype}.{n}" for rtype in ("aws_eks_cluster", "aws_eks_node_group") for n in _res(doc, rtype)}
    problems += [f"{a} -> {sweep}  (destroyed before the sweep runs)" for a in sorted(later) if sweep not in closure(graph, a)]
    return problems


@pytest.mark.parametrize("stack", VARIANTS)
def test_teardown_runs_before_every_release_and_sweeps_after_the_cluster(synth, stack):
    doc = synth[stack]
    problems = teardown_order(doc, dependency_graph(doc))
    assert not problems, "teardown destroy order (add depends_on so the first outlives the second):\n" + "\n".join(problems)


def test_a_misplaced_teardown_is_reported(synth):
    """On dev's graph: the cluster no longer depending on the sweep, or the workload cleanup no longer
    depending on the NodePools release, is named by the check."""
    doc = synth["dev"]
    graph = dependency_graph(doc)
    assert teardown_order(doc, graph) == []
    waiters = destroy_waiters(doc)
    sweep = next(w for w in waiters if "delete-load-balancer" in _commands(doc, w))
    cleanup = next(w for w in waiters if "delete service" in _commands(doc, w))
    cluster = next(a for a in graph if a.startswith("aws_eks_cluster."))
    broken = copy.deepcopy(graph)
    broken[cluster].discard(sweep)
    assert f"{cluster} -> {sweep}  (destroyed before the sweep runs)" in teardown_order(doc, broken)
    broken = copy.deepcopy(graph)
    nodepools = next(d for d in broken[cleanup] if d.startswith("helm_release.") and "nodepools" in d)
    broken[cleanup].discard(nodepools)
    assert f"{cleanup} -> {nodepools}  (destroyed first, while it still runs)" in teardown_order(doc, broken)


def test_a_removed_edge_is_reported(synth):
    """On a copy of dev's graph fixed up to pass, removing one edge makes the check name exactly
    the pairs that lost their only path."""
    graph = dependency_graph(synth["dev"])
    required = requirements(synth["dev"], graph)
    fixed, added = fix_up(graph, required)
    assert missing_edges(fixed, required) == []
    # an added edge is its source's only path to its target; without any (the stack already passes),
    # look for a direct edge that is the only path
    candidates = added or [(a, d) for a in sorted(required) for d in sorted(fixed[a] & set(required[a]))]
    for source, target in candidates:
        broken = copy.deepcopy(fixed)
        broken[source].discard(target)
        lines = missing_edges(broken, required)
        if lines:
            break
    else:
        pytest.fail("no edge of the fixed-up dev graph is the only path to a requirement")
    assert f"{source} -> {target}  ({required[source][target]})" in lines, report(lines)
    # and nothing else: each reported pair lost its path through the removed edge (the protected
    # resource is or depends on its source; the requirement is or lies behind its target)
    for line in lines:
        address, dep = line.split("  (")[0].split(" -> ")
        assert address == source or source in closure(broken, address), line
        assert dep == target or dep in closure(fixed, target), line


# ----------------------------------------------------------------------------- the checker itself, on toy JSON

def _toy() -> dict:
    return {
        "provider": {
            "aws": [{"region": "us-west-2"}],
            "helm": [{"kubernetes": {"host": "${aws_eks_cluster.c.endpoint}",
                                     "cluster_ca_certificate": "${base64decode(aws_eks_cluster.c.certificate_authority[0].data)}",
                                     "token": "${data.aws_eks_cluster_auth.auth.token}"}},
                     {"alias": "other", "kubernetes": {"host": "${aws_vpc.v.id}"}}],
            "kubernetes": [{"host": "${aws_eks_cluster.c.endpoint}"}],
        },
        "data": {
            "aws_eks_cluster_auth": {"auth": {"name": "${aws_eks_cluster.c.name}"}},
            "aws_iam_policy_document": {"trust": {"statement": [{"actions": ["sts:AssumeRoleWithWebIdentity"]}]}},
        },
        "resource": {
            "aws_vpc": {"v": {"cidr_block": "10.0.0.0/16"}},
            "aws_internet_gateway": {"igw": {"vpc_id": "${aws_vpc.v.id}"}},
            "aws_subnet": {"pub": {"vpc_id": "${aws_vpc.v.id}"}, "priv": {"vpc_id": "${aws_vpc.v.id}"}},
            "aws_nat_gateway": {"nat": {"subnet_id": "${aws_subnet.pub.id}", "depends_on": ["aws_internet_gateway.igw"]}},
            "aws_route_table": {"pub-rt": {"vpc_id": "${aws_vpc.v.id}"}, "priv-rt": {"vpc_id": "${aws_vpc.v.id}"}},
            "aws_route": {"pub-default": {"route_table_id": "${aws_route_table.pub-rt.id}", "gateway_id": "${aws_internet_gateway.igw.id}"},
                          "priv-default": {"route_table_id": "${aws_route_table.priv-rt.id}", "nat_gateway_id": "${aws_nat_gateway.nat.id}"}},
            "aws_route_table_association": {
                "pub": {"subnet_id": "${aws_subnet.pub.id}", "route_table_id": "${aws_route_table.pub-rt.id}"},
                "priv": {"subnet_id": "${aws_subnet.priv.id}", "route_table_id": "${aws_route_table.priv-rt.id}"}},
            "aws_iam_role": {"node": {"name": "node"},
                             "irsa": {"name": "irsa", "assume_role_policy": "${data.aws_iam_policy_document.trust.json}"}},
            "aws_iam_role_policy_attachment": {"node-a": {"role": "${aws_iam_role.node.name}", "policy_arn": "arn:x"},
                                               "irsa-a": {"role": "${aws_iam_role.irsa.name}", "policy_arn": "arn:y"}},
            "aws_eks_cluster": {"c": {"vpc_config": [{"subnet_ids": ["${aws_subnet.priv.id}"]}],
                                      "depends_on": ["aws_route_table_association.pub", "aws_route_table_association.priv",
                                                     "aws_route.pub-default", "aws_route.priv-default"]}},
            "aws_eks_node_group": {"ng": {"cluster_name": "${aws_eks_cluster.c.name}", "node_role_arn": "${aws_iam_role.node.arn}",
                                          "depends_on": ["aws_iam_role_policy_attachment.node-a"]}},
            "kubernetes_service_account_v1": {"sa": {"metadata": {"annotations": {
                "eks.amazonaws.com/role-arn": "${aws_iam_role.irsa.arn}"}}}},
            "helm_release": {
                "karpenter": {"chart": "karpenter",
                              "set": [{"name": "x", "value": "prefix-${lower(aws_eks_node_group.ng.id)}-suffix"}],
                              "values": ["literal: $${aws_vpc.v.id} and ${self.x} and ${var.y}"],
                              "depends_on": ["kubernetes_service_account_v1.sa", "aws_iam_role_policy_attachment.irsa-a"]},
                "other": {"provider": "helm.other", "chart": "x"},
            },
        },
    }


def test_graph_builder_reads_every_kind_of_reference():
    graph = dependency_graph(_toy())
    cluster_provider = {"aws_eks_cluster.c", "data.aws_eks_cluster_auth.auth"}
    # nested string inside a function and a list of blocks, depends_on, the helm provider's configuration;
    # not the escaped $${...}, self.* or var.*
    assert graph["helm_release.karpenter"] == {"aws_eks_node_group.ng", "kubernetes_service_account_v1.sa",
                                              "aws_iam_role_policy_attachment.irsa-a"} | cluster_provider
    assert graph["helm_release.other"] == {"aws_vpc.v"}  # the aliased provider's configuration
    assert graph["kubernetes_service_account_v1.sa"] == {"aws_iam_role.irsa", "aws_eks_cluster.c"}
    assert graph["aws_iam_role.irsa"] == {"data.aws_iam_policy_document.trust"}  # a data source
    assert graph["data.aws_eks_cluster_auth.auth"] == {"aws_eks_cluster.c"}
    assert graph["aws_eks_cluster.c"] == {"aws_subnet.priv", "aws_route_table_association.pub",
                                          "aws_route_table_association.priv", "aws_route.pub-default",
                                          "aws_route.priv-default"}
    assert graph["aws_nat_gateway.nat"] == {"aws_subnet.pub", "aws_internet_gateway.igw"}
    assert references({"depends_on": ["aws_vpc.v"], "x": "${aws_vpc.v.id-1}"}, {"aws_vpc.v"}) == {"aws_vpc.v"}
    assert "aws_vpc.v" in closure(graph, "helm_release.karpenter")


def test_toy_stack_in_order_passes_and_a_dropped_edge_is_named():
    doc = _toy()
    graph = dependency_graph(doc)
    required = requirements(doc, graph)
    assert set(required) == {"helm_release.karpenter", "helm_release.other", "kubernetes_service_account_v1.sa"}
    assert required["helm_release.karpenter"]["aws_iam_role_policy_attachment.irsa-a"].startswith("IRSA ")
    assert set(required["kubernetes_service_account_v1.sa"]) == {
        "aws_internet_gateway.igw", "aws_nat_gateway.nat", "aws_route.pub-default", "aws_route.priv-default",
        "aws_route_table_association.pub", "aws_route_table_association.priv", "aws_eks_node_group.ng",
        "aws_iam_role_policy_attachment.node-a"}
    # helm_release.other uses the aliased provider (no cluster): it misses everything
    lines = [line for line in missing_edges(graph, required) if not line.startswith("helm_release.other ")]
    # the release reaches everything; the service account reaches the network (through the provider's
    # cluster) but not the node group
    assert lines == [
        "kubernetes_service_account_v1.sa -> aws_eks_node_group.ng  (controller node group)",
        "kubernetes_service_account_v1.sa -> aws_iam_role_policy_attachment.node-a  (policy attachment of aws_iam_role.node)",
    ]
    doc["resource"]["kubernetes_service_account_v1"]["sa"]["depends_on"] = ["aws_eks_node_group.ng"]
    del doc["resource"]["helm_release"]["other"]
    assert missing_edges(dependency_graph(doc), requirements(doc, dependency_graph(doc))) == []

    # drop one edge: the cluster no longer waits for the private subnet's route table association
    doc["resource"]["aws_eks_cluster"]["c"]["depends_on"].remove("aws_route_table_association.priv")
    graph = dependency_graph(doc)
    lines = missing_edges(graph, requirements(doc, graph))
    assert lines == [f"{a} -> aws_route_table_association.priv  (route table association)"
                     for a in ("helm_release.karpenter", "kubernetes_service_account_v1.sa")], report(lines)
    assert "\nhelm_release.karpenter -> aws_route_table_association.priv  (" in report(lines)
    # and the private default route: the NAT gateway was only reachable through it
    doc["resource"]["aws_eks_cluster"]["c"]["depends_on"].remove("aws_route.priv-default")
    graph = dependency_graph(doc)
    assert {line.split(" -> ")[1].split()[0] for line in missing_edges(graph, requirements(doc, graph))} == {
        "aws_route_table_association.priv", "aws_route.priv-default", "aws_nat_gateway.nat"}


def test_destroy_time_waiters_are_protected():
    doc = _toy()
    doc["resource"]["terraform_data"] = {"wait": {"provisioner": [{"local-exec": {"command": "true", "when": "destroy"}}],
                                                  "depends_on": ["helm_release.karpenter"]},
                                         "create-only": {"provisioner": [{"local-exec": {"command": "true"}}]}}
    assert destroy_waiters(doc) == ["terraform_data.wait"]
    assert "terraform_data.wait" in requirements(doc, dependency_graph(doc))


def test_pod_identity_agent_and_associations_must_outlive_the_releases():
    """With Pod Identity the release's role is found from its service account's association (not from its
    edges): a release that does not wait for the agent, its association or its role's policies is named."""
    doc = _toy()
    res = doc["resource"]
    res["aws_eks_addon"] = {"agent": {"addon_name": "eks-pod-identity-agent", "cluster_name": "${aws_eks_cluster.c.name}"}}
    res["aws_eks_pod_identity_association"] = {"k": {"cluster_name": "${aws_eks_cluster.c.name}", "namespace": "karpenter",
                                                     "service_account": "karpenter", "role_arn": "${aws_iam_role.irsa.arn}"}}
    res["kubernetes_service_account_v1"]["sa"]["metadata"] = {"name": "karpenter", "namespace": "karpenter"}
    karpenter = res["helm_release"]["karpenter"]
    karpenter.update(namespace="karpenter", values=["serviceAccount:\n  name: karpenter\n"])
    karpenter["depends_on"] = ["kubernetes_service_account_v1.sa"]
    del res["helm_release"]["other"]
    graph = dependency_graph(doc)
    required = requirements(doc, graph)
    assert required["helm_release.karpenter"]["aws_iam_role_policy_attachment.irsa-a"] == (
        "Pod Identity policy attachment of aws_iam_role.irsa")
    missing = {line.split("  (")[0] for line in missing_edges(graph, required) if line.startswith("helm_release.")}
    assert missing == {"helm_release.karpenter -> aws_eks_addon.agent",
                       "helm_release.karpenter -> aws_eks_pod_identity_association.k",
                       "helm_release.karpenter -> aws_iam_role_policy_attachment.irsa-a"}, missing
    karpenter["depends_on"] += ["aws_eks_addon.agent", "aws_eks_pod_identity_association.k",
                                "aws_iam_role_policy_attachment.irsa-a"]
    graph = dependency_graph(doc)
    assert not [line for line in missing_edges(graph, requirements(doc, graph)) if line.startswith("helm_release.")]
