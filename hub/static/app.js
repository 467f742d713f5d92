// Live updates for the hub screens. No inline script or style anywhere, so a strict CSP can apply.

// The CSRF token the hub set at sign-in; every change sends it back in a header.
function rxCsrf() {
  const m = /(?:^|;\s*)rxedge_csrf=([^;]*)/.exec(document.cookie);
  return m ? m[1] : "";
}

// Computed positions and sizes (boxes over a scan, bar lengths) arrive as
// data-css and are applied through the CSSOM, which the CSP allows.
function rxApplyCss(root) {
  root.querySelectorAll("[data-css]").forEach(function (el) { el.style.cssText = el.dataset.css; });
}
rxApplyCss(document);

// Review images: zoom (buttons, the wheel, keys + - 0) and pan (drag, arrow
// keys) to read a small or handwritten dose. The OCR boxes sit inside the
// zoomed layer, so they stay on the words they mark.
function rxZoom(root) {
  root.querySelectorAll(".zoom-view").forEach(function (view) {
    const layer = view.querySelector(".zoom-layer");
    if (!layer || view.dataset.zoom) return;
    let s = 1, x = 0, y = 0;
    function apply() {
      const w = view.clientWidth, h = view.clientHeight;
      // The page always covers the view: no panning off into the void.
      x = Math.min(0, Math.max(w - w * s, x));
      y = Math.min(0, Math.max(h - h * s, y));
      layer.style.transform = "translate(" + x + "px, " + y + "px) scale(" + s + ")";
      view.dataset.zoom = s.toFixed(2);
      view.classList.toggle("zoomed", s > 1);
    }
    function zoomAt(f, cx, cy) {
      const ns = Math.min(8, Math.max(1, s * f));
      x = cx - (cx - x) * ns / s;
      y = cy - (cy - y) * ns / s;
      s = ns;
      apply();
    }
    function centre(f) { zoomAt(f, view.clientWidth / 2, Math.min(view.clientHeight, window.innerHeight) / 2); }
    function fit() { s = 1; x = 0; y = 0; apply(); }
    const bar = document.createElement("div");
    bar.className = "zoom-bar";
    [["+", "Zoom in", function () { centre(1.5); }],
     ["−", "Zoom out", function () { centre(1 / 1.5); }],
     ["Whole page", "Whole page", fit]].forEach(function (b) {
      const btn = document.createElement("button");
      btn.type = "button";
      btn.textContent = b[0];
      btn.setAttribute("aria-label", b[1]);
      btn.title = b[1];
      btn.addEventListener("click", b[2]);
      bar.appendChild(btn);
    });
    view.parentNode.insertBefore(bar, view);
    view.tabIndex = 0;
    view.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      const r = view.getBoundingClientRect();
      zoomAt(ev.deltaY < 0 ? 1.25 : 0.8, ev.clientX - r.left, ev.clientY - r.top);
    }, { passive: false });
    let drag = null;
    view.addEventListener("pointerdown", function (ev) {
      if (s === 1) return;
      drag = { px: ev.clientX, py: ev.clientY, x: x, y: y };
      view.setPointerCapture(ev.pointerId);
      ev.preventDefault();
    });
    view.addEventListener("pointermove", function (ev) {
      if (!drag) return;
      x = drag.x + ev.clientX - drag.px;
      y = drag.y + ev.clientY - drag.py;
      apply();
    });
    function end() { drag = null; }
    view.addEventListener("pointerup", end);
    view.addEventListener("pointercancel", end);
    view.addEventListener("keydown", function (ev) {
      const step = 60;
      const keys = {
        "+": function () { centre(1.5); }, "=": function () { centre(1.5); },
        "-": function () { centre(1 / 1.5); }, "0": fit,
        ArrowLeft: function () { x += step; apply(); }, ArrowRight: function () { x -= step; apply(); },
        ArrowUp: function () { y += step; apply(); }, ArrowDown: function () { y -= step; apply(); },
      };
      const k = keys[ev.key];
      if (!k || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      k();
      ev.preventDefault();
      ev.stopPropagation();
    });
    apply();
  });
}
rxZoom(document);

// Who is signed in, and a quick "switch user" for a shared counter PC.
(function () {
  "use strict";
  const me = document.getElementById("me");
  if (!me || window.location.pathname === "/login" || window.location.pathname === "/setup") return;
  fetch("/api/me", { credentials: "same-origin" })
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (u) {
      if (!u) return;
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = u.name + " (" + u.role + ")";
      const b = document.createElement("button");
      b.type = "button";
      b.id = "switch-user";
      b.textContent = "Switch user";
      b.addEventListener("click", function () {
        fetch("/api/logout", { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": rxCsrf() } })
          .finally(function () { window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname + window.location.search); });
      });
      me.appendChild(who);
      me.appendChild(b);
    });
})();

// Plain forms that post (uploads, acknowledgements) go through fetch so they
// carry the CSRF header; the answer replaces the page as a normal post would.
(function () {
  "use strict";
  document.querySelectorAll('form[method="post"]:not([data-api])').forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      const data = new FormData(form);
      const multipart = (form.enctype || "").indexOf("multipart") >= 0;
      fetch(form.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": rxCsrf() },
        body: multipart ? data : new URLSearchParams(data),
      }).then(function (r) {
        return r.text().then(function (text) {
          if ((r.headers.get("content-type") || "").indexOf("application/json") >= 0) {
            let msg = "The hub answered " + r.status + ".";
            try { msg = JSON.parse(text).error || msg; } catch (e) { /* not JSON after all */ }
            let out = form.querySelector("output");
            if (!out) { out = document.createElement("output"); form.appendChild(out); }
            out.className = r.ok ? "ok" : "error";
            out.textContent = r.ok ? "Done." : msg;
            return;
          }
          // The page the post led to (after a redirect, under its own address).
          if (r.redirected) window.history.replaceState(null, "", r.url);
          document.open();
          document.write(text);
          document.close();
        });
      });
    });
  });
})();

(function () {
  "use strict";
  const feed = document.getElementById("feed");
  const table = document.getElementById("kiosk-table");
  const live = Array.prototype.slice.call(document.querySelectorAll("[data-refresh]"));
  if ((!feed && live.length === 0) || !window.EventSource) return;
  // A screen's own refreshes do not keep its session alive; when the session
  // has ended (idle at a shared counter), the screen goes to the sign-in form.
  const BACKGROUND = { credentials: "same-origin", headers: { "X-RxEdge-Background": "1" } };
  function signedOut(r) {
    if (r.status === 401 || (r.redirected && new URL(r.url).pathname === "/login")) {
      window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname + window.location.search);
    }
    return r;
  }
  let pending = null;
  function refreshKiosks() {
    if (!table || pending) return;
    pending = setTimeout(function () {
      pending = null;
      fetch(table.dataset.src, BACKGROUND)
        .then(signedOut)
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
      fetch(window.location.href, BACKGROUND)
        .then(signedOut)
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null) return;
          const doc = new DOMParser().parseFromString(html, "text/html");
          live.forEach(function (el) {
            const fresh = el.id ? doc.getElementById(el.id) : null;
            if (fresh) { el.innerHTML = fresh.innerHTML; rxApplyCss(el); rxZoom(el); }
          });
        });
    }, 500);
  }
  // A form on this page that changed something asks for a refresh itself, so
  // it never depends on the live stream having connected in time.
  document.addEventListener("rxedge:changed", refreshRegions);
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

// Forms marked data-api post JSON to the API and show its plain message
// beside the form, so a refused stock movement reads as a sentence, not a page.
(function () {
  "use strict";
  function collect(form) {
    const out = {};
    const counts = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.type === "file" || el.disabled) return;
      const m = /^count-(\d+)$/.exec(el.name);
      if (m) {
        if (el.value !== "") counts.push({ lot_id: Number(m[1]), counted: Number(el.value) });
        return;
      }
      if (el.type === "checkbox") { out[el.name] = el.checked; return; }
      // Hidden fields that carry numbers say so with data-number.
      out[el.name] = (el.type === "number" || "number" in el.dataset) ? Number(el.value) : el.value;
    });
    if (form.dataset.shape === "stocktake") out.counts = counts;
    if (form.dataset.shape === "approve") {
      out.gates = { controlled_confirmed: !!out.controlled_confirmed, override_reason: out.override_reason || "" };
      delete out.controlled_confirmed;
      delete out.override_reason;
    }
    return out;
  }
  function fill(template, data) {
    return template.replace(/\{([\w.]+)\}/g, function (_, path) {
      const v = path.split(".").reduce(function (o, k) { return o == null ? o : o[k]; }, data);
      return encodeURIComponent(v == null ? "" : String(v));
    });
  }
  function say(form, text, ok) {
    const out = form.querySelector("output");
    if (!out) return;
    out.textContent = text;
    out.className = ok ? "ok" : "error";
  }
  function answer(r) {
    return r.json().catch(function () { return {}; }).then(function (body) {
      if (!r.ok) throw new Error(body.error || ("The hub answered " + r.status + "."));
      return body;
    });
  }
  document.querySelectorAll("form[data-api]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      say(form, "…", true);
      fetch(form.dataset.api, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": rxCsrf() },
        body: JSON.stringify(collect(form)),
      })
        .then(answer)
        .then(function (body) {
          // Sign-in: go where the hub says (a path on this hub).
          if (form.dataset.follow !== undefined && typeof body.next === "string" && body.next.charAt(0) === "/") {
            window.location.href = body.next;
            return;
          }
          if (form.dataset.next) { window.location.href = fill(form.dataset.next, body); return; }
          // A refusal the hub answers in words (a wrong pack at the desk) is shown as one.
          say(form, body.message || "Done.", body.verdict !== "refuse");
          if (!body.message) form.reset();
          // Scanning forms clear their code field for the next scan.
          if (form.dataset.clear) {
            form.dataset.clear.split(/\s+/).forEach(function (n) { if (form.elements[n]) form.elements[n].value = ""; });
            const first = form.elements[form.dataset.clear.split(/\s+/)[0]];
            if (first) first.focus();
          }
          document.dispatchEvent(new Event("rxedge:changed"));
        })
        .catch(function (e) { say(form, e.message, false); });
    });
  });
  // Receiving: a scanned, typed or photographed GS1 code fills the receipt form.
  const scan = document.querySelector("form[data-gs1]");
  const target = document.getElementById("receive");
  if (!scan || !target) return;
  const result = document.getElementById("gs1-result");
  function apply(g) {
    const set = function (name, v) { const el = target.elements[name]; if (el && v) el.value = v; };
    set("gtin", g.gtin); set("lot", g.batch); set("expiry", g.expiry);
    result.className = g.known ? "ok" : "error";
    result.textContent = g.known
      ? g.product.name + " " + g.product.strength + " — check the quantity and location."
      : "GTIN " + g.gtin + " is not in the catalog; add it to the catalog first.";
    if (g.known && g.product.storage === "fridge") {
      const loc = target.elements.location;
      Array.prototype.forEach.call(loc.options, function (o) { if (/\(fridge\)/.test(o.text) && loc.value.indexOf("fridge") < 0) loc.value = o.value; });
    }
    const q = target.elements.quantity; if (q) q.focus();
  }
  function fail(e) { result.className = "error"; result.textContent = e.message; }
  scan.addEventListener("submit", function (ev) {
    ev.preventDefault();
    fetch(scan.dataset.gs1, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": rxCsrf() },
      body: JSON.stringify({ text: scan.elements.text.value }),
    }).then(answer).then(apply).catch(fail);
  });
  const photo = scan.querySelector("input[type=file]");
  if (photo) {
    photo.addEventListener("change", function () {
      if (!photo.files.length) return;
      const fd = new FormData();
      fd.append("photo", photo.files[0]);
      result.textContent = "Reading the photo…";
      fetch(photo.dataset.upload, { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": rxCsrf() }, body: fd })
        .then(answer).then(apply).catch(fail);
    });
  }
})();

// Keyboard: the pharmacist's frequent steps without the mouse.
(function () {
  "use strict";
  function typing(t) {
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }
  const rows = function () { return Array.prototype.slice.call(document.querySelectorAll("#queue tr[data-order]")); };
  let at = -1;
  function pick(i) {
    const r = rows();
    if (r.length === 0) return;
    at = Math.max(0, Math.min(r.length - 1, i));
    r.forEach(function (x, j) { x.classList.toggle("selected", j === at); });
    r[at].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) return;
    const k = ev.key;
    if (document.getElementById("queue")) {
      if (k === "j" || k === "ArrowDown") { pick(at + 1); ev.preventDefault(); return; }
      if (k === "k" || k === "ArrowUp") { pick(at - 1); ev.preventDefault(); return; }
      if (k === "n") { pick(0); }
      if ((k === "Enter" || k === "n") && at >= 0) {
        const a = rows()[at] && rows()[at].querySelector("a");
        if (a) { window.location.href = a.href; ev.preventDefault(); }
        return;
      }
    }
    if (k === "q" && !document.getElementById("queue")) { window.location.href = "/orders"; return; }
    const form = document.querySelector('form[data-key="' + k + '"]');
    if (!form) return;
    ev.preventDefault();
    const empty = Array.prototype.find.call(form.elements, function (el) {
      return el.required && !el.value && el.type !== "hidden";
    });
    if (empty) { empty.focus(); return; }
    // Approval and hand-over are never one stray key away: their key only
    // puts the cursor on the button, and Enter (or a click) confirms.
    if (form.dataset.keyConfirm) {
      const b = form.querySelector("button");
      if (b) b.focus();
      return;
    }
    if (form.requestSubmit) form.requestSubmit(); else form.dispatchEvent(new Event("submit", { cancelable: true }));
  });
  // A key pressed before this ran did nothing; scripted checks wait for this mark.
  document.documentElement.dataset.keys = "on";
})();
