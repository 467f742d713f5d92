// The hub's first screen in a real Chromium: kiosk presence from the retained
// state, and the live feed over SSE. Run by tests/tests/browser.rs, which owns
// the processes; this script asks it for actions on stdout ("need: ...").
//
// usage: node first_screen.mjs HUB_URL KIOSK_URL KIOSK_ID
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const [hubUrl, kioskUrl, kioskId] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const lines = createInterface({ input: process.stdin });
const replies = [];
lines.on("line", (l) => replies.push(l));

async function ask(what) {
  console.log(`need: ${what}`);
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    const r = replies.shift();
    if (r === `done: ${what}`) return;
    if (r !== undefined) throw new Error(`unexpected reply ${r}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`no reply to ${what}`);
}

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
let failed = false;
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(hubUrl, { waitUntil: "domcontentloaded" });
  const row = page.locator(`tr[data-kiosk="${kioskId}"]`);
  await row.locator("td.status", { hasText: "online" }).waitFor({ timeout: 15_000 });
  console.log("step: kiosk shown online");

  // The page holds an EventSource; new events must appear without a reload.
  const before = await page.locator("#feed li.new").count();
  const r = await fetch(`${kioskUrl}/api/sim/burst`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ count: 5, prefix: "browser" }),
  });
  if (!r.ok) throw new Error(`burst failed: ${r.status}`);
  await page.waitForFunction(
    (n) => document.querySelectorAll("#feed li.new").length >= n,
    before + 5,
    { timeout: 15_000 },
  );
  const first = await page.locator("#feed li.new").first().textContent();
  if (!first.startsWith(`${kioskId} #`) || !first.includes("qr_scanned")) {
    throw new Error(`feed item reads ${JSON.stringify(first)}`);
  }
  // Patient data stays off this screen: the feed shows kind and size, not the code.
  if (first.includes("browser-")) throw new Error(`feed leaks the scanned text: ${first}`);
  console.log("step: live feed updated over SSE");

  await ask("kill-kiosk");
  await row.locator("td.status", { hasText: "offline" }).waitFor({ timeout: 20_000 });
  console.log("step: kiosk shown offline after its Last Will");
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log("ok");
} catch (e) {
  failed = true;
  console.error(String(e && e.stack ? e.stack : e));
} finally {
  await browser.close();
  lines.close();
}
process.exit(failed ? 1 : 0);
