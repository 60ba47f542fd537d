"""The web UI in a real browser (the system Chromium, driven by playwright) against a real
service: live updates while a run goes on, a failed step's colour, a card in its sandboxed frame,
no write buttons for a read-only token, and the Trigger button starting a Step Functions
execution in the sandbox. Each scenario writes a screenshot to tests/.screenshots/."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from service_support import client, running_service, unique
from ui_support import (
    BRANCH_GRAPH,
    CHROMIUM,
    FOREACH_GRAPH,
    create_run,
    finish_run,
    finish_task,
    log_in,
    need_chromium,
    run_info,
    screenshot,
    start_task,
)

from mfc.service.ui.dag import STATUS_FILL
from mfc.stores.taskrecord import Ending

WAIT_MS = 15_000


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    with running_service(f"sqlite:///{root}/service.db", root, datastore_roots=[str(root)]) as svc:
        svc.root = str(root)
        yield svc


@pytest.fixture(scope="module")
def browser():
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page_for(browser):
    """``page_for(service, token)``: a fresh browser context logged in with that token."""
    contexts = []

    def make(service, token):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        log_in(page, service.url, token)
        return page
    yield make
    for context in contexts:
        context.close()


def node(page, step):
    return page.locator(f'svg.dag g.node[data-step="{step}"]')


def test_a_run_page_follows_the_run_without_reloading(service, page_for):
    flow = unique("Live")
    with client(service) as c:
        run_id = create_run(c, flow, run_info(FOREACH_GRAPH))
        finish_task(c, flow, run_id, "start", "start", foreach={"var": "letters", "num_splits": 3, "split": "k"})
        started = start_task(c, flow, run_id, "body", "body-0", index=0, item="'p'")
        page = page_for(service, service.token)
        page.goto(f"{service.url}/flows/{flow}/runs/{run_id}")
        page.evaluate("window.__notReloaded = true")
        assert node(page, "body").get_attribute("data-status") == "running"
        assert "0/3 tasks" in node(page, "body").text_content()
        assert node(page, "join").get_attribute("data-status") == "pending"
        screenshot(page, "live-1-running")

        finish_task(c, flow, run_id, "body", "body-0", index=0, item="'p'", started=started)
        finish_task(c, flow, run_id, "body", "body-1", index=1, item="'q'")
        expect(node(page, "body").locator("text.caption")).to_have_text("2/3 tasks", timeout=WAIT_MS)
        assert node(page, "body").get_attribute("data-status") == "running"
        screenshot(page, "live-2-two-of-three")

        finish_task(c, flow, run_id, "body", "body-2", index=2, item="'r'")
        finish_task(c, flow, run_id, "join", "join")
        finish_task(c, flow, run_id, "end", "end")
        finish_run(c, flow, run_id, "succeeded")
    expect(page.locator("h1 .badge")).to_have_text("succeeded", timeout=WAIT_MS)
    assert "3/3 tasks" in node(page, "body").text_content()
    assert node(page, "end").get_attribute("data-status") == "succeeded"
    assert page.evaluate("window.__notReloaded") is True
    assert page.locator(".tl-bar").count() == 6
    screenshot(page, "live-3-succeeded")


def test_the_runs_page_shows_a_new_run_and_a_status_change_live(service, page_for):
    flow = unique("Listing")
    with client(service) as c:
        first = create_run(c, flow, run_info(BRANCH_GRAPH))
        page = page_for(service, service.read_only_token)
        page.goto(f"{service.url}/flows/{flow}")
        page.evaluate("window.__notReloaded = true")
        second = create_run(c, flow, run_info(BRANCH_GRAPH, tags=["fresh"]))
        expect(page.locator(f'tr[data-run="{second}"]')).to_be_visible(timeout=WAIT_MS)
        finish_run(c, flow, first, "failed")
    expect(page.locator(f'tr[data-run="{first}"] .badge')).to_have_text("failed", timeout=WAIT_MS)
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "runs-live")


def test_a_failed_step_is_drawn_in_the_failed_colour(service, page_for):
    flow = unique("Failed")
    with client(service) as c:
        run_id = create_run(c, flow, run_info(BRANCH_GRAPH))
        finish_task(c, flow, run_id, "start", "start")
        finish_task(c, flow, run_id, "b", "b")
        finish_task(c, flow, run_id, "a", "a", ending=Ending.FAILED)
        finish_run(c, flow, run_id, "failed")
    page = page_for(service, service.read_only_token)
    page.goto(f"{service.url}/flows/{flow}/runs/{run_id}")
    failed, fine = node(page, "a"), node(page, "b")
    assert "status-failed" in failed.get_attribute("class")
    assert failed.locator("rect").get_attribute("fill") == STATUS_FILL["failed"]
    assert fine.locator("rect").get_attribute("fill") == STATUS_FILL["succeeded"]
    assert node(page, "join").get_attribute("data-status") == "pending"
    assert page.locator("h1 .badge").inner_text() == "failed"
    screenshot(page, "dag-failed-step")


def test_a_card_renders_in_its_sandboxed_frame_and_the_log_tail_shows(service, page_for):
    from mfc.stores.blob import open_blob_store

    flow = unique("Card")
    blobs = open_blob_store(service.root)
    with client(service) as c:
        run_id = create_run(c, flow, run_info(BRANCH_GRAPH))
        base = f"{flow}/{run_id}/start/start/0"
        card_key = f"{base}.card.summary.html"
        blobs.put_bytes(card_key, b"<html><body><h1 id='hello'>Hello from a card</h1></body></html>")
        blobs.put_bytes(f"{base}.stdout", "".join(f"line {i}\n" for i in range(500)).encode())
        logs = {"root": service.root, "stdout": f"{base}.stdout", "stderr": f"{base}.stderr"}
        finish_task(c, flow, run_id, "start", "start", logs=logs,
                    cards=[{"id": "summary", "type": "default", "key": card_key}])
    page = page_for(service, service.read_only_token)
    page.goto(f"{service.url}/flows/{flow}/runs/{run_id}/start/start")
    frame = page.locator("figure.card iframe")
    assert frame.get_attribute("sandbox") == "allow-scripts"
    assert page.frame_locator("figure.card iframe").locator("#hello").inner_text() == "Hello from a card"
    log = page.locator("pre.log-stdout").inner_text()
    assert "line 499" in log and "line 300" in log and "line 299\n" not in log
    frame.scroll_into_view_if_needed()
    frame.screenshot(path=screenshot(page, "card").replace(".png", "-frame.png"))


def test_the_log_tail_of_a_running_task_refreshes(service, page_for):
    from mfc.stores.blob import open_blob_store

    flow = unique("Tail")
    blobs = open_blob_store(service.root)
    with client(service) as c:
        run_id = create_run(c, flow, run_info(BRANCH_GRAPH))
        base = f"{flow}/{run_id}/start/start/0"
        logs = {"root": service.root, "stdout": f"{base}.stdout", "stderr": f"{base}.stderr"}
        blobs.put_bytes(f"{base}.stdout", b"first line\n")
        started = start_task(c, flow, run_id, "start", "start", logs=logs)
        page = page_for(service, service.read_only_token)
        page.goto(f"{service.url}/flows/{flow}/runs/{run_id}/start/start")
        page.evaluate("window.__notReloaded = true")
        expect(page.locator("pre.log-stdout")).to_have_text("first line")
        blobs.put_bytes(f"{base}.stdout", b"first line\nsecond line\n")
        expect(page.locator("pre.log-stdout")).to_contain_text("second line", timeout=WAIT_MS)
        finish_task(c, flow, run_id, "start", "start", logs=logs, started=started)
    expect(page.locator("h1 .badge")).to_have_text("succeeded", timeout=WAIT_MS)
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "log-tail")


def test_a_revoked_token_sends_an_open_page_to_the_login_form(service, page_for):
    from mfc.service.auth import create_token, revoke_token

    flow = unique("Revoked")
    token = create_token(service.db, label="to revoke")
    with client(service) as c:
        run_id = create_run(c, flow, run_info(BRANCH_GRAPH))
    page = page_for(service, token)
    page.goto(f"{service.url}/flows/{flow}/runs/{run_id}")
    revoke_token(service.db, token.split("_")[1])
    page.wait_for_url(f"{service.url}/login?next=*", timeout=20_000)
    expect(page.locator("input[name=token]")).to_be_visible()
    screenshot(page, "revoked-to-login")


def _sfn_run(c, flow: str) -> str:
    driver = {"kind": "sfn", "execution": "arn:aws:states:us-east-1:123456789012:execution:M:x1"}
    return create_run(c, flow, run_info(BRANCH_GRAPH, driver=driver))


def test_a_read_only_token_sees_no_trigger_or_terminate_button(service, page_for):
    flow = unique("Buttons")
    with client(service) as c:
        r = c.put(f"/api/v1/deployments/{flow}", json={
            "flow": flow, "state_machine_arn": f"arn:aws:states:us-east-1:123456789012:stateMachine:{flow}",
            "schedule": {"expression": "cron(0 3 * * ? *)", "timezone": "Europe/Paris"}})
        assert r.status_code == 200, r.text
        run_id = _sfn_run(c, flow)
    for token, who in ((service.read_only_token, "read-only"), (service.token, "writer")):
        page = page_for(service, token)
        page.goto(f"{service.url}/deployments")
        row = page.locator(f'tr[data-deployment="{flow}"]')
        assert row.locator(".fire").count() == 3
        assert row.locator("button.trigger-button").count() == (0 if who == "read-only" else 1)
        screenshot(page, f"deployments-{who}")
        page.goto(f"{service.url}/flows/{flow}/runs/{run_id}")
        assert page.locator("h1 .badge").inner_text() == "running"
        assert page.locator("#terminate").count() == (0 if who == "read-only" else 1)
        assert "sfn" in page.locator(".summary").inner_text()
        screenshot(page, f"run-buttons-{who}")


def test_a_write_without_the_ui_header_is_refused(service):
    """The cookie alone cannot write (a form on another site could send it); the UI's header can."""
    import httpx

    flow = unique("Csrf")
    with client(service) as c:
        run_id = create_run(c, flow, run_info(BRANCH_GRAPH))
    url = f"/api/v1/flows/{flow}/runs/{run_id}/tags"
    with httpx.Client(base_url=service.url, cookies={"mfc_token": service.token}) as browser:
        refused = browser.post(url, json={"add": ["x"]})
        assert refused.status_code == 403 and "X-MFC-UI" in refused.json()["detail"]
        assert browser.post(url, json={"add": ["x"]}, headers={"X-MFC-UI": "1"}).status_code == 200


@pytest.mark.docker
@pytest.mark.slow
def test_the_trigger_button_starts_an_execution_and_terminate_stops_it(deploy, sandbox, page_for, tmp_path):
    from mfc.config import Config
    from mfc.sfn.deploy import sfn_client

    deploy("linear")
    config = Config()  # MFC_PROFILE=sandbox, as the sandbox fixture set it
    sfn = sfn_client(config)
    machines = [m for m in sfn.list_state_machines()["stateMachines"] if "Linear" in m["name"]]
    assert machines, "the deployment made no state machine"
    machine = machines[0]
    with running_service(f"sqlite:///{tmp_path}/service.db", tmp_path, config=config) as svc:
        with client(svc) as c:
            r = c.put(f"/api/v1/deployments/{machine['name']}", json={
                "flow": "LinearFlow", "state_machine_arn": machine["stateMachineArn"], "region": "us-east-1"})
            assert r.status_code == 200, r.text
        before = {e["executionArn"] for e in sfn.list_executions(stateMachineArn=machine["stateMachineArn"])
                  ["executions"]}
        page = page_for(svc, svc.token)
        page.goto(f"{svc.url}/deployments")
        row = page.locator(f'tr[data-deployment="{machine["name"]}"]')
        row.locator("button.trigger-button").click()
        expect(row.locator("output")).to_contain_text("started", timeout=WAIT_MS)
        shown = row.locator("output").inner_text()
        link = row.locator("output a").get_attribute("href")
        screenshot(page, "trigger-sandbox")
        after = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
        started = [e for e in after if e["executionArn"] not in before]
        assert len(started) == 1 and started[0]["executionArn"] in shown
        run_id = f"sfn-{started[0]['name']}"
        assert link == f"/flows/LinearFlow/runs/{run_id}"

        # The run as its start step records it (the client provider will do this), then Terminate.
        driver = {"kind": "sfn", "execution": started[0]["executionArn"], "state_machine": machine["stateMachineArn"]}
        with client(svc) as c:
            create_run(c, "LinearFlow", run_info(BRANCH_GRAPH, driver=driver), run_id=run_id)
        page.on("dialog", lambda dialog: dialog.accept())
        page.goto(f"{svc.url}{link}")
        running = sfn.describe_execution(executionArn=started[0]["executionArn"])["status"]
        if running != "RUNNING":
            pytest.fail(f"the execution ended ({running}) before it could be terminated")
        page.locator("#terminate").click()
        expect(page.locator(".actions output")).to_contain_text("terminated", timeout=WAIT_MS)
        expect(page.locator("h1 .badge")).to_have_text("failed", timeout=WAIT_MS)
        screenshot(page, "terminate-sandbox")
    assert sfn.describe_execution(executionArn=started[0]["executionArn"])["status"] == "ABORTED"
