// A person's browser against two projects' previews: signs in on Kiln's origin, opens each
// preview through Kiln (a fresh single-use link each time), and reports what the generated
// app could see. Driven by tests/generate/isolation.rs; prints one JSON object.
//
//   node tests/browser/isolation.mjs '{"app":"http://127.0.0.1:PORT","email":…,"password":…,
//                                      "projects":["p_…","p_…"],"shot":"/tmp/x.png"}'
import { launch } from './launch.mjs'

const cfg = JSON.parse(process.argv[2])
const browser = await launch()
const out = { projects: {} }
try {
  const context = await browser.newContext()
  const page = await context.newPage()
  const logs = []
  page.on('console', (m) => logs.push(m.text()))
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
    try {
      await page.waitForFunction(() => ['same', 'api'].every((id) => {
        const t = document.getElementById(id)?.textContent
        return t && t !== 'pending'
      }), null, { timeout: 90_000 })
    } catch (e) {
      // Say what the page showed instead, and what it logged.
      const shown = await page.evaluate(() => document.body?.innerText.slice(0, 500)).catch(() => '')
      throw new Error(`${e.message.split('\n')[0]} at ${page.url()}; page: ${JSON.stringify(shown)}; console: ${JSON.stringify(logs.slice(-10))}`)
    }
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
  // Vite's client says so once its HMR socket, upgraded through the preview host, is open.
  for (let i = 0; i < 50 && !logs.some((l) => l.includes('[vite] connected')); i++) {
    await page.waitForTimeout(200)
  }
  out.hmr_connected = logs.some((l) => l.includes('[vite] connected'))
  if (cfg.shot) await page.screenshot({ path: cfg.shot })

  // Framed as the UI will frame it: a page of Kiln's origin (served here by the browser
  // itself, since Kiln has no UI page yet) embeds a fresh preview link; a page of another
  // site may not (frame-ancestors).
  const link = async () => page.evaluate(async (p) => {
    const r = await fetch(`/api/projects/${p}/preview-link`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}',
    })
    return (await r.json()).url
  }, cfg.projects[1])
  const frame = async (origin) => {
    const url = `${origin}/__frame_test`
    const src = await link()
    await context.route(url, (route) => route.fulfill({
      contentType: 'text/html', body: `<iframe id="f" src="${src}" width="600" height="300"></iframe>`,
    }))
    const p = await context.newPage()
    const trail = []
    p.on('response', (r) => trail.push(`${r.status()} ${r.url().slice(0, 90)}`))
    p.on('requestfailed', (r) => trail.push(`failed ${r.url().slice(0, 90)} ${r.failure()?.errorText}`))
    p.on('console', (m) => trail.push(`console ${m.text().slice(0, 200)}`))
    await p.goto(url)
    const seen = { loaded: false }
    const f = await (await p.waitForSelector('#f')).contentFrame()
    try {
      await f.waitForSelector('#same', { timeout: 20_000 })
      await f.waitForFunction(() => document.getElementById('same').textContent !== 'pending', null, { timeout: 20_000 })
      seen.text = await f.evaluate(() => document.body.innerText)
      seen.loaded = true
    } catch (e) {
      seen.error = String(e).slice(0, 300)
      seen.url = f.url()
      seen.trail = trail
    }
    await p.close()
    return seen
  }
  await page.goto(`${cfg.app}/api/health`)
  out.framed_by_kiln = await frame(cfg.app)
  out.framed_by_other = await frame(cfg.foreign)
} catch (e) {
  out.error = String(e && e.stack || e)
} finally {
  await browser.close()
}
console.log(JSON.stringify(out))
