// An XSS payload stored as a patient's name, shown in real Chromium: the
// name reads as text on the record and in the list, no script runs, no
// element is injected, and the CSP has nothing to block. Then a busy
// counter: "Switch user" hands the screen from Pia to Max and on to the
// administrator, who revokes a kiosk from the kiosk list.
//
// usage: node security.mjs HUB_URL PATIENT_ID SHOT_DIR KIOSK_ID
import { pageErrors, run, signIn } from "./lib.mjs";

const [hubUrl, patientId, shots, kioskId] = process.argv.slice(2);

/** Click "Switch user" and sign in as `user` on the form it leads to. */
async function switchTo(page, user, password) {
  const from = new URL(page.url());
  await page.locator("#switch-user").click();
  await page.waitForURL((u) => u.pathname === "/login", { timeout: 10_000 });
  const next = new URL(page.url()).searchParams.get("next");
  if (next !== from.pathname + from.search) throw new Error(`switch user: next=${next}, was on ${from}`);
  const form = page.locator("form#login");
  await form.locator('input[name="username"]').fill(user);
  await form.locator('input[name="password"]').fill(password);
  await form.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((u) => u.pathname === from.pathname, { timeout: 15_000 });
}
const PAYLOAD = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>';

await run(async (browser) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = pageErrors(page);
  let dialogs = 0;
  page.on("dialog", (d) => { dialogs += 1; d.dismiss(); });
  await signIn(page, hubUrl, "pia");
  // Count what the CSP had to block: with the name escaped, nothing.
  await page.addInitScript(() => {
    window.__violations = 0;
    document.addEventListener("securitypolicyviolation", () => { window.__violations += 1; });
  });
  for (const path of [`/patients/${patientId}`, `/patients?q=${encodeURIComponent("<img")}`]) {
    await page.goto(`${hubUrl}${path}`);
    await page.locator("main").getByText(PAYLOAD, { exact: false }).first().waitFor({ timeout: 10_000 });
    const state = await page.evaluate(() => ({
      xss: window.__xss,
      injected: document.querySelectorAll('img[src="x"], main script').length,
      violations: window.__violations,
    }));
    if (state.xss !== undefined || state.injected !== 0 || state.violations !== 0 || dialogs !== 0) {
      throw new Error(`${path}: ${JSON.stringify(state)} dialogs=${dialogs}`);
    }
  }
  await page.goto(`${hubUrl}/patients/${patientId}`);
  await page.screenshot({ path: `${shots}/security-xss-name.png`, fullPage: true });
  console.log("step: the payload reads as text and runs nothing");

  // A shared counter PC: Pia hands over to Max without closing anything.
  await page.goto(`${hubUrl}/orders`);
  await page.locator("#me .who").getByText("Pia (pharmacist)").waitFor({ timeout: 10_000 });
  const password = process.env.RXEDGE_TEST_PASSWORD || "";
  await switchTo(page, "max", password);
  await page.locator("#me .who").getByText("Max (pharmacist)").waitFor({ timeout: 10_000 });
  await page.screenshot({ path: `${shots}/security-switch-user.png` });
  console.log("step: switch user hands the screen from Pia to Max");

  // The administrator revokes a kiosk from the list on the home page.
  await switchTo(page, "ada", password);
  await page.goto(`${hubUrl}/`);
  const row = page.locator("tr", { hasText: kioskId });
  await row.getByRole("button", { name: "Revoke" }).click();
  // The page comes back with the kiosk marked revoked and no button left.
  await page.locator("tr", { hasText: kioskId }).getByText("revoked", { exact: true }).waitFor({ timeout: 10_000 });
  if (await page.locator("tr", { hasText: kioskId }).getByRole("button", { name: "Revoke" }).count() !== 0) {
    throw new Error("a revoked kiosk still offers Revoke");
  }
  await page.screenshot({ path: `${shots}/security-kiosk-revoked.png`, fullPage: true });
  console.log("step: the administrator revokes the kiosk");
  errors.check();
});
