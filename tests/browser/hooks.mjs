// The webhooks and usage pages: an owner makes a webhook, a sender (this script, with
// the secret the page showed) delivers to it, the delivery log shows it, a test delivery
// from the page and a secret rotation; then the org's usage page. Driven by
// tests/api/webhooks.rs; prints one JSON report.
import { createHmac } from 'node:crypto'
import { contrastIssues, launch, signIn, unlabelledControls } from './launch.mjs'

const cfg = JSON.parse(process.argv[2])
const browser = await launch()
const out = { errors: [], contrast: [], unlabelled: [] }
const audit = async (page, where) => {
  for (const c of await contrastIssues(page)) out.contrast.push({ where, ...c })
  for (const c of await unlabelledControls(page)) out.unlabelled.push(`${where}: ${c}`)
}
try {
  const { page } = await signIn(browser, { ...cfg, errors: out.errors, viewport: { width: 1100, height: 900 } })
  await page.goto(`${cfg.app}/projects/${cfg.project}`)
  await page.getByRole('link', { name: 'Webhooks' }).click()
  await page.getByText('No webhooks yet.').waitFor()
  await page.getByLabel('Prompt template').fill('Build {{/title}}')
  await page.getByRole('button', { name: 'Create webhook' }).click()
  const secret = (await page.getByLabel('Webhook secret').textContent()).trim()
  const url = (await page.locator('.hook code').first().textContent()).trim()
  out.url = url

  // A sender signs and delivers.
  const body = JSON.stringify({ title: 'a pomodoro timer' })
  const t = Math.floor(Date.now() / 1000)
  const sig = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')
  const path = new URL(url).pathname
  const r = await fetch(`${cfg.app}${path}`, {
    method: 'POST',
    headers: { 'kiln-signature': `t=${t},v1=${sig}`, 'kiln-delivery': 'ui-1', 'content-type': 'application/json' },
    body,
  })
  out.delivery_status = r.status
  await page.getByRole('button', { name: 'Deliveries' }).click()
  await page.locator('.hook-log tbody tr').first().waitFor()
  out.log = await page.locator('.hook-log tbody tr').allInnerTexts()
  await page.getByRole('button', { name: 'Send a test delivery' }).click()
  await page.locator('.hook-log [role="status"]').waitFor()
  out.test_note = await page.locator('.hook-log [role="status"]').textContent()
  await page.locator('.hook-log tbody tr').nth(1).waitFor()
  out.log_after_test = await page.locator('.hook-log tbody tr').count()
  await page.screenshot({ path: `${cfg.shots}/webhooks.png`, fullPage: true })
  await audit(page, 'webhooks')
  await page.getByRole('button', { name: 'Rotate secret' }).click()
  await page.waitForFunction((old) => document.querySelector('[aria-label="Webhook secret"]')?.textContent.trim() !== old, secret)
  out.rotated = (await page.getByLabel('Webhook secret').textContent()).trim() !== secret

  await page.goto(`${cfg.app}/orgs/${cfg.org}/usage`)
  await page.getByRole('heading', { name: 'Totals' }).waitFor()
  out.totals = await page.locator('.usage-totals').textContent()
  out.bars = await page.locator('.usage-chart rect').count()
  out.agents = await page.getByRole('heading', { name: 'By agent' }).locator('..').locator('tbody tr').allInnerTexts()
  await page.screenshot({ path: `${cfg.shots}/usage.png`, fullPage: true })
  await audit(page, 'usage')
  await page.setViewportSize({ width: 375, height: 800 })
  await page.screenshot({ path: `${cfg.shots}/usage-phone.png`, fullPage: true })
  const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  out.phone_overflow = { usage: await overflow() }
  await page.goto(`${cfg.app}/projects/${cfg.project}/webhooks`)
  await page.getByRole('button', { name: 'Deliveries' }).waitFor()
  await page.screenshot({ path: `${cfg.shots}/webhooks-phone.png`, fullPage: true })
  out.phone_overflow.webhooks = await overflow()
} catch (e) {
  out.error = String((e && e.stack) || e)
} finally {
  await browser.close()
}
console.log(JSON.stringify(out))
