// Org membership in the UI: an owner invites someone by email from the org's page; the
// invitee sees the invitation on their dashboard and accepts it; the owner then lists them
// as a member. Driven by tests/api/orgs.rs; prints one JSON report.
import { launch } from './launch.mjs'

const cfg = JSON.parse(process.argv[2])
const browser = await launch()
const out = { steps: [], errors: [] }
const step = (name) => out.steps.push(name)
const person = async (email) => {
  const page = await (await browser.newContext({ viewport: { width: 1100, height: 700 } })).newPage()
  page.on('dialog', (d) => d.accept())
  page.on('pageerror', (e) => out.errors.push(String(e)))
  await page.goto(`${cfg.app}/signup`)
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(cfg.password)
  await page.getByRole('button', { name: 'Create account' }).click()
  await page.getByLabel('Describe your app').waitFor()
  return page
}
try {
  const owner = await person(cfg.owner)
  const org = await owner.evaluate(async () => {
    const r = await fetch('/api/orgs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Agency' }) })
    return (await r.json()).id
  })
  await owner.goto(`${cfg.app}/orgs/${org}`)
  await owner.getByRole('heading', { name: 'Agency' }).waitFor()
  await owner.getByRole('textbox', { name: 'Email' }).fill(cfg.guest)
  await owner.getByRole('button', { name: 'Invite' }).click()
  await owner.getByText(`${cfg.guest} — member`).waitFor()
  step('invited')

  const guest = await person(cfg.guest)
  await guest.getByText('invites you to').waitFor()
  await guest.getByRole('button', { name: 'Accept' }).click()
  await guest.getByRole('combobox', { name: 'Org' }).locator('option', { hasText: 'Agency' }).waitFor({ state: 'attached' })
  out.guest_orgs = await guest.getByRole('combobox', { name: 'Org' }).locator('option').allTextContents()
  step('accepted')

  await owner.reload()
  await owner.getByRole('cell', { name: cfg.guest }).waitFor()
  out.guest_role = await owner.getByRole('combobox', { name: `Role of ${cfg.guest}` }).inputValue()
  step('listed')
} catch (e) {
  out.error = String((e && e.stack) || e)
} finally {
  await browser.close()
}
console.log(JSON.stringify(out))
