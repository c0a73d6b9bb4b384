"""Start moto's server (with or without the ``moto_plus`` patches) on a free 127.0.0.1 port, wait
until it answers, and always stop it (its whole process group) again.

``emulator`` is the pytest session fixture the end-to-end tests use: import it into a test module
(``from tests.emulator.server import emulator``). ``running_emulator`` is the same as a context
manager. Every address here is 127.0.0.1; nothing is ever sent anywhere else.
"""

from __future__ import annotations

import contextlib
import json
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
HARNESS_PATH = "/emulator-harness/"  # IAM path of the harness's own users and policies (not the stack's)
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
        # the keys the test harness (client) and Terraform (terraform_env) use: moto's default
        # account's unauthenticated keys, until enforce_iam() makes them emulator IAM users
        self.harness_keys = self.terraform_keys = (ACCESS_KEY, SECRET_KEY)
        self._harness: tuple[str, str] | None = None

    # -------------------------------------------------------------- talking to it

    def client(self, service: str, region: str = REGION, keys: tuple[str, str] | None = None):
        """A boto3 client for the emulator, as the harness (or as the identity of ``keys``)."""
        import boto3
        from botocore.config import Config

        key, secret = keys or self.harness_keys
        return boto3.client(service, region_name=region, endpoint_url=self.url, aws_access_key_id=key,
                            aws_secret_access_key=secret,
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
        self._harness = None
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        with _OPENER.open(request, timeout=30) as response:
            assert response.status == 200, response.status

    # -------------------------------------------------------------- IAM enforcement (DESIGN fact 30)

    def _reset_auth(self, unauthenticated_calls: float) -> None:
        """moto's ``/moto-api/reset-auth``: after this many unauthenticated calls, every request must
        be signed by an emulator IAM identity (the body is the number, sent as octet-stream: a form
        content type leaves moto an empty body and a 500)."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset-auth", method="POST",
                                         data=str(unauthenticated_calls).encode(),
                                         headers={"Content-Type": "application/octet-stream"})
        with _OPENER.open(request, timeout=30) as response:
            assert response.status == 200, response.status

    def user_with_policies(self, user: str, documents: list[dict]) -> tuple[str, str]:
        """An emulator IAM user holding exactly ``documents`` (managed policies ``<user>-<n>``); its keys."""
        iam = self.client("iam")
        iam.create_user(UserName=user, Path=HARNESS_PATH)
        for i, document in enumerate(documents, 1):
            arn = iam.create_policy(PolicyName=f"{user}-{i}", Path=HARNESS_PATH,
                                    PolicyDocument=json.dumps(document))["Policy"]["Arn"]
            iam.attach_user_policy(UserName=user, PolicyArn=arn)
        key = iam.create_access_key(UserName=user)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def set_policies(self, user: str, documents: list[dict]) -> None:
        """Replace what ``user`` holds by ``documents`` (its keys stay)."""
        iam = self.client("iam")
        for attached in iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]:
            iam.detach_user_policy(UserName=user, PolicyArn=attached["PolicyArn"])
            iam.delete_policy(PolicyArn=attached["PolicyArn"])
        for i, document in enumerate(documents, 1):
            arn = iam.create_policy(PolicyName=f"{user}-{i}", Path=HARNESS_PATH,
                                    PolicyDocument=json.dumps(document))["Policy"]["Arn"]
            iam.attach_user_policy(UserName=user, PolicyArn=arn)

    @contextlib.contextmanager
    def enforce_iam(self, deployer: list[dict], user: str = "deployer") -> Iterator[str]:
        """While inside: the emulator enforces IAM; Terraform (``terraform_env``) runs as ``user``
        holding only ``deployer`` (policy documents), the harness as ``harness`` (AdministratorAccess,
        to create and inspect what the workloads leave). Yields the deployer's ARN. On the way out
        enforcement stops and the keys are moto's defaults again (a later reset forgets the users)."""
        if self._harness is None:  # once per reset: a reset forgets every user
            self._harness = self.user_with_policies("harness", [])
            self.client("iam").attach_user_policy(UserName="harness",
                                                  PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
        keys = self.user_with_policies(user, deployer)
        self._reset_auth(0)
        self.harness_keys = self._harness
        self.terraform_keys = keys
        try:
            yield f"arn:aws:iam::{ACCOUNT_ID}:user/{user}"  # as moto names a user in its errors (no path)
        finally:
            self._reset_auth(float("inf"))
            self.harness_keys = self.terraform_keys = (ACCESS_KEY, SECRET_KEY)

    def terraform_env(self) -> dict[str, str]:
        """Environment for Terraform and its aws provider: every AWS API call goes to the emulator.

        Guard: HTTP(S)_PROXY point at a closed loopback port (discard, 9). Go never proxies loopback
        addresses, so the emulator is reached directly, while any request to another host (a real AWS
        endpoint, a registry) fails at once instead of leaving the machine."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": self.terraform_keys[0],
            "AWS_SECRET_ACCESS_KEY": self.terraform_keys[1],
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

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def denials_since(self, offset: int) -> list[str]:
        """The emulator's AccessDenied lines (``moto_plus: iam: AccessDenied <identity> <action>``) logged
        after ``offset`` (a ``log_size()``)."""
        with open(self.log, "rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
        return [line.strip() for line in text.splitlines() if "iam: AccessDenied" in line]

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


def bootstrapped(emu: Emulator, kept_logs: bool = True) -> Emulator:
    """What the once-per-account state-bootstrap stack leaves in an account that every environment's
    plan wants (stacks/state_bucket.py): the Spot service-linked role, and in the emulator's region
    the kept-logs KMS key with its alias and the SSM parameter that names it (the environments'
    control-plane log groups are encrypted with it; ``kept_logs=False`` leaves those to a test that
    applies the bootstrap stack itself)."""
    from model.names import KEPT_LOGS_KEY_ALIAS, KEPT_LOGS_PARAMETER

    emu.client("iam").create_service_linked_role(AWSServiceName="spot.amazonaws.com")
    if not kept_logs:
        return emu
    kms = emu.client("kms")
    key = kms.create_key(Description="Control-plane log groups of the platform's environments, kept after a destroy")
    kms.create_alias(AliasName=KEPT_LOGS_KEY_ALIAS, TargetKeyId=key["KeyMetadata"]["KeyId"])
    emu.client("ssm").put_parameter(Name=KEPT_LOGS_PARAMETER, Type="String", Value=key["KeyMetadata"]["Arn"])
    return emu


def kept_logs_key(emu: Emulator) -> str:
    """The ARN of the account's kept-logs key (``bootstrapped``)."""
    from model.names import KEPT_LOGS_PARAMETER

    return emu.client("ssm").get_parameter(Name=KEPT_LOGS_PARAMETER)["Parameter"]["Value"]


STANDARD_ON_DEMAND = "L-1216C47A"
RAISED_STANDARD_VCPUS = 64


def raised_quota(emu: Emulator, code: str = STANDARD_ON_DEMAND, value: float = RAISED_STANDARD_VCPUS) -> Emulator:
    """An account whose quota ``code`` was raised (approved at once by the emulator): a new account's 5
    Standard On-Demand vCPUs cannot roll even one controller node of the stack (constructs/preflight.py)."""
    emu.client("service-quotas").request_service_quota_increase(ServiceCode="ec2", QuotaCode=code, DesiredValue=value)
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
