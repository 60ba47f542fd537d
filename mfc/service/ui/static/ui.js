// mfc UI: live fragments over server-sent events, and the buttons' POSTs. No framework, no build.
(function () {
  "use strict";
  var main = document.getElementById("main");

  function fragmentUrl() {
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "main");
    return url.toString();
  }

  // A log shows its end, and keeps following it unless the reader scrolled up.
  function followLogs(wasAtEnd) {
    main.querySelectorAll("pre.log").forEach(function (pre) {
      if (wasAtEnd[pre.className] !== false) { pre.scrollTop = pre.scrollHeight; }
    });
  }
  function logsAtEnd() {
    var at = {};
    main.querySelectorAll("pre.log").forEach(function (pre) {
      at[pre.className] = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    });
    return at;
  }
  if (main) { followLogs({}); }

  var fetching = false;
  var again = false;
  function refresh() {
    if (fetching) { again = true; return; }
    fetching = true;
    fetch(fragmentUrl(), { credentials: "same-origin", headers: { "X-MFC-UI": "1" } })
      .then(function (r) {
        if (r.redirected) { window.location.assign(r.url); return null; }  // logged out: to the login form
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html !== null) {
          var atEnd = logsAtEnd();
          main.innerHTML = html;
          followLogs(atEnd);
          main.dispatchEvent(new CustomEvent("mfc:updated"));
        }
      })
      .catch(function () {})
      .finally(function () { fetching = false; if (again) { again = false; refresh(); } });
  }

  if (main && main.dataset.events && window.EventSource) {
    var source = new EventSource(main.dataset.events);
    source.addEventListener("change", refresh);
    source.addEventListener("end", function () { refresh(); source.close(); });
    source.addEventListener("denied", function () { source.close(); window.location.reload(); });
    window.addEventListener("pagehide", function () { source.close(); });
  }
  if (main && main.dataset.refresh) {
    var timer = setInterval(function () {
      refresh();
    }, parseInt(main.dataset.refresh, 10));
    main.addEventListener("mfc:updated", function () {
      if (!main.querySelector("[data-live]")) { clearInterval(timer); }
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-post]");
    if (!button) { return; }
    event.preventDefault();
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) { return; }
    var out = button.parentElement.querySelector("output");
    button.disabled = true;
    fetch(button.dataset.post, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-MFC-UI": "1" },
      body: button.dataset.body || "{}"
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (res) {
      if (!out) { return; }
      out.classList.toggle("error", !res.ok);
      if (!res.ok) { out.textContent = res.body.detail || "refused"; return; }
      var b = res.body;
      out.textContent = "";
      if (b.run_id && button.dataset.flow) {
        var link = document.createElement("a");
        link.href = "/flows/" + encodeURIComponent(button.dataset.flow) + "/runs/" + encodeURIComponent(b.run_id);
        link.textContent = b.run_id;
        out.append("started run ", link, b.execution_arn ? " (" + b.execution_arn + ")" : "");
      } else if (b.run_id) {
        out.textContent = "started run " + b.run_id;
      } else {
        out.textContent = b.terminated ? "terminated" + (b.jobs ? " (" + b.jobs.length + " Batch jobs stopped)" : "")
          : "done";
      }
    }).catch(function (e) {
      if (out) { out.classList.add("error"); out.textContent = String(e); }
    }).finally(function () { button.disabled = false; });
  });
})();
