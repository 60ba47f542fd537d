"""Workarounds for gaps in moto 5.2 that the sandbox (and the tests of the Batch executor and the
Step Functions compiler) would otherwise trip over. Each gap is named where it is covered.

Two kinds of code live here:

* pure functions (:func:`to_boto_request`, :func:`to_sfn_response`) that translate between the
  parameter names of a Step Functions service integration (``JobName``, ``ContainerOverrides``,
  ``Environment[].Name``) and boto3's (``jobName``, ``containerOverrides``, ``environment[].name``)
  with botocore's service model, as AWS Step Functions does;
* :func:`install`, which patches moto (only the moto server process calls it, through
  ``python -m mfc.sandbox.moto_launcher``: moto executes state machines in-process, so its
  classes must be patched where the server runs). The gaps covered, one function each:

  - SFN service integrations send ASL names (``JobName``) to boto unrenamed and read boto's
    response names (``jobId``) where ``JobId`` is expected, and an SDK integration's streamed
    body (``aws-sdk:s3:getObject``) is a stream object, not its text (``_patch_sfn_normalisation``);
  - a distributed Map swallows failed items and succeeds (``_patch_distributed_map_failures``);
  - an inline Map or a Parallel turns ``States.TaskFailed`` into ``States.Runtime`` (``_patch_inline_map_error_names``);
  - Retry on a ``.sync`` task times out at once on the second attempt (``_patch_retry_callback_endpoint``);
  - Batch ``DescribeJobs`` lacks ``container.exitCode`` and repeats ``AWS_BATCH_JOB_ID`` (``_patch_batch_describe``);
  - Batch job containers carry no label to clean them up by (``_label_batch_containers``);
  - state machines only run with moto's ``execute_state_machine`` config (``_enable_sfn_execution``);
  - EventBridge delivers to no state machine target, and a DISABLED rule and a schedule-only
    rule still get events (``_patch_events_delivery``);
  - Step Functions puts no "Execution Status Change" event on the default bus (``_patch_sfn_status_events``);
  - rules' and Scheduler's schedule expressions never fire (``_start_event_clock``), and the clock
    that fires them needs a control (``_patch_clock_config``).

The delivery and the clock themselves are :mod:`mfc.sandbox.eventclock`.

Translation mutates the given dict in place (and returns it): moto's ``.sync`` resolver for Batch
normalises the ``describe_jobs`` response and then returns an inner dict of it, so only an
in-place change reaches the caller.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, cast

# Marker label for containers the sandbox's moto starts (see _label_batch_containers).
CONTAINER_LABEL = "mfc.sandbox"


def _fold(name: str) -> str:
    """A case- and underscore-insensitive key: ``JobName``, ``jobName``, ``job_name`` -> ``jobname``."""
    return name.replace("_", "").lower()


@cache
def _operation(service: str, action: str) -> Any:
    """botocore's OperationModel for ``action`` given as ``submitJob``, ``SubmitJob`` or ``submit_job``."""
    import botocore.session

    model = botocore.session.get_session().get_service_model(service)
    wanted = _fold(action)
    for name in model.operation_names:
        if _fold(name) == wanted:
            return model.operation_model(name)
    raise KeyError(f"{service} has no operation {action!r}")


def _request_value(value: Any, shape: Any) -> Any:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        _request_structure(value, shape)
    elif kind == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            value[i] = _request_value(item, shape.member)
    elif kind == "map" and isinstance(value, dict):
        for key in list(value):  # map keys are the user's, never renamed
            value[key] = _request_value(value[key], shape.value)
    elif kind == "string" and not isinstance(value, str):
        # ASL may hand a JSON value where the API wants a string (as AWS does, send it as JSON).
        value = json.dumps(value, separators=(",", ":"))
    elif kind == "blob" and not isinstance(value, bytes):
        value = (value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))).encode()
    return value


def _request_structure(params: dict[str, Any], shape: Any) -> None:
    members = {_fold(name): (name, member) for name, member in shape.members.items()}
    for key in list(params):
        bound = members.get(_fold(key))
        if bound is None:
            continue  # unknown keys stay; botocore's serializer ignores them as AWS would reject them
        name, member = bound
        params[name] = _request_value(params.pop(key), member)


def to_boto_request(service: str, action: str, params: dict[str, Any]) -> dict[str, Any]:
    """Rename Step Functions-cased request keys to boto's, recursively, following the operation's
    input shape; map keys (``Parameters``, ``Tags``) are left as written. Mutates and returns ``params``.

    >>> to_boto_request("batch", "submitJob", {"JobName": "a", "ContainerOverrides": {"Environment": [{"Name": "X", "Value": "1"}]}})
    {'jobName': 'a', 'containerOverrides': {'environment': [{'name': 'X', 'value': '1'}]}}
    """
    shape = _operation(service, action).input_shape
    if shape is not None:
        _request_structure(params, shape)
    return params


def _sfn_case(name: str) -> str:
    return name[:1].upper() + name[1:]


def _response_value(value: Any, shape: Any) -> None:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        _response_structure(value, shape)
    elif kind == "list" and isinstance(value, list):
        for item in value:
            _response_value(item, shape.member)
    elif kind == "map" and isinstance(value, dict):
        for item in value.values():
            _response_value(item, shape.value)


def _response_structure(response: dict[str, Any], shape: Any) -> None:
    members = {_fold(name): member for name, member in shape.members.items()}
    for key in list(response):
        member = members.get(_fold(key))
        value = response.pop(key)
        if hasattr(value, "read"):  # a streamed body (S3 GetObject's Body): AWS hands it over as text
            value = value.read().decode("utf-8", errors="replace")
        if member is not None:
            _response_value(value, member)
        response[_sfn_case(key)] = value


def to_sfn_response(service: str, action: str, response: dict[str, Any]) -> dict[str, Any]:
    """Rename boto's response keys the way Step Functions shows them (``jobId`` -> ``JobId``),
    recursively along the operation's output shape; map keys stay. Mutates and returns ``response``."""
    if not isinstance(response, dict):
        return response
    shape = _operation(service, action).output_shape
    response.pop("ResponseMetadata", None)
    if shape is not None:
        _response_structure(response, shape)
    return response


def _patched(owner: Any, name: str) -> bool:
    """Whether ``owner.name`` is one of ours already (installing twice patches once)."""
    return bool(getattr(getattr(owner, name, None), "_mfc_patched", False))


def _replace(owner: Any, name: str, replacement: Any) -> None:
    """Put ``replacement`` in place of ``owner.name`` (a moto method or module global), marked as ours."""
    replacement._mfc_patched = True
    setattr(owner, name, replacement)


def _patch_sfn_normalisation() -> None:
    """moto gap: ``StateTaskService._normalise_parameters`` / ``_normalise_response`` are no-ops, so
    ASL ``"JobName"`` reaches boto unrenamed (boto drops it: "'JobName'" task failure) and the
    ``.sync`` resolver looks for ``JobId`` in a response that says ``jobId``."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service as sts,
    )

    cls = sts.StateTaskService
    if _patched(cls, "_normalise_parameters"):
        return

    def _normalise_parameters(self: Any, parameters: dict, boto_service_name: str | None = None,
                              service_action_name: str | None = None) -> None:
        service = self._get_boto_service_name(boto_service_name=boto_service_name)
        action = self._get_boto_service_action(service_action_name=service_action_name)
        try:
            to_boto_request(service, action, parameters)
        except Exception:  # noqa: BLE001 - an unknown service/operation: leave the request as written
            pass

    def _normalise_response(self: Any, response: Any, boto_service_name: str | None = None,
                            service_action_name: str | None = None) -> None:
        service = self._get_boto_service_name(boto_service_name=boto_service_name)
        action = self._get_boto_service_action(service_action_name=service_action_name)
        try:
            to_sfn_response(service, action, response)
        except Exception:  # noqa: BLE001
            pass

    # Only the base class: subclasses that override these (lambda, sfn, api gateway) call super().
    _replace(cls, "_normalise_parameters", _normalise_parameters)
    _replace(cls, "_normalise_response", _normalise_response)


def _patch_batch_describe() -> None:
    """moto gaps in ``DescribeJobs``: ``container.exitCode`` is missing (only ListJobs has it), and
    each describe appends another ``AWS_BATCH_JOB_ID`` to the job's environment."""
    from moto.batch import models

    if _patched(models.Job, "_container_details"):
        return
    original = models.Job._container_details

    def _container_details(self: Any) -> dict[str, Any]:
        details = original(self)
        env: dict[str, dict[str, Any]] = {}
        for item in details.get("environment") or []:
            env[item["name"]] = item
        details["environment"] = list(env.values())
        if getattr(self, "exit_code", None) is not None:
            details["exitCode"] = self.exit_code
        return details

    _replace(models.Job, "_container_details", _container_details)


def _label_batch_containers(label_value: str) -> None:
    """moto gap: Batch job containers carry no label (only a name ``<jobName>-<jobId>``), so the
    ones a killed server leaves behind cannot be told from the user's. Label every container this
    process creates with ``mfc.sandbox=<label_value>``; ``mfc sandbox down`` removes them."""
    from docker.models.containers import ContainerCollection

    if _patched(ContainerCollection, "create"):
        return
    original = ContainerCollection.create

    def create(self: Any, image: Any, command: Any = None, **kwargs: Any) -> Any:
        kwargs["labels"] = {**(kwargs.get("labels") or {}), CONTAINER_LABEL: label_value}
        return original(self, image, command, **kwargs)

    _replace(ContainerCollection, "create", create)


def map_run_exceeds_tolerance(failed: int, total: int, tolerated_count: int, tolerated_percentage: float) -> bool:
    """Whether a distributed Map run with ``failed`` of ``total`` items failed, as AWS decides it:
    with neither threshold set (both 0) any failure fails the run; otherwise exceeding a set
    threshold does. (moto cannot tell an explicit 0 from an absent field; both mean "not set".)"""
    if failed <= 0:
        return False
    if not tolerated_count and not tolerated_percentage:
        return True
    if tolerated_count and failed > tolerated_count:
        return True
    return bool(tolerated_percentage) and total > 0 and 100.0 * failed / total > tolerated_percentage


def _patch_distributed_map_failures() -> None:
    """moto gap: a distributed Map (``ItemProcessor.ProcessorConfig.Mode = DISTRIBUTED``, the one
    ``ItemReader`` needs) swallows failed items: their output becomes ``null`` and the Map run
    succeeds (moto leaves ToleratedFailureCount/Percentage as a TODO). AWS fails the run with
    ``States.ExceedToleratedFailureThreshold``; so does this patch, after all items have run."""
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        distributed_iteration_component as dic,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    cls = dic.DistributedIterationComponent
    if _patched(cls, "_map_run"):
        return
    original = cls._map_run

    def _map_run(self: Any, env: Any, eval_input: Any) -> None:
        original(self, env, eval_input)
        items = eval_input.map_run_record.item_counter
        failed = items.failed.get() + items.timed_out.get()
        if not map_run_exceeds_tolerance(failed, items.total.get(), eval_input.tolerated_failure_count,
                                         eval_input.tolerated_failure_percentage):
            return
        error = StatesErrorNameType.StatesExceedToleratedFailureThreshold.to_name()
        cause = (f"The specified tolerated failure threshold was exceeded: {failed} of "
                 f"{items.total.get()} items failed in Map state {eval_input.state_name!r}")
        raise FailureEventException(FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold),
            event_type=HistoryEventType.ExecutionFailed,
            # moto declares every key of its EventDetails TypedDict required, yet fills one per event.
            event_details=cast(EventDetails, {
                "executionFailedEventDetails": ExecutionFailedEventDetails(error=error, cause=cause)}),
        ))

    _replace(cls, "_map_run", _map_run)


def _patch_inline_map_error_names() -> None:
    """moto gap: when an iteration of an inline Map or a branch of a Parallel fails with a
    ``States.*`` error (a failed Batch job is ``States.TaskFailed``), moto wraps the name in
    ``CustomErrorName``, which refuses the ``States.`` prefix: the execution fails with
    ``States.Runtime`` instead of ``States.TaskFailed`` and Retry/Catch on the Map or Parallel
    (``@exit_hook``'s wrapper) cannot match it. Build a ``StatesErrorName`` for those names."""
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl

    if _patched(iteration_worker, "CustomErrorName") and _patched(branches_decl, "CustomErrorName"):
        return

    def error_name_for(error_name: Any) -> Any:
        name = str(error_name) if error_name is not None else None
        if name and name.startswith("States."):
            try:
                return StatesErrorName.from_name(name)
            except ValueError:
                pass
        return CustomErrorName(error_name=error_name)

    for module in (iteration_worker, branches_decl):  # each module's only use: building error names
        _replace(module, "CustomErrorName", error_name_for)


def _patch_retry_callback_endpoint() -> None:
    """moto gap: a Task with a ``.sync`` (or ``.waitForTaskToken``) resource gets one task token and
    callback endpoint per state entry, and each attempt "interrupts" that endpoint when it ends. A
    Retry attempt then finds the endpoint already interrupted and fails at once with
    ``States.Timeout`` (its Batch job keeps running, unwatched). Give each attempt a fresh endpoint
    under the same token (tokens a retried ``.waitForTaskToken`` task already sent stay valid)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service as sts,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as stc,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    cls = stc.StateTaskServiceCallback
    if _patched(cls, "_eval_execution"):
        return
    base = sts.StateTaskService._eval_execution

    def _eval_execution(self: Any, env: Any) -> None:
        token = (env.states.context_object.context_object_data.get("Task") or {}).get("Token")
        pool = env.callback_pool_manager
        endpoint = pool.get(token) if token else None
        # Set before this attempt submitted anything: left over from the previous attempt.
        if token and endpoint is not None and endpoint._notify_event.is_set():
            pool._pool[token] = CallbackEndpoint(callback_id=token)
        base(self, env)

    _replace(cls, "_eval_execution", _eval_execution)


def _enable_sfn_execution() -> None:
    """moto runs state machines only with ``{"stepfunctions": {"execute_state_machine": true}}``;
    set it in-process (``up`` also POSTs it to ``/moto-api/config``)."""
    from moto.core.config import default_user_config

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True


_original_send_to_targets: Any = None


def moto_delivery(rule: Any, targets: list[dict[str, Any]], event: Any, transform_input: bool = True) -> None:
    """moto's own delivery of ``event`` to ``targets`` of ``rule`` only (its logs, SQS, bus and
    archive targets): :func:`mfc.sandbox.eventclock.deliver` hands it those that are not state machines."""
    import copy

    proxy = copy.copy(rule)  # shallow: the same rule with fewer targets
    proxy.targets = targets
    _original_send_to_targets(proxy, event, transform_input)


def _patch_events_delivery() -> None:
    """moto gaps: ``Rule.send_to_targets`` delivers to no Step Functions target (it raises
    ``NotImplementedError`` for one), and sends events to a DISABLED rule's targets and to a
    schedule-only rule's (no ``EventPattern``: on AWS it matches no event). A matching
    event now starts an execution of each state machine target (see
    :func:`mfc.sandbox.eventclock.deliver`); a disabled rule gets nothing."""
    from moto.events import models

    from mfc.sandbox import eventclock

    global _original_send_to_targets
    if _patched(models.Rule, "send_to_targets"):
        return
    _original_send_to_targets = models.Rule.send_to_targets

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        # A rule with only a ScheduleExpression has no pattern: moto matches every event to it.
        if (self.state != "ENABLED" or self.event_pattern.dump() is None
                or not self.event_pattern.matches_event(original_event)):
            return
        eventclock.deliver(self, original_event,
                           lambda rule, targets, event: moto_delivery(rule, targets, event, transform_input))

    _replace(models.Rule, "send_to_targets", send_to_targets)


def _patch_sfn_status_events() -> None:
    """moto gap: an ended execution puts no "Step Functions Execution Status Change" event on the
    default bus, so no rule can react to a flow finishing. Put one (AWS's shape, see
    :func:`mfc.sandbox.eventclock.status_change_entry`) when a STANDARD execution ends; a
    TestState run and an EXPRESS one emit none, as on AWS (a distributed Map's children are
    no executions of their own in moto)."""
    from moto.stepfunctions.parser.api import StateMachineType
    from moto.stepfunctions.parser.backend import execution as sfn_execution

    from mfc.sandbox import eventclock

    cls = sfn_execution.BaseExecutionWorkerCommunication
    if _patched(cls, "terminated"):
        return
    original = cls.terminated

    def terminated(self: Any) -> None:
        original(self)
        if self.execution.sm_type == StateMachineType.STANDARD:
            eventclock.publish_status_change(self.execution)

    _replace(cls, "terminated", terminated)


def _patch_clock_config() -> None:
    """The event clock's control: ``POST /moto-api/config`` with ``{"mfc": {"advance": s}}`` or
    ``{"mfc": {"clock_offset": s}}`` moves it (moto would drop the key), and ``GET`` shows its
    offset, time and next fire times under ``mfc``."""
    from moto.moto_api._internal.models import MotoAPIBackend

    from mfc.sandbox import eventclock

    if _patched(MotoAPIBackend, "set_config"):
        return
    original_set, original_get = MotoAPIBackend.set_config, MotoAPIBackend.get_config

    def set_config(self: Any, config: dict[str, Any]) -> None:
        original_set(self, config)
        if isinstance(config.get("mfc"), dict):
            eventclock.configure(config["mfc"])

    def get_config(self: Any) -> dict[str, Any]:
        return {**original_get(self), "mfc": eventclock.describe()}

    _replace(MotoAPIBackend, "set_config", set_config)
    _replace(MotoAPIBackend, "get_config", get_config)


def _start_event_clock() -> None:
    """moto gap: rules' ``ScheduleExpression`` and Scheduler schedules never fire. Start the
    clock thread that fires them (:mod:`mfc.sandbox.eventclock`)."""
    from mfc.sandbox import eventclock

    eventclock.start()


def install(label_value: str) -> None:
    """Apply every patch above to this (moto server) process."""
    _enable_sfn_execution()
    _patch_events_delivery()
    _patch_sfn_status_events()
    _patch_clock_config()
    _start_event_clock()
    _patch_sfn_normalisation()
    _patch_distributed_map_failures()
    _patch_inline_map_error_names()
    _patch_retry_callback_endpoint()
    _patch_batch_describe()
    _label_batch_containers(label_value)
