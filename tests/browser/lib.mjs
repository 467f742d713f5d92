// What every browser scenario shares: Debian's Chromium through playwright-core,
// the stdout/stdin handshake with the Rust test ("need: X" / "done: X"), and
// the exit protocol (print "ok" and exit 0 only when every check passed).
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const replies = [];
let lines = null;

/** Ask the Rust test to do `what`; resolves when it answers "done: what". */
export async function ask(what) {
  if (!lines) {
    lines = createInterface({ input: process.stdin });
    lines.on("line", (l) => replies.push(l));
  }
  console.log(`need: ${what}`);
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    const r = replies.shift();
    if (r === `done: ${what}`) return;
    if (r !== undefined) throw new Error(`unexpected reply ${r}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`no reply to ${what}`);
}

/** Run `scenario(browser)` in Chromium; exits 0 after printing "ok", 1 on any failure. */
export async function run(scenario) {
  const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
  const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
  let failed = false;
  try {
    await scenario(browser);
    console.log("ok");
  } catch (e) {
    failed = true;
    console.error(String(e && e.stack ? e.stack : e));
    // What each page showed when it failed, for whoever reads the log.
    const dir = process.env.RXEDGE_FAILURE_SHOTS;
    let n = 0;
    for (const ctx of browser.contexts()) {
      for (const p of ctx.pages()) {
        n += 1;
        console.error(`page ${n} at failure: ${p.url()}`);
        if (dir) await p.screenshot({ path: `${dir}/failure-${n}.png`, fullPage: true }).catch(() => {});
      }
    }
  } finally {
    await browser.close();
    if (lines) lines.close();
  }
  process.exit(failed ? 1 : 0);
}

/**
 * Wait until the page's keyboard shortcuts are bound. `defer`red scripts run
 * only after the whole page is parsed, so an element seen on screen does not
 * mean a key pressed now does anything.
 */
export async function keysReady(page) {
  await page.locator("html[data-keys=on]").waitFor({ state: "attached", timeout: 10_000 });
}

/** Collect uncaught page errors; `check()` throws if there were any. */
export function pageErrors(page) {
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  return {
    check() {
      if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
    },
  };
}

/**
 * Sign in to the hub at `hubUrl` as `user` (an account the Rust test made,
 * password in RXEDGE_TEST_PASSWORD), through the real sign-in form.
 */
export async function signIn(page, hubUrl, user) {
  await page.goto(`${hubUrl}/login`);
  const form = page.locator("form#login");
  await form.locator('input[name="username"]').fill(user);
  await form.locator('input[name="password"]').fill(process.env.RXEDGE_TEST_PASSWORD || "");
  await form.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((u) => !u.pathname.startsWith("/login"), { timeout: 15_000 });
}
