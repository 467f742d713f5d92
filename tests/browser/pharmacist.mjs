// The pharmacist's day in a real Chromium: the queue shows the waiting
// order; the review page takes it, a line is added with its dosage, and the
// clinical checks show the contraindication with the plan's statin; the hub
// refuses approval without a written reason (even with the browser's own
// check removed), then approves with one; the order is filled, made ready
// and handed over after its pack is checked at the desk (a pack of another
// lot refused), which finalises the invoice; the invoice and the 80 mm
// receipt with the pickup QR are shown. Screenshots of each screen.
//
// usage: node pharmacist.mjs HUB_URL SHOT_DIR GTIN_TO_ADD RIGHT_PACK WRONG_PACK
import { keysReady, pageErrors, run, signIn } from "./lib.mjs";

const [hubUrl, shots, gtin, rightPack, wrongPack, genericPack] = process.argv.slice(2);

await run(async (browser) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = pageErrors(page);
  await signIn(page, hubUrl, "pia");
  const form = (label) => page.locator("form", { has: page.getByRole("button", { name: label, exact: true }) });
  const step = async (label) => {
    const f = form(label);
    await f.getByRole("button", { name: label, exact: true }).click();
  };

  await page.goto(`${hubUrl}/orders`);
  await page.locator("#waiting", { hasText: "1" }).waitFor({ timeout: 15_000 });
  await page.screenshot({ path: `${shots}/pharmacist-queue.png`, fullPage: true });
  console.log("step: queue shows one waiting");

  // From the keyboard: j selects the first order, Enter opens it.
  await page.keyboard.press("j");
  await page.locator("#queue tr.selected").waitFor({ timeout: 5_000 });
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/orders\/[0-9a-f]+$/);
  await step("Start review");
  await page.locator("#state", { hasText: "in review" }).waitFor({ timeout: 10_000 });

  const add = form("Add line");
  await add.locator('input[name="gtin"]').fill(gtin);
  await add.locator('input[name="sig"]').fill("1-0-1-0");
  await add.getByRole("button", { name: "Add line" }).click();
  const severe = page.locator("#checks li.finding.severe", { hasText: "Biaxin 500 mg with Zocor 20 mg" });
  await severe.waitFor({ timeout: 10_000 });
  await page.locator("#patient", { hasText: "Maxima Matter" }).waitFor();
  await page.screenshot({ path: `${shots}/pharmacist-review.png`, fullPage: true });
  console.log("step: review shows the severe interaction");

  // The plan's Zocor reads by name and dosing, with the generic the
  // pharmacist may dispense instead: one click adds it as a line.
  const prescribed = page.locator("#medicaments");
  await prescribed.getByText("Zocor 20 mg", { exact: true }).waitFor({ timeout: 10_000 });
  await prescribed.getByText("0-0-1-0", { exact: true }).waitFor();
  const generic = prescribed.locator("li", { hasText: "Simvastatin 20 mg tablets" });
  await generic.getByRole("button", { name: "Dispense this instead" }).click();
  await page.locator("#lines", { hasText: "Simvastatin 20 mg tablets" }).waitFor({ timeout: 10_000 });
  await page.locator("#lines tr", { hasText: "Simvastatin 20 mg tablets" }).getByText("0-0-1-0").waitFor();
  // The risk is now reported once, under the product handed over.
  await page.locator("#checks li.finding.severe", { hasText: "Biaxin 500 mg with Simvastatin 20 mg tablets" }).waitFor();
  if (await page.locator("#checks li.finding", { hasText: "with Zocor 20 mg" }).count() !== 0) {
    throw new Error("the plan's Zocor is still reported beside the generic dispensed for it");
  }
  console.log("step: the generic is dispensed instead of the brand");

  // The hub, not the page, enforces the reason.
  const approve = form("Approve and reserve stock");
  await approve.locator('input[name="override_reason"]').evaluate((el) => el.removeAttribute("required"));
  await approve.getByRole("button", { name: "Approve and reserve stock" }).click();
  await approve.locator("output.error", { hasText: "severe warning" }).waitFor({ timeout: 10_000 });
  console.log("step: approval without a reason refused");

  await approve.locator('input[name="override_reason"]').fill("Prescriber called: statin paused during the course");
  await approve.getByRole("button", { name: "Approve and reserve stock" }).click();
  await page.locator("#state", { hasText: "approved" }).waitFor({ timeout: 10_000 });
  await page.locator("#trail", { hasText: "approved over" }).waitFor();
  await page.screenshot({ path: `${shots}/pharmacist-approved.png`, fullPage: true });
  console.log("step: approved with a reason in the trail");

  // The name typed before is remembered: f and m alone take the next steps.
  for (const [key, state] of [["f", "filling"], ["m", "ready"]]) {
    await keysReady(page);
    await page.evaluate(() => document.activeElement && document.activeElement.blur());
    await page.keyboard.press(key);
    await page.locator("#state", { hasText: state }).waitFor({ timeout: 10_000 });
  }
  // Hand-over is never one stray key away: h only puts the cursor on the button.
  await keysReady(page);
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.keyboard.press("h");
  const focused = await page.evaluate(() => document.activeElement && document.activeElement.textContent);
  if (focused !== "Handed to the patient") throw new Error(`h focused ${focused}`);
  console.log("step: keyboard shortcuts took the steps");
  // At the desk: a pack of another lot is refused, the reserved one accepted.
  const scan = form("Check pack");
  await scan.locator('input[name="code"]').fill(wrongPack);
  await scan.getByRole("button", { name: "Check pack" }).click();
  await scan.locator("output.error", { hasText: "Wrong lot" }).waitFor({ timeout: 10_000 });
  // One pack at a time, as a scanner would: each answer before the next code.
  await scan.locator('input[name="code"]').fill(rightPack);
  await scan.getByRole("button", { name: "Check pack" }).click();
  await scan.locator("output.ok", { hasText: "lot CLA-1: pack 1 of 1" }).waitFor({ timeout: 10_000 });
  await scan.locator('input[name="code"]').fill(genericPack);
  await scan.getByRole("button", { name: "Check pack" }).click();
  await scan.locator("output.ok", { hasText: "Every pack is scanned" }).waitFor({ timeout: 10_000 });
  await page.locator("#scans", { hasText: "refused" }).waitFor({ timeout: 10_000 });
  await page.screenshot({ path: `${shots}/pharmacist-handover.png`, fullPage: true });
  console.log("step: packs checked at the desk");
  await step("Handed to the patient");
  await page.locator("#state", { hasText: "picked up" }).waitFor({ timeout: 10_000 });
  console.log("step: filled, ready and handed over");

  await page.locator("#price a", { hasText: "-000001" }).click();
  await page.waitForURL(/\/invoices\//);
  await page.locator("#number", { hasText: "-000001" }).waitFor();
  await page.screenshot({ path: `${shots}/pharmacist-invoice.png`, fullPage: true });
  await page.getByRole("link", { name: "Receipt (80 mm)" }).click();
  await page.locator("#pickup-qr svg").waitFor({ timeout: 10_000 });
  // The receipt is shot at twice the screen's pixel density, about the
  // 203 dpi of an 80 mm thermal printer, because that is what the code must
  // survive; at 96 dpi a 40 mm code gets about 2 px per module.
  const printer = await browser.newContext({ viewport: { width: 420, height: 900 }, deviceScaleFactor: 2 });
  await printer.addCookies(await page.context().cookies());
  const receipt = await printer.newPage();
  await receipt.goto(page.url());
  await receipt.locator("#pickup-qr svg").waitFor({ timeout: 10_000 });
  await receipt.screenshot({ path: `${shots}/pharmacist-receipt.png`, fullPage: true });
  // The code as a scanner pointed at the receipt sees it.
  await receipt.locator("#pickup-qr").screenshot({ path: `${shots}/pharmacist-receipt-qr.png` });
  await printer.close();
  console.log("step: invoice and receipt with the pickup QR");
  errors.check();
});
