"""End-to-end rungs: the synthesized ``emulator`` stack applied by real Terraform to the AWS emulator
(moto + tests/emulator/moto_plus.py) on 127.0.0.1. No cloud, no registry.

The helm/kubernetes provider binaries are not installable here (the /opt/tf-plugins mirror holds
only hashicorp/aws), so every rung applies a copy of the synthesized JSON without them
(``tests.tf.strip_unavailable``; the stripped addresses are printed). Nothing else in the generated
JSON is changed, except in rung c, which swaps the local backend block for the S3 one (see there), and
rung d, which also applies variants synthesized with another ``cluster.version`` (and nothing else).
A destroy keeps what the stack keeps on purpose (``skip_destroy`` log groups: ``retained``).

a. ``test_apply_plan_destroy``, as an emulator IAM user holding only the stack's deployer policy
   (model/permissions.py; the emulator enforces IAM: any refused call fails the rung):
   init, apply, ``plan -detailed-exitcode`` = 0, every output has a
   value, the kubeconfig output is a valid kubeconfig (kubectl); then what the cluster's workloads
   leave in AWS is created through the emulator's APIs (tests/emulator/leftovers.py: load balancers,
   their security groups and rules, target groups, a PVC volume, a leaked CNI interface, and another
   cluster's look-alikes), destroy (the teardown layer's sweep runs; the emulator refuses what AWS
   refuses on delete), and the emulator holds nothing the stack or the workloads made but the kept
   PVC volume, listed in the destroy output, and the look-alikes (checked through the emulator's
   APIs, not Terraform's state).
b. ``test_interrupted_apply_converges``: an apply killed hard (SIGKILL, as when the machine dies),
   then one interrupted with Ctrl-C (SIGINT), each recovered the way an operator would (resources
   created but not recorded are found through the emulator's APIs and imported); the final apply
   leaves exactly what a clean apply leaves (no duplicate VPC/subnet/NAT/key...) and re-plans clean.
c. ``test_s3_backend_and_lock``: state in the emulator's S3 with Terraform's native lock file, as the
   deployer too (S3 calls are authorized per bucket and key, which the emulator checks: the policy's
   state object and lock file statements are proven here).
d. ``test_kubernetes_upgrade``: the stack one Kubernetes minor below tests/environments/emulator.yaml's
   version, a refused two-minor jump, then one-minor steps up to one above it; every step's plan
   updates the cluster, node group and add-ons in place (nothing replaced), converges, re-plans clean.
e. ``test_log_group_after_destroy``: apply, an older environment's group moved onto the kept-logs key
   in place, destroy: the kept group stays readable (its key is the account's); the group re-created
   the way EKS does after a destroy, apply again: imported, converged (retention, KMS), re-plan clean.

f. ``test_existing_network``: a network team's VPC (private subnets in three zones routed to a transit
   gateway, their tags only); each plan-time refusal of ``network.existing`` in its bad state, then the
   environment applied into it, re-planned clean, a switch to a network of its own refused, destroyed:
   the VPC, subnets, route tables, routes and tags exactly as before.

Each rung starts from an empty emulator (moto reset) and prints its phases and timings to stderr.
"""

from __future__ import annotations

import copy
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.emulator.inventory import counts, expected_counts, inventory, nonempty, retained
from tests.emulator.leftovers import assert_swept, create_leftovers
from model import permissions
from tests.emulator.server import ACCOUNT_ID, REGION, Emulator, bootstrapped, kept_logs_key, raised_quota
from tests.emulator.tfrun import TerraformRun, run
from tests.tf import Terraform, available_providers, strip_unavailable
from tests.progress import progress

pytestmark = pytest.mark.emulator

SEED_OUTPUTS = (
    "cluster_name", "cluster_endpoint", "cluster_arn", "kubeconfig", "oidc_provider_arn", "oidc_provider_url",
    "vpc_id", "private_subnet_ids", "public_subnet_ids", "karpenter_node_role_arn", "karpenter_controller_role_arn",
    "karpenter_interruption_queue_name",
)
KUBECTL = shutil.which("kubectl") or ("/usr/bin/kubectl" if Path("/usr/bin/kubectl").exists() else None)
APPLY_TIMEOUT = 420
DESTROY_TIMEOUT = 420
PLAN_TIMEOUT = 180
TF_FLAGS = ("-no-color", "-input=false")

TIMINGS: dict[str, float] = {}


def log(message: str) -> None:
    progress(f"[e2e] {message}")


@pytest.fixture(scope="module", autouse=True)
def report_timings():
    yield
    if TIMINGS:
        log("rung timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in TIMINGS.items()))


@pytest.fixture(scope="module")
def stack(emulator_synth) -> dict:
    """The emulator stack without the providers Terraform cannot install here (printed)."""
    doc = emulator_synth["emulator"]
    stripped, removed = strip_unavailable(doc, available_providers(doc))
    managed = sum(len(v) for v in stripped.get("resource", {}).values())
    log(f"emulator stack: {managed} managed resources applied; stripped {len(removed)} addresses "
        f"(no provider binary here): {', '.join(removed) or 'none'}")
    missing = [o for o in SEED_OUTPUTS if o not in stripped.get("output", {})]
    log(f"seed outputs not in the stack (yet): {', '.join(missing) or 'none'}")
    return stripped


@pytest.fixture
def fresh(emulator: Emulator) -> Emulator:  # noqa: F811
    """The emulator, reset: the rung starts from an empty account (and proves it) that has been
    bootstrapped (the state-bootstrap stack's Spot service-linked role, which the preflight wants), with
    the Standard On-Demand vCPU quota raised (the controller nodes and their update surge need it)."""
    emulator.reset()
    leftovers = nonempty(inventory(emulator))
    assert not leftovers, f"emulator not empty after reset: {leftovers}"
    bootstrapped(emulator)
    raised_quota(emulator)  # a new account's 5 Standard vCPUs cannot roll the controller nodes (preflight)
    return emulator


def terraform(emu: Emulator, workdir: Path, doc: dict) -> Terraform:
    tf = Terraform(workdir, env=emu.terraform_env())
    tf.write(doc)
    return tf


def managed_count(doc: dict) -> int:
    return sum(len(v) for v in doc.get("resource", {}).values())


def plan_is_clean(tf: Terraform, label: str) -> None:
    job = run(tf, "plan", "-detailed-exitcode", *TF_FLAGS, label=label, timeout=PLAN_TIMEOUT, check=False)
    changes = [line for line in job.output.splitlines() if re.match(r"\s+# .* (will|must) be", line)]
    assert job.proc.returncode == 0, (
        f"re-plan after apply is not clean (exit {job.proc.returncode}; 2 = changes):\n" + "\n".join(changes)
        + "\n" + job.output[-6000:])


def assert_like_clean_apply(emu: Emulator, doc: dict, when: str) -> dict[str, list[str]]:
    found = inventory(emu)
    expected = expected_counts(doc)
    got = counts(found)
    diff = {k: (got.get(k), v) for k, v in expected.items() if got.get(k) != v}
    assert not diff, f"{when}: emulator holds other counts than a clean apply leaves ({{kind: (found, expected)}}): " \
                     f"{diff}\n{ {k: found[k] for k in diff} }"
    return found


def assert_destroyed(emu: Emulator, when: str, doc: dict) -> None:
    """Nothing the stack made is left, except what it keeps on purpose (``retained``: skip_destroy
    log groups), which must still be there."""
    found = inventory(emu)
    kept = retained(doc)
    missing = {kind: [i for i in ids if i not in found.get(kind, [])] for kind, ids in kept.items()}
    assert not nonempty(missing), f"{when}: a destroy deleted what the stack keeps (skip_destroy): {missing}"
    left = nonempty({kind: [i for i in ids if i not in kept.get(kind, [])] for kind, ids in found.items()})
    assert not left, f"{when}: the emulator still holds resources the stack made: {json.dumps(left, indent=1)}"
    if kept:
        log(f"{when}: kept on purpose (skip_destroy): {kept}")


def state_strings(tf: Terraform) -> set[str]:
    """Every string value in the current state (ids, ARNs, names, nested ids such as the cluster SG)."""
    proc = tf.run("show", "-json", "-no-color", label="show state", timeout=120)
    found: set[str] = set()

    def walk(value) -> None:
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(json.loads(proc.stdout or "{}").get("values", {}))
    return found


def orphans(emu: Emulator, tf: Terraform) -> dict[str, list[str]]:
    """Resources in the emulator that the state does not know: what a crashed apply leaves."""
    known = state_strings(tf)
    return nonempty({kind: [i for i in ids if i not in known] for kind, ids in inventory(emu).items()})


# ----------------------------------------------------------------------------- a


def test_apply_plan_destroy(fresh, stack, emulator_synth, tmp_path):
    """Run as an emulator IAM user holding only the stack's deployer policy (model/permissions.py):
    every call of the apply, the re-plans, the change-impact plans and the destroy (its destroy-time
    scripts included) is authorized by it, or the rung fails with the AccessDenied naming the action."""
    started = time.monotonic()
    synthesizing = start_variants(tmp_path / "variants")  # the change-impact variants, while we apply
    deployer = permissions.deployer_policy(emulator_synth["emulator"], account=ACCOUNT_ID).documents
    offset = fresh.log_size()
    with fresh.enforce_iam(deployer) as identity:
        log(f"a: Terraform runs as {identity}, holding only the deployer policy ({len(deployer)} managed policies, "
            f"{sum(len(s['Action']) for d in deployer for s in d['Statement'])} actions)")
        apply_plan_destroy(fresh, stack, emulator_synth, tmp_path, synthesizing)
    denied = fresh.denials_since(offset)
    refused = [line for line in denied if f" in {REGION}" in line and f" iam:GetUser in {REGION}" not in line]
    assert not refused, "calls the deployer policy refused (the rung passed around them):\n" + "\n".join(refused)
    log(f"a: {len(denied)} calls refused, as they should be: {sorted({' '.join(d.split()[-3:]) for d in denied})}")
    TIMINGS["a (apply/plan/destroy)"] = time.monotonic() - started


# Refused on purpose: iam:GetUser (the aws provider asks it for the account id before
# sts:GetCallerIdentity and takes the first answer: not granted) and anything in another region
# (the change-impact plan of `region`, refused at plan anyway: the policy is this region's).


def apply_plan_destroy(fresh: Emulator, stack: dict, emulator_synth, tmp_path: Path, synthesizing) -> None:
    tf = terraform(fresh, tmp_path / "a", stack)
    tf.run("init", *TF_FLAGS, label="a: init", timeout=180)
    run(tf, "apply", "-auto-approve", *TF_FLAGS, label="a: apply", timeout=APPLY_TIMEOUT)
    found = assert_like_clean_apply(fresh, stack, "after apply")
    log(f"a: emulator after apply: {counts(nonempty(found))}")
    plan_is_clean(tf, "a: re-plan")
    values = json.loads(tf.run("output", "-json", label="a: outputs", timeout=120).stdout)

    # outputs
    declared = set(stack.get("output", {}))
    empty = sorted(o for o in declared if values.get(o, {}).get("value") in (None, "", [], {}))
    assert declared <= set(values), f"outputs missing from state: {sorted(declared - set(values))}"
    assert not empty, f"outputs without a value: {empty}"
    present = [o for o in SEED_OUTPUTS if o in declared]
    log(f"a: outputs with values: {len(declared)} ({len(present)}/{len(SEED_OUTPUTS)} seed outputs); "
        f"seed outputs missing from the stack: {', '.join(o for o in SEED_OUTPUTS if o not in declared) or 'none'}")
    if "vpc_id" in declared:
        assert values["vpc_id"]["value"] in found["vpcs"]
    for name in ("private_subnet_ids", "public_subnet_ids"):
        if name in declared:
            assert set(values[name]["value"]) <= set(found["subnets"]), name
    if "karpenter_interruption_queue_name" in declared:
        assert any(url.endswith("/" + values["karpenter_interruption_queue_name"]["value"]) for url in found["sqs_queues"])

    # kubeconfig
    if "kubeconfig" not in declared:
        log("a: kubeconfig check skipped: the stack has no kubeconfig output yet")
    elif KUBECTL is None:
        log("a: kubeconfig check SKIPPED: kubectl is not installed (looked on PATH and /usr/bin/kubectl)")
    else:
        check_kubeconfig(tf, tmp_path, values)

    change_impact(fresh, tf, emulator_synth["emulator"], stack, synthesizing.result())
    leftovers = create_leftovers(fresh, values["cluster_name"]["value"])  # what the workloads leave (teardown)
    destroyed = run(tf, "destroy", "-auto-approve", *TF_FLAGS, label="a: destroy", timeout=DESTROY_TIMEOUT)
    assert_destroyed(fresh, "after destroy", stack)
    assert_swept(fresh, leftovers, destroyed.output)


def check_kubeconfig(tf: Terraform, tmp_path: Path, values: dict) -> None:
    raw = tf.run("output", "-raw", "kubeconfig", label="a: kubeconfig", timeout=120).stdout
    path = tmp_path / "kubeconfig"
    path.write_text(raw)
    proc = subprocess.run([KUBECTL, "config", "view", "--kubeconfig", str(path), "-o", "json"], capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode == 0, f"kubectl rejects the kubeconfig output: {proc.stderr}"
    config = json.loads(proc.stdout)
    servers = [c["cluster"]["server"] for c in config.get("clusters", [])]
    if "cluster_endpoint" in values:
        assert servers == [values["cluster_endpoint"]["value"]], servers
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])["context"]
    user = next(u for u in config["users"] if u["name"] == context["user"])["user"]
    exec_ = user.get("exec") or {}
    assert exec_.get("command") == "aws" and exec_.get("args", [])[:2] == ["eks", "get-token"], user
    if "cluster_name" in values:
        args = exec_["args"]
        assert args[args.index("--cluster-name") + 1] == values["cluster_name"]["value"], args
    log(f"a: kubeconfig OK: server {servers[0]}, user exec `aws {' '.join(exec_['args'])}`")


# ----------------------------------------------------------------------------- a: change impact


def start_variants(outdir: Path):
    """Synthesize every change-impact variant in the background (a subprocess; see synth_variants)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.emulator import change_impact
    from tests.emulator.synth_variants import synthesize

    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(synthesize, outdir, change_impact.variants())
    pool.shutdown(wait=False)
    return future


def plan_json(tf: Terraform, label: str, *, refresh: bool = False) -> tuple[str, dict | None]:
    """A saved plan of the workdir's JSON and its ``show -json``: (output, plan), plan None when it fails."""
    flags = () if refresh else ("-refresh=false",)
    proc = tf.run("plan", "-out=impact.tfplan", "-lock=false", *flags, *TF_FLAGS, label=label, timeout=PLAN_TIMEOUT,
                  check=False)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        return output, None
    shown = tf.run("show", "-json", "impact.tfplan", label=f"{label} (show -json)", timeout=120)
    return output, json.loads(shown.stdout)


PLAN_WORKERS = 2  # plans in parallel, each in its own copy of the workdir (same state, -lock=false)


def plan_workers(emu: Emulator, tf: Terraform, count: int) -> "queue.Queue[Terraform]":
    """``count`` workdirs sharing ``tf``'s initialised providers, each with a copy of its state."""
    workers: queue.Queue[Terraform] = queue.Queue()
    for i in range(count):
        workdir = tf.workdir.parent / f"{tf.workdir.name}-plan-{i}"
        workdir.mkdir(exist_ok=True)
        for shared in (".terraform", ".terraform.lock.hcl"):
            if not (workdir / shared).exists():
                (workdir / shared).symlink_to(tf.workdir / shared)
        for state in tf.workdir.glob("*.tfstate"):
            shutil.copy(state, workdir / state.name)
        workers.put(Terraform(workdir, env=emu.terraform_env()))
    return workers


def _comparable(doc: dict) -> str:
    return json.dumps({k: v for k, v in doc.items() if k != "//"}, sort_keys=True)


def change_impact(emu: Emulator, tf: Terraform, base_full: dict, base: dict, docs: dict[str, dict]) -> None:
    """Issue 15: every day-two key changed on the applied stack and planned (tests/emulator/change_impact.py):
    each plan is classified and must keep the invariants; refused keys must be refused at plan with
    their reason; the results are the README's "What a change does" table. A variant whose AWS part is
    identical to the applied stack's (Helm values only) is not planned: its plan is the clean re-plan
    just made. Then AWS moves its default add-on versions and a plan without a change, in both modes,
    must still be clean."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.emulator import change_impact as ci

    started = time.monotonic()
    workers = plan_workers(emu, tf, PLAN_WORKERS)
    base_key = _comparable(base)
    clean = ci.Impact()

    def planned(variant: str) -> tuple[str, ci.Impact | None]:
        """(output, impact) of one variant's plan; impact None when the plan fails."""
        full = docs[variant]
        doc, _ = strip_unavailable(full, available_providers(full))
        if _comparable(doc) == base_key:
            return "", clean
        worker = workers.get()
        try:
            worker.write(doc)
            output, shown = plan_json(worker, f"a: impact {variant}")
        finally:
            workers.put(worker)
        return output, (ci.classify(shown) if shown is not None else None)

    switch_backs = [c for c in ci.CASES if c.applied is not None]
    wanted = [c.name for c in ci.CASES if c.applied is None]
    wanted += [f"{c.name}.token" for c in ci.CASES if f"{c.name}.token" in docs and c.applied is None]
    with ThreadPoolExecutor(max_workers=PLAN_WORKERS) as pool:
        results = dict(zip(wanted, pool.map(planned, wanted)))
    for case in switch_backs:
        results.update(switched_back(emu, tf, docs, case, base))

    tdoc, _ = strip_unavailable(docs["token"], available_providers(docs["token"]))
    exec_only = {f"terraform_data.{k}" for k in set(base["resource"].get("terraform_data", {}))
                 - set(tdoc["resource"].get("terraform_data", {}))}
    broken: list[str] = []
    rows = []
    for case in ci.CASES:
        output, impact = results[case.name]
        where = f"{case.key} ({case.example})"
        if case.refused:
            if impact is not None or case.refused not in output:
                broken.append(f"{where}: must be refused at plan with {case.refused!r}; the plan "
                              f"{'succeeded' if impact is not None else 'failed otherwise: ' + output[-1500:]}")
            rows.append((case, ci.terraform_words(case, None, ci.refusal_words(case, output)), "nothing (refused)"))
            continue
        if impact is None:
            broken.append(f"{where}: the plan failed:\n{output[-3000:]}")
            continue
        broken += [f"{where}, exec: {v}" for v in ci.violations(
            case, impact, mode="exec", exec_only=exec_only if case.drops_exec_only else frozenset())]
        if f"{case.name}.token" in results:
            toutput, timpact = results[f"{case.name}.token"]
            if timpact is None:
                broken.append(f"{where}: the token-mode plan failed:\n{toutput[-3000:]}")
            else:
                broken += [f"{where}, token: {v}" for v in ci.violations(case, timpact, mode="token",
                                                                         exec_only=exec_only)]
        before = docs[f"{case.name}.applied"] if case.applied is not None else base_full
        rows.append((case, ci.terraform_words(case, impact, None), "; ".join(ci.in_cluster(before, docs[case.name]))))
        log(f"a: impact {where}: {rows[-1][1]} | {rows[-1][2] or 'nothing in the cluster'}")
    log(f"a: change impact: {len(wanted)} variants, {sum(1 for o, i in results.values() if i is not clean)} planned "
        f"({PLAN_WORKERS} at a time), in {time.monotonic() - started:.0f}s")
    broken += refused_under_nodes(emu, workers, docs, base)

    # AWS moves its default add-on versions: a plan with no change stays clean, in both modes.
    emu.move_addon_defaults()
    plan_is_clean(tf, "a: re-plan after AWS moved its default add-on versions")
    worker = workers.get()
    worker.write(tdoc)
    output, shown = plan_json(worker, "a: token-mode plan of the unchanged stack", refresh=True)
    assert shown is not None, output[-3000:]
    timpact = ci.classify(shown)
    assert not timpact.deferred and timpact.addresses() <= exec_only and set(timpact.deleted) == timpact.addresses(), (
        f"token mode, no change: the plan does more than drop the exec-only waits {sorted(exec_only)}: {timpact}")

    table = ci.table(rows)
    TIMINGS["a: change impact"] = time.monotonic() - started
    if os.environ.get("UPDATE_README") == "1":
        ci.write_readme_block(table)
    assert not broken, "day-two invariants broken:\n- " + "\n- ".join(broken)
    assert ci.readme_block(ci.README.read_text()) == table, (
        "README 'What a change does' is stale against the change-impact rung; rerun with UPDATE_README=1 "
        "(scripts/test.sh -m emulator -k apply_plan_destroy) and review the diff:\n" + table)


def switched_back(emu: Emulator, tf: Terraform, docs: dict[str, dict], case,
                  base: dict) -> dict[str, tuple[str, object]]:
    """A switch back (``case.applied``): apply the switched environment on the applied state (it must apply,
    hold what a clean apply of it holds and re-plan clean), plan ``case``'s stack against it in exec (and
    token) mode, then apply the applied stack back (again exactly a clean apply's content, nothing of the
    switch left, and clean), so the rest of the rung sees the environment it applied."""
    from tests.emulator import change_impact as ci

    switched, _ = strip_unavailable(docs[f"{case.name}.applied"], available_providers(docs[f"{case.name}.applied"]))
    # as an operator does before a change of resource types: the deployer's policy for both sides of it
    # (state-bootstrap deployed with it; model/permissions.merged), then back to the applied stack's
    emu.set_policies("deployer", permissions.deployer_policy(permissions.merged(base, switched),
                                                             account=ACCOUNT_ID).documents)
    tf.write(switched)
    run(tf, "apply", "-auto-approve", *TF_FLAGS, label=f"a: impact {case.name}: apply the switch", timeout=APPLY_TIMEOUT)
    assert_like_clean_apply(emu, switched, f"after the switch of {case.name}")
    plan_is_clean(tf, f"a: impact {case.name}: re-plan after the switch")
    out = {}
    for variant in (case.name, f"{case.name}.token"):
        if variant not in docs:
            continue
        doc, _ = strip_unavailable(docs[variant], available_providers(docs[variant]))
        tf.write(doc)
        output, shown = plan_json(tf, f"a: impact {variant}")
        out[variant] = (output, ci.classify(shown) if shown is not None else None)
    tf.write(base)
    run(tf, "apply", "-auto-approve", *TF_FLAGS, label=f"a: impact {case.name}: apply the switch back",
        timeout=APPLY_TIMEOUT)
    assert_like_clean_apply(emu, base, f"after the switch back of {case.name}")
    emu.set_policies("deployer", permissions.deployer_policy(base, account=ACCOUNT_ID).documents)
    plan_is_clean(tf, f"a: impact {case.name}: re-plan after the switch back")
    return out


def refused_under_nodes(emu: Emulator, workers, docs: dict[str, dict], base: dict) -> list[str]:
    """The zone removal planned in its bad state: a Karpenter node of this cluster runs in the zone
    (an instance tagged as Karpenter tags its nodes, in that zone's private subnet): the plan must be
    refused naming it; its good state is the removal case itself, planned before the node ran."""
    from tests.emulator import change_impact as ci

    case = next(c for c in ci.CASES if c.name.startswith("network-az-count-3-2"))
    ec2 = emu.client("ec2")
    subnet = next(s for s in ec2.describe_subnets(Filters=[
        {"Name": "availability-zone", "Values": ["us-east-1c"]},
        {"Name": "tag:karpenter.sh/discovery", "Values": [base_name(base)]}])["Subnets"])
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    node = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="m6i.large",
                             SubnetId=subnet["SubnetId"], TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                 {"Key": "karpenter.sh/discovery", "Value": base_name(base)},
                                 {"Key": "karpenter.sh/nodepool", "Value": "stateless"}]}])["Instances"][0]["InstanceId"]
    worker = workers.get()
    try:
        doc, _ = strip_unavailable(docs[case.name], available_providers(docs[case.name]))
        worker.write(doc)
        output, shown = plan_json(worker, "a: zone removal under a Karpenter node")
    finally:
        workers.put(worker)
        ec2.terminate_instances(InstanceIds=[node])
    text = re.sub(r"\s+", " ", " ".join(line.strip(" │╷╵") for line in output.splitlines()))
    if shown is None and "Karpenter's nodes of this cluster still run in a zone this change removes" in text and node in text:
        log(f"a: zone removal refused while {node} runs in us-east-1c")
        return []
    return [f"{case.key} ({case.example}) with a Karpenter node in us-east-1c: must be refused at plan naming "
            f"{node}; the plan {'succeeded' if shown is not None else 'failed otherwise: ' + output[-1500:]}"]


def base_name(doc: dict) -> str:
    return one_body(doc, "aws_eks_cluster")["name"]


def one_body(doc: dict, rtype: str) -> dict:
    (found,) = doc["resource"][rtype].values()
    return found


# ----------------------------------------------------------------------------- b

# What a resource type is called in the inventory (the import id is the inventory id).
IMPORTABLE = {
    "aws_vpc": "vpcs", "aws_subnet": "subnets", "aws_internet_gateway": "internet_gateways",
    "aws_nat_gateway": "nat_gateways", "aws_eip": "eips", "aws_route_table": "route_tables",
    "aws_flow_log": "flow_logs", "aws_iam_role": "iam_roles", "aws_iam_policy": "iam_policies",
    "aws_iam_openid_connect_provider": "oidc_providers", "aws_eks_cluster": "eks_clusters",
    "aws_eks_node_group": "eks_nodegroups", "aws_eks_access_entry": "eks_access_entries", "aws_eks_addon": "eks_addons",
    "aws_eks_pod_identity_association": "eks_pod_identity_associations",
    "aws_sqs_queue": "sqs_queues", "aws_cloudwatch_event_rule": "eventbridge_rules", "aws_kms_key": "kms_keys",
    "aws_kms_alias": "kms_aliases", "aws_cloudwatch_log_group": "log_groups",
}
# Created by AWS alongside another resource (main route table, default SG, EKS's cluster SG): they
# are adopted when their owner is imported, never imported themselves.
SECONDARY = ("route_tables", "security_groups")


def in_flight(output: str) -> list[str]:
    """Addresses Terraform had started creating but not finished."""
    started = re.findall(r"^(\S+): Creating\.\.\.", output, re.M)
    finished = set(re.findall(r"^(\S+): Creation complete after", output, re.M))
    return [a for a in dict.fromkeys(started) if a not in finished]


def body(doc: dict, address: str) -> dict:
    rtype, name = address.split(".", 1)
    return doc["resource"][rtype][name]


def describe_tags(emu: Emulator, resource_id: str) -> dict[str, str]:
    tags = emu.client("ec2").describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])["Tags"]
    return {t["Key"]: t["Value"] for t in tags}


def owner_of(emu: Emulator, doc: dict, orphan: str, candidates: list[str]) -> str | None:
    """The one in-flight address an untracked resource belongs to: the only candidate, else the one
    whose configured ``Name`` tag (EC2) or ``name`` (IAM, SQS, logs, rules...) the resource carries."""
    if len(candidates) == 1:
        return candidates[0]
    if re.match(r"^[a-z]+-[0-9a-f]+$", orphan):  # an EC2 id: match the Name tag
        name = describe_tags(emu, orphan).get("Name")
        matches = [a for a in candidates if name and body(doc, a).get("tags", {}).get("Name") == name]
    else:  # a name, ARN or cluster:name id: match the configured name (add-ons: addon_name...)
        def named(address: str) -> str | None:
            config = body(doc, address)
            return next((config[k] for k in ("name", "addon_name", "node_group_name", "principal_arn")
                         if isinstance(config.get(k), str) and "${" not in config[k]), None)
        matches = [a for a in candidates if named(a) and (orphan == named(a) or orphan.endswith("/" + named(a))
                                                           or orphan.endswith(":" + named(a)))]
    return matches[0] if len(matches) == 1 else None


def adopted_by_stack(doc: dict) -> set[str]:
    """Inventory ids the stack's own ``import`` blocks adopt when they exist (the control-plane log
    group, DESIGN fact 14): an orphan among them needs no operator import (a second import block
    for the same address would be an error)."""
    targets = [imp.get("to", "").split("[")[0] for imp in doc.get("import", [])]
    return {body(doc, t)["name"] for t in targets
            if t.startswith("aws_cloudwatch_log_group.") and "${" not in body(doc, t).get("name", "${")}


def recover(emu: Emulator, tf: Terraform, doc: dict, output: str, imports: dict[str, str], when: str) -> None:
    """What an operator does after an apply stopped without recording everything it created.

    A local lock dies with its process (flock), so no ``force-unlock`` is needed. Every resource the
    emulator holds that the state lacks is matched to the address Terraform was creating when it
    stopped and imported with Terraform 1.5+ ``import`` blocks, written to a separate file next to the
    generated JSON (removed again once the next apply has run). ``imports`` accumulates across
    interruptions: an import the interrupted apply did not get to stays listed."""
    lock_info = list(tf.workdir.glob(".*.lock.info"))
    if lock_info:
        log(f"b: {when}: stale lock info {lock_info[0].name} left behind (local locks are flock(): released "
            "with the process; no force-unlock needed)")
    lost = orphans(emu, tf)
    flying = in_flight(output)
    log(f"b: {when}: in flight {flying or 'nothing'}; untracked in the emulator: {lost or 'nothing'}")
    untracked = {i for ids in lost.values() for i in ids}
    for address in [a for a, i in imports.items() if i not in untracked]:
        del imports[address]  # imported (or adopted) meanwhile
    adopted = adopted_by_stack(doc)
    for kind, ids in lost.items():
        if kind in SECONDARY:
            continue
        for orphan in ids:
            if orphan in imports.values() or orphan in adopted:
                continue
            candidates = [a for a in flying if IMPORTABLE.get(a.split(".")[0]) == kind and a not in imports]
            owner = owner_of(emu, doc, orphan, candidates)
            assert owner, f"cannot match untracked {kind} {orphan} to one in-flight address ({candidates}): " \
                          "recover by hand"
            imports[owner] = orphan
    path = tf.workdir / "operator-imports.tf.json"
    if imports:
        path.write_text(json.dumps({"import": [{"to": a, "id": i} for a, i in imports.items()]}, indent=1))
        log(f"b: {when}: importing {imports}")
    else:
        path.unlink(missing_ok=True)


def waiting_moment(job: TerraformRun, *, importable: bool, age: float = 2.0):
    """``until`` predicate: something is in flight and everything in flight started >= ``age`` s ago
    (Terraform is waiting on resources, not in the middle of a create call); with ``importable``,
    one of them is a kind the recovery can import."""
    seen: dict[str, float] = {}

    def ready() -> bool:
        now = time.monotonic()
        flying = in_flight(job.output)
        for address in flying:
            seen.setdefault(address, now)
        return bool(flying) and all(now - seen[a] >= age for a in flying) and (
            not importable or any(a.split(".")[0] in IMPORTABLE for a in flying))

    return ready


def test_interrupted_apply_converges(fresh, stack, tmp_path):
    started = time.monotonic()
    tf = terraform(fresh, tmp_path / "b", stack)
    tf.run("init", *TF_FLAGS, label="b: init", timeout=180)
    total = managed_count(stack)
    imports: dict[str, str] = {}

    # 1. Hard crash (SIGKILL to Terraform and its provider) at a moment when everything in flight
    #    has been in flight for a while (the provider is polling resources that already exist in the
    #    emulator), so the crash loses them from the state: the case that duplicates resources when
    #    handled naively.
    job = TerraformRun(tf, "apply", "-auto-approve", *TF_FLAGS, label="b: apply #1 (to be killed)")
    assert job.wait(APPLY_TIMEOUT, check=False, until=waiting_moment(job, importable=True)) is None, \
        "apply #1 finished before anything was long in flight: nothing to interrupt"
    job.interrupt(signal.SIGKILL)
    job.kill()
    assert job.done() < total
    recover(fresh, tf, stack, job.output, imports, "after SIGKILL")

    # 2. Ctrl-C (SIGINT to the process group) during the next apply, again while Terraform waits on
    #    resources: it stops gracefully, records what it created (unfinished ones as tainted) and
    #    exits non-zero. A create call the interrupt cancels mid-request can still have happened in
    #    AWS (seen here for a subnet and an IAM policy): recovered the same way.
    job = TerraformRun(tf, "apply", "-auto-approve", *TF_FLAGS, label="b: apply #2 (to be interrupted)")
    if job.wait(APPLY_TIMEOUT, check=False, until=waiting_moment(job, importable=False)) is None:
        job.interrupt(signal.SIGINT)
        rc = job.wait(120, check=False)
        assert rc != 0, "an interrupted apply must not report success"
        assert "Interrupt received" in job.output, job.output[-3000:]
        recover(fresh, tf, stack, job.output, imports, "after SIGINT")
    else:
        log(f"b: apply #2 finished (exit {job.proc.returncode}) before a moment to interrupt; continuing")

    # 3. A plain apply converges to exactly what a clean apply leaves.
    run(tf, "apply", "-auto-approve", *TF_FLAGS, label="b: apply #3 (converge)", timeout=APPLY_TIMEOUT)
    (tf.workdir / "operator-imports.tf.json").unlink(missing_ok=True)
    assert_like_clean_apply(fresh, stack, "after the interrupted applies")
    assert not orphans(fresh, tf), "resources the state does not track remain"
    plan_is_clean(tf, "b: re-plan")

    run(tf, "destroy", "-auto-approve", *TF_FLAGS, label="b: destroy", timeout=DESTROY_TIMEOUT)
    assert_destroyed(fresh, "after destroy", stack)
    TIMINGS["b (interrupted applies)"] = time.monotonic() - started


# ----------------------------------------------------------------------------- c

STATE_BUCKET = "platform-emu-tfstate"
STATE_KEY = "emulator/terraform.tfstate"


def s3_backend_flags(emu: Emulator) -> list[str]:
    """Partial S3 backend configuration for the emulator (Terraform 1.11 S3 backend argument names)."""
    settings = {
        "bucket": STATE_BUCKET, "key": STATE_KEY, "region": REGION,
        "endpoints": f'{{s3="{emu.url}"}}', "use_path_style": "true",
        "skip_credentials_validation": "true", "skip_requesting_account_id": "true",
        "skip_metadata_api_check": "true", "skip_region_validation": "true",
        "access_key": emu.terraform_keys[0], "secret_key": emu.terraform_keys[1],
    }
    return [f"-backend-config={k}={v}" for k, v in settings.items()]


def test_s3_backend_and_lock(fresh, stack, synth, tmp_path):
    """The emulator environment uses a local backend; this rung alone replaces the copy's
    ``terraform.backend`` block with the S3 block the s3 environments synthesize (``dev``'s: bucket,
    key, region, encrypt, use_lockfile) and points it at the emulator with ``-backend-config`` flags.
    Nothing else in the JSON changes."""
    started = time.monotonic()
    s3_backend = copy.deepcopy(synth["dev"]["terraform"]["backend"])
    assert set(s3_backend) == {"s3"} and s3_backend["s3"].get("use_lockfile") is True, s3_backend
    doc = copy.deepcopy(stack)
    doc["terraform"]["backend"] = s3_backend

    s3 = fresh.client("s3")
    s3.create_bucket(Bucket=STATE_BUCKET)
    s3.put_bucket_versioning(Bucket=STATE_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    # as the deployer, whose policy names this state object and its lock file (where the flags put them):
    # the S3 backend's calls are authorized on the bucket and key, which the emulator does check
    placed = copy.deepcopy(doc)
    placed["terraform"]["backend"] = {"s3": {**s3_backend["s3"], "bucket": STATE_BUCKET, "key": STATE_KEY}}
    with fresh.enforce_iam(permissions.deployer_policy(placed, account=ACCOUNT_ID).documents):
        s3_backend_rung(fresh, doc, tmp_path)
    TIMINGS["c (s3 backend + lock)"] = time.monotonic() - started


def s3_backend_rung(fresh: Emulator, doc: dict, tmp_path: Path) -> None:
    s3 = fresh.client("s3")  # the harness (enforce_iam's administrator)
    tf = terraform(fresh, tmp_path / "c", doc)
    tf.run("init", *TF_FLAGS, *s3_backend_flags(fresh), label="c: init (s3 backend)", timeout=180)

    run(tf, "apply", "-auto-approve", *TF_FLAGS, label="c: apply (state in s3)", timeout=APPLY_TIMEOUT)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=STATE_BUCKET).get("Contents", [])]
    assert keys == [STATE_KEY], f"expected only the state object (lock released), found {keys}"
    state = json.loads(s3.get_object(Bucket=STATE_BUCKET, Key=STATE_KEY)["Body"].read())
    managed = [r for r in state["resources"] if r["mode"] == "managed"]
    assert len(managed) == managed_count(doc), (len(managed), managed_count(doc))
    assert not (tf.workdir / "terraform.tfstate").exists() and not list(tf.workdir.glob("*.tfstate"))
    head = s3.head_object(Bucket=STATE_BUCKET, Key=STATE_KEY)
    assert head.get("ServerSideEncryption") == "AES256", head.get("ServerSideEncryption")  # encrypt = true
    log(f"c: state s3://{STATE_BUCKET}/{STATE_KEY}: {len(managed)} managed resources, serial {state['serial']}")

    # Someone else holds the lock: Terraform's lock file is <key>.tflock (If-None-Match: * on create).
    lock_id = "5f1c0d6e-0000-4000-8000-00000000e2e0"
    lock = {"ID": lock_id, "Operation": "OperationTypeApply", "Info": "", "Who": "colleague@laptop",
            "Version": "1.11.4", "Created": "2026-01-01T00:00:00Z", "Path": f"{STATE_BUCKET}/{STATE_KEY}"}
    s3.put_object(Bucket=STATE_BUCKET, Key=f"{STATE_KEY}.tflock", Body=json.dumps(lock).encode())
    job = run(tf, "apply", "-auto-approve", "-lock-timeout=0s", *TF_FLAGS, label="c: apply while locked",
              timeout=APPLY_TIMEOUT, check=False)
    assert job.proc.returncode != 0, "an apply must not proceed while another run holds the lock"
    assert "Error acquiring the state lock" in job.output, job.output[-3000:]
    assert lock_id in job.output and "colleague@laptop" in job.output, job.output[-3000:]
    assert json.loads(s3.get_object(Bucket=STATE_BUCKET, Key=STATE_KEY)["Body"].read())["serial"] == state["serial"]
    log("c: second apply refused: Error acquiring the state lock (held by colleague@laptop)")

    # The operator releases the stale lock by its ID, then the destroy takes and releases it.
    tf.run("force-unlock", "-force", lock_id, label="c: force-unlock", timeout=120)
    run(tf, "destroy", "-auto-approve", *TF_FLAGS, label="c: destroy", timeout=DESTROY_TIMEOUT)
    assert_destroyed(fresh, "after destroy", doc)
    final = json.loads(s3.get_object(Bucket=STATE_BUCKET, Key=STATE_KEY)["Body"].read())
    assert [r for r in final["resources"] if r["mode"] == "managed"] == []
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=STATE_BUCKET)["Contents"]] == [STATE_KEY]


# ----------------------------------------------------------------------------- d

# A Kubernetes version step must never replace these (a new cluster, VPC, key or queue is an outage).
NEVER_REPLACED = ("aws_eks_cluster", "aws_eks_node_group", "aws_vpc", "aws_kms_key", "aws_sqs_queue")
# ...and must update these in place (the node group and add-ons follow the control plane).
STEPPED = ("aws_eks_cluster", "aws_eks_node_group", "aws_eks_addon")


def cluster_version(doc: dict) -> str:
    (config,) = doc["resource"]["aws_eks_cluster"].values()
    return config["version"]


def shifted(version: str, minors: int) -> str:
    major, minor = version.split(".")
    return f"{major}.{int(minor) + minors}"


def without_version(doc: dict) -> dict:
    """``doc`` with its cluster version written as ``<V>`` (and that version's minor number as
    ``<M>``) wherever a string names it: the version literal and the checks built from it; and what
    moves with the version by design: the add-on versions pinned for it and the node group's AMI
    release version (``<pinned>``)."""
    from model.versions import ADDON_VERSIONS, AMI_RELEASE_VERSIONS

    version = cluster_version(doc)
    minor = re.compile(rf"\b{re.escape(version.split('.')[1])}\b")
    pinned = {*ADDON_VERSIONS.get(version, {}).values(),
              *(r[version] for r in AMI_RELEASE_VERSIONS.values() if version in r)}

    def walk(value):
        if isinstance(value, str) and value in pinned:
            return "<pinned>"
        if isinstance(value, str) and version in value:
            return minor.sub("<M>", value.replace(version, "<V>"))
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(doc)


def planned_actions(tf: Terraform, label: str) -> tuple[dict[str, list[str]], dict]:
    """``{managed address: actions}`` of a saved plan (``step.tfplan``, applied next) and its JSON."""
    run(tf, "plan", "-out=step.tfplan", *TF_FLAGS, label=label, timeout=PLAN_TIMEOUT)
    shown = json.loads(tf.run("show", "-json", "step.tfplan", label=f"{label} (show -json)", timeout=120).stdout)
    return ({rc["address"]: rc["change"]["actions"] for rc in shown.get("resource_changes", [])
             if rc["mode"] == "managed"}, shown)


def assert_in_place_step(actions: dict[str, list[str]], step: str) -> None:
    changed = {a: acts for a, acts in actions.items() if acts != ["no-op"]}
    not_in_place = {a: acts for a, acts in changed.items() if acts != ["update"]}
    assert not not_in_place, f"{step}: a version step must only update in place, the plan also does {not_in_place}"
    untouched = {a: acts for a, acts in actions.items()
                 if a.split(".")[0] in NEVER_REPLACED and a.split(".")[0] not in STEPPED and acts != ["no-op"]}
    assert not untouched, f"{step}: the plan touches {untouched}"
    stepped = {a.split(".")[0] for a in changed}
    assert set(STEPPED) <= stepped, f"{step}: the plan updates {sorted(changed)}; expected {STEPPED} among them"
    log(f"d: {step}: plan updates in place {sorted(changed)}; replaces/deletes nothing")


def versions_in(emu: Emulator, name: str) -> dict:
    """The Kubernetes versions the emulator reports for the cluster, its node groups and add-ons."""
    eks = emu.client("eks")
    groups = {g: eks.describe_nodegroup(clusterName=name, nodegroupName=g)["nodegroup"]
              for g in eks.list_nodegroups(clusterName=name)["nodegroups"]}
    return {
        "cluster": eks.describe_cluster(name=name)["cluster"]["version"],
        "nodegroups": {g: (n["version"], n["releaseVersion"]) for g, n in groups.items()},
        "addons": {a: eks.describe_addon(clusterName=name, addonName=a)["addon"]["addonVersion"]
                   for a in eks.list_addons(clusterName=name)["addons"]},
    }


def assert_at(emu: Emulator, name: str, version: str, when: str, *, addons: bool = True) -> None:
    """The emulator reports ``version`` for the cluster and its node groups (on the AMI release the stack
    pins), and the add-ons at the versions model/versions.py pins for it (not EKS's defaults)."""
    from model.versions import ADDON_VERSIONS, DEFAULT_AMI_ALIAS, node_release_version

    found = versions_in(emu, name)
    assert found["cluster"] == version, f"{when}: cluster at {found['cluster']}, expected {version}"
    release = node_release_version(DEFAULT_AMI_ALIAS, version)
    assert found["nodegroups"] and all(v == version and r == release
                                       for v, r in found["nodegroups"].values()), f"{when}: node groups {found}, release {release}"
    assert found["addons"], f"{when}: no add-ons in the emulator"
    if addons:
        expected = {a: ADDON_VERSIONS[version][a] for a in found["addons"]}
        assert found["addons"] == expected, f"{when}: add-ons {found['addons']}, pinned for {version}: {expected}"
    log(f"d: {when}: cluster {found['cluster']}, node groups {found['nodegroups']}, add-ons {found['addons']}")


def test_kubernetes_upgrade(fresh, stack, tmp_path):
    """The stack one minor below its configured version, a refused two-minor jump, then two
    one-minor steps: each plan (``show -json`` of the saved plan) updates the cluster, node group
    and add-ons in place and replaces or deletes nothing; each apply converges (the emulator
    reports the new version everywhere, add-ons at the versions pinned for it) and re-plans clean.

    The variants come from tests/environments/emulator.yaml with only ``cluster.version`` changed
    (tests/emulator/synth_variants.py) and must differ from the session's stack in nothing else.
    No destroy at the end: rung a covers it and the next rung resets the emulator."""
    from tests.emulator.synth_variants import synthesize

    started = time.monotonic()
    current = cluster_version(stack)
    below, above = shifted(current, -1), shifted(current, +1)
    synthesized = synthesize(tmp_path / "synth", {v: {"cluster.version": v} for v in (below, above)})
    docs = {current: stack}
    for version, doc in synthesized.items():
        stripped, _ = strip_unavailable(doc, available_providers(doc))
        assert without_version(stripped) == without_version(stack), \
            f"the {version} variant differs from the {current} stack in more than its cluster version"
        docs[version] = stripped
    (name,) = (c["name"] for c in stack["resource"]["aws_eks_cluster"].values())
    log(f"d: variants {below} / {current} / {above} synthesized in {time.monotonic() - started:.0f}s")

    tf = terraform(fresh, tmp_path / "d", docs[below])
    tf.run("init", *TF_FLAGS, label="d: init", timeout=180)
    run(tf, "apply", "-auto-approve", *TF_FLAGS, label=f"d: apply at {below}", timeout=APPLY_TIMEOUT)
    assert_at(fresh, name, below, f"after the apply at {below}")

    # two minors at once: EKS (here the emulator) refuses, and nothing moves
    tf.write(docs[above])
    job = run(tf, "apply", "-auto-approve", *TF_FLAGS, label=f"d: apply {below} -> {above} (refused)",
              timeout=APPLY_TIMEOUT, check=False)
    eks_words = f"Unsupported Kubernetes minor version update from {below} to {above}"
    assert job.proc.returncode != 0, f"a {below} -> {above} apply must fail:\n{job.output[-3000:]}"
    assert eks_words in job.output or ("precondition" in job.output.lower() and above in job.output), \
        f"the {below} -> {above} refusal does not say why:\n{job.output[-3000:]}"
    assert_at(fresh, name, below, "after the refused jump")
    lines = job.output.splitlines()
    refusal = next((i for i, line in enumerate(lines) if eks_words in line or "precondition" in line.lower()), 0)
    who = "by EKS (the emulator)" if eks_words in job.output else "at plan, by the stack's precondition"
    log(f"d: {below} -> {above} refused {who}: " + " ".join(l.strip(" │╷╵") for l in lines[refusal:refusal + 8])[:600])

    at = below
    for version in (current, above):
        step = f"{at} -> {version}"
        tf.write(docs[version])
        actions, _ = planned_actions(tf, f"d: plan {step}")
        assert_in_place_step(actions, step)
        job = run(tf, "apply", *TF_FLAGS, "step.tfplan", label=f"d: apply {step}", timeout=APPLY_TIMEOUT)
        modified = set(re.findall(r"^(\S+): Modifications complete", job.output, re.M))
        assert {a.split(".")[0] for a in modified} <= set(STEPPED), f"{step}: the apply modified {sorted(modified)}"
        noise = sorted(a for a, acts in actions.items() if acts == ["update"] and a not in modified)
        if noise:
            log(f"d: {step}: planned as updates but left unchanged by the apply (values unknown at plan time, "
                f"e.g. policy documents read after the cluster's change): {noise}")
        assert_at(fresh, name, version, f"after {step}")
        plan_is_clean(tf, f"d: re-plan at {version}")
        at = version
    TIMINGS["d (upgrade steps)"] = time.monotonic() - started


# ----------------------------------------------------------------------------- e

CONTROL_PLANE_LOG_GROUP = re.compile(r"^/aws/eks/[^/]+/cluster$")


def control_plane_log_group(doc: dict) -> tuple[str, dict]:
    found = [(f"aws_cloudwatch_log_group.{key}", config)
             for key, config in doc.get("resource", {}).get("aws_cloudwatch_log_group", {}).items()
             if CONTROL_PLANE_LOG_GROUP.match(str(config.get("name", "")))]
    assert len(found) == 1, f"expected one /aws/eks/<name>/cluster log group in the stack, found {found}"
    return found[0]


def _put_event(emu: Emulator, group: str, stream: str, message: str) -> None:
    """One event, as EKS delivers the control plane's logs (PutLogEvents under the group's current key)."""
    logs = emu.client("logs")
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": message}])


def _events(emu: Emulator, group: str, stream: str) -> list[str]:
    return [e["message"] for e in emu.client("logs").get_log_events(logGroupName=group, logStreamName=stream)["events"]]


def test_log_group_after_destroy(fresh, stack, tmp_path):
    """DESIGN facts 14 and 25. The group outlives a destroy (``skip_destroy``) and must stay readable:
    CloudWatch Logs needs the key each event was ingested under (the emulator refuses, as AWS does, a
    read under a key disabled or pending deletion), so the group uses the account's kept-logs key
    (state-bootstrap), not the stack's key, which the destroy schedules for deletion. And after a
    destroy EKS re-creates ``/aws/eks/<name>/cluster`` (the control plane still logs while it is
    deleted), without retention or KMS, which a plain re-apply would fail on
    (``ResourceAlreadyExistsException``); an ``import`` block adopts it.

    Here: apply; an environment from before the kept-logs key is made by moving the group onto the
    stack's key, with an event under it; the next plan moves it back in place (the upgrade of an
    existing environment, docs/upgrading.md), an event after that; destroy (the group is kept): the
    events after the move are readable as they are, those from before after the documented recovery
    of the old key (cancel its deletion, enable it). Then the group replaced by the one EKS would
    leave, apply again: imported, updated in place (retention, the kept-logs key), re-plan clean.

    The first apply targets the log group (and what it needs: the KMS keys): the destroy then leaves
    exactly what a full destroy leaves (an empty state, the kept group, a key pending deletion) in
    a third of the time; rung a destroys the whole stack and checks the group is kept."""
    started = time.monotonic()
    address, config = control_plane_log_group(stack)
    name = config["name"]
    tf = terraform(fresh, tmp_path / "e", stack)
    tf.run("init", *TF_FLAGS, label="e: init", timeout=180)
    run(tf, "apply", "-auto-approve", f"-target={address}", *TF_FLAGS, label="e: apply (log group)",
        timeout=APPLY_TIMEOUT)
    logs, kms = fresh.client("logs"), fresh.client("kms")
    kept = kept_logs_key(fresh)

    # an environment applied before the kept-logs key: its group on the stack's own key
    (own_key,) = [k["KeyArn"] for k in kms.list_keys()["Keys"] if k["KeyArn"] != kept
                  and kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"]["KeyState"] == "Enabled"]  # the stack's
    logs.associate_kms_key(logGroupName=name, kmsKeyId=own_key)
    _put_event(fresh, name, "before-the-move", "audit: under the stack's key")
    run(tf, "plan", "-out=step.tfplan", f"-target={address}", *TF_FLAGS,
        label="e: plan of an environment from before the kept-logs key", timeout=PLAN_TIMEOUT)
    shown = json.loads(tf.run("show", "-json", "step.tfplan", label="e: show the move", timeout=120).stdout)
    changed = {rc["address"]: rc["change"]["actions"] for rc in shown.get("resource_changes", [])
               if rc["mode"] == "managed" and rc["change"]["actions"] != ["no-op"]}
    assert changed == {address: ["update"]}, f"the move must update only the log group, in place: {changed}"
    moved = [rc for rc in shown["resource_changes"] if rc["address"] == address]
    after = moved[0]["change"]["after"]
    assert after["kms_key_id"] == kept, f"the group must move to the kept-logs key {kept}: {after['kms_key_id']}"
    run(tf, "apply", *TF_FLAGS, "step.tfplan", label="e: apply (the move)", timeout=APPLY_TIMEOUT)
    _put_event(fresh, name, "after-the-move", "audit: under the kept-logs key")

    run(tf, "destroy", "-auto-approve", *TF_FLAGS, label="e: destroy", timeout=DESTROY_TIMEOUT)
    assert_destroyed(fresh, "e: after destroy", stack)
    assert _events(fresh, name, "after-the-move") == ["audit: under the kept-logs key"]
    with pytest.raises(Exception) as refused:
        _events(fresh, name, "before-the-move")
    assert "AccessDeniedException" in str(refused.value) and "PendingDeletion" in str(refused.value), refused.value
    # docs/upgrading.md, Kept logs: what was ingested before the move needs the old key back
    kms.cancel_key_deletion(KeyId=own_key.split("/")[-1])
    kms.enable_key(KeyId=own_key.split("/")[-1])
    assert _events(fresh, name, "before-the-move") == ["audit: under the stack's key"]
    kms.schedule_key_deletion(KeyId=own_key.split("/")[-1], PendingWindowInDays=30)  # once its retention passed
    log(f"e: {name} readable after the destroy (kept-logs key); events from before the move after the old "
        "key's recovery")

    logs = fresh.client("logs")
    if [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]:
        logs.delete_log_group(logGroupName=name)  # kept by skip_destroy; EKS's own copy replaces it
    logs.create_log_group(logGroupName=name)  # what EKS leaves: no retention, no KMS key
    log(f"e: {name} replaced by a bare group (no retention, no KMS key), as EKS re-creates it")

    actions, shown = planned_actions(tf, "e: plan over the existing group")
    changes = [rc for rc in shown.get("resource_changes", []) if rc["type"] == "aws_cloudwatch_log_group"
               and (rc["change"].get("after") or {}).get("name") == name]
    assert len(changes) == 1, f"the plan has {len(changes)} changes for {name}: {changes}"
    change = changes[0]["change"]
    assert change.get("importing", {}).get("id") == name and change["actions"] == ["update"], (
        f"the plan must import {name} and update it in place; it plans {change['actions']}, importing "
        f"{change.get('importing')}")
    creates = sorted(a for a, acts in actions.items() if "create" in acts)
    log(f"e: plan: {changes[0]['address']} imported from {name!r} and updated in place; "
        f"{len(creates)} resources created anew")

    job = run(tf, "apply", *TF_FLAGS, "step.tfplan", label="e: apply over the existing group", timeout=APPLY_TIMEOUT)
    assert "Import complete" in job.output, job.output[-3000:]
    (group,) = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    assert group.get("retentionInDays") == config["retention_in_days"], group
    key_id = group.get("kmsKeyId")
    assert key_id == kept, f"{name} is not encrypted with the kept-logs key {kept} after the apply: {group}"
    state = fresh.client("kms").describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"]
    assert state == "Enabled", f"{name} is encrypted with {key_id}, which is {state}"
    log(f"e: {name}: retention {group['retentionInDays']} days, KMS key {key_id} ({state})")
    assert_like_clean_apply(fresh, stack, "e: after the second apply")
    plan_is_clean(tf, "e: re-plan")
    TIMINGS["e (log group after destroy)"] = time.monotonic() - started


def test_plan_refuses_zones_and_instance_types_the_region_lacks(fresh, stack, tmp_path):
    """Before anything is created: a zone the region does not have (us-east-1g) and a controller
    instance type not offered in every zone (g7e.2xlarge: only us-east-1a and 1c in the emulator's
    offerings, which are AWS's) fail the plan, naming the key; the emulator stays empty. The stack
    is the synthesized one with those two values replaced, as the config would write them (the
    config itself cannot know either; tests/test_config.py checks what it can)."""
    (node_group,) = stack["resource"]["aws_eks_node_group"].values()
    zone, node_type = "us-east-1c", node_group["instance_types"][0]
    bad = json.loads(json.dumps(stack).replace(zone, "us-east-1g").replace(node_type, "g7e.2xlarge"))
    tf = terraform(fresh, tmp_path / "p", bad)
    tf.run("init", *TF_FLAGS, label="p: init", timeout=180)
    job = run(tf, "plan", *TF_FLAGS, label="p: plan (bad zone, bad type)", timeout=PLAN_TIMEOUT, check=False)
    text = re.sub(r"\s+", " ", re.sub(r"[│╷╵]", " ", job.output))
    assert job.proc.returncode == 1, job.output[-4000:]
    assert ("network: the cluster's subnets would use us-east-1g, which is not an available zone of us-east-1 in "
            "this account; list network.availability_zones explicitly") in text, job.output[-4000:]
    assert "cluster.node_instance_type: g7e.2xlarge is not offered in us-east-1b, us-east-1g;" in text, job.output[-4000:]
    assert not nonempty(inventory(fresh)), "the refused plan created something"


# ----------------------------------------------------------------------------- f: an existing network

def network_team(emu: Emulator) -> dict[str, str]:
    """What a network team builds and shares: a VPC with private subnets in three zones routed to a
    transit gateway (two through route tables of their own, one through the VPC's main table), with the
    team's tags only; and, for the refusals, subnets a user might list by mistake: more in one zone, one
    in a zone id without EKS control planes, one of another VPC, one whose table has no default route, and
    three /28s too small for the pools. ``{role: id}``."""
    ec2 = emu.client("ec2")
    tags = lambda name: [{"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": name},  # noqa: E731
                                                            {"Key": "Owner", "Value": "network-team"}]}]
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": [
        {"Key": "Name", "Value": "shared-prod"}, {"Key": "Owner", "Value": "network-team"}]}])["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # EKS needs it (and DNS support, on)
    tgw = ec2.create_transit_gateway(Description="network-team hub")["TransitGateway"]["TransitGatewayId"]
    main = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]},
                                              {"Name": "association.main", "Values": ["true"]}])["RouteTables"][0]
    ec2.create_route(RouteTableId=main["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", TransitGatewayId=tgw)
    ids = {"vpc": vpc, "tgw": tgw}

    def subnet(role: str, cidr: str, zone: str, table: str | None = "tgw", in_vpc: str = vpc) -> None:
        ids[role] = ec2.create_subnet(VpcId=in_vpc, CidrBlock=cidr, AvailabilityZone=zone,
                                      TagSpecifications=tags(role))["Subnet"]["SubnetId"]
        if table is None:
            return  # the VPC's main table
        rt = ec2.create_route_table(VpcId=in_vpc)["RouteTable"]["RouteTableId"]
        if table == "tgw":
            ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", TransitGatewayId=tgw)
        ec2.associate_route_table(RouteTableId=rt, SubnetId=ids[role])
        ids[f"{role}-rt"] = rt

    subnet("private-a", "10.20.0.0/20", "us-east-1a")
    subnet("private-b", "10.20.16.0/20", "us-east-1b")
    subnet("private-c", "10.20.32.0/20", "us-east-1c", table=None)
    subnet("more-a1", "10.20.48.0/24", "us-east-1a")
    subnet("more-a2", "10.20.49.0/24", "us-east-1a")
    subnet("zone-e", "10.20.50.0/24", "us-east-1e")  # use1-az3 in the emulator's mapping, as in AWS accounts
    subnet("no-route", "10.20.51.0/24", "us-east-1b", table="none")
    for zone in "abc":
        subnet(f"tiny-{zone}", f"10.20.{52 + 'abc'.index(zone)}.0/28", f"us-east-1{zone}")
    other = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnet("other-vpc", "10.30.0.0/24", "us-east-1c", table=None, in_vpc=other)
    subnet("other-a", "10.30.1.0/24", "us-east-1a", table=None, in_vpc=other)
    subnet("other-b", "10.30.2.0/24", "us-east-1b", table=None, in_vpc=other)
    ids["other"] = other  # DNS hostnames off, as EC2 makes a VPC by default
    return ids


def network_snapshot(emu: Emulator, vpcs: list[str]) -> dict:
    """The network team's VPCs, subnets, route tables, routes and tags as EC2 describes them (free
    address counts, which move with any interface, left out)."""
    ec2 = emu.client("ec2")
    filters = [{"Name": "vpc-id", "Values": vpcs}]
    subnets = ec2.describe_subnets(Filters=filters)["Subnets"]
    for s in subnets:
        s.pop("AvailableIpAddressCount", None)
    return {"vpcs": ec2.describe_vpcs(VpcIds=vpcs)["Vpcs"], "subnets": sorted(subnets, key=lambda s: s["SubnetId"]),
            "route_tables": sorted(ec2.describe_route_tables(Filters=filters)["RouteTables"],
                                   key=lambda t: t["RouteTableId"]),
            "tags": sorted((t["ResourceId"], t["Key"], t["Value"]) for t in ec2.describe_tags()["Tags"]
                           if t["ResourceId"].startswith(("vpc-", "subnet-", "rtb-")))}


def into(doc: dict, ids: dict[str, str], subnets: tuple[str, str, str], vpc: str = "vpc") -> dict:
    """``doc`` (the emulator stack in an existing network) with the placeholder ids swapped for these."""
    from tests.variants import PLACEHOLDER_SUBNETS, PLACEHOLDER_VPC

    text = json.dumps(doc).replace(PLACEHOLDER_VPC, ids[vpc])
    for placeholder, role in zip(PLACEHOLDER_SUBNETS, subnets, strict=True):
        text = text.replace(placeholder, ids[role])
    return json.loads(text)


# (subnets listed, the words the plan must print, naming the subnet or its route table)
BAD_NETWORKS = {
    "subnets in one zone": (("private-a", "more-a1", "more-a2"), "every one is in us-east-1a; EKS needs subnets in at least two zones"),
    "a zone without EKS control planes": (("private-a", "private-b", "zone-e"), "{zone-e} is in us-east-1e, zone id use1-az3"),
    "a subnet of another VPC": (("private-a", "private-b", "other-vpc"), "{other-vpc} is in {other}, not in network.existing.vpc_id {vpc}"),
    "no default route": (("private-a", "private-b", "no-route"), "{no-route} routes through {no-route-rt}, which has no default route"),
    "a VPC without DNS hostnames": (("other-a", "other-b", "other-vpc"), "{other} has DNS resolution on and DNS hostnames off"),
}


def test_existing_network(fresh, emulator_synth, tmp_path):
    """Issue 21: the network a network team builds (tests above: ``network_team``), each plan-time refusal in
    its bad state, then the environment applied into the good one, re-planned clean, the switch to a network
    of its own refused, destroyed: the team's VPC, subnets, route tables, routes and tags exactly as before,
    and nothing of the stack's left."""
    started = time.monotonic()
    ids = network_team(fresh)
    vpcs = [ids["vpc"], ids["other"]]
    before, baseline = network_snapshot(fresh, vpcs), inventory(fresh)
    full = emulator_synth["emulator-existing"]
    base, _ = strip_unavailable(full, available_providers(full))
    doc = into(base, ids, ("private-a", "private-b", "private-c"))
    tf = terraform(fresh, tmp_path / "f", doc)
    tf.run("init", *TF_FLAGS, label="f: init", timeout=180)

    # the refusals, planned in workdirs without state (two at a time) while the good state is applied
    from concurrent.futures import ThreadPoolExecutor

    workers = plan_workers(fresh, tf, PLAN_WORKERS)

    def planned(case: str) -> tuple[str, str, bool]:
        subnets, words = BAD_NETWORKS[case] if case in BAD_NETWORKS else (("tiny-a", "tiny-b", "tiny-c"), "")
        worker = workers.get()
        try:
            worker.write(into(base, ids, subnets, "other" if "DNS" in case else "vpc"))
            output, shown = plan_json(worker, f"f: plan with {case}")
        finally:
            workers.put(worker)
        return case, re.sub(r"\s+", " ", " ".join(line.strip(" │╷╵") for line in output.splitlines())), shown is not None

    cases = [*BAD_NETWORKS, "small subnets"]
    pool = ThreadPoolExecutor(max_workers=PLAN_WORKERS)
    refusals = pool.map(planned, cases)  # while the good state is applied (they need no state)
    run(tf, "apply", "-auto-approve", *TF_FLAGS, label="f: apply", timeout=APPLY_TIMEOUT)
    results = list(refusals)
    pool.shutdown()
    broken = []
    for case, text, ok in results:
        if case in BAD_NETWORKS:
            words = BAD_NETWORKS[case][1].format(**ids)
            if ok or words not in text:
                broken.append(f"{case}: must be refused at plan with {words!r}; got: {text[-1500:]}")
        elif not ok or "free addresses in us-east-1, fewer than the 1320 the pools need" not in text:
            broken.append(f"{case}: must plan with a warning about free addresses; got: {text[-1500:]}")
        else:
            log(f"f: {case}: planned with the free-address warning")
    assert not broken, "existing-network checks:\n- " + "\n- ".join(broken)
    log(f"f: {len(BAD_NETWORKS)} refusals and the warning planned, and the good state applied, in "
        f"{time.monotonic() - started:.0f}s")
    assert network_snapshot(fresh, vpcs) == before, "the apply changed the network team's VPC, subnets, routes or tags"
    plan_is_clean(tf, "f: re-plan")
    values = json.loads(tf.run("output", "-json", label="f: outputs", timeout=120).stdout)
    assert values["vpc_id"]["value"] == ids["vpc"]
    assert values["private_subnet_ids"]["value"] == [ids["private-a"], ids["private-b"], ids["private-c"]]
    assert values["public_subnet_ids"]["value"] == []

    worker = workers.get()  # a copy of the applied state, planned with a network of its own
    for state in tf.workdir.glob("*.tfstate"):
        shutil.copy(state, worker.workdir / state.name)
    owned, _ = strip_unavailable(emulator_synth["emulator"], available_providers(emulator_synth["emulator"]))
    owned["terraform"]["backend"] = doc["terraform"]["backend"]  # the same state (the stacks' names differ)
    worker.write(owned)
    output, shown = plan_json(worker, "f: plan with a network of its own")
    text = re.sub(r"\s+", " ", " ".join(line.strip(" │╷╵") for line in output.splitlines()))
    assert shown is None and ("network.existing cannot change after the first apply (from an existing network to "
                              "a network the stack builds)") in text, text[-2000:]

    run(tf, "destroy", "-auto-approve", *TF_FLAGS, label="f: destroy", timeout=DESTROY_TIMEOUT)
    assert network_snapshot(fresh, vpcs) == before, "the destroy changed the network team's VPC, subnets, routes or tags"
    kept = retained(doc)
    left = nonempty({kind: [i for i in found if i not in baseline.get(kind, []) and i not in kept.get(kind, [])]
                     for kind, found in inventory(fresh).items()})
    assert not left, f"f: the emulator still holds what the stack made: {left}"
    TIMINGS["f (existing network)"] = time.monotonic() - started
