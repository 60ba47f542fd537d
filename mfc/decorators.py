"""Step and flow decorators: ``@step``, ``@retry``, ``@catch``, ``@timeout``, ``@environment``,
``@resources``, ``@batch``, ``@pypi``, ``@conda``, ``@card``, ``@secrets`` on steps; ``@schedule``,
``@project``, ``@pypi_base``, ``@conda_base``, ``@trigger``, ``@trigger_on_finish``, ``@exit_hook`` on flows.

Decorators only record their (validated) arguments on the function or class; the runner reads
them. Each may be used bare (``@retry``) or called (``@retry(times=2)``), and must sit above
``@step``. An unknown argument is a clear error naming the file and line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

from mfc.exceptions import MfcError

if TYPE_CHECKING:
    from mfc.flowspec import FlowSpec
    from mfc.graph import FlowGraph


class Decorator:
    """A recorded decorator: its name and its arguments merged over the defaults."""

    name: str = ""
    defaults: dict[str, Any] = {}
    allow_multiple = False  # True: a step may carry several (``@card``), a flow several combined (``@exit_hook``)

    def __init__(self, attributes: dict[str, Any] | None = None, *, where: str = "") -> None:
        unknown = sorted(set(attributes or {}) - set(self.defaults))
        if unknown:
            allowed = ", ".join(sorted(self.defaults)) or "none"
            raise MfcError(f"{where}@{self.name} has no argument {unknown[0]!r} (allowed: {allowed})")
        self.attributes = {**self.defaults, **(attributes or {})}
        self.where = where
        self.validate()

    def validate(self) -> None:
        """Check argument values; raise MfcError naming the decorator on a bad one."""

    def _number(self, key: str, minimum: float = 0) -> float:
        value = self.attributes[key]
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise MfcError(f"{self.where}@{self.name}({key}={value!r}): expected a number") from None
        if number < minimum:
            raise MfcError(f"{self.where}@{self.name}({key}={value!r}): must be >= {minimum:g}")
        return number

    def combined(self, later: Decorator) -> Decorator:
        """This flow decorator and ``later`` (the same one applied again above it) as one; only
        for flow decorators with ``allow_multiple``."""
        raise MfcError(f"{later.where}@{self.name} cannot be combined")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.attributes.items() if v != self.defaults.get(k))
        return f"@{self.name}({args})"


class RetryDecorator(Decorator):
    name = "retry"
    defaults = {"times": 3, "minutes_between_retries": 2}

    def validate(self) -> None:
        self.attributes["times"] = int(self._number("times"))
        self._number("minutes_between_retries")


class CatchDecorator(Decorator):
    name = "catch"
    defaults = {"var": None, "print_exception": True}


class TimeoutDecorator(Decorator):
    name = "timeout"
    defaults = {"seconds": 0, "minutes": 0, "hours": 0}

    @property
    def total_seconds(self) -> float:
        return self._number("seconds") + 60 * self._number("minutes") + 3600 * self._number("hours")

    def validate(self) -> None:
        if self.total_seconds <= 0:
            raise MfcError(f"{self.where}@timeout needs seconds, minutes or hours greater than 0")


class EnvironmentDecorator(Decorator):
    name = "environment"
    defaults = {"vars": {}}

    def validate(self) -> None:
        if not isinstance(self.attributes["vars"], dict):
            raise MfcError(f"{self.where}@environment(vars=...) must be a dict of names to strings")
        self.attributes["vars"] = {str(k): str(v) for k, v in self.attributes["vars"].items()}


class ResourcesDecorator(Decorator):
    name = "resources"
    defaults = {"cpu": 1, "memory": 4096, "gpu": None, "disk": None, "shared_memory": None}

    def validate(self) -> None:
        for key in ("cpu", "memory", "gpu", "shared_memory"):
            if self.attributes[key] is not None:
                self._number(key)


class BatchDecorator(Decorator):
    name = "batch"
    defaults = {
        "cpu": 1, "gpu": 0, "memory": 4096, "image": None, "queue": None, "iam_role": None,
        "execution_role": None, "shared_memory": None, "max_swap": None, "swappiness": None,
        "use_tmpfs": False, "tmpfs_tempdir": True, "tmpfs_size": None, "tmpfs_path": None,
        "inferentia": 0, "trainium": None, "efa": 0, "host_volumes": None, "efs_volumes": None,
        "ephemeral_storage": None, "log_driver": None, "log_options": None, "privileged": False,
        "aws_batch_tags": None,
    }

    def validate(self) -> None:
        for key in ("cpu", "gpu", "memory"):
            if self.attributes[key] is not None:
                self._number(key)


class CardDecorator(Decorator):
    """``@card(type="default", id=None, options={}, timeout=45)``: after the step succeeds, render
    a card (an HTML report, see :mod:`mfc.cards`) and store it with the task. A step may carry
    several, told apart by ``id``; ``type`` names a registered card type (unknown types give an
    error card at render time, as in Metaflow)."""

    name = "card"
    defaults = {"type": "default", "id": None, "options": {}, "timeout": 45, "scope": "task", "rank": None,
                "save_errors": True, "customize": False, "refresh_interval": 5}
    allow_multiple = True

    def validate(self) -> None:
        from mfc.pathspec import is_valid

        for key in ("type", "id"):
            value = self.attributes[key]
            if key == "id" and value is None:
                continue
            if not isinstance(value, str) or not is_valid(value, "task id"):
                raise MfcError(f"{self.where}@card({key}={value!r}): expected a name of letters, digits, '_', "
                               "'.' and '-', starting with a letter or digit")
        if not isinstance(self.attributes["options"], dict):
            raise MfcError(f"{self.where}@card(options=...) must be a dict")
        self.attributes["timeout"] = self._number("timeout")
        if self.attributes["timeout"] <= 0:
            raise MfcError(f"{self.where}@card(timeout={self.attributes['timeout']!r}): must be greater than 0")


class PypiDecorator(Decorator):
    name = "pypi"
    defaults = {"packages": {}, "python": None, "disabled": False}


class SecretsDecorator(Decorator):
    """``@secrets(sources=[...], role=None)``: before the step runs, read each source (a secret id
    or ARN, or ``{"type": "aws-secrets-manager", "id": ..., "options": {...}}``) from AWS Secrets
    Manager and set its keys as environment variables of the task (see docs/secrets.md)."""

    name = "secrets"
    defaults = {"sources": [], "role": None}

    def validate(self) -> None:
        from mfc.runner.secrets import parse_sources

        self.attributes["sources"] = parse_sources(self.attributes["sources"], self.where)


class ScheduleDecorator(Decorator):
    name = "schedule"
    defaults = {"hourly": False, "daily": True, "weekly": False, "cron": None, "timezone": None}


class ProjectDecorator(Decorator):
    name = "project"
    defaults = {"name": None, "branch": None, "production": False}


class PypiBaseDecorator(PypiDecorator):
    name = "pypi_base"


class CondaDecorator(Decorator):
    """``@conda(libraries={...}, packages={...}, python=..., disabled=...)``: no conda channel is
    reachable, so the libraries are resolved from PyPI under the same names (docs/environments.md)."""

    name = "conda"
    defaults = {"libraries": {}, "packages": {}, "python": None, "disabled": False}


class CondaBaseDecorator(CondaDecorator):
    name = "conda_base"


class TriggerDecorator(Decorator):
    """``@trigger(event=...)`` / ``(events=[...])``: a deployed flow starts when the event is
    published (``mfc event publish``); ``mfc run`` ignores it. ``options`` is accepted and unused."""

    name = "trigger"
    defaults = {"event": None, "events": [], "options": {}}

    def validate(self) -> None:
        from mfc.events.triggers import parse_events

        self.triggers = parse_events(self.attributes, self.where)


class TriggerOnFinishDecorator(Decorator):
    """``@trigger_on_finish(flow=...)`` / ``(flows=[...])``: a deployed flow starts when a run of
    the upstream flow's state machine succeeds; ``mfc run`` ignores it."""

    name = "trigger_on_finish"
    defaults = {"flow": None, "flows": [], "options": {}}

    def validate(self) -> None:
        from mfc.events.triggers import parse_flows

        self.triggers = parse_flows(self.attributes, self.where)


class ExitHookDecorator(Decorator):
    """``@exit_hook(on_success=[f, ...], on_error=[g, ...])``: after the run ends, call the
    success or the error hooks (functions, or their names / dotted import paths); a hook taking
    ``run`` gets the run. A failing hook is reported and does not change the run's status.
    Applied more than once to a flow, the hooks of each are called in the order the decorators
    are applied (the one nearest the class first), as Metaflow calls them."""

    name = "exit_hook"
    defaults = {"on_success": [], "on_error": [], "options": {}}
    allow_multiple = True

    def combined(self, later: Decorator) -> Decorator:
        """This decorator's hooks, then ``later``'s (applied after it, i.e. above it)."""
        return ExitHookDecorator({"on_success": [*self.attributes["on_success"], *later.attributes["on_success"]],
                                  "on_error": [*self.attributes["on_error"], *later.attributes["on_error"]],
                                  "options": {**self.attributes["options"], **later.attributes["options"]}},
                                 where=self.where)

    def validate(self) -> None:
        if not self.attributes["on_success"] and not self.attributes["on_error"]:
            raise MfcError(f"{self.where}@exit_hook needs on_success or on_error (a list of functions)")
        for key in ("on_success", "on_error"):
            names = []
            for hook in self.attributes[key]:
                if isinstance(hook, str):
                    names.append(hook)
                elif callable(hook):
                    names.append(hook.__name__)
                else:
                    raise MfcError(f"{self.where}@exit_hook({key}=...): {hook!r} is neither a function nor its name")
            self.attributes[key] = names


STEP_DECORATORS: dict[str, type[Decorator]] = {
    cls.name: cls
    for cls in (RetryDecorator, CatchDecorator, TimeoutDecorator, EnvironmentDecorator,
                ResourcesDecorator, BatchDecorator, PypiDecorator, CondaDecorator, CardDecorator, SecretsDecorator)
}
FLOW_DECORATORS: dict[str, type[Decorator]] = {
    cls.name: cls for cls in (ScheduleDecorator, ProjectDecorator, PypiBaseDecorator, CondaBaseDecorator,
                              TriggerDecorator, TriggerOnFinishDecorator, ExitHookDecorator)
}


def _caller_location(depth: int) -> str:
    try:
        frame = sys._getframe(depth)
    except ValueError:
        return ""
    return f"{frame.f_code.co_filename}:{frame.f_lineno}: "


class StepFunction(Protocol):
    """A method marked by ``@step``: it carries its step decorators, innermost last."""

    __name__: str
    is_step: bool
    decorators: list[Decorator]

    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


def step(func: Callable | None = None) -> Callable:
    """Mark a method of a FlowSpec as a step (``@step`` or ``@step()``)."""
    if func is None:
        return step
    marked = cast(StepFunction, func)
    marked.is_step = True
    if not hasattr(marked, "decorators"):
        marked.decorators = []
    return marked


def _make_step_decorator(cls: type[Decorator]) -> Callable:
    def decorator(func: Callable | None = None, **attributes: Any) -> Callable:
        where = _caller_location(2)

        def apply(target: Callable) -> Callable:
            if not getattr(target, "is_step", False):
                raise MfcError(f"{where}@{cls.name} must be placed above @step")
            target = cast(StepFunction, target)
            if any(d.name == cls.name for d in target.decorators) and not cls.allow_multiple:
                raise MfcError(f"{where}@{cls.name} is applied twice to step {target.__name__}")
            made = cls(attributes, where=where)
            _check_card_id(made, target, where)
            target.decorators.insert(0, made)
            return target

        return apply(func) if func is not None else apply

    decorator.__name__ = cls.name
    decorator.__doc__ = f"Step decorator @{cls.name}; arguments (defaults): {cls.defaults}."
    return decorator


def _make_flow_decorator(cls: type[Decorator]) -> Callable:
    def decorator(flow_cls: type | None = None, **attributes: Any) -> Any:
        where = _caller_location(2)

        def apply(target: type[FlowSpec]) -> type[FlowSpec]:
            existing = dict(getattr(target, "_flow_decorators", {}))
            made = cls(attributes, where=where)
            own = vars(target).get("_flow_decorators", {}).get(cls.name)
            if own is not None:
                if not cls.allow_multiple:
                    raise MfcError(f"{where}@{cls.name} is applied twice to flow {target.__name__}")
                made = own.combined(made)
            existing[cls.name] = made
            target._flow_decorators = existing
            return target

        return apply(flow_cls) if flow_cls is not None else apply

    decorator.__name__ = cls.name
    decorator.__doc__ = f"Flow decorator @{cls.name}; arguments (defaults): {cls.defaults}."
    return decorator


retry = _make_step_decorator(RetryDecorator)
catch = _make_step_decorator(CatchDecorator)
timeout = _make_step_decorator(TimeoutDecorator)
environment = _make_step_decorator(EnvironmentDecorator)
resources = _make_step_decorator(ResourcesDecorator)
batch = _make_step_decorator(BatchDecorator)
pypi = _make_step_decorator(PypiDecorator)
card = _make_step_decorator(CardDecorator)
secrets = _make_step_decorator(SecretsDecorator)
schedule = _make_flow_decorator(ScheduleDecorator)
project = _make_flow_decorator(ProjectDecorator)
pypi_base = _make_flow_decorator(PypiBaseDecorator)
conda = _make_step_decorator(CondaDecorator)
conda_base = _make_flow_decorator(CondaBaseDecorator)
trigger = _make_flow_decorator(TriggerDecorator)
trigger_on_finish = _make_flow_decorator(TriggerOnFinishDecorator)
exit_hook = _make_flow_decorator(ExitHookDecorator)


def _check_card_id(made: Decorator, target: StepFunction, where: str) -> None:
    card_id = made.attributes.get("id") if made.name == "card" else None
    if card_id is not None and any(d.name == "card" and d.attributes["id"] == card_id for d in target.decorators):
        raise MfcError(f"{where}@card(id={card_id!r}) is used twice on step {target.__name__}; give each card its own id")


def step_decorators(func: Callable) -> dict[str, Decorator]:
    """The decorators recorded on a step function, by name (of several ``@card``, the last)."""
    return {d.name: d for d in getattr(func, "decorators", [])}


def card_decorators(func: Callable) -> list[Decorator]:
    """The ``@card`` decorators of a step function, top to bottom (empty for most steps)."""
    return [d for d in getattr(func, "decorators", []) if d.name == "card"]


def decorator_from_spec(spec: str) -> Decorator:
    """Parse a ``--with`` value like ``retry`` or ``retry:times=2,minutes_between_retries=0``."""
    name, _, args = spec.partition(":")
    cls = STEP_DECORATORS.get(name.strip())
    if cls is CardDecorator:
        raise MfcError(f"--with {spec}: --with card is not supported yet; write @card above the steps' @step")
    if cls is None:
        raise MfcError(f"--with {spec}: unknown decorator {name!r} (known: {', '.join(sorted(STEP_DECORATORS))})")
    attributes: dict[str, Any] = {}
    for part in filter(None, args.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            raise MfcError(f"--with {spec}: expected key=value, got {part!r}")
        attributes[key.strip()] = _parse_literal(value.strip())
    return cls(attributes, where=f"--with {spec}: ")


def _parse_literal(text: str) -> Any:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def check_decorator_specs(graph: FlowGraph) -> list:
    """Decorator arguments read from the source (``mfc check``) that the decorator does not take."""
    from mfc.exceptions import InvalidFlow

    problems = []
    placed = [(spec, STEP_DECORATORS) for node in graph.nodes.values() for spec in node.decorators]
    placed += [(spec, FLOW_DECORATORS) for spec in graph.flow_decorators]
    for node in graph.nodes.values():
        for spec in node.decorators:
            if spec.name == "catch" and node.foreach_var is not None:
                problems.append(InvalidFlow(
                    f"@catch cannot be used on step {node.name}, which starts a foreach (a failed split has no items to "
                    "fan out); catch errors in the foreach's body instead", graph.file, spec.line))
    for spec, known in placed:
        cls = known.get(spec.name)
        if cls is None:
            continue
        for arg in sorted(set(spec.args) - set(cls.defaults)):
            allowed = ", ".join(sorted(cls.defaults))
            problems.append(InvalidFlow(f"@{spec.name} has no argument {arg!r} (allowed: {allowed})", graph.file, spec.line))
    return problems


def project_info(flow_cls: type, user: str) -> dict[str, str] | None:
    """``@project`` naming: project name, branch (``user.<you>`` by default, ``prod`` with
    production=True, ``test.<branch>`` with branch=...) and the tags runs get."""
    project = getattr(flow_cls, "_flow_decorators", {}).get("project")
    if project is None or not project.attributes.get("name"):
        return None
    attrs = project.attributes
    if attrs.get("production"):
        branch = "prod"
    elif attrs.get("branch"):
        branch = f"test.{attrs['branch']}"
    else:
        branch = f"user.{user}"
    return {"project_name": str(attrs["name"]), "branch_name": branch}
