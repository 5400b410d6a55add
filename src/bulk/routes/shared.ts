// What the batch routes share: the dependencies, the consumer-only preamble, the caller's
// own batch (or 404), the progress view and its schema.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Problem } from '../../problems/problem.js'
import type { Principal } from '../../auth/principal.js'
import { getBatch, type Batch } from '../store.js'
import type { BatchQueue } from '../queue.js'
import type { Relay } from '../../tiers/relay.js'

export const NDJSON = 'application/x-ndjson'

export interface BatchRouteDeps {
  queue: BatchQueue
  /** In a tier tree: a batch for a resource owned elsewhere is accepted and its items relayed. */
  relay?: Pick<Relay, 'decide'>
}

export const sec = [{ bearer: [] }]
export const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9A-Z]{26}$' } } }

export const me = (request: FastifyRequest) => request.principal as Principal
export const consumerOnly = (app: FastifyInstance) => [app.authenticate, app.requireRole('consumer')]

/** The caller's batch, or 404 (another system's batches do not exist for it). */
export async function own(app: FastifyInstance, request: FastifyRequest<{ Params: { id: string } }>): Promise<Batch> {
  const b = await getBatch(app.db, request.params.id)
  if (!b || b.consumerSystem !== me(request).system) throw new Problem(404, 'BATCH_NOT_FOUND', 'no such batch')
  request.audit.resource = b.resource
  return b
}

export const progressSchema = {
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

/** A batch as the caller sees it: counts, rate and ETA, links. */
export function view(b: Batch) {
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
