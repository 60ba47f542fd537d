"""A run read from the service is the run the local provider reads: merged_run on a row gives
BlobMetadata's merged record (status, finished_at, result, tags), for each set of facts."""

from __future__ import annotations

import time

import pytest

from mfc.service.runs import merged_run
from mfc.stores.lease import driver_record, lease_record
from mfc.stores.local import LocalBlobStore
from mfc.stores.metadata import BlobMetadata

REMOTE = {**driver_record(5.0, 20.0), "host": "elsewhere", "boot_id": "b"}
FIELDS = ("flow", "run_id", "created_at", "user", "status", "finished_at", "result", "tags")


def row_of(meta: BlobMetadata, flow: str, run_id: str) -> dict:
    facts = meta.facts(flow, run_id)
    tags = meta.run(flow, run_id)["tags"]
    return {"id": 1, "info": facts["run"], "created_at": facts["run"]["created_at"], "final": facts["status"],
            "lease": facts["lease"], "tags": tags, "trigger": None}


@pytest.mark.parametrize("case", ["queued", "live lease", "expired lease", "gone process", "finished", "tagged"])
def test_merged_run_is_the_local_providers_merge(tmp_path, case):
    meta = BlobMetadata(LocalBlobStore(str(tmp_path)))
    driver = {**driver_record(5.0, 20.0), "pid": 2**22 + 4321} if case == "gone process" else (
        driver_record(5.0, 20.0) if case == "queued" else REMOTE)
    run_id = meta.create_run("F", {"user": "ann", "tags": ["a"], "driver": driver})
    if case == "live lease":
        meta.write_lease("F", run_id, lease_record(REMOTE))
    if case == "expired lease":
        meta.write_lease("F", run_id, lease_record(REMOTE, now=time.time() - 120))
    if case == "finished":
        meta.finish_run("F", run_id, "failed", {"error": "boom"})
    if case == "tagged":
        meta.update_tags("F", run_id, add=["b"], remove=["a"])
    local = meta.run("F", run_id)
    served = merged_run(row_of(meta, "F", run_id), time.time())
    assert {k: served[k] for k in FIELDS} == {k: local[k] for k in FIELDS}
    assert served["trigger"] == {"kind": "manual"} and served["duration"] >= 0
    expected = {"queued": "running", "live lease": "running", "expired lease": "crashed", "gone process": "crashed",
                "finished": "failed", "tagged": "running"}[case]
    assert served["status"] == expected
