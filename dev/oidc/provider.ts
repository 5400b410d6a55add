// The development identity provider (OpenID Connect, built on oidc-provider): the five sample
// people of people.ts sign in with a plain Chinese login form. Started by `npm start`
// (main.ts) and by tests (test/helpers/oidc.ts). Never part of the gateway (dev/).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import type { JsonWebKey as JWK } from 'node:crypto'
import { DEV_PASSWORD, DEV_PEOPLE, DEV_TEST_PEOPLE, type DevPerson } from './people.js'
import { loginPage, logoutPage, loggedOutPage } from './pages.js'

export const DEV_CLIENT_ID = 'tongban-workbench'
export const DEV_CLIENT_SECRET = 'tongban-dev-secret'
/** A second client of the same workbench that authenticates by private_key_jwt (its key: devOidcClientKey()). */
export const DEV_KEY_CLIENT_ID = 'tongban-workbench-key'

export interface DevOidcOptions {
  port?: number
  host?: string
  /** The public JWK of the private_key_jwt client (DEV_KEY_CLIENT_ID); without it that client is not registered. */
  keyClientJwk?: JWK
  /** Extra redirect URIs besides any …/workbench/auth/callback on loopback or tongban.test. */
  redirectUris?: string[]
}

export interface DevOidc {
  issuer: string
  port: number
  close(): Promise<void>
}

// oidc-provider warns on import that it prefers Node 22, and on construction that its
// in-memory store is for development only: both true, and harmless here.
async function quietly<T>(make: () => T | Promise<T>): Promise<T> {
  const warn = console.warn
  console.warn = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && /Unsupported runtime|in-memory adapter/.test(args[0])) return
    warn(...args)
  }
  try {
    return await make()
  } finally {
    console.warn = warn
  }
}
const importProvider = () => quietly(async () => (await import('oidc-provider')).default)

/** Lifetimes (seconds), set so the provider does not print a notice for each default it uses. */
const TTL = { Interaction: 600, Session: 8 * 3600, Grant: 8 * 3600, AuthorizationCode: 60, AccessToken: 600, IdToken: 600 }

const DEV_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', 'tongban.test'])
/** Any gateway of this machine (random test ports included) may be the workbench. */
const devUrl = (value: string, path: (p: string) => boolean) => {
  try {
    const u = new URL(value)
    return (u.protocol === 'http:' || u.protocol === 'https:') && DEV_HOSTS.has(u.hostname) && path(u.pathname)
  } catch {
    return false
  }
}

const findPerson = (username: string): DevPerson | undefined => [...DEV_PEOPLE, ...DEV_TEST_PEOPLE].find((p) => p.username === username)

function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (c: string) => {
      body += c
      if (body.length > 10_000) req.destroy()
    })
    req.on('end', () => resolve(new URLSearchParams(body)))
    req.on('error', reject)
  })
}

const html = (res: ServerResponse, status: number, body: string) => {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
  res.end(body)
}

export async function startDevOidcProvider(opts: DevOidcOptions = {}): Promise<DevOidc> {
  const Provider = await importProvider()
  const host = opts.host ?? '127.0.0.1'
  const server: Server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, host, () => resolve())
  })
  const port = (server.address() as { port: number }).port
  const issuer = `http://${host}:${port}`
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const signingKey = { ...(privateKey.export({ format: 'jwk' }) as JWK), kid: 'dev-1', use: 'sig', alg: 'RS256' }

  const baseClient = {
    redirect_uris: ['https://tongban.test/workbench/auth/callback', ...(opts.redirectUris ?? [])],
    post_logout_redirect_uris: ['https://tongban.test/workbench/'],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }
  const clients: object[] = [{ ...baseClient, client_id: DEV_CLIENT_ID, client_secret: DEV_CLIENT_SECRET, token_endpoint_auth_method: 'client_secret_basic' }]
  if (opts.keyClientJwk) {
    clients.push({ ...baseClient, client_id: DEV_KEY_CLIENT_ID, token_endpoint_auth_method: 'private_key_jwt', token_endpoint_auth_signing_alg: opts.keyClientJwk.alg ?? 'RS256', jwks: { keys: [opts.keyClientJwk] } })
  }

  const provider = await quietly(() => new Provider(issuer, {
    ttl: TTL,
    clients: clients as never,
    jwks: { keys: [signingKey as never] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    claims: { openid: ['sub'], profile: ['name'], tongban: ['dept_code', 'dept_name', 'region', 'roles'] },
    scopes: ['openid', 'profile', 'tongban'],
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx: { body: unknown }, form: string) => {
          ctx.body = logoutPage(form)
        },
        postLogoutSuccessSource: async (ctx: { body: unknown }) => {
          ctx.body = loggedOutPage()
        },
      },
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(_ctx, sub) {
      const p = findPerson(sub)
      if (!p) return undefined
      return {
        accountId: sub,
        claims: async () => ({ sub, name: p.name, dept_code: p.department.code, dept_name: p.department.name, region: p.region, roles: p.roles }),
      }
    },
    // One first-party client: consent is implied, never asked.
    async loadExistingGrant(ctx) {
      const session = ctx.oidc.session!
      const clientId = ctx.oidc.client!.clientId
      const grantId = session.grantIdFor(clientId)
      if (grantId) {
        const found = await ctx.oidc.provider.Grant.find(grantId)
        if (found) return found
      }
      const grant = new ctx.oidc.provider.Grant({ clientId, accountId: session.accountId! })
      grant.addOIDCScope('openid profile tongban')
      await grant.save()
      session.grantIdFor(clientId, grant.jti)
      return grant
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html'
      ctx.body = `<!doctype html><meta charset="utf-8"><title>登录出错 Sign-in error</title><h1>登录出错</h1><p>${String(out.error).replace(/[<>&"]/g, '')}</p>`
    },
  }))
  const Client = provider.Client.prototype as { redirectUriAllowed(v: string): boolean; postLogoutRedirectUriAllowed(v: string): boolean }
  const exactRedirect = Client.redirectUriAllowed
  const exactLogout = Client.postLogoutRedirectUriAllowed
  Client.redirectUriAllowed = function (v: string) {
    return exactRedirect.call(this, v) || devUrl(v, (p) => p.endsWith('/workbench/auth/callback'))
  }
  Client.postLogoutRedirectUriAllowed = function (v: string) {
    return exactLogout.call(this, v) || devUrl(v, (p) => p.startsWith('/workbench') || p === '/')
  }
  const oidc = provider.callback()

  async function interaction(req: IncomingMessage, res: ServerResponse, uid: string, action: string | undefined) {
    const details = await provider.interactionDetails(req, res)
    if (details.uid !== uid) return html(res, 400, loginPage(uid, '登录会话已失效，请重新开始。'))
    if (req.method === 'GET' && action === undefined) return html(res, 200, loginPage(uid))
    if (req.method === 'POST' && action === 'login') {
      const form = await readForm(req)
      const person = findPerson(form.get('username') ?? '')
      if (!person || form.get('password') !== DEV_PASSWORD) return html(res, 200, loginPage(uid, '用户名或密码错误。Wrong user name or password.'))
      return provider.interactionFinished(req, res, { login: { accountId: person.username } }, { mergeWithLastSubmission: false })
    }
    return html(res, 404, loginPage(uid, '无此页面。'))
  }

  server.on('request', (req, res) => {
    const m = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?$/.exec((req.url ?? '').split('?')[0])
    if (!m) return oidc(req, res)
    interaction(req, res, m[1], m[2]).catch((e: Error) => {
      if (!res.headersSent) html(res, 400, loginPage(m[1], `登录会话已失效，请从工作台重新登录。(${e.name})`))
    })
  })
  return {
    issuer,
    port,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    }),
  }
}
