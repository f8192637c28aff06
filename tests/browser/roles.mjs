// What each role gets in the workspace: a writer has a terminal on the sandbox (and `ls`
// lists the app's files); a client member sees no terminal, cannot save and cannot prompt.
// Driven by tests/generate/ui.rs; prints one JSON report.
import { launch, openProject } from './launch.mjs'

const cfg = JSON.parse(process.argv[2])
const browser = await launch()
const out = { steps: [] }
const step = (name) => out.steps.push(name)
const open = async (who) => (await openProject(browser, { app: cfg.app, project: cfg.project, ...who })).page
try {
  const owner = await open(cfg.owner)
  await owner.getByRole('tab', { name: 'Terminal' }).click()
  await owner.getByText('Connected to the sandbox').waitFor({ timeout: 30_000 })
  await owner.locator('.term-host').click()
  await owner.keyboard.type('ls\n')
  await owner.locator('.term-host').getByText('index.html').first().waitFor({ timeout: 15_000 })
  step('ls in the terminal')
  await owner.screenshot({ path: `${cfg.shots}/terminal.png` })
  await owner.getByRole('tab', { name: 'Preview' }).click()
  await owner.getByRole('button', { name: 'Restart server' }).click()
  await owner.getByRole('button', { name: 'Restart server' }).waitFor({ timeout: 60_000 })
  await owner.frameLocator('iframe[title="Preview"]').getByText('Tally').first().waitFor({ timeout: 60_000 })
  step('dev server restarted')

  const client = await open(cfg.client)
  out.client_tabs = await client.getByRole('tab').allTextContents()
  await client.getByRole('tab', { name: 'Preview' }).click()
  await client.frameLocator('iframe[title="Preview"]').getByText('Tally').first().waitFor({ timeout: 60_000 })
  out.client_restart_buttons = await client.getByRole('button', { name: 'Restart server' }).count()
  await client.getByRole('tab', { name: 'Files' }).click()
  await client.getByRole('treeitem', { name: 'main.js' }).click()
  await client.locator('.cm-content').getByText('localStorage').first().waitFor()
  out.client_save_buttons = await client.getByRole('button', { name: 'Save' }).count()
  out.client_editable = await client.locator('.cm-content').getAttribute('contenteditable')
  out.client_message_disabled = await client.getByLabel('Message').isDisabled()
  step('client checked')
} catch (e) {
  out.error = String((e && e.stack) || e)
} finally {
  await browser.close()
}
console.log(JSON.stringify(out))
