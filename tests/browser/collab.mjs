// Two members in one project. A follow-up from one changes the app (the preview shows it, the
// diff of v1→v2 shows it); restoring v1 brings the old app back in both browsers; an edit
// typed by one appears in the other's editor as it is typed; both type at once and end with
// the same text, each seeing the other's cursor.
// Driven by tests/generate/ui.rs; prints one JSON report.
import { launch, openProject } from './launch.mjs'

const cfg = JSON.parse(process.argv[2])
const browser = await launch()
const out = { steps: [] }
const step = (name) => out.steps.push(name)
const open = async (who) => (await openProject(browser, { app: cfg.app, project: cfg.project, ...who })).page
/** Clicks + in the app and returns by how much the count grew. */
const step_of_plus = async (page) => {
  await page.getByRole('tab', { name: 'Preview' }).click()
  const app = page.frameLocator('iframe[title="Preview"]')
  await app.locator('#plus').waitFor({ timeout: 60_000 })
  const before = Number(await app.locator('#count').textContent())
  await app.locator('#plus').click()
  await page.waitForTimeout(300)
  return Number(await app.locator('#count').textContent()) - before
}
/** The editor's text, without the other people's cursor widgets drawn into it. */
const editorText = (page) =>
  page.locator('.cm-content').evaluate((el) =>
    [...el.querySelectorAll('.cm-line')]
      .map((line) => {
        const copy = line.cloneNode(true)
        copy.querySelectorAll('.cm-ySelectionCaret').forEach((c) => c.remove())
        return copy.textContent.replace(/\u2060/g, '')
      })
      .join('\n'),
  )
try {
  const a = await open(cfg.owner)
  const b = await open(cfg.member)
  step('both live')
  out.plus_v1 = await step_of_plus(a)

  await a.getByLabel('Message').fill('make the button count by two')
  await a.getByRole('button', { name: 'Send' }).click()
  await a.getByText(/Version 2 ready/).waitFor({ timeout: 120_000 })
  await b.getByText(/Version 2 ready/).waitFor({ timeout: 30_000 })
  step('follow-up done')
  await a.waitForTimeout(1500)
  out.plus_v2 = await step_of_plus(a)

  await a.getByRole('tab', { name: 'Versions' }).click()
  await a.locator('.version', { hasText: 'v2' }).getByRole('button', { name: 'Changes' }).click()
  out.diff = await a.locator('.diff').innerText({ timeout: 30_000 })
  await a.screenshot({ path: `${cfg.shots}/versions-diff.png` })
  step('diff shown')
  await a.locator('.version', { hasText: 'v1' }).getByRole('button', { name: 'Files' }).click()
  await a.getByRole('tree', { name: 'Version 1 files' }).getByRole('treeitem', { name: 'main.js' }).click()
  await a.locator('pre.version-file').getByText('n += 1;').waitFor({ timeout: 10_000 })
  step('v1 file read')

  await a.locator('.version', { hasText: 'v1' }).getByRole('button', { name: 'Restore' }).click()
  await a.getByText(/^Version 3:/).waitFor({ timeout: 30_000 })
  await b.getByText(/^Version 3:/).waitFor({ timeout: 30_000 })
  step('restored')
  await a.waitForTimeout(1500)
  out.plus_restored_a = await step_of_plus(a)
  out.plus_restored_b = await step_of_plus(b)

  // Co-editing: what one types shows in the other's editor as it is typed.
  for (const p of [a, b]) {
    await p.getByRole('tab', { name: 'Files' }).click()
    await p.getByRole('treeitem', { name: 'style.css' }).click()
    await p.locator('.cm-content').getByText('font-family').waitFor()
  }
  await a.locator('.cm-content').click()
  await a.keyboard.press('Control+End')
  await a.keyboard.type('\n/* from A */')
  const t0 = Date.now()
  await b.locator('.cm-content').getByText('/* from A */').waitFor({ timeout: 5_000 })
  out.edit_seen_ms = Date.now() - t0
  step('edit seen by the other')

  // Both type at once, at two ends of the file: both end with both people's words.
  await b.locator('.cm-content').click()
  await b.keyboard.press('Control+Home')
  await a.locator('.cm-content').click()
  await a.keyboard.press('Control+End')
  await Promise.all([
    a.keyboard.type('\n/* A typing along */', { delay: 25 }),
    b.keyboard.type('/* B at the top */\n', { delay: 25 }),
  ])
  const both = (t) => t.includes('/* A typing along */') && t.includes('/* B at the top */')
  for (let i = 0; i < 50 && !(both(await editorText(a)) && (await editorText(a)) === (await editorText(b))); i++) {
    await a.waitForTimeout(200)
  }
  out.final_a = await editorText(a)
  out.final_b = await editorText(b)
  step('typed together')
  // Each sees the other's cursor, named as the room knows them.
  await a.locator('.cm-ySelectionInfo').first().waitFor({ state: 'attached', timeout: 5_000 })
  out.cursor_names_a = await a.locator('.cm-ySelectionInfo').allTextContents()
  await b.locator('.cm-ySelectionInfo').first().waitFor({ state: 'attached', timeout: 5_000 })
  out.cursor_names_b = await b.locator('.cm-ySelectionInfo').allTextContents()
  await a.locator('.cm-ySelectionCaret').first().hover()
  await a.screenshot({ path: `${cfg.shots}/coediting.png` })
  // Saving confirms the room has it all.
  await a.keyboard.press('Control+s')
  await a.locator('.editor-bar').getByText('Saved').waitFor({ timeout: 5_000 })
  step('saved')
} catch (e) {
  out.error = String((e && e.stack) || e)
  for (const [i, p] of browser.contexts().map((c) => c.pages()[0]).entries()) {
    out[`editor_${i}`] = await p?.locator('.cm-content').innerText().catch(() => '')
  }
} finally {
  await browser.close()
}
console.log(JSON.stringify(out))
