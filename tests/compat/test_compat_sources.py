"""Source compatibility: flows written for Metaflow (``tests/compat/metaflow_src``, importing
``from metaflow import ...``) run on mfc once their import line is rewritten, and nothing else.

When the ``metaflow`` package is installed, the same original files also run under real Metaflow
(local datastore and metadata in a temporary directory) and both frameworks must agree on the
end step's artifacts and on the number of tasks of every step."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from compat_support import (
    METAFLOW_SRC,
    metaflow_available,
    metaflow_run,
    metaflow_summary,
    mfc_env,
    run_summary,
)

from mfc import Run, default_namespace, metadata, namespace

IMPORT_LINE = "from metaflow import"


@dataclass(frozen=True)
class SourceFlow:
    file: str
    flow: str
    args: tuple[str, ...] = ()
    data: tuple[str, ...] = ()
    check: Callable[[dict[str, Any]], None] = field(default=lambda summary: None)


def rewrite_imports(source: str) -> str:
    """The one edit a Metaflow user makes: ``from metaflow import`` -> ``from mfc import``."""
    return "".join("from mfc import" + line[len(IMPORT_LINE):] if line.startswith(IMPORT_LINE) else line
                   for line in source.splitlines(keepends=True))


# -- what each flow must compute ------------------------------------------------------------------------

def check_playlist(summary: dict[str, Any]) -> None:
    text = (METAFLOW_SRC / "movies.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    scifi = [r for r in rows if "sci-fi" in r["genres"].lower()]
    scores = [round(int(r["gross"]) / 1e6 + (10 if int(r["title_year"]) >= 2015 else 0), 2) for r in scifi]
    ranked = sorted(zip([r["movie_title"] for r in scifi], scores, strict=True), key=lambda pair: -pair[1])
    bonus = max((r for r in rows if "sci-fi" not in r["genres"].lower()), key=lambda r: int(r["gross"]))
    end = summary["end"]
    assert end["playlist"] == [title for title, _ in ranked[:3]]
    assert end["scored"] == [[r["movie_title"], s] for r, s in zip(scifi, scores, strict=True)]  # foreach index order
    assert end["bonus"] == [bonus["movie_title"], bonus["genres"]]
    assert end["movie_data"] == text and end["num_movies"] == len(rows)
    assert end["genre"] == "Sci-Fi" and end["recommendations"] == 3
    assert summary["tasks_per_step"] == {"start": 1, "bonus_movie": 1, "genre_movies": 1, "score_movie": len(scifi),
                                         "top_movies": 1, "join": 1, "end": 1}


def check_params(summary: dict[str, Any]) -> None:
    end = summary["end"]
    notes = (METAFLOW_SRC / "notes.txt").read_text()
    assert end["alpha"] == 0.02 and end["epochs"] == 4 and end["model"] == "tree" and end["shuffle"] is True
    assert end["config"] == {"layers": [8, 4]} and end["layer_total"] == 12
    assert end["notes"] == notes and end["lines"] == notes.splitlines()
    assert end["run_name"] == "trainconfigflow-by-run_name"  # callable default, given a ParameterContext
    assert end["schedule"] == [0.02, 0.01, 0.005, 0.0025]
    assert json.loads(end["summary"]) == {"model": "tree", "shuffle": True, "epochs": 4, "final_lr": 0.0025}
    assert end["kinds"] == {"alpha": "float", "epochs": "int", "model": "str", "shuffle": "bool", "config": "dict",
                            "notes": "str", "run_name": "str"}
    assert end["ran_as"] == ["TrainConfigFlow", "start", 0, True]
    assert end["pathspec_ok"] is True and end["namespace_ok"] is True


def check_resilient(summary: dict[str, Any]) -> None:
    assert summary["end"] == {"attempts_needed": 3, "timed_out": True, "mode": "fast", "mode_in_join": None,
                              "error_message": "division by zero"}
    assert set(summary["tasks_per_step"].values()) == {1}


def check_grid(summary: dict[str, Any]) -> None:
    rates, depths = [0.5, 0.05, 0.005], [1, 3]
    end = summary["end"]
    table = {str(lr): [round(1 - lr * d ** 2, 6) for d in depths] for lr in rates}
    assert end["table"] == table and end["rate_order"] == rates
    assert end["positions"] == [[[[i, 3], [j, 2]] for j in range(2)] for i in range(3)]
    best = max(((lr, d, round(1 - lr * d ** 2, 6)) for lr in rates for d in depths), key=lambda row: row[2])
    assert end["winner"] == list(best)
    assert summary["tasks_per_step"] == {"start": 1, "per_rate": 3, "fit": 6, "best_depth": 3, "best_rate": 1,
                                         "end": 1}


def check_catch(summary: dict[str, Any]) -> None:
    assert summary["end"] == {"failed_params": [0], "results": [5.0, 2.5]}


SOURCES = [
    pytest.param(SourceFlow("playlist.py", "PlayListFlow", data=("movies.csv",), check=check_playlist),
                 id="playlist"),
    pytest.param(SourceFlow("params_include.py", "TrainConfigFlow",
                            ("--alpha", "0.02", "--epochs", "4", "--model", "tree", "--shuffle=True",
                             "--config", '{"layers": [8, 4]}'), ("notes.txt",), check_params), id="params_include"),
    pytest.param(SourceFlow("resilient.py", "ResilientFlow", check=check_resilient), id="resilient"),
    pytest.param(SourceFlow("grid.py", "GridSearchFlow", ("--learning_rates", "[0.5, 0.05, 0.005]",
                                                          "--depths", "[1, 3]"), check=check_grid), id="grid"),
    pytest.param(SourceFlow("catch_idiom.py", "CatchFlow", check=check_catch), id="catch_idiom"),
]


# -- running ---------------------------------------------------------------------------------------------

def _stage(source: SourceFlow, workdir: Path, rewrite: bool) -> str:
    """Copy the flow (rewritten or not) and its data files into ``workdir``; returns the flow path."""
    workdir.mkdir(parents=True, exist_ok=True)
    text = (METAFLOW_SRC / source.file).read_text()
    (workdir / source.file).write_text(rewrite_imports(text) if rewrite else text)
    for name in source.data:
        shutil.copy(METAFLOW_SRC / name, workdir / name)
    return str(workdir / source.file)


@pytest.fixture(scope="module")
def mfc_summaries(tmp_path_factory: pytest.TempPathFactory):
    """Run each rewritten flow on mfc once (``python flow.py run ARGS``); summaries by file."""
    base = tmp_path_factory.mktemp("compat-src")
    root = base / "ds"
    cache: dict[str, dict[str, Any]] = {}

    def summary(source: SourceFlow) -> dict[str, Any]:
        if source.file not in cache:
            workdir = base / source.file.removesuffix(".py")
            path = _stage(source, workdir, rewrite=True)
            id_file = workdir / "run-id"
            proc = subprocess.run([sys.executable, path, "run", "-q", "--run-id-file", str(id_file), *source.args],
                                  cwd=workdir, env=mfc_env(root), capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            metadata(str(root))
            namespace(None)
            try:
                cache[source.file] = run_summary(Run(f"{source.flow}/{id_file.read_text().strip()}"))
            finally:
                metadata(None)
                default_namespace()
        return cache[source.file]

    return summary


def test_sources_import_only_from_metaflow_once():
    """Each source is a plain Metaflow flow: one ``from metaflow import`` line, which is all the
    rewrite touches."""
    files = sorted(METAFLOW_SRC.glob("*.py"))
    assert len(files) >= 4
    for path in files:
        before = path.read_text().splitlines()
        after = rewrite_imports(path.read_text()).splitlines()
        assert len(before) == len(after), path
        changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
        assert len(changed) == 1, path
        assert changed[0][0].startswith(IMPORT_LINE) and changed[0][1].startswith("from mfc import")
        assert not [line for line in after if "import metaflow" in line or "from metaflow" in line]


@pytest.mark.parametrize("source", SOURCES)
def test_metaflow_flow_runs_on_mfc(source: SourceFlow, mfc_summaries):
    summary = mfc_summaries(source)
    assert summary["successful"] is True
    source.check(summary)


@pytest.mark.slow
@pytest.mark.skipif(not metaflow_available(), reason="metaflow is not installed (pip install 'metaflow>=2.12,<3')")
@pytest.mark.parametrize("source", SOURCES)
def test_same_results_as_metaflow(source: SourceFlow, mfc_summaries, tmp_path):
    """The original file under real Metaflow and the rewritten one under mfc agree."""
    ours = mfc_summaries(source)
    workdir = tmp_path / "metaflow"
    path = _stage(source, workdir, rewrite=False)
    run_id = metaflow_run(workdir, path, *source.args)
    theirs = metaflow_summary(workdir, source.flow, run_id)
    source.check(theirs)  # the expectations hold for Metaflow too
    assert ours == theirs
