"""The example notebook (examples/inspect_runs.ipynb), executed for real (nbclient, an ipykernel)
against a run recorded in a real metadata service: runs, artifacts and a plot, with the
client's HTML representations in the outputs."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient
from service_support import running_service
from support import run_flow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_the_example_notebook_inspects_a_service_backed_run(tmp_path, root, monkeypatch):
    with running_service("sqlite:///" + str(tmp_path / "service.db"), tmp_path) as service:
        env = {"MFC_METADATA": "service", "MFC_SERVICE_URL": service.url, "MFC_SERVICE_TOKEN": service.token}
        _, run_id = run_flow(root, str(EXAMPLES / "branch_foreach.py"), "--scale", "3", env=env, timeout=120)
        for name, value in {**env, "MFC_DATASTORE_ROOT": str(root),
                            "MFC_CONFIG": str(tmp_path / "no-config.toml")}.items():
            monkeypatch.setenv(name, value)
        notebook = nbformat.read(EXAMPLES / "inspect_runs.ipynb", as_version=4)
        NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]
    assert not [out for out in outputs if out.output_type == "error"]
    html = [out["data"]["text/html"] for out in outputs if "text/html" in out.get("data", {})]
    assert any(run_id in page for page in html), "the run's HTML table shows its id"
    assert any("total_of_squares" in page for page in html), "the report task's artifacts are shown"
    texts = " ".join(out["data"].get("text/plain", "") for out in outputs if "data" in out)
    assert "(0, 3, 9)" in texts and "(4, 15, 225)" in texts, texts
    assert f"('{run_id}', True, True)" in texts
    assert any("image/png" in out.get("data", {}) for out in outputs), "the plot is drawn"
