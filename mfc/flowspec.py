"""``FlowSpec``: the base class of every flow.

Inside a running task, a flow instance reads artifacts lazily from the task's inputs
(``self.x`` loads ``x`` on first access) and everything assigned to ``self`` becomes an
artifact of the task. Parameters are read-only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NoReturn

from mfc.exceptions import MfcError, ParameterReadOnly, SwitchError

if TYPE_CHECKING:
    from mfc.runner.context import TaskContext


class FlowSpec:
    """Base class of a flow: subclass it and define ``@step`` methods from ``start`` to ``end``.

    Running the flow file as a script (``python flow.py run``) dispatches mfc's command line.
    """

    _flow_decorators: dict[str, Any] = {}
    _ctx: TaskContext | None = None

    def __init__(self, use_cli: bool = True) -> None:
        if use_cli:
            from mfc.cli import run_flow_script

            run_flow_script(type(self))

    # -- identity -------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The flow's name (its class name)."""
        return type(self).__name__

    @property
    def script_name(self) -> str:
        import inspect
        import os

        return os.path.basename(inspect.getfile(type(self)))

    # -- artifacts ------------------------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        ctx = self.__dict__.get("_ctx")
        if ctx is not None and not name.startswith("__"):
            found, value = ctx.load_artifact(name)
            if found:
                self.__dict__[name] = value
                return value
        step = f" in step {ctx.step_name!r}" if ctx is not None else ""
        raise AttributeError(f"flow {type(self).__name__} has no artifact or attribute {name!r}{step}")

    def __setattr__(self, name: str, value: Any) -> None:
        ctx = self.__dict__.get("_ctx")
        if ctx is not None and name in ctx.parameter_names:
            raise ParameterReadOnly(f"step {ctx.step_name}: parameter {name!r} is read-only; store a modified value under another name")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        ctx = self.__dict__.get("_ctx")
        self.__dict__.pop(name, None)
        if ctx is not None:
            ctx.forget_artifact(name)

    def _parameter_value(self, attr: str) -> Any:
        ctx = self.__dict__.get("_ctx")
        if ctx is None:
            return None
        return ctx.load_artifact(attr)[1]

    # -- transitions ----------------------------------------------------------------------------
    def next(self, *steps: Any, foreach: str | None = None, num_parallel: int | None = None,
             condition: str | None = None) -> None:
        """Declare the next step(s): ``self.next(self.a)``, a branch ``self.next(self.a, self.b)``,
        a fan-out over a list artifact ``self.next(self.a, foreach="items")``, or a switch that
        runs one step chosen by the value of an artifact:
        ``self.next({"x": self.a, "y": self.b}, condition="mode")``."""
        if condition is not None or (len(steps) == 1 and isinstance(steps[0], dict)):
            self._switch(steps, condition, foreach is not None or num_parallel is not None)
            return
        names = []
        for target in steps:
            names.append(_step_name(target))
        if not names:
            raise MfcError("self.next() needs at least one step")
        if num_parallel is not None:
            raise MfcError("self.next(num_parallel=...) is not supported by mfc")
        if foreach is not None:
            if len(names) != 1:
                raise MfcError("self.next(..., foreach=...) takes exactly one step")
            if not isinstance(foreach, str):
                raise MfcError("foreach= takes the name of an artifact as a string, e.g. foreach=\"items\"")
        ctx = self.__dict__.get("_ctx")
        if ctx is not None:
            ctx.record_transition(names, foreach)

    def _switch(self, steps: tuple[Any, ...], condition: Any, fans_out: bool) -> None:
        ctx = self.__dict__.get("_ctx")
        where = f"step {ctx.step_name}" if ctx is not None else "self.next"
        if condition is None:
            raise MfcError(f'{where}: a dict of cases needs condition="attr" naming the artifact to switch on')
        if len(steps) != 1 or not isinstance(steps[0], dict) or not steps[0]:
            raise MfcError(f"{where}: a switch takes one non-empty dict mapping case values to steps")
        if not isinstance(condition, str):
            raise MfcError(f"{where}: condition= takes the name of an artifact as a string, not {condition!r}")
        if fans_out:
            raise MfcError(f"{where}: a switch cannot take foreach= or num_parallel=")
        cases: dict[Any, Any] = steps[0]
        try:
            value = getattr(self, condition)
        except AttributeError:
            raise SwitchError(f"{where}: the switch's condition self.{condition} is not set; set it before "
                              "self.next") from None
        try:
            target = cases[value]
        except (KeyError, TypeError):
            shown = ", ".join(repr(c) for c in cases)
            raise SwitchError(f"{where}: self.{condition} is {value!r}, which is not a case of the switch "
                              f"(cases: {shown})") from None
        if ctx is not None:
            ctx.record_transition([_step_name(target)], None)

    # -- foreach --------------------------------------------------------------------------------
    @property
    def input(self) -> Any:
        """The item of the innermost foreach this task processes (None outside a foreach)."""
        ctx = self.__dict__.get("_ctx")
        return ctx.foreach_input() if ctx is not None else None

    @property
    def index(self) -> int | None:
        """The index of this task in the innermost foreach (None outside a foreach)."""
        ctx = self.__dict__.get("_ctx")
        return ctx.foreach_index() if ctx is not None else None

    def foreach_stack(self) -> list[tuple[int, int, Any]]:
        """``(index, num_splits, value)`` for each enclosing foreach, outermost first."""
        ctx = self.__dict__.get("_ctx")
        return ctx.foreach_frames() if ctx is not None else []

    # -- joins ----------------------------------------------------------------------------------
    def merge_artifacts(self, inputs: Iterable[Any], exclude: list[str] | None = None,
                        include: list[str] | None = None) -> None:
        """Copy into this join every artifact whose value agrees across the inputs.

        Artifacts already set in this step are left alone; an artifact with different values
        in different inputs is an error unless excluded or set before the call.
        """
        ctx = self.__dict__.get("_ctx")
        if ctx is None or not ctx.is_join:
            raise MfcError("merge_artifacts() can only be called in a join step (def join(self, inputs))")
        if include and exclude:
            raise MfcError(f"step {ctx.step_name}: merge_artifacts() takes include= or exclude=, not both")
        already = {n for n in self.__dict__ if not n.startswith("_")}
        ctx.merge_inputs(list(inputs), set(exclude or ()), set(include) if include else None, already)

    def __iter__(self) -> NoReturn:
        raise TypeError(f"flow {type(self).__name__} is not iterable; in a join iterate over inputs")


def _step_name(target: Any) -> str:
    name = getattr(target, "__name__", None)
    if name is None or not getattr(target, "is_step", False):
        raise MfcError(f"self.next() takes steps such as self.{name or 'step_name'}; got {target!r}")
    return name
