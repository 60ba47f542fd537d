"""Every graph shape runs for real through ``mfc run``; artifacts are read back from the stores."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from support import (
    artifacts,
    describe,
    flow_path,
    last_run_id,
    only,
    run_flow,
    run_status,
    task_records,
)


def test_linear_artifacts_propagate_unchanged_and_modified(root):
    _, run_id = run_flow(root, flow_path("linear"))
    assert run_id == last_run_id(root, "LinearFlow")
    assert run_status(root, "LinearFlow", run_id) == "succeeded"
    start = only(root, "LinearFlow", run_id, "start")
    middle = only(root, "LinearFlow", run_id, "middle")
    end = only(root, "LinearFlow", run_id, "end")
    assert start == {"kept": "unchanged text", "count": 1, "items": [1, 2]}
    assert middle["kept"] == "unchanged text"
    assert middle["count"] == 11 and middle["items"] == [1, 2, 3] and middle["added"] == {"from": "middle"}
    assert end["summary"] == "unchanged text|11|6|middle"
    assert end["count"] == 11 and end["items"] == [1, 2, 3]
    # an unchanged artifact is the same stored object all the way down
    recs = [task_records(root, "LinearFlow", run_id, s)[0] for s in ("start", "middle", "end")]
    assert len({r["artifacts"]["kept"][0] for r in recs}) == 1
    assert recs[0]["artifacts"]["count"][0] != recs[1]["artifacts"]["count"][0]


def test_branches_nested_join_order_and_parameters_everywhere(root):
    _, run_id = run_flow(root, flow_path("branch"), "--greeting", "howdy")
    arts = {step: only(root, "BranchFlow", run_id, step)
            for step in ("start", "a", "b", "a1", "a2", "ajoin", "join", "end")}
    # inputs follow the order of self.next(...) arguments, not completion or name order
    assert arts["ajoin"]["leaves"] == ["a2", "a1"]
    assert arts["join"]["order"] == ["b", "a"]
    assert arts["join"]["from_a"] == "from a"
    assert arts["join"]["from_b"] == "from b"
    assert arts["join"]["leaves"] == ["a2", "a1"]
    # merge_artifacts(include=["common"]) merged only common; conflicting x/who were left out
    assert arts["join"]["common"] == "shared"
    assert "x" not in arts["join"] and "who" not in arts["join"]
    assert arts["a1"]["x"] == "from a" and arts["b"]["x"] == "from b"
    for step, name in (("start", "p_start"), ("b", "p_b"), ("a", "p_a"), ("ajoin", "p_ajoin"),
                       ("join", "p_join"), ("end", "p_end")):
        assert arts[step][name] == "howdy", step
    for step in arts:
        assert arts[step]["greeting"] == "howdy", step


def test_foreach_input_index_and_join_order(root):
    _, run_id = run_flow(root, flow_path("foreach"))
    bodies = artifacts(root, "ForeachFlow", run_id, "body")
    assert [b["item"] for b in bodies] == ["p", "q", "r", "s"]
    assert [b["position"] for b in bodies] == [0, 1, 2, 3]
    recs = task_records(root, "ForeachFlow", run_id, "body")
    # the first task sleeps longest, so it finishes after the last one...
    assert recs[0]["finished_at"] > recs[3]["finished_at"]
    join = only(root, "ForeachFlow", run_id, "join")
    # ...yet the join sees its inputs by foreach index
    assert join["pairs"] == [(0, "p"), (1, "q"), (2, "r"), (3, "s")]
    assert join["inputs_seen"] == [(0, "p"), (1, "q"), (2, "r"), (3, "s")]
    assert join["uppers"] == "PQRS"
    assert only(root, "ForeachFlow", run_id, "end")["done"] == 4


@pytest.mark.parametrize("executor", ["fork", "spawn"])
def test_nested_foreach(root, executor):
    _, run_id = run_flow(root, flow_path("nested_foreach"), env={"MFC_LOCAL_EXECUTOR": executor})
    inner = artifacts(root, "NestedForeachFlow", run_id, "inner_body")
    assert [t["val"] for t in inner] == [10, 11, 12, 20, 21, 22]
    assert inner[4]["stack"] == [(1, 2, 2), (1, 3, 21)]
    inner_joins = artifacts(root, "NestedForeachFlow", run_id, "inner_join")
    assert [j["vals"] for j in inner_joins] == [[10, 11, 12], [20, 21, 22]]
    assert [j["o_seen"] for j in inner_joins] == [[1], [2]]
    # after the inner join, the task is back in the outer foreach
    assert [j["after_inner_index"] for j in inner_joins] == [0, 1]
    outer = only(root, "NestedForeachFlow", run_id, "outer_join")
    assert outer["all_vals"] == [[10, 11, 12], [20, 21, 22]]


def test_branch_inside_foreach_and_foreach_inside_branch(root):
    _, run_id = run_flow(root, flow_path("mixed_shapes"))
    item_joins = artifacts(root, "MixedShapesFlow", run_id, "item_join")
    assert [j["pair"] for j in item_joins] == [(3, 6, 9), (5, 10, 25)]
    join = only(root, "MixedShapesFlow", run_id, "join")
    assert join["pairs"] == [(3, 6, 9), (5, 10, 25)]
    assert join["tags"] == ["fan", "plain"]
    assert len(task_records(root, "MixedShapesFlow", run_id, "double")) == 2


def test_merge_artifacts_exclude(root):
    _, run_id = run_flow(root, flow_path("merge"), "--mode", "exclude")
    join = only(root, "MergeFlow", run_id, "join")
    assert join["common"] == [1, 2, 3]
    assert join["same"] == {"k": 5}
    assert join["only_a"] == "A"
    assert "diff" not in join
    assert only(root, "MergeFlow", run_id, "end")["mode_seen"] == "exclude"


def test_merge_artifacts_include(root):
    _, run_id = run_flow(root, flow_path("merge"), "--mode", "include")
    join = only(root, "MergeFlow", run_id, "join")
    assert join["same"] == {"k": 5}
    assert "common" not in join and "diff" not in join and "only_a" not in join


def test_merge_artifacts_value_set_before_merge_wins(root):
    _, run_id = run_flow(root, flow_path("merge"), "--mode", "explicit")
    join = only(root, "MergeFlow", run_id, "join")
    assert join["diff"] == "chosen"
    assert join["same"] == {"k": 5} and join["common"] == [1, 2, 3]


def test_merge_artifacts_conflict_fails_the_run(root):
    proc, run_id = run_flow(root, flow_path("merge"), "--mode", "conflict", expect=1)
    assert "merge_artifacts() found different values for: diff" in proc.stderr, describe(proc)
    assert f"MergeFlow/{run_id}/join/" in proc.stderr
    assert run_status(root, "MergeFlow", run_id) == "failed"
    [record] = task_records(root, "MergeFlow", run_id, "join")
    assert record["status"] == "failed"
    assert "diff" in record["exception"]["message"]


def test_current_inside_tasks(root):
    _, run_id = run_flow(root, flow_path("current_info"), env={"MFC_USER": "tester"})
    for step, name, retry_count in (("start", "info_start", 0), ("again", "info_again", 1), ("end", "info_end", 0)):
        [record] = task_records(root, "CurrentFlow", run_id, step)
        info = only(root, "CurrentFlow", run_id, step)[name]
        assert info == {
            "flow_name": "CurrentFlow", "run_id": run_id, "step_name": step, "task_id": record["task_id"],
            "retry_count": retry_count, "pathspec": f"CurrentFlow/{run_id}/{step}/{record['task_id']}",
            "username": "tester", "is_running_flow": True,
        }
    assert only(root, "CurrentFlow", run_id, "start")["at_import"] is False


def test_include_file_large_bytes_and_numpy(root, tmp_path):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("line one\nünïcödé line two\n", encoding="utf-8")
    blob_file = tmp_path / "blob.bin"
    blob_file.write_bytes(bytes(range(256)) * 4)
    _, run_id = run_flow(root, flow_path("data"), "--text", str(text_file), "--blob", str(blob_file), timeout=120)
    start = only(root, "DataFlow", run_id, "start")
    assert start["text"] == "line one\nünïcödé line two\n"
    assert start["blob"] == bytes(range(256)) * 4
    assert len(start["big"]) == 20 * 1024 * 1024
    assert hashlib.sha256(start["big"]).hexdigest() == start["big_sha"]
    expected = np.arange(12, dtype=np.float64).reshape(3, 4) / 7.0
    assert isinstance(start["matrix"], np.ndarray)
    assert np.array_equal(start["matrix"], expected) and start["matrix"].dtype == np.float64
    check = only(root, "DataFlow", run_id, "check")
    assert check["big_sha_seen"] == start["big_sha"]
    assert check["big_len_seen"] == 20 * 1024 * 1024
    assert check["matrix_sum"] == float(expected.sum())
    assert check["text_seen"] == start["text"]
    assert check["blob_len"] == 1024
    assert np.array_equal(check["scaled"], expected * 2)
    [record] = task_records(root, "DataFlow", run_id, "start")
    assert record["artifacts"]["big"][1] >= 20 * 1024 * 1024
