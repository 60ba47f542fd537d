"""Pushing flow images: ``<registry>/mfc-flow-<name>:<tag>``, the local image's tag (a hash of its
inputs), built on demand and pushed only when the registry lacks it.

Any registry ``host[:port][/namespace]`` works (the sandbox's is a plain one on 127.0.0.1). An ECR
registry (``<account>.dkr.ecr.<region>.amazonaws.com``) also gets its repository made (scan on push,
lifecycle policy) and a docker login from an ECR token (:mod:`mfc.builder.ecr`).

Whether to push is decided without docker: the registry is asked (``HEAD /v2/<repo>/manifests/<tag>``,
or ECR ``describe_images``); where it cannot say (authentication needed), the state file
(``images.json``, section ``pushed``, keyed by registry and image id) answers. Push progress shows
by :mod:`mfc.builder.push_progress`.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from mfc.builder.ecr import DEFAULT_KEEP_IMAGES, EcrRegistry, parse_ecr_host
from mfc.builder.image import LABEL_PREFIX, FlowImage, ImageState, build_flow_image
from mfc.builder.push_progress import SANDBOX_HINT, PushOutcome, docker_push
from mfc.exceptions import MfcError, warn

PUSH_TIMEOUT_S = 3600
CHECK_TIMEOUT_S = 10.0
_MANIFEST_TYPES = ", ".join((
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
))
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"^(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:]+\])(?::(\d{{1,5}}))?$")
_PATH_PART = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


@dataclass(frozen=True)
class Registry:
    """Where images go: ``host[:port]``, an optional namespace (``team/ml``), ECR details if ECR."""

    host: str
    namespace: str = ""
    ecr: EcrRegistry | None = None

    def __str__(self) -> str:
        return f"{self.host}/{self.namespace}" if self.namespace else self.host

    def repository(self, name: str) -> str:
        """The repository path of image ``name`` in this registry (namespace included)."""
        return f"{self.namespace}/{name}" if self.namespace else name

    @property
    def local(self) -> bool:
        """Whether the registry is on this machine (where docker talks plain HTTP to it)."""
        hostname = self.host.rsplit(":", 1)[0] if not self.host.startswith("[") else self.host.split("]")[0] + "]"
        return hostname in ("localhost", "[::1]") or hostname.startswith("127.")

    @property
    def base_url(self) -> str:
        return f"{'http' if self.local else 'https'}://{self.host}"


def parse_registry(value: str, source: str = "--registry") -> Registry:
    """``host[:port][/namespace]`` (an ECR URI is one) as a :class:`Registry`; one-line error otherwise."""
    text = value.strip().rstrip("/")
    if "://" in text:
        raise MfcError(f"{source} {value}: give the registry as HOST[:PORT][/NAMESPACE], without "
                       f"{text.split('://')[0]}://")
    host, _, namespace = text.partition("/")
    match = _HOST.match(host)
    if not match or (match.group(1) and not 0 < int(match.group(1)) < 65536):
        raise MfcError(f"{source} {value}: {host or 'nothing'} is not a registry host[:port]")
    if "." not in host and ":" not in host and host != "localhost":
        raise MfcError(f"{source} {value}: {host} is not a registry host (docker would read it as a Docker Hub "
                       f"user; for Docker Hub give docker.io/{host})")
    bad = [part for part in namespace.split("/") if not _PATH_PART.match(part)] if namespace else []
    if bad:
        raise MfcError(f"{source} {value}: namespace part {bad[0]!r} is not a valid repository name "
                       "(lower-case letters, digits, and . _ - between them)")
    return Registry(host.lower(), namespace, parse_ecr_host(host))


def resolve_registry(registry: str | None, config: Any = None) -> Registry:
    """``registry`` (a flag) or the ``image_registry`` setting, parsed; an error naming both when neither."""
    if registry:
        return parse_registry(registry)
    if config is None:
        from mfc.config import Config

        config = Config()
    if not config["image_registry"]:
        raise MfcError("no image registry: pass --registry HOST[:PORT][/NAMESPACE] or set image_registry "
                       "(MFC_IMAGE_REGISTRY or the config file)", hint=f"for a local one, {SANDBOX_HINT}")
    return parse_registry(config["image_registry"], f"image_registry (from {config.sources['image_registry']})")


def remote_status(registry: Registry, repository: str, tag: str,
                  timeout: float = CHECK_TIMEOUT_S) -> tuple[str, str]:
    """Ask a registry for ``repository:tag``: ``("present", digest)``, ``("absent", "")``,
    ``("unreachable", why)`` (connection refused), or ``("unknown", why)`` (e.g. it wants a login)."""
    request = urllib.request.Request(f"{registry.base_url}/v2/{repository}/manifests/{tag}", method="HEAD",
                                     headers={"Accept": _MANIFEST_TYPES})
    # A local registry is reached directly, whatever proxy the environment names (as docker does).
    handlers = [urllib.request.ProxyHandler({})] if registry.local else []
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=timeout) as resp:
            return "present", resp.headers.get("Docker-Content-Digest") or ""
    except urllib.error.HTTPError as exc:
        return ("absent", "") if exc.code == 404 else ("unknown", f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, ConnectionRefusedError):
            return "unreachable", "connection refused"
        return "unknown", " ".join(str(reason).split())[:200]


@dataclass
class PushResult:
    """What :func:`push_flow_image` did. ``status``: ``pushed`` (docker pushed it now), ``present`` (the
    registry has the tag: no docker call), ``cached`` (the registry could not be asked and the state
    file says this image was pushed there: no docker call)."""

    ref: str
    image: FlowImage
    registry: Registry
    status: str
    digest: str = ""
    seconds: float = 0.0
    layers_pushed: int = 0
    layers_existing: int = 0
    bytes_sent: int = 0


def _remote_ref(registry: Registry, image: str) -> tuple[str, str, str]:
    """``(repository, tag, remote reference)`` of local image ``mfc-flow-<name>:<tag>`` in ``registry``."""
    name, _, tag = image.rpartition(":")
    repository = registry.repository(name)
    return repository, tag, f"{registry.host}/{repository}:{tag}"


def push_flow_image(flow_file: str, flow_name: str | None = None, gpu: bool = False, registry: str | None = None,
                    quiet: bool = False, *, base: str | None = None, refresh: bool = False,
                    ca_bundle: str | Path | None = None, keep_images: int | None = None, config: Any = None,
                    state: ImageState | None = None, stream: TextIO | None = None) -> PushResult:
    """Push the flow's image (built first when missing) to ``registry`` or the ``image_registry`` setting.

    No docker call when the registry already has the tag. ``keep_images``: the ECR lifecycle policy's
    count (default: the ``ecr_keep_images`` setting if there is one, else 50). Progress goes to
    ``stream`` (stderr): a live line on a terminal, plain lines otherwise, nothing when ``quiet``.
    """
    started = time.monotonic()
    if config is None:
        from mfc.config import Config

        config = Config()
    target = resolve_registry(registry, config)
    state = state or ImageState()
    build_args: dict[str, Any] = {"base": base, "ca_bundle": ca_bundle, "state": state, "stream": stream}
    built = build_flow_image(flow_file, flow_name, gpu, quiet, refresh=refresh, **build_args)
    repository, tag, ref = _remote_ref(target, built.image)
    ecr = _Ecr(target, config, keep_images) if target.ecr else None
    if ecr is not None:
        digest = ecr.digest(repository, tag)
        answer = "present" if digest is not None else "absent"
    else:
        answer, digest = remote_status(target, repository, tag)
        if answer == "unreachable" and target.local:
            raise MfcError(f"cannot push {ref}: the registry {target.host} does not answer ({digest})",
                           hint=SANDBOX_HINT)
    known = state.get("pushed", f"{target}|{built.image_id}")
    result = PushResult(ref, built, target, "present", digest or "")
    if answer in ("unknown", "unreachable") and known and known.get("ref") == ref:
        result.status, result.digest = "cached", str(known.get("digest") or "")
    elif answer != "present":
        credentials = ecr.prepare(repository) if ecr is not None else None
        built, outcome = _push(built, target, credentials, quiet, stream,
                               rebuild=lambda: build_flow_image(flow_file, flow_name, gpu, quiet, refresh=True,
                                                                **build_args))
        repository, tag, ref = _remote_ref(target, built.image)
        result = PushResult(ref, built, target, "pushed", outcome.digest, 0.0, outcome.layers_pushed,
                            outcome.layers_existing, outcome.bytes_sent)
    state.set("pushed", f"{target}|{built.image_id}", {"ref": ref, "digest": result.digest})
    state.save()
    result.seconds = time.monotonic() - started
    return result


def ensure_pushed(flow_file: str, flow_name: str | None = None, gpu: bool = False, registry: str | None = None,
                  quiet: bool = False) -> str:
    """The remote reference of the flow's image in ``registry`` (or ``image_registry``), building
    and pushing only what is missing. Cheap when nothing changed: no pip and no docker call, one
    request to the registry. For the Batch executor."""
    result = push_flow_image(flow_file, flow_name, gpu, registry, quiet)
    if not quiet:
        for note in result.image.notes:
            warn(note)
    return result.ref


def _push(built: FlowImage, target: Registry, credentials: Any, quiet: bool, stream: TextIO | None,
          rebuild: Callable[[], FlowImage]) -> tuple[FlowImage, PushOutcome]:
    """``docker push`` the image, rebuilt first when it is no longer on the engine (removed since
    the state file saw it)."""
    import docker.errors

    from mfc.builder import engine

    client = engine.docker_client(timeout=PUSH_TIMEOUT_S)
    try:
        try:
            local = client.images.get(built.image)
        except docker.errors.ImageNotFound:
            local = None
        if local is None or (local.labels or {}).get(LABEL_PREFIX + "digest") != built.inputs.digest:
            built = rebuild()
        else:
            built.image_id = local.id
        _, _, ref = _remote_ref(target, built.image)
        return built, docker_push(client, built.image_id, ref, credentials, quiet, stream, target.local)
    finally:
        client.close()


class _Ecr:
    """The ECR calls of one push, with one client made on first use."""

    def __init__(self, registry: Registry, config: Any, keep_images: int | None) -> None:
        assert registry.ecr is not None
        self.info = registry.ecr
        self.config = config
        configured = config.values.get("ecr_keep_images")  # a setting the config may grow
        self.keep = int(keep_images or configured or DEFAULT_KEEP_IMAGES)
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from mfc.builder.ecr import ecr_client

            self._client = ecr_client(self.info.region, self.config)
        return self._client

    def digest(self, repository: str, tag: str) -> str | None:
        from mfc.builder.ecr import already_pushed

        return already_pushed(self.client, repository, tag, self.info.account)

    def prepare(self, repository: str) -> Any:
        """Make the repository if missing; the docker login credentials."""
        from mfc.builder.ecr import ensure_repository, login_credentials

        ensure_repository(self.client, repository, self.keep, self.info.account)
        return login_credentials(self.client, self.info.account)
