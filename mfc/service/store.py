"""What the API reads and writes for runs, on one database connection each: creating runs (ids
claimed by the unique constraint, so concurrent writers never share one), reading pages of runs
with their attempts' activity, final status, leases and tags.

Every change of a run bumps its ``version`` to one past the largest in the table, so
``max(version)`` (indexed) grows with every change anywhere: what live readers poll.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, func, null, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from mfc.service.db import Database
from mfc.service.schema import attempts, runs

ALLOCATE_TRIES = 1000


class NotFound(LookupError):
    """No such run (or task, attempt, deployment): the API answers 404 with the message."""


class Conflict(Exception):
    """A write that contradicts what is stored: the API answers 409 with the message and ``extra``."""

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.extra = extra


def now() -> float:
    return round(time.time(), 3)


def bump(conn: Connection, run_pk: int) -> None:
    """Mark the run changed: its version becomes the table's largest plus one."""
    top = select(func.coalesce(func.max(runs.c.version), 0) + 1).scalar_subquery()
    conn.execute(update(runs).where(runs.c.id == run_pk).values(version=top, updated_at=time.time()))


def insert_ignore(conn: Connection, table: Any, values: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING (SQLite and PostgreSQL); the number of rows inserted."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert: Any = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    # RETURNING counts the rows inserted: psycopg's rowcount is -1 for INSERT ... ON CONFLICT
    first = next(iter(table.primary_key.columns))
    statement = insert(table).values(values).on_conflict_do_nothing().returning(first)
    return len(conn.execute(statement).all())


def _row_values(flow: str, run_id: str, info: dict[str, Any], created_at: float) -> dict[str, Any]:
    record = {**info, "flow": flow, "run_id": run_id, "created_at": created_at}
    user = info.get("user")
    trigger = info.get("trigger")
    return {"flow": flow, "run_id": run_id, "created_at": created_at, "user": str(user)[:255] if user else "",
            "info": record, "tags": sorted({t for t in info.get("tags") or [] if isinstance(t, str)}),
            "trigger": trigger if isinstance(trigger, dict) else {"kind": "manual"},
            "version": 1, "updated_at": created_at}


def _insert_run(db: Database, values: dict[str, Any]) -> bool:
    try:
        with db.write() as conn:
            conn.execute(runs.insert().values(**values))
            pk: int = conn.execute(select(runs.c.id).where(runs.c.flow == values["flow"],
                                                      runs.c.run_id == values["run_id"])).scalar_one()
            bump(conn, pk)
    except IntegrityError:
        return False
    return True


def create_run(db: Database, flow: str, info: dict[str, Any], run_id: str | None) -> tuple[str, bool]:
    """Record a run; ``(run_id, created)``. Without ``run_id``: milliseconds since the epoch,
    bumped while taken. With one: created, or left as it is when it exists with the same
    content (``created_at`` aside), Conflict naming the fields that differ otherwise."""
    created_at = now()
    if run_id is not None:
        values = _row_values(flow, run_id, info, created_at)
        if _insert_run(db, values):
            return run_id, True
        row = run_row(db, flow, run_id)
        existing = dict(row["info"]) if row is not None else {}
        wanted = values["info"]
        differ = sorted(k for k in set(existing) | set(wanted) if k != "created_at" and existing.get(k) != wanted.get(k))
        if differ:
            raise Conflict(f"run {flow}/{run_id} exists already with different content ({', '.join(differ)} "
                           f"differ{'s' if len(differ) == 1 else ''})", differ=differ)
        return run_id, False
    candidate = int(time.time() * 1000)
    with db.read() as conn:  # start past the flow's newest numeric id: fewer clashes under load
        newest = conn.execute(select(func.max(runs.c.run_id)).where(
            runs.c.flow == flow, func.length(runs.c.run_id) == len(str(candidate)))).scalar()
    if newest is not None and newest.isdigit() and int(newest) >= candidate:
        candidate = int(newest) + 1
    for _ in range(ALLOCATE_TRIES):
        if _insert_run(db, _row_values(flow, str(candidate), info, created_at)):
            return str(candidate), True
        candidate += 1
    raise Conflict(f"could not claim a run id for {flow} in {ALLOCATE_TRIES} tries; try again")


def run_row(db: Database | Connection, flow: str, run_id: str) -> Mapping[str, Any] | None:
    """The run's row, None if there is none."""
    query = select(runs).where(runs.c.flow == flow, runs.c.run_id == run_id)
    if isinstance(db, Connection):
        found: Any = db.execute(query).mappings().first()
        return found
    with db.read() as conn:
        found = conn.execute(query).mappings().first()
        return found


def run_pk(conn: Connection, flow: str, run_id: str, lock: bool = False) -> int:
    """The run's primary key (locked for the transaction with ``lock``); NotFound if none."""
    query = select(runs.c.id).where(runs.c.flow == flow, runs.c.run_id == run_id)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    pk = conn.execute(query).scalar()
    if pk is None:
        raise NotFound(f"no run {flow}/{run_id}")
    return int(pk)


def activity(conn: Connection, pks: Sequence[int]) -> dict[int, float]:
    """The newest start or end among each run's attempts."""
    if not pks:
        return {}
    newest = func.max(func.coalesce(attempts.c.finished_at, attempts.c.started_at))
    rows = conn.execute(select(attempts.c.run, newest).where(attempts.c.run.in_(list(pks)))
                        .group_by(attempts.c.run)).all()
    return {int(row[0]): float(row[1]) for row in rows if row[1] is not None}


def run_id_bytes(db: Database) -> Any:
    """The run id column compared byte by byte, as Python compares strings (PostgreSQL would
    otherwise use its locale's collation, which orders '-', '.' and case differently)."""
    return runs.c.run_id.collate("C") if db.dialect == "postgresql" else runs.c.run_id


def order_key(db: Database) -> list[Any]:
    """Newest first, as ``BlobMetadata.run_ids``: by (length, id) descending."""
    return [func.length(runs.c.run_id).desc(), run_id_bytes(db).desc()]


def run_ids(db: Database, flow: str) -> list[str]:
    with db.read() as conn:
        return list(conn.execute(select(runs.c.run_id).where(runs.c.flow == flow).order_by(*order_key(db))).scalars())


def page(db: Database, flow: str, limit: int, before: str | None,
         final_status: str | None) -> tuple[list[Mapping[str, Any]], dict[int, float]]:
    """Up to ``limit`` runs of a flow, newest first, older than run id ``before``, and their
    attempts' activity. ``final_status``: only runs with that final status ("none": only runs
    without one)."""
    query = select(runs).where(runs.c.flow == flow)
    if before is not None:
        size = func.length(runs.c.run_id)
        query = query.where(or_(size < len(before), and_(size == len(before), run_id_bytes(db) < before)))
    if final_status == "none":
        query = query.where(runs.c.final_status.is_(None))
    elif final_status is not None:
        query = query.where(runs.c.final_status == final_status)
    with db.read() as conn:
        rows = list(conn.execute(query.order_by(*order_key(db)).limit(limit)).mappings())
        return rows, activity(conn, [row["id"] for row in rows])


def rows_by_ids(db: Database, flow: str, ids: Sequence[str]) -> tuple[dict[str, Mapping[str, Any]], dict[int, float]]:
    """The rows of the given runs of a flow (by run id) and their attempts' activity."""
    with db.read() as conn:
        rows = {row["run_id"]: row for row in conn.execute(select(runs).where(
            runs.c.flow == flow, runs.c.run_id.in_(list(ids)))).mappings()}
        return rows, activity(conn, [row["id"] for row in rows.values()])


def flows(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(select(runs.c.flow, func.count(), func.max(runs.c.created_at))
                            .group_by(runs.c.flow).order_by(runs.c.flow)).all()
    return [{"name": name, "runs": int(count), "last_created_at": last} for name, count, last in rows]


def write_final(db: Database, flow: str, run_id: str, record: dict[str, Any], if_absent: bool) -> bool:
    """Record the run's final status; with ``if_absent`` only when it has none. Whether it was written."""
    with db.write() as conn:
        pk = run_pk(conn, flow, run_id, lock=True)
        query = update(runs).where(runs.c.id == pk)
        if if_absent:
            query = query.where(runs.c.final.is_(None))
        written = conn.execute(query.values(final=record, final_status=record["status"],
                                            finished_at=record.get("finished_at"))).rowcount
        if written:
            bump(conn, pk)
    return bool(written)


def write_lease(db: Database, flow: str, run_id: str, lease: dict[str, Any] | None) -> None:
    """Replace the run's heartbeat record (None: remove it)."""
    with db.write() as conn:
        pk = run_pk(conn, flow, run_id, lock=True)
        conn.execute(update(runs).where(runs.c.id == pk).values(
            lease=lease if lease is not None else null(), lease_at=now() if lease is not None else None))
        bump(conn, pk)


def update_tags(db: Database, flow: str, run_id: str, add: list[str], remove: list[str],
                expect: list[str] | None) -> list[str]:
    """Add and remove user tags; with ``expect``, only if the run's tags are those now
    (compare-and-swap: Conflict otherwise). Returns the tags after."""
    from mfc.tags import check_tag_count

    with db.write() as conn:
        pk = run_pk(conn, flow, run_id, lock=True)
        current = list(conn.execute(select(runs.c.tags).where(runs.c.id == pk)).scalar() or [])
        if expect is not None and sorted(set(expect)) != sorted(set(current)):
            raise Conflict(f"the tags of run {flow}/{run_id} changed meanwhile", tags=current)
        tags = sorted((set(current) - set(remove)) | set(add))
        if tags != sorted(current):
            check_tag_count(tags, current)
            conn.execute(update(runs).where(runs.c.id == pk).values(tags=tags))
            bump(conn, pk)
    return tags


def versions(db: Database, flow: str | None = None, run_id: str | None = None) -> int:
    """The largest run version (of one run, given ``flow`` and ``run_id``); 0 when none."""
    query = select(func.coalesce(func.max(runs.c.version), 0))
    if flow is not None:
        query = query.where(runs.c.flow == flow, runs.c.run_id == run_id)
    with db.read() as conn:
        return int(conn.execute(query).scalar() or 0)
