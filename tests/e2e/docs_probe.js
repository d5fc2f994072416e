// SPDX-License-Identifier: Apache-2.0
// Loads /docs in headless Chromium through playwright-core, waits until it
// has rendered the operations of /openapi.json, sends the form of
// GET /api/v1/sensors/latest and prints what it found as JSON.
// Usage: node docs_probe.js URL CHROMIUM SCREENSHOT TIMEOUT_MS
"use strict";

const { chromium } = require("playwright-core");

async function main() {
  const [url, executablePath, screenshot, timeoutText] = process.argv.slice(2);
  const timeout = Number(timeoutText || 60000);
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = [];
    page.on("pageerror", (err) => errors.push(String(err)));
    await page.goto(url, { waitUntil: "load", timeout });
    await page.waitForSelector("details.operation", { timeout });
    const operations = await page.$$eval("details.operation", (nodes) => nodes.map((n) => n.id));
    const id = "get-/api/v1/sensors/latest";
    await page.evaluate((opId) => { document.getElementById(opId).open = true; }, id);
    const form = page.locator(`[id="${id}"] form`);
    await form.locator("button").click();
    await page.waitForFunction((opId) => {
      const out = document.getElementById(opId).querySelector("pre.output");
      return out && /HTTP \d+/.test(out.textContent);
    }, id, { timeout });
    const output = await form.locator("pre.output").textContent();
    await page.screenshot({ path: screenshot, fullPage: false });
    console.log(JSON.stringify({ operations, output, errors }));
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.error(String(err && err.stack || err));
  process.exit(1);
});
