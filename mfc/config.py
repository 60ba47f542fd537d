"""Configuration: one object resolved from command-line flags, ``MFC_*`` environment variables,
a profile in the user's config file (``MFC_PROFILE``), then defaults. Every value remembers
where it came from (``mfc config show``).

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
from dataclasses import dataclass
from typing import Any

from mfc.exceptions import MfcError

DATASTORE_DIR = ".mfc"


@dataclass(frozen=True)
class Setting:
    key: str
    default: Any
    kind: type
    help: str

    @property
    def env(self) -> str:
        return f"MFC_{self.key.upper()}"


SETTINGS = {s.key: s for s in (
    Setting("datastore_root", None, str, "where artifacts, code and metadata live (directory or s3://bucket/prefix)"),
    Setting("datastore", None, str, "local or s3: the kind of datastore_root to use (local: the nearest .mfc "
                                    "directory when datastore_root is an s3:// URL of lower precedence)"),
    Setting("metadata", "local", str, "the metadata provider runs are recorded and listed through (local: "
                                      "records in the datastore, next to the data)"),
    Setting("max_workers", 16, int, "tasks running at the same time"),
    Setting("max_num_splits", 100, int, "the most items a foreach may fan out to"),
    Setting("user", None, str, "the user name recorded on runs (default: the login name)"),
    Setting("local_executor", "fork", str, "how local tasks start: fork (fast) or spawn (a new interpreter each)"),
    Setting("lease_interval", 5.0, float, "seconds between heartbeats of a run's driving process (0: none)"),
    Setting("lease_timeout", None, float, "seconds without a heartbeat after which a run is crashed "
                                          "(default: 4 lease intervals)"),
    Setting("package_suffixes", ".py", str, "file suffixes snapshotted into code packages (comma-separated)"),
    Setting("package_max_mb", 200, int, "refuse code packages larger than this many MB"),
    Setting("aws_region", "us-east-1", str, "AWS region for S3, Batch, ECR, Step Functions"),
    Setting("aws_endpoint_url", None, str, "one endpoint for every AWS API (a local sandbox); unset for AWS"),
    Setting("s3_endpoint_url", None, str, "S3 endpoint (any S3-compatible store); defaults to aws_endpoint_url"),
    Setting("batch_queue", None, str, "AWS Batch job queue for CPU steps"),
    Setting("batch_gpu_queue", None, str, "AWS Batch job queue for GPU steps"),
    Setting("batch_job_role", None, str, "IAM role ARN Batch jobs run as"),
    Setting("image_registry", None, str, "registry flow images are pushed to (ECR URI or host:port)"),
    Setting("ecr_keep_images", 50, int, "images an ECR repository keeps (lifecycle policy)"),
    Setting("sfn_role", None, str, "IAM role ARN Step Functions state machines run as"),
    Setting("events_role", None, str, "IAM role ARN EventBridge uses to start state machines"),
)}


def config_path() -> str:
    return os.environ.get("MFC_CONFIG") or os.path.join(os.path.expanduser("~"), ".mfc", "config.toml")


def _load_profiles() -> tuple[dict[str, Any], str]:
    path = config_path()
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

    def __init__(self, flags: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> None:
        env = dict(os.environ if env is None else env)
        profiles, path = _load_profiles()
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
            self.values["datastore_root"] = default_datastore_root()
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
            self.values["datastore_root"] = default_datastore_root()
            self.sources["datastore_root"] = f"default (nearest .mfc directory; datastore local from {source})"

    @staticmethod
    def _convert(setting: Setting, value: Any, source: str) -> Any:
        if value is None or isinstance(value, setting.kind):
            return value
        try:
            return setting.kind(value)
        except (TypeError, ValueError):
            raise MfcError(f"{setting.key} from {source}: expected {setting.kind.__name__}, got {value!r}") from None

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def datastore_root(self) -> str:
        root = self.values["datastore_root"]
        return root if "://" in root else os.path.abspath(root)


def _login_name() -> str:
    for var in ("MFC_USER", "USER", "USERNAME", "LOGNAME"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no passwd entry in some containers
        return "unknown"
