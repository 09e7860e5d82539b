// Adds the reader's local time after every <time datetime="…" data-local> rendered in UTC.
(function () {
  "use strict";
  var format;
  try {
    format = new Intl.DateTimeFormat(undefined, {
      year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit", timeZoneName: "short",
    });
  } catch (e) {
    return;
  }
  document.querySelectorAll("time[data-local]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when.getTime())) return;
    var local = document.createElement("span");
    local.className = "local-time";
    local.textContent = " (" + format.format(when) + " your time)";
    el.insertAdjacentElement("afterend", local);
  });
})();
