"""Print the deployer policy of an environment: what the identity that plans, applies and destroys
it needs in AWS (an engineer's role, a CI job's, a Terraform Cloud run role's).

    python -m stacks.deployer dev                        # JSON: the managed policy documents
    python -m stacks.deployer dev --account 123456789012 # with the account in every ARN (default: *)
    python -m stacks.deployer dev --plan                 # what a plan alone needs (a read-only role)
    python -m stacks.deployer dev --why                  # each action and the resources that need it
    python -m stacks.deployer dev --before applied.yaml  # for a change of resource types: both sides

Synthesizes the environment (a few seconds, no AWS credentials) and derives the policy from its
JSON with model/permissions.py, so the policy always matches what the stack holds: its resource and
data-source types, its destroy-time steps and its state backend, scoped to its own names, region
and account. The ``state-bootstrap`` stack attaches the same documents to the roles it makes for
Terraform Cloud and GitHub Actions (``deployer:`` in the environment file).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from model import permissions

ANY_ACCOUNT = "*"


def synthesized(environment: str, before: Path | None = None) -> dict | None:
    """The environment's synthesized JSON (merged with that of ``before``, the same environment's file
    as it is applied now, for a change of resource types); None after printing the error lines."""
    from stacks.check import validated
    from stacks.config import ENVIRONMENTS_DIR, ConfigError, load_config

    configs = validated([environment], ENVIRONMENTS_DIR)
    if configs is None:
        return None
    wanted = {environment: configs[environment]}
    if before is not None:
        try:
            wanted[f"{environment}-before"] = load_config(before)
        except ConfigError as exc:
            print("\n".join(f"error: {line}" for line in str(exc).splitlines()), file=sys.stderr)
            return None
    from stacks.platform import build_app

    with tempfile.TemporaryDirectory(prefix="deployer-") as out:
        build_app(wanted, out).synth()
        docs = [json.loads((Path(out) / "stacks" / env / "cdk.tf.json").read_text()) for env in wanted]
    return permissions.merged(*docs)


def render(doc: dict, *, account: str = ANY_ACCOUNT, plan: bool = False, why: bool = False) -> str:
    phases = ("read",) if plan else permissions.PHASES
    policy = permissions.deployer_policy(doc, account=account, phases=phases)
    if why:
        return "\n".join(f"{action}: {', '.join(sources)}" for action, sources in policy.sources.items())
    return json.dumps(policy.documents, indent=2)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacks.deployer", description=__doc__.split("\n\n")[0])
    parser.add_argument("environment", help="an environment file's name (stacks/environments/<name>.yaml)")
    parser.add_argument("--account", default=ANY_ACCOUNT, help="the AWS account id to put in every ARN")
    parser.add_argument("--plan", action="store_true", help="only what a plan needs (read-only)")
    parser.add_argument("--why", action="store_true", help="each action and what in the stack needs it")
    parser.add_argument("--before", type=Path, metavar="FILE",
                        help="the environment's file as it is applied now: the policy then also covers what a "
                             "change of resource types deletes (e.g. cluster.pod_credentials)")
    args = parser.parse_args(argv)
    if args.account != ANY_ACCOUNT and not (args.account.isdigit() and len(args.account) == 12):
        print(f"error: --account {args.account}: an AWS account id is 12 digits", file=sys.stderr)
        return 2
    doc = synthesized(args.environment, args.before)
    if doc is None:
        return 2
    print(render(doc, account=args.account, plan=args.plan, why=args.why))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
