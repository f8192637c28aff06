// The dashboard as a person with many projects uses it: newest first, 20 to a page with
// "Load more", rename (a bad name is refused and said why), delete after a confirmation.
// Driven by tests/api/dashboard.rs, which made the projects; prints one JSON report.
import { contrastIssues, launch, signIn, unlabelledControls } from './launch.mjs'

const cfg = JSON.parse(process.argv[2])
const browser = await launch()
const out = { steps: [], errors: [], contrast: [], unlabelled: [] }
const step = (name) => out.steps.push(name)
const names = (page) => page.locator('.projects > li > a').allTextContents()
try {
  const dialogs = []
  const { page } = await signIn(browser, { ...cfg, errors: out.errors, viewport: { width: 1100, height: 800 } })
  // Record the confirmations too (signIn accepts them).
  page.on('dialog', (d) => dialogs.push(d.message()))
  await page.getByRole('link', { name: cfg.newest }).waitFor()
  out.first_page = await names(page)
  await page.getByRole('button', { name: 'Load more' }).click()
  await page.getByRole('link', { name: cfg.oldest }).waitFor()
  out.all = await names(page)
  out.load_more_left = await page.getByRole('button', { name: 'Load more' }).count()
  step('paged')
  await page.evaluate(() => scrollTo(0, 0))
  await page.screenshot({ path: `${cfg.shots}/dashboard-projects.png` })
  for (const theme of ['light', 'dark']) {
    if (theme === 'dark') await page.getByRole('button', { name: 'Switch to dark theme' }).click()
    for (const c of await contrastIssues(page)) out.contrast.push({ where: `dashboard (${theme})`, ...c })
    for (const c of await unlabelledControls(page)) out.unlabelled.push(`dashboard: ${c}`)
  }
  await page.getByRole('button', { name: 'Switch to light theme' }).click()

  // A name the API refuses: the reason shows and the name stays.
  await page.getByRole('button', { name: `Rename ${cfg.newest}` }).click()
  await page.getByLabel('Project name').fill('   ')
  await page.getByRole('button', { name: 'Save name' }).click()
  out.rename_error = await page.getByRole('alert').first().textContent()
  await page.getByLabel('Project name').press('Escape')
  await page.getByRole('link', { name: cfg.newest }).waitFor()
  step('bad name refused')

  await page.getByRole('button', { name: `Rename ${cfg.newest}` }).click()
  await page.getByLabel('Project name').fill(cfg.renamed)
  await page.getByRole('button', { name: 'Save name' }).click()
  await page.getByRole('link', { name: cfg.renamed }).waitFor()
  step('renamed')

  await page.getByRole('button', { name: `Delete ${cfg.doomed}` }).click()
  await page.getByRole('link', { name: cfg.doomed }).waitFor({ state: 'detached' })
  out.dialogs = dialogs
  step('deleted')

  // What the server kept: a reload shows the same.
  await page.reload()
  await page.getByRole('link', { name: cfg.renamed }).waitFor()
  out.after_reload = await names(page)
} catch (e) {
  out.error = String((e && e.stack) || e)
} finally {
  await browser.close()
}
console.log(JSON.stringify(out))
