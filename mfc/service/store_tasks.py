"""What the API reads and writes for steps, tasks and attempts: attempts registered when they
start and completed (create-only) when they end, the final attempt of each task (the first to
claim it wins), and the artifact and card indexes taken from attempt records.

A batch of attempts is written in one transaction holding the run's row lock (PostgreSQL), so
a batch is all or nothing and two writers of one task cannot both mark a final attempt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from mfc.service.db import Database
from mfc.service.schema import artifacts, attempts, cards
from mfc.service.store import NotFound, bump, insert_ignore, run_pk
from mfc.stores.taskrecord import TaskRecord
from mfc.taskid import sort_key

PREVIEW_CHARS = 200


class BadRecord(ValueError):
    """An attempt record whose fields do not fit (the API answers 400 with the message)."""


def ending_of(record: dict[str, Any], where: str) -> str:
    try:
        return TaskRecord.from_dict(record).ending.value
    except (ValueError, TypeError, KeyError) as exc:
        raise BadRecord(f"{where}: the record's fields do not fit an attempt record ({exc})") from None


def artifact_rows(record: dict[str, Any], key: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """The artifact index of a record: ``record["artifacts"][name]`` is ``[sha, size, type]``
    (mfc.stores.artifacts.ArtifactRef.to_json, a preview may follow) or a dict of those fields."""
    found = record.get("artifacts") or {}
    if not isinstance(found, dict):
        raise BadRecord(f"{where}: the record's artifacts must be an object")
    rows = []
    for name, ref in found.items():
        if isinstance(ref, list):
            ref = dict(zip(("sha", "size", "type", "preview"), ref, strict=False))
        if not isinstance(ref, dict) or not isinstance(ref.get("sha"), str) or len(name) > 255:
            raise BadRecord(f"{where}: artifact {name[:80]!r} is not [sha, size, type]")
        size, kind, preview = ref.get("size"), ref.get("type"), ref.get("preview")
        rows.append({**key, "name": name, "sha": ref["sha"][:128],
                     "size": size if isinstance(size, int) and not isinstance(size, bool) and 0 <= size < 2**62 else None,
                     "type": str(kind)[:255] if kind is not None else None,
                     "preview": str(preview)[:PREVIEW_CHARS] if preview is not None else None})
    return rows


def card_rows(record: dict[str, Any], key: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """The cards of a record: ``record["cards"]``, a list of ``{"id", "type", "key"}``."""
    found = record.get("cards") or []
    if not isinstance(found, list):
        raise BadRecord(f"{where}: the record's cards must be a list")
    rows = []
    for card in found:
        if not (isinstance(card, dict) and all(isinstance(card.get(k), str) and card.get(k) for k in ("id", "type", "key"))):
            raise BadRecord(f"{where}: a card must be {{\"id\", \"type\", \"key\"}} strings")
        rows.append({**key, "card_id": card["id"][:255], "type": card["type"][:64], "location": card["key"]})
    return rows


def _prepare(entry: dict[str, Any], pk: int, where: str) -> dict[str, Any]:
    """The rows one entry writes, checked before anything is written."""
    key = {"run": pk, "step": entry["step"], "task_id": entry["task_id"], "attempt": entry["attempt"]}
    base = {**key, "started_at": entry.get("started_at"), "foreach_index": entry.get("foreach_index"),
            "foreach_item": entry.get("foreach_item"), "host": entry.get("host"), "final": False}
    if entry.get("logs") is not None:
        base["logs"] = entry["logs"]
    record = entry.get("record")
    if record is None:
        return {"key": key, "base": base, "record": None}
    if base["started_at"] is None and isinstance(record.get("started_at"), (int, float)):
        base["started_at"] = record["started_at"]
    finished = entry.get("finished_at")
    if finished is None and isinstance(record.get("finished_at"), (int, float)):
        finished = record["finished_at"]
    done = {"record": record, "ending": ending_of(record, where), "finished_at": finished}
    return {"key": key, "base": base, "record": done, "artifacts": artifact_rows(record, key, where),
            "cards": card_rows(record, key, where)}


def _match(key: dict[str, Any]) -> Any:
    return ((attempts.c.run == key["run"]) & (attempts.c.step == key["step"]) & (attempts.c.task_id == key["task_id"])
            & (attempts.c.attempt == key["attempt"]))


def _write_one(conn: Connection, prepared: dict[str, Any], final: bool) -> bool:
    key, base, done = prepared["key"], prepared["base"], prepared["record"]
    if done is None:
        written = insert_ignore(conn, attempts, base) > 0
    else:
        written = insert_ignore(conn, attempts, {**base, **done}) > 0
        if not written:  # registered when it started: complete it, unless it has its record already
            fill = {k: base[k] for k in ("started_at", "foreach_index", "foreach_item", "host", "logs") if base.get(k) is not None}
            written = bool(conn.execute(update(attempts).where(_match(key), attempts.c.record.is_(None))
                                        .values(**done, **fill)).rowcount)
        if written:
            for table, rows in ((artifacts, prepared["artifacts"]), (cards, prepared["cards"])):
                if rows:
                    insert_ignore(conn, table, rows)
    if final:
        peer = attempts.alias("peer")  # another attempt of the task (an alias: not the row updated)
        other = select(peer.c.attempt).where(peer.c.run == key["run"], peer.c.step == key["step"],
                                             peer.c.task_id == key["task_id"], peer.c.final.is_(True))
        marked = conn.execute(update(attempts).where(_match(key), ~other.exists()).values(final=True)).rowcount
        written = written or bool(marked)
    return written


def write_attempts(db: Database, flow: str, run_id: str, entries: Sequence[dict[str, Any]]) -> list[bool]:
    """Register or complete attempts of a run, all in one transaction; for each entry whether it
    changed anything (resending a batch changes nothing and answers all False)."""
    with db.write() as conn:
        pk = run_pk(conn, flow, run_id, lock=True)
        prepared = [_prepare(entry, pk, f"attempts[{i}] ({entry['step']}/{entry['task_id']}/{entry['attempt']})")
                    for i, entry in enumerate(entries)]
        written = [_write_one(conn, p, bool(e.get("final"))) for p, e in zip(prepared, entries, strict=True)]
        if any(written):
            bump(conn, pk)
    return written


ATTEMPT_SUMMARY = [attempts.c.step, attempts.c.task_id, attempts.c.attempt, attempts.c.ending, attempts.c.started_at,
                   attempts.c.finished_at, attempts.c.final, attempts.c.foreach_index, attempts.c.foreach_item]


def steps(db: Database, flow: str, run_id: str) -> list[dict[str, Any]]:
    """The run's steps: tasks, how their latest attempts ended, first start and last end."""
    with db.read() as conn:
        pk = run_pk(conn, flow, run_id)
        rows = conn.execute(select(*ATTEMPT_SUMMARY).where(attempts.c.run == pk)).mappings().all()
    latest: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in rows:
        key = (row["step"], row["task_id"])
        held = latest.get(key)
        if held is None or (row["final"], row["attempt"]) > (held["final"], held["attempt"]):
            latest[key] = row
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        step = found.setdefault(row["step"], {"name": row["step"], "tasks": 0, "counts": {}, "started_at": None,
                                              "finished_at": None})
        for field, pick in (("started_at", min), ("finished_at", max)):
            if row[field] is not None:
                step[field] = row[field] if step[field] is None else pick(step[field], row[field])
    for (step_name, _), row in latest.items():
        step = found[step_name]
        step["tasks"] += 1
        ending = row["ending"] or "running"
        step["counts"][ending] = step["counts"].get(ending, 0) + 1
    return sorted(found.values(), key=lambda s: (s["started_at"] is None, s["started_at"] or 0, s["name"]))


def tasks(db: Database, flow: str, run_id: str, step: str) -> list[dict[str, Any]]:
    """The step's tasks (in task id order) with their attempts."""
    with db.read() as conn:
        pk = run_pk(conn, flow, run_id)
        rows = conn.execute(select(*ATTEMPT_SUMMARY).where(attempts.c.run == pk, attempts.c.step == step)
                            .order_by(attempts.c.attempt)).mappings().all()
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        task = found.setdefault(row["task_id"], {"task_id": row["task_id"], "foreach_index": None,
                                                 "foreach_item": None, "attempts": []})
        task["foreach_index"] = task["foreach_index"] if row["foreach_index"] is None else row["foreach_index"]
        task["foreach_item"] = task["foreach_item"] if row["foreach_item"] is None else row["foreach_item"]
        task["attempts"].append({k: row[k] for k in ("attempt", "ending", "started_at", "finished_at", "final")})
    return [found[t] for t in sorted(found, key=sort_key)]


def attempt(db: Database, flow: str, run_id: str, step: str, task_id: str, number: int) -> dict[str, Any]:
    """One attempt: its row with record, artifacts, cards and log locations; NotFound if none."""
    with db.read() as conn:
        pk = run_pk(conn, flow, run_id)
        key = {"run": pk, "step": step, "task_id": task_id, "attempt": number}
        row = conn.execute(select(attempts).where(_match(key))).mappings().first()
        if row is None:
            raise NotFound(f"no attempt {flow}/{run_id}/{step}/{task_id}/{number}")
        where = [(t.c.run == pk) & (t.c.step == step) & (t.c.task_id == task_id) & (t.c.attempt == number)
                 for t in (artifacts, cards)]
        found = conn.execute(select(artifacts.c.name, artifacts.c.sha, artifacts.c.type, artifacts.c.size,
                                    artifacts.c.preview).where(where[0]).order_by(artifacts.c.name)).mappings().all()
        shown = conn.execute(select(cards.c.card_id, cards.c.type, cards.c.location).where(where[1])
                             .order_by(cards.c.card_id)).mappings().all()
    data = {k: row[k] for k in ("step", "task_id", "attempt", "started_at", "finished_at", "ending", "final",
                                "foreach_index", "foreach_item", "record", "logs", "host")}
    data["artifacts"] = [dict(a) for a in found]
    data["cards"] = [{"id": c["card_id"], "type": c["type"]} for c in shown]
    data["_card_locations"] = {c["card_id"]: c["location"] for c in shown}
    return data
