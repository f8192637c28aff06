// Three browsers on one project while it generates: one stays connected, one is reloaded
// in the middle, one loses the network for a few seconds. All three must end with the same
// files and the same timeline. Driven by tests/generate/ui.rs; prints one JSON report.
import net from 'node:net'
import { launch, openProject } from './launch.mjs'

const cfg = JSON.parse(process.argv[2])
const browser = await launch()

// The third browser reaches Kiln through this loopback relay, so the test can cut its
// connections (and refuse new ones) the way a dropped network would. Chromium's own offline
// emulation leaves open WebSockets alone.
const kiln = new URL(cfg.app)
const open = new Set()
let down = false
const relay = net.createServer((client) => {
  if (down) return client.destroy()
  const upstream = net.connect(Number(kiln.port), kiln.hostname)
  open.add(client)
  open.add(upstream)
  client.pipe(upstream).on('error', () => {})
  upstream.pipe(client).on('error', () => {})
  const end = () => {
    client.destroy()
    upstream.destroy()
    open.delete(client)
    open.delete(upstream)
  }
  client.on('close', end).on('error', end)
  upstream.on('close', end).on('error', end)
})
await new Promise((r) => relay.listen(0, '127.0.0.1', r))
const relayed = `http://127.0.0.1:${relay.address().port}`
const cutNetwork = () => {
  down = true
  for (const s of open) s.destroy()
}
const out = { steps: [] }
const step = (name) => out.steps.push(name)
const signIn = async (app = cfg.app) => {
  const b = await openProject(browser, { app, email: cfg.email, password: cfg.password, project: cfg.project })
  await b.page.getByRole('tab', { name: 'Files' }).click()
  return b
}
const seen = async (page) => ({
  files: await page.getByRole('treeitem').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label'))),
  timeline: await page.locator('.timeline').innerText(),
})
try {
  const stay = await signIn()
  const reload = await signIn()
  const cut = await signIn(relayed)
  step('three browsers live')
  out.started = await stay.page.evaluate(async (p) => {
    const r = await fetch(`/api/projects/${p}/generate`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a tally counter that remembers', template: 'static' }),
    })
    return r.status
  }, cfg.project)

  // Mid-generation: while the model writes the first file.
  await reload.page.locator('.file-tree .file.streaming').first().waitFor({ timeout: 60_000 })
  await reload.page.reload()
  await reload.page.getByRole('tab', { name: 'Files' }).click()
  step('reloaded mid-generation')
  cutNetwork()
  await cut.page.getByRole('status').getByText(/Reconnecting/).waitFor({ timeout: 15_000 })
  step('network cut')
  await cut.page.waitForTimeout(3000)
  down = false
  step('network back')

  for (const b of [stay, reload, cut]) {
    await b.page.getByText(/Version 1 ready/).waitFor({ timeout: 120_000 })
    await b.page.getByRole('status').getByText('Live').waitFor({ timeout: 30_000 })
  }
  step('all done')
  await cut.page.waitForTimeout(500)
  out.stay = await seen(stay.page)
  out.reload = await seen(reload.page)
  out.cut = await seen(cut.page)
  await cut.page.screenshot({ path: `${cfg.shots}/after-network-cut.png` })
} catch (e) {
  out.error = String((e && e.stack) || e)
} finally {
  await browser.close()
  relay.close()
}
console.log(JSON.stringify(out))
