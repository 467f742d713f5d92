// The paper prescription on the review page: the page with its OCR boxes,
// zoomed in (the boxes stay on their words), panned by dragging, zoomed by
// the wheel and the keyboard, and back to the whole page.
//
// Usage: node review_image.mjs HUB_URL SHOTS_DIR ORDER_ID
import { pageErrors, run, signIn } from "./lib.mjs";

const [hubUrl, shots, orderId] = process.argv.slice(2);

await run(async (browser) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors = pageErrors(page);
  await signIn(page, hubUrl, "pia");
  await page.goto(`${hubUrl}/orders/${orderId}`);
  // The draft may still be on its way: the region refreshes when OCR is done.
  const box = page.locator(".zoom-view .ocr-box").first();
  await box.waitFor({ timeout: 90_000 });
  const view = page.locator(".zoom-view").first();
  const zoomIn = page.getByRole("button", { name: "Zoom in" });
  await zoomIn.waitFor();
  console.log("step: the page with its OCR boxes");

  const size = async () => {
    const b = await box.boundingBox();
    if (!b) throw new Error("the box is not on screen");
    return b;
  };
  const whole = await size();
  await zoomIn.click();
  await zoomIn.click();
  const zoomed = await size();
  const ratio = zoomed.width / whole.width;
  if (Math.abs(ratio - 2.25) > 0.05) throw new Error(`two zoom steps scaled a box by ${ratio}, not 2.25`);
  if ((await view.getAttribute("data-zoom")) !== "2.25") throw new Error("the view does not say 2.25");
  console.log("step: zoomed in, the boxes stay on their words");

  // Drag from a point in the visible part of the page.
  const vb = await view.boundingBox();
  const sx = vb.x + vb.width / 2;
  const sy = vb.y + 150;
  await page.mouse.move(sx, sy);
  await page.mouse.down();
  await page.mouse.move(sx - 120, sy - 80, { steps: 6 });
  await page.mouse.up();
  const moved = await size();
  if (Math.abs(moved.x - zoomed.x + 120) > 2 || Math.abs(moved.y - zoomed.y + 80) > 2) {
    throw new Error(`a drag of (-120, -80) moved the box by (${moved.x - zoomed.x}, ${moved.y - zoomed.y})`);
  }
  await page.screenshot({ path: `${shots}/pharmacist-review-zoom.png` });
  console.log("step: dragged to pan");

  // The wheel zooms where the pointer is; the keyboard works on the focused view.
  await page.mouse.move(sx, sy);
  await page.mouse.wheel(0, -100);
  await page.waitForFunction(() => document.querySelector(".zoom-view").dataset.zoom === "2.81");
  await view.focus();
  await page.keyboard.press("0");
  await page.waitForFunction(() => document.querySelector(".zoom-view").dataset.zoom === "1.00");
  await page.keyboard.press("+");
  await page.waitForFunction(() => document.querySelector(".zoom-view").dataset.zoom === "1.50");
  if (new URL(page.url()).pathname !== `/orders/${orderId}`) throw new Error("a zoom key took a page shortcut");
  await page.getByRole("button", { name: "Whole page" }).click();
  const back = await size();
  if (Math.abs(back.width - whole.width) > 0.5 || Math.abs(back.x - whole.x) > 0.5) {
    throw new Error("Whole page did not restore the page");
  }
  console.log("step: wheel, keys and back to the whole page");
  errors.check();
});
