// The first-run wizard in a real Chromium: a fresh hub points at /setup; a
// short password is refused in words; the administrator, the store's name and
// the first kiosk are set in one form, which answers with the kiosk's enroll
// command (printed here for the Rust test to run); then the wizard is closed.
//
// usage: node setup.mjs HUB_URL SHOT_DIR
import { pageErrors, run } from "./lib.mjs";

const [hubUrl, shots] = process.argv.slice(2);

await run(async (browser) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = pageErrors(page);

  // A hub without an administrator sends every visitor to the wizard.
  await page.goto(hubUrl);
  await page.waitForURL(/\/setup$/);
  const form = page.locator("form#setup");
  await form.locator('input[name="display_name"]').fill("Anna Muster");
  await form.locator('input[name="username"]').fill("anna.m");
  await form.locator('input[name="store_name"]').fill("Apotheke am See");
  await form.locator('input[name="kiosk_id"]').fill("entrance");
  await form.locator('input[name="kiosk_name"]').fill("Entrance");
  // The browser's own minlength check would stop a short password before the
  // hub sees it; the hub must refuse it too, in words.
  await page.evaluate(() => document.querySelector('input[name="password"]').removeAttribute("minlength"));
  await form.locator('input[name="password"]').fill("short");
  await form.locator('input[name="password_again"]').fill("short");
  await form.getByRole("button", { name: "Set up" }).click();
  await form.locator("output.error", { hasText: "at least 12 characters" }).waitFor({ timeout: 10_000 });
  console.log("step: short password refused");

  await form.locator('input[name="password"]').fill("lake view pharmacy 2026");
  await form.locator('input[name="password_again"]').fill("lake view pharmacy 2026");
  await form.getByRole("button", { name: "Set up" }).click();
  const done = form.locator("output.ok", { hasText: "rxedge-kiosk enroll" });
  await done.waitFor({ timeout: 15_000 });
  await page.screenshot({ path: `${shots}/hub-setup-done.png`, fullPage: true });
  const text = await done.textContent();
  const cmd = text.slice(text.indexOf("rxedge-kiosk enroll"));
  console.log(`enroll: ${cmd}`);
  console.log("step: setup done");

  // Now the hub asks for a sign-in, under the store's new name, and the
  // administrator just made can sign in.
  await page.goto(hubUrl);
  await page.waitForURL(/\/login/);
  await page.locator("h1", { hasText: "Apotheke am See" }).waitFor({ timeout: 10_000 });
  const login = page.locator("form#login");
  await login.locator('input[name="username"]').fill("anna.m");
  await login.locator('input[name="password"]').fill("wrong password, twice over");
  await login.getByRole("button", { name: "Sign in" }).click();
  await login.locator("output.error", { hasText: "Wrong user name or password" }).waitFor({ timeout: 10_000 });
  await login.locator('input[name="password"]').fill("lake view pharmacy 2026");
  await login.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#me", { hasText: "Anna Muster (admin)" }).waitFor({ timeout: 10_000 });
  await page.screenshot({ path: `${shots}/hub-signed-in.png`, fullPage: true });
  console.log("step: administrator signed in");
  await page.goto(`${hubUrl}/setup`);
  await page.locator("h1", { hasText: "This hub is set up" }).waitFor({ timeout: 10_000 });
  if (await page.locator("form#setup").count()) throw new Error("the wizard is still open");
  console.log("step: wizard closed");
  errors.check();
});
