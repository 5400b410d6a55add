// Applications (有条件共享申请): a consumer applies for a conditional resource; either side
// lists its department's applications and reads one with its history.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { Problem } from '../../problems/problem.js'
import { problemResponses } from '../../problems/schema.js'
import type { CatalogResource } from '../../catalog/repository.js'
import * as store from '../applications.js'
import { applicationViews, historyView, personName } from './views.js'
import { applicationSchema, checkPeriod, dateTime, idParam, itemList, listLimit, me, queryCompiler, quota, sec, visibleApplication, type PolicyRouteDeps } from './shared.js'

type SubmitBody = { resource: string; items: string[]; purposes: string[]; basis: string; validFrom?: string; validTo: string; dailyQuota: number; systemOnly?: boolean }
type ListQuery = { as?: 'consumer' | 'provider'; status?: string; sort?: 'created' | 'deadline'; limit?: number }

const submitSchema = {
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
      dailyQuota: quota,
      systemOnly: { type: 'boolean', description: 'bind the grant to the applying system only (default: the whole department)' },
    },
  },
  response: { 200: applicationSchema, 201: applicationSchema, 202: applicationSchema, ...problemResponses(400, 401, 403, 404, 410) },
}

const listSchema = {
  tags: ['sharing'],
  summary: "List applications: the caller's department's own (as=consumer) or those for its resources (as=provider)",
  security: sec,
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      as: { type: 'string', enum: ['consumer', 'provider'] },
      status: { type: 'string', enum: ['open', 'pending', 'approved', 'rejected', 'withdrawn'], description: 'open: not decided yet (the same as pending)' },
      sort: { type: 'string', enum: ['created', 'deadline'], default: 'created', description: 'created: newest first; deadline: the nearest deadline first (the reviewer\'s inbox)' },
      limit: listLimit,
    },
  },
  response: { 200: { type: 'object', properties: { applications: { type: 'array', items: applicationSchema } } }, ...problemResponses(400, 401, 403) },
}

const getSchema = { tags: ['sharing'], summary: 'One application with its history', security: sec, params: idParam, response: { 200: applicationSchema, ...problemResponses(401, 404) } }

export default async function applications(app: FastifyInstance, deps: PolicyRouteDeps) {
  app.post<{ Body: SubmitBody }>('/v1/applications', {
    onRequest: [app.authenticate, app.requireRole('consumer')],
    // In a tier tree: an application for a resource held elsewhere is recorded here and travels there.
    ...(deps.routeApplication ? { preHandler: deps.routeApplication } : {}),
    config: { audit: { operation: 'application.submit' } },
    schema: submitSchema,
  }, (request, reply) => submit(app, deps, request, reply))

  app.get<{ Querystring: ListQuery }>('/v1/applications', { onRequest: [app.authenticate], schema: listSchema, validatorCompiler: queryCompiler }, async (request) => {
    const p = me(request)
    const as = request.query.as ?? (p.roles.includes('provider') ? 'provider' : 'consumer')
    if (!p.roles.includes(as)) throw new Problem(403, 'AUTH_ROLE_REQUIRED', `listing as ${as} requires the ${as} role`)
    const applications = await store.listApplications(app.db, {
      [as === 'provider' ? 'providerDepartment' : 'consumerDepartment']: p.department,
      status: request.query.status,
      sort: request.query.sort,
      limit: request.query.limit ?? 50,
    })
    return { applications: await applicationViews(app, deps.calendar, applications) }
  })

  app.get<{ Params: { id: string } }>('/v1/applications/:id', { onRequest: [app.authenticate], schema: getSchema }, async (request) => {
    const a = await visibleApplication(app, request, request.params.id)
    const [view] = await applicationViews(app, deps.calendar, [a])
    return { ...view, history: historyView(app, await store.applicationEvents(app.db, a.id)) }
  })
}

/** The resource applied for, if it exists, is shared and these items need a grant. */
function applicable(app: FastifyInstance, b: SubmitBody, purposes: PolicyRouteDeps['purposes']): CatalogResource {
  const resource = app.catalog.get(b.resource)
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
  const unknown = b.purposes.find((c) => !purposes.has(c))
  if (unknown) throw new Problem(400, 'INPUT_PURPOSE_UNKNOWN', `purpose ${unknown} is not in this node's list`)
  return resource
}

async function submit(app: FastifyInstance, deps: PolicyRouteDeps, request: FastifyRequest<{ Body: SubmitBody }>, reply: FastifyReply) {
  const b = request.body
  const p = me(request)
  request.audit.resource = b.resource
  const resource = applicable(app, b, deps.purposes)
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
    actorName: personName(p),
  }, remote ? { id: remote.id, originNode: remote.originNode } : {})
  if (!created) {
    if (application.consumerDepartment !== p.department || application.resource !== resource.code) {
      throw new Problem(409, 'APPLICATION_ID_TAKEN', 'another application has this id')
    }
    return reply.code(200).send((await applicationViews(app, deps.calendar, [application]))[0])
  }
  await deps.onSubmitted(application)
  reply.code(201)
  return (await applicationViews(app, deps.calendar, [application]))[0]
}
