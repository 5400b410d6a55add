// Authentication: the token endpoint (client credentials + private_key_jwt) and the
// `authenticate` hook that turns a Bearer access token into request.principal.
import fp from 'fastify-plugin'
import fastifyJwt from '@fastify/jwt'
import formbody from '@fastify/formbody'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Problem } from '../problem.js'
import { clientAssertionChecker } from './client-assertion.js'
import { conflictingRoles, tierOf, type Principal, type Role } from './principal.js'
import { SystemRegistry } from './systems.js'
import { tokenRoute } from './token-route.js'

declare module 'fastify' {
  interface FastifyInstance {
    systems: SystemRegistry
    authenticate(request: FastifyRequest, reply: FastifyReply): Promise<void>
    requireRole(role: Role): (request: FastifyRequest, reply: FastifyReply) => Promise<void>
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

const JWT_ERRORS: Record<string, [string, string]> = {
  FST_JWT_NO_AUTHORIZATION_IN_HEADER: ['AUTH_TOKEN_MISSING', 'an access token is required (Authorization: Bearer …)'],
  FST_JWT_BAD_REQUEST: ['AUTH_TOKEN_MISSING', 'the Authorization header must be "Bearer <token>"'],
  FST_JWT_AUTHORIZATION_TOKEN_EXPIRED: ['AUTH_TOKEN_EXPIRED', 'the access token has expired'],
}

export default fp(
  async function auth(app) {
    const { config, identity } = app
    const tokenUrl = `${config.node.publicUrl}/v1/oauth/token`

    app.decorate('systems', new SystemRegistry(app.db))
    await app.systems.load()

    await app.register(formbody)
    await app.register(fastifyJwt, {
      secret: { private: identity.keyPem, public: identity.certPem },
      sign: { algorithm: 'RS256', iss: config.node.id, aud: config.node.id, kid: identity.kid, expiresIn: config.token.ttlSeconds },
      // The verified-token cache takes RSA verification off the hot path (PERFORMANCE.md).
      verify: { algorithms: ['RS256'], allowedIss: config.node.id, allowedAud: config.node.id, cache: true, cacheTTL: 60_000 },
    })

    app.decorateRequest('principal', null)
    app.decorate('authenticate', async (request: FastifyRequest) => {
      let claims
      try {
        claims = await request.jwtVerify<{ sub: string; dept: string; region: string; roles: Role[] }>()
      } catch (e) {
        const [code, detail] = JWT_ERRORS[(e as { code?: string }).code ?? ''] ?? ['AUTH_TOKEN_INVALID', 'the access token is invalid']
        throw new Problem(401, code, detail)
      }
      request.principal = { system: claims.sub, department: claims.dept, region: claims.region, tier: tierOf(claims.region), roles: claims.roles }
    })
    app.decorate('requireRole', (role: Role) => async (request: FastifyRequest) => {
      if (!request.principal?.roles.includes(role)) {
        throw new Problem(403, 'AUTH_ROLE_REQUIRED', `this operation requires the ${role} role`)
      }
    })

    const checkAssertion = clientAssertionChecker({
      registry: app.systems,
      redis: app.redis,
      ca: identity.ca,
      audiences: [tokenUrl, config.node.id],
      maxLifetimeSeconds: config.token.assertionMaxLifetimeSeconds,
    })

    app.register(tokenRoute, {
      issue: async (assertion: string, request: FastifyRequest) => {
        const system = await checkAssertion(assertion)
        request.audit.consumer = { department: system.departmentCode, system: system.clientId, region: system.region }
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
