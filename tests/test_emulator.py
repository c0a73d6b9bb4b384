"""End-to-end rungs: the synthesized ``emulator`` stack applied by real Terraform to the AWS emulator
(moto + tests/emulator/moto_plus.py) on 127.0.0.1. No cloud, no registry.

The helm/kubernetes provider binaries are not installable here (the /opt/tf-plugins mirror holds
only hashicorp/aws), so every rung applies a copy of the synthesized JSON without them
(``tests.tf.strip_unavailable``; the stripped addresses are printed). Nothing else in the generated
JSON is changed, except in rung c, which swaps the local backend block for the S3 one (see there).

a. ``test_apply_plan_destroy``: init, apply, ``plan -detailed-exitcode`` = 0, every output has a
   value, the kubeconfig output is a valid kubeconfig (kubectl), destroy, and the emulator holds
   nothing the stack made (checked through the emulator's APIs, not Terraform's state).
b. ``test_interrupted_apply_converges``: an apply killed hard (SIGKILL, as when the machine dies),
   then one interrupted with Ctrl-C (SIGINT), each recovered the way an operator would (resources
   created but not recorded are found through the emulator's APIs and imported); the final apply
   leaves exactly what a clean apply leaves (no duplicate VPC/subnet/NAT/key...) and re-plans clean.
c. ``test_s3_backend_and_lock``: state in the emulator's S3 with Terraform's native lock file.

Each rung starts from an empty emulator (moto reset) and prints its phases and timings to stderr.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.emulator.inventory import counts, expected_counts, inventory, nonempty
from tests.emulator.server import ACCESS_KEY, REGION, SECRET_KEY, Emulator
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
    """The emulator, reset: the rung starts from an empty account (and proves it)."""
    emulator.reset()
    leftovers = nonempty(inventory(emulator))
    assert not leftovers, f"emulator not empty after reset: {leftovers}"
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


def assert_destroyed(emu: Emulator, when: str) -> None:
    left = nonempty(inventory(emu))
    assert not left, f"{when}: the emulator still holds resources the stack made: {json.dumps(left, indent=1)}"


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


def test_apply_plan_destroy(fresh, stack, tmp_path):
    started = time.monotonic()
    tf = terraform(fresh, tmp_path / "a", stack)
    tf.run("init", *TF_FLAGS, label="a: init", timeout=180)
    run(tf, "apply", "-auto-approve", *TF_FLAGS, label="a: apply", timeout=APPLY_TIMEOUT)
    found = assert_like_clean_apply(fresh, stack, "after apply")
    log(f"a: emulator after apply: {counts(nonempty(found))}")
    plan_is_clean(tf, "a: re-plan")

    # outputs
    values = json.loads(tf.run("output", "-json", label="a: outputs", timeout=120).stdout)
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

    run(tf, "destroy", "-auto-approve", *TF_FLAGS, label="a: destroy", timeout=DESTROY_TIMEOUT)
    assert_destroyed(fresh, "after destroy")
    TIMINGS["a (apply/plan/destroy)"] = time.monotonic() - started


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


# ----------------------------------------------------------------------------- b

# What a resource type is called in the inventory (the import id is the inventory id).
IMPORTABLE = {
    "aws_vpc": "vpcs", "aws_subnet": "subnets", "aws_internet_gateway": "internet_gateways",
    "aws_nat_gateway": "nat_gateways", "aws_eip": "eips", "aws_route_table": "route_tables",
    "aws_flow_log": "flow_logs", "aws_iam_role": "iam_roles", "aws_iam_policy": "iam_policies",
    "aws_iam_openid_connect_provider": "oidc_providers", "aws_eks_cluster": "eks_clusters",
    "aws_eks_node_group": "eks_nodegroups", "aws_eks_access_entry": "eks_access_entries",
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
    else:
        matches = [a for a in candidates if body(doc, a).get("name") and
                   (orphan == body(doc, a)["name"] or orphan.endswith("/" + body(doc, a)["name"]))]
    return matches[0] if len(matches) == 1 else None


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
    for kind, ids in lost.items():
        if kind in SECONDARY:
            continue
        for orphan in ids:
            if orphan in imports.values():
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
    assert_destroyed(fresh, "after destroy")
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
        "access_key": ACCESS_KEY, "secret_key": SECRET_KEY,
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
    assert_destroyed(fresh, "after destroy")
    final = json.loads(s3.get_object(Bucket=STATE_BUCKET, Key=STATE_KEY)["Body"].read())
    assert [r for r in final["resources"] if r["mode"] == "managed"] == []
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=STATE_BUCKET)["Contents"]] == [STATE_KEY]
    TIMINGS["c (s3 backend + lock)"] = time.monotonic() - started
