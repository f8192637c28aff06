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

/** A person signs in (in a context of their own) and opens a project's workspace. */
export async function openProject(browser, { app, email, password, project }) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  const page = await context.newPage()
  page.on('dialog', (d) => d.accept())
  await page.goto(`${app}/signin`)
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByText('Projects', { exact: true }).waitFor()
  await page.goto(`${app}/projects/${project}`)
  await page.getByRole('status').getByText('Live').waitFor()
  return { context, page }
}
