// Stock screens in a real Chromium: receive a pack by typing its GS1 code
// (as a desk scanner would), see the lot and its ledger, be refused a transfer
// of a fridge product to the shelf with a plain message, recall the batch and
// read the trace. Screenshots go to SHOT_DIR.
//
// usage: node stock.mjs HUB_URL SHOT_DIR
import { pageErrors, run, signIn } from "./lib.mjs";

const [hubUrl, shots] = process.argv.slice(2);

await run(async (browser) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = pageErrors(page);
  await signIn(page, hubUrl, "pia");

  await page.goto(`${hubUrl}/inventory/receive`);
  // A USB scanner types the code and presses Enter into the focused field.
  await page.keyboard.type("(01)09520000000011(17)280600(10)GLA-77");
  await page.keyboard.press("Enter");
  await page.locator("#gs1-result.ok").waitFor({ timeout: 10_000 });
  const gtin = await page.inputValue('#receive input[name="gtin"]');
  const expiry = await page.inputValue('#receive input[name="expiry"]');
  if (gtin !== "09520000000011" || expiry !== "2028-06-30") throw new Error(`filled ${gtin} ${expiry}`);
  if ((await page.inputValue('#receive select[name="location"]')) !== "fridge-1") throw new Error("fridge product not pointed at a fridge");
  await page.fill('#receive input[name="quantity"]', "12");
  await page.screenshot({ path: `${shots}/hub-stock-receive.png`, fullPage: true });
  await page.click("#receive button");
  await page.waitForURL(/\/inventory\/lots\/\d+$/, { timeout: 10_000 });
  const facts = await page.locator("#lot-facts").textContent();
  if (!facts.includes("12 on hand") || !facts.includes("fridge-1")) throw new Error(`lot reads ${facts}`);
  if (!(await page.locator("#ledger").textContent()).includes("receipt")) throw new Error("no receipt in the ledger");
  console.log("step: received by scanning, lot and ledger shown");

  // A refused movement reads as a sentence next to the form.
  const transfer = page.locator('form[data-api$="/transfer"]');
  await transfer.locator('select[name="to"]').selectOption("shelf");
  await transfer.locator('input[name="quantity"]').fill("2");
  await transfer.locator("button").click();
  await transfer.locator("output.error", { hasText: "fridge 2–8 °C" }).waitFor({ timeout: 10_000 });
  const adjust = page.locator('form[data-api$="/adjust"]');
  await adjust.locator('input[name="quantity"]').fill("-1");
  await adjust.locator('input[name="reason"]').fill("dropped, pen cracked");
  await adjust.locator("button").click();
  await adjust.locator("output.ok").waitFor({ timeout: 10_000 });
  await page.locator("#lot-facts", { hasText: "11 on hand" }).waitFor({ timeout: 10_000 });
  console.log("step: refusal explained, adjustment booked and shown live");

  await page.goto(`${hubUrl}/inventory`);
  await page.locator("#held-table").waitFor();
  await page.screenshot({ path: `${shots}/hub-stock-dashboard.png`, fullPage: true });

  await page.goto(`${hubUrl}/inventory/recalls`);
  await page.fill('#recall input[name="gtin"]', "09520000000011");
  await page.fill('#recall input[name="batch"]', "GLA-77");
  await page.fill('#recall input[name="reason"]', "Manufacturer recall R-2026-31");
  await page.click("#recall button");
  await page.waitForURL(/\/inventory\/trace\?/, { timeout: 10_000 });
  await page.locator("#trace").waitFor();
  await page.screenshot({ path: `${shots}/hub-stock-recall-trace.png`, fullPage: true });
  await page.goto(`${hubUrl}/inventory/lots?status=recalled`);
  if (!(await page.locator("#lots").textContent()).includes("GLA-77")) throw new Error("lot not shown as recalled");
  console.log("step: batch recalled, trace page shown");
  errors.check();
});
