// The patient touchscreen in a real Chromium at the two kiosk screen sizes:
// languages, the scan flow to a confirmation with a reference, chunked sets,
// offline and camera trouble in plain words, big touch targets, idle reset.
// Screenshots of every screen go to SHOTS_DIR.
//
// usage: node patient.mjs KIOSK_URL SHOTS_DIR [chunks]
import { ask, pageErrors, run } from "./lib.mjs";
import { mkdirSync } from "node:fs";

const [kioskUrl, shots, chunks] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });

await run(async (browser) => {
  for (const [w, h] of [[800, 480], [1280, 800]]) {
    const page = await browser.newPage({ viewport: { width: w, height: h } });
    const errors = pageErrors(page);
    const shot = (name) => page.screenshot({ path: `${shots}/${name}-${w}x${h}.png` });
    await page.goto(`${kioskUrl}/?idle=4`);
    await page.locator("#store").filter({ hasText: /\S/ }).waitFor();
    await page.locator("#welcome", { hasText: "Welcome" }).waitFor();
    // Every control a patient touches is big and fully on screen.
    for (const b of await page.locator("button:visible").all()) {
      const box = await b.boundingBox();
      if (!box || box.height < 64 || box.y + box.height > h + 1) {
        throw new Error(`button ${await b.textContent()} is ${JSON.stringify(box)} at ${w}x${h}`);
      }
    }
    await shot("home");
    await page.getByRole("button", { name: "Deutsch" }).click();
    await page.locator("#welcome", { hasText: "Willkommen" }).waitFor();
    await shot("home-de");
    await page.click("#go-qr");
    await page.locator("#scan-title", { hasText: "Halten Sie den Code vor die Kamera" }).waitFor();
    await shot("scan");
    await ask("show-code");
    await page.locator("#done").waitFor({ state: "visible", timeout: 20_000 });
    const ref = (await page.locator("#reference").textContent()).trim();
    if (!/^[0-9A-F]{6}$/.test(ref)) throw new Error(`reference ${JSON.stringify(ref)}`);
    if (!(await page.locator("#done-what").textContent()).includes("Packung")) throw new Error("confirmation not in German");
    if (await page.locator("#done-offline").isVisible()) throw new Error("says offline while connected");
    // The pack is in the hub's stock: the screen says so, with the price, in German.
    await page.locator("#stock", { hasText: "An Lager: Dafalgan 500 mg" }).waitFor({ timeout: 10_000 });
    if (!/CHF\s?3[.,]90/.test(await page.locator("#stock").textContent())) throw new Error("no price on the stock line");
    await shot("done");
    // Left alone, the kiosk returns to the start in the first language.
    await page.locator("#home").waitFor({ state: "visible", timeout: 15_000 });
    await page.locator("#welcome", { hasText: "Welcome" }).waitFor();
    console.log(`step: scan flow at ${w}x${h}`);
    errors.check();
    await page.close();
  }

  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(`${kioskUrl}/?idle=60`);
  await page.locator("#welcome", { hasText: "Welcome" }).waitFor();
  await page.click("#go-qr");
  if (chunks === "chunks") {
    await ask("show-two-chunks");
    await page.locator("#chunks", { hasText: "2 of 4 codes read" }).waitFor({ timeout: 20_000 });
    await page.screenshot({ path: `${shots}/chunks-1280x800.png` });
    await ask("show-other-chunks");
    await page.locator("#done").waitFor({ state: "visible", timeout: 20_000 });
    if (!(await page.locator("#done-what").textContent()).includes("prescription")) throw new Error("not a prescription");
    console.log("step: chunked set");
    await page.click("#done button[data-back]");
    await page.click("#go-paper");
    await page.locator("#advice", { hasText: "Place the paper inside the frame" }).waitFor({ timeout: 20_000 });
    await page.screenshot({ path: `${shots}/paper-1280x800.png` });
    await ask("show-page");
    // The camera's live picture shows behind the guide frame while the page is held up.
    await page.waitForFunction(() => {
      const i = document.querySelector("#paper img.preview");
      return i && !i.hidden && i.naturalWidth > 0;
    }, null, { timeout: 10_000 });
    // The page may be captured (and the screen move on) at any moment, so
    // visibility and position are read in one step inside the page.
    const back = await page.evaluate(() => {
      const p = document.querySelector("#paper");
      const b = p && p.querySelector("button[data-back]");
      if (!p || p.hidden || !b || b.offsetParent === null) return null;
      const r = b.getBoundingClientRect();
      return { y: r.y, height: r.height };
    });
    if (back) {
      await page.screenshot({ path: `${shots}/paper-preview-1280x800.png` });
      if (back.y + back.height > 801) throw new Error(`Back is off screen: ${JSON.stringify(back)}`);
    }
    await page.locator("#done").waitFor({ state: "visible", timeout: 30_000 });
    if (!(await page.locator("#done-what").textContent()).includes("photographed")) throw new Error("not a paper capture");
    await page.screenshot({ path: `${shots}/done-paper-1280x800.png` });
    console.log("step: paper prescription photographed");
    console.log("step: live preview shown");
    await page.click("#done button[data-back]");
    await page.click("#go-qr");
  }
  // "Collect my order": a prescription scanned earlier was approved and is ready.
  await ask("prepare-order");
  await page.locator("#done").waitFor({ state: "visible", timeout: 20_000 });
  await page.click("#done button[data-back]");
  await page.click("#go-collect");
  await page.locator("#scan-title", { hasText: "Show your pickup ticket" }).waitFor();
  await page.screenshot({ path: `${shots}/collect-1280x800.png` });
  await ask("show-ticket");
  await page.locator("#order-status", { hasText: "is ready. Please go to the counter." }).waitFor({ timeout: 20_000 });
  await page.screenshot({ path: `${shots}/done-collect-1280x800.png` });
  console.log("step: collect my order says the order is ready");
  await page.click("#done button[data-back]");
  await page.click("#go-qr");
  await ask("camera-unplug");
  await page.locator("#camera-down").waitFor({ state: "visible", timeout: 20_000 });
  await page.screenshot({ path: `${shots}/camera-down-1280x800.png` });
  await ask("camera-plug");
  await page.locator("#camera-down").waitFor({ state: "hidden", timeout: 20_000 });
  await ask("hub-down");
  await page.locator("#link.offline").waitFor({ timeout: 30_000 });
  await ask("show-code");
  await page.locator("#done").waitFor({ state: "visible", timeout: 20_000 });
  await page.locator("#done-offline").waitFor({ state: "visible" });
  // With the hub away, the stock line is the last known answer, marked as such.
  await page.locator("#stock", { hasText: "Last known" }).waitFor({ timeout: 10_000 });
  await page.screenshot({ path: `${shots}/done-offline-1280x800.png` });
  const body = await page.locator("body").textContent();
  // A dose such as "500 mg" in a product name is not an HTTP status.
  if (/error|\b[45]\d\d\b(?!\s?(mg|mcg|µg|ml|g|IU)\b)/i.test(body)) throw new Error(`an error code reached the patient: ${body}`);
  console.log("step: offline and camera trouble in plain words");
  console.log("step: stock and price for a scanned pack, cached when offline");
});
