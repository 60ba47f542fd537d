"""The metadata service's tables (SQLAlchemy Core), the same on SQLite and PostgreSQL.

Migrations (:mod:`mfc.service.migrations`) create and change them; this module is what the
code reads and writes through. JSON columns hold the records as the local provider writes them
(:mod:`mfc.stores.metadata`, :mod:`mfc.stores.taskrecord`), so a record read from the service is
the record the datastore holds. Times are epoch seconds (floats). ``version`` columns grow on
every change of a run (its record, status, lease, tags or any of its tasks): readers that
follow a run (the UI's live updates) poll them, which works with any number of service
processes on one database.
"""

from __future__ import annotations

from sqlalchemy import (
                        JSON,
                        Boolean,
                        Column,
                        Float,
                        ForeignKeyConstraint,
                        Index,
                        Integer,
                        MetaData,
                        PrimaryKeyConstraint,
                        String,
                        Table,
                        Text,
                        UniqueConstraint,
)

metadata = MetaData()

NAME = 255  # flow, step, task ids and run ids follow mfc.pathspec's grammar, far shorter than this

# One row a run: its record (``info``: what ``create_run`` was given, with flow, run_id,
# created_at), its final status record (``final``, None while it has none), the heartbeat of
# whoever drives it (``lease``), its user tags, and how it was started (``trigger``).
runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("flow", String(NAME), nullable=False),
    Column("run_id", String(NAME), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("user", String(NAME), nullable=False, default=""),
    Column("info", JSON, nullable=False),
    Column("tags", JSON, nullable=False),  # user tags (a sorted list)
    Column("trigger", JSON, nullable=True),  # {"kind": manual|schedule|event|upstream, ...}
    Column("final", JSON, nullable=True),  # the final status record ({"status", "finished_at", ...})
    Column("final_status", String(32), nullable=True),  # final["status"], for filtering
    Column("finished_at", Float, nullable=True),
    Column("lease", JSON, nullable=True),
    Column("lease_at", Float, nullable=True),  # when the lease was last written (service clock)
    Column("version", Integer, nullable=False, default=1),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("flow", "run_id", name="uq_runs_flow_run"),
    Index("ix_runs_flow_created", "flow", "created_at"),
    Index("ix_runs_version", "version"),  # max(version): what live readers poll
)

# One row a task attempt: registered when it starts (``record`` None, ``ending`` None) and
# completed with its attempt record when it ends. ``final`` marks the attempt that ended the
# task (the datastore's final.json). ``foreach_index``/``foreach_item``: which item of its
# innermost foreach the task handles (the item as a short text), when it is in one.
attempts = Table(
    "attempts", metadata,
    Column("run", Integer, nullable=False),  # runs.id
    Column("step", String(NAME), nullable=False),
    Column("task_id", String(NAME), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("ending", String(32), nullable=True),  # an mfc.stores.taskrecord.Ending value; None while it runs
    Column("final", Boolean, nullable=False, default=False),
    Column("foreach_index", Integer, nullable=True),
    Column("foreach_item", Text, nullable=True),
    Column("record", JSON, nullable=True),  # the attempt record (TaskRecord.to_dict()), None while it runs
    Column("logs", JSON, nullable=True),  # {"stdout": url, "stderr": url}: where the datastore keeps its logs
    Column("host", String(NAME), nullable=True),  # where it ran (hostname, container or Batch job id)
    PrimaryKeyConstraint("run", "step", "task_id", "attempt", name="pk_attempts"),
    ForeignKeyConstraint(["run"], ["runs.id"], name="fk_attempts_run", ondelete="CASCADE"),
)

def _per_attempt(name: str, key: str, *columns: Column) -> Table:
    """A table of things an attempt has, one row each, named by ``key`` (fresh key columns each
    call: a Column belongs to one Table)."""
    return Table(
        name, metadata,
        Column("run", Integer, nullable=False),
        Column("step", String(NAME), nullable=False),
        Column("task_id", String(NAME), nullable=False),
        Column("attempt", Integer, nullable=False),
        *columns,
        PrimaryKeyConstraint("run", "step", "task_id", "attempt", key, name=f"pk_{name}"),
        ForeignKeyConstraint(["run"], ["runs.id"], name=f"fk_{name}_run", ondelete="CASCADE"),
    )


# The artifact index of each finished attempt (from its record): name, content address, the
# value's type and stored size, and a short repr of a small value.
artifacts = _per_attempt(
    "artifacts", "name",
    Column("name", String(NAME), nullable=False),
    Column("sha", String(128), nullable=False),
    Column("type", String(NAME), nullable=True),
    Column("size", Integer, nullable=True),
    Column("preview", Text, nullable=True),
)

# Cards an attempt rendered: where the HTML is in the datastore.
cards = _per_attempt(
    "cards", "card_id",
    Column("card_id", String(NAME), nullable=False),
    Column("type", String(64), nullable=False),
    Column("location", Text, nullable=False),
)

# A flow deployed to Step Functions (``mfc sfn create``): its state machine, its schedule and
# triggers, and what a trigger from the UI needs (region, endpoint, parameter defaults).
deployments = Table(
    "deployments", metadata,
    Column("name", String(NAME), primary_key=True),  # the state machine's name
    Column("flow", String(NAME), nullable=False),
    Column("state_machine_arn", Text, nullable=False),
    Column("region", String(64), nullable=True),
    Column("schedule", JSON, nullable=True),  # {"expression", "timezone", "kind": rule|scheduler, "enabled"}
    Column("triggers", JSON, nullable=False),  # [{"kind": event|upstream, "name": ...}]
    Column("parameters", JSON, nullable=False),  # defaults
    Column("info", JSON, nullable=False),  # anything else mfc sfn create recorded (code package, image)
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_deployments_flow", "flow"),
)

# API tokens: only a hash of each is kept. ``token_id`` is the public part (shown in listings,
# used to revoke); the secret is ``mfc_<token_id>_<secret>``.
tokens = Table(
    "tokens", metadata,
    Column("token_id", String(32), primary_key=True),
    Column("hash", String(128), nullable=False),
    Column("read_only", Boolean, nullable=False, default=False),
    Column("label", String(NAME), nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
)
