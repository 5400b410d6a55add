// Bulk verification routes (README.md): submit, follow, download, cancel.
//
//   POST   /v1/batches                 202 + id; JSON {service | resource+operation, items}
//                                      or NDJSON (one item a line; service or resource and
//                                      operation in the query string), streamed, size-limited
//   GET    /v1/batches                 the caller's recent batches
//   GET    /v1/batches/{id}            progress: total, done, succeeded, failed, rate, ETA
//   GET    /v1/batches/{id}/results    NDJSON, one line per finished item, in index order:
//                                      {index, status, requestId, body | problem, evidence}
//   DELETE /v1/batches/{id}            cancel: no item starts after this
//
// Every item's `evidence` covers the item's own audit record, whose responseDigest is the
// SHA-256 of the JCS (RFC 8785) form of its `body` or `problem` — reproducible from the
// parsed line in any language. Batches belong to the submitting system; another system gets
// 404 for them. Submission, download and cancellation are audited too.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'
import { monotonicFactory } from 'ulid'
import { Problem } from '../problems/problem.js'
import { problemResponses } from '../problems/schema.js'
import { contextHeadersSchema, readContext } from '../exchange/context.js'
import type { CatalogResource } from '../catalog/repository.js'
import type { Principal } from '../auth/principal.js'
import { cancelBatch, createBatch, getBatch, listBatches, readResults, type Batch } from './store.js'
import type { BatchQueue } from './queue.js'
import type { Relay } from '../tiers/relay.js'
import { regionWithin } from '../tiers/topology.js'
import { noGrantProblem } from '../policy/authorize.js'
import { own as ownValue } from '../catalog/own.js'

const ulid = monotonicFactory()
export const NDJSON = 'application/x-ndjson'

const sec = [{ bearer: [] }]
const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9A-Z]{26}$' } } }

const progressSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', examples: ['01JBATCH0000000000000000AA'] },
    status: { type: 'string', enum: ['queued', 'running', 'completed', 'cancelled'] },
    resource: { type: 'string', examples: ['101001/00001'] },
    operation: { type: 'string', examples: ['verify'] },
    service: { type: ['string', 'null'], examples: ['identity'] },
    purpose: { type: 'string', examples: ['SA-01'] },
    caseId: { type: 'string', examples: ['JN-2026-1000'] },
    total: { type: 'integer', examples: [10000] },
    done: { type: 'integer', description: 'items finished, succeeded or failed', examples: [2500] },
    succeeded: { type: 'integer', examples: [2490] },
    failed: { type: 'integer', description: 'items answered with a problem (denied or failed); each is audited', examples: [10] },
    pending: { type: 'integer', examples: [7500] },
    itemsPerSecond: { type: ['number', 'null'], description: 'average since the first item started', examples: [480.5] },
    etaSeconds: { type: ['number', 'null'], description: 'estimated seconds to completion at the average rate', examples: [15.6] },
    createdAt: { type: 'string', format: 'date-time' },
    startedAt: { type: ['string', 'null'], format: 'date-time' },
    finishedAt: { type: ['string', 'null'], format: 'date-time' },
    links: { type: 'object', properties: { self: { type: 'string' }, results: { type: 'string' } } },
  },
} as const

const resultLineSchema = {
  type: 'object',
  description: 'One line of the results stream',
  required: ['index', 'status', 'requestId', 'evidence'],
  properties: {
    index: { type: 'integer', description: 'position of the item in the submission, from 0' },
    status: { type: 'integer', description: 'the HTTP status a single query would have had', examples: [200] },
    requestId: { type: 'string', description: '<batch id>.<index>: the request id of the item\'s audit record' },
    body: { type: 'object', additionalProperties: true, description: 'the answer (status < 400)', examples: [{ match: true }] },
    problem: { $ref: 'problem#' },
    evidence: { type: 'string', description: 'Tongban-Evidence of the item (base64url JSON); responseDigest = sha256(JCS(body or problem))' },
  },
  examples: [{ index: 0, status: 200, requestId: '01JBATCH0000000000000000AA.0', body: { match: true }, evidence: 'eyJ2IjoxLC4uLn0' }],
}

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

type SubmitBody = { service?: string; resource?: string; operation?: string; items: unknown[] }

export interface BatchRouteDeps {
  queue: BatchQueue
  /** In a tier tree: a batch for a resource owned elsewhere is accepted and its items relayed. */
  relay?: Pick<Relay, 'decide'>
}

/** What a submission resolves to: this node's resource, or a target the relay forwards. */
type Resolved =
  | { resource: CatalogResource; code: string; operation: string; service: string | null; remote?: undefined }
  | { resource?: undefined; code: string; operation: string; service: string | null; remote: { hop: string; owner: string | null } }

export async function batchRoutes(app: FastifyInstance, deps: BatchRouteDeps) {
  const { config, catalog, purposes, db } = app
  const maxItems = config.batch.maxItems

  // NDJSON uploads: read as a stream, line by line, with the size and count enforced while
  // reading (Fastify's bodyLimit does not apply to stream parsers). The exact bytes are kept
  // for the submission's audit record.
  app.addContentTypeParser(NDJSON, async (request: FastifyRequest, payload: IncomingMessage) => {
    const limit = request.routeOptions.bodyLimit ?? config.batch.maxBytes
    const declared = Number(request.headers['content-length'])
    if (Number.isFinite(declared) && declared > limit) throw new Problem(413, 'INPUT_TOO_LARGE', `the upload is larger than ${limit} bytes`)
    const decoder = new StringDecoder('utf8')
    const chunks: Buffer[] = []
    const items: unknown[] = []
    let size = 0
    let line = 0
    let tail = ''
    const take = (text: string) => {
      line++
      const s = text.trim()
      if (!s) return
      if (items.length >= maxItems) throw new Problem(413, 'BATCH_TOO_MANY_ITEMS', `a batch holds at most ${maxItems} items`)
      try {
        items.push(JSON.parse(s))
      } catch {
        throw new Problem(400, 'INPUT_MALFORMED_NDJSON', `line ${line} is not valid JSON`)
      }
    }
    for await (const chunk of payload as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > limit) throw new Problem(413, 'INPUT_TOO_LARGE', `the upload is larger than ${limit} bytes`)
      chunks.push(chunk)
      const parts = (tail + decoder.write(chunk)).split('\n')
      tail = parts.pop()!
      for (const p of parts) take(p)
    }
    tail += decoder.end()
    take(tail)
    request.rawBody = Buffer.concat(chunks)
    return { items }
  })

  const consumerOnly = [app.authenticate, app.requireRole('consumer')]
  const me = (request: FastifyRequest) => request.principal as Principal

  /** The caller's batch, or 404 (another system's batches do not exist for it). */
  const own = async (request: FastifyRequest<{ Params: { id: string } }>): Promise<Batch> => {
    const b = await getBatch(db, request.params.id)
    if (!b || b.consumerSystem !== me(request).system) throw new Problem(404, 'BATCH_NOT_FOUND', 'no such batch')
    request.audit.resource = b.resource
    return b
  }

  const view = (b: Batch) => {
    const done = b.succeeded + b.failed
    const elapsed = b.startedAt ? ((b.finishedAt ?? new Date()).getTime() - b.startedAt.getTime()) / 1000 : 0
    const rate = b.startedAt && elapsed > 0 && done > 0 ? done / elapsed : null
    const open = b.status === 'queued' || b.status === 'running'
    return {
      id: b.id,
      status: b.status,
      resource: b.resource,
      operation: b.operation,
      service: b.service,
      purpose: b.purpose,
      caseId: b.caseId,
      total: b.total,
      done,
      succeeded: b.succeeded,
      failed: b.failed,
      pending: b.total - done,
      itemsPerSecond: rate === null ? null : Math.round(rate * 10) / 10,
      etaSeconds: !open ? 0 : rate ? Math.round(((b.total - done) / rate) * 10) / 10 : null,
      createdAt: b.createdAt.toISOString(),
      startedAt: b.startedAt?.toISOString() ?? null,
      finishedAt: b.finishedAt?.toISOString() ?? null,
      links: { self: `/v1/batches/${b.id}`, results: `/v1/batches/${b.id}/results` },
    }
  }

  // Not here: relayed when the relay has a next hop for it (the owner is below, or the code
  // may be held above); the owner decides every item as it would a single query.
  const remoteTarget = (request: FastifyRequest, t: Parameters<Relay['decide']>[0]) => {
    if (!deps.relay) return null
    const d = deps.relay.decide(t, me(request).region, 'origin')
    return d.kind === 'hop' ? { hop: d.hop.id, owner: d.entry?.node ?? null, code: d.entry?.code } : null
  }

  const resolve = (request: FastifyRequest, d: { service?: string; resource?: string; operation?: string }): Resolved => {
    if (d.service) {
      if (d.resource) throw new Problem(400, 'INPUT_INVALID', 'give either service or resource, not both')
      const resource = catalog.forVerifyService(d.service, me(request).region)
      if (resource) return { resource, code: resource.code, operation: 'verify', service: d.service }
      const r = /^[a-z][a-z0-9-]{0,31}$/.test(d.service) ? remoteTarget(request, { kind: 'verify', service: d.service }) : null
      if (!r) throw new Problem(404, 'SERVICE_UNKNOWN', `no verification service ${d.service.slice(0, 64)} for this region`)
      // The owner's code when it published below this node; else the target (owner above).
      return { code: r.code ?? `verify/${d.service}`, operation: 'verify', service: d.service, remote: { hop: r.hop, owner: r.owner } }
    }
    if (!d.resource || !d.operation) throw new Problem(400, 'INPUT_INVALID', 'give service, or resource and operation')
    const resource = catalog.get(d.resource)
    if (!resource) {
      const r = /^[0-9]{6}\/[0-9]{5}$/.test(d.resource) && /^[a-z][a-z0-9-]{0,31}$/.test(d.operation)
        ? remoteTarget(request, { kind: 'resources', code: d.resource, operation: d.operation })
        : null
      if (!r) throw new Problem(404, 'RESOURCE_NOT_FOUND', 'no such resource in the catalogue')
      return { code: d.resource, operation: d.operation, service: null, remote: { hop: r.hop, owner: r.owner } }
    }
    if (!resource.service || !ownValue(resource.service.operations, d.operation)) throw new Problem(404, 'RESOURCE_OPERATION_UNKNOWN', `resource ${resource.code} has no operation ${d.operation.slice(0, 64)}`)
    return { resource, code: resource.code, operation: d.operation, service: resource.service.verifyService ?? null }
  }

  /**
   * What can be refused before any item runs, without using quota: retired, not shared,
   * conditional without a grant. Quotas and rate limits are applied per item when it runs,
   * exactly as for single queries.
   */
  const precheck = (principal: Principal, resource: CatalogResource, purpose: string) => {
    if (resource.status === 'retired') throw new Problem(410, 'RESOURCE_RETIRED', `resource ${resource.code} has been retired`)
    if (resource.sharing.type === 'none') throw new Problem(403, 'POLICY_SHARE_NONE', `resource ${resource.code} is not shared (不予共享)`)
    if (resource.sharing.type === 'conditional') {
      const m = app.grants.match(principal.department, principal.system, resource.code, purpose)
      if (!m.grant) throw noGrantProblem(m)
    }
  }

  app.post<{ Body: SubmitBody; Querystring: { service?: string; resource?: string; operation?: string } }>('/v1/batches', {
    onRequest: consumerOnly,
    preValidation: async (request) => readContext(request, purposes),
    bodyLimit: config.batch.maxBytes,
    config: { audit: { operation: 'batch.submit' } },
    schema: {
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
    },
  }, async (request, reply) => {
    const principal = me(request)
    const body = request.body
    const d = { service: body.service ?? request.query.service, resource: body.resource ?? request.query.resource, operation: body.operation ?? request.query.operation }
    const { resource, code, operation, service, remote } = resolve(request, d)
    if (/^[0-9]{6}\/[0-9]{5}$/.test(code)) request.audit.resource = code
    request.audit.operation = `batch.${operation}`
    if (resource) precheck(principal, resource, request.audit.purpose!)
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
  })

  app.get<{ Querystring: { limit?: string } }>('/v1/batches', {
    onRequest: consumerOnly,
    schema: {
      tags: ['batches'],
      summary: "The calling system's recent batches, newest first",
      security: sec,
      querystring: { type: 'object', properties: { limit: { type: 'string', pattern: '^(200|1[0-9]{2}|[1-9][0-9]?)$', description: '1–200, default 50' } } },
      response: { 200: { type: 'object', properties: { batches: { type: 'array', items: progressSchema } } }, ...problemResponses(401, 403) },
    },
  }, async (request) => ({ batches: (await listBatches(db, me(request).system, Number(request.query.limit ?? 50))).map(view) }))

  app.get<{ Params: { id: string } }>('/v1/batches/:id', {
    onRequest: consumerOnly,
    schema: {
      tags: ['batches'],
      summary: 'Progress of a batch: done, succeeded, failed, rate and ETA',
      security: sec,
      params: idParam,
      response: { 200: progressSchema, ...problemResponses(401, 403, 404) },
    },
  }, async (request) => view(await own(request)))

  app.get<{ Params: { id: string }; Querystring: { from?: string } }>('/v1/batches/:id/results', {
    onRequest: consumerOnly,
    config: { audit: { operation: 'batch.results', evidence: false } },
    schema: {
      tags: ['batches'],
      summary: 'Results so far, as NDJSON in index order (one line per finished item, with its evidence)',
      description:
        'Available while the batch runs (what is finished so far) and after it ends. `from` resumes an interrupted download. ' +
        'The header Tongban-Batch-Status tells whether more will come.',
      security: sec,
      params: idParam,
      querystring: { type: 'object', properties: { from: { type: 'string', pattern: '^[0-9]{1,9}$', description: 'first index to return (default 0)' } } },
      response: {
        200: { description: 'NDJSON, one result a line', content: { [NDJSON]: { schema: resultLineSchema } } },
        ...problemResponses(401, 403, 404),
      },
    },
  }, async (request, reply: FastifyReply) => {
    const b = await own(request)
    request.audit.operation = 'batch.results'
    const lines = async function* () {
      for await (const r of readResults(db, b.id, Number(request.query.from ?? 0))) {
        yield `{"index":${r.idx},"status":${r.status},"requestId":${JSON.stringify(r.requestId)},"${r.ok ? 'body' : 'problem'}":${r.body},"evidence":${JSON.stringify(r.evidence)}}\n`
      }
    }
    reply.type(NDJSON).header('tongban-batch-status', b.status)
    // The audit step seals the download's record at the stream's end, over the bytes sent
    // (src/audit/stream.ts): unbounded, so not built in memory first.
    return reply.send(Readable.from(lines(), { objectMode: false }))
  })

  app.delete<{ Params: { id: string } }>('/v1/batches/:id', {
    onRequest: consumerOnly,
    config: { audit: { operation: 'batch.cancel' } },
    schema: {
      tags: ['batches'],
      summary: 'Cancel a batch: no item starts after this; finished items keep their results',
      security: sec,
      params: idParam,
      response: { 200: progressSchema, ...problemResponses(401, 403, 404, 409) },
    },
  }, async (request) => {
    const b = await own(request)
    request.audit.operation = 'batch.cancel'
    const r = await cancelBatch(db, b.id, me(request).system)
    if (!r) throw new Problem(404, 'BATCH_NOT_FOUND', 'no such batch')
    if (!r.changed && r.batch.status === 'completed') throw new Problem(409, 'BATCH_FINISHED', 'the batch has already completed')
    return view(r.batch)
  })
}
