// A generated app throws as it starts: the error shows in Console, "Fix with AI" sends a
// follow-up carrying it, and once the agent's fix is in, the error is gone and the app runs.
// Driven by tests/generate/ui.rs; prints one JSON report.
import { launch } from './launch.mjs'

const cfg = JSON.parse(process.argv[2])
const browser = await launch()
const out = { steps: [] }
const step = (name) => out.steps.push(name)
try {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage()
  await page.goto(`${cfg.app}/signup`)
  await page.getByLabel('Email').fill(cfg.email)
  await page.getByLabel('Password').fill(cfg.password)
  await page.getByRole('button', { name: 'Create account' }).click()
  await page.getByLabel('Describe your app').fill(cfg.prompt)
  await page.getByRole('button', { name: 'Build' }).click()
  await page.waitForURL(/\/projects\/p_[0-9a-f]{32}$/)
  out.project = page.url().split('/').pop()
  await page.getByText(/Version 1 ready/).waitFor({ timeout: 120_000 })
  step('version 1')

  const frame = page.frameLocator('iframe[title="Preview"]')
  await frame.locator('h1').first().waitFor({ timeout: 60_000 })
  await page.getByRole('tab', { name: /Console/ }).click()
  const problem = page.locator('.problem.runtime', { hasText: cfg.error })
  await problem.waitFor({ timeout: 30_000 })
  out.problem = await problem.textContent()
  step('error in the console')
  await page.screenshot({ path: `${cfg.shots}/console.png` })

  await problem.getByRole('button', { name: 'Fix with AI' }).click()
  await page.locator('.msg.person', { hasText: cfg.error }).waitFor({ timeout: 10_000 })
  step('fix sent')
  await page.getByText(/Version 2 ready/).waitFor({ timeout: 120_000 })
  step('version 2')
  await page.getByRole('tab', { name: 'Preview' }).click()
  await frame.getByText(cfg.fixedText).waitFor({ timeout: 60_000 })
  step('fixed app in the preview')
  await page.getByRole('tab', { name: /Console/ }).click()
  await page.waitForTimeout(1000)
  out.problems_after = await page.locator('.problem.runtime').count()
} catch (e) {
  out.error = String((e && e.stack) || e)
  out.timeline = await browser.contexts()[0]?.pages()[0]?.locator('.timeline').innerText().catch(() => '')
} finally {
  await browser.close()
}
console.log(JSON.stringify(out))
