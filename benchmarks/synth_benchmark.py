#!/usr/bin/env python
"""Synth benchmark for the "Synth in seconds" targets (a script, not a test).

    .venv/bin/python benchmarks/synth_benchmark.py [-n 3] [--json results.json]

Runs, on this machine, each in a fresh subprocess whose cwd is a temporary directory (CDKTF_OUTDIR
there too, so nothing is written into the repository), interleaved round-robin:

  fast synth    N x ``python main.py``                         (stacks/bootstrap.py fast imports on)
  normal synth  N x ``PLATFORM_FAST_IMPORTS=0 python main.py`` (every provider submodule imported)
  bare import   N x ``python -c "import cdktf_cdktf_provider_aws, cdktf_cdktf_provider_kubernetes,
                cdktf_cdktf_provider_helm"``                  (the normal cost of merely importing them)
  unit tests    N x ``pytest -m "not emulator and not scan"`` (the fast unit-test run)

after one untimed warm-up of the fast synth and the unit tests. The runs use Python's default
bytecode caching, as on a developer machine (``PYTHONDONTWRITEBYTECODE`` is removed from their
environment): the warm-up writes the caches, so every timed run starts warm, as every run but a
clone's first does.

Wall time is from spawn to exit. Memory is the resident set of the whole process tree (Python, the
jsii ``node`` kernel it spawns, anything else), sampled from /proc every ``--interval`` seconds and
summed per sample (new descendants are found by a scan of all of /proc every 0.1 s, which would
cost the measured run CPU if done at every sample); the peak of that sum is "tree peak" (python and node peaks are reported apart).
``ru_maxrss`` of a single child is the max of *one* process (not the sum), so it is shown only as a
cross-check ("max 1 proc", from wait4). Medians over the N runs are reported, then the ratios and the
targets: fast synth <= 0.3 x bare import, synth tree peak <= 1.1 GB (10^9 bytes), fast unit-test
run <= 1.5 x one fast synth.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1_000_000
PROVIDERS = ("cdktf_cdktf_provider_aws", "cdktf_cdktf_provider_kubernetes", "cdktf_cdktf_provider_helm")
TARGET_SYNTH_VS_IMPORT = 0.3
TARGET_PEAK_BYTES = 1_100_000_000
TARGET_TESTS_VS_SYNTH = 1.5


# ----------------------------------------------------------------------------- measurement


def _stat(pid: int | str) -> tuple[int, str, int] | None:
    """``(ppid, comm, rss bytes)`` from /proc/<pid>/stat, or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    close = stat.rfind(b")")  # comm may contain spaces and parentheses
    comm = stat[stat.find(b"(") + 1 : close].decode(errors="replace")
    rest = stat[close + 2 :].split()  # rest[0] is field 3 (state): ppid = field 4, rss = field 24
    return int(rest[1]), comm, int(rest[21]) * PAGE


def _kind(comm: str) -> str:
    if comm == "node" or comm.startswith("node"):
        return "node"
    if comm.startswith("python"):
        return "python"
    return "other"


class TreeSampler:
    """RSS summed over a process and all its descendants, total and per kind.

    Finding the descendants means reading every process on the machine; doing that at every sample
    costs enough CPU to slow a measured run that keeps both cores busy (the unit tests run a synth
    worker beside pytest). So the whole of /proc is scanned only every ``rescan`` seconds, to find
    new descendants; in between only the known members of the tree are read."""

    def __init__(self, root: int, rescan: float = 0.1) -> None:
        self.root, self.rescan = root, rescan
        self.members: set[int] = {root}
        self._scanned = 0.0

    def _scan(self) -> None:
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and (info := _stat(entry.name)) is not None:
                children.setdefault(info[0], []).append(int(entry.name))
        members, stack = set(), [self.root]
        while stack:
            pid = stack.pop()
            members.add(pid)
            stack.extend(children.get(pid, ()))
        self.members = members
        self._scanned = time.perf_counter()

    def sample(self) -> dict[str, int]:
        if time.perf_counter() - self._scanned >= self.rescan:
            self._scan()
        sums = {"tree": 0, "python": 0, "node": 0, "other": 0, "procs": 0}
        for pid in list(self.members):
            info = _stat(pid)
            if info is None:
                self.members.discard(pid)
                continue
            _, comm, rss = info
            sums["tree"] += rss
            sums[_kind(comm)] += rss
            sums["procs"] += 1
        return sums


@dataclass
class Run:
    label: str
    wall: float
    rc: int
    tree_peak: int = 0
    python_peak: int = 0
    node_peak: int = 0
    max_procs: int = 0
    single_maxrss: int = 0  # wait4 ru_maxrss: max of ONE process in the waited tree (cross-check)
    samples: int = 0
    output: str = field(default="", repr=False)


def measure(label: str, argv: list[str], env: dict[str, str], cwd: Path, interval: float, timeout: float) -> Run:
    """Run ``argv`` to completion; wall time and sampled process-tree RSS."""
    peaks = {"tree": 0, "python": 0, "node": 0, "procs": 0}
    count = [0]
    done = threading.Event()
    log = cwd / f".{label.replace(' ', '_')}.log"
    with open(log, "w+b") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        tree = TreeSampler(proc.pid)

        def sample() -> None:
            while not done.is_set():
                s = tree.sample()
                count[0] += 1
                for key in peaks:
                    peaks[key] = max(peaks[key], s[key])
                done.wait(interval)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        deadline = start + timeout
        while True:  # wait4 (not Popen.wait) to also get the kernel's ru_maxrss
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
        out.seek(0)
        output = out.read().decode(errors="replace")
    log.unlink()
    return Run(label, wall, proc.returncode, peaks["tree"], peaks["python"], peaks["node"], peaks["procs"],
               usage.ru_maxrss * 1024, count[0], output)


# ----------------------------------------------------------------------------- the runs


def base_env() -> dict[str, str]:
    drop = ("CDKTF_OUTDIR", "PYTHONDONTWRITEBYTECODE")  # bytecode caching on, as by default
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLATFORM_") and k not in drop}
    env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    env.setdefault("CHECKPOINT_DISABLE", "1")
    return env


def synth_run(kind: str, python: str, work: Path, i: int, args: argparse.Namespace) -> Run:
    cwd = Path(tempfile.mkdtemp(prefix=f"{kind.replace(' ', '-')}-{i}-", dir=work))
    env = base_env()
    outdir = cwd / "cdktf.out"
    if kind == "bare import":
        argv = [python, "-c", "import " + ", ".join(PROVIDERS)]
    else:
        argv = [python, str(ROOT / "main.py")]
        env["CDKTF_OUTDIR"] = str(outdir)
        if kind == "normal synth":
            env["PLATFORM_FAST_IMPORTS"] = "0"
    run = measure(kind, argv, env, cwd, args.interval, args.timeout)
    if run.rc != 0:
        sys.exit(f"{kind} run {i + 1} failed (exit {run.rc}):\n{run.output[-4000:]}")
    if kind != "bare import":
        stacks = sorted(p.parent.name for p in outdir.glob("stacks/*/cdk.tf.json"))
        if not stacks:
            sys.exit(f"{kind} run {i + 1} wrote no stacks into {outdir}:\n{run.output[-4000:]}")
        run.output = json.dumps({s: _resource_count(outdir / "stacks" / s / "cdk.tf.json") for s in stacks})
    shutil.rmtree(cwd, ignore_errors=True)
    return run


def _resource_count(path: Path) -> int:
    doc = json.loads(path.read_text())
    return sum(len(v) for section in ("resource", "data") for v in doc.get(section, {}).values())


def unit_test_run(python: str, work: Path, args: argparse.Namespace) -> Run:
    cwd = Path(tempfile.mkdtemp(prefix="pytest-", dir=work))
    argv = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(ROOT / "pytest.ini"),
            "--rootdir", str(ROOT), "--basetemp", str(cwd / "basetemp"), "-m", "not emulator and not scan",
            str(ROOT / "tests")]
    run = measure("unit tests", argv, base_env(), cwd, args.interval, args.timeout)
    shutil.rmtree(cwd, ignore_errors=True)
    return run


# ----------------------------------------------------------------------------- report


def _med(runs: list[Run], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in runs)


def _mb(n: float) -> str:
    return f"{n / MB:7.0f} MB"


def _verdict(ok: bool) -> str:
    return "MET " if ok else "MISSED"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _node_version() -> str:
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def _git_rev() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30).stdout.strip()
        return rev + ("+uncommitted changes" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=3, help="runs of each synth kind (default 3)")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the project venv (default: this one)")
    parser.add_argument("--interval", type=float, default=0.02, help="RSS sampling interval, seconds (default 0.02)")
    parser.add_argument("--timeout", type=float, default=900, help="per-run timeout, seconds")
    parser.add_argument("--skip-tests", action="store_true", help="do not time the fast unit-test run")
    parser.add_argument("--json", type=Path, help="also write the raw results here (benchmarks/results/ is git-ignored)")
    args = parser.parse_args(argv)
    if not Path("/proc/self/stat").exists():
        sys.exit("this benchmark samples memory from /proc (Linux only)")

    kinds = ("fast synth", "normal synth", "bare import") + (() if args.skip_tests else ("unit tests",))
    results: dict[str, list[Run]] = {k: [] for k in kinds}
    print(f"synth benchmark: n={args.n}, {os.cpu_count()} CPUs, Python {platform.python_version()} ({args.python}), "
          f"node {_node_version()}, repo {_git_rev()}, load average {_load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="synth-benchmark-") as tmp:
        work = Path(tmp)
        warm = [synth_run("fast synth", args.python, work, -1, args)]
        if "unit tests" in kinds:
            warm.append(unit_test_run(args.python, work, args))
        print("  warm-up (untimed): " + ", ".join(f"{r.label} {r.wall:.2f} s" for r in warm), flush=True)
        for i in range(args.n):  # round-robin, so drift on the machine hits every kind alike
            for kind in kinds:
                run = unit_test_run(args.python, work, args) if kind == "unit tests" else synth_run(kind, args.python, work, i, args)
                results[kind].append(run)
                print(f"  run {i + 1}/{args.n} {kind:<12} {run.wall:6.2f} s  tree peak {_mb(run.tree_peak)} "
                      f"(python {_mb(run.python_peak)}, node {_mb(run.node_peak)}, {run.max_procs} procs; "
                      f"max 1 proc {_mb(run.single_maxrss)})", flush=True)

    print(f"  load average at the end: {_load()} (other work on the machine inflates wall times)")
    stacks = results["fast synth"][-1].output
    print(f"\nstacks synthesized by main.py (resources + data sources): {stacks}")
    print(f"\nmedians of {args.n} runs          wall      tree peak    python peak    node peak   max 1 proc")
    med = {}
    for kind in kinds:
        runs = results[kind]
        med[kind] = {a: _med(runs, a) for a in ("wall", "tree_peak", "python_peak", "node_peak", "single_maxrss")}
        m = med[kind]
        print(f"  {kind:<24} {m['wall']:7.2f} s  {_mb(m['tree_peak'])}   {_mb(m['python_peak'])}   "
              f"{_mb(m['node_peak'])}  {_mb(m['single_maxrss'])}")
    tests = results.get("unit tests", [])
    failed = [r for r in tests if r.rc != 0]
    if tests:
        summary = [ln for ln in tests[-1].output.strip().splitlines() if ln.strip()][-1:] or ["?"]
        print(f"  (unit tests: {summary[0].strip()})")

    fast, normal, bare = (med[k]["wall"] for k in kinds[:3])
    r_fast, r_normal = fast / bare, normal / bare
    peak = max(r.tree_peak for r in results["fast synth"])
    print("\nratios")
    print(f"  fast synth   / bare import = {r_fast:5.2f}   (target <= {TARGET_SYNTH_VS_IMPORT})  "
          f"{_verdict(r_fast <= TARGET_SYNTH_VS_IMPORT)}")
    print(f"  normal synth / bare import = {r_normal:5.2f}")
    print(f"  fast synth tree peak, max of {args.n} = {peak / 1e9:.2f} GB (median {med['fast synth']['tree_peak'] / 1e9:.2f}; "
          f"target <= {TARGET_PEAK_BYTES / 1e9} GB)  {_verdict(peak <= TARGET_PEAK_BYTES)}")
    print(f"  normal synth tree peak, median = {med['normal synth']['tree_peak'] / 1e9:.2f} GB")
    r_tests = None
    if tests:
        r_tests = med["unit tests"]["wall"] / fast
        print(f"  fast unit tests / fast synth = {r_tests:5.2f}   (target <= {TARGET_TESTS_VS_SYNTH})  "
              f"{_verdict(r_tests <= TARGET_TESTS_VS_SYNTH and not failed)}"
              + ("" if not failed else f"  ({len(failed)} pytest runs failed)"))
        for run in failed[:1]:
            print("\n".join("    " + ln for ln in run.output.strip().splitlines()[-15:]))

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "n": args.n, "repo": _git_rev(), "medians": med, "ratios": {
                "fast_synth_over_bare_import": r_fast, "normal_synth_over_bare_import": r_normal,
                "unit_tests_over_fast_synth": r_tests},
            "runs": {k: [asdict(r) | {"output": r.output[-4000:] if k == "unit tests" else ""} for r in v]
                     for k, v in results.items()},
        }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
