// Live updates for the hub screens. No inline script anywhere, so a strict CSP can apply.
(function () {
  "use strict";
  const feed = document.getElementById("feed");
  const table = document.getElementById("kiosk-table");
  if (!feed || !window.EventSource) return;
  let pending = null;
  function refreshKiosks() {
    if (!table || pending) return;
    pending = setTimeout(function () {
      pending = null;
      fetch(table.dataset.src, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) table.innerHTML = html; });
    }, 300);
  }
  const es = new EventSource(feed.dataset.stream);
  es.addEventListener("event", function (m) {
    const e = JSON.parse(m.data);
    const li = document.createElement("li");
    li.className = "new";
    li.textContent = e.kiosk + " #" + e.seq + " " + e.kind + (e.historical ? " (replayed)" : "") + " · " + e.summary;
    feed.insertBefore(li, feed.firstChild);
    while (feed.children.length > 200) feed.removeChild(feed.lastChild);
  });
  es.addEventListener("kiosk", refreshKiosks);
})();
