// An XSS payload stored as a patient's name, shown in real Chromium: the
// name reads as text on the record and in the list, no script runs, no
// element is injected, and the CSP has nothing to block.
//
// usage: node security.mjs HUB_URL PATIENT_ID SHOT_DIR
import { pageErrors, run, signIn } from "./lib.mjs";

const [hubUrl, patientId, shots] = process.argv.slice(2);
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
  errors.check();
});
