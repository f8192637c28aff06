// Debian's Chromium as a person's browser, for the browser tests.
import { chromium } from 'playwright-core'

export function launch() {
  return chromium.launch({
    executablePath: process.env.KILN_CHROMIUM || '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // Replaces Playwright's own --disable-features list (the last such switch wins), which
      // turns off third-party storage partitioning: every current browser partitions the
      // storage of a cross-site frame, so a framed preview has its own localStorage; without
      // it, this Chromium (third-party cookies blocked) denies the frame any storage.
      // LocalNetworkAccessChecks: pages the tests answer themselves (page.route) have no
      // address, so Chromium counts them as public and refuses their frames of loopback
      // hosts; real pages here are loopback → loopback (public → public in production).
      '--disable-features=Translate,LocalNetworkAccessChecks',
    ],
  })
}

/**
 * A person signs in, in a browser context of their own (confirmations accepted, page errors
 * collected into `errors` if given), and is on the dashboard.
 */
export async function signIn(browser, { app, email, password, errors, viewport = { width: 1280, height: 800 } }) {
  const context = await browser.newContext({ viewport })
  const page = await context.newPage()
  page.on('dialog', (d) => d.accept())
  if (errors) page.on('pageerror', (e) => errors.push(String(e)))
  await page.goto(`${app}/signin`)
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  // Under a full test run's load the first sign-in can take longer than the default 30 s.
  await page.getByText('Projects', { exact: true }).waitFor({ timeout: 60_000 })
  return { context, page }
}

/** A person signs in (in a context of their own) and opens a project's workspace. */
export async function openProject(browser, { app, email, password, project }) {
  const { context, page } = await signIn(browser, { app, email, password })
  await page.goto(`${app}/projects/${project}`)
  await page.getByRole('status').getByText('Live').waitFor()
  return { context, page }
}

/**
 * WCAG 2.1 AA contrast (1.4.3) of every visible text on the page, in the theme it shows:
 * text against the background it sits on (ancestors' backgrounds composited, opacity
 * applied), 4.5:1, or 3:1 for large text. Disabled controls are exempt, as WCAG says.
 * Returns the failures, one per kind of element and colour pair.
 */
export function contrastIssues(page) {
  return page.evaluate(() => {
    const rgba = (c) => {
      const m = c.match(/rgba?\(([^)]+)\)/)
      if (!m) return null
      const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number)
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]
    }
    const over = (top, under) => {
      const a = top[3]
      return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)).concat(1)
    }
    const lum = ([r, g, b]) => {
      const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4)
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b)
    }
    const ratio = (x, y) => {
      const [hi, lo] = [lum(x), lum(y)].sort((a, b) => b - a)
      return (hi + 0.05) / (lo + 0.05)
    }
    // The backdrop of an element: its own and its ancestors' backgrounds, top down.
    const backdrop = (el) => {
      const layers = []
      for (let n = el; n; n = n.parentElement) {
        const s = getComputedStyle(n)
        if (s.backgroundImage !== 'none') return null
        const c = rgba(s.backgroundColor)
        if (c && c[3] > 0) {
          layers.push(c)
          if (c[3] === 1) break
        }
      }
      return layers.reduceRight((under, top) => over(top, under), [255, 255, 255, 1])
    }
    const opacity = (el) => {
      let o = 1
      for (let n = el; n; n = n.parentElement) o *= Number(getComputedStyle(n).opacity)
      return o
    }
    const found = new Map()
    for (const el of document.body.querySelectorAll('*')) {
      const text = [...el.childNodes]
        .filter((n) => n.nodeType === 3)
        .map((n) => n.textContent.trim())
        .join(' ')
        .trim()
      if (!text || !el.getClientRects().length) continue
      if (el.closest('[aria-hidden="true"], :disabled, [aria-disabled="true"], .sr-only')) continue
      const s = getComputedStyle(el)
      if (s.visibility === 'hidden') continue
      const bg = backdrop(el)
      const fg0 = rgba(s.color)
      if (!bg || !fg0 || opacity(el) === 0) continue
      const fg = over([fg0[0], fg0[1], fg0[2], fg0[3] * opacity(el)], bg)
      const size = parseFloat(s.fontSize)
      const large = size >= 24 || (size >= 18.66 && Number(s.fontWeight) >= 700)
      const need = large ? 3 : 4.5
      const r = ratio(fg, bg)
      if (r + 1e-6 >= need) continue
      const kind = `${el.tagName.toLowerCase()}${[...el.classList].map((c) => '.' + c).join('')}`
      const key = `${kind} ${fg} ${bg}`
      if (!found.has(key))
        found.set(key, { element: kind, text: text.slice(0, 40), ratio: Math.round(r * 100) / 100, need, fg: fg.slice(0, 3), bg: bg.slice(0, 3) })
    }
    return [...found.values()]
  })
}

/**
 * WCAG 2.1 4.1.2 / 1.3.1 basics: every visible control has an accessible name (its text, a
 * label, `aria-label`, `aria-labelledby` or a title). Returns the controls without one.
 */
export function unlabelledControls(page) {
  return page.evaluate(() => {
    const named = (el) => {
      const by = el.getAttribute('aria-labelledby')
      if (by && by.split(/\s+/).some((id) => document.getElementById(id)?.textContent.trim())) return true
      if (el.getAttribute('aria-label')?.trim() || el.getAttribute('title')?.trim()) return true
      if (el.labels && [...el.labels].some((l) => l.textContent.trim())) return true
      const tag = el.tagName.toLowerCase()
      if (tag === 'input' || tag === 'textarea' || tag === 'select') return false
      return !!el.textContent.trim()
    }
    const out = []
    for (const el of document.querySelectorAll('button, input, textarea, select, a[href], [role="tab"], [role="treeitem"]')) {
      if (!el.getClientRects().length || el.closest('[aria-hidden="true"]') || el.type === 'hidden') continue
      if (!named(el)) out.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${[...el.classList].map((c) => '.' + c).join('')}`)
    }
    return [...new Set(out)]
  })
}
