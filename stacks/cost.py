"""Monthly cost of each shipped environment, counted from its synthesized JSON and priced by model/prices.py.

Fixed costs only (what the stack keeps running with no workload); usage-priced items are listed per unit.
Karpenter's nodes are the workload's and are not counted.
"""

from __future__ import annotations

import datetime as _dt

from model.prices import CHECKED, EC2_ON_DEMAND, HOURS_PER_MONTH, PRICES, REGION
from model.versions import EKS_CALENDAR, support_state

START, END = "<!-- cost:start -->", "<!-- cost:end -->"


def _items(doc: dict, rtype: str) -> list[dict]:
    return list(doc.get("resource", {}).get(rtype, {}).values())


def _money(usd: float) -> str:
    return f"${usd:,.2f}"


def _unit(usd: float) -> str:
    text = f"{usd:.3f}"
    return f"${text[:-1] if text.endswith('0') else text}"


ROWS = {"eks": "EKS control plane", "nodes": "controller nodes (on-demand)",
        "disks": "controller node root volumes (priced as gp2)", "nat": "NAT gateways",
        "ipv4": "public IPv4 (the NAT gateways' EIPs)", "kms": "KMS key"}


def owns_network(doc: dict) -> bool:
    """Whether the stack builds its network (an existing one's NAT and flow logs are its owner's costs)."""
    return bool(_items(doc, "aws_vpc"))


def estimate(doc: dict) -> dict[str, tuple[str, float]]:
    """``{row: (detail, USD a month)}`` of the fixed costs of one synthesized environment stack."""
    hours = HOURS_PER_MONTH
    on = _dt.date.fromisoformat(CHECKED)
    states = [(c["version"], support_state(c["version"], on)) for c in _items(doc, "aws_eks_cluster")]
    out = {"eks": (", ".join(f"Kubernetes {v}, {state} support" for v, state in states),
                   sum(PRICES["eks_extended" if state == "extended" else "eks_standard"].usd * hours for _, state in states))}
    nodes, disks, node_usd, disk_usd = [], [], 0.0, 0.0
    for group in _items(doc, "aws_eks_node_group"):
        count, disk = group["scaling_config"]["desired_size"], group.get("disk_size", 20)
        itype = group["instance_types"][0]
        if itype not in EC2_ON_DEMAND:
            raise SystemExit(f"error: no price for {itype} in model/prices.py EC2_ON_DEMAND; add its {REGION} "
                             "on-demand Linux price")
        nodes.append(f"{count} × {itype}")
        disks.append(f"{count} × {disk} GiB")
        node_usd += count * EC2_ON_DEMAND[itype] * hours
        disk_usd += count * disk * PRICES["ebs_gp2"].usd
    out["nodes"] = (", ".join(nodes), node_usd)
    out["disks"] = (", ".join(disks), disk_usd)
    nats, eips, keys = (len(_items(doc, t)) for t in ("aws_nat_gateway", "aws_eip", "aws_kms_key"))
    if owns_network(doc):
        out["nat"] = (str(nats), nats * PRICES["nat_hour"].usd * hours)
        out["ipv4"] = (str(eips), eips * PRICES["public_ipv4"].usd * hours)
    out["kms"] = (str(keys), keys * PRICES["kms_key"].usd)
    return out


def table(docs: dict[str, dict]) -> str:
    """The README block: one column per environment, then what is priced by use."""
    names = sorted(docs)
    est = {name: estimate(docs[name]) for name in names}
    lines = [f"| a month, USD ({REGION} list prices, {CHECKED}) | " + " | ".join(f"`{n}`" for n in names) + " |",
             "|---|" + "---:|" * len(names)]
    for key, label in ROWS.items():
        lines.append(f"| {label} | " + " | ".join(f"{_money(est[n][key][1])} ({est[n][key][0]})" if key in est[n]
                                                  else "— (the network's owner)" for n in names) + " |")
    lines.append("| **fixed total** | " + " | ".join(f"**{_money(sum(u for _, u in est[n].values()))}**" for n in names) + " |")
    existing = [f"`{n}`" for n in names if not owns_network(docs[n])]
    brought = (f"; in {', '.join(existing)}, an existing network, control-plane logs only: NAT and flow logs are the "
               "network owner's") if existing else ""
    extra = (PRICES["eks_extended"].usd - PRICES["eks_standard"].usd) * HOURS_PER_MONTH
    versions = sorted({c["version"] for n in names for c in _items(docs[n], "aws_eks_cluster")})
    ends = ", ".join(f"{v}: {EKS_CALENDAR[v].standard_end}" for v in versions if v in EKS_CALENDAR)
    sources = sorted({p.source.split(" ")[0] for p in PRICES.values()} | {"https://aws.amazon.com/ec2/pricing/on-demand/"})
    lines += ["",
              f"- **Extended support**: with `cluster.support_type: EXTENDED` (the default) a cluster left on its version "
              f"after standard support ends ({ends}) costs {_unit(PRICES['eks_extended'].usd)} instead of "
              f"{_unit(PRICES['eks_standard'].usd)} an hour: {_money(extra)} more a month per cluster.",
              f"- **By use**: NAT data {_unit(PRICES['nat_gb'].usd)}/GB processed; CloudWatch Logs (control-plane and "
              f"VPC flow logs{brought}) {_unit(PRICES['logs_ingest'].usd)}/GB ingested and {_unit(PRICES['logs_store'].usd)}"
              "/GB-month kept (365 days by default); KMS requests past 20,000 a month; +$1 a month for each of the "
              "key's first two rotations. **Account-wide, in `state-bootstrap`**: the kept-logs KMS key, "
              f"{_money(PRICES['kms_key'].usd)} a month per region whatever the number of environments, and a "
              "destroyed environment's kept control-plane log group, "
              f"{_unit(PRICES['logs_store'].usd)}/GB-month until its retention ends. **Not counted**: Karpenter's "
              "nodes, their volumes and the load balancers workloads create; the state bucket (cents).",
              "- Prices: " + ", ".join(sources) + f" ({HOURS_PER_MONTH} hours a month)."]
    return "\n".join(lines)


def readme_with_cost(text: str, docs: dict[str, dict]) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table(docs)}\n{END}{tail}"
