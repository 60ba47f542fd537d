"""The Step Functions compiler: a pure function from a flow graph and :class:`SfnSettings` to an
Amazon States Language definition (a dict). It calls no AWS API and reads no file: the same
inputs give byte-identical JSON (:func:`definition_json`) on any machine.

Shape:

* the first state (``mfc init``, a Pass) sets the state data every state passes on unchanged:
  ``{"run": "sfn-<execution name>", "ix": ""}``: the run id, and the foreach indices of the
  current iteration (``"3"``, ``"3-1"``, empty outside any foreach);
* each step is a Task on ``batch:submitJob.sync`` running ``python -m mfc.sfn.task`` in the
  step's image with a few arguments (datastore, code package, step, run, indices, retry count)
  in its container overrides, so their size does not grow with the flow's;
* a static split is a Parallel with a branch per target, followed by the join's state;
* a foreach is a Map over the foreach task's split list (``<task>/split.json`` in the datastore):
  Distributed (an ``ItemReader`` reads the list from S3, each iteration a child execution) or
  inline (an ``aws-sdk:s3:getObject`` Task reads it into the state first), followed by the join;
* a switch is its step's Task, an ``aws-sdk:s3:getObject`` Task reading the case it chose
  (``<task>/next.json``) into ``$.chosen``, and a Choice on it; the cases' states follow in the
  same scope and meet where the cases do. A switch that repeats its step loops back to the step's
  Task through a Pass state counting the repetition (``$.it``, set to 0 by a Pass on entering);
  state machines of flows without switches are unchanged;
* every Task, Parallel and Map has ``ResultPath: null``: no payload grows with the fan-out. A join
  finds its inputs in the datastore from task ids derived from the indices (see
  :mod:`mfc.taskid`).

``@retry`` becomes a Retry on ``States.TaskFailed`` (exponential backoff, full jitter), after a
Retry on Batch throttling; ``@catch`` a Catch to a fallback state that records the step as
caught (for a task killed outright: the task catches its own exceptions); ``@timeout`` the job's
``AttemptDurationSeconds``; ``--workflow-timeout`` the definition's ``TimeoutSeconds``.

``@exit_hook`` (and only then: a flow without it compiles as above) wraps the flow's states in a
Parallel of one branch (``mfc flow``) with a Catch on ``States.ALL`` whose ``ResultPath`` is
``$.error``, so the run id in ``$.run`` survives into the error path. Success goes on to the
``mfc exit hooks`` Task, then Succeed; the Catch to ``mfc exit hooks (error)``, then a Fail
(error ``mfc.FlowFailed``, the flow's error and cause as JSON in its cause), so the execution
still fails. Both hook Tasks run
``python -m mfc.sfn.hooks`` in the flow's image (see :mod:`mfc.sfn.hooks`) and catch their own
failure: a hook never changes how the execution ends.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from mfc.exceptions import MfcError
from mfc.graph import FlowGraph, StepNode
from mfc.runner.batch_jobs import MAX_NAME, JobSettings, job_definition, resource_requirements, sanitize_name
from mfc.sfn.intrinsics import index_room
from mfc.sfn.settings import SfnSettings, StepSettings

TASK_MODULE = ("python", "-u", "-m", "mfc.sfn.task")
HOOK_MODULE = ("python", "-u", "-m", "mfc.sfn.hooks")
BATCH_SYNC = "arn:aws:states:::batch:submitJob.sync"
S3_GET = "arn:aws:states:::s3:getObject"
SDK_S3_GET = "arn:aws:states:::aws-sdk:s3:getObject"
INIT_STATE = "mfc init"
# the @exit_hook wrapper's states (a space in each: no step's state can take these names)
FLOW_STATE = "mfc flow"
HOOK_STATES = {"success": "mfc exit hooks", "error": "mfc exit hooks (error)"}
SUCCEED_STATE, FAIL_STATE = "mfc succeeded", "mfc failed"
FLOW_FAILED = "mfc.FlowFailed"  # the error of an @exit_hook flow's failed execution
SPLIT_FILE = "split.json"  # a foreach task's split list at a key the Map can name (no attempt in it)
CHOICE_FILE = "next.json"  # a switch task's chosen step, at a key its Choice state can name
THROTTLE_ERRORS = ["Batch.AWSBatchException", "Batch.TooManyRequestsException", "Batch.ServerException"]
# History events one Map iteration may spend before an inline Map is judged too big for one
# execution (AWS stops an execution at 25,000 events); see :func:`map_mode_for`.
INLINE_EVENT_BUDGET = 5_000
EVENTS_PER_TASK = 6  # TaskStateEntered, TaskScheduled, TaskStarted, TaskSubmitted, TaskSucceeded, TaskStateExited
EVENTS_PER_ITERATION = 2  # MapIterationStarted, MapIterationSucceeded
EVENTS_PER_FANOUT = 6  # a Map's or Parallel's own entered/started/succeeded/exited events
MAP_LABEL_LIMIT = 40
RETRY_ATTEMPT = "States.Format('{}', $$.State.RetryCount)"  # a state's attempt: how often it was retried
JOB_INDEX_ROOM = 24  # characters a job name keeps free for the foreach indices


def state_name(step: str, suffix: str = "") -> str:
    """The name of a step's state (``suffix``: its ``items``, ``foreach``, ``branches`` or
    ``catch`` state); at most 80 characters, as Step Functions requires."""
    name = f"{step} {suffix}" if suffix else step
    if len(name) <= 80:
        return name
    import hashlib

    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:71]}-{digest}"


def map_label(step: str) -> str:
    """A Distributed Map's ``Label`` (unique in the state machine, at most 40 characters): the
    step's name, a longer one cut and ending in a hash of the whole."""
    name = sanitize_name(step)
    if len(name) <= MAP_LABEL_LIMIT:
        return name
    import hashlib

    return f"{name[:MAP_LABEL_LIMIT - 9]}-{hashlib.sha256(step.encode()).hexdigest()[:8]}"


def literal(text: str) -> str:
    """``text`` as a string literal inside an intrinsic function. Characters the States Language
    would need escaped (``'``, ``{``, ``}``, ``\\``) are refused: emulators and AWS do not agree on
    the escapes, so values that may hold them (the run's tags) travel base64-encoded instead."""
    bad = sorted({ch for ch in text if ch in "'{}\\"})
    if bad:
        raise MfcError(f"{text[:80]!r} cannot go into a state machine definition: it contains {' '.join(bad)}",
                       hint="rename it without those characters")
    return f"'{text}'"


def s3_location(root: str) -> tuple[str, str]:
    """``(bucket, key prefix ending in / or empty)`` of an ``s3://`` datastore root."""
    if not root.startswith("s3://"):
        raise MfcError(f"Step Functions runs need an S3 datastore, not {root}",
                       hint="set datastore_root to s3://BUCKET/PREFIX (`mfc sandbox up` and MFC_PROFILE=sandbox "
                            "give one)")
    bucket, _, prefix = root[len("s3://"):].partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


class _Compiler:
    def __init__(self, graph: FlowGraph, settings: SfnSettings) -> None:
        self.graph = graph
        self.settings = settings
        self.bucket, self.prefix = s3_location(settings.datastore_root)
        missing = [s for s in graph.nodes if s not in settings.steps]
        if missing:
            raise MfcError(f"no Step Functions settings for step {missing[0]}")
        self.modes: dict[str, str] = {}
        self.loops = any(node.loops for node in graph.nodes.values())

    # -- the definition ----------------------------------------------------------------------------
    def definition(self) -> dict[str, Any]:
        hooked = self.settings.exit_hook_job is not None
        states: dict[str, Any] = {
            INIT_STATE: {"Type": "Pass", "Next": FLOW_STATE if hooked else state_name("start"),
                         "Parameters": {"run.$": "States.Format('sfn-{}', $$.Execution.Name)", "ix": "",
                                        **self._counter(0)}},
        }
        if hooked:
            flow: dict[str, Any] = {}
            first = self._sequence("start", None, 0, None, flow)
            states.update(self._exit_hook_states({"StartAt": first, "States": flow}))
        else:
            self._sequence("start", None, 0, None, states)
        definition: dict[str, Any] = {
            "Comment": f"mfc flow {self.settings.flow_name} (compiled by mfc; do not edit: `mfc sfn create` replaces it)",
            "StartAt": INIT_STATE,
            "States": states,
        }
        if self.settings.workflow_timeout:
            definition["TimeoutSeconds"] = int(self.settings.workflow_timeout)
        return definition

    def _exit_hook_states(self, branch: dict[str, Any]) -> dict[str, Any]:
        """The flow's states (``branch``) wrapped for ``@exit_hook`` (see the module docstring)."""
        job = self.settings.exit_hook_job
        assert job is not None
        states: dict[str, Any] = {FLOW_STATE: {
            "Type": "Parallel", "Branches": [branch], "ResultPath": None, "Next": HOOK_STATES["success"],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": HOOK_STATES["error"]}],
        }}
        for outcome, end in (("success", SUCCEED_STATE), ("error", FAIL_STATE)):
            args = [*(literal(a) for a in (*HOOK_MODULE, *self._fixed_arguments())), literal("--run"), "$.run",
                    literal("--outcome"), literal(outcome)]
            if outcome == "error":
                args += [literal("--error"), "$.error.Error"]
            base = sanitize_name(f"{self.settings.flow_name}-exit-hooks")[: MAX_NAME - JOB_INDEX_ROOM].rstrip("-_")
            state = self._job_state(base, {"mfc:exit-hooks": outcome}, 0, job, args)
            state["Retry"] = [_throttle_retry()]
            # a hook job that cannot run (no image, no capacity) is reported by Batch, not by the
            # execution's outcome; its error goes aside so the flow's own stays in $.error
            state["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.hook_error", "Next": end}]
            state["Next"] = end
            states[HOOK_STATES[outcome]] = state
        states[SUCCEED_STATE] = {"Type": "Succeed"}
        # a custom name: a Fail state may not raise a States.* error again; the flow's is in the cause
        states[FAIL_STATE] = {"Type": "Fail", "Error": FLOW_FAILED, "CausePath": "States.JsonToString($.error)"}
        return states

    def _sequence(self, step: str, stop: str | None, depth: int, after: str | None, states: dict[str, Any]) -> str:
        """Add the states from ``step`` up to ``stop`` (the join closing the enclosing split,
        excluded) to ``states``; the last goes on to ``after`` (None: it ends its scope).
        Returns the name of the first."""
        node = self.graph[step]
        if node.is_switch:
            return self._switch(node, stop, depth, after, states)
        if node.foreach_var is not None:
            return self._foreach(node, stop, depth, after, states)
        if len(node.out_funcs) > 1:
            return self._split(node, stop, depth, after, states)
        following = node.out_funcs[0] if node.out_funcs else None
        next_name = after if following is None or following == stop else self._sequence(following, stop, depth, after, states)
        return self._task(node, depth, next_name, states)

    def _split(self, node: StepNode, stop: str | None, depth: int, after: str | None, states: dict[str, Any]) -> str:
        join = self._join_of(node)
        next_name = after if join == stop else self._sequence(join, stop, depth, after, states)
        branches = []
        for target in node.out_funcs:
            scope: dict[str, Any] = {}
            first = self._sequence(target, join, depth, None, scope)
            branches.append({"StartAt": first, "States": scope})
        parallel = state_name(node.name, "branches")
        states[parallel] = {"Type": "Parallel", "Branches": branches, "ResultPath": None, **_goto(next_name)}
        return self._task(node, depth, parallel, states)

    def _switch(self, node: StepNode, stop: str | None, depth: int, after: str | None, states: dict[str, Any]) -> str:
        choices = []
        for target in node.successors():
            first = after if target == stop else self._sequence(target, stop, depth, after, states)
            choices.append({"Variable": "$.chosen.step", "StringEquals": target, **_goto(first)})
        task = state_name(node.name)
        if node.loops:
            again = state_name(node.name, "again")
            states[again] = {"Type": "Pass", "Parameters": {"run.$": "$.run", "ix.$": "$.ix",
                                                              "it.$": "States.MathAdd($.it, 1)"}, "Next": task}
            choices.append({"Variable": "$.chosen.step", "StringEquals": node.name, "Next": again})
        choice = state_name(node.name, "switch")
        states[choice] = {"Type": "Choice", "Choices": choices}
        read = state_name(node.name, "case")
        key = self._task_key(node, depth, CHOICE_FILE)
        states[read] = {
            "Type": "Task", "Resource": SDK_S3_GET, "Parameters": {"Bucket": self.bucket, "Key.$": key},
            "ResultSelector": {"step.$": "States.StringToJson($.Body)"}, "ResultPath": "$.chosen", "Next": choice,
            "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2}],
        }
        self._task(node, depth, read, states)
        if not node.loops:
            return task
        enter = state_name(node.name, "enter")
        states[enter] = {"Type": "Pass", "Parameters": {"run.$": "$.run", "ix.$": "$.ix", "it": 0}, "Next": task}
        return enter

    def _counter(self, value: int) -> dict[str, int]:
        """The loop count a scope starts with (only in flows with a looping switch)."""
        return {"it": value} if self.loops else {}

    def _foreach(self, node: StepNode, stop: str | None, depth: int, after: str | None, states: dict[str, Any]) -> str:
        join = self._join_of(node)
        next_name = after if join == stop else self._sequence(join, stop, depth, after, states)
        scope: dict[str, Any] = {}
        first = self._sequence(node.out_funcs[0], join, depth + 1, None, scope)
        mode = self.modes[node.name] = map_mode_for(self.settings.map_mode(node.name), self.settings.max_num_splits,
                                                    body_events(scope, self.settings.max_num_splits))
        ix = "States.Format('{}', $$.Map.Item.Index)" if depth == 0 else "States.Format('{}-{}', $.ix, $$.Map.Item.Index)"
        map_name = state_name(node.name, "foreach")
        body: dict[str, Any] = {"StartAt": first, "States": scope}
        state: dict[str, Any] = {
            "Type": "Map", "MaxConcurrency": int(self.settings.max_workers),
            "ItemSelector": {"run.$": "$.run", "ix.$": ix, **self._counter(0)}, "ResultPath": None,
        }
        key = self._split_key(node.name, depth)
        if mode == "distributed":
            state["ItemReader"] = {"Resource": S3_GET, "ReaderConfig": {"InputType": "JSON"},
                                   "Parameters": {"Bucket": self.bucket, "Key.$": key}}
            body["ProcessorConfig"] = {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
            state["Label"] = map_label(node.name)
        else:
            body["ProcessorConfig"] = {"Mode": "INLINE"}
            state["ItemsPath"] = "$.read.items"
        state["ItemProcessor"] = body
        state.update(_goto(next_name))
        states[map_name] = state
        entry = map_name
        if mode == "inline":
            items = state_name(node.name, "items")
            states[items] = {
                "Type": "Task", "Resource": SDK_S3_GET,
                "Parameters": {"Bucket": self.bucket, "Key.$": key},
                "ResultSelector": {"items.$": "States.StringToJson($.Body)"},
                "ResultPath": "$.read", "Next": map_name,
                "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2}],
            }
            entry = items
        return self._task(node, depth, entry, states)

    def _join_of(self, node: StepNode) -> str:
        if not node.matching_join:
            raise MfcError(f"{node.file}:{node.line}: step {node.name} splits but no join closes it, so it cannot "
                           "be compiled to Step Functions", hint="end each branch of the split in one join step")
        return node.matching_join

    # -- one step's states -------------------------------------------------------------------------
    def _task(self, node: StepNode, depth: int, next_name: str | None, states: dict[str, Any]) -> str:
        step = self.settings.steps[node.name]
        name = state_name(node.name)
        state = self._step_job(node, depth, step, self._arguments(node, depth))
        retry: list[dict[str, Any]] = [_throttle_retry()]
        if step.retries:
            retry.append({"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": max(1, int(round(step.retry_delay))),
                          "MaxAttempts": int(step.retries), "BackoffRate": 2.0, "JitterStrategy": "FULL"})
        state["Retry"] = retry
        if step.catch and node.foreach_var is None:
            fallback = state_name(node.name, "catch")
            state["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": fallback}]
            # the fallback is the attempt after the last retry, as in a local run (its own
            # RetryCount starts again at 0, which would reuse the first attempt's records)
            args = [*self._arguments(node, depth, literal(str(int(step.retries) + 1))), literal("--fallback"),
                    "$.error.Error"]
            states[fallback] = {**self._step_job(node, depth, step, args), **_goto(next_name),
                                "Retry": retry[:1]}
        state.update(_goto(next_name))
        states[name] = state
        return name

    def _step_job(self, node: StepNode, depth: int, step: StepSettings, args: list[str]) -> dict[str, Any]:
        room = max(JOB_INDEX_ROOM, 1 + index_room(depth, self.settings.max_num_splits))  # "-" + the indices
        base = sanitize_name(f"{self.settings.flow_name}-{node.name}")[: MAX_NAME - room].rstrip("-_")
        return self._job_state(base, {"mfc:step": node.name}, depth, step.job, args)

    def _job_state(self, base: str, labels: dict[str, str], depth: int, job: JobSettings,
                   args: list[str]) -> dict[str, Any]:
        """A ``batch:submitJob.sync`` Task running ``args`` as ``job``, named ``base`` (plus the
        foreach indices ``depth`` deep), tagged with ``labels`` besides the flow's tags."""
        definition = job_definition(self.settings.flow_name, job)["jobDefinitionName"]
        parameters: dict[str, Any] = {"JobQueue": job.queue, "JobDefinition": definition}
        if depth:
            parameters["JobName.$"] = f"States.Format('{{}}-{{}}', {literal(base)}, $.ix)"
        else:
            parameters["JobName"] = base
        environment = {**self.settings.environment, "PYTHONUNBUFFERED": "1",
                       "MFC_DATASTORE_ROOT": self.settings.datastore_root}
        parameters["ContainerOverrides"] = {
            "Command.$": f"States.Array({', '.join(args)})",
            "Environment": [{"Name": k, "Value": v} for k, v in sorted(environment.items()) if v != ""],
            "ResourceRequirements": [{"Type": r["type"], "Value": r["value"]}
                                     for r in resource_requirements(job.cpu, job.memory, job.gpu)],
        }
        if job.timeout:
            parameters["Timeout"] = {"AttemptDurationSeconds": int(job.timeout)}
        tags = {k: v for k, v in job.tags}
        tags.update({"mfc:flow": self.settings.flow_name, **labels,
                     "mfc:state-machine": self.settings.state_machine_name})
        tags["mfc:run.$"] = "$.run"  # what `mfc sfn terminate` finds a run's jobs by
        parameters["Tags"] = dict(sorted(tags.items()))
        parameters["PropagateTags"] = True
        return {"Type": "Task", "Resource": BATCH_SYNC, "Parameters": parameters, "ResultPath": None}

    def _arguments(self, node: StepNode, depth: int, attempt: str = RETRY_ATTEMPT) -> list[str]:
        """The intrinsic-function arguments of the step's command (see :mod:`mfc.sfn.task`);
        ``attempt``: the expression of its attempt number."""
        s = self.settings
        args = [literal(a) for a in (*TASK_MODULE, *self._fixed_arguments(), "--step", node.name)]
        args += [literal("--run"), "$.run"]
        if depth:
            args += [literal("--ix"), "$.ix"]
        if node.loops or any(self.graph[p].loops for p in node.in_funcs):
            args += [literal("--iter"), "States.Format('{}', $.it)"]
        args += [literal("--attempt"), attempt]
        if node.name == "start":
            info = json.dumps({"user": s.user, "tags": sorted(s.tags), "state_machine": s.state_machine_name},
                              separators=(",", ":"), sort_keys=True)
            encoded = base64.urlsafe_b64encode(info.encode()).decode()
            args += [literal("--execution"), "$$.Execution.Id", literal("--run-info"), literal(encoded)]
        if node.foreach_var is not None:
            args += [literal("--max-splits"), literal(str(s.max_num_splits))]
        return args

    def _fixed_arguments(self) -> list[str]:
        """The arguments every job's command starts with: where the run's data and code are."""
        s = self.settings
        return ["--root", s.datastore_root, "--flow", s.flow_name, "--code", s.code_sha256, "--file", s.flow_file]

    def _split_key(self, step: str, depth: int) -> str:
        return self._task_key(self.graph[step], depth, SPLIT_FILE)

    def _task_key(self, node: StepNode, depth: int, name: str) -> str:
        """The key of the file ``name`` a task of ``node`` writes for the state machine to read."""
        step = literal(node.name)
        loop = ".{}" if node.loops else ""
        counter = ", $.it" if node.loops else ""
        task = (f"States.Format('{{}}-{{}}{loop}', {step}, $.ix{counter})" if depth
                else f"States.Format('{{}}{loop}', {step}{counter})" if node.loops else step)
        head = literal(f"{self.prefix}{self.settings.flow_name}")
        return f"States.Format('{{}}/{{}}/{{}}/{{}}/{name}', {head}, $.run, {step}, {task})"


def _throttle_retry() -> dict[str, Any]:
    """The Retry every Batch task state starts with: on Batch's throttling and server errors."""
    return {"ErrorEquals": list(THROTTLE_ERRORS), "IntervalSeconds": 2, "MaxAttempts": 8, "BackoffRate": 2,
            "MaxDelaySeconds": 60, "JitterStrategy": "FULL"}


def _goto(next_name: str | None) -> dict[str, Any]:
    return {"Next": next_name} if next_name else {"End": True}


def body_events(states: dict[str, Any], width: int) -> int:
    """History events one pass through ``states`` spends: its Tasks, and what its Parallels and
    inline Maps (``width`` iterations each) spend inside; a Distributed Map's iterations are
    child executions with histories of their own."""
    total = 0
    for state in states.values():
        kind = state["Type"]
        if kind == "Task":
            total += EVENTS_PER_TASK
        elif kind == "Parallel":
            total += EVENTS_PER_FANOUT + sum(body_events(b["States"], width) for b in state["Branches"])
        elif kind == "Map":
            total += EVENTS_PER_FANOUT
            if state["ItemProcessor"]["ProcessorConfig"]["Mode"] == "INLINE":
                total += width * (body_events(state["ItemProcessor"]["States"], width) + EVENTS_PER_ITERATION)
        else:
            total += 2
    return total


def map_mode_for(mode: str, width: int, iteration_events: int) -> str:
    """``inline`` or ``distributed`` for a foreach asked to be ``mode`` (``auto``: inline while
    ``width`` iterations of ``iteration_events`` each stay within :data:`INLINE_EVENT_BUDGET`)."""
    if mode in ("inline", "distributed"):
        return mode
    return "inline" if width * (iteration_events + EVENTS_PER_ITERATION) <= INLINE_EVENT_BUDGET else "distributed"


def compile_definition(graph: FlowGraph, settings: SfnSettings) -> dict[str, Any]:
    """The state machine definition of ``graph`` (see the module docstring)."""
    return _Compiler(graph, settings).definition()


def compile_with_modes(graph: FlowGraph, settings: SfnSettings) -> tuple[dict[str, Any], dict[str, str]]:
    """The definition and the Map mode each foreach step got."""
    compiler = _Compiler(graph, settings)
    definition = compiler.definition()
    return definition, dict(compiler.modes)


def definition_json(definition: dict[str, Any]) -> str:
    """The definition as deployed: sorted keys, two-space indents, a final newline."""
    return json.dumps(definition, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def job_definitions(graph: FlowGraph, settings: SfnSettings) -> list[dict[str, Any]]:
    """``register_job_definition`` arguments for the jobs the definition names, one per distinct
    job settings, sorted by name."""
    bodies = {}
    jobs = [settings.steps[step].job for step in graph.nodes]
    if settings.exit_hook_job is not None:
        jobs.append(settings.exit_hook_job)
    for job in jobs:
        body = job_definition(settings.flow_name, job)
        bodies[body["jobDefinitionName"]] = body
    return [bodies[name] for name in sorted(bodies)]
