// A person's browser against two projects' previews: signs in on Kiln's origin, opens each
// preview through Kiln (a fresh single-use link each time), and reports what the generated
// app could see. Driven by tests/generate/isolation.rs; prints one JSON object.
//
//   node tests/browser/isolation.mjs '{"app":"http://127.0.0.1:PORT","email":…,"password":…,
//                                      "projects":["p_…","p_…"],"shot":"/tmp/x.png"}'
import { chromium } from 'playwright-core'

const cfg = JSON.parse(process.argv[2])
const browser = await chromium.launch({
  executablePath: process.env.KILN_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
})
const out = { projects: {} }
try {
  const context = await browser.newContext()
  const page = await context.newPage()
  // Kiln's origin has no page of its own yet; any same-origin document will do to sign in.
  await page.goto(`${cfg.app}/api/health`)
  out.login = await page.evaluate(async ({ email, password }) => {
    const r = await fetch('/api/auth/login', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password }),
    })
    return r.status
  }, cfg)
  const open = async (project) => {
    await page.goto(`${cfg.app}/preview/${project}/`)
    await page.waitForFunction(() => ['same', 'api'].every((id) => {
      const t = document.getElementById(id)?.textContent
      return t && t !== 'pending'
    }), null, { timeout: 90_000 })
  }
  for (const project of cfg.projects) {
    await open(project)
    const seen = await page.evaluate(() => ({
      url: location.href,
      same: document.getElementById('same').textContent,
      api: document.getElementById('api').textContent,
      cookies: document.cookie,
      marker: localStorage.getItem('marker'),
    }))
    await page.evaluate((m) => localStorage.setItem('marker', m), project)
    out.projects[project] = seen
  }
  await open(cfg.projects[0])
  out.first_again = await page.evaluate(() => localStorage.getItem('marker'))
  if (cfg.shot) await page.screenshot({ path: cfg.shot })
} catch (e) {
  out.error = String(e && e.stack || e)
} finally {
  await browser.close()
}
console.log(JSON.stringify(out))
