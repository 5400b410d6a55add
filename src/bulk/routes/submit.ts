// POST /v1/batches: JSON ({service | resource+operation, items}) or NDJSON (one item a
// line; service or resource and operation in the query string). Stored durably, then
// queued; 202 with the batch's progress.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { monotonicFactory } from 'ulid'
import { Problem } from '../../problems/problem.js'
import { problemResponses } from '../../problems/schema.js'
import { contextHeadersSchema, readContext } from '../../exchange/context.js'
import type { CatalogResource } from '../../catalog/repository.js'
import type { Principal } from '../../auth/principal.js'
import { createBatch, getBatch } from '../store.js'
import { regionWithin } from '../../tiers/topology.js'
import { noGrantProblem } from '../../policy/authorize.js'
import { consumerOnly, me, progressSchema, sec, view, type BatchRouteDeps } from './shared.js'
import { resolveTarget, type Named } from './target.js'

const ulid = monotonicFactory()

type SubmitBody = Named & { items: unknown[] }
type SubmitRequest = FastifyRequest<{ Body: SubmitBody; Querystring: Named }>

const submitBody = {
  type: 'object',
  required: ['items'],
  properties: {
    service: { type: 'string', description: 'a verification service (identity, property, …): the resource is chosen for the caller\'s region' },
    resource: { type: 'string', description: 'a catalogue resource code, instead of service', examples: ['103002/00002'] },
    operation: { type: 'string', description: 'the resource operation (with resource)', examples: ['query'] },
    items: {
      type: 'array',
      minItems: 1,
      description: 'request bodies, each as a single query of the operation would take it (up to 100,000)',
      items: { type: 'object' },
    },
  },
  examples: [{ service: 'identity', items: [{ idNumber: '11010519491231002X', name: '张三' }] }],
}

const submitQuery = {
  type: 'object',
  properties: {
    service: { type: 'string' },
    resource: { type: 'string' },
    operation: { type: 'string' },
  },
}

const submitSchema = {
  tags: ['batches'],
  summary: 'Submit a bulk verification: up to 100,000 queries of one service or resource operation',
  description:
    'JSON (`{service | resource + operation, items}`) or NDJSON (`Content-Type: application/x-ndjson`, one item a line, ' +
    '`service` or `resource` and `operation` in the query string). Every item runs as a single query would, under the ' +
    'same purpose and case id, with the same sharing rules and quotas, and gets its own audit record and evidence.',
  security: sec,
  headers: contextHeadersSchema,
  querystring: submitQuery,
  body: submitBody,
  response: {
    202: {
      description: 'accepted; follow it at links.self',
      ...progressSchema,
    },
    ...problemResponses(400, 401, 403, 404, 410, 413, 415, 503),
  },
}

export default async function submit(app: FastifyInstance, deps: BatchRouteDeps) {
  app.post<{ Body: SubmitBody; Querystring: Named }>('/v1/batches', {
    onRequest: consumerOnly(app),
    preValidation: async (request) => readContext(request, app.purposes),
    bodyLimit: app.config.batch.maxBytes,
    config: { audit: { operation: 'batch.submit' } },
    schema: submitSchema,
  }, (request, reply) => accept(app, deps, request, reply))
}

/**
 * What can be refused before any item runs, without using quota: retired, not shared,
 * conditional without a grant. Quotas and rate limits are applied per item when it runs,
 * exactly as for single queries.
 */
function precheck(app: FastifyInstance, principal: Principal, resource: CatalogResource, purpose: string) {
  if (resource.status === 'retired') throw new Problem(410, 'RESOURCE_RETIRED', `resource ${resource.code} has been retired`)
  if (resource.sharing.type === 'none') throw new Problem(403, 'POLICY_SHARE_NONE', `resource ${resource.code} is not shared (不予共享)`)
  if (resource.sharing.type === 'conditional') {
    const m = app.grants.match(principal.department, principal.system, resource.code, purpose)
    if (!m.grant) throw noGrantProblem(m)
  }
}

async function accept(app: FastifyInstance, deps: BatchRouteDeps, request: SubmitRequest, reply: FastifyReply) {
  const { config, db } = app
  const maxItems = config.batch.maxItems
  const principal = me(request)
  const body = request.body
  const d = { service: body.service ?? request.query.service, resource: body.resource ?? request.query.resource, operation: body.operation ?? request.query.operation }
  const { resource, code, operation, service, remote } = resolveTarget(app, deps, request, d)
  if (/^[0-9]{6}\/[0-9]{5}$/.test(code)) request.audit.resource = code
  request.audit.operation = `batch.${operation}`
  if (resource) precheck(app, principal, resource, request.audit.purpose!)
  else if (!regionWithin(principal.region, config.node.region)) {
    // As for single queries: a node relays for consumers of its own division only.
    throw new Problem(403, 'TIERS_CONSUMER_OUTSIDE_NODE', `node ${config.node.id} relays for consumers of region ${config.node.region} only`)
  }
  const items = body.items
  if (items.length > maxItems) throw new Problem(413, 'BATCH_TOO_MANY_ITEMS', `a batch holds at most ${maxItems} items`)

  const id = ulid()
  const chunks = await createBatch(db, {
    id,
    principal: { system: principal.system, department: principal.department, region: principal.region, tier: principal.tier, roles: principal.roles },
    resource: code,
    operation,
    service,
    purpose: request.audit.purpose!,
    caseId: request.audit.caseId!,
    operator: request.audit.operator ?? null,
    requestId: request.id,
    chunkSize: config.batch.chunkSize,
  }, items).catch((e) => {
    request.log.error({ err: e }, 'batch could not be stored')
    throw new Problem(503, 'BATCH_STORE_UNAVAILABLE', 'the batch could not be stored; nothing was queued')
  })
  // Stored durably: if the queue is away now, the housekeeping of a worker replica
  // enqueues the chunks later, so the batch is accepted either way.
  await deps.queue.enqueue(id, chunks).catch((e) => request.log.warn({ err: e, batch: id }, 'batch stored but not queued yet; it will be picked up'))
  const b = await getBatch(db, id)
  if (remote) request.log.info({ batch: id, hop: remote.hop, owner: remote.owner }, 'batch accepted: its items are relayed')
  reply.code(202).header('location', `/v1/batches/${id}`)
  return view(b!)
}
