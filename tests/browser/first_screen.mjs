// The hub's first screen in a real Chromium: kiosk presence from the retained
// state, and the live feed over SSE. Run by tests/tests/browser.rs, which owns
// the processes; this script asks it for actions on stdout ("need: ...").
//
// usage: node first_screen.mjs HUB_URL KIOSK_URL KIOSK_ID
import { ask, pageErrors, run, signIn } from "./lib.mjs";

const [hubUrl, kioskUrl, kioskId] = process.argv.slice(2);

await run(async (browser) => {
  const page = await browser.newPage();
  const errors = pageErrors(page);
  await signIn(page, hubUrl, "tess");
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
  errors.check();
});
