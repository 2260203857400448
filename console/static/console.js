// stepup console: the audit log's live tail. Everything else works without
// script; this only adds new events to the table while the box is ticked.
(function () {
  "use strict";
  var box = document.getElementById("live");
  var body = document.getElementById("events");
  var status = document.getElementById("live-status");
  if (!box || !body) { return; }
  var newest = box.dataset.newest || new Date().toISOString();
  var timer = null;

  function poll() {
    var url = "/console/audit/rows?" + box.dataset.query + "&after=" + encodeURIComponent(newest);
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.redirected || !r.ok) { throw new Error("signed out or refused (" + r.status + ")"); }
        return r.text();
      })
      .then(function (html) {
        var tpl = document.createElement("template");
        tpl.innerHTML = html.trim();
        var rows = tpl.content.querySelectorAll("tr");
        if (rows.length > 0) {
          newest = rows[0].dataset.at;
          for (var i = rows.length - 1; i >= 0; i--) {
            rows[i].classList.add("new");
            body.insertBefore(rows[i], body.firstChild);
          }
          status.textContent = rows.length + " new event" + (rows.length > 1 ? "s" : "");
        }
      })
      .catch(function (e) { status.textContent = "Live tail stopped: " + e.message; stop(); box.checked = false; });
  }

  function stop() { if (timer) { clearInterval(timer); timer = null; } }

  box.addEventListener("change", function () {
    if (box.checked) {
      status.textContent = "Watching for new events";
      poll();
      timer = setInterval(poll, 3000);
    } else {
      stop();
      status.textContent = "";
    }
  });
})();
