// The patient screen: no typing, no error codes, four languages, and an idle
// timeout that returns to the start and clears what was shown.
(function () {
  "use strict";
  const T = {
    en: {
      collect: "Collect my order", collect_title: "Show your pickup ticket to the camera", order_received: "Your order {ref} has been received.", order_in_review: "Your order {ref} is being prepared.", order_ready: "Your order {ref} is ready. Please go to the counter.", order_picked_up: "Your order {ref} has already been collected.", order_see_pharmacist: "Please have a word with our pharmacist about order {ref}.", order_unknown: "We could not find this order. Please ask our staff.", ticket_bad: "This ticket is not valid here. Please ask our staff.",
      stock_yes: "In stock: {name}, {price}.", stock_no: "{name} is not in stock today; the pharmacy can order it for you.", stock_generic: "A generic equivalent is in stock: {name}.", stock_cached: "(Last known, {age} ago; the pharmacy system is not reachable right now.)",
      scan_paper: "Photograph a paper prescription", paper_title: "Hold the paper under the camera", kind_paper: "Your paper prescription was photographed.", adv_good: "Hold still, taking the picture…", adv_hold_still: "Hold still", adv_move_closer: "Move the paper closer", adv_less_light: "Less light, or tilt the paper a little", adv_more_light: "More light, please", adv_show_page: "Place the paper inside the frame",
      welcome: "Welcome", scan_qr: "Scan a prescription code", ask_staff: "You can always ask our staff for help.",
      scan_title: "Hold the code in front of the camera", scan_help: "Keep it inside the green frame and hold still.",
      chunks: "{have} of {total} codes read. Please show the next one.", camera_down: "The camera is out of order. Please ask our staff.",
      back: "Back", thanks: "Thank you", reference: "Your reference:", finish: "Finish",
      saved_offline: "Saved. It will be sent to the pharmacy as soon as the connection is back.",
      next_step: "Our pharmacist will check it. Please wait to be called.",
      kind_chmed16a: "Your prescription was read.", kind_chmed23a: "Your prescription was read.",
      kind_gs1: "The medicine pack was read.", kind_pickup_ticket: "Your pickup ticket was read.",
      kind_unknown: "The code was read. Our pharmacist will look at it.",
      online: "Connected", offline: "Offline: scans are saved",
    },
    de: {
      collect: "Meine Bestellung abholen", collect_title: "Zeigen Sie Ihren Abholschein der Kamera", order_received: "Ihre Bestellung {ref} ist eingegangen.", order_in_review: "Ihre Bestellung {ref} wird vorbereitet.", order_ready: "Ihre Bestellung {ref} ist bereit. Bitte kommen Sie zur Theke.", order_picked_up: "Ihre Bestellung {ref} wurde bereits abgeholt.", order_see_pharmacist: "Bitte sprechen Sie mit unserer Apothekerin oder unserem Apotheker über die Bestellung {ref}.", order_unknown: "Wir finden diese Bestellung nicht. Bitte fragen Sie unser Personal.", ticket_bad: "Dieser Abholschein ist hier nicht gültig. Bitte fragen Sie unser Personal.",
      stock_yes: "An Lager: {name}, {price}.", stock_no: "{name} ist heute nicht an Lager; die Apotheke kann es für Sie bestellen.", stock_generic: "Ein gleichwertiges Generikum ist an Lager: {name}.", stock_cached: "(Letzter bekannter Stand vor {age}; das Apothekensystem ist gerade nicht erreichbar.)",
      scan_paper: "Papierrezept fotografieren", paper_title: "Halten Sie das Papier unter die Kamera", kind_paper: "Ihr Papierrezept wurde fotografiert.", adv_good: "Stillhalten, das Foto wird gemacht…", adv_hold_still: "Bitte stillhalten", adv_move_closer: "Papier näher heranhalten", adv_less_light: "Weniger Licht, oder das Papier etwas neigen", adv_more_light: "Bitte mehr Licht", adv_show_page: "Legen Sie das Papier in den Rahmen",
      welcome: "Willkommen", scan_qr: "Rezept-Code scannen", ask_staff: "Unser Personal hilft Ihnen gerne.",
      scan_title: "Halten Sie den Code vor die Kamera", scan_help: "Im grünen Rahmen halten und stillhalten.",
      chunks: "{have} von {total} Codes gelesen. Bitte den nächsten zeigen.", camera_down: "Die Kamera ist ausser Betrieb. Bitte fragen Sie unser Personal.",
      back: "Zurück", thanks: "Vielen Dank", reference: "Ihre Referenz:", finish: "Fertig",
      saved_offline: "Gespeichert. Es wird an die Apotheke gesendet, sobald die Verbindung wieder steht.",
      next_step: "Die Apotheke prüft es. Bitte warten Sie, bis Sie aufgerufen werden.",
      kind_chmed16a: "Ihr Rezept wurde gelesen.", kind_chmed23a: "Ihr Rezept wurde gelesen.",
      kind_gs1: "Die Packung wurde gelesen.", kind_pickup_ticket: "Ihr Abholschein wurde gelesen.",
      kind_unknown: "Der Code wurde gelesen. Die Apotheke schaut ihn an.",
      online: "Verbunden", offline: "Offline: Scans werden gespeichert",
    },
    fr: {
      collect: "Retirer ma commande", collect_title: "Montrez votre bon de retrait à la caméra", order_received: "Votre commande {ref} a été reçue.", order_in_review: "Votre commande {ref} est en préparation.", order_ready: "Votre commande {ref} est prête. Veuillez vous rendre au comptoir.", order_picked_up: "Votre commande {ref} a déjà été retirée.", order_see_pharmacist: "Veuillez parler à notre pharmacien·ne au sujet de la commande {ref}.", order_unknown: "Nous ne trouvons pas cette commande. Veuillez demander à notre personnel.", ticket_bad: "Ce bon n'est pas valable ici. Veuillez demander à notre personnel.",
      stock_yes: "En stock : {name}, {price}.", stock_no: "{name} n'est pas en stock aujourd'hui ; la pharmacie peut le commander pour vous.", stock_generic: "Un générique équivalent est en stock : {name}.", stock_cached: "(Dernier état connu il y a {age} ; le système de la pharmacie est momentanément injoignable.)",
      scan_paper: "Photographier une ordonnance papier", paper_title: "Tenez le papier sous la caméra", kind_paper: "Votre ordonnance papier a été photographiée.", adv_good: "Ne bougez plus, photo en cours…", adv_hold_still: "Ne bougez pas", adv_move_closer: "Rapprochez le papier", adv_less_light: "Moins de lumière, ou inclinez un peu le papier", adv_more_light: "Plus de lumière, s'il vous plaît", adv_show_page: "Placez le papier dans le cadre",
      welcome: "Bienvenue", scan_qr: "Scanner le code d'une ordonnance", ask_staff: "Notre personnel peut toujours vous aider.",
      scan_title: "Présentez le code devant la caméra", scan_help: "Gardez-le dans le cadre vert sans bouger.",
      chunks: "{have} codes sur {total} lus. Montrez le suivant, s'il vous plaît.", camera_down: "La caméra est hors service. Veuillez vous adresser à notre personnel.",
      back: "Retour", thanks: "Merci", reference: "Votre référence :", finish: "Terminer",
      saved_offline: "Enregistré. Ce sera envoyé à la pharmacie dès que la connexion sera rétablie.",
      next_step: "Notre pharmacien va le vérifier. Veuillez attendre d'être appelé.",
      kind_chmed16a: "Votre ordonnance a été lue.", kind_chmed23a: "Votre ordonnance a été lue.",
      kind_gs1: "L'emballage a été lu.", kind_pickup_ticket: "Votre bon de retrait a été lu.",
      kind_unknown: "Le code a été lu. Notre pharmacien va l'examiner.",
      online: "Connecté", offline: "Hors ligne : les scans sont enregistrés",
    },
    it: {
      collect: "Ritirare il mio ordine", collect_title: "Mostri il suo buono di ritiro alla fotocamera", order_received: "Il suo ordine {ref} è stato ricevuto.", order_in_review: "Il suo ordine {ref} è in preparazione.", order_ready: "Il suo ordine {ref} è pronto. Si rechi al banco, per favore.", order_picked_up: "Il suo ordine {ref} è già stato ritirato.", order_see_pharmacist: "Parli con il nostro farmacista dell'ordine {ref}, per favore.", order_unknown: "Non troviamo questo ordine. Chieda al nostro personale.", ticket_bad: "Questo buono non è valido qui. Chieda al nostro personale.",
      stock_yes: "Disponibile: {name}, {price}.", stock_no: "{name} oggi non è disponibile; la farmacia può ordinarlo per lei.", stock_generic: "È disponibile un generico equivalente: {name}.", stock_cached: "(Ultimo stato noto {age} fa; il sistema della farmacia al momento non è raggiungibile.)",
      scan_paper: "Fotografa una ricetta cartacea", paper_title: "Tenga il foglio sotto la fotocamera", kind_paper: "La sua ricetta cartacea è stata fotografata.", adv_good: "Stia fermo, scatto la foto…", adv_hold_still: "Stia fermo, per favore", adv_move_closer: "Avvicini il foglio", adv_less_light: "Meno luce, o inclini un poco il foglio", adv_more_light: "Più luce, per favore", adv_show_page: "Metta il foglio nel riquadro",
      welcome: "Benvenuti", scan_qr: "Scansiona il codice della ricetta", ask_staff: "Il nostro personale è sempre a disposizione.",
      scan_title: "Tenga il codice davanti alla fotocamera", scan_help: "Lo tenga nel riquadro verde, fermo.",
      chunks: "{have} codici su {total} letti. Mostri il prossimo, per favore.", camera_down: "La fotocamera è fuori servizio. Si rivolga al nostro personale.",
      back: "Indietro", thanks: "Grazie", reference: "Il suo riferimento:", finish: "Fine",
      saved_offline: "Salvato. Sarà inviato alla farmacia appena la connessione torna.",
      next_step: "Il nostro farmacista lo controllerà. Attenda di essere chiamato.",
      kind_chmed16a: "La sua ricetta è stata letta.", kind_chmed23a: "La sua ricetta è stata letta.",
      kind_gs1: "La confezione è stata letta.", kind_pickup_ticket: "Il suo buono di ritiro è stato letto.",
      kind_unknown: "Il codice è stato letto. Il nostro farmacista lo esaminerà.",
      online: "Connesso", offline: "Offline: le scansioni sono salvate",
    },
  };
  const NAMES = { en: "English", de: "Deutsch", fr: "Français", it: "Italiano" };
  const params = new URLSearchParams(window.location.search);
  const IDLE_MS = (Number(params.get("idle")) || 60) * 1000;
  let lang = "en", languages = ["en", "de", "fr", "it"], screen = "home";
  let seenSeq = null, lastTouch = Date.now(), state = null;

  const $ = (id) => document.getElementById(id);
  const t = (key, vars) => {
    let s = (T[lang] && T[lang][key]) || T.en[key] || "";
    Object.keys(vars || {}).forEach((k) => { s = s.replace("{" + k + "}", vars[k]); });
    return s;
  };
  function render() {
    document.documentElement.lang = lang;
    document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
    const nav = $("langs");
    nav.textContent = "";
    languages.filter((l) => T[l]).forEach((l) => {
      const b = document.createElement("button");
      b.textContent = NAMES[l];
      b.lang = l;
      b.setAttribute("aria-pressed", String(l === lang));
      b.addEventListener("click", () => { lang = l; render(); paint(); });
      nav.appendChild(b);
    });
  }
  function show(name) {
    const prev = screen;
    screen = name;
    const wasPaper = prev === "paper";
    ["home", "scan", "paper", "done"].forEach((s) => { $(s).hidden = s !== name; });
    if (name === "paper") fetch("/api/paper/start", { method: "POST" });
    else if (wasPaper || name === "home") fetch("/api/paper/stop", { method: "POST" });
    paint();
  }
  function paint() {
    if (!state) return;
    $("store").textContent = state.store_name;
    const link = $("link");
    link.textContent = state.online ? t("online") : t("offline");
    link.className = "link " + (state.online ? "online" : "offline");
    document.querySelectorAll("[data-feature]").forEach((el) => {
      el.hidden = state.features && state.features[el.dataset.feature] === false;
    });
    $("camera-down").hidden = state.camera_ok;
    $("paper-camera-down").hidden = state.camera_ok;
    $("advice").textContent = state.paper ? t("adv_" + state.paper) : t("adv_show_page");
    const c = $("chunks");
    c.hidden = !state.chunks;
    if (state.chunks) c.textContent = t("chunks", { have: state.chunks[0], total: state.chunks[1] });
    if (screen === "done" && state.last) {
      $("done-what").textContent = t("kind_" + state.last.kind);
      $("reference").textContent = state.last.reference;
      $("done-offline").hidden = state.online;
      // A pickup ticket's own scan needs no new reference: the order's is in its status line.
      const ticket = state.last.kind === "pickup_ticket";
      $("ref-line").hidden = ticket;
      $("next-step").hidden = ticket;
      askStock(state.last);
      askOrder(state.last);
    }
    paintStock();
    paintOrder();
  }
  // "Collect my order": a ticket the kiosk verified offline; its status comes
  // from the hub, or the last known one, marked as such.
  let orderFor = null;
  let orderAnswer = null;
  function askOrder(last) {
    if (orderFor === last.seq) return;
    orderFor = last.seq;
    orderAnswer = null;
    if (!last.order) return;
    fetch("/api/order-status?id=" + encodeURIComponent(last.order), { cache: "no-store" })
      .then((r) => (r.ok ? r.json() : null))
      .then((a) => { if (orderFor === last.seq) { orderAnswer = a; paintOrder(); } })
      .catch(() => {});
  }
  function paintOrder() {
    const el = $("order-status");
    const last = state && state.last;
    if (screen !== "done" || !last || last.kind !== "pickup_ticket") { el.hidden = true; return; }
    let text;
    if (last.ticket_problem) text = t("ticket_bad");
    else if (!orderAnswer || !orderAnswer.answer) text = orderAnswer ? t("saved_offline") : "";
    else if (!orderAnswer.answer.order) text = t("order_unknown");
    else {
      const o = orderAnswer.answer.order;
      text = t("order_" + o.status, { ref: o.reference });
      text += cachedNote(orderAnswer);
    }
    el.textContent = text;
    el.hidden = !text;
  }
  // A scanned medicine pack: is it in stock, and what does it cost? Asked
  // once per scan; the kiosk answers from its cache while the hub is away.
  let stockFor = null;
  let stock = null;
  function askStock(last) {
    if (stockFor === last.seq) return;
    stockFor = last.seq;
    stock = null;
    if (!last.gtin) return;
    fetch("/api/availability?q=" + encodeURIComponent(last.gtin), { cache: "no-store" })
      .then((r) => (r.ok ? r.json() : null))
      .then((a) => { if (stockFor === last.seq) { stock = a; paintStock(); } })
      .catch(() => {});
  }
  // For an answer the kiosk kept while the hub is away: how old it is.
  function cachedNote(a) {
    if (!a.cached) return "";
    const mins = Math.max(1, Math.round(a.age_secs / 60));
    return " " + t("stock_cached", { age: mins >= 60 ? Math.round(mins / 60) + " h" : mins + " min" });
  }
  function money(minor) {
    return new Intl.NumberFormat(lang + "-CH", { style: "currency", currency: "CHF" }).format(minor / 100);
  }
  function paintStock() {
    const el = $("stock");
    const item = stock && stock.answer && stock.answer.items && stock.answer.items[0];
    const off = state && state.features && state.features.availability === false;
    if (screen !== "done" || !item || off) { el.hidden = true; return; }
    let text = item.in_stock > 0
      ? t("stock_yes", { name: item.name, price: money(item.price_minor) })
      : t("stock_no", { name: item.name });
    if (item.in_stock <= 0 && item.generics && item.generics.length) text += " " + t("stock_generic", { name: item.generics[0][1] });
    text += cachedNote(stock);
    el.textContent = text;
    el.hidden = false;
  }
  async function poll() {
    try {
      const r = await fetch("/api/patient", { cache: "no-store" });
      if (r.ok) {
        const fresh = await r.json();
        const first = state === null;
        state = fresh;
        if (first) {
          if (fresh.languages && fresh.languages.length) languages = fresh.languages;
          lang = languages[0] || "en";
          seenSeq = fresh.last ? fresh.last.seq : null;
          render();
        }
        const seq = fresh.last ? fresh.last.seq : null;
        if (seq !== null && seq !== seenSeq) {
          seenSeq = seq;
          if (screen === "scan" || screen === "paper") show("done");
        }
        paint();
      }
    } catch (e) {
      // The local service restarts with the kiosk; keep the screen as it is.
    }
  }
  function reset() {
    lang = languages[0] || "en";
    render();
    show("home");
  }
  // Live preview: the camera's picture behind the guide frame while scanning.
  setInterval(() => {
    if (screen !== "scan" && screen !== "paper") return;
    const img = document.querySelector("#" + screen + " img.preview");
    if (!img || img.dataset.loading) return;
    img.dataset.loading = "1";
    const next = new Image();
    next.onload = () => { img.src = next.src; img.hidden = false; delete img.dataset.loading; };
    next.onerror = () => { img.hidden = true; delete img.dataset.loading; };
    next.src = "/api/preview.jpg?t=" + Date.now();
  }, 250);
  $("go-qr").addEventListener("click", () => { $("scan-title").dataset.t = "scan_title"; render(); show("scan"); });
  $("go-collect").addEventListener("click", () => { $("scan-title").dataset.t = "collect_title"; render(); show("scan"); });
  $("go-paper").addEventListener("click", () => show("paper"));
  document.querySelectorAll("[data-back]").forEach((b) => b.addEventListener("click", reset));
  ["pointerdown", "keydown", "touchstart"].forEach((ev) =>
    document.addEventListener(ev, () => { lastTouch = Date.now(); }, { passive: true }));
  setInterval(() => {
    if (screen !== "home" && Date.now() - lastTouch > IDLE_MS) { lastTouch = Date.now(); reset(); }
  }, 500);
  render();
  show("home");
  poll();
  setInterval(poll, 400);
})();
