"""The stack's configuration: composes each layer's typed config (``model/``) into StackConfig,
adds what only the stack decides (identity, region, tags, backend, provider auth), checks the rules
that cross layers (compatible Kubernetes / Karpenter / AMI versions, the EKS calendar, replicas <=
controller nodes), and loads the environment files.

Each environment is one YAML file in ``stacks/environments/`` (``dev.yaml``, ``prod.yaml``, ...).
``load_config`` turns any problem into a ``ConfigError`` whose message is one line per problem:
file, field, bad value and the fix in words (no patterns, no library phrasing).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, Field, StringConstraints, ValidationError, ValidationInfo, model_validator

from model import aws, names, versions
from model.base import FORMAT_HINTS, Model, hint
from model.cluster import PRIVATE_ENDPOINT_WARNING, ClusterConfig, controller_fit_problem
from model.karpenter import ControllerResources, KarpenterConfig, NodePoolConfig
from model.network import NetworkConfig
from model.tags import MAX_USER_TAGS, STACK_TAG_KEYS, Tags  # noqa: F401  (re-exported for the tests)
from model.preflight import PreflightConfig
from model.deployer import DeployerConfig

__all__ = ["ClusterConfig", "ConfigError", "ControllerResources", "KarpenterConfig", "NetworkConfig",
           "NodePoolConfig", "StackConfig", "environment_files", "json_schema", "load_config", "load_environments",
           "collisions", "state_buckets",
           "support_warning"]

ENVIRONMENTS_DIR = Path(__file__).resolve().parent / "environments"
SCHEMA_FILE = ENVIRONMENTS_DIR / "schema.json"


class ConfigError(Exception):
    """A configuration file is unusable. ``str()`` is the user-facing message (no traceback)."""


NAME_PATTERN = hint(r"^[a-z][a-z0-9-]*[a-z0-9]$",
                    "use lower-case letters, digits and '-', starting with a letter and not ending with '-', e.g. platform-dev")
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, min_length=2, max_length=names.MAX_NAME_LENGTH)]
"""A cluster name. Its length is capped where a derived AWS name would overflow (model/names.py)."""

REGION_PATTERN = hint(r"^[a-z]{2}(-gov)?-[a-z]+-\d$", "use an AWS region name such as us-west-2")


def _known_region(v: str) -> str:
    if v not in aws.regions():
        raise ValueError(f"{v} is not an AWS region; use one such as us-west-2, us-east-1 or eu-west-1 "
                         f"(aws ec2 describe-regions lists them), or {aws.newer_hint()}")
    return v


Region = Annotated[str, StringConstraints(pattern=REGION_PATTERN), AfterValidator(_known_region)]
BUCKET_PATTERN = hint(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
                      "use an S3 bucket name: 3-63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit")
ORGANIZATION_PATTERN = hint(r"^[A-Za-z0-9_-]+$", "use the organization's name: letters, digits, '-' and '_'")
WORKSPACE_PATTERN = hint(r"^[A-Za-z0-9_-]{1,90}$", "use up to 90 letters, digits, '-' and '_'")


# ----------------------------------------------------------------------------- backend / providers


BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def log_bucket_name(bucket: str) -> str:
    """The state bootstrap's access-log bucket for state bucket ``bucket``: ``<bucket>-logs``, or,
    where that would pass S3's 63 characters, the first 51 characters, 6 of the name's hash and
    ``-logs`` (so a long state bucket name stays usable and two long names do not collide)."""
    if len(bucket) <= 63 - len("-logs"):
        return f"{bucket}-logs"
    return f"{bucket[:51]}-{hashlib.sha256(bucket.encode()).hexdigest()[:6]}-logs"


def _check_bucket(v: str) -> str:
    """S3's bucket naming rules beyond the pattern (Amazon S3 user guide, "General purpose bucket
    naming rules")."""
    if ".." in v or ".-" in v or "-." in v:
        raise ValueError("has '..', '.-' or '-.', which S3 refuses in a bucket name; remove them")
    if all(part.isdigit() for part in v.split(".")) and v.count(".") == 3:
        raise ValueError("looks like an IP address, which S3 refuses as a bucket name; pick a name")
    bad = [a for a in BUCKET_PREFIXES if v.startswith(a)] + [z for z in BUCKET_SUFFIXES if v.endswith(z)]
    if bad:
        raise ValueError(f"uses {bad[0]}, which S3 reserves; pick another name")
    return v


def _check_state_key(v: str) -> str:
    """Terraform's S3 backend refuses a key that starts or ends with '/' or holds '//' (S3: 1,024 bytes)."""
    if v.startswith("/") or v.endswith("/") or "//" in v:
        raise ValueError("must not start or end with '/' or contain '//' (Terraform's S3 backend refuses it); "
                         "write it like dev/terraform.tfstate")
    if len(v.encode()) > 1024:
        raise ValueError("is longer than S3's 1,024 bytes; shorten it")
    return v


class S3BackendConfig(Model):
    type: Literal["s3"] = Field("s3", description="Backend kind.")
    bucket: Annotated[str, StringConstraints(pattern=BUCKET_PATTERN), AfterValidator(_check_bucket)] = Field(
        description="Existing S3 bucket for Terraform state (see the state bootstrap stack)."
    )
    key: Annotated[str, StringConstraints(min_length=1, max_length=1024), AfterValidator(_check_state_key)] | None = Field(
        None, description="State object key; default <environment>/terraform.tfstate.")
    region: Region | None = Field(None, description="Bucket region; default the stack's region.")
    encrypt: bool = Field(True, description="Server-side encryption of the state object.")
    use_lockfile: bool = Field(True, description="Terraform's native S3 lock file (no DynamoDB table).")


class CloudBackendConfig(Model):
    type: Literal["cloud"] = Field(description="Backend kind.")
    organization: Annotated[str, StringConstraints(pattern=ORGANIZATION_PATTERN)] = Field(
        description="Terraform Cloud organization.")
    workspace: Annotated[str, StringConstraints(pattern=WORKSPACE_PATTERN)] = Field(
        description="Workspace name (one per environment).")
    hostname: str = Field("app.terraform.io", description="Terraform Cloud / Enterprise host.")


class LocalBackendConfig(Model):
    type: Literal["local"] = Field(description="Backend kind.")
    path: str | None = Field(None, description="State file; default terraform.<environment>.tfstate in the stack dir.")


Backend = Annotated[S3BackendConfig | CloudBackendConfig | LocalBackendConfig, Field(discriminator="type")]


class KubernetesAuthConfig(Model):
    """How the Helm and Kubernetes providers authenticate to the new cluster."""

    mode: Literal["exec", "token"] | None = Field(
        None,
        description="exec: `aws eks get-token` at every call (never expires; needs the aws CLI). token: "
        "aws_eks_cluster_auth data source (no CLI, ~15 min lifetime). Default: token for the cloud backend, else exec.",
    )


class EmulatorConfig(Model):
    """Test-only switch: point the aws provider at a local AWS API emulator (moto).

    The endpoint itself comes from ``AWS_ENDPOINT_URL`` in Terraform's environment."""

    enabled: bool = Field(False, description="Skip flags and path-style S3 for the emulator (its keys come from Terraform's environment, as a deployer's do). Never in a real environment.")

    def provider_settings(self) -> dict[str, Any]:
        """Extra aws provider arguments: skipped checks, path-style S3 (or none). No keys: the
        emulator's identities come from the environment (AWS_ACCESS_KEY_ID), so the end-to-end rung
        can run as an IAM user of the emulator that holds only the deployer policy."""
        if not self.enabled:
            return {}
        return dict(skip_credentials_validation=True,
                    skip_metadata_api_check="true", skip_region_validation=True, s3_use_path_style=True)


# ----------------------------------------------------------------------------- stack


def _today(info: ValidationInfo) -> _dt.date:
    """The date the EKS calendar is read at: today, or ``context={"today": date}`` in tests."""
    return (info.context or {}).get("today") or _dt.date.today()


class StackConfig(Model):
    """One environment: every layer's config plus identity, region, tags and backend."""

    name: Name = Field(description=f"Cluster name (2-{names.MAX_NAME_LENGTH} characters); also names the VPC, roles, queue and log groups.")
    region: Region = Field("us-west-2", description="AWS region of every resource.")
    tags: Tags = Field(
        default_factory=dict, description="Organisation tags applied to every resource through the provider's default_tags."
    )
    backend: Backend = Field(description="Where Terraform keeps state: s3 (default), cloud or local.")
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    cluster: ClusterConfig = Field(default_factory=ClusterConfig)
    karpenter: KarpenterConfig = Field(default_factory=KarpenterConfig)
    kubernetes_auth: KubernetesAuthConfig = Field(default_factory=KubernetesAuthConfig)
    preflight: PreflightConfig = Field(default_factory=PreflightConfig)
    deployer: DeployerConfig = Field(default_factory=DeployerConfig)
    emulator: EmulatorConfig = Field(default_factory=EmulatorConfig)

    @model_validator(mode="after")
    def _cross_layer(self, info: ValidationInfo) -> StackConfig:
        for az in self.network.availability_zones:
            if not az.startswith(self.region):
                raise ValueError(f"availability zone {az} is not in region {self.region}; use {self.region}a, {self.region}b, ...")
        problem = version_problem(self, _today(info))
        if problem:
            raise ValueError(problem)
        if self.deployer.terraform_cloud is not None and self.backend.type != "cloud":
            raise ValueError(
                f"deployer.terraform_cloud needs backend.type cloud (its organization, workspace and hostname are what "
                f"the role trusts), not {self.backend.type}; set backend to cloud or remove deployer.terraform_cloud")
        if self.karpenter.replicas is not None and self.karpenter.replicas > self.cluster.node_min_size:
            raise ValueError(
                f"karpenter.replicas {self.karpenter.replicas} > cluster.node_min_size {self.cluster.node_min_size}: "
                "the chart puts one replica per node, so extra replicas never schedule; lower replicas or raise node_min_size"
            )
        resources = self.karpenter.controller_resources
        problem = controller_fit_problem(self.cluster, resources.millicores, resources.mebibytes)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def karpenter_replicas(self) -> int:
        return self.karpenter.replicas or min(2, self.cluster.node_min_size)

    @property
    def node_release_version(self) -> str:
        """The controller node group's AMI release version: karpenter.ami_alias's release (checked by the guard)."""
        return versions.node_release_version(self.karpenter.ami_alias, self.cluster.version) or ""  # "": EKS's newest

    @property
    def addon_versions(self) -> dict[str, str]:
        """The EKS add-on versions for cluster.version: the pins with cluster.addon_versions over them."""
        return versions.addon_versions(self.cluster.version, self.cluster.addon_versions)

    @property
    def pod_identity(self) -> bool:
        """Whether the platform's controllers get their AWS credentials through EKS Pod Identity (else IRSA)."""
        return self.cluster.pod_credentials == "pod_identity"

    @property
    def deployer_roles(self) -> dict[str, str]:
        """``{kind: role name}`` of the roles the state-bootstrap stack makes for this environment
        (``terraform_cloud``, ``terraform_cloud_plan``, ``github``)."""
        roles = {}
        if self.deployer.terraform_cloud is not None:
            roles["terraform_cloud"] = names.derived("deployer_tfc_role", self.name)
            if self.deployer.terraform_cloud.plan_role:
                roles["terraform_cloud_plan"] = names.derived("planner_tfc_role", self.name)
        if self.deployer.github is not None:
            roles["github"] = names.derived("deployer_github_role", self.name)
        return roles

    @property
    def kubernetes_auth_mode(self) -> str:
        if self.kubernetes_auth.mode:
            return self.kubernetes_auth.mode
        return "token" if self.backend.type == "cloud" else "exec"


# ----------------------------------------------------------------------------- versions


def version_problem(cfg: StackConfig, today: _dt.date) -> str | None:
    """Why the cluster, Karpenter and AMI versions cannot run together (or be created) on ``today``,
    in one line naming the fix; None when they can."""
    k8s, karpenter, alias = cfg.cluster.version, cfg.karpenter.version, cfg.karpenter.ami_alias
    calendar = versions.EKS_CALENDAR
    if k8s not in calendar:
        known = list(calendar)
        return (f"cluster.version {k8s} is not in the EKS calendar this platform knows ({known[0]} to {known[-1]}, "
                f"model/versions.py); use {versions.DEFAULT_KUBERNETES}, or add the version there with its support dates")
    newest = (versions.standard_support_versions(today) or [versions.DEFAULT_KUBERNETES])[-1]
    if today < calendar[k8s].released:
        return f"cluster.version {k8s} is not on EKS before {calendar[k8s].released}; use {newest}"
    state = versions.support_state(k8s, today)
    if state == "ended" and not cfg.cluster.allow_past_end_of_support:
        return (f"cluster.version {k8s} reached the end of EKS extended support on {calendar[k8s].extended_end}, so EKS "
                f"creates no such cluster; use {newest}, or, to plan an "
                f"existing {k8s} cluster while you upgrade it, set cluster.allow_past_end_of_support: true")
    supported = versions.karpenter_range(karpenter)
    if supported is None:
        known = list(versions.KARPENTER)
        return (f"karpenter.version {karpenter} is not in the compatibility table this platform knows "
                f"({known[0]} to {known[-1]}, model/versions.py); use {versions.DEFAULT_KARPENTER}")
    if not versions.karpenter_released(karpenter):
        newest = versions.newest_karpenter_patch(karpenter)
        return (f"karpenter.version {karpenter} is not a Karpenter release (the {'.'.join(karpenter.split('.')[:2])}.x line "
                f"goes up to {newest}, model/versions.py), so the chart pull would fail at apply after the network "
                f"and the cluster are built; use {newest}")
    low, high = supported
    if versions.minor(k8s) > versions.minor(high):
        need = versions.karpenter_for(k8s, at_least=karpenter) or versions.DEFAULT_KARPENTER
        older = (f", or, for a new cluster, cluster.version to {high}"
                 if versions.support_state(high, today) in ("standard", "extended") else "")
        return (f"karpenter.version {karpenter} supports Kubernetes {low} to {high}, not cluster.version {k8s}; "
                f"set karpenter.version to {need} or later ({versions.DEFAULT_KARPENTER} is the release this platform "
                f"is built against){older}")
    if versions.minor(k8s) < versions.minor(low):
        return (f"karpenter.version {karpenter} supports Kubernetes {low} to {high}, not cluster.version {k8s}; "
                f"upgrade the cluster to {low} first or use an older Karpenter release")
    amis = versions.ami_release(alias)
    newest_ami = versions.newest_ami_release(k8s)
    fix = (f"use al2023@{newest_ami}" if newest_ami else
           f"add an AMI release with {k8s} AMIs to model/versions.py (the amazon-eks-ami changelog lists them)")
    if amis is None:
        return (f"karpenter.ami_alias {alias} names an AMI release this platform does not know (model/versions.py); "
                f"{fix}, or add the release there with the Kubernetes versions its changelog lists")
    if not versions.minor(amis[0]) <= versions.minor(k8s) <= versions.minor(amis[1]):
        oldest = versions.first_ami_release(k8s)
        return (f"karpenter.ami_alias {alias} has AL2023 AMIs for Kubernetes {amis[0]} to {amis[1]} only, so Karpenter "
                f"would find no AMI for {k8s} and launch no node; {fix}"
                + (f" (the oldest known release for {k8s} is {oldest})" if oldest and oldest != newest_ami else ""))
    missing = versions.missing_addon_pins(k8s, cfg.cluster.addon_versions,
                                          versions.installed_addons(cfg.pod_identity))
    if missing:
        return (f"cluster.version {k8s} has no pinned version of the EKS add-ons {', '.join(missing)} "
                f"(model/versions.py); set them in cluster.addon_versions (aws eks describe-addon-versions "
                f"--kubernetes-version {k8s} lists them)")
    return None


def support_warning(cfg: StackConfig, today: _dt.date | None = None) -> str | None:
    """One line when the cluster version is in (or past) EKS extended support, or standard support
    ends within the warning window, naming the version to move to; else None."""
    today = today or _dt.date.today()
    k8s = cfg.cluster.version
    ami = None
    if not cfg.node_release_version:
        known = ", ".join(f"al2023@{r}" for r in versions.AMI_RELEASE_VERSIONS)
        ami = (f"warning: {cfg.name}: the controller node group cannot follow karpenter.ami_alias "
               f"{cfg.karpenter.ami_alias} (its node group release version for Kubernetes {k8s} is not in "
               f"model/versions.py AMI_RELEASE_VERSIONS): it gets EKS's newest AMI at creation and moves only with "
               f"cluster.version; use {known} to keep every node on one release.")
    version = _version_warning(cfg, today)
    return "\n".join(w for w in (version, ami, private_endpoint_warning(cfg)) if w) or None


def private_endpoint_warning(cfg: StackConfig) -> str | None:
    """One line when a Terraform Cloud environment turns the public API endpoint off (else None): Terraform
    Cloud's own runners are outside every VPC, so after that apply every plan needs an agent pool inside it.
    The stack says the same at every plan (a ``check`` block, constructs/cluster.py)."""
    if cfg.backend.type != "cloud" or cfg.cluster.endpoint_public_access:
        return None
    return f"warning: {cfg.name}: {PRIVATE_ENDPOINT_WARNING}."


def _version_warning(cfg: StackConfig, today: _dt.date) -> str | None:
    k8s = cfg.cluster.version
    cal = versions.EKS_CALENDAR.get(k8s)
    if cal is None:
        return None
    newest = versions.standard_support_versions(today)
    target = newest[-1] if newest else None
    move = ""
    if target and versions.minor(target) > versions.minor(k8s):
        steps = versions.minor(target)[1] - versions.minor(k8s)[1]
        move = f"; move to {target} one minor version at a time ({steps} step{'s' * (steps > 1)}, see README 'Versions')"
    state = versions.support_state(k8s, today)
    if state == "ended":
        what = (f"reached the end of EKS extended support on {cal.extended_end}: AWS creates no new {k8s} clusters "
                f"and auto-upgrades existing ones")
    elif state == "extended":
        what = f"is in EKS extended support (extra per-hour price) since {cal.standard_end}, until {cal.extended_end}"
    elif (cal.standard_end - today).days <= versions.STANDARD_SUPPORT_WARNING_DAYS:
        what = f"leaves EKS standard support on {cal.standard_end}"
        if cfg.cluster.support_type == "STANDARD":
            what += " and the upgrade policy STANDARD lets AWS upgrade the control plane by itself then"
    else:
        return None
    return f"warning: {cfg.name}: Kubernetes {k8s} {what}{move}."


# ----------------------------------------------------------------------------- loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise ConfigError(f"line {line}: key {key!r} appears twice in the same section (first on line "
                                  f"{seen[key]}); keep one")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def _loc(loc: tuple[Any, ...]) -> str:
    """``("backend", "s3", "bucket")`` -> ``backend.bucket``: the backend's kind tag and pydantic's
    validator and ``[key]`` steps are not part of the path the user wrote."""
    parts: list[str] = []
    for i, part in enumerate(map(str, loc)):
        if i == 1 and loc[0] == "backend" or part.startswith("function-after["):
            continue
        parts.append("(the key)" if part == "[key]" else part)
    return ".".join(parts)


_TYPE_WORDS = {
    "string_type": "must be text; put it in quotes",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be a section of key: value settings",
    "model_type": "must be a section of key: value settings",
    "model_attributes_type": "must be a section of key: value settings",
    "tuple_type": "must be a list, e.g. [a, b]",
    "list_type": "must be a list, e.g. [a, b]",
    "none_required": "must be left out",
}


_VERSION_EXAMPLES = {("cluster", "version"): versions.DEFAULT_KUBERNETES,
                     ("karpenter", "version"): versions.DEFAULT_KARPENTER}


def _message(err: Any) -> str:
    kind, ctx, value = err["type"], err.get("ctx", {}), err.get("input")
    if kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
        example = _VERSION_EXAMPLES.get(tuple(err["loc"]))
        if example:
            return (f'write the version in quotes, e.g. "{example}": unquoted, YAML reads it as the number {value} '
                    "(1.30 becomes 1.3)")
        return f"must be text; YAML read it as the number {value}, so put it in quotes"
    if kind == "extra_forbidden":
        return "unknown key; remove it or fix its spelling (see stacks/environments/schema.json)"
    if kind == "missing":
        return "is required; add it"
    if kind == "string_pattern_mismatch":
        words = FORMAT_HINTS.get(ctx["pattern"], "is not in the expected format; see the field's description in "
                                                 "stacks/environments/schema.json")
        return words(value) if callable(words) else words
    if kind == "string_too_long":
        if err["loc"] == ("name",):
            return names.too_long_message(value)
        return f"is {len(value)} characters; use at most {ctx['max_length']}"
    if kind == "string_too_short":
        return f"is too short; use at least {ctx['min_length']} characters"
    if kind == "too_short":
        return f"needs at least {ctx['min_length']} item{'s' * (ctx['min_length'] != 1)}"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}; raise it"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}; lower it"
    if kind == "union_tag_invalid":
        return f"type must be one of {ctx['expected_tags']}; pick one"
    if kind == "union_tag_not_found":
        return "needs a type (s3, cloud or local); add it"
    if kind == "literal_error":
        return f"must be one of {ctx['expected']}"
    if kind in _TYPE_WORDS:
        return _TYPE_WORDS[kind]
    if kind == "value_error":
        return str(ctx.get("error", err["msg"])).removeprefix("Value error, ")
    return "is not a valid value here; see the field's description in stacks/environments/schema.json"


def _format(path: Path, exc: ValidationError) -> str:
    lines = []
    errors = exc.errors()
    deeper = {tuple(e["loc"][:-1]) for e in errors}
    for err in errors:
        if err["type"] == "too_short" and tuple(err["loc"]) in deeper:
            continue  # a list whose items were refused: that item's line says it (one mistake, one line)
        field = _loc(err["loc"])
        value = err["input"]
        shown = "" if err["type"] == "missing" or isinstance(value, dict) else f" (got {value!r})"
        where = f"{field}{shown}: " if field else ""
        lines.append(f"{path.name}: {where}{_message(err)}")
    return "\n".join(lines)


def parse_config(raw: Any, path: Path, today: _dt.date | None = None) -> StackConfig:
    """Validate one environment's settings (already read from ``path``); ConfigError on any problem."""
    if raw is None:
        raise ConfigError(f"{path.name}: the file is empty; add at least name and backend (see stacks/environments/dev.yaml)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path.name}: expected key: value settings at the top level (name, backend, ...), "
                          f"got a {'list' if isinstance(raw, list) else 'single value'}")
    try:
        return StackConfig.model_validate(raw, context={"today": today} if today else None)
    except ValidationError as exc:
        raise ConfigError(_format(path, exc)) from None


def load_config(path: str | Path, today: _dt.date | None = None) -> StackConfig:
    """Read and validate one environment file; raise ConfigError with a one-line-per-problem message."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except ConfigError as exc:
        raise ConfigError(f"{path.name}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path.name}:{where} is not valid YAML ({getattr(exc, 'problem', exc)}); fix the syntax") from None
    return parse_config(raw, path, today)


def state_buckets(configs: dict[str, StackConfig]) -> dict[str, str]:
    """``{bucket: region}`` of every S3 backend the environments use (cloud/local need none)."""
    buckets: dict[str, str] = {}
    for config in configs.values():
        backend = config.backend
        if backend.type == "s3":
            buckets.setdefault(backend.bucket, backend.region or config.region)
    return buckets


def environment_files(directory: Path = ENVIRONMENTS_DIR) -> dict[str, Path]:
    """``{environment: path}`` for every ``*.yaml`` in the environments folder."""
    return {p.stem: p for p in sorted(directory.glob("*.yaml"))}


def _cluster_names(files: dict[str, Path]) -> dict[str, Path]:
    """``{cluster name: file}`` as the files spell ``name:`` (read, not validated: for a hint only)."""
    found = {}
    for path in files.values():
        try:
            raw = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(raw, dict) and isinstance(raw.get("name"), str):
            found.setdefault(raw["name"], path)
    return found


BOOTSTRAP_STACK = "state-bootstrap"
"""The once-per-account stack of the S3 state buckets (stacks/state_bucket.py); not an environment file."""


def load_environments(names: list[str] | tuple[str, ...] = (), directory: Path = ENVIRONMENTS_DIR,
                      today: _dt.date | None = None) -> dict[str, StackConfig]:
    """Load and validate the environments ``names`` (every file in ``directory`` when empty, or
    when the only name is ``state-bootstrap``, which needs every environment's bucket). Raises one
    ConfigError whose lines are every problem of every file, so a user fixes them in one pass."""
    files = environment_files(directory)
    where = f"{directory.name}/<name>.yaml" if directory != ENVIRONMENTS_DIR else "stacks/environments/<name>.yaml"
    wanted = [n for n in names if n != BOOTSTRAP_STACK]
    unknown = [n for n in wanted if n not in files]
    if unknown:
        clusters = _cluster_names(files)
        meant = [f"{n} is the cluster name (name:) in {clusters[n].name}: its environment is {clusters[n].stem}"
                 for n in unknown if n in clusters]
        if meant:
            raise ConfigError(f"{'; '.join(meant)}; name the environment (the file's name without .yaml), not the "
                              "cluster")
        choices = ", ".join([*files, BOOTSTRAP_STACK]) if files else "none"
        raise ConfigError(f"no environment named {', '.join(unknown)}: choose one of {choices} (each environment "
                          f"is a file {where})")
    if not files:
        raise ConfigError(f"no environment files ({where}); add one, e.g. copy stacks/environments/dev.yaml")
    configs, errors = {}, []
    for env, path in files.items():
        if wanted and env not in wanted:
            continue
        try:
            configs[env] = load_config(path, today)
        except ConfigError as exc:
            errors.append(str(exc))
    if errors:
        raise ConfigError("\n".join(errors))
    others = {}
    for env, path in files.items():  # a named run still must not collide with the files it leaves out
        if env not in configs:
            try:
                others[env] = load_config(path, today)
            except ConfigError:
                continue  # its own check reports it; a broken neighbour does not block this environment
    problems = collisions({**configs, **others}, files, wanted=set(configs))
    if problems:
        raise ConfigError("\n".join(problems))
    return configs


def state_location(env: str, config: StackConfig) -> tuple[str, ...]:
    """Where ``env``'s Terraform state lives, as the backend resolves it (the defaults filled in)."""
    backend = config.backend
    if backend.type == "s3":
        return ("s3", backend.bucket, backend.key or f"{env}/terraform.tfstate")
    if backend.type == "cloud":
        return ("cloud", backend.hostname, backend.organization, backend.workspace)
    return ("local", backend.path or f"terraform.{env}.tfstate")


def collisions(configs: dict[str, StackConfig], files: dict[str, Path], wanted: set[str] | None = None) -> list[str]:
    """One line per pair of environment files that would build or record the same thing: one cluster
    name (IAM names are global, so in any region), one state location, or one state bucket in two
    regions. Only pairs with an environment of ``wanted`` (every one when None) are reported."""
    problems: list[str] = []
    envs = list(configs)

    def pairs():
        for i, a in enumerate(envs):
            for b in envs[i + 1:]:
                if wanted is None or a in wanted or b in wanted:
                    yield a, b, configs[a], configs[b]

    for a, b, ca, cb in pairs():
        both = f"{files[a].name} and {files[b].name}"
        if ca.name == cb.name:
            shared = ", ".join(names.derived(what, ca.name) for what in names.GLOBAL[:3])
            if ca.region == cb.region:
                what = (f"both build the cluster {ca.name} in {ca.region}: two states would manage the same cluster, "
                        f"roles ({shared}, ...) and queue")
            else:
                what = (f"both name the cluster {ca.name} ({ca.region} and {cb.region}): IAM names are global to an "
                        f"account, so both would create the roles {shared}, ... and the second apply fails with "
                        "EntityAlreadyExists")
            problems.append(f"{both}: {what}; give each file its own name")
        if state_location(a, ca) == state_location(b, cb):
            where = state_location(a, ca)
            said = {"s3": lambda: f"the state object s3://{where[1]}/{where[2]}",
                    "cloud": lambda: f"the Terraform Cloud workspace {where[2]}/{where[3]}",
                    "local": lambda: f"the state file {where[1]}"}[where[0]]()
            fix = {"s3": "backend.key", "cloud": "backend.workspace", "local": "backend.path"}[where[0]]
            problems.append(f"{both}: both keep their state in {said}, so each apply would overwrite the other's "
                            f"record of what it built; give one its own {fix}")
        if ca.backend.type == cb.backend.type == "s3" and ca.backend.bucket == cb.backend.bucket:
            ra, rb = ca.backend.region or ca.region, cb.backend.region or cb.region
            if ra != rb:
                problems.append(f"{both}: the state bucket {ca.backend.bucket} is in {ra} for one and {rb} for the "
                                "other, but an S3 bucket name is global and the bucket lives in one region; set "
                                f"backend.region: {ra} in both (or use two buckets)")
    return problems


def json_schema() -> dict[str, Any]:
    """The JSON Schema of an environment file (committed as stacks/environments/schema.json)."""
    schema = StackConfig.model_json_schema(by_alias=True)
    schema["title"] = "EKS + Karpenter platform environment"
    return schema
