"""Setting up Batch steps before a run is recorded: :func:`batch_steps` (the ``--batch`` /
``@batch`` wiring of ``launch``) and the checks it makes, each a clear MfcError naming what to
fix: AWS answers with usable credentials, the job queue exists and is enabled (a GPU step's queue
has GPU instances), the image is in its registry. :func:`publish_flow_image` pushes the flow's
locally built image to ``image_registry`` when no ``--image`` is given.

Images are looked up where Batch will pull them: ECR URIs with ``ecr.describe_images``, other
registries (``host[:port]/repo:tag``, e.g. the sandbox's) with the registry HTTP API (``HEAD
/v2/<repo>/manifests/<tag>``); an image without a registry host (Docker Hub, or a local image the
sandbox's engine has) is not checked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mfc.exceptions import MfcError, warn

if TYPE_CHECKING:
    from mfc.graph import FlowGraph
    from mfc.runner.batch_executor import BatchExecutor

AWS_HINT = ("for a local AWS run `mfc sandbox up` and export MFC_PROFILE=sandbox; for AWS, configure "
            "credentials (AWS_PROFILE, aws configure) and unset aws_endpoint_url")
_ACCESS_CODES = {"UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException",
                 "AccessDenied", "AccessDeniedException", "InvalidSignatureException", "SignatureDoesNotMatch"}


def explain(exc: BaseException) -> str:
    """One line for an AWS or other error: ``Code: message`` for a botocore ClientError."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and response.get("Error"):
        err = response["Error"]
        return f"{err.get('Code', 'Error')}: {err.get('Message', '')}".rstrip(": ")
    return str(exc) or type(exc).__name__


def access_error(exc: BaseException, config: Any, what: str = "AWS Batch") -> MfcError:
    """The MfcError for a failed call: no credentials, endpoint unreachable, credentials refused."""
    import botocore.exceptions as bex

    endpoint = config["aws_endpoint_url"] or "AWS"
    if isinstance(exc, (bex.NoCredentialsError, bex.PartialCredentialsError)):
        return MfcError(f"no AWS credentials to call {what}", hint=AWS_HINT)
    if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectionClosedError, bex.ConnectTimeoutError)):
        return MfcError(f"cannot reach {what} at {endpoint}: {exc}", hint=AWS_HINT)
    if isinstance(exc, bex.ClientError) and explain(exc).split(":")[0] in _ACCESS_CODES:
        return MfcError(f"{what} refused the request: {explain(exc)}", hint=AWS_HINT)
    if isinstance(exc, MfcError):
        return exc
    return MfcError(f"{what} at {endpoint}: {explain(exc)}")


def quick_client(service: str, config: Any) -> Any:
    """A client that fails fast (two tries, 5 s to connect) for checks a person waits on."""
    from botocore.config import Config as BotoConfig

    from mfc.aws import client

    return client(service, config, boto_config=BotoConfig(
        retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=30))


def describe_queue(batch: Any, queue: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """A job queue's description (None when there is none) and those of its compute environments."""
    found = batch.describe_job_queues(jobQueues=[queue]).get("jobQueues") or []
    if not found:
        return None, []
    arns = [entry["computeEnvironment"] for entry in found[0].get("computeEnvironmentOrder") or []]
    ces = (batch.describe_compute_environments(computeEnvironments=arns).get("computeEnvironments") or []) if arns else []
    return found[0], ces


def check_queue(batch: Any, queue: str, gpu: int, step: str, config: Any) -> None:
    """The queue exists and is enabled; with ``gpu``, one of its compute environments has GPUs."""
    from mfc.runner.batch_jobs import gpu_problem

    try:
        desc, ces = describe_queue(batch, queue)
        if desc is None:
            names = sorted(q["jobQueueName"] for q in batch.describe_job_queues().get("jobQueues") or [])
    except Exception as exc:  # noqa: BLE001 - mapped to a clear message
        raise access_error(exc, config) from None
    if desc is None:
        raise MfcError(f"step {step}: AWS Batch job queue {queue!r} does not exist "
                       f"(queues: {', '.join(names) or 'none'})",
                       hint="pass --queue NAME, @batch(queue=...), or set batch_queue / batch_gpu_queue")
    if desc.get("state") != "ENABLED" or desc.get("status") == "INVALID":
        raise MfcError(f"step {step}: AWS Batch job queue {queue} is {desc.get('state')}/{desc.get('status')}"
                       + (f" ({desc['statusReason']})" if desc.get("statusReason") else ""),
                       hint="enable it (aws batch update-job-queue --state ENABLED) or pick another with --queue")
    problem = gpu_problem(queue, ces, gpu) if gpu else None
    if problem:
        raise MfcError(f"step {step}: {problem}",
                       hint="use a queue with GPU instances: --queue, @batch(queue=...) or batch_gpu_queue "
                            "(the sandbox's is mfc-gpu)")


def check_queues(config: Any, defaults: Any, policies: dict[str, Any], steps: list[str],
                 checked: set[Any] | None = None) -> None:
    """:func:`check_queue` for each step's queue (once per queue and GPU count; ``checked``
    remembers those done), from the step's settings under ``defaults`` (no image needed)."""
    from mfc.runner.batch_jobs import step_settings

    checked = set() if checked is None else checked
    client = None
    for step in steps:
        policy = policies.get(step)
        decorators = getattr(policy, "decorators", {}) or {}
        attrs = decorators["batch"].attributes if "batch" in decorators else None
        settings = step_settings(step, getattr(policy, "resources", {}) or {}, attrs, None, defaults)
        if (settings.queue, settings.gpu) not in checked:
            client = client or quick_client("batch", config)
            check_queue(client, settings.queue, settings.gpu, step, config)
            checked.add((settings.queue, settings.gpu))


def split_reference(image: str) -> tuple[str | None, str, str]:
    """``(registry host or None, repository, tag or digest)`` of an image reference."""
    name, _, digest = image.partition("@")
    first, slash, rest = name.partition("/")
    registry = first if slash and ("." in first or ":" in first or first == "localhost") else None
    path = rest if registry else name
    ref = digest
    if not ref:
        head, colon, tag = path.rpartition(":")
        path, ref = (head, tag) if colon and "/" not in tag else (path, "latest")
    return registry, path, ref


def image_present(image: str, config: Any) -> bool | None:
    """Whether the image is in its registry: True, False, or None when that cannot be told
    (no registry host, a registry that wants a login, a remote registry that does not answer)."""
    registry_host, repo, ref = split_reference(image)
    if registry_host is None or ref.startswith("sha256:"):
        return None
    from mfc.builder.ecr import already_pushed, ecr_client, parse_ecr_host
    from mfc.builder.push import parse_registry, remote_status

    ecr = parse_ecr_host(registry_host)
    if ecr is not None:
        if ecr.region != config["aws_region"]:
            return None
        return already_pushed(ecr_client(ecr.region, config), repo, ref, ecr.account) is not None
    registry = parse_registry(registry_host, "image")
    status, why = remote_status(registry, repo, ref)
    if status == "unreachable" and registry.local:
        raise MfcError(f"the image registry {registry_host} does not answer ({why})",
                       hint="is the sandbox running? `mfc sandbox up`")
    return {"present": True, "absent": False}.get(status)


def check_image(image: str, config: Any, step: str) -> None:
    """MfcError when the image is known not to be in its registry."""
    if image_present(image, config) is False:
        raise MfcError(f"step {step}: image {image} is not in its registry, so Batch cannot pull it",
                       hint=f"push it (docker push {image}), or leave --image out to have mfc build and push "
                            "the flow's image to image_registry")


def publish_flow_image(flow_file: str, flow_name: str, config: Any, gpu: bool = False, quiet: bool = False) -> str:
    """The flow's image in ``image_registry``: built locally when missing and pushed unless the
    registry has it already (see :mod:`mfc.builder.push`)."""
    registry = config["image_registry"]
    if not registry:
        raise MfcError("Batch jobs need an image in a registry they can pull from",
                       hint="pass --image REGISTRY/REPO:TAG, or set image_registry (MFC_IMAGE_REGISTRY); "
                            "`mfc sandbox up` sets it to the sandbox's registry")
    from mfc.builder.push import ensure_pushed

    return ensure_pushed(flow_file, flow_name, gpu=gpu, registry=registry, quiet=quiet)


# -- the launch wiring ----------------------------------------------------------------------------------
def batch_steps(flow_file: str, flow_name: str, graph: FlowGraph, config: Any, options: Any,
                policies: dict[str, Any]) -> tuple[BatchExecutor | None, list[str]]:
    """The Batch executor and the steps it runs, checked before anything is recorded (like
    ``launch._containerised_steps``): every step with the ``batch`` setting (``--batch``: "*"),
    the steps it names ("a,b"), plus every step with ``@batch`` (also via ``--with batch``).
    ``(None, [])`` when no step runs on Batch, which is also the case when only ``@batch`` asks
    for Batch and the datastore is local: those steps run here, with a warning.

    The settings come from ``config`` (see :class:`RunSettings`, :class:`BatchSettings`);
    ``options`` gives the ``--with`` decorators (``with_decorators``; missing counts as none).
    """
    from mfc.runner.settings import BATCH_ONLY, BatchSettings, RunSettings

    run = RunSettings.from_config(config)
    wanted = run.batch
    nodes = list(graph.nodes)
    steps = nodes if wanted == "*" else [s.strip() for s in (wanted or "").split(",") if s.strip()]
    unknown = [s for s in steps if s not in graph]
    if unknown:
        raise MfcError(f"--batch {wanted}: no step {unknown[0]!r} (steps: {', '.join(nodes)})")
    steps += [s for s in nodes if s not in steps and "batch" in policies[s].decorators]
    steps = [s for s in nodes if s in steps]
    if not steps:
        for key in BATCH_ONLY:
            if key in run.given:
                flag = "--queue" if key == "batch_queue" else f"--{key.replace('_', '-')}"
                raise MfcError(f"{flag} needs --batch (or a step with @batch)")
        return None, []
    root = config.datastore_root
    remote = root.startswith("s3://")
    explicit = wanted or any(d.name == "batch" for d in getattr(options, "with_decorators", None) or [])
    if not remote and not explicit:
        # Only @batch asks for Batch and nothing cloud is configured: the laptop case. The flow
        # still runs, its @batch steps as local processes (Metaflow would refuse to start).
        warn(f"@batch steps {', '.join(steps)} run as local processes: the datastore is local "
             "(for Batch, --datastore-root s3://BUCKET/PREFIX or MFC_PROFILE=sandbox)")
        return None, []
    _check_docker_overlap(run.local_docker, steps, nodes)
    if not remote:
        raise MfcError(f"Batch jobs cannot reach the local datastore {root} (steps on Batch: {', '.join(steps)})",
                       hint="use an S3 datastore: --datastore-root s3://BUCKET/PREFIX, or `mfc sandbox up` "
                            "and export MFC_PROFILE=sandbox")
    from mfc.runner.batch_executor import BatchExecutor

    checked: set[Any] = set()
    check_queues(config, BatchSettings.from_config(config).defaults, policies, steps, checked)  # before any build
    own = [s for s in steps if not (policies[s].decorators.get("batch")
                                    and policies[s].decorators["batch"].attributes["image"])]
    on_gpu = {s for s in own if run.gpu or float(policies[s].resources.get("gpu") or 0) > 0}
    image, gpu_image = run.image, run.gpu_image or run.image
    if image is None and len(on_gpu) < len(own):
        image = publish_flow_image(flow_file, flow_name, config, gpu=False, quiet=run.quiet)
    if gpu_image is None and on_gpu:
        gpu_image = publish_flow_image(flow_file, flow_name, config, gpu=True, quiet=run.quiet)
    executor = BatchExecutor(config, BatchSettings.from_config(config, image or gpu_image or "", gpu_image), policies)
    executor.checked.update(checked)
    try:
        executor.preflight(flow_name, steps)
    except BaseException:
        executor.close()
        raise
    return executor, steps


def _check_docker_overlap(docker: str | None, steps: list[str], nodes: list[str]) -> None:
    if not docker:
        return
    in_docker = set(nodes) if docker == "*" else {s.strip() for s in docker.split(",")}
    both = [s for s in steps if s in in_docker]
    if both:
        raise MfcError(f"step {both[0]} is asked to run both on Batch and in local Docker",
                       hint="name it in only one of --batch / --local-docker (steps with @batch always run on Batch)")
