"""The service's HTTP API (mounted at ``/api/v1``): runs (:mod:`mfc.service.api_runs`), steps,
tasks and attempts (:mod:`mfc.service.api_tasks`), deployments (:mod:`mfc.service.api_deployments`).
Every route needs a token (:mod:`mfc.service.auth`); write routes a token that may write."""

from __future__ import annotations

from fastapi import APIRouter

from mfc.service import api_deployments, api_runs, api_tasks

router = APIRouter()
for module in (api_runs, api_tasks, api_deployments):
    router.include_router(module.router)

PREFIX = "/api/v1"
