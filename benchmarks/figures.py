"""A benchmark figure: mfc's value against its goal, optionally Metaflow's, and how to print it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Figure:
    """One measured quantity.

    ``unit`` is "s", "MB/s" or "MB"; ``higher_is_better`` flips the goal (>=) and the ratio,
    which is always printed as how many times more time (or memory) Metaflow needs.
    """

    name: str
    value: float
    unit: str
    goal: float | None = None
    higher_is_better: bool = False
    metaflow: float | None = None
    metaflow_note: str | None = None  # why there is no Metaflow value ("skipped: ...")
    details: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool | None:
        if self.goal is None:
            return None
        return self.value >= self.goal if self.higher_is_better else self.value <= self.goal

    @property
    def ratio(self) -> float | None:
        """Metaflow's cost over mfc's (time or memory): > 1 means mfc is cheaper."""
        if self.metaflow is None or not self.value or not self.metaflow:
            return None
        return self.value / self.metaflow if self.higher_is_better else self.metaflow / self.value

    def line(self, metaflow_column: bool, verdict: bool = True) -> str:
        """``name: value (goal op target) PASS|MISS | metaflow value, metaflow/mfc ratio``."""
        text = f"{self.name}: {fmt(self.value, self.unit)}"
        if self.goal is not None:
            op = ">=" if self.higher_is_better else "<="
            outcome = ("PASS" if self.passed else "MISS") if verdict else "(no verdict: --quick)"
            text += f" (goal {op} {fmt(self.goal, self.unit)}) {outcome}"
        if metaflow_column:
            if self.metaflow is not None:
                kind = "memory" if self.unit == "MB" else "time"
                text += f" | metaflow {fmt(self.metaflow, self.unit)}, metaflow/mfc {self.ratio:.1f}x ({kind})"
            elif self.metaflow_note:
                text += f" | metaflow: {self.metaflow_note}"
        return text


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f} s" if value < 1 else f"{value:.2f} s"
    if unit == "MB/s":
        return f"{value:,.0f} MB/s"
    if unit == "MB":
        return f"{value:,.0f} MB"
    return f"{value:g} {unit}"
