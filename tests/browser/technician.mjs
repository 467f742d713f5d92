// Technician screens in a real Chromium: a live fridge in alarm, acknowledging
// an alarm through the form, uploading a Berlinger logger file, and reading the
// fridge's log with the imported history.
//
// usage: node technician.mjs HUB_URL [LOGGER_FILE]
import { pageErrors, run, signIn } from "./lib.mjs";

const [hubUrl, loggerFile] = process.argv.slice(2);

await run(async (browser) => {
  const page = await browser.newPage();
  const errors = pageErrors(page);
  await signIn(page, hubUrl, "tess");

  await page.goto(`${hubUrl}/coldchain`);
  await page.locator('article[data-fridge="fridge-1"].alarm').waitFor({ timeout: 20_000 });
  const door = await page.locator('article[data-fridge="fridge-1"] li.door').textContent();
  if (!door.includes("open since")) throw new Error(`door shows ${JSON.stringify(door)}`);
  if ((await page.locator('article[data-fridge="fridge-1"] svg.chart path.temp').count()) < 1) {
    throw new Error("no chart line for fridge-1");
  }
  console.log("step: fridge in alarm with door open and chart");

  await page.goto(`${hubUrl}/coldchain/alarms`);
  const row = page.locator("#alarms tr.active", { hasText: "door_open" }).first();
  await row.waitFor({ timeout: 15_000 });
  await row.getByRole("link", { name: "Acknowledge" }).click();
  await page.locator("form.ack").waitFor();
  // The browser itself refuses an empty comment (required), before the server does.
  await page.click('form.ack button[type="submit"]');
  if (!(await page.locator("form.ack").isVisible())) throw new Error("submitted without a comment");
  await page.selectOption('select[name="reason"]', "investigated");
  await page.fill('textarea[name="comment"]', "Door left ajar after restocking; closed and checked seal.");
  await page.click('form.ack button[type="submit"]');
  await page.locator("#state", { hasText: "acknowledged" }).waitFor({ timeout: 10_000 });
  const trail = await page.locator("#trail").textContent();
  if (!trail.includes("Tess Technician") || !trail.includes("closed and checked seal")) {
    throw new Error(`audit trail reads ${JSON.stringify(trail)}`);
  }
  console.log("step: alarm acknowledged with a comment, in the audit trail");

  await page.goto(`${hubUrl}/coldchain/fridges/fridge-1/rules`);
  await page.fill('input[name="door_open_max_secs"]', "300");
  await page.fill('input[name="t0_limit_c"]', "8.5");
  await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/rules") && r.request().method() === "POST"),
    page.click('form.rules button[type="submit"]'),
  ]);
  // Read back from the hub, not from the form just typed into.
  await page.goto(`${hubUrl}/coldchain/fridges/fridge-1/rules`);
  if ((await page.inputValue('input[name="door_open_max_secs"]')) !== "300") throw new Error("door limit not saved");
  console.log("step: rules edited on the screen");

  if (loggerFile) {
    await page.goto(`${hubUrl}/coldchain/import`);
    await page.fill('input[name="fridge"]', "fridge-1");
    await page.setInputFiles('input[name="file"]', loggerFile);
    await page.click('button[type="submit"]');
    const summary = await page.locator("#summary").textContent({ timeout: 15_000 });
    const m = summary.match(/(\d+) daily records stored for fridge-1/);
    if (!m || Number(m[1]) < 1) throw new Error(`import summary ${JSON.stringify(summary)}`);
    console.log(`step: logger file imported (${m[1]} days)`);
    await page.goto(`${hubUrl}/coldchain/fridges/fridge-1/log?from=2022-12-01&to=2023-02-28`);
    const rows = await page.locator("#logger-history tbody tr").count();
    if (rows !== Number(m[1])) throw new Error(`log shows ${rows} history rows, expected ${m[1]}`);
    console.log("step: imported history on the fridge log");
  }
  errors.check();
});
