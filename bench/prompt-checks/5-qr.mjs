// "Changing the text changes the code": the QR image (canvas, svg or img) differs between two
// texts, and is there for both. Prints one JSON line like check.mjs.
import { chromium } from 'playwright-core';
const b = await chromium.launch({ executablePath: '/usr/lib/chromium/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--no-proxy-server', '--disable-background-networking'] });
const page = await b.newPage();
const result = { name: 'changing the text changes the code', passed: false };
try {
  await page.goto(process.env.KILN_DEV_URL, { waitUntil: 'load', timeout: 15000 });
  const input = page.locator('input[type=text], input[type=url], input:not([type]), textarea').first();
  const code = () => page.evaluate(() => {
    const c = document.querySelector('canvas');
    if (c) return c.toDataURL();
    const s = [...document.querySelectorAll('svg')].find((e) => e.querySelectorAll('path, rect').length > 0);
    if (s) return s.outerHTML;
    const i = [...document.querySelectorAll('img')].find((e) => (e.src || '').length > 100);
    return i ? i.src : '';
  });
  await input.fill('https://example.com/one', { timeout: 4000 });
  await page.waitForTimeout(1000);
  const one = await code();
  await input.fill('hello kiln', { timeout: 4000 });
  await page.waitForTimeout(1000);
  const two = await code();
  result.passed = one.length > 0 && two.length > 0 && one !== two;
  if (!result.passed) result.error = `code for text 1: ${one.length} chars, for text 2: ${two.length} chars, equal: ${one === two}`;
} catch (e) {
  result.error = e.message.split('\n')[0];
}
result.page_text = (await page.evaluate(() => document.body.innerText).catch(() => '')).slice(0, 300);
console.log(JSON.stringify({ results: [result] }));
await b.close();
