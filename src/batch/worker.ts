// Runs one chunk of a batch: every item is one query through the same pipeline as a single
// call (QueryEngine.run: authorize with quotas and sharing rules, upstream, item filter),
// as the submitting principal, under the batch's purpose and case; then its own audit
// record is sealed (allowed, denied or failed, with the problem code) and its result row
// written. Idempotent per item: indices that already have a result are skipped, and a row
// is never written twice (unique key). An item whose answer was sealed but whose row was
// not yet written when the worker died is queried again on retry; it then has two audit
// records (both true: it was queried twice) and still one result.
import type { FastifyRequest } from 'fastify'
import type { Config } from '../config/index.js'
import type { Db } from '../stores/postgres.js'
import type { CatalogResource } from '../catalog/repository.js'
import type { QueryEngine } from '../exchange/query.js'
import type { AuditContext } from '../audit/plugin.js'
import { buildAuditRecord } from '../audit/plugin.js'
import { encodeEvidence, type AuditRecord, type Evidence } from '../audit/evidence.js'
import { jcs } from '../audit/jcs.js'
import { Problem, isProblem } from '../problem.js'
import { problemBody } from '../problem-plugin.js'
import { checkIdNumber } from '../exchange/validate/id-number.js'
import { checkCreditCode } from '../exchange/validate/credit-code.js'
import { periodRefusal } from '../exchange/validate/period.js'
import type { Metrics } from '../ops/metrics.js'
import type { UpstreamLimits } from './limits.js'
import { doneIndices, getBatch, loadChunk, markRunning, statusOf, writeResults, deleteItems, type Batch, type ResultRow } from './store.js'

export interface ChunkJobData {
  batchId: string
  chunk: number
}

export interface ProcessorDeps {
  db: Db
  config: Config
  catalog: { get(code: string): CatalogResource | undefined }
  exchange: Pick<QueryEngine, 'run' | 'validateRequest'>
  sealer: { seal(record: AuditRecord): Promise<Evidence> }
  hashSubject(value: string): string
  limits: UpstreamLimits
  metrics?: Metrics
  log: { info(o: object, m?: string): void; warn(o: object, m?: string): void; error(o: object, m?: string): void }
}

/** The job cannot go on now (audit store or quota store away): BullMQ retries it later. */
export class TransientBatchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'TransientBatchError'
  }
}

// Refusals that say nothing about the item: retrying the chunk later is right.
const TRANSIENT_CODES = new Set(['QUOTA_UNAVAILABLE', 'AUDIT_UNAVAILABLE', 'REVOCATION_UNAVAILABLE'])
// Upstream failures worth another try for an idempotent operation, after a pause.
const UPSTREAM_RETRY_CODES = new Set(['UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'UPSTREAM_ERROR'])
const UPSTREAM_RETRIES = 2
const RATE_RETRIES = 30
const CANCEL_CHECK_MS = 500

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A body-validation error of QueryEngine.validateRequest, as the HTTP path would code it. */
export function validationProblem(item: unknown, err: { validation?: Array<{ keyword: string; instancePath: string; params?: any; message?: string }> }): Problem {
  const errors = err.validation ?? []
  for (const v of errors) {
    if (v.keyword !== 'format') continue
    const value = pointerGet(item, v.instancePath)
    if (typeof value !== 'string') continue
    const check = v.params?.format === 'gb11643' ? checkIdNumber(value) : v.params?.format === 'gb32100' ? checkCreditCode(value) : null
    if (check && !check.ok) return new Problem(400, check.code, `${v.instancePath.slice(1) || 'value'}: ${check.reason}`)
  }
  // Rules across fields (a reversed period) have their own code when nothing else is wrong.
  const period = periodRefusal(errors)
  if (period) return new Problem(400, period.code, period.reason)
  return new Problem(400, 'INPUT_INVALID', 'item does not match the schema', {
    errors: errors.slice(0, 20).map((v) => ({ pointer: v.instancePath || '/', detail: v.message ?? v.keyword })),
  })
}

function pointerGet(obj: unknown, pointer: string): unknown {
  let cur: any = obj
  for (const part of pointer.split('/').slice(1)) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = Object.prototype.hasOwnProperty.call(cur, part) ? cur[part] : undefined
  }
  return cur
}

/** Request id of item `index` of a batch: deterministic, so a re-run keeps it. */
export const itemRequestId = (batchId: string, index: number) => `${batchId}.${index}`

/**
 * Results written as they come, one statement at a time: while one write is in flight the
 * next rows gather (the sealer's group-commit idea), so a killed worker loses at most the
 * rows of one write and the database sees few statements.
 */
class ResultWriter {
  private pending: ResultRow[] = []
  private writing: Promise<void> | null = null
  failure: Error | null = null
  last: { succeeded: number; failed: number; total: number; status: string } | null = null

  constructor(private readonly db: Db, private readonly batchId: string) {}

  push(row: ResultRow): void {
    this.pending.push(row)
    if (!this.writing) this.kick()
  }

  private kick(): void {
    if (this.writing || this.pending.length === 0 || this.failure) return
    const rows = this.pending.splice(0)
    this.writing = writeResults(this.db, this.batchId, rows)
      .then((p) => {
        if (p) this.last = p
      })
      .catch((e) => {
        this.failure = e as Error
      })
      .finally(() => {
        this.writing = null
        this.kick()
      })
  }

  async drain(): Promise<void> {
    while (this.writing || (this.pending.length > 0 && !this.failure)) {
      this.kick()
      await this.writing
    }
    if (this.failure) throw new TransientBatchError(`batch results could not be written: ${this.failure.message}`, { cause: this.failure })
  }
}

export type ChunkOutcome = 'done' | 'skipped' | 'cancelled' | 'interrupted'

export class BatchProcessor {
  constructor(private readonly deps: ProcessorDeps) {}

  /**
   * Runs the items of one chunk that have no result yet. Returns 'interrupted' when
   * `stopping()` turned true before the chunk was finished (the caller re-queues it).
   */
  async processChunk(data: ChunkJobData, stopping: () => boolean = () => false): Promise<ChunkOutcome> {
    const { db, catalog } = this.deps
    const batch = await getBatch(db, data.batchId)
    if (!batch || batch.status === 'completed' || batch.status === 'cancelled') return 'skipped'
    await markRunning(db, batch.id)
    const items = await loadChunk(db, batch.id, data.chunk)
    if (!items) return 'skipped'
    const first = data.chunk * batch.chunkSize
    const done = await doneIndices(db, batch.id, first, first + items.length - 1)
    const todo: number[] = []
    for (let k = 0; k < items.length; k++) if (!done.has(first + k)) todo.push(k)
    if (todo.length === 0) return 'done'

    const resource = catalog.get(batch.resource)
    const upstream = resource?.service?.upstream.name ?? '-'
    const writer = new ResultWriter(db, batch.id)

    // Cancellation is looked up at most every CANCEL_CHECK_MS, shared by the chunk's items.
    let cancelled = false
    let checkedAt = Date.now()
    let checking: Promise<void> | null = null
    const checkCancelled = () => {
      if (cancelled || checking || Date.now() - checkedAt < CANCEL_CHECK_MS) return
      checking = statusOf(db, batch.id)
        .then((s) => {
          if (s === 'cancelled' || s === null) cancelled = true
        }, () => {})
        .finally(() => {
          checkedAt = Date.now()
          checking = null
        })
    }
    const halt = () => cancelled || stopping() || writer.failure !== null

    let transient: Error | null = null
    await Promise.all(
      todo.map((k) =>
        this.deps.limits.run(upstream, async () => {
          checkCancelled()
          if (halt() || transient) return
          try {
            writer.push(await this.runItem(batch, resource, first + k, items[k], halt))
          } catch (e) {
            transient ??= e as Error
          }
        }, halt),
      ),
    )
    await writer.drain()
    if (transient) throw transient
    if (cancelled) return 'cancelled'
    if (stopping()) {
      const left = await doneIndices(db, batch.id, first, first + items.length - 1)
      if (left.size < items.length) return 'interrupted'
    }
    if (writer.last && writer.last.status !== 'running') await deleteItems(db, batch.id).catch(() => {})
    return 'done'
  }

  /** One item: query, seal, and the row to write. Throws only for transient failures. */
  async runItem(batch: Batch, resource: CatalogResource | undefined, index: number, item: unknown, halt: () => boolean): Promise<ResultRow> {
    const { config, exchange, metrics } = this.deps
    const started = performance.now()
    const requestId = itemRequestId(batch.id, index)
    const audit: AuditContext = { purpose: batch.purpose, caseId: batch.caseId, resource: batch.resource, operation: batch.operation }
    if (batch.operator) audit.operator = batch.operator
    let status = 200
    let body: string
    let code: string | null = null
    try {
      if (!resource) throw new Problem(404, 'RESOURCE_NOT_FOUND', `resource ${batch.resource} is no longer in the catalogue`)
      const subjectField = resource.service?.operations[batch.operation]?.subjectField
      const subject = subjectField && item && typeof item === 'object' ? (item as Record<string, unknown>)[subjectField] : undefined
      if (typeof subject === 'string') audit.subject = this.deps.hashSubject(subject)
      try {
        exchange.validateRequest(resource, batch.operation, item)
      } catch (e) {
        throw (e as { validation?: unknown }).validation ? validationProblem(item, e as any) : e
      }
      const idempotent = resource.service?.operations[batch.operation]?.idempotent ?? false
      let answer: unknown
      for (let attempt = 0, rateWaits = 0; ; attempt++) {
        try {
          answer = await exchange.run({ requestId, principal: batch.principal, audit }, resource, batch.operation, item)
          break
        } catch (e) {
          if (!isProblem(e) || halt()) throw e
          if (e.code === 'RATE_LIMITED' && rateWaits++ < RATE_RETRIES) {
            await sleep(1000 - (Date.now() % 1000) + Math.floor(Math.random() * 50))
            attempt--
            continue
          }
          if (idempotent && UPSTREAM_RETRY_CODES.has(e.code) && attempt < UPSTREAM_RETRIES) {
            await sleep(250 * 2 ** attempt)
            continue
          }
          throw e
        }
      }
      body = jcs(answer)
    } catch (e) {
      const p = isProblem(e) ? e : new Problem(500, 'INTERNAL', 'an unexpected error occurred; it has been logged')
      if (!isProblem(e)) this.deps.log.error({ err: e, batch: batch.id, index }, 'batch item failed unexpectedly')
      if (TRANSIENT_CODES.has(p.code)) throw new TransientBatchError(`batch item ${index}: ${p.code}`, { cause: e })
      status = p.status
      code = p.code
      audit.reason = p.code
      body = jcs(problemBody({ id: requestId, audit } as unknown as FastifyRequest, p))
    }
    const record = buildAuditRecord({
      node: config.node.id,
      requestId,
      principal: batch.principal,
      audit,
      status,
      requestBytes: jcs(item ?? null),
      responseBody: body,
      defaults: { resource: batch.resource, operation: batch.operation },
    })
    let evidence: Evidence
    try {
      evidence = await this.deps.sealer.seal(record)
    } catch (e) {
      throw new TransientBatchError(`batch item ${index}: the audit record could not be made durable`, { cause: e })
    }
    const outcome = status < 400 ? 'allowed' : status < 500 ? 'denied' : 'failed'
    metrics?.batchItem({ resource: batch.resource, operation: batch.operation, outcome, code: code ?? '' }, (performance.now() - started) / 1000)
    if (code?.startsWith('UPSTREAM_') && resource?.service) metrics?.upstreamError(resource.service.upstream.name, code)
    return { idx: index, ok: status < 400, status, code, body, requestId, evidence: encodeEvidence(evidence) }
  }
}
