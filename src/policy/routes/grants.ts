// Grants: those the caller's department holds or gave, and their revocation (by the
// provider, or by the holder giving it up), binding at once on every replica.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Problem } from '../../problems/problem.js'
import { problemResponses } from '../../problems/schema.js'
import type { Principal } from '../../auth/principal.js'
import type { Grant } from '../grants.js'
import * as store from '../applications.js'
import { grantViews, personName } from './views.js'
import { grantSchema, idParam, isProviderOf, listLimit, me, queryCompiler, sec, type PolicyRouteDeps } from './shared.js'

const listSchema = {
  tags: ['sharing'],
  summary: "Grants held by the caller's department, or given by it as provider",
  security: sec,
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: { status: { type: 'string', enum: ['active', 'revoked', 'expired'] }, limit: listLimit },
  },
  response: { 200: { type: 'object', properties: { grants: { type: 'array', items: grantSchema } } }, ...problemResponses(401) },
}

const revokeSchema = {
  tags: ['sharing'],
  summary: 'Revoke a grant (the providing department, or the holder giving it up: the department, or the one system a grant is bound to); effective at once on every replica',
  security: sec,
  params: idParam,
  querystring: { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', minLength: 1, maxLength: 2000 } } },
  response: { 200: grantSchema, ...problemResponses(401, 403, 404, 409, 503) },
}

export default async function grants(app: FastifyInstance, deps: PolicyRouteDeps) {
  app.get<{ Querystring: { status?: string; limit?: number } }>('/v1/grants', { onRequest: [app.authenticate], schema: listSchema, validatorCompiler: queryCompiler }, async (request) => {
    const p = me(request)
    const grants = await store.listGrants(app.db, {
      consumerDepartment: p.roles.includes('consumer') ? p.department : undefined,
      providerDepartment: p.roles.includes('provider') ? p.department : undefined,
      status: request.query.status,
      limit: request.query.limit ?? 50,
    })
    return { grants: p.roles.includes('consumer') || p.roles.includes('provider') ? await grantViews(app, grants) : [] }
  })

  app.delete<{ Params: { id: string }; Querystring: { reason?: string } }>('/v1/grants/:id', {
    onRequest: [app.authenticate],
    config: { audit: { operation: 'grant.revoke' } },
    schema: revokeSchema,
  }, async (request) => {
    const p = me(request)
    const g = await revocable(app, request, p)
    await deps.markRevoked(g)
    const revoked = await store.revokeGrant(app.db, g.id, p.system, request.query.reason ?? 'revoked', personName(p))
    if (!revoked) throw new Problem(409, 'GRANT_NOT_ACTIVE', 'the grant was revoked or expired meanwhile')
    await deps.onRevoked(revoked)
    return (await grantViews(app, [revoked]))[0]
  })
}

/** The grant, if the caller may end it and it is still active. */
async function revocable(app: FastifyInstance, request: FastifyRequest<{ Params: { id: string } }>, p: Principal): Promise<Grant> {
  const g = await store.getGrant(app.db, request.params.id)
  if (!g || (g.consumerDepartment !== p.department && g.providerDepartment !== p.department)) {
    throw new Problem(404, 'GRANT_NOT_FOUND', 'no such grant')
  }
  request.audit.resource = g.resource
  // Who may end a grant: the providing department, or its holder giving it up. The holder
  // of a department grant is the department (any of its consumer systems); of a grant bound
  // to one system, that system only: a sibling that cannot use it cannot take it away.
  const provider = isProviderOf(p, g.providerDepartment)
  const ofDepartment = p.roles.includes('consumer') && g.consumerDepartment === p.department
  if (!provider && ofDepartment && g.consumerSystem !== null && g.consumerSystem !== p.system) {
    throw new Problem(403, 'GRANT_BOUND_TO_OTHER_SYSTEM', 'this grant is bound to another system of the department: only that system or the provider may revoke it')
  }
  if (!provider && !ofDepartment) throw new Problem(403, 'AUTH_ROLE_REQUIRED', 'only the providing department or the holder may revoke a grant')
  if (g.status !== 'active') throw new Problem(409, 'GRANT_NOT_ACTIVE', `the grant is ${g.status}`)
  return g
}
