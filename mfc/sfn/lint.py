"""``mfc sfn lint``: what Step Functions, AWS Batch and IAM would refuse or cut short in a compiled
definition, found before anything is deployed, each finding saying what to change.

:func:`lint` is pure (graph, settings, definition, Map modes, and optionally the actions a role
allows): the limits are AWS's documented quotas (definition 1 MiB, names 80 characters, container
overrides 8 KiB, 25,000 history events per execution, execution input 256 KiB, Batch job names
128 characters of letters, digits, ``-`` and ``_``, Distributed Map labels 40, Batch's 60 s
minimum attempt duration, an inline Map's 40 iterations at a time).
Sizes that depend on run-time values (run id, foreach indices, retry count) are judged at their
largest (see :mod:`mfc.sfn.intrinsics`).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mfc.graph import FlowGraph
from mfc.runner.batch_jobs import MAX_NAME, MIN_ATTEMPT_SECONDS
from mfc.sfn import intrinsics
from mfc.sfn.compiler import (
    BATCH_SYNC,
    EVENTS_PER_ITERATION,
    EVENTS_PER_TASK,
    MAP_LABEL_LIMIT,
    S3_GET,
    SDK_S3_GET,
    body_events,
    definition_json,
    map_label,
    state_name,
)
from mfc.sfn.settings import STATE_MACHINE_NAME_LIMIT, SfnSettings, state_machine_name

DEFINITION_LIMIT = 1_048_576  # bytes of the definition's JSON
STATE_NAME_LIMIT = 80
OVERRIDES_LIMIT = 8_192  # bytes of a Batch job's container overrides
HISTORY_LIMIT = 25_000  # events in one execution's history
EXECUTION_EVENTS = 2  # ExecutionStarted, ExecutionSucceeded
EXECUTION_INPUT_LIMIT = 262_144  # bytes of an execution's input
INLINE_CONCURRENCY = 40  # iterations an inline Map runs at once, whatever its MaxConcurrency
LEVELS = ("error", "warning", "info")
STATE_MACHINE_ROLE, JOB_ROLE = "state_machine", "job"
ROLE_LABELS = {STATE_MACHINE_ROLE: "the state machine role (sfn_role)", JOB_ROLE: "the Batch job role (batch_job_role)"}
BATCH_SYNC_ACTIONS = ("batch:SubmitJob", "batch:DescribeJobs", "batch:TerminateJob",
                      "events:PutTargets", "events:PutRule", "events:DescribeRule")
DISTRIBUTED_MAP_ACTIONS = ("states:StartExecution", "states:DescribeExecution", "states:StopExecution")
DATASTORE_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket")
_JOB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_MACHINE_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Finding:
    """One thing lint found: ``level`` (error: AWS would refuse it or stop the execution;
    warning: it runs, not as written; info: what the definition amounts to), what it is and what
    to change."""

    level: str
    what: str
    fix: str


@dataclass(frozen=True)
class Placed:
    """A state and where it sits: how many Maps enclose it, and whether it runs in a Distributed
    Map's child execution (``execution``: that Map's state name, None for the top level)."""

    name: str
    state: dict[str, Any]
    depth: int
    execution: str | None


def walk(states: dict[str, Any], depth: int = 0, execution: str | None = None) -> Iterator[Placed]:
    """Every state of ``states``, those of Parallel branches and Map bodies included."""
    for name, state in states.items():
        yield Placed(name, state, depth, execution)
        if state.get("Type") == "Parallel":
            for branch in state.get("Branches", []):
                yield from walk(branch.get("States", {}), depth, execution)
        elif state.get("Type") == "Map":
            body = state.get("ItemProcessor") or state.get("Iterator") or {}
            child = name if _distributed(state) else execution
            yield from walk(body.get("States", {}), depth + 1, child)


def _distributed(state: dict[str, Any]) -> bool:
    body = state.get("ItemProcessor") or {}
    return (body.get("ProcessorConfig") or {}).get("Mode") == "DISTRIBUTED"


# -- IAM --------------------------------------------------------------------------------------------
def required_actions(definition: dict[str, Any]) -> dict[str, list[str]]:
    """The IAM actions each role must allow for what ``definition`` uses: ``state_machine``
    (``.sync`` Batch tasks, S3 reads of split lists, Distributed Map child executions) and ``job``
    (the tasks read and write the datastore; the start task reads the execution's input)."""
    machine: set[str] = set()
    job: set[str] = set()
    for placed in walk(definition.get("States", {})):
        state = placed.state
        resource = state.get("Resource")
        if resource == BATCH_SYNC:
            machine.update(BATCH_SYNC_ACTIONS)
            job.update(DATASTORE_ACTIONS)
            if (state.get("Parameters") or {}).get("Tags"):
                machine.add("batch:TagResource")  # Batch authorises tags given at submission on their own
            if "$$.Execution.Id" in _command(state):
                job.add("states:DescribeExecution")
        elif resource in (S3_GET, SDK_S3_GET):
            machine.add("s3:GetObject")
        if state.get("Type") == "Map":
            if (state.get("ItemReader") or {}).get("Resource") == S3_GET:
                machine.add("s3:GetObject")
            if _distributed(state):
                machine.update(DISTRIBUTED_MAP_ACTIONS)
    return {role: sorted(actions) for role, actions in ((STATE_MACHINE_ROLE, machine), (JOB_ROLE, job)) if actions}


def allows(patterns: Sequence[str], action: str) -> bool:
    """Whether one of the allowed action ``patterns`` (``batch:*``, ``s3:Get*``, ``*``) covers
    ``action``; IAM compares actions without regard to case."""
    for pattern in patterns:
        regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
        if re.fullmatch(regex, action, flags=re.IGNORECASE):
            return True
    return False


def policy_actions(document: dict[str, Any] | str) -> list[str]:
    """The action patterns the ``Allow`` statements of an IAM policy document grant (``Deny``
    and ``NotAction`` statements are not modelled: this is what lint checks against)."""
    data = json.loads(document) if isinstance(document, str) else document
    statements = data.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    actions: list[str] = []
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        action = statement.get("Action", [])
        actions.extend([action] if isinstance(action, str) else action)
    return actions


def _iam_findings(definition: dict[str, Any],
                  role_policy: Sequence[str] | Mapping[str, Sequence[str]] | None) -> list[Finding]:
    needed = required_actions(definition)
    if role_policy is None:
        return [Finding("info", f"{ROLE_LABELS[role]} must allow {', '.join(actions)}",
                        "check it with `aws iam simulate-principal-policy` or pass its policy to lint")
                for role, actions in needed.items()]
    given = {STATE_MACHINE_ROLE: role_policy} if not isinstance(role_policy, Mapping) else role_policy
    findings = []
    for role, patterns in given.items():
        missing = [a for a in needed.get(role, []) if not allows(list(patterns), a)]
        findings += [Finding("error", f"{ROLE_LABELS.get(role, role)} does not allow {action}, which the "
                                      f"definition needs ({_why(action)})",
                             f"add {action} to that role's policy")
                     for action in missing]
    return findings


def _why(action: str) -> str:
    if action in BATCH_SYNC_ACTIONS:
        return "Batch jobs run as .sync tasks"
    if action == "batch:TagResource":
        return "the jobs are submitted with tags"
    if action in DISTRIBUTED_MAP_ACTIONS:
        return "a Distributed Map runs its iterations as child executions"
    if action == "s3:GetObject":
        return "a Map reads its foreach's split list from S3"
    return "the tasks use it"


# -- the checks --------------------------------------------------------------------------------------
def lint(graph: FlowGraph, settings: SfnSettings, definition: dict[str, Any], modes: dict[str, str],
         role_policy: Sequence[str] | Mapping[str, Sequence[str]] | None = None) -> list[Finding]:
    """Every finding for ``definition`` (compiled from ``graph`` and ``settings``; ``modes``: the
    Map mode each foreach step got), errors first. ``role_policy``: the actions the state
    machine role allows (or, as a mapping, each role's: ``state_machine``, ``job``); each needed
    action it lacks is an error."""
    findings = [*_size_findings(definition), *_name_findings(settings, definition),
                *_override_findings(settings, definition), *_job_name_findings(settings, definition),
                *_history_findings(settings, definition, modes), *_loop_findings(graph),
                *_timeout_findings(graph, settings),
                *_iam_findings(definition, role_policy)]
    return sorted(findings, key=lambda f: LEVELS.index(f.level))


def _size_findings(definition: dict[str, Any]) -> list[Finding]:
    size = len(definition_json(definition).encode())
    if size <= DEFINITION_LIMIT:
        return []
    return [Finding("error", f"the definition is {size:,} bytes, over Step Functions' {DEFINITION_LIMIT:,} (1 MiB)",
                    "split the flow into smaller flows, or shorten what every state repeats (datastore root, "
                    "environment, tags)")]


def _name_findings(settings: SfnSettings, definition: dict[str, Any]) -> list[Finding]:
    findings = []
    name = settings.state_machine_name
    if len(name) > STATE_MACHINE_NAME_LIMIT or not _MACHINE_NAME.fullmatch(name):
        why = (f"is {len(name)} characters, over Step Functions' {STATE_MACHINE_NAME_LIMIT}"
               if len(name) > STATE_MACHINE_NAME_LIMIT else "has characters Step Functions refuses")
        hashed = ", which keeps the head and ends in a hash of the whole" if len(name) > STATE_MACHINE_NAME_LIMIT else ""
        findings.append(Finding("error", f"state machine name {name!r} {why}",
                                f"deploy it as {state_machine_name(name)!r} (--name){hashed}"))
    seen: dict[str, int] = {}
    for placed in walk(definition.get("States", {})):
        seen[placed.name] = seen.get(placed.name, 0) + 1
        if len(placed.name) > STATE_NAME_LIMIT:
            findings.append(Finding("error", f"state {placed.name[:40]!r}... is {len(placed.name)} characters, over "
                                             f"Step Functions' {STATE_NAME_LIMIT}",
                                    f"shorten the step's name, or compile it with mfc (which names it "
                                    f"{state_name(placed.name)!r})"))
    findings += [Finding("error", f"state name {state!r} is used {count} times; state names must be unique across "
                                  "the whole state machine, Parallel branches and Map bodies included",
                         "rename the steps behind those states")
                 for state, count in seen.items() if count > 1]
    return findings + _label_findings(definition)


def _label_findings(definition: dict[str, Any]) -> list[Finding]:
    """Distributed Map labels: unique in the state machine, at most 40 characters, no spaces or
    special characters."""
    labels: dict[str, list[str]] = {}
    findings = []
    for placed in walk(definition.get("States", {})):
        label = placed.state.get("Label") if placed.state.get("Type") == "Map" else None
        if label is None:
            continue
        labels.setdefault(label, []).append(placed.name)
        if len(label) > MAP_LABEL_LIMIT or not _JOB_NAME.fullmatch(label):
            findings.append(Finding("error", f"Map state {placed.name!r}: Label {label!r} must be at most "
                                             f"{MAP_LABEL_LIMIT} letters, digits, - or _",
                                    f"label it {map_label(label)!r}"))
    findings += [Finding("error", f"Map states {', '.join(map(repr, names))} share the Label {label!r}; "
                                  "Distributed Map labels must be unique in the state machine",
                         "give each Map its own Label (shorter, distinct foreach step names)")
                 for label, names in labels.items() if len(names) > 1]
    return findings


def _command(state: dict[str, Any]) -> str:
    overrides = (state.get("Parameters") or {}).get("ContainerOverrides") or {}
    return str(overrides.get("Command.$") or "")


def _batch_states(definition: dict[str, Any]) -> Iterator[Placed]:
    return (p for p in walk(definition.get("States", {})) if p.state.get("Resource") == BATCH_SYNC)


def overrides_size(state: dict[str, Any], depth: int, max_num_splits: int) -> tuple[int, int]:
    """``(bytes of the container overrides at their largest, bytes of their command)`` of a
    Batch task state ``depth`` foreach deep (the command as its ``Command.$`` can expand)."""
    overrides = dict((state.get("Parameters") or {}).get("ContainerOverrides") or {})
    expression = overrides.pop("Command.$", None)
    if expression is not None:
        overrides["Command"] = intrinsics.longest(intrinsics.parse(str(expression)), depth, max_num_splits)
    command = overrides.get("Command") or []
    def size(value: Any) -> int:
        return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())

    return size(overrides), size(command)


def _override_findings(settings: SfnSettings, definition: dict[str, Any]) -> list[Finding]:
    findings = []
    for placed in _batch_states(definition):
        size, command = overrides_size(placed.state, placed.depth, settings.max_num_splits)
        if size <= OVERRIDES_LIMIT:
            continue
        environment = size - command
        findings.append(Finding(
            "error", f"state {placed.name!r}: its container overrides can reach {size:,} bytes, over AWS Batch's "
                     f"{OVERRIDES_LIMIT:,} (8 KiB)",
            f"make them smaller: the command takes {command:,} bytes (fewer or shorter --tag values, a shorter "
            f"datastore root or flow file path), the environment and resources {environment:,}"))
    return findings


def _job_name_findings(settings: SfnSettings, definition: dict[str, Any]) -> list[Finding]:
    findings = []
    for placed in _batch_states(definition):
        parameters = placed.state.get("Parameters") or {}
        if "JobName.$" in parameters:
            node = intrinsics.parse(str(parameters["JobName.$"]))
            longest = intrinsics.longest(node, placed.depth, settings.max_num_splits)
            shown = intrinsics.shown(node)
        else:
            longest = shown = str(parameters.get("JobName", ""))
        text = longest if isinstance(longest, str) else ",".join(longest)
        if not _JOB_NAME.fullmatch(text):
            findings.append(Finding("error", f"state {placed.name!r}: Batch job name {shown!r} has characters AWS "
                                             "Batch refuses (letters, digits, - and _ only, starting with a letter "
                                             "or digit)",
                                    "rename the flow or step, or let the compiler name the job"))
        elif len(text) > MAX_NAME:
            findings.append(Finding("error", f"state {placed.name!r}: Batch job name {shown!r} can reach "
                                             f"{len(text)} characters with its foreach indices, over AWS Batch's "
                                             f"{MAX_NAME}",
                                    "shorten the flow or step name"))
    return findings


def _history_findings(settings: SfnSettings, definition: dict[str, Any], modes: dict[str, str]) -> list[Finding]:
    width = settings.max_num_splits
    states = definition.get("States", {})
    maps = {p.name: p for p in walk(states) if p.state.get("Type") == "Map"}
    findings = []
    for step, mode in sorted(modes.items()):
        placed = maps.get(state_name(step, "foreach"))
        if placed is None:
            continue
        body = (placed.state.get("ItemProcessor") or {}).get("States", {})
        per_item = body_events(body, width) + EVENTS_PER_ITERATION
        asked = settings.map_mode(step)
        how = "chosen automatically" if asked == "auto" else f"--map-mode {asked}"
        if mode == "distributed":
            what = (f"foreach {step}: Distributed Map ({how}): each of up to {width:,} items (max_num_splits) runs "
                    f"as a child execution of about {per_item + EXECUTION_EVENTS:,} history events")
        else:
            what = (f"foreach {step}: inline Map ({how}): up to {width:,} items (max_num_splits) x about {per_item:,} "
                    f"history events = {width * per_item:,} in the execution running it")
        findings.append(Finding("info", what, f"--map-mode {step}=inline|distributed and --max-num-splits N change it"))
        concurrency = int(placed.state.get("MaxConcurrency") or 0)
        if mode == "inline" and (concurrency == 0 or concurrency > INLINE_CONCURRENCY) and width > INLINE_CONCURRENCY:
            findings.append(Finding("warning", f"foreach {step}: an inline Map runs at most {INLINE_CONCURRENCY} "
                                               f"iterations at a time, not the {concurrency or 'unlimited'} of "
                                               "max_workers",
                                    f"--map-mode {step}=distributed to run more at once"))
    executions: dict[str | None, dict[str, Any]] = {None: states}
    executions.update({name: (p.state.get("ItemProcessor") or {}).get("States", {})
                       for name, p in maps.items() if _distributed(p.state)})
    for execution, scope in executions.items():
        events = EXECUTION_EVENTS + body_events(scope, width)
        if events <= HISTORY_LIMIT:
            if execution is None:
                findings.append(Finding("info", f"an execution needs about {events:,} history events with "
                                                f"{width:,}-way foreaches (Step Functions stops one at {HISTORY_LIMIT:,})",
                                        "nothing to change"))
            continue
        inline = [step for step, mode in sorted(modes.items()) if mode == "inline"
                  and state_name(step, "foreach") in maps and maps[state_name(step, "foreach")].execution == execution]
        where = "an execution" if execution is None else f"each child execution of {execution!r}"
        fits = _widest_fitting(scope)
        fix = " or ".join([*_distributed_fixes(scope, inline, width),
                           f"--max-num-splits {fits}" if fits else "split the flow: even one item per foreach is "
                                                                   "too many events"])
        findings.append(Finding("error", f"{where} may need about {events:,} history events with {width:,}-way "
                                         f"foreaches, over Step Functions' {HISTORY_LIMIT:,}: it would be stopped",
                                fix))
    return findings


def _loop_findings(graph: FlowGraph) -> list[Finding]:
    """A looping switch repeats as often as its data says: no count of events can bound it."""
    per_repetition = EVENTS_PER_TASK * 2 + 2 * 2  # its Task and the case read, the Choice and the Pass
    return [Finding("warning", f"step {node.name} repeats until its switch chooses another case: each repetition "
                               f"spends about {per_repetition} history events of the execution running it, which "
                               f"Step Functions stops at {HISTORY_LIMIT:,}",
                    "bound the repetitions in the step (or move a long loop into a foreach over its rounds)")
            for node in graph if node.loops]


def _distributed_fixes(scope: dict[str, Any], inline: list[str], width: int) -> list[str]:
    """The ``--map-mode`` choices that bring ``scope`` within the history limit: each inline
    foreach whose Map alone, made Distributed, does it, else all of them together."""
    def fits(steps: list[str]) -> bool:
        switched = copy.deepcopy(scope)
        names = {state_name(step, "foreach") for step in steps}
        for placed in walk(switched):
            if placed.name in names:
                placed.state["ItemProcessor"]["ProcessorConfig"] = {"Mode": "DISTRIBUTED"}
        return EXECUTION_EVENTS + body_events(switched, width) <= HISTORY_LIMIT

    single = [f"--map-mode {step}=distributed" for step in inline if fits([step])]
    if single or not inline or not fits(inline):
        return single
    return [" ".join(f"--map-mode {step}=distributed" for step in inline)]


def _widest_fitting(scope: dict[str, Any]) -> int:
    """The largest foreach width whose events in ``scope`` stay within the history limit (0: none)."""
    low, high = 0, HISTORY_LIMIT
    while low < high:
        middle = (low + high + 1) // 2
        if EXECUTION_EVENTS + body_events(scope, middle) <= HISTORY_LIMIT:
            low = middle
        else:
            high = middle - 1
    return low


def _timeout_findings(graph: FlowGraph, settings: SfnSettings) -> list[Finding]:
    findings = []
    for step, step_settings in settings.steps.items():
        seconds = step_settings.timeout
        if seconds is None or seconds >= MIN_ATTEMPT_SECONDS:
            continue
        node = graph.nodes.get(step)
        where = f"{node.file}:{node.line}: " if node else ""
        findings.append(Finding("warning", f"{where}step {step}: @timeout of {seconds:g} s is shorter than AWS Batch's "
                                           f"minimum attempt duration: on Step Functions the job gets "
                                           f"{MIN_ATTEMPT_SECONDS} s",
                                f"raise @timeout to at least {MIN_ATTEMPT_SECONDS} seconds"))
    return findings


def execution_input_problem(text: str) -> str | None:
    """Why ``text`` cannot be an execution's input (over 256 KiB), or None."""
    size = len(text.encode())
    if size <= EXECUTION_INPUT_LIMIT:
        return None
    return (f"the execution input is {size:,} bytes, over Step Functions' {EXECUTION_INPUT_LIMIT:,} (256 KiB): "
            "pass large values as a file in S3 and its path as the parameter")


def format_findings(findings: Sequence[Finding]) -> str:
    """The findings as lint prints them: ``level: what`` then ``  fix: ...``, and a count."""
    lines = []
    for finding in findings:
        lines += [f"{finding.level}: {finding.what}", f"  fix: {finding.fix}"]
    counts = {level: sum(f.level == level for f in findings) for level in LEVELS}
    lines.append(f"{_plural(counts['error'], 'error')}, {_plural(counts['warning'], 'warning')}, "
                 f"{_plural(counts['info'], 'note')}")
    return "\n".join(lines) + "\n"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
