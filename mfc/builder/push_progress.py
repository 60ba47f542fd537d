"""Following a ``docker push``: its layers (pushed, already there), bytes sent, digest and failure.

:class:`PushLog` reads the engine's JSON stream (``{"status": "Pushing", "id": ..., "progressDetail":
{"current", "total"}}``, ``Pushed``, ``Layer already exists``, ``Mounted from ...``, ``{"aux":
{"Digest": ...}}``, ``{"error": ...}``) into layer states; a reporter shows them: a rich live line
on a terminal, plain lines otherwise, nothing when quiet. A failed push becomes one
:class:`MfcError` that says what to do (start the registry, log in, ...).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from mfc.builder.progress import Reporter
from mfc.exceptions import MfcError

SANDBOX_HINT = "start the sandbox's registry with `mfc sandbox up`, then `export MFC_PROFILE=sandbox`"
_UNREACHABLE = ("connection refused", "no such host", "i/o timeout", "network is unreachable", "no route to host",
                "connection reset")
_DENIED = ("no basic auth credentials", "unauthorized", "authentication required", "denied", "forbidden")


def human_size(n: float) -> str:
    """``n`` bytes in decimal units, as docker shows them (``12.3 MB``)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover - the loop returns


@dataclass
class Layer:
    """One layer of the image as the push goes."""

    id: str
    status: str = "waiting"  # waiting, pushing, pushed, exists
    current: int = 0
    total: int = 0
    detail: str = ""

    @property
    def sent(self) -> int:
        if self.status == "exists":
            return 0
        return max(self.current, self.total if self.status == "pushed" else 0)


class PushReporter(Reporter):
    """Plain lines: a title, each layer when done, the result."""

    def layer_done(self, layer: Layer) -> None:
        if layer.status == "pushed":
            self.write(f"  {layer.id}: pushed{f' ({human_size(layer.sent)})' if layer.sent else ''}")
        else:
            self.write(f"  {layer.id}: {layer.detail or 'already in the registry'}")

    def progress(self, log: PushLog) -> None:
        """Called for every chunk of the stream (a live display redraws here)."""


class QuietPushReporter(PushReporter):
    """Shows nothing."""

    def write(self, text: str) -> None:
        pass


class RichPushReporter(PushReporter):
    """A spinner with layers done, bytes sent and time; each finished layer printed above it."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=self.stream)
        self.log: PushLog | None = None
        self.started = time.monotonic()
        self.live = Live(self, console=self.console, refresh_per_second=8, transient=True)

    def __rich__(self) -> Any:
        from rich.spinner import Spinner
        from rich.text import Text

        elapsed = time.monotonic() - self.started
        if self.log is None or not self.log.layers:
            return Spinner("dots", Text(f"preparing the push ({elapsed:.1f}s)"))
        log = self.log
        return Spinner("dots", Text(f"{log.done}/{len(log.layers)} layers done, {human_size(log.bytes_sent)} sent "
                                    f"({elapsed:.1f}s)"))

    def write(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def begin(self, title: str) -> None:
        self.write(title)
        self.started = time.monotonic()
        self.live.start()

    def layer_done(self, layer: Layer) -> None:
        note = human_size(layer.sent) if layer.status == "pushed" else layer.detail or "already in the registry"
        self.console.print(f"  [green]✓[/green] {layer.id} [dim]({note})[/dim]", highlight=False)

    def progress(self, log: PushLog) -> None:
        self.log = log

    def stop(self) -> None:
        if self.live.is_started:
            self.live.stop()


def make_push_reporter(quiet: bool = False, stream: TextIO | None = None) -> PushReporter:
    """Nothing when ``quiet``, a rich live display on a terminal, plain lines otherwise (stderr)."""
    stream = stream or sys.stderr
    if quiet:
        return QuietPushReporter(stream)
    return RichPushReporter(stream) if stream.isatty() else PushReporter(stream)


class PushLog:
    """The state of one push, fed chunk by chunk from the engine's decoded JSON stream."""

    def __init__(self, reporter: PushReporter) -> None:
        self.reporter = reporter
        self.layers: dict[str, Layer] = {}
        self.digest = ""
        self.error = ""

    @property
    def done(self) -> int:
        return sum(1 for layer in self.layers.values() if layer.status in ("pushed", "exists"))

    @property
    def pushed(self) -> int:
        return sum(1 for layer in self.layers.values() if layer.status == "pushed")

    @property
    def existing(self) -> int:
        return sum(1 for layer in self.layers.values() if layer.status == "exists")

    @property
    def bytes_sent(self) -> int:
        return sum(layer.sent for layer in self.layers.values())

    def feed(self, chunk: dict[str, Any]) -> None:
        """Take one decoded chunk of the push stream."""
        if chunk.get("error") or chunk.get("errorDetail"):
            detail = chunk.get("errorDetail") or {}
            self.error = " ".join(str(chunk.get("error") or detail.get("message") or "unknown error").split())
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            self.digest = str(aux["Digest"])
        layer_id, status = chunk.get("id"), str(chunk.get("status") or "")
        if layer_id and status:
            layer = self.layers.setdefault(str(layer_id), Layer(str(layer_id)))
            if status == "Pushing":
                detail = chunk.get("progressDetail") or {}
                layer.status = "pushing"
                layer.current = max(layer.current, int(detail.get("current") or 0))
                layer.total = max(layer.total, int(detail.get("total") or 0))
            elif status in ("Pushed", "Layer already exists") or status.startswith("Mounted from"):
                if layer.status not in ("pushed", "exists"):
                    layer.status = "pushed" if status == "Pushed" else "exists"
                    layer.detail = status.lower() if status.startswith("Mounted") else ""
                    self.reporter.layer_done(layer)
        self.reporter.progress(self)


def push_error(ref: str, host: str, message: str, local: bool, ecr: bool = False) -> MfcError:
    """One line for a failed push of ``ref``: what went wrong and how to fix it."""
    text = " ".join(message.split())
    short = text if len(text) <= 300 else text[:297] + "..."
    low = text.lower()
    if "server gave http response to https client" in low:
        return MfcError(f"cannot push {ref}: {host} speaks plain HTTP and the engine wants HTTPS",
                        hint=f'add "{host}" to "insecure-registries" in /etc/docker/daemon.json and restart dockerd')
    if any(s in low for s in _UNREACHABLE):
        return MfcError(f"cannot push {ref}: the registry {host} does not answer: {short}",
                        hint=SANDBOX_HINT if local else "check the registry address and the network")
    if any(s in low for s in _DENIED):
        hint = ("check that your AWS identity may push to this ECR repository" if ecr
                else f"log in with `docker login {host}`")
        return MfcError(f"the registry {host} refused the push of {ref}: {short}", hint=hint)
    return MfcError(f"push of {ref} failed: {short}")


def login_error(host: str, message: str) -> MfcError:
    """One line for a failed ``docker login`` to an ECR registry."""
    text = " ".join(message.split())
    short = text if len(text) <= 300 else text[:297] + "..."
    if any(s in text.lower() for s in _UNREACHABLE):
        return MfcError(f"docker login to {host} failed: the registry does not answer: {short}",
                        hint="check the network and the registry address")
    return MfcError(f"docker login to {host} failed: {short}",
                    hint="check your AWS credentials and their ECR permissions")


@dataclass
class PushOutcome:
    """What one ``docker push`` did."""

    digest: str
    layers_pushed: int
    layers_existing: int
    bytes_sent: int
    seconds: float


def follow_push(chunks: Iterable[dict[str, Any]], reporter: PushReporter) -> PushLog:
    """Consume a push stream, reporting as it goes; the log (its ``error`` set on failure)."""
    log = PushLog(reporter)
    try:
        for chunk in chunks:
            log.feed(chunk)
            if log.error:
                break
    finally:
        reporter.stop()
    return log


def docker_push(client: Any, image_id: str, ref: str, credentials: Any, quiet: bool = False,
                stream: TextIO | None = None, local: bool = False) -> PushOutcome:
    """Tag ``image_id`` as ``ref`` and push it with live progress; ``credentials`` (user, password,
    registry) are checked with a docker login first. Raises :func:`push_error` on failure."""
    import docker.errors
    import requests

    repository, _, tag = ref.rpartition(":")
    host = ref.split("/", 1)[0]
    ecr = credentials is not None
    reporter = make_push_reporter(quiet, stream)
    started = time.monotonic()
    auth = None
    try:
        if credentials is not None:
            try:
                client.login(credentials.username, credentials.password, registry=credentials.registry or host,
                             reauth=True)
            except docker.errors.APIError as exc:
                raise login_error(host, str(exc.explanation or exc)) from None
            auth = {"username": credentials.username, "password": credentials.password}
        client.api.tag(image_id, repository, tag)
        reporter.begin(f"mfc: pushing {ref}")
        chunks = client.api.push(repository, tag=tag, stream=True, decode=True, auth_config=auth)
        log = follow_push(chunks, reporter)
    except (docker.errors.DockerException, requests.RequestException) as exc:
        reporter.stop()
        raise push_error(ref, host, str(getattr(exc, "explanation", None) or exc), local, ecr) from None
    if log.error:
        raise push_error(ref, host, log.error, local, ecr)
    if not log.digest:
        raise MfcError(f"push of {ref} ended without a digest (the engine's stream stopped early); run it again")
    seconds = time.monotonic() - started
    reporter.write(f"mfc: pushed {ref} in {seconds:.1f}s ({log.pushed} layer{'s' if log.pushed != 1 else ''} "
                   f"pushed, {log.existing} already there, {human_size(log.bytes_sent)} sent)")
    return PushOutcome(log.digest, log.pushed, log.existing, log.bytes_sent, seconds)
