// A new person builds an app in Kiln's UI, in Debian's Chromium: signs up, describes an
// app, watches the plan and the files arrive, opens a file, sees the app in the preview and
// version 1 in Versions. Driven by tests/generate/ui.rs; prints one JSON report and saves
// screenshots into cfg.shots.
import { contrastIssues, launch, unlabelledControls } from './launch.mjs'

const cfg = JSON.parse(process.argv[2])
const browser = await launch()
const out = { steps: [], contrast: [], unlabelled: [] }
let page
const step = (name) => out.steps.push(name)
const shot = (page, name) => page.screenshot({ path: `${cfg.shots}/${name}.png` })
async function audit(page, where) {
  for (const issue of await contrastIssues(page)) out.contrast.push({ where, ...issue })
  for (const control of await unlabelledControls(page)) out.unlabelled.push(`${where}: ${control}`)
}
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  page = await context.newPage()
  const errors = []
  page.on('pageerror', (e) => errors.push(String(e.stack || e)))
  const consoleLog = []
  page.on('console', (m) => consoleLog.push(`${m.type()} ${m.location()?.url ?? ''} ${m.text()}`.slice(0, 300)))
  out.console = consoleLog
  out.errors = errors

  await page.goto(`${cfg.app}/signup`)
  await page.getByLabel('Email').fill(cfg.email)
  await page.getByLabel('Password').fill(cfg.password)
  await page.getByRole('button', { name: 'Create account' }).click()
  await page.getByLabel('Describe your app').waitFor()
  step('signed up')
  await shot(page, 'dashboard')
  await audit(page, 'dashboard')

  await page.getByLabel('Describe your app').fill(cfg.prompt)
  await page.getByRole('button', { name: 'Build' }).click()
  await page.waitForURL(/\/projects\/p_[0-9a-f]{32}$/)
  out.project = page.url().split('/').pop()
  step('project created')

  // The plan opens by itself as it arrives; files fill the tree as the model writes them.
  await page.locator('details.blueprint[open]').getByText(cfg.appName).waitFor({ timeout: 60_000 })
  step('blueprint shown')
  await page.locator('.msg.person').getByText(cfg.prompt).waitFor()
  step('prompt in the chat')
  await page.getByRole('tab', { name: 'Files' }).click()
  await page.getByRole('treeitem', { name: cfg.file }).waitFor({ timeout: 60_000 })
  step('file in the tree')
  await shot(page, 'workspace-generating')
  await page.getByRole('treeitem', { name: cfg.file }).click()
  await page.locator('.cm-content').getByText(cfg.fileText).waitFor({ timeout: 60_000 })
  step('file in the editor')

  // The app runs in the preview frame, on its own origin.
  await page.getByRole('tab', { name: 'Preview' }).click()
  const frame = page.frameLocator('iframe[title="Preview"]')
  await frame.getByText(cfg.previewText).first().waitFor({ timeout: 120_000 })
  out.frame_src = await page.locator('iframe[title="Preview"]').getAttribute('src')
  step('app in the preview')

  await page.getByText(/Version 1 ready/).waitFor({ timeout: 120_000 })
  await page.getByRole('tab', { name: 'Versions' }).click()
  await page.getByText('v1', { exact: true }).waitFor({ timeout: 30_000 })
  step('version 1 listed')
  await shot(page, 'workspace-versions')

  // Publish version 1: the panel names the site; its link opens it on its own host.
  await page.getByRole('button', { name: 'Publish', exact: true }).first().click()
  const panel = page.locator('#publish-panel')
  await panel.getByRole('button', { name: 'Publish', exact: true }).click()
  const siteLink = page.locator('a.site-link')
  await siteLink.waitFor({ timeout: 120_000 })
  await panel.getByText(/v1 is live/).waitFor({ timeout: 30_000 })
  await audit(page, 'publish panel')
  await shot(page, 'workspace-published')
  out.site_url = await siteLink.getAttribute('href')
  step('published')
  await page.getByRole('button', { name: 'Publish', exact: true }).first().click()
  const site = await page.context().newPage()
  await site.goto(out.site_url)
  await site.getByText(cfg.previewText).first().waitFor({ timeout: 30_000 })
  await site.screenshot({ path: `${cfg.shots}/site.png` })
  out.site_cookies = (await page.context().cookies(out.site_url)).map((c) => c.name)
  await site.close()
  await page.getByRole('tab', { name: 'Preview' }).click()
  // The dev server restarts when the app is served; the frame reloads with it.
  await frame.getByText(cfg.previewText).first().waitFor({ timeout: 60_000 })
  // The frame's text is there before its process has painted it; let it settle for the shot.
  await page.waitForTimeout(1500)
  await shot(page, 'workspace-done')

  // Every model call shows what it cost, in the step it was made for.
  out.usage = await page.locator('.usage').allTextContents()

  // Contrast in both themes, on every pane.
  for (const theme of ['light', 'dark']) {
    if (theme === 'dark') await page.getByRole('button', { name: 'Switch to dark theme' }).click()
    for (const tab of ['Files', 'Preview', 'Console', 'Versions']) {
      await page.getByRole('tab', { name: tab }).click()
      await page.waitForTimeout(200)
      await audit(page, `workspace ${tab} (${theme})`)
    }
  }
  await page.getByRole('tab', { name: 'Files' }).click()
  await page.getByRole('treeitem', { name: cfg.file }).click()
  await shot(page, 'workspace-dark')
  await page.getByRole('button', { name: 'Switch to light theme' }).click()

  await page.setViewportSize({ width: 375, height: 740 })
  await page.waitForTimeout(300)
  await shot(page, 'phone')
  // Every pane's tab is within reach at phone width (not cut off by the screen's edge).
  out.phone_tabs = []
  for (const tab of await page.getByRole('tab').all()) {
    const box = await tab.boundingBox()
    const name = (await tab.textContent()).trim()
    out.phone_tabs.push({ name, visible: !!box && box.x >= 0 && box.x + box.width <= 375 })
  }
  await audit(page, 'workspace (phone)')
  out.status = await page.getByRole('status').first().textContent()
} catch (e) {
  out.error = String((e && e.stack) || e)
  // What the page showed when it went wrong.
  await page?.screenshot({ path: `${cfg.shots}/workspace-failure.png` }).catch(() => {})
  out.at_failure = await page
    ?.evaluate(() => ({
      tab: document.querySelector('[role="tab"][aria-selected="true"]')?.textContent,
      frame: document.querySelector('iframe[title="Preview"]')?.getBoundingClientRect().toJSON(),
      status: document.querySelector('[role="status"]')?.textContent,
    }))
    .catch((err) => String(err))
} finally {
  await browser.close()
}
console.log(JSON.stringify(out))
