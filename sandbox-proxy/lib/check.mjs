// Kiln's acceptance-check runner. Runs inside a sandbox (`node /opt/kiln/check.mjs FILE`):
// opens the app's dev server (KILN_DEV_URL, set by the sandbox-proxy) in the host's Chromium,
// driven by playwright-core from /opt/kiln/node_modules, and runs each check of FILE (the
// format is core/src/agent/checks.rs) in a fresh browser context; with `--smoke`, Kiln's smoke
// check (the page shows something, no uncaught error) runs first, and with
// `--mentions=a,b,c` a check that the page names each of those words (the request's lists).
// Prints one JSON line
// `{"results":[{name, passed, step?, error?, page_text?, console_errors?}]}`.
// Exit 0 when the checks ran (pass or fail), 3 when no browser can run here, 2 on bad input.
import { readFileSync, existsSync } from 'node:fs';

const STEP_TIMEOUT = 4000;
const CHECK_TIMEOUT = 30000;

function out(obj, code) {
  process.stdout.write(JSON.stringify(obj) + '\n');
  process.exit(code);
}

const file = process.argv[2];
const smoke = process.argv.slice(3).includes('--smoke');
const mentioned = process.argv.slice(3).find((a) => a.startsWith('--mentions='));
const words = mentioned ? mentioned.slice('--mentions='.length).split(',').filter(Boolean) : [];
const base = process.env.KILN_DEV_URL;
if (!file || !base) out({ error: 'usage: KILN_DEV_URL=… node check.mjs checks.json' }, 2);
let checks;
try {
  // With --smoke there may be no tester's checks at all (the small profile writes none).
  checks = smoke && !existsSync(file) ? [] : JSON.parse(readFileSync(file, 'utf8')).checks;
  if (!Array.isArray(checks)) throw new Error('no "checks" array');
} catch (e) {
  out({ error: `cannot read ${file}: ${e.message}` }, 2);
}
if (smoke) {
  const own = [{ name: 'the app opens and shows its page without errors', steps: [{ do: 'renders' }] },
    { name: 'its fields and buttons can be used without errors', steps: [{ do: 'explore' }] }];
  if (words.length) own.push({ name: `the page names what the request lists: ${words.join(', ')}`, steps: [{ do: 'mentions', words }] });
  checks.unshift(...own);
}

// /usr/bin/chromium is Debian's wrapper script, which needs /etc/chromium.d; start the binary.
const candidates = [process.env.KILN_CHROMIUM, '/usr/lib/chromium/chromium', '/usr/bin/chromium',
  '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].filter(Boolean);
const executablePath = candidates.find((p) => existsSync(p));
let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  out({ error: `playwright-core is not installed: ${e.message}` }, 3);
}
if (!executablePath) out({ error: 'no Chromium on this sandbox host' }, 3);

let browser;
try {
  browser = await chromium.launch({
    executablePath,
    headless: true,
    // No Chromium sandbox: the whole process is already in Kiln's sandbox, which forbids the
    // user namespaces Chromium's own sandbox needs. No proxy: the app is on loopback.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-quic', '--no-proxy-server',
      // Fewer processes and threads: a sandbox has a pids limit shared with its dev server.
      '--no-zygote', '--renderer-process-limit=1', '--in-process-gpu',
      '--disable-features=site-per-process,IsolateOrigins', '--disable-site-isolation-trials'],
  });
} catch (e) {
  out({ error: `Chromium did not start: ${e.message.split('\n')[0]}` }, 3);
}

// A query on the base (a preview token, when run from outside the sandbox) goes on every path.
const url = (path) => {
  const root = new URL(base);
  const u = new URL((path || '/').replace(/^\//, ''), root.href.replace(/\?.*$/, '').replace(/\/?$/, '/'));
  if (!u.search) u.search = root.search;
  return u.href;
};

async function visibleText(page) {
  try {
    return (await page.evaluate(() => document.body ? document.body.innerText : '')).slice(0, 1500);
  } catch {
    return '';
  }
}

// Waits until `pred` holds, for at most STEP_TIMEOUT: apps update asynchronously.
async function until(pred, what) {
  const end = Date.now() + STEP_TIMEOUT;
  let last;
  for (;;) {
    last = await pred();
    if (last === true) return;
    if (Date.now() > end) throw new Error(typeof last === 'string' ? last : what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function textIn(page, target) {
  if (!target) return page.evaluate(() => document.body ? document.body.innerText : '');
  const loc = page.locator(target);
  const n = await loc.count();
  const texts = [];
  for (let i = 0; i < n; i++) {
    const el = loc.nth(i);
    texts.push(await el.innerText().catch(() => ''));
    const v = await el.inputValue().catch(() => null);
    if (v !== null) texts.push(v);
  }
  return texts.join('\n');
}

const norm = (s) => String(s).replace(/\s+/g, ' ').trim().toLowerCase();

// Something a person can see: text, or a visible image, canvas, video or control.
const shows = () => {
  const b = document.body;
  if (!b) return false;
  if (b.innerText.trim().length > 0) return true;
  return [...document.querySelectorAll('img, svg, canvas, video, input, button, select, textarea')]
    .some((e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; });
};

async function step(page, s, pageErrors) {
  const loc = (t) => page.locator(t).first();
  switch (s.do) {
    case 'open':
      await page.goto(url(s.path), { waitUntil: 'load', timeout: 15000 });
      return;
    case 'reload':
      await page.reload({ waitUntil: 'load', timeout: 15000 });
      return;
    case 'click':
      await loc(s.target).click({ timeout: STEP_TIMEOUT });
      return;
    case 'fill':
      await loc(s.target).fill(String(s.value), { timeout: STEP_TIMEOUT });
      return;
    case 'press':
      if (s.target) await loc(s.target).press(s.key, { timeout: STEP_TIMEOUT });
      else await page.keyboard.press(s.key);
      return;
    case 'select':
      await loc(s.target).selectOption(String(s.value), { timeout: STEP_TIMEOUT }).catch(async () => {
        await loc(s.target).selectOption({ label: String(s.value) }, { timeout: STEP_TIMEOUT });
      });
      return;
    case 'drag':
      await loc(s.target).dragTo(loc(s.to), { timeout: STEP_TIMEOUT });
      return;
    case 'wait':
      await page.waitForTimeout(Math.min(Number(s.ms) || 0, 5000));
      return;
    case 'see':
      await until(async () => norm(await textIn(page, s.target)).includes(norm(s.text))
        || `${JSON.stringify(s.text)} is not on the page${s.target ? ` in ${s.target}` : ''}`);
      return;
    case 'not_see':
      await until(async () => !norm(await textIn(page, s.target)).includes(norm(s.text))
        || `${JSON.stringify(s.text)} is still on the page`);
      return;
    case 'count':
      await until(async () => {
        const n = await page.locator(s.target).count();
        return n === Number(s.equals) || `${s.target} matches ${n} elements, not ${s.equals}`;
      });
      return;
    case 'value':
      await until(async () => {
        const v = await loc(s.target).inputValue({ timeout: 500 }).catch((e) => `(${e.message.split('\n')[0]})`);
        return norm(v) === norm(s.equals) || `${s.target} has value ${JSON.stringify(v)}, not ${JSON.stringify(String(s.equals))}`;
      });
      return;
    case 'renders':
      await until(async () => {
        if (pageErrors.length) return `the page raised an error: ${pageErrors[0]}`;
        return (await page.evaluate(shows).catch(() => false))
          || 'the page is blank: nothing is shown (is the root component rendered?)';
      });
      if (pageErrors.length) throw new Error(`the page raised an error: ${pageErrors[0]}`);
      return;
    case 'explore': {
      // Text fields get a value a form would take; then each button is clicked once, in page
      // order. Links and submits that leave the page are left alone.
      const fields = page.locator('input:visible:not([type=checkbox]):not([type=radio]):not([type=file]):not([type=submit]), textarea:visible');
      for (let i = 0; i < Math.min(await fields.count(), 12); i++) {
        const f = fields.nth(i);
        const type = (await f.getAttribute('type').catch(() => '')) || 'text';
        const value = type === 'number' || type === 'range' ? '3' : type === 'date' ? '2026-01-15'
          : type === 'email' ? 'a@example.com' : type === 'color' ? '#336699' : 'Kiln';
        await f.fill(value, { timeout: 1000 }).catch(() => {});
      }
      const buttons = page.locator('button:visible, [role=button]:visible, input[type=checkbox]:visible');
      const n = Math.min(await buttons.count(), 12);
      for (let i = 0; i < n; i++) {
        await buttons.nth(i).click({ timeout: 1000, noWaitAfter: true }).catch(() => {});
        if (pageErrors.length) break;
      }
      await page.waitForTimeout(300);
      if (pageErrors.length) throw new Error(`using the page raised an error: ${pageErrors[0]}`);
      return;
    }
    case 'mentions': {
      // Where a person reads what a control is: the page's text, labels, placeholders,
      // titles, options, and the names and ids a form gives its fields.
      const missing = await until(async () => {
        const text = await page.evaluate(() => {
          const bits = [document.body.innerText];
          for (const el of document.querySelectorAll('[placeholder], [aria-label], [title], [name], [id], [alt], input[value], option, label')) {
            for (const a of ['placeholder', 'aria-label', 'title', 'name', 'id', 'alt', 'value']) {
              const v = el.getAttribute(a);
              if (v) bits.push(v);
            }
            if (el.tagName === 'OPTION' || el.tagName === 'LABEL') bits.push(el.textContent || '');
          }
          return bits.join('\n');
        }).catch(() => '');
        // A word counts at the start of a word of the page ("Dates" names "date",
        // "startTimer" names "start"); any case.
        const gone = (s.words || []).filter((w) => !new RegExp(`(^|[^a-z])${w.replace(/[^a-z0-9]/gi, '')}`, 'i').test(text));
        return gone.length === 0 || `the page does not name ${gone.map((w) => `"${w}"`).join(', ')}: the request asks for ${gone.length > 1 ? 'them' : 'it'} (a button, a field's label or a heading with ${gone.length > 1 ? 'these words' : 'this word'})`;
      });
      return missing;
    }
    default:
      throw new Error(`unknown step ${JSON.stringify(s.do)}`);
  }
}

async function run(check) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const consoleErrors = [];
  const pageErrors = [];
  page.on('console', (m) => {
    // The browser's own request for a favicon is not the app's error.
    if (m.type() === 'error' && !/favicon\.ico$/.test(m.location().url || '')) consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => {
    consoleErrors.push(String(e.message || e));
    pageErrors.push(String(e.message || e).split('\n')[0]);
  });
  const report = { name: check.name, passed: false };
  let i = 0;
  try {
    await page.goto(url('/'), { waitUntil: 'load', timeout: 15000 });
    const deadline = Date.now() + CHECK_TIMEOUT;
    for (; i < check.steps.length; i++) {
      if (Date.now() > deadline) throw new Error('the check took longer than 30 s');
      await step(page, check.steps[i], pageErrors);
    }
    report.passed = true;
  } catch (e) {
    report.step = i < check.steps.length ? i + 1 : undefined;
    report.error = String(e.message || e).split('\n')[0].replace(/^locator\.\w+: /, '').slice(0, 500);
    report.page_text = await visibleText(page);
  }
  if (consoleErrors.length) report.console_errors = consoleErrors.slice(0, 10);
  await context.close().catch(() => {});
  return report;
}

// One load before the checks: the dev server's first request (Vite optimising dependencies,
// which ends in a full reload) must not land in the middle of a check.
try {
  const warm = await browser.newContext();
  await (await warm.newPage()).goto(url('/'), { waitUntil: 'networkidle', timeout: 30000 });
  await warm.close();
} catch {
  // The checks report what is wrong with the page.
}

const results = [];
for (const check of checks) results.push(await run(check));
await browser.close().catch(() => {});
out({ results }, 0);
