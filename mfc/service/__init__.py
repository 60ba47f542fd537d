"""The metadata service: an index of runs, tasks, artifacts, deployments and schedules shared by
a team (SQLite by default, PostgreSQL by URL), its HTTP API, token authentication and web UI.
The datastore stays the source of truth for artifacts, code, logs and cards."""
