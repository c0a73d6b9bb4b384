"""Start moto's server (with or without the ``moto_plus`` patches) on a free 127.0.0.1 port, wait
until it answers, and always stop it (its whole process group) again.

``emulator`` is the pytest session fixture the end-to-end tests use: import it into a test module
(``from tests.emulator.server import emulator``). ``running_emulator`` is the same as a context
manager. Every address here is 127.0.0.1; nothing is ever sent anywhere else.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.processes import stop_group
from tests.progress import progress

HOST = "127.0.0.1"
REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
ACCOUNT_ID = "123456789012"  # moto's default account
PATCHED_SERVER = Path(__file__).resolve().parent / "moto_plus.py"
BLACKHOLE_PROXY = f"http://{HOST}:9"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0

# Direct connections only: never route loopback traffic through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class Emulator:
    """A running moto server: its URL, boto3 clients for it and the environment Terraform needs."""

    def __init__(self, proc: subprocess.Popen, port: int, log: Path, patched: bool) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self.log = log
        self.patched = patched
        self.addon_defaults = log.parent / f"addon-defaults-{port}"

    # -------------------------------------------------------------- talking to it

    def client(self, service: str, region: str = REGION):
        import boto3
        from botocore.config import Config

        return boto3.client(service, region_name=region, endpoint_url=self.url, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY,
                            config=Config(retries={"max_attempts": 2, "mode": "standard"}, proxies={},
                                          s3={"addressing_style": "path"}))

    def move_addon_defaults(self) -> None:
        """AWS moves its default EKS add-on versions (to the newest compatible ones) under running clusters."""
        from tests.emulator.moto_plus import move_addon_defaults

        move_addon_defaults(str(self.addon_defaults))

    def reset(self) -> None:
        """Forget every resource (moto's reset API): each rung starts from an empty account (with
        EKS's default add-on versions back where they were)."""
        self.addon_defaults.unlink(missing_ok=True)
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        with _OPENER.open(request, timeout=30) as response:
            assert response.status == 200, response.status

    def terraform_env(self) -> dict[str, str]:
        """Environment for Terraform and its aws provider: every AWS API call goes to the emulator.

        Guard: HTTP(S)_PROXY point at a closed loopback port (discard, 9). Go never proxies loopback
        addresses, so the emulator is reached directly, while any request to another host (a real AWS
        endpoint, a registry) fails at once instead of leaving the machine."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "HTTP_PROXY": BLACKHOLE_PROXY,
            "HTTPS_PROXY": BLACKHOLE_PROXY,
            "http_proxy": BLACKHOLE_PROXY,
            "https_proxy": BLACKHOLE_PROXY,
            "NO_PROXY": f"{HOST},localhost",
            "no_proxy": f"{HOST},localhost",
        }

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    # -------------------------------------------------------------- lifecycle

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL it if it lingers; never raises."""
        stop_group(self.proc, STOP_TIMEOUT)


def start(log_dir: Path, *, patched: bool = True) -> Emulator:
    """Start a server and wait until it answers; on any failure stop it and raise with its log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = log_dir / f"moto-{'plus' if patched else 'stock'}-{port}.log"
    program = [str(PATCHED_SERVER)] if patched else ["-m", "moto.server"]
    defaults = log_dir / f"addon-defaults-{port}"  # Emulator.addon_defaults: AWS moving its add-on defaults
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true", "NO_PROXY": HOST, "no_proxy": HOST,
           "PYTHONUNBUFFERED": "1", "MOTO_PLUS_ADDON_DEFAULTS": str(defaults)}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, *program, "-H", HOST, "-p", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    emu = Emulator(proc, port, log, patched)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if not emu.alive():
                raise RuntimeError(f"moto server exited with {proc.returncode} before answering:\n{emu.log_tail()}")
            try:
                with _OPENER.open(f"{emu.url}/moto-api/data.json", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto server did not answer on {emu.url} within {START_TIMEOUT:.0f}s:\n"
                                   f"{emu.log_tail()}")
            time.sleep(0.2)
    except BaseException:
        emu.stop()
        raise
    progress(f"[emulator] moto {'+ moto_plus ' if patched else '(stock) '}on {emu.url} (pid {proc.pid}, log {log})")
    return emu


def bootstrapped(emu: Emulator) -> Emulator:
    """What the once-per-account state-bootstrap stack leaves in an account that every environment's
    preflight wants: the Spot service-linked role (stacks/state_bucket.py)."""
    emu.client("iam").create_service_linked_role(AWSServiceName="spot.amazonaws.com")
    return emu


@contextlib.contextmanager
def running_emulator(log_dir: Path, *, patched: bool = True) -> Iterator[Emulator]:
    emu = start(log_dir, patched=patched)
    try:
        yield emu
    finally:
        emu.stop()
        progress(f"[emulator] stopped {emu.url}")


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """The patched emulator for the whole session (each test resets it before use)."""
    with running_emulator(tmp_path_factory.mktemp("emulator")) as emu:
        yield emu
