// The workbench in headless Chromium against a real node and the development OpenID Connect
// provider: the node on a free loopback port known before it is built (the provider sends the
// browser back to it), a fresh Chromium profile, people signed in through the provider's login
// page and out through the workbench, screenshots into test/artifacts/workbench/.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { startNode, ROOT, type Harness } from './harness.js'
import { startDevOidc, peopleEnv, DEV_PASSWORD, type DevOidcHandle } from './oidc.js'
import { freePort } from '../../scripts/free-port.mjs'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
export const ARTIFACTS = join(ROOT, 'test/artifacts/workbench')

/** Why the workbench cannot be driven here (no Chromium, not built), or null. */
export function workbenchMissing(): string | null {
  if (!existsSync(CHROMIUM)) return `headless Chromium is needed at ${CHROMIUM} (Debian: apt-get install -y chromium; or set CHROMIUM_PATH)`
  if (!existsSync(join(ROOT, 'dist/workbench/index.html'))) return 'the workbench is not built: run node scripts/build-workbench.mjs (npm test does it)'
  return null
}


type Viewport = { width: number; height: number }

export interface WorkbenchRig {
  h: Harness
  oidc: DevOidcHandle
  base: string
  /** Script errors of every page, and every URL requested. */
  errors: string[]
  requests: string[]
  open(path: string, viewport?: Viewport): Promise<Page>
  shot(page: Page, name: string): Promise<void>
  /** From the workbench's sign-in page through the provider's login form (where the provider sends the browser next is the caller's). */
  providerLogin(page: Page, username: string): Promise<void>
  /** A person signs in (one at a time: the browser holds one session) and lands on `path`. */
  signIn(username: string, name: string, path?: string, viewport?: Viewport): Promise<Page>
  /** 退出登录: the session ends here and at the provider. */
  signOut(page: Page): Promise<void>
  close(): Promise<void>
}

export async function startWorkbench(tag: string, env: Record<string, string> = {}): Promise<WorkbenchRig> {
  mkdirSync(ARTIFACTS, { recursive: true })
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const oidc = await startDevOidc()
  const h = await startNode({
    tag,
    env: peopleEnv(oidc.issuer, {
      TONGBAN_OIDC_REDIRECT_URL: `${base}/workbench/auth/callback`,
      TONGBAN_OIDC_POST_LOGOUT_URL: `${base}/workbench/`,
      TONGBAN_SESSION_COOKIE_SECURE: 'false',
      ...env,
    }),
  })
  await h.app.listen({ port, host: '127.0.0.1' })
  const profile = mkdtempSync(join(tmpdir(), `tongban-${tag}-chromium-`))
  const browser: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
    acceptDownloads: true,
  })
  const errors: string[] = []
  const requests: string[] = []

  async function open(path: string, viewport?: Viewport): Promise<Page> {
    const page = await browser.newPage()
    if (viewport) await page.setViewportSize(viewport)
    page.on('pageerror', (e) => errors.push(e.message))
    page.on('request', (r) => requests.push(r.url()))
    const res = await page.goto(`${base}${path}`)
    if (res?.status() !== 200) throw new Error(`${path}: ${res?.status()}`)
    return page
  }
  async function providerLogin(page: Page, username: string): Promise<void> {
    await page.waitForSelector('#signin')
    await page.click('#oidc-login')
    await page.waitForURL((u) => u.href.startsWith(oidc.issuer))
    await page.fill('#username', username)
    await page.fill('#password', DEV_PASSWORD)
    await page.click('form button[type="submit"], button[type="submit"]')
  }
  async function signIn(username: string, name: string, path = '/workbench/catalogue', viewport?: Viewport): Promise<Page> {
    const page = await open(path, viewport)
    await providerLogin(page, username)
    await page.waitForSelector('header[data-state="signed-in"]')
    if (new URL(page.url()).pathname !== path) throw new Error(`${username} came back to ${page.url()}, not ${path}`)
    const who = await page.textContent('#who')
    if (!who?.includes(name)) throw new Error(`the header names ${who}, not ${name}`)
    return page
  }
  async function signOut(page: Page): Promise<void> {
    await page.click('#logout')
    await page.waitForURL((u) => u.href.startsWith(oidc.issuer))
    await page.click('button[name="logout"]')
    await page.waitForURL((u) => u.href.startsWith(base))
    await page.waitForSelector('#signin')
    const status = await page.evaluate(async () => (await fetch('/v1/session')).status)
    if (status !== 401) throw new Error(`after signing out GET /v1/session answers ${status}`)
    await page.close()
  }
  return {
    h, oidc, base, errors, requests, open, providerLogin, signIn, signOut,
    shot: async (page, name) => { await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true }) },
    async close() {
      await browser.close()
      await h.close()
      await oidc.close()
      rmSync(profile, { recursive: true, force: true })
    },
  }
}
