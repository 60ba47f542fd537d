"""Per-step execution policy derived from decorators: retries, timeout, catch, environment,
resources, and which executor runs the step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mfc.decorators import Decorator, step_decorators


@dataclass
class StepPolicy:
    retries: int = 0
    retry_delay: float = 0.0
    timeout: float | None = None
    catch: bool = False
    environment: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    decorators: dict[str, Decorator] = field(default_factory=dict)


def step_policies(flow_cls: type, steps: list[str], extra: list[Decorator] | None = None) -> dict[str, StepPolicy]:
    """Policies for each step; ``extra`` (from ``--with``) applies where a step lacks that decorator."""
    policies = {}
    for name in steps:
        decorators = dict(step_decorators(getattr(flow_cls, name)))
        for decorator in extra or []:
            decorators.setdefault(decorator.name, decorator)
        policy = StepPolicy(decorators=decorators)
        if "retry" in decorators:
            attrs = decorators["retry"].attributes
            policy.retries = int(attrs["times"])
            policy.retry_delay = 60.0 * float(attrs["minutes_between_retries"])
        if "timeout" in decorators:
            policy.timeout = decorators["timeout"].total_seconds  # type: ignore[attr-defined]
        policy.catch = "catch" in decorators
        if "environment" in decorators:
            policy.environment = dict(decorators["environment"].attributes["vars"])
        for source in ("resources", "batch"):
            if source in decorators:
                attrs = decorators[source].attributes
                for key in ("cpu", "memory", "gpu", "shared_memory"):
                    if attrs.get(key) is not None:
                        policy.resources[key] = max(policy.resources.get(key) or 0, attrs[key])
        policies[name] = policy
    return policies
