// People's sign-in at the workbench (docs/people.md): OpenID Connect login and callback,
// sign-out (RP-initiated logout at the provider), GET /v1/session, and the session cookie
// that app.authenticate (src/auth/plugin.ts) accepts in place of a bearer token.
import fp from 'fastify-plugin'
import cookie from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Problem } from '../problems/problem.js'
import { problemResponses } from '../problems/schema.js'
import type { Principal } from '../auth/principal.js'
import { missingClaims, personOf } from './claims.js'
import { signInFailurePage } from './pages.js'
import { operatorIdOf, personPrincipal } from './principal.js'
import { RelyingParty } from './relying-party.js'
import { PendingSignIns, SessionStore, sameToken, type PersonSession } from './sessions.js'

declare module 'fastify' {
  interface FastifyInstance {
    people: {
      /** A session cookie is present (the request is the cookie's to authenticate). */
      hasCookie(request: FastifyRequest): boolean
      /** The cookie's session → request.principal (401 missing/expired; 403 AUTH_CSRF on a state-changing request without the token). */
      authenticate(request: FastifyRequest): Promise<Principal>
    }
  }
}

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
const RETURN_TO = '^/workbench(?:[/?#][^\\s\\\\]*)?$'
const DEFAULT_RETURN = '/workbench/'

const sessionView = {
  type: 'object',
  additionalProperties: false,
  required: ['person', 'department', 'region', 'tier', 'roles', 'csrfToken', 'idleExpiresAt', 'absoluteExpiresAt'],
  properties: {
    person: { type: 'object', additionalProperties: false, required: ['sub', 'name'], properties: { sub: { type: 'string' }, name: { type: 'string' } } },
    department: { type: 'object', additionalProperties: false, required: ['code', 'name'], properties: { code: { type: 'string', description: 'GB 32100 credit code' }, name: { type: 'string' } } },
    region: { type: 'string', description: 'GB/T 2260 region of the department' },
    tier: { type: 'string', enum: ['national', 'province', 'city', 'county'] },
    roles: { type: 'array', items: { type: 'string', enum: ['consumer', 'provider', 'catalog-admin', 'auditor', 'operator'] } },
    csrfToken: { type: 'string', description: 'send as header x-csrf-token on every POST, PUT, PATCH and DELETE made with the session cookie' },
    idleExpiresAt: { type: 'string', format: 'date-time', description: 'the session ends then unless used before (each request moves it on)' },
    absoluteExpiresAt: { type: 'string', format: 'date-time', description: 'the session ends then at the latest' },
  },
} as const

const view = (s: PersonSession) => ({
  person: s.person,
  department: s.department,
  region: s.region,
  tier: s.tier,
  roles: s.roles,
  csrfToken: s.csrfToken,
  idleExpiresAt: new Date(s.idleExpiresAt).toISOString(),
  absoluteExpiresAt: new Date(s.absoluteExpiresAt).toISOString(),
})

const wantsHtml = (request: FastifyRequest) => {
  const accept = request.headers.accept ?? ''
  return accept.includes('text/html') && !accept.includes('application/json')
}
const wantsJson = (request: FastifyRequest) => (request.headers.accept ?? '').includes('application/json')

export default fp(
  async function people(app) {
    const cfg = app.config.people
    const cookieName = cfg.cookieName
    const flowCookie = `${cookieName}_signin`
    await app.register(cookie)
    const sessions = new SessionStore(app.redis, { idleMs: cfg.idleSeconds * 1000, absoluteMs: cfg.absoluteSeconds * 1000 })
    const pending = new PendingSignIns(app.redis)
    const cookieOptions = { httpOnly: true, secure: cfg.cookieSecure, sameSite: 'lax' as const, path: '/' }
    const flowCookieOptions = { ...cookieOptions, path: '/workbench/auth', maxAge: PendingSignIns.ttlSeconds }

    /** The cookie's session, or the problem to answer. */
    async function current(request: FastifyRequest): Promise<{ id: string; session: PersonSession }> {
      const id = request.cookies[cookieName]
      if (!id) throw new Problem(401, 'AUTH_SESSION_MISSING', 'no session cookie: sign in at the workbench')
      const found = await sessions.lookup(id)
      if (found.state === 'expired') throw new Problem(401, 'AUTH_SESSION_EXPIRED', 'the session has ended (idle too long, or past its absolute limit): sign in again')
      if (found.state === 'missing') throw new Problem(401, 'AUTH_SESSION_MISSING', 'the session is unknown or was signed out: sign in again')
      return found
    }

    const checkCsrf = (request: FastifyRequest, s: PersonSession) => {
      const given = request.headers['x-csrf-token']
      if (typeof given !== 'string' || !sameToken(given, s.csrfToken)) {
        throw new Problem(403, 'AUTH_CSRF', given === undefined ? 'header x-csrf-token is required with the session cookie' : 'header x-csrf-token does not match the session')
      }
    }

    /** Every action of a person is audited with the person as operator (docs/audit.md). */
    const actAs = (request: FastifyRequest, s: PersonSession): Principal => {
      const principal = personPrincipal(s)
      request.principal = principal
      request.audit.operator = operatorIdOf(s.person.sub)
      return principal
    }

    app.decorate('people', {
      hasCookie: (request: FastifyRequest) => typeof request.cookies?.[cookieName] === 'string',
      async authenticate(request: FastifyRequest) {
        const { session } = await current(request)
        const principal = actAs(request, session)
        if (UNSAFE.has(request.method)) checkCsrf(request, session)
        return principal
      },
    })

    app.get('/v1/session', {
      schema: {
        tags: ['people'],
        summary: 'The signed-in person (session cookie): department, roles, the CSRF token and when the session ends',
        response: { 200: sessionView, ...problemResponses(401) },
      },
    }, async (request) => view((await current(request)).session))

    if (cfg.issuer === null) return
    // The URLs follow the node's public URL unless the provider registered others.
    const redirectUrl = cfg.redirectUrl ?? `${app.config.node.publicUrl}/workbench/auth/callback`
    const postLogoutRedirectUrl = cfg.postLogoutRedirectUrl ?? `${app.config.node.publicUrl}/workbench/`
    const rp = new RelyingParty({ ...cfg, issuer: cfg.issuer, redirectUrl, postLogoutRedirectUrl })
    const rules = { claims: cfg.claims, roleMap: cfg.roleMap, departmentRoles: cfg.departmentRoles }

    app.get<{ Querystring: { returnTo?: string } }>('/workbench/auth/login', {
      schema: {
        tags: ['people'],
        summary: 'Start signing in: redirects to the identity provider (authorization code flow with PKCE)',
        querystring: { type: 'object', properties: { returnTo: { type: 'string', maxLength: 1024, pattern: RETURN_TO, description: 'a workbench path to come back to' } } },
        response: { 302: { type: 'null', description: 'to the identity provider' }, ...problemResponses(400, 503) },
      },
    }, async (request, reply) => {
      const start = await rp.start()
      await pending.put(start.state, { codeVerifier: start.codeVerifier, nonce: start.nonce, returnTo: request.query.returnTo ?? DEFAULT_RETURN })
      // Binds the answer to this browser: a callback carrying another browser's state is refused.
      reply.setCookie(flowCookie, start.state, flowCookieOptions)
      reply.header('cache-control', 'no-store')
      return reply.redirect(start.url, 302)
    })

    app.get<{ Querystring: Record<string, string> }>('/workbench/auth/callback', {
      config: { audit: { resource: 'workbench', operation: 'session.sign-in', evidence: false } },
      schema: {
        tags: ['people'],
        summary: "The identity provider's answer: checks it, opens the session (cookie) and returns to the workbench",
        querystring: { type: 'object', properties: { code: { type: 'string', maxLength: 4096 }, state: { type: 'string', maxLength: 512 }, error: { type: 'string', maxLength: 256 } } },
        response: { 303: { type: 'null', description: 'back to the workbench, signed in' }, ...problemResponses(400, 401, 403, 503) },
      },
    }, async (request, reply) => {
      try {
        const { state, error } = request.query
        reply.clearCookie(flowCookie, flowCookieOptions)
        if (!state || request.cookies[flowCookie] !== state) throw new Problem(400, 'AUTH_SIGNIN_STATE', 'the sign-in answer does not belong to a sign-in started in this browser')
        const flow = await pending.take(state)
        if (!flow) throw new Problem(400, 'AUTH_SIGNIN_STATE', 'the sign-in has expired or was already completed: start again')
        if (error) throw new Problem(401, 'AUTH_SIGNIN_FAILED', `the identity provider answered ${error.slice(0, 64)}`)
        const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?')) : ''
        const answer = await rp.finish(query, { ...flow, state }, (c) => missingClaims(c, cfg.claims))
        const person = personOf(answer.claims, rules, (code) => app.systems.ofDepartment(code))
        const { id, session } = await sessions.create({ ...person, idToken: answer.idToken })
        actAs(request, session)
        reply.setCookie(cookieName, id, cookieOptions)
        reply.header('cache-control', 'no-store')
        return reply.redirect(flow.returnTo, 303)
      } catch (e) {
        if (!(e instanceof Problem) || !wantsHtml(request)) throw e
        request.audit.reason = e.code
        return reply.code(e.status).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(signInFailurePage(e, request.id))
      }
    })

    app.post('/workbench/auth/logout', {
      config: { audit: { resource: 'workbench', operation: 'session.sign-out', evidence: false } },
      schema: {
        tags: ['people'],
        summary: 'Sign out: ends the session here and (RP-initiated logout) at the identity provider; needs header x-csrf-token',
        description: 'Answers 303 to the provider\'s end-session page (or the workbench); with Accept: application/json, 200 { redirectTo } instead, for a script to follow.',
        response: {
          200: { type: 'object', additionalProperties: false, required: ['redirectTo'], properties: { redirectTo: { type: 'string' } } },
          303: { type: 'null', description: "to the provider's end-session page" },
          ...problemResponses(401, 403),
        },
      },
    }, async (request: FastifyRequest, reply: FastifyReply) => {
      const { id, session } = await current(request)
      actAs(request, session)
      checkCsrf(request, session)
      await sessions.delete(id)
      reply.clearCookie(cookieName, cookieOptions)
      reply.header('cache-control', 'no-store')
      const to = (await rp.endSessionUrl(session.idToken)) ?? postLogoutRedirectUrl
      if (wantsJson(request)) return { redirectTo: to }
      return reply.redirect(to, 303)
    })
  },
  { name: 'people', dependencies: ['stores'] },
)
