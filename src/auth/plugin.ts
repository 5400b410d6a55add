// Authentication: the token endpoint (client credentials + private_key_jwt) and the
// `authenticate` hook that turns a Bearer access token — or a person's session cookie
// (src/people) — into request.principal.
import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Problem, type ProblemCode } from '../problems/problem.js'
import { clientAssertionChecker } from './client-assertion.js'
import { ReplayStore } from './replay-store.js'
import { conflictingRoles, tierOf, type Principal, type Role } from './principal.js'
import { SystemRegistry, type RegisteredSystem } from './systems.js'
import { tokenRoute } from './token-route.js'

declare module 'fastify' {
  interface FastifyInstance {
    systems: SystemRegistry
    /** Single-use jti memory bound to an epoch (client assertions, node links). */
    replay: ReplayStore
    /** onRequest hook: a valid access token becomes request.principal; otherwise 401. */
    authenticate(request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void
    /** onRequest hook after authenticate: 403 AUTH_ROLE_REQUIRED unless the principal has the role. */
    requireRole(role: Role): (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => void
  }
  interface FastifyRequest {
    principal: Principal | null
  }
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: { sub: string; dept: string; region: string; tier: string; roles: Role[] }
  }
}

const revoked = () => new Problem(401, 'AUTH_CLIENT_CERT_REVOKED', 'the certificate of the system holding this token has been revoked')

const JWT_ERRORS: Record<string, [ProblemCode, string]> = {
  FST_JWT_NO_AUTHORIZATION_IN_HEADER: ['AUTH_TOKEN_MISSING', 'an access token is required (Authorization: Bearer …)'],
  FST_JWT_BAD_REQUEST: ['AUTH_TOKEN_MISSING', 'the Authorization header must be "Bearer <token>"'],
  FST_JWT_AUTHORIZATION_TOKEN_EXPIRED: ['AUTH_TOKEN_EXPIRED', 'the access token has expired'],
  FAST_JWT_INACTIVE: ['AUTH_TOKEN_NOT_YET_VALID', 'the access token is not valid yet'],
}

export default fp(
  async function auth(app) {
    const { config, identity } = app
    const tokenUrl = `${config.node.publicUrl}/v1/oauth/token`

    app.decorate('systems', new SystemRegistry(app.db))
    await app.systems.load()
    // A revoked certificate (tongban pki revoke) binds every replica at once; the periodic
    // reload is the safety net for a missed message.
    const reloadSystems = () => app.systems.load().catch((e) => app.log.error({ err: e }, 'system registry reload failed'))
    app.bus.subscribe('systems', reloadSystems)
    const refresh = setInterval(reloadSystems, 30_000)
    refresh.unref()
    app.addHook('onClose', async () => clearInterval(refresh))

    await app.register(fastifyJwt, {
      secret: { private: identity.keyPem, public: identity.certPem },
      sign: { algorithm: 'RS256', iss: config.node.id, aud: config.node.id, kid: identity.kid, expiresIn: config.token.ttlSeconds },
      // The verified-token cache takes RSA verification off the hot path (PERFORMANCE.md).
      // Issuer and audience must be present, not only right when present (a token without
      // `aud` was accepted before: test/token-attacks.test.ts).
      verify: { algorithms: ['RS256'], allowedIss: config.node.id, allowedAud: config.node.id, requiredClaims: ['iss', 'aud', 'sub', 'exp'], cache: true, cacheTTL: 60_000 },
    })

    // Principals of verified tokens, by the exact Authorization header, until the token
    // expires (at most a minute, as fast-jwt's own cache). A hit skips @fastify/jwt's
    // decoding and cache-key hashing, which cost a few per cent of the CPU per query
    // (bench/). Anything else — absent, malformed, expired, not yet valid — takes the full
    // verification below and gets its precise code from it.
    const verified = new Map<string, { principal: Principal; until: number }>()
    app.decorateRequest('principal', null)
    /** The full verification (a cache miss, or anything but a known valid token): sets request.principal. */
    const verifyToken = async (request: FastifyRequest, header: string | undefined, now: number): Promise<void> => {
      let claims
      try {
        claims = await request.jwtVerify<{ sub: string; dept: string; region: string; roles: Role[]; exp: number }>()
      } catch (e) {
        const [code, detail] = JWT_ERRORS[(e as { code?: string }).code ?? ''] ?? ['AUTH_TOKEN_INVALID', 'the access token is invalid']
        throw new Problem(401, code, detail)
      }
      const principal: Principal = Object.freeze({
        system: claims.sub, department: claims.dept, region: claims.region, tier: tierOf(claims.region), roles: Object.freeze([...claims.roles]) as Role[],
      })
      request.principal = principal
      // Tokens issued before the certificate was revoked stop working too.
      if (app.systems.get(principal.system)?.certRevoked) throw revoked()
      if (header !== undefined && typeof claims.exp === 'number') {
        if (verified.size >= 10_000) verified.clear()
        verified.set(header, { principal, until: Math.min(claims.exp * 1000, now + 60_000) })
      }
    }
    // People sign in at the workbench (src/people): without an Authorization header, the
    // session cookie authenticates (and state-changing requests need its CSRF token).
    const people = app.hasDecorator('people') ? app.people : null
    // Callback-style hooks: a known token is settled without a promise (most queries).
    app.decorate('authenticate', (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
      const header = request.headers.authorization
      if (header === undefined && people?.hasCookie(request)) {
        people.authenticate(request).then(() => done(), done)
        return
      }
      const now = Date.now()
      if (header !== undefined) {
        const hit = verified.get(header)
        if (hit !== undefined) {
          if (hit.until > now) {
            request.principal = hit.principal
            if (app.systems.get(hit.principal.system)?.certRevoked) return done(revoked())
            return done()
          }
          verified.delete(header)
        }
      }
      verifyToken(request, header, now).then(() => done(), done)
    })
    app.decorate('requireRole', (role: Role) => (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void) => {
      if (!request.principal?.roles.includes(role)) return done(new Problem(403, 'AUTH_ROLE_REQUIRED', `this operation requires the ${role} role`))
      done()
    })

    app.decorate('replay', new ReplayStore(app.replicatedWrites.client, { log: app.log, replication: app.replicatedWrites }))
    const checkAssertion = clientAssertionChecker({
      registry: app.systems,
      replay: app.replay,
      cas: identity.cas,
      audiences: [tokenUrl, config.node.id],
      maxLifetimeSeconds: config.token.assertionMaxLifetimeSeconds,
    })

    app.register(tokenRoute, {
      issue: async (assertion: string, request: FastifyRequest) => {
        const name = (system: RegisteredSystem) => {
          request.audit.consumer = { department: system.departmentCode, system: system.clientId, region: system.region }
        }
        const system = await checkAssertion(assertion, name)
        name(system)
        const conflict = conflictingRoles(system.roles)
        if (conflict) throw new Problem(403, 'AUTH_ROLE_CONFLICT', conflict, { error: 'unauthorized_client' })
        const token = app.jwt.sign({
          sub: system.clientId,
          dept: system.departmentCode,
          region: system.region,
          tier: tierOf(system.region),
          roles: system.roles,
        })
        return { access_token: token, token_type: 'Bearer' as const, expires_in: config.token.ttlSeconds }
      },
    })
  },
  { name: 'auth', dependencies: ['stores', 'node-identity'] },
)
