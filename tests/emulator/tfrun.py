"""Long Terraform runs against the emulator: a background process with progress lines on stderr.

``TerraformRun`` starts ``terraform -chdir=<dir> <args>`` (environment and CLI config from a
``tests.tf.Terraform``) in its own process group, writes its output to a log file, and while
waiting prints ``phase, resources done, elapsed`` every few seconds so ``pytest -s`` is never
silent. Every wait is bounded: on timeout the whole group is killed and the test fails with the
log tail. ``interrupt`` signals the group, like Ctrl-C in a terminal does.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from pathlib import Path

from tests.tf import TERRAFORM, Terraform
from tests.progress import progress

DONE = re.compile(r": (Creation|Destruction|Modifications) complete after ")
PROGRESS_EVERY = 10.0


class TerraformRun:
    def __init__(self, tf: Terraform, *args: str, label: str) -> None:
        self.tf = tf
        self.args = args
        self.label = label
        self.log = tf.workdir / f"{label.replace(' ', '-').replace('/', '_')}.log"
        self.started = time.monotonic()
        progress(f"[terraform] {label}: terraform {' '.join(args)}")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([TERRAFORM, f"-chdir={tf.workdir}", *args], env=tf.env, stdout=out,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    # ---------------------------------------------------------------- observing

    @property
    def output(self) -> str:
        return Path(self.log).read_text(errors="replace")

    def done(self) -> int:
        """Resources completed so far (created, destroyed or modified)."""
        return len(DONE.findall(self.output))

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def progress(self) -> None:
        progress(f"[terraform] {self.label}: {self.done()} resources done, {self.elapsed():.0f}s elapsed")

    # ---------------------------------------------------------------- controlling

    def interrupt(self, sig: int = signal.SIGINT) -> None:
        """Send ``sig`` to Terraform and its provider plugins (the terminal's Ctrl-C does the same)."""
        progress(f"[terraform] {self.label}: sending {signal.Signals(sig).name} after {self.elapsed():.1f}s "
                 f"({self.done()} resources done)")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    def wait(self, timeout: float, *, check: bool = True, until=None) -> int | None:
        """Wait for exit (or until ``until()`` is true: then return None, still running).

        On timeout kill the process group and raise; with ``check`` a non-zero exit raises too."""
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        try:
            while self.proc.poll() is None:
                if until is not None and until():
                    return None
                if time.monotonic() > deadline:
                    raise AssertionError(f"terraform {self.label} still running after {timeout:.0f}s; killed.\n"
                                         f"{self.output[-4000:]}")
                if time.monotonic() - last >= PROGRESS_EVERY:
                    self.progress()
                    last = time.monotonic()
                time.sleep(0.2)
        except BaseException:
            self.kill()
            raise
        rc = self.proc.returncode
        progress(f"[terraform] {self.label}: exit {rc}, {self.done()} resources done in {self.elapsed():.1f}s")
        if check and rc != 0:
            raise AssertionError(f"terraform {' '.join(self.args)} failed ({rc}):\n{self.output[-6000:]}")
        return rc


def run(tf: Terraform, *args: str, label: str, timeout: float, check: bool = True) -> TerraformRun:
    """Run to completion with progress lines; returns the finished run (``.proc.returncode``, ``.output``)."""
    job = TerraformRun(tf, *args, label=label)
    job.wait(timeout, check=check)
    return job
