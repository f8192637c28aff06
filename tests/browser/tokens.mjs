// API tokens in the UI: a person makes a read token, sees it once, a script uses it, the
// person revokes it and the script is refused. Driven by tests/api/tokens.rs.
import { contrastIssues, launch, signIn, unlabelledControls } from './launch.mjs'

const cfg = JSON.parse(process.argv[2])
const browser = await launch()
const out = { errors: [], contrast: [], unlabelled: [] }
const script = async (token) => (await fetch(`${cfg.app}/api/me`, { headers: { authorization: `Bearer ${token}` } })).status
try {
  const { page } = await signIn(browser, { ...cfg, errors: out.errors, viewport: { width: 1100, height: 800 } })
  await page.getByRole('link', { name: 'API tokens' }).click()
  await page.getByText('No tokens yet.').waitFor()
  await page.getByLabel('Token name').fill('CI read')
  await page.getByLabel('Expires').selectOption('30')
  await page.getByRole('button', { name: 'Create token' }).click()
  const token = (await page.getByLabel('New token').textContent()).trim()
  out.token_shape = /^kiln_pat_[0-9a-f]{64}$/.test(token)
  // The list reloads after the token is shown.
  await page.locator('table.tokens tbody tr').first().waitFor()
  out.listed = await page.locator('table.tokens tbody tr').allInnerTexts()
  out.status_with_token = await script(token)
  await page.screenshot({ path: `${cfg.shots}/tokens.png` })
  for (const c of await contrastIssues(page)) out.contrast.push(c)
  out.unlabelled = await unlabelledControls(page)
  await page.setViewportSize({ width: 375, height: 800 })
  await page.screenshot({ path: `${cfg.shots}/tokens-phone.png`, fullPage: true })
  // Nothing wider than the screen: no sideways scrolling at phone width.
  out.phone_overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  if (out.phone_overflow > 0) {
    // Which elements stick out, for the failure message.
    out.too_wide = await page.evaluate(() => [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
      .slice(0, 8)
      .map((e) => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().width)}px`))
  }
  await page.setViewportSize({ width: 1100, height: 800 })
  await page.getByRole('button', { name: 'Revoke CI read' }).click()
  await page.getByText('No tokens yet.').waitFor()
  out.status_after_revoke = await script(token)
  // Shown once: a reload lists it no more with its secret (and here, not at all).
  await page.reload()
  await page.getByText('No tokens yet.').waitFor()
  out.secret_after_reload = (await page.content()).includes(token)
} catch (e) {
  out.error = String((e && e.stack) || e)
} finally {
  await browser.close()
}
console.log(JSON.stringify(out))
