// Conditional sharing routes: consumers apply, providers decide, grants are listed and
// revoked. Every call is audited (the sealed log records who did what to which resource).
import type { FastifyInstance, FastifyRequest, preHandlerHookHandler } from 'fastify'
import { Problem } from '../problems/problem.js'
import { problemResponses } from '../problems/schema.js'
import type { Principal } from '../auth/principal.js'
import type { Purpose } from './purposes.js'
import * as store from './applications.js'
import type { Grant } from './grants.js'

/**
 * Applications across tiers (src/tiers/application-messages.ts implements it on a node in a
 * tree): the outbox that carries a decision back to the consumer's node.
 */
export interface ApplicationOutbox {
  /** Inside the decision's transaction: writes the message for an application that came from another node. */
  decided: store.DecisionHook
  /** After the commit: queue the decision's message of this application. Never throws. */
  flush(applicationId: string): void
}

declare module 'fastify' {
  interface FastifyInstance {
    applicationOutbox?: ApplicationOutbox
  }
  interface FastifyRequest {
    /** Set by the tiers hook on the owner's in-process call for an application that travelled here. */
    remoteApplication: { id: string; originNode: string } | null
  }
}

const MAX_VALIDITY_MS = 3 * 366 * 86400_000

/** The period applied for: checked where the consumer applies, and again by the owner. */
export function checkPeriod(b: { validFrom?: string; validTo: string }, now = new Date()): { validFrom: Date; validTo: Date } {
  const validFrom = b.validFrom ? new Date(b.validFrom) : now
  const validTo = new Date(b.validTo)
  if (!(validTo > validFrom) || validTo <= now) throw new Problem(400, 'APPLICATION_INVALID_PERIOD', 'validTo must be after validFrom and in the future')
  if (validTo.getTime() - validFrom.getTime() > MAX_VALIDITY_MS) throw new Problem(400, 'APPLICATION_INVALID_PERIOD', 'a grant may last at most 3 years')
  return { validFrom, validTo }
}

export interface PolicyRouteDeps {
  purposes: Map<string, Purpose>
  /** The route step of POST /v1/applications in a tier tree (application-messages.ts). */
  routeApplication?: preHandlerHookHandler
  dueDate(from: Date): { dueAt: Date; remindAt: Date }
  onSubmitted(a: store.Application): Promise<void>
  onDecided(a: store.Application, grant: Grant | null): Promise<void>
  /** Before the database: makes the revocation binding on every replica (Redis marker). */
  markRevoked(g: Grant): Promise<void>
  onRevoked(g: Grant): Promise<void>
}

const applicationSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' }, consumerDepartment: { type: 'string' }, consumerSystem: { type: 'string' }, systemOnly: { type: 'boolean' },
    resource: { type: 'string' }, providerDepartment: { type: ['string', 'null'], description: 'null until the owning node has answered' },
    items: { type: 'array', items: { type: 'string' } }, purposes: { type: 'array', items: { type: 'string' } },
    basis: { type: 'string' }, validFrom: { type: 'string' }, validTo: { type: 'string' }, dailyQuota: { type: 'integer' },
    status: { type: 'string', enum: ['pending', 'approved', 'rejected', 'withdrawn'] },
    dueAt: { type: ['string', 'null'] }, remindedAt: { type: ['string', 'null'] }, escalatedAt: { type: ['string', 'null'] },
    decidedAt: { type: ['string', 'null'] }, decidedBy: { type: ['string', 'null'] }, decisionReason: { type: ['string', 'null'] },
    createdAt: { type: 'string' }, grantId: { type: ['string', 'null'], description: "the grant's id (at the consumer's node: the owning node's grant)" },
    granted: {
      type: ['object', 'null'],
      description: 'what the approval granted, possibly narrowed',
      properties: { items: { type: 'array', items: { type: 'string' } }, validFrom: { type: 'string' }, validTo: { type: 'string' }, dailyQuota: { type: 'integer' } },
    },
    originNode: { type: ['string', 'null'], description: "at the owning node: the consumer's node, where the decision goes back to" },
    ownerNode: { type: ['string', 'null'], description: "at the consumer's node: the node that holds the resource and decides (null: this node, or not known yet)" },
    delivery: {
      type: ['object', 'null'],
      description: "at the consumer's node, for a resource held by another node: how the application travels to the owner (docs/tiers.md §7)",
      properties: {
        state: { type: 'string', enum: ['forwarding', 'delivered', 'failed', 'refused'] },
        attempts: { type: 'integer', description: "attempts of this node's leg" },
        nextHop: { type: ['string', 'null'] },
        lastError: { type: ['string', 'null'], description: 'a problem code, with the node where it arose (CODE@node)' },
        updatedAt: { type: ['string', 'null'] },
      },
    },
    history: {
      type: 'array',
      items: { type: 'object', properties: { at: { type: 'string' }, actor: { type: 'string' }, action: { type: 'string' }, detail: { type: 'object', additionalProperties: true } } },
    },
  },
}

const grantSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' }, applicationId: { type: 'string' }, consumerDepartment: { type: 'string' }, consumerSystem: { type: ['string', 'null'] },
    resource: { type: 'string' }, providerDepartment: { type: 'string' },
    items: { type: 'array', items: { type: 'string' } }, purposes: { type: 'array', items: { type: 'string' } },
    validFrom: { type: 'string' }, validTo: { type: 'string' }, dailyQuota: { type: 'integer' },
    status: { type: 'string', enum: ['active', 'revoked', 'expired'] },
  },
}

const itemList = { type: 'array', minItems: 1, maxItems: 100, uniqueItems: true, items: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9]{0,63}$' } }
const dateTime = { type: 'string', format: 'date-time' }
const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9A-Z]{26}$' } } }

const sec = [{ bearer: [] }]

export async function policyRoutes(app: FastifyInstance, deps: PolicyRouteDeps) {
  const { catalog } = app
  const me = (request: FastifyRequest) => request.principal as Principal
  const isProviderOf = (p: Principal, providerDepartment: string | null) => p.roles.includes('provider') && p.department === providerDepartment
  app.decorateRequest('remoteApplication', null)

  app.post<{ Body: { resource: string; items: string[]; purposes: string[]; basis: string; validFrom?: string; validTo: string; dailyQuota: number; systemOnly?: boolean } }>(
    '/v1/applications',
    {
      onRequest: [app.authenticate, app.requireRole('consumer')],
      // In a tier tree: an application for a resource held elsewhere is recorded here and travels there.
      ...(deps.routeApplication ? { preHandler: deps.routeApplication } : {}),
      config: { audit: { operation: 'application.submit' } },
      schema: {
        tags: ['sharing'],
        summary: 'Apply for a conditional resource (有条件共享申请)',
        description:
          '201: recorded at this node, which holds the resource. 202: the resource is held by another node; the application is recorded here ' +
          '(delivery `forwarding`) and travels to the owning node as a queued message; its decision comes back (GET /v1/applications/{id}). ' +
          '200: the same application id again (only on the node channel: a redelivered message).',
        security: sec,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['resource', 'items', 'purposes', 'basis', 'validTo', 'dailyQuota'],
          properties: {
            resource: { type: 'string', pattern: '^[0-9]{6}/[0-9]{5}$', examples: ['103002/00002'] },
            items: { ...itemList, description: 'the conditional items needed' },
            purposes: { type: 'array', minItems: 1, maxItems: 20, uniqueItems: true, items: { type: 'string', pattern: '^[A-Za-z0-9.-]{1,32}$' } },
            basis: { type: 'string', minLength: 4, maxLength: 2000, description: 'legal basis or business scenario (依据)' },
            validFrom: dateTime,
            validTo: dateTime,
            dailyQuota: { type: 'integer', minimum: 1, maximum: 1_000_000 },
            systemOnly: { type: 'boolean', description: 'bind the grant to the applying system only (default: the whole department)' },
          },
        },
        response: { 200: applicationSchema, 201: applicationSchema, 202: applicationSchema, ...problemResponses(400, 401, 403, 404, 410) },
      },
    },
    async (request, reply) => {
      const b = request.body
      const p = me(request)
      request.audit.resource = b.resource
      const resource = catalog.get(b.resource)
      if (!resource) throw new Problem(404, 'RESOURCE_NOT_FOUND', 'no such resource in the catalogue')
      if (resource.status === 'retired') throw new Problem(410, 'RESOURCE_RETIRED', `resource ${resource.code} has been retired`)
      if (resource.sharing.type === 'none') throw new Problem(403, 'POLICY_SHARE_NONE', `resource ${resource.code} is not shared: ${resource.sharing.legalBasis ?? ''}`.trim())
      const byName = new Map(resource.items.map((i) => [i.name, i]))
      for (const name of b.items) {
        const item = byName.get(name)
        if (!item) throw new Problem(400, 'APPLICATION_UNKNOWN_ITEM', `resource ${resource.code} has no item ${name}`)
        if (item.shareType === 'none') throw new Problem(403, 'POLICY_SHARE_NONE', `item ${name} is not shared`)
      }
      if (resource.sharing.type === 'unconditional' && !b.items.some((n) => byName.get(n)!.shareType === 'conditional')) {
        throw new Problem(400, 'APPLICATION_NOT_NEEDED', 'these items are shared unconditionally; no grant is needed')
      }
      const unknown = b.purposes.find((c) => !deps.purposes.has(c))
      if (unknown) throw new Problem(400, 'INPUT_PURPOSE_UNKNOWN', `purpose ${unknown} is not in this node's list`)
      const now = new Date()
      const { validFrom, validTo } = checkPeriod(b, now)
      const { dueAt } = deps.dueDate(now)
      // An application that travelled here from the consumer's node keeps its id (idempotent).
      const remote = request.remoteApplication
      const { application, created } = await store.createApplication(app.db, {
        consumerDepartment: p.department,
        consumerSystem: p.system,
        systemOnly: b.systemOnly ?? false,
        resource: resource.code,
        providerDepartment: resource.provider.code,
        items: b.items,
        purposes: b.purposes,
        basis: b.basis,
        validFrom,
        validTo,
        dailyQuota: b.dailyQuota,
        dueAt,
      }, remote ? { id: remote.id, originNode: remote.originNode } : {})
      if (!created) {
        if (application.consumerDepartment !== p.department || application.resource !== resource.code) {
          throw new Problem(409, 'APPLICATION_ID_TAKEN', 'another application has this id')
        }
        return reply.code(200).send(application)
      }
      await deps.onSubmitted(application)
      reply.code(201)
      return application
    },
  )

  app.get<{ Querystring: { as?: 'consumer' | 'provider'; status?: string; limit?: number } }>('/v1/applications', {
    onRequest: [app.authenticate],
    schema: {
      tags: ['sharing'],
      summary: "List applications: the caller's department's own (as=consumer) or those for its resources (as=provider)",
      security: sec,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          as: { type: 'string', enum: ['consumer', 'provider'] },
          status: { type: 'string', enum: ['pending', 'approved', 'rejected', 'withdrawn'] },
          limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 },
        },
      },
      response: { 200: { type: 'object', properties: { applications: { type: 'array', items: applicationSchema } } }, ...problemResponses(400, 401, 403) },
    },
  }, async (request) => {
    const p = me(request)
    const as = request.query.as ?? (p.roles.includes('provider') ? 'provider' : 'consumer')
    if (!p.roles.includes(as)) throw new Problem(403, 'AUTH_ROLE_REQUIRED', `listing as ${as} requires the ${as} role`)
    const applications = await store.listApplications(app.db, {
      [as === 'provider' ? 'providerDepartment' : 'consumerDepartment']: p.department,
      status: request.query.status,
      limit: request.query.limit ?? 50,
    })
    return { applications }
  })

  const visibleApplication = async (request: FastifyRequest, id: string) => {
    const a = await store.getApplication(app.db, id)
    const p = me(request)
    // Other departments' applications are not even confirmed to exist.
    if (!a || (a.consumerDepartment !== p.department && a.providerDepartment !== p.department)) {
      throw new Problem(404, 'APPLICATION_NOT_FOUND', 'no such application')
    }
    return a
  }

  app.get<{ Params: { id: string } }>('/v1/applications/:id', {
    onRequest: [app.authenticate],
    schema: { tags: ['sharing'], summary: 'One application with its history', security: sec, params: idParam, response: { 200: applicationSchema, ...problemResponses(401, 404) } },
  }, async (request) => {
    const a = await visibleApplication(request, request.params.id)
    return { ...a, history: await store.applicationEvents(app.db, a.id) }
  })

  app.post<{ Params: { id: string }; Body: { decision: 'approve' | 'reject'; reason?: string; items?: string[]; validFrom?: string; validTo?: string; dailyQuota?: number } }>(
    '/v1/applications/:id/decision',
    {
      onRequest: [app.authenticate, app.requireRole('provider')],
      config: { audit: { operation: 'application.decide' } },
      schema: {
        tags: ['sharing'],
        summary: 'Decide an application for one of your resources: approve (possibly narrowed) or reject with a reason',
        security: sec,
        params: idParam,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['decision'],
          properties: {
            decision: { type: 'string', enum: ['approve', 'reject'] },
            reason: { type: 'string', minLength: 1, maxLength: 2000 },
            items: itemList,
            validFrom: dateTime,
            validTo: dateTime,
            dailyQuota: { type: 'integer', minimum: 1, maximum: 1_000_000 },
          },
        },
        response: { 200: applicationSchema, ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const p = me(request)
      const a = await visibleApplication(request, request.params.id)
      request.audit.resource = a.resource
      // A department's provider role covers its own resources only.
      if (!isProviderOf(p, a.providerDepartment)) throw new Problem(403, 'AUTH_NOT_PROVIDER', 'only the providing department decides this application')
      // A copy at the consumer's node: the owning node decides, its decision comes back here.
      if (a.delivery) throw new Problem(409, 'APPLICATION_HELD_ELSEWHERE', `the application is decided at node ${a.ownerNode ?? '(the owning node)'}`)
      if (a.status !== 'pending') throw new Problem(409, 'APPLICATION_ALREADY_DECIDED', `the application is ${a.status}`)
      const outbox = app.applicationOutbox
      const b = request.body
      if (b.decision === 'reject') {
        if (!b.reason) throw new Problem(400, 'APPLICATION_REASON_REQUIRED', 'a rejection needs a reason')
        const rejected = await store.rejectApplication(app.db, a.id, p.system, b.reason, outbox?.decided)
        if (!rejected) throw new Problem(409, 'APPLICATION_ALREADY_DECIDED', 'the application was decided meanwhile')
        outbox?.flush(a.id)
        await deps.onDecided(rejected, null)
        return rejected
      }
      // Approval may narrow what was asked, never widen it.
      const items = b.items ?? a.items
      const outside = items.find((i) => !a.items.includes(i))
      if (outside) throw new Problem(400, 'APPLICATION_WIDENED', `item ${outside} was not applied for`)
      const validFrom = b.validFrom ? new Date(b.validFrom) : new Date(a.validFrom)
      const validTo = b.validTo ? new Date(b.validTo) : new Date(a.validTo)
      if (validFrom < new Date(a.validFrom) || validTo > new Date(a.validTo) || !(validTo > validFrom)) {
        throw new Problem(400, 'APPLICATION_WIDENED', 'the approved period must lie within the period applied for')
      }
      const dailyQuota = b.dailyQuota ?? a.dailyQuota
      if (dailyQuota > a.dailyQuota) throw new Problem(400, 'APPLICATION_WIDENED', 'the approved quota cannot exceed the quota applied for')
      const approved = await store.approveApplication(app.db, a.id, p.system, { items, validFrom, validTo, dailyQuota, reason: b.reason }, outbox?.decided)
      if (!approved) throw new Problem(409, 'APPLICATION_ALREADY_DECIDED', 'the application was decided meanwhile')
      outbox?.flush(a.id)
      await deps.onDecided(approved.application, approved.grant)
      return approved.application
    },
  )

  app.get<{ Querystring: { status?: string; limit?: number } }>('/v1/grants', {
    onRequest: [app.authenticate],
    schema: {
      tags: ['sharing'],
      summary: "Grants held by the caller's department, or given by it as provider",
      security: sec,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { status: { type: 'string', enum: ['active', 'revoked', 'expired'] }, limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 } },
      },
      response: { 200: { type: 'object', properties: { grants: { type: 'array', items: grantSchema } } }, ...problemResponses(401) },
    },
  }, async (request) => {
    const p = me(request)
    const grants = await store.listGrants(app.db, {
      consumerDepartment: p.roles.includes('consumer') ? p.department : undefined,
      providerDepartment: p.roles.includes('provider') ? p.department : undefined,
      status: request.query.status,
      limit: request.query.limit ?? 50,
    })
    return { grants: p.roles.includes('consumer') || p.roles.includes('provider') ? grants : [] }
  })

  app.delete<{ Params: { id: string }; Querystring: { reason?: string } }>('/v1/grants/:id', {
    onRequest: [app.authenticate],
    config: { audit: { operation: 'grant.revoke' } },
    schema: {
      tags: ['sharing'],
      summary: 'Revoke a grant (the providing department, or the holder giving it up: the department, or the one system a grant is bound to); effective at once on every replica',
      security: sec,
      params: idParam,
      querystring: { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', minLength: 1, maxLength: 2000 } } },
      response: { 200: grantSchema, ...problemResponses(401, 403, 404, 409, 503) },
    },
  }, async (request) => {
    const p = me(request)
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
    await deps.markRevoked(g)
    const revoked = await store.revokeGrant(app.db, g.id, p.system, request.query.reason ?? 'revoked')
    if (!revoked) throw new Problem(409, 'GRANT_NOT_ACTIVE', 'the grant was revoked or expired meanwhile')
    await deps.onRevoked(revoked)
    return revoked
  })
}
