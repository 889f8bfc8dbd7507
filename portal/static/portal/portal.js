// 連携ログ: while a run is queued, waiting or running, reload the log table every 3 seconds.
(function () {
  "use strict";
  var box = document.getElementById("run-log");
  if (!box) return;
  function active() {
    return box.querySelector('[data-active="true"]') !== null;
  }
  function refresh() {
    if (!active()) return;
    fetch(box.dataset.url + window.location.search, { credentials: "same-origin" })
      .then(function (response) {
        // Logged out meanwhile (session expired): let the full page show the login form.
        if (response.redirected) { window.location.reload(); return null; }
        return response.ok ? response.text() : null;
      })
      .then(function (html) { if (html !== null) box.innerHTML = html; })
      .catch(function () { /* a missed refresh is retried on the next tick */ });
  }
  window.setInterval(refresh, 3000);
})();
