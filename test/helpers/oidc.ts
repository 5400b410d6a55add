// People's sign-in for tests: the development OpenID Connect provider (dev/oidc) on a
// loopback port, and a small "browser" that drives the real flow over HTTP — the gateway by
// app.inject, the provider by fetch — following redirects by hand and submitting the
// provider's login form. Cookies are kept per side, as a browser would.
//
//   const oidc = await startDevOidc()
//   const h = await startNode({ env: peopleEnv(oidc.issuer) })
//   const b = new Browser(h.app)
//   const s = await b.signIn('police')          // → GET /v1/session's body (csrfToken …)
//   await b.gateway('POST', '/v1/…', { headers: { 'x-csrf-token': s.csrfToken }, payload })
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { startDevOidcProvider, type DevOidcOptions } from '../../dev/oidc/provider.js'
import { DEV_PASSWORD } from '../../dev/oidc/people.js'

export { DEV_PEOPLE, DEV_TEST_PEOPLE, DEV_PASSWORD } from '../../dev/oidc/people.js'
export { DEV_CLIENT_ID, DEV_CLIENT_SECRET, DEV_KEY_CLIENT_ID } from '../../dev/oidc/provider.js'

export interface DevOidcHandle {
  issuer: string
  close(): Promise<void>
}

/** The development provider on a free loopback port (or `port`). */
export async function startDevOidc(opts: DevOidcOptions = {}): Promise<DevOidcHandle> {
  const p = await startDevOidcProvider({ port: 0, ...opts })
  return { issuer: p.issuer, close: p.close }
}

/** startNode() env pointing the gateway at a development provider. */
export const peopleEnv = (issuer: string, extra: Record<string, string> = {}): Record<string, string> => ({ TONGBAN_OIDC_ISSUER: issuer, ...extra })

export interface SessionBody {
  person: { sub: string; name: string }
  department: { code: string; name: string }
  region: string
  tier: string
  roles: string[]
  csrfToken: string
  idleExpiresAt: string
  absoluteExpiresAt: string
}

class Jar {
  private readonly cookies = new Map<string, string>()
  take(setCookie: string[] | string | undefined): void {
    for (const line of setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie]) {
      const [pair, ...attrs] = line.split(';')
      const eq = pair.indexOf('=')
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      const gone = value === '' || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a) || (/^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]) < Date.now()))
      if (gone) this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }
  get(name: string): string | undefined {
    return this.cookies.get(name)
  }
  set(name: string, value: string | undefined): void {
    if (value === undefined) this.cookies.delete(name)
    else this.cookies.set(name, value)
  }
  header(): string | undefined {
    return this.cookies.size ? [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') : undefined
  }
}

export class Browser {
  readonly gatewayCookies = new Jar()
  readonly providerCookies = new Jar()
  /** The last callback URL the provider sent this browser to (path and query, gateway side). */
  lastCallback: string | null = null

  constructor(private readonly app: FastifyInstance) {}

  /** A request to the gateway with this browser's cookies. */
  async gateway(method: InjectOptions['method'], url: string, opts: { headers?: Record<string, string>; payload?: unknown } = {}): Promise<LightMyRequestResponse> {
    const cookie = this.gatewayCookies.header()
    const res = await this.app.inject({ method, url, headers: { ...(cookie ? { cookie } : {}), ...opts.headers }, payload: opts.payload as InjectOptions['payload'] })
    this.gatewayCookies.take(res.headers['set-cookie'])
    return res
  }

  /** A request to the provider with this browser's cookies; redirects are not followed. */
  async provider(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Response> {
    const cookie = this.providerCookies.header()
    const res = await fetch(url, {
      method: init.method ?? (init.form ? 'POST' : 'GET'),
      redirect: 'manual',
      headers: { ...(cookie ? { cookie } : {}), ...(init.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
      body: init.form ? new URLSearchParams(init.form).toString() : undefined,
    })
    this.providerCookies.take(res.headers.getSetCookie())
    return res
  }

  /**
   * Follows the provider's redirects from `url` until it sends the browser back to the
   * gateway (returned, as path and query) or shows a page (its HTML, with its URL).
   */
  async followProvider(url: string): Promise<{ back: string } | { page: string; url: string }> {
    let at = url
    for (let hop = 0; hop < 10; hop++) {
      const res = await this.provider(at)
      const location = res.headers.get('location')
      if (res.status >= 300 && res.status < 400 && location) {
        const next = new URL(location, at)
        if (next.origin !== new URL(at).origin) {
          await res.arrayBuffer()
          return { back: next.pathname + next.search }
        }
        at = next.href
        await res.arrayBuffer()
        continue
      }
      return { page: await res.text(), url: at }
    }
    throw new Error(`too many redirects from ${url}`)
  }

  /** Posts the provider's login form shown at `page.url`. */
  async submitLogin(pageUrl: string, page: string, username: string, password = DEV_PASSWORD): Promise<{ back: string } | { page: string; url: string }> {
    const action = /<form[^>]*action="([^"]+)"/.exec(page)?.[1]
    if (!action) throw new Error(`no login form at ${pageUrl}: ${page.slice(0, 200)}`)
    const res = await this.provider(new URL(action.replace(/&#(\d+);/g, (_, c) => String.fromCharCode(Number(c))), pageUrl).href, { form: { username, password } })
    const location = res.headers.get('location')
    if (res.status >= 300 && res.status < 400 && location) {
      await res.arrayBuffer()
      return this.followProvider(new URL(location, pageUrl).href)
    }
    return { page: await res.text(), url: pageUrl }
  }

  /**
   * Up to the provider's answer: GET /workbench/auth/login, the provider's login form, the
   * credentials. Returns the callback (path and query) the provider sends the browser to.
   */
  async authorize(username: string, opts: { returnTo?: string; password?: string } = {}): Promise<string> {
    const login = await this.gateway('GET', `/workbench/auth/login${opts.returnTo ? `?returnTo=${encodeURIComponent(opts.returnTo)}` : ''}`)
    if (login.statusCode !== 302) throw new Error(`login: ${login.statusCode} ${login.body}`)
    let step = await this.followProvider(String(login.headers.location))
    if ('page' in step) step = await this.submitLogin(step.url, step.page, username, opts.password)
    if ('page' in step) throw new Error(`the provider did not send ${username} back: ${step.page.slice(0, 300)}`)
    this.lastCallback = step.back
    return step.back
  }

  /** The whole sign-in; throws unless the callback opened a session. Returns GET /v1/session's body. */
  async signIn(username: string, opts: { returnTo?: string; password?: string } = {}): Promise<SessionBody> {
    const callback = await this.authorize(username, opts)
    const res = await this.gateway('GET', callback)
    if (res.statusCode !== 303) throw new Error(`callback for ${username}: ${res.statusCode} ${res.body}`)
    const session = await this.gateway('GET', '/v1/session')
    if (session.statusCode !== 200) throw new Error(`session of ${username}: ${session.statusCode} ${session.body}`)
    return session.json()
  }
}

/** A signed-in person's browser, in one call. */
export async function signIn(app: FastifyInstance, username: string): Promise<{ browser: Browser; session: SessionBody }> {
  const browser = new Browser(app)
  return { browser, session: await browser.signIn(username) }
}
