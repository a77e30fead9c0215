// The conversation page refreshes without reloading: every 3 s it asks the console for the
// messages newer than the last one shown (same origin, the session cookie) and adds them, and
// keeps the "Waiting for a person" count current. No inline script: the CSP allows only this
// file ('self'). Without JavaScript the page still works: its forms post and redirect.
(function () {
  "use strict";
  var thread = document.getElementById("thread");
  if (!thread || !thread.dataset.live) { return; }
  var last = thread.dataset.last || "0";
  function poll() {
    fetch(thread.dataset.live + "?after=" + encodeURIComponent(last),
          {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        if (data.html) { thread.insertAdjacentHTML("beforeend", data.html); }
        if (data.last) { last = String(data.last); thread.dataset.last = last; }
        var waiting = document.getElementById("waiting");
        if (waiting) { waiting.textContent = "Waiting for a person (" + data.waiting + ")"; }
        var held = document.getElementById("held-state");
        if (held) { held.textContent = data.held ? "held for a person" : "the bot answers"; }
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .then(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 3000);
}());
