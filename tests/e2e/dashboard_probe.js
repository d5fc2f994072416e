// SPDX-License-Identifier: Apache-2.0
// Loads the dashboard in headless Chromium through playwright-core, waits
// until a chart has drawn live points, and prints what it found as JSON.
// Usage: node dashboard_probe.js URL CHROMIUM SCREENSHOT TIMEOUT_MS
"use strict";

const { chromium } = require("playwright-core");

async function main() {
  const [url, executablePath, screenshot, timeoutText] = process.argv.slice(2);
  const timeout = Number(timeoutText || 60000);
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    // The tests may run as root, where Chromium's sandbox does not start.
    args: ["--no-sandbox", "--disable-gpu"],
  });
  const requests = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("request", (req) => requests.push(req.url()));
    const errors = [];
    page.on("pageerror", (err) => errors.push(String(err)));
    await page.goto(url, { waitUntil: "load", timeout });
    await page.waitForFunction(() => {
      const charts = Object.values(window.sluiceCharts || {});
      return charts.some((c) => c.plot.data[0].length >= 2);
    }, null, { timeout, polling: 250 });
    const result = await page.evaluate(() => {
      const charts = {};
      for (const [type, c] of Object.entries(window.sluiceCharts)) {
        charts[type] = c.plot.data[0].length;
      }
      // Counts canvas pixels that are not transparent white.
      let inked = 0;
      for (const canvas of document.querySelectorAll("canvas")) {
        const ctx = canvas.getContext("2d");
        const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        for (let i = 0; i < pixels.length; i += 4) {
          if (pixels[i + 3] !== 0 &&
              !(pixels[i] === 255 && pixels[i + 1] === 255 && pixels[i + 2] === 255)) {
            inked++;
          }
        }
      }
      return {
        charts,
        inked,
        received: document.getElementById("received-rate").textContent,
        status: document.getElementById("status").textContent,
      };
    });
    await page.screenshot({ path: screenshot, fullPage: true });
    result.errors = errors;
    result.requests = requests;
    console.log(JSON.stringify(result));
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.error(String(err && err.stack || err));
  process.exit(1);
});
