"""The UI's reads of the service's tables (SQLAlchemy Core). Each page costs a few queries
whatever the size of the flow: the runs page reads one page of rows with ``LIMIT`` and the page's
task activity in one more query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, and_, cast, func, or_, select, tuple_
from sqlalchemy.engine import Connection, Row

from mfc.service.schema import artifacts, attempts, cards, deployments, runs
from mfc.taskid import sort_key

ATTEMPT_COLUMNS = (attempts.c.step, attempts.c.task_id, attempts.c.attempt, attempts.c.started_at,
                   attempts.c.finished_at, attempts.c.ending, attempts.c.final, attempts.c.foreach_index,
                   attempts.c.foreach_item)


def flows(conn: Connection) -> list[tuple[str, int, Row | None]]:
    """Each flow's name, its number of runs and its newest run's row, newest flows first."""
    counts = select(runs.c.flow, func.count().label("n"), func.max(runs.c.created_at).label("last")) \
        .group_by(runs.c.flow).subquery()
    newest = conn.execute(select(runs, counts.c.n).join(counts, and_(
        runs.c.flow == counts.c.flow, runs.c.created_at == counts.c.last))
        .order_by(runs.c.created_at.desc(), runs.c.id.desc())).all()
    seen: dict[str, tuple[str, int, Row | None]] = {}
    for row in newest:  # two runs created in the same instant: the newer id stands for the flow
        seen.setdefault(row.flow, (row.flow, int(row.n), row))
    return list(seen.values())


def run_row(conn: Connection, flow: str, run_id: str) -> Row | None:
    """A run's row, None when the service has no such run."""
    return conn.execute(select(runs).where(runs.c.flow == flow, runs.c.run_id == run_id)).first()


def flow_exists(conn: Connection, flow: str) -> bool:
    """Whether the service has any run of this flow."""
    return conn.execute(select(runs.c.id).where(runs.c.flow == flow).limit(1)).first() is not None


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def runs_chunk(conn: Connection, flow: str, limit: int, before: tuple[float, int] | None,
               final_status: str | None, unfinished: bool, tag: str | None) -> list[Row]:
    """Up to ``limit`` rows of a flow's runs, newest first, older than ``before`` (created_at, id).
    ``final_status``/``unfinished`` narrow by the final record (the merged status decides the rest:
    the caller filters the merged runs);
    ``tag`` narrows by the tags' JSON text (the caller checks the tag exactly)."""
    query = select(runs).where(runs.c.flow == flow)
    if before is not None:
        query = query.where(tuple_(runs.c.created_at, runs.c.id) < tuple_(*before))
    if final_status is not None:  # or none yet: an ended Step Functions run may not have recorded it
        query = query.where(or_(runs.c.final_status == final_status, runs.c.final_status.is_(None)))
    if unfinished:
        query = query.where(runs.c.final_status.is_(None))
    if tag is not None:
        query = query.where(cast(runs.c.tags, String).like(f'%{_like_escape(tag)}%', escape="\\"))
    return list(conn.execute(query.order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit)).all())


def position(conn: Connection, flow: str, run_id: str) -> tuple[float, int] | None:
    """Where a run stands in its flow's newest-first order (the ``before=`` of the next page)."""
    row = conn.execute(select(runs.c.created_at, runs.c.id)
                       .where(runs.c.flow == flow, runs.c.run_id == run_id)).first()
    return None if row is None else (float(row.created_at), int(row.id))


def last_activity(conn: Connection, run_pks: Sequence[int]) -> dict[int, float]:
    """The latest start or end of any task attempt of each of these runs."""
    if not run_pks:
        return {}
    rows = conn.execute(select(attempts.c.run, func.max(attempts.c.started_at), func.max(attempts.c.finished_at))
                        .where(attempts.c.run.in_(list(run_pks))).group_by(attempts.c.run)).all()
    return {int(r[0]): max(x for x in (r[1], r[2], 0.0) if x is not None) for r in rows}


def run_attempts(conn: Connection, run_pk: int) -> list[Row]:
    """Every attempt of a run (without records), ordered by step, task and attempt."""
    rows = conn.execute(select(*ATTEMPT_COLUMNS).where(attempts.c.run == run_pk)).all()
    return sorted(rows, key=lambda r: (r.step, sort_key(r.task_id), r.attempt))


def foreach_splits(conn: Connection, run_pk: int, steps: Sequence[str]) -> dict[str, int]:
    """How many items these foreach steps split into, summed over each step's final attempts."""
    if not steps:
        return {}
    rows = conn.execute(select(attempts.c.step, attempts.c.record).where(
        attempts.c.run == run_pk, attempts.c.step.in_(list(steps)), attempts.c.record.is_not(None),
        attempts.c.final.is_(True))).all()
    splits: dict[str, int] = {}
    for row in rows:
        step, record = str(row.step), row.record if isinstance(row.record, dict) else {}
        split = record.get("foreach") or {}
        if isinstance(split.get("num_splits"), int):
            splits[step] = splits.get(step, 0) + split["num_splits"]
    return splits


def task_attempts(conn: Connection, run_pk: int, step: str, task_id: str) -> list[Row]:
    """A task's attempts with their records, log locations and hosts, first attempt first."""
    return list(conn.execute(select(attempts).where(
        attempts.c.run == run_pk, attempts.c.step == step, attempts.c.task_id == task_id)
        .order_by(attempts.c.attempt)).all())


def attempt_artifacts(conn: Connection, run_pk: int, step: str, task_id: str, attempt: int) -> list[Row]:
    """The artifact index of one attempt, by name."""
    return list(conn.execute(select(artifacts).where(
        artifacts.c.run == run_pk, artifacts.c.step == step, artifacts.c.task_id == task_id,
        artifacts.c.attempt == attempt).order_by(artifacts.c.name)).all())


def attempt_cards(conn: Connection, run_pk: int, step: str, task_id: str, attempt: int) -> list[Row]:
    """The cards one attempt rendered, by id."""
    return list(conn.execute(select(cards).where(
        cards.c.run == run_pk, cards.c.step == step, cards.c.task_id == task_id,
        cards.c.attempt == attempt).order_by(cards.c.card_id)).all())


def all_deployments(conn: Connection) -> list[Row]:
    """Every deployment, by flow and name."""
    return list(conn.execute(select(deployments).order_by(deployments.c.flow, deployments.c.name)).all())


def run_version(conn: Connection, flow: str, run_id: str) -> int | None:
    """The run's change counter (None for an unknown run): one indexed row, cheap to poll."""
    value = conn.execute(select(runs.c.version).where(runs.c.flow == flow, runs.c.run_id == run_id)).scalar()
    return None if value is None else int(value)


def flow_version(conn: Connection, flow: str) -> tuple[Any, ...]:
    """What changes when any run of a flow changes or a run is added: its runs' count and latest update."""
    row = conn.execute(select(func.count(), func.max(runs.c.updated_at), func.sum(runs.c.version))
                       .where(runs.c.flow == flow)).one()
    return tuple(row)

