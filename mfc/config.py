"""Configuration: one object resolved from command-line flags, ``MFC_*`` environment variables,
a profile in the user's config file (``MFC_PROFILE``), then defaults. Every value remembers
where it came from (``mfc config show``).

Every option of ``mfc run``/``mfc resume`` is a setting (its ``flag``), except the arguments of one
invocation (:data:`RUN_ARGUMENTS`: tags, ``--run-id-file``, ``--with``) and which run to resume.
Values are checked the same whatever their source; the runner's typed settings
(:mod:`mfc.runner.settings`) are built from this object.

Config file: ``$MFC_CONFIG`` or ``~/.mfc/config.toml``::

    [profiles.default]
    max_workers = 8

    [profiles.sandbox]
    datastore_root = "s3://mfc-sandbox/data"
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mfc.exceptions import MfcError

DATASTORE_DIR = ".mfc"


@dataclass(frozen=True)
class Setting:
    """One setting: its type, default and, for those ``mfc run`` takes, its flag (``flag``; the
    option's name is the flag's, ``--max-workers`` -> ``max_workers``). ``minimum`` (excluded with
    ``exclusive``) is checked for every source, flags included."""

    key: str
    default: Any
    kind: type
    help: str
    flag: str | None = None
    minimum: float | None = None
    exclusive: bool = False

    @property
    def env(self) -> str:
        return f"MFC_{self.key.upper()}"

    @property
    def option(self) -> str | None:
        """The click parameter name of :attr:`flag`."""
        return self.flag.lstrip("-").replace("-", "_") if self.flag else None


SETTINGS = {s.key: s for s in (
    Setting("datastore_root", None, str, "where artifacts, code and metadata live (directory or s3://bucket/prefix)"),
    Setting("datastore", None, str, "local or s3: the kind of datastore_root to use (local: the nearest .mfc "
                                    "directory when datastore_root is an s3:// URL of lower precedence)"),
    Setting("metadata", "local", str, "the metadata provider runs are recorded and listed through (local: "
                                      "records in the datastore, next to the data; service: also in the metadata "
                                      "service at service_url)", "--metadata"),
    Setting("service_url", None, str, "the metadata service's URL (metadata = \"service\"), e.g. http://127.0.0.1:8642"),
    Setting("service_token", None, str, "the metadata service token runs and readers present (mfc service token create)"),
    Setting("service_fallback", False, bool, "with metadata = \"service\": record in the datastore only, after a "
                                             "warning, when the service cannot be reached at the start"),
    Setting("max_workers", 16, int, "tasks running at the same time", "--max-workers", 1),
    Setting("max_num_splits", 100, int, "the most items a foreach may fan out to", "--max-num-splits", 1),
    Setting("quiet", False, bool, "print only a run's result", "--quiet"),
    Setting("local_docker", None, str, "steps run in the flow's image on the local Docker engine "
                                       "(* for every step, or step,step)", "--local-docker"),
    Setting("batch", None, str, "steps run as AWS Batch jobs (* for every step, or step,step; "
                                "@batch steps do on an S3 datastore)", "--batch"),
    Setting("image", None, str, "image for containerised steps (default: the flow image, built when missing)",
            "--image"),
    Setting("gpu_image", None, str, "image for GPU steps on Batch (default: image, else the flow's GPU image)",
            "--gpu-image"),
    Setting("gpu", 0, int, "GPUs for each containerised or Batch task", "--gpu", 0),
    Setting("cpu", None, float, "vCPUs for each Batch job (at least)", "--cpu", 0, True),
    Setting("memory", None, int, "MiB of memory for each Batch job (at least)", "--memory", 4),
    Setting("user", None, str, "the user name recorded on runs (default: the login name)"),
    Setting("local_executor", "fork", str, "how local tasks start: fork (fast) or spawn (a new interpreter each)"),
    Setting("lease_interval", 5.0, float, "seconds between heartbeats of a run's driving process (0: none)"),
    Setting("lease_timeout", None, float, "seconds without a heartbeat after which a run is crashed "
                                          "(default: 4 lease intervals)"),
    Setting("keep_containers", False, bool, "keep each task's container after it ends (debugging)"),
    Setting("package_suffixes", ".py", str, "file suffixes snapshotted into code packages (comma-separated)"),
    Setting("package_max_mb", 200, int, "refuse code packages larger than this many MB"),
    Setting("aws_region", "us-east-1", str, "AWS region for S3, Batch, ECR, Step Functions"),
    Setting("aws_endpoint_url", None, str, "one endpoint for every AWS API (a local sandbox); unset for AWS"),
    Setting("s3_endpoint_url", None, str, "S3 endpoint (any S3-compatible store); defaults to aws_endpoint_url"),
    Setting("batch_queue", None, str, "AWS Batch job queue for CPU steps (--queue: for every step)", "--queue"),
    Setting("batch_gpu_queue", None, str, "AWS Batch job queue for GPU steps (--queue: for every step)", "--queue"),
    Setting("batch_runnable_timeout", 600.0, float, "seconds a Batch job may wait RUNNABLE before it is "
                                                     "terminated with the likely reasons", None, 0, True),
    Setting("batch_job_role", None, str, "IAM role ARN Batch jobs run as"),
    Setting("image_registry", None, str, "registry flow images are pushed to (ECR URI or host:port)"),
    Setting("ecr_keep_images", 50, int, "images an ECR repository keeps (lifecycle policy)", None, 1),
    Setting("sfn_role", None, str, "IAM role ARN Step Functions state machines run as"),
    Setting("events_role", None, str, "IAM role ARN EventBridge uses to start state machines"),
    Setting("service_db", None, str, "the metadata service's database URL (sqlite:///PATH or "
                                     "postgresql://USER:PASSWORD@HOST:PORT/NAME; default: service.db in the "
                                     "local datastore)"),
    Setting("aws_stack", None, str, "the CloudFormation stack this profile's resources come from "
                                    "(`mfc configure --from-stack`; `mfc doctor` checks it)"),
)}


# Options of ``mfc run``/``mfc resume`` that are not settings: they describe one invocation, not a
# preference worth keeping in a profile or the environment.
RUN_ARGUMENTS = {
    "tags": "tags of this run (user tags; system tags are added)",
    "run_id_file": "where this invocation writes its run id",
    "with_decorators": "decorators added to this run's steps",
    "environment": "Metaflow's --environment (local, pypi, conda): accepted; the decorators are honoured whatever it says",
}
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def config_flags(options: dict[str, Any]) -> dict[str, Any]:
    """The command-line values of settings, by setting key, from click's option values (one flag
    may set several settings: ``--queue`` names the queue of CPU and GPU steps alike)."""
    return {s.key: options[s.option] for s in SETTINGS.values()
            if s.option is not None and options.get(s.option) is not None}


def config_path(env: Mapping[str, str] | None = None) -> str:
    """The user's config file: ``MFC_CONFIG`` of ``env``, else of this process's environment,
    else ``~/.mfc/config.toml``."""
    return ((env or {}).get("MFC_CONFIG") or os.environ.get("MFC_CONFIG")
            or os.path.join(os.path.expanduser("~"), ".mfc", "config.toml"))


def _load_profiles(env: Mapping[str, str]) -> tuple[dict[str, Any], str]:
    path = config_path(env)
    if not os.path.exists(path):
        return {}, path
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, ValueError) as exc:
        raise MfcError(f"config file {path}: {exc}") from None
    return data.get("profiles", {}), path


def default_datastore_root(start: str | None = None) -> str:
    """The nearest existing ``.mfc`` directory from the current directory upwards, else ``./.mfc``."""
    here = os.path.abspath(start or os.getcwd())
    probe = here
    while True:
        candidate = os.path.join(probe, DATASTORE_DIR)
        if os.path.isdir(candidate):
            return candidate
        parent = os.path.dirname(probe)
        if parent == probe:
            return os.path.join(here, DATASTORE_DIR)
        probe = parent


class Config:
    """Resolved settings with their sources."""

    def __init__(self, flags: dict[str, Any] | None = None, env: dict[str, str] | None = None,
                 cwd: str | None = None) -> None:
        """``env``: the environment to resolve from (default: this process's); ``cwd``: the
        directory a local datastore root is found from and relative to (default: the current one)."""
        env = dict(os.environ if env is None else env)
        self._cwd = cwd
        profiles, path = _load_profiles(env)
        profile_name = env.get("MFC_PROFILE") or "default"
        if profile_name != "default" and profile_name not in profiles:
            raise MfcError(f"MFC_PROFILE={profile_name}: no such profile in {path} (found: {', '.join(profiles) or 'none'})")
        profile = profiles.get(profile_name, {})
        unknown = sorted(set(profile) - set(SETTINGS))
        if unknown:
            raise MfcError(f"{path}: profile {profile_name!r} has unknown setting {unknown[0]!r} (known: {', '.join(SETTINGS)})")
        self.values: dict[str, Any] = {}
        self.sources: dict[str, str] = {}
        self._levels: dict[str, int] = {}  # where a value came from: 3 flag, 2 env, 1 profile, 0 default
        for key, setting in SETTINGS.items():
            if flags and flags.get(key) is not None:
                value, source, level = flags[key], "command line", 3
            elif env.get(setting.env):
                value, source, level = env[setting.env], f"env {setting.env}", 2
            elif key in profile:
                value, source, level = profile[key], f"profile {profile_name} ({path})", 1
            else:
                value, source, level = setting.default, "default", 0
            self.values[key] = self._convert(setting, value, source)
            self.sources[key] = source
            self._levels[key] = level
        if self.values["datastore_root"] is None:
            self.values["datastore_root"] = default_datastore_root(self._cwd)
            self.sources["datastore_root"] = "default (nearest .mfc directory)"
        if self.values["datastore"] is not None:
            self._select_datastore(self.values["datastore"])
        if self.values["user"] is None:
            self.values["user"] = _login_name()
            self.sources["user"] = "default (login name)"

    def _select_datastore(self, kind: str) -> None:
        """Apply ``datastore`` (Metaflow's ``--datastore``): s3 needs an s3:// root; local picks the
        nearest .mfc directory over an s3:// root given with less precedence."""
        source, root = self.sources["datastore"], self.values["datastore_root"]
        if kind not in ("local", "s3"):
            raise MfcError(f"datastore from {source}: expected local or s3, got {kind!r}")
        remote = root.startswith("s3://")
        if kind == "s3" and not remote:
            raise MfcError(f"datastore s3 ({source}) needs an s3:// datastore root, but it is {root} "
                           f"({self.sources['datastore_root']})",
                           hint="pass --datastore-root s3://BUCKET/PREFIX, or set datastore_root in the profile "
                                "(`mfc sandbox up` writes one: MFC_PROFILE=sandbox)")
        if kind == "local" and remote:
            if self._levels["datastore_root"] >= self._levels["datastore"]:
                raise MfcError(f"datastore local ({source}) contradicts datastore_root {root} "
                               f"({self.sources['datastore_root']})",
                               hint="drop one of them, or give the local directory as the datastore root")
            self.values["datastore_root"] = default_datastore_root(self._cwd)
            self.sources["datastore_root"] = f"default (nearest .mfc directory; datastore local from {source})"

    @staticmethod
    def _convert(setting: Setting, value: Any, source: str) -> Any:
        if value is None:
            return None
        what = f"{setting.key} from {source}"
        if setting.kind is bool:
            text = str(value).strip().lower()
            if isinstance(value, bool) or text in _TRUE | _FALSE:
                return value if isinstance(value, bool) else text in _TRUE
            raise MfcError(f"{what}: expected true or false, got {value!r}")
        if isinstance(value, bool) and setting.kind is not str:  # TOML true is no number of workers
            raise MfcError(f"{what}: expected {setting.kind.__name__}, got {value!r}")
        try:
            converted: Any = value if isinstance(value, setting.kind) else setting.kind(value)
        except (TypeError, ValueError):
            raise MfcError(f"{what}: expected {setting.kind.__name__}, got {value!r}") from None
        low = setting.minimum
        if low is not None and (converted < low or (setting.exclusive and converted == low)):
            raise MfcError(f"{what}: expected a number {'above' if setting.exclusive else 'of at least'} "
                           f"{low:g}, got {value!r}")
        return converted

    def given(self, key: str) -> bool:
        """Whether ``key`` was given on the command line (not the environment, a profile or a default)."""
        return self._levels[key] == 3

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def datastore_root(self) -> str:
        root = self.values["datastore_root"]
        return root if "://" in root else os.path.abspath(os.path.join(self._cwd or os.getcwd(), root))


def _login_name() -> str:
    for var in ("MFC_USER", "USER", "USERNAME", "LOGNAME"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"
