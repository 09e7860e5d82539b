// Polls the status of unfinished submissions on "My submissions" and updates their rows in
// place until each one is scored or failed. The server sends no private score before the
// deadline, so nothing here has to hide one.
(function () {
  "use strict";
  var table = document.querySelector("table[data-poll-interval]");
  if (!table || !window.fetch) return;
  var interval = parseInt(table.getAttribute("data-poll-interval"), 10) || 1000;
  // A submission stuck for this long is the reaper's business; stop hammering the server.
  var giveUpAt = Date.now() + 20 * 60 * 1000;

  function setText(row, field, text) {
    var cell = row.querySelector('[data-field="' + field + '"]');
    if (cell && text !== undefined) cell.textContent = text === null ? "" : text;
  }

  function render(row, data) {
    var badge = row.querySelector(".status");
    if (badge) {
      badge.className = "status status--" + data.status;
      badge.textContent = data.status_label;
    }
    setText(row, "public_score", data.public_score_display);
    setText(row, "private_score", data.private_score_display);
    setText(row, "error_message", data.error_message);
    row.setAttribute("data-finished", data.finished ? "true" : "false");
  }

  function poll(row, delay) {
    if (Date.now() > giveUpAt) return;
    window.setTimeout(function () {
      fetch(row.getAttribute("data-status-url"), {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
      })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (data) {
          render(row, data);
          if (!data.finished) poll(row, interval);
        })
        .catch(function () {
          poll(row, Math.min(delay * 2, 30000)); // back off while the server is unreachable
        });
    }, delay);
  }

  table.querySelectorAll('tr[data-finished="false"]').forEach(function (row) {
    poll(row, interval);
  });
})();
