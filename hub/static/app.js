// Live updates for the hub screens. No inline script anywhere, so a strict CSP can apply.
(function () {
  "use strict";
  const feed = document.getElementById("feed");
  const table = document.getElementById("kiosk-table");
  const live = Array.prototype.slice.call(document.querySelectorAll("[data-refresh]"));
  if ((!feed && live.length === 0) || !window.EventSource) return;
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
  // Server-rendered regions marked data-refresh="event names" are re-fetched
  // from this page's own URL when one of those events arrives.
  let again = null;
  function refreshRegions() {
    if (again) return;
    again = setTimeout(function () {
      again = null;
      fetch(window.location.href, { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) return;
          const doc = new DOMParser().parseFromString(html, "text/html");
          live.forEach(function (el) {
            const fresh = el.id ? doc.getElementById(el.id) : null;
            if (fresh) el.innerHTML = fresh.innerHTML;
          });
        });
    }, 500);
  }
  const es = new EventSource("/events/stream");
  if (feed) {
    es.addEventListener("event", function (m) {
      const e = JSON.parse(m.data);
      const li = document.createElement("li");
      li.className = "new";
      li.textContent = e.kiosk + " #" + e.seq + " " + e.kind + (e.historical ? " (replayed)" : "") + " · " + e.summary;
      feed.insertBefore(li, feed.firstChild);
      while (feed.children.length > 200) feed.removeChild(feed.lastChild);
    });
    es.addEventListener("kiosk", refreshKiosks);
  }
  const names = {};
  live.forEach(function (el) {
    el.dataset.refresh.split(/\s+/).forEach(function (n) { if (n) names[n] = true; });
  });
  Object.keys(names).forEach(function (n) { es.addEventListener(n, refreshRegions); });
})();
