"""Flow images: an mfc base image plus the flow's locked dependencies, tagged by a hash of their inputs.

The inputs are the base image's id, the Dockerfile template, the lock's id, mfc's version and an
optional extra CA bundle. The tag is ``mfc-flow-<flow>:<first 16 hex of their sha256>`` and the
inputs are written as labels (``io.mfc.inputs.*``). A local state file (``<cache>/images.json``)
remembers, per engine, which tag the inputs *as known without asking docker* (the base image's
reference instead of its id) gave last time, so an unchanged flow costs no docker call at all.
``refresh=True`` re-checks the base image's id and the tag's presence with the engine.

Code is never part of an image: editing the flow changes nothing here unless its dependencies change.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from mfc.builder.dockerfile import TEMPLATE, file_digest, prepare_context, template_digest
from mfc.builder.engine import engine_url
from mfc.exceptions import MfcError, warn
from mfc.packager.deps import LockResult, lock_flow
from mfc.packager.lockfile import EnvLock, cache_dir, write_atomic

IMAGE_PREFIX = "mfc-flow-"
LABEL_PREFIX = "io.mfc.inputs."
PYTHON_LABEL = "io.mfc.python"
STATE_FORMAT = 1
BUILD_TIMEOUT_S = 3600  # the SDK's per-read timeout: a quiet `pip install` of large wheels takes a while
_PROBE = "import sys; print('%d.%d' % sys.version_info[:2])"
_FIELDS = (("base", "base"), ("base-id", "base image id"), ("template", "template"), ("lock", "lock"),
           ("python", "python"), ("mfc-version", "mfc version"), ("ca", "ca bundle"))


def mfc_version() -> str:
    """The version of mfc running here (the base images are tagged with it)."""
    from mfc.version import __version__

    return __version__


def default_base(gpu: bool = False, version: str | None = None) -> str:
    """``mfc-base:<version>`` or, with ``gpu``, ``mfc-gpu:<version>`` (what ``make image[-gpu]`` builds)."""
    return f"mfc-{'gpu' if gpu else 'base'}:{version or mfc_version()}"


def image_repository(flow_name: str) -> str:
    """``mfc-flow-<flow name>``, lower case, with anything Docker refuses in a name made a dash."""
    return IMAGE_PREFIX + (re.sub(r"[^a-z0-9]+", "-", flow_name.lower()).strip("-") or "flow")


def _short(value: str) -> str:
    value = value.removeprefix("sha256:")
    return value[:12] if re.fullmatch(r"[0-9a-f]{64}", value) else (value or "none")


@dataclass(frozen=True)
class ImageInputs:
    """What goes into a flow image. ``base_id`` is as last known (from the state file) until checked."""

    flow: str
    base: str
    base_id: str
    template: str
    lock: EnvLock
    mfc_version: str
    ca: str = ""

    def fields(self) -> dict[str, str]:
        """Each input by name (the ``io.mfc.inputs.*`` label names)."""
        return {"base": self.base, "base-id": self.base_id, "template": self.template, "lock": self.lock.id,
                "python": self.lock.python, "mfc-version": self.mfc_version, "ca": self.ca}

    @property
    def digest(self) -> str:
        """sha256 of the inputs that decide the image's content (not the base's name)."""
        data = {k: v for k, v in self.fields().items() if k != "base"}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    @property
    def tag(self) -> str:
        return f"{image_repository(self.flow)}:{self.digest[:16]}"

    def state_key(self, engine: str) -> str:
        """Key of the state file: the inputs known without docker (base reference, not its id)."""
        data = {k: v for k, v in self.fields().items() if k != "base-id"}
        data.update(engine=engine, flow=self.flow)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def labels(self) -> dict[str, str]:
        labels = {LABEL_PREFIX + k: v for k, v in self.fields().items()}
        labels[LABEL_PREFIX + "digest"] = self.digest
        labels["io.mfc.flow"] = self.flow
        labels["io.mfc.lock"] = " ".join(f"{n}=={v}" for n, v in self.lock.pins)
        return labels


class ImageState:
    """``<cache>/images.json``: per engine, base images seen, images built, and each flow's last inputs.

    Saving re-reads the file and applies this process's updates, so two builds at once lose nothing
    worse than a cache entry (which costs a docker call next time, never a wrong image).
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / "images.json"
        self.data = self._load()
        self._updates: list[tuple[str, str, Any]] = []

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"format": STATE_FORMAT}
        return data if isinstance(data, dict) and data.get("format") == STATE_FORMAT else {"format": STATE_FORMAT}

    def get(self, section: str, key: str) -> Any:
        return (self.data.get(section) or {}).get(key)

    def set(self, section: str, key: str, value: Any) -> None:
        if self.get(section, key) != value:
            self.data.setdefault(section, {})[key] = value
            self._updates.append((section, key, value))

    def save(self) -> None:
        if not self._updates:
            return
        fresh = self._load()
        for section, key, value in self._updates:
            fresh.setdefault(section, {})[key] = value
        try:
            write_atomic(self.path, json.dumps(fresh, indent=1, sort_keys=True))
        except OSError:
            pass  # an unwritable cache only costs docker calls later
        self._updates.clear()


@dataclass
class FlowImage:
    """The result of :func:`build_flow_image`. ``status``: ``cached`` (known from the state file, no
    docker call), ``present`` (found on the engine), ``built``."""

    image: str
    image_id: str
    inputs: ImageInputs
    status: str
    lock: LockResult
    previous: dict[str, str] | None
    seconds: float
    base_checked: bool = False
    notes: list[str] = field(default_factory=list)

    def changes(self) -> list[str]:
        """``"lock changed (abc → def)"`` for each input that differs from the last build of this flow."""
        if not self.previous:
            return []
        now = self.inputs.fields()
        return [f"{label} changed ({_short(self.previous.get(key, ''))} → {_short(now[key])})"
                for key, label in _FIELDS if self.previous.get(key, "") != now[key]]

    def explain(self) -> list[str]:
        """Each input, whether it changed since the last build of this flow, and what was done."""
        now = self.inputs.fields()
        pins = len(self.inputs.lock.pins)
        detail = {"base-id": "" if self.base_checked else " (as last checked; --refresh checks it)",
                  "lock": f" ({pins} package{'s' if pins != 1 else ''}, from {self.lock.source})"}
        lines = [f"{self.inputs.flow} image {self.image}"]
        for key, label in _FIELDS:
            if self.previous is None:
                state = ""
            else:
                state = "changed" if self.previous.get(key, "") != now[key] else "unchanged"
            lines.append(f"  {label:<14}{_short(now[key]) + detail.get(key, ''):<58}{state}".rstrip())
        changes = self.changes()
        since = f" ({'; '.join(changes)} since the last build of this flow)" if changes else ""
        if self.status == "cached":
            lines.append(f"up to date: built here before with these inputs (no docker call){since}")
        elif self.status == "present":
            lines.append(f"up to date: an image with these inputs is on the engine{since}")
        elif self.previous is None:
            lines.append(f"build: first build of {self.inputs.flow} here")
        elif changes:
            lines.append(f"rebuild: {'; '.join(changes)}")
        else:
            lines.append("rebuild: the image was not on the engine")
        return lines


def _inspect_base(client: Any, ref: str, gpu: bool, known: dict[str, str] | None) -> dict[str, str]:
    """``{"id", "python", "mfc"}`` of the base image ``ref``: its id, its Python (from its label, else
    from running it once) and the mfc version its label states (empty: not an mfc image)."""
    import docker.errors
    import requests

    try:
        image = client.images.get(ref)
    except docker.errors.ImageNotFound:
        if gpu and ref == default_base(True):
            raise MfcError(f"GPU base image {ref} is not built",
                           hint="build it with `make image-gpu GPU_BASE_IMAGE=<a CUDA runtime image>`") from None
        if ref == default_base(False):
            raise MfcError(f"base image {ref} is not built", hint="build it with `make image`") from None
        raise MfcError(f"base image {ref} is not on the Docker engine",
                       hint="pull or build it, or pass another --base") from None
    except docker.errors.APIError as exc:
        raise MfcError(f"cannot inspect base image {ref}: {exc.explanation or exc}") from None
    labels = image.labels or {}
    python = labels.get(PYTHON_LABEL, "")
    if not python and known and known.get("id") == image.id:
        python = known.get("python", "")
    if not python:
        try:
            out = client.containers.run(image.id, [], entrypoint=["python", "-c", _PROBE], remove=True,
                                        user="0:0", network_disabled=True)
            python = out.decode().strip()
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise MfcError(f"base image {ref} has no usable `python`: {str(exc).strip()[:200]}",
                           hint="use an mfc base image (`make image`) or one built from Dockerfile.base") from None
    return {"id": image.id, "python": python, "mfc": labels.get("io.mfc.version", "")}


def build_flow_image(flow_file: str, flow_name: str | None = None, gpu: bool = False, quiet: bool = False, *,
                     base: str | None = None, refresh: bool = False, ca_bundle: str | Path | None = None,
                     template: str = TEMPLATE, state: ImageState | None = None,
                     stream: TextIO | None = None) -> FlowImage:
    """The flow's image, built only when no image with the same inputs exists.

    Unless ``refresh``, inputs already built here are answered from the state file without any
    docker call; ``refresh`` re-checks the base image's id and that the image is still on the engine.
    ``template`` replaces the Dockerfile text (tests). Build output goes to ``stream`` (stderr).
    """
    started = time.monotonic()
    version = mfc_version()
    base_ref = base or default_base(gpu, version)
    engine = engine_url()
    state = state or ImageState()
    ca_path = Path(ca_bundle) if ca_bundle else None
    if ca_path is not None and not ca_path.is_file():
        raise MfcError(f"--ca-bundle {ca_path}: no such file")
    ca = file_digest(ca_path) if ca_path else ""
    base_key = f"{engine}|{base_ref}"
    known_base = state.get("bases", base_key)
    engine_client = _LazyClient()
    try:
        if known_base is None or refresh:
            known_base = _inspect_base(engine_client.get(), base_ref, gpu, known_base)
            state.set("bases", base_key, known_base)
        lock = lock_flow(flow_file, flow_name, python=known_base["python"] or None)
        inputs = ImageInputs(lock.inputs.flow_name, base_ref, known_base["id"], template_digest(template),
                             lock.lock, version, ca)
        flow_key = f"{engine}|{os.path.abspath(flow_file)}|{inputs.flow}"
        result = FlowImage(inputs.tag, "", inputs, "cached", lock, state.get("flows", flow_key), 0.0,
                           base_checked=engine_client.used, notes=list(lock.notes))
        hit = None if refresh else state.get("images", inputs.state_key(engine))
        if hit is not None:
            result.image, result.image_id = hit["tag"], hit["image_id"]
        else:
            client = engine_client.get()
            if not result.base_checked:  # the base may have been rebuilt since it was last looked at
                fresh = _inspect_base(client, base_ref, gpu, known_base)
                result.base_checked = True
                if fresh != known_base:
                    state.set("bases", base_key, fresh)
                    if fresh["python"] != known_base["python"]:
                        lock = lock_flow(flow_file, flow_name, python=fresh["python"] or None)
                    known_base = fresh
                    inputs = ImageInputs(inputs.flow, base_ref, fresh["id"], inputs.template, lock.lock, version, ca)
                    result.inputs, result.lock, result.image = inputs, lock, inputs.tag
            result.image_id, result.status = _present_or_build(client, inputs, template, ca_path, quiet, stream)
            state.set("images", inputs.state_key(engine), {"tag": inputs.tag, "image_id": result.image_id,
                                                           "base_id": inputs.base_id})
    finally:
        engine_client.close()
    if not known_base.get("mfc"):
        result.notes.append(f"base image {base_ref} has no io.mfc.version label: tasks need mfc installed in it "
                            "(build bases from Dockerfile.base)")
    state.set("flows", flow_key, {**inputs.fields(), "tag": result.image})
    state.save()
    result.seconds = time.monotonic() - started
    return result


def ensure_flow_image(flow_file: str, flow_name: str | None = None, gpu: bool = False, quiet: bool = False, *,
                      base: str | None = None, refresh: bool = False, ca_bundle: str | Path | None = None) -> str:
    """The image reference to run the flow's tasks in, building it only when missing.

    Cheap when nothing changed: no pip and no docker call (see :func:`build_flow_image`).
    """
    result = build_flow_image(flow_file, flow_name, gpu, quiet, base=base, refresh=refresh, ca_bundle=ca_bundle)
    if not quiet:
        for note in result.notes:
            warn(note)
    return result.image


class _LazyClient:
    """A docker client made on first use only: the cached path must not touch the engine."""

    def __init__(self) -> None:
        self.client: Any = None

    @property
    def used(self) -> bool:
        return self.client is not None

    def get(self) -> Any:
        if self.client is None:
            from mfc.builder import engine

            self.client = engine.docker_client(timeout=BUILD_TIMEOUT_S)
        return self.client

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def _present_or_build(client: Any, inputs: ImageInputs, template: str, ca_path: Path | None, quiet: bool,
                      stream: TextIO | None) -> tuple[str, str]:
    """``(image id, "present"|"built")``: the tagged image when its labels match, else a new build."""
    import docker.errors

    try:
        image = client.images.get(inputs.tag)
        if (image.labels or {}).get(LABEL_PREFIX + "digest") == inputs.digest:
            return image.id, "present"
    except docker.errors.ImageNotFound:
        pass
    return _build(client, inputs, template, ca_path, quiet, stream), "built"


def _build(client: Any, inputs: ImageInputs, template: str, ca_path: Path | None, quiet: bool,
           stream: TextIO | None) -> str:
    import docker.errors
    import requests

    from mfc.builder.progress import follow_build, make_reporter

    what = f"image build of {inputs.tag}"
    reporter = make_reporter(quiet, stream)
    pins = len(inputs.lock.pins)
    started = time.monotonic()
    reporter.begin(f"mfc: building {inputs.tag} ({inputs.base} + {pins} locked package{'s' if pins != 1 else ''})")
    with tempfile.TemporaryDirectory(prefix="mfc-image-") as tmp:
        try:
            prepare_context(Path(tmp), inputs.lock, inputs.labels(), template, ca_path, log=reporter.write)
            chunks = client.api.build(
                path=tmp, dockerfile="Dockerfile", tag=inputs.tag, decode=True,
                rm=True, forcerm=True, pull=False,
                network_mode="none",  # the wheels were fetched on the host: a build that reaches out is a bug
                buildargs={"BASE_IMAGE": inputs.base_id, "MFC_PYTHON_VERSION": inputs.lock.python})
            log = follow_build(chunks, reporter, what)
            image_id = client.images.get(inputs.tag).id
        except (docker.errors.DockerException, requests.RequestException) as exc:
            explanation = getattr(exc, "explanation", None) or str(exc)
            raise MfcError(f"{what} failed: {' '.join(str(explanation).split())[:300]}") from None
        finally:
            reporter.stop()
    cached = sum(1 for step in log.steps if step.cached)
    reporter.write(f"mfc: built {inputs.tag} in {time.monotonic() - started:.1f}s "
                   f"({len(log.steps)} steps, {cached} from cache)")
    return image_id
