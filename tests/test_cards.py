"""``@card``: cards rendered by real ``mfc run`` tasks, stored with the task, read back by the
client and by ``mfc card view|get|list`` (and ``python flow.py card ...``)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mfc.cli
from mfc.exceptions import MfcError
from tests.support import clean_env, describe, records, run_flow, script
from tests.support import mfc as mfc_process

FLOWS = Path(__file__).parent / "flows_cards"
CARD_FLOW = str(FLOWS / "card_flow.py")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cards") / "ds"
    root.mkdir()
    t0 = time.monotonic()
    proc, run_id = run_flow(str(root), CARD_FLOW, timeout=120)
    assert run_id
    return {"root": str(root), "id": run_id, "stderr": proc.stderr, "seconds": f"{time.monotonic() - t0:.1f}"}


@pytest.fixture(autouse=True)
def datastore_env(run: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MFC_DATASTORE_ROOT", run["root"])
    monkeypatch.delenv("MFC_PROFILE", raising=False)
    monkeypatch.setenv("MFC_CONFIG", "/nonexistent/mfc-config.toml")


def record(run: dict[str, str], step: str) -> dict:
    raw = records(run["root"], "CardFlow").blobs.get_bytes(f"CardFlow/{run['id']}/{step}/{step}/0.json")
    return json.loads(raw)


def card_html(run: dict[str, str], step: str, card_id: str) -> str:
    path = Path(run["root"]) / "CardFlow" / run["id"] / step / step / f"0.card.{card_id}.html"
    return path.read_text()


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The ``mfc`` command line in-process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    try:
        mfc.cli.main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


# -- what a task stores ---------------------------------------------------------------------------

def test_record_lists_cards_and_records_without_cards_have_no_field(run: dict[str, str]) -> None:
    key = f"CardFlow/{run['id']}/start/start/0.card.default.html"
    assert record(run, "start")["cards"] == [{"id": "default", "type": "default", "key": key}]
    assert [(c["id"], c["type"]) for c in record(run, "multi")["cards"]] == [
        ("summary", "blank"), ("details", "default"), ("default", "default")]
    for step in ("plain", "end"):
        assert "cards" not in record(run, step)
        assert not list((Path(run["root"]) / "CardFlow" / run["id"] / step / step).glob("*.card.*"))


def test_default_card_shows_artifacts_and_every_component_escaped(run: dict[str, str]) -> None:
    html = card_html(run, "start", "default")
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html
    assert "<script" not in html.lower(), "no user text reaches the card unescaped"
    assert "&lt;script&gt;alert(&#x27;artifact&#x27;)&lt;/script&gt;" in html  # the artifact's preview
    assert re.search(r"<td>evil</td><td>str</td><td>\d+ B</td>", html)
    assert "<td>numbers</td><td>list</td>" in html and "[0, 1, 2, 3, 4]" in html
    assert "<h1>Report &lt;script&gt;" in html and "<em>emphasis</em>" in html  # Markdown, raw HTML as text
    assert 'href="javascript' not in html
    assert "<th>&lt;v&gt;</th>" in html and "<td>&lt;i&gt;cell&lt;/i&gt;</td>" in html  # Table cells and headers
    assert "<strong>inner</strong>" in html and "{&#x27;a&#x27;: 1}" in html  # components inside cells
    assert "<div class='label'>numbers</div>" in html  # Artifact with a name
    images = re.findall(r"<img src='data:image/png;base64,([A-Za-z0-9+/=]+)' alt='([^']*)'>", html)
    assert [alt for _, alt in images] == ["tiny &lt;png&gt;", "plot"]
    tiny, plot = (base64.b64decode(data) for data, _ in images)
    assert tiny.startswith(b"\x89PNG") and len(tiny) == 66
    assert plot.startswith(b"\x89PNG") and len(plot) > 5000  # a real matplotlib drawing
    assert "http://" not in html and "https://" not in html  # self-contained


def test_several_cards_per_task_by_id(run: dict[str, str]) -> None:
    summary, details, default = (card_html(run, "multi", i) for i in ("summary", "details", "default"))
    assert "summary text" in summary and "<h2>Artifacts</h2>" not in summary  # blank: only its components
    assert "answer" in details and "42" in details and "<h2>Artifacts</h2>" in details
    assert "to the card without an id" in default
    assert all("summary text" not in h for h in (details, default))
    assert all("lost" not in h for h in (summary, details, default))
    # current.card["nope"] warns on the task's stderr and in the cards, as Metaflow does
    stderr = _stderr(run, "multi")
    assert stderr.count("current.card['nope'] is not a card of this step") == 1
    assert "current.card[&#x27;nope&#x27;] is not a card" in summary


def _stderr(run: dict[str, str], step: str) -> str:
    from mfc.client import Task

    return Task(f"CardFlow/{run['id']}/{step}/{step}", False).stderr


def test_a_component_that_raises_shows_its_error_and_the_task_succeeds(run: dict[str, str]) -> None:
    assert record(run, "broken")["ending"] == "ok"
    html = card_html(run, "broken", "blank")
    assert "before the broken one" in html
    assert "Boom failed to render" in html and "ValueError: this component cannot render" in html
    assert "Boom failed to render: ValueError: this component cannot render" in _stderr(run, "broken")


def test_a_card_type_that_raises_and_an_unknown_type_store_error_cards(run: dict[str, str]) -> None:
    assert record(run, "custom")["ending"] == "ok"
    assert [c["id"] for c in record(run, "custom")["cards"]] == ["unknown", "exploding"]
    exploding = card_html(run, "custom", "exploding")
    assert "card exploding (exploding) failed to render" in exploding
    assert "RuntimeError: the exploding card type always fails" in exploding
    assert "no card type &#x27;nosuchtype&#x27; (known: blank, default, exploding)" in card_html(run, "custom", "unknown")
    stderr = _stderr(run, "custom")
    assert "card exploding (exploding) failed to render: RuntimeError" in stderr
    assert "card unknown (nosuchtype) failed to render: LookupError" in stderr


def test_a_render_past_its_timeout_is_cut_off(run: dict[str, str]) -> None:
    rec = record(run, "slow")
    assert rec["ending"] == "ok"
    assert rec["finished_at"] - rec["started_at"] < 15, "the 30 s render was not waited for"
    html = card_html(run, "slow", "blank")
    assert "took longer than its timeout (1 s) and was cut off" in html and "too late" not in html
    assert "took longer than its timeout (1 s)" in _stderr(run, "slow")


def test_current_card_without_card_is_a_no_op_that_warns_once(run: dict[str, str]) -> None:
    assert record(run, "plain")["ending"] == "ok"
    assert _stderr(run, "plain").count("step plain has no @card: current.card calls are ignored") == 1


def test_a_failed_task_has_no_card(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    proc, run_id = run_flow(str(root), str(FLOWS / "failing_card_flow.py"), expect=1)
    rec = json.loads((root / "FailingCardFlow" / str(run_id) / "start" / "start" / "0.json").read_text())
    assert rec["ending"] == "failed" and "cards" not in rec
    assert not list((root / "FailingCardFlow").rglob("*.card.*"))


def test_decorator_arguments_are_checked_where_they_are_written(tmp_path: Path) -> None:
    from mfc import card, step

    with pytest.raises(MfcError, match=r"test_cards\.py:\d+: @card\(id='no/slash'\): expected a name"):
        card(id="no/slash")(step(lambda self: None))
    with pytest.raises(MfcError, match=r"@card\(id='a'\) is used twice on step"):
        def twice(self: object) -> None: ...
        card(id="a")(card(id="a")(step(twice)))
    with pytest.raises(MfcError, match=r"@card has no argument 'colour'"):
        card(colour="red")(step(lambda self: None))
    with pytest.raises(MfcError, match=r"@card\(timeout=0.0\): must be greater than 0"):
        card(timeout=0)(step(lambda self: None))
    from mfc.decorators import decorator_from_spec

    with pytest.raises(MfcError, match=r"--with card: --with card is not supported yet"):
        decorator_from_spec("card")


# -- the client ------------------------------------------------------------------------------------

def test_get_cards_and_task_cards(run: dict[str, str]) -> None:
    from mfc.cards import get_cards
    from mfc.client import Task

    cards = get_cards(f"CardFlow/{run['id']}/multi/multi")
    assert [(c.id, c.type) for c in cards] == [("summary", "blank"), ("details", "default"), ("default", "default")]
    assert [c.id for c in get_cards(f"CardFlow/{run['id']}/multi/multi", type="default")] == ["details", "default"]
    task = Task(f"CardFlow/{run['id']}/start/start", False)
    (only,) = task.cards
    assert only.path == f"CardFlow/{run['id']}/start/start/0.card.default.html"
    assert only.html == only.get() == card_html(run, "start", "default")
    frame = only._repr_html_()
    assert frame.startswith("<iframe srcdoc=\"&lt;!DOCTYPE html&gt;") and "<script" not in frame.lower()
    assert "<iframe" in task.cards._repr_html_()
    assert list(get_cards(task, id="nope")) == [] and list(Task(f"CardFlow/{run['id']}/end/end", False).cards) == []


# -- mfc card ----------------------------------------------------------------------------------

def test_card_get_to_stdout_and_to_a_file(run: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = cli(capsys, "card", "get", f"CardFlow/{run['id']}/start/start")
    assert code == 0, err
    assert out == card_html(run, "start", "default")
    target = tmp_path / "card.html"
    code, out, err = cli(capsys, "card", "get", f"CardFlow/{run['id']}/multi", str(target), "--id", "summary")
    assert (code, out) == (0, ""), err
    assert target.read_text() == card_html(run, "multi", "summary")
    code, out, err = cli(capsys, "card", "get", f"CardFlow/{run['id']}/multi/multi", "--type", "blank")
    assert code == 0 and out == card_html(run, "multi", "summary")


def test_card_errors_are_one_line(run: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    base = f"CardFlow/{run['id']}"
    cases = {
        f"{base}/multi/multi": f"error: task {base}/multi/multi has 3 cards: summary (blank), details (default), "
                               "default (default); choose one with --id",
        f"{base}/end/end": f"error: task {base}/end/end has no cards (only a step with @card that succeeded has one)",
        f"{base}/nostep": "error: no step",
        "CardFlow/../x": "error: pathspec",
    }
    for pathspec, message in cases.items():
        code, out, err = cli(capsys, "card", "get", pathspec)
        assert code == 2 and out == "", (pathspec, err)
        assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err, err
    code, _, err = cli(capsys, "card", "view", f"{base}/multi/multi", "--id", "zzz")
    assert code == 2 and "has no card with id 'zzz' (cards: summary (blank), details" in err


def test_card_list(run: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "card", "list", f"CardFlow/{run['id']}/multi/multi")
    assert code == 0
    assert [line.split("\t")[:2] for line in out.splitlines()] == [["summary", "blank"], ["details", "default"],
                                                                   ["default", "default"]]
    code, out, _ = cli(capsys, "card", "list", f"CardFlow/{run['id']}/end")
    assert (code, out) == (0, f"task CardFlow/{run['id']}/end/end has no cards\n")


def test_card_view_without_a_display_prints_the_file(run: dict[str, str], capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    import webbrowser

    def no_browser(*args: object, **kwargs: object) -> bool:
        raise AssertionError("no browser may be opened without a display")

    monkeypatch.setattr(webbrowser, "open", no_browser)
    code, out, err = cli(capsys, "card", "view", f"CardFlow/{run['id']}/start/start")
    assert code == 0, err
    path = out.strip()
    try:
        assert path.endswith(".html") and Path(path).read_text() == card_html(run, "start", "default")
    finally:
        os.unlink(path)


def test_flow_script_card_commands(run: dict[str, str]) -> None:
    proc = script(run["root"], CARD_FLOW, "card", "get", f"{run['id']}/start/start")
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout == card_html(run, "start", "default")
    proc = script(run["root"], CARD_FLOW, "card", "list", "multi")  # STEP alone: the latest run
    assert proc.returncode == 0, describe(proc)
    assert [line.split("\t")[0] for line in proc.stdout.splitlines()] == ["summary", "details", "default"]
    proc = script(run["root"], CARD_FLOW, "card", "view", f"{run['id']}/multi", "--id", "details",
                  env={"DISPLAY": "", "WAYLAND_DISPLAY": ""})
    assert proc.returncode == 0, describe(proc)
    path = proc.stdout.strip()
    assert Path(path).read_text() == card_html(run, "multi", "details")
    os.unlink(path)
    proc = script(run["root"], CARD_FLOW, "card", "get", "multi")
    assert proc.returncode == 2 and proc.stderr.startswith("error: task CardFlow/") and "choose one with --id" in proc.stderr
    help_text = script(run["root"], CARD_FLOW).stdout
    assert re.search(r"^\s+card\s+Show, save or list", help_text, re.M)


# -- cost: a task without @card imports no card code ---------------------------------------------

_IN_PROCESS = """
import json, sys
from mfc.flowload import flow_class, import_flow_file
from mfc.graph import load_graph
from mfc.runner.task import execute
from mfc.runner.start import PARAMETERS_STEP, PARAMETERS_TASK, parameters_record
from mfc.runner.taskspec import InputRef, TaskSpec
from mfc.stores.blob import open_blob_store
from mfc.stores.records import TaskRecords

flow_file, root, step = sys.argv[1:4]
cls = flow_class(import_flow_file(flow_file), "PlainFlow", flow_file)
graph = load_graph(flow_file, "PlainFlow")
if step == "start":
    records = TaskRecords(open_blob_store(root), "PlainFlow")
    records.write("1", PARAMETERS_STEP, PARAMETERS_TASK, 0, parameters_record("PlainFlow", "1", {}))
    inputs = [InputRef(PARAMETERS_STEP, PARAMETERS_TASK, 0)]
else:
    inputs = [InputRef("start", "start", 0)]
spec = TaskSpec(flow_file=flow_file, flow_name="PlainFlow", step=step, run_id="1", task_id=step,
                datastore_root=root, inputs=inputs)
code = execute(spec, cls, graph)
print(json.dumps({"code": code, "cards": sorted(m for m in sys.modules if m.startswith("mfc.cards"))}))
"""


def test_a_task_without_card_imports_no_card_code(tmp_path: Path) -> None:
    flow_file = str(FLOWS / "plain_flow.py")
    results = {}
    for step in ("start", "end"):
        proc = subprocess.run([sys.executable, "-c", _IN_PROCESS, flow_file, str(tmp_path / "ds"), step],
                              env=clean_env(None), capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, describe(proc)
        results[step] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert results["start"] == {"code": 0, "cards": []}
    assert results["end"]["code"] == 0 and "mfc.cards.render" in results["end"]["cards"]  # the check can fail


# -- the same flow under Metaflow ------------------------------------------------------------------

def test_a_metaflow_flow_runs_on_mfc_with_only_its_imports_changed(tmp_path: Path) -> None:
    source = (FLOWS / "metaflow_card_flow.py").read_text()
    ported = source.replace("from metaflow import", "from mfc import").replace("from metaflow.cards import",
                                                                              "from mfc.cards import")
    changed = [new for old, new in zip(source.splitlines(), ported.splitlines(), strict=True) if old != new]
    assert changed == ["from mfc import FlowSpec, card, current, step",
                       "from mfc.cards import Artifact, Image, Markdown, Table"]
    flow_file = tmp_path / "portable.py"
    flow_file.write_text(ported)
    root = tmp_path / "ds"
    _, run_id = run_flow(str(root), str(flow_file))
    base = root / "PortableCardFlow" / str(run_id)
    start = (base / "start" / "start" / "0.card.default.html").read_text()
    assert "<h1>Portable</h1>" in start and "data:image/png;base64," in start and "<td>value</td>" in start
    assert "the end" in (base / "end" / "end" / "0.card.notes.html").read_text()


def test_the_same_flow_runs_under_metaflow(tmp_path: Path) -> None:
    pytest.importorskip("metaflow")
    flow_file = tmp_path / "portable.py"
    shutil.copy(FLOWS / "metaflow_card_flow.py", flow_file)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("METAFLOW_", "MFC_"))}
    env.update(METAFLOW_HOME=str(tmp_path / "mfhome"), USERNAME="tester", METAFLOW_DATASTORE_SYSROOT_LOCAL=str(tmp_path))
    proc = subprocess.run([sys.executable, str(flow_file), "--no-pylint", "run"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, describe(proc)
    cards = list((tmp_path / ".metaflow").rglob("*.html"))
    assert cards, f"Metaflow stored no card under {tmp_path / '.metaflow'}"


def test_a_resumed_run_keeps_the_cards_of_the_tasks_it_cloned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "ds"
    flow_file = str(FLOWS / "resume_card_flow.py")
    _, origin = run_flow(str(root), flow_file, env={"CARD_FLOW_FAIL": "1"}, expect=1)
    id_file = tmp_path / "resumed-id"
    proc = mfc_process(str(root), "resume", flow_file, "--origin-run-id", str(origin), "--run-id-file", str(id_file),
                   env={"CARD_FLOW_FAIL": ""})
    assert proc.returncode == 0, describe(proc)
    resumed = id_file.read_text().strip()
    assert resumed != origin
    monkeypatch.setenv("MFC_DATASTORE_ROOT", str(root))
    code, out, err = cli(capsys, "card", "get", f"ResumeCardFlow/{resumed}/start/start")
    assert code == 0, err
    assert "from the origin run" in out
    assert out == (root / "ResumeCardFlow" / str(origin) / "start" / "start" / "0.card.default.html").read_text()


# -- components on their own -----------------------------------------------------------------------

def test_components_sniff_images_and_report_what_they_cannot_show() -> None:
    from mfc.cards import Image, Markdown, Table
    from mfc.cards.components import render_component, sniff_image

    assert sniff_image(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_image(b"GIF89a...") == "image/gif"
    assert sniff_image(b"  <?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'/>") == "image/svg+xml"
    assert sniff_image(b"%PDF-1.7") is None
    svg = Image(b"<svg xmlns='http://www.w3.org/2000/svg'><script>x</script></svg>").render()
    assert "src='data:image/svg+xml;base64," in svg and "<script" not in svg  # only inside the data: URI, inert
    assert "Image cannot be shown" in Image(b"%PDF-1.7").render() and "not PNG, JPEG, GIF or SVG" in Image(b"%PDF").render()
    assert "must be a data:image/... URI" in Image("javascript:alert(1)").render()
    assert "not a matplotlib figure" in Image.from_matplotlib(object()).render()
    assert "<p>&lt;img src=x onerror=alert(1)&gt;</p>" in Markdown("<img src=x onerror=alert(1)>").render()
    assert "<td>a</td>\n<td>b</td>" in Markdown("| x | y |\n|---|---|\n| a | b |").render()  # tables enabled
    assert "is not a card component" in render_component("<b>plain string</b>")
    assert "&lt;b&gt;plain string&lt;/b&gt;" in render_component("<b>plain string</b>")
    assert "Object type list not supported" in Table.from_dataframe([1, 2]).render()


def test_markdown_without_markdown_it_shows_the_text_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    from mfc.cards import Markdown

    monkeypatch.setitem(sys.modules, "markdown_it", None)  # as in an image built without it
    html = Markdown("# Title <b>x</b>").render()
    assert "shown as plain text" in html and "<pre># Title &lt;b&gt;x&lt;/b&gt;</pre>" in html
