// Runs one chunk of a batch: every item is one query through the same pipeline as a single
// call (QueryEngine.run: authorize with quotas and sharing rules, upstream, item filter),
// as the submitting principal, under the batch's purpose and case; then its own audit
// record is sealed (allowed, denied or failed, with the problem code) and its result row
// written. Idempotent per item: indices that already have a result are skipped, and a row
// is never written twice (unique key). An item whose answer was sealed but whose row was
// not yet written when the worker died is queried again on retry; it then has two audit
// records (both true: it was queried twice) and still one result.
//
// Items of a resource another node owns go through the relay (src/tiers/relay.ts), one
// relayed query per item, as a single query of the consumer would: every hop authenticates,
// audits and signs its leg, the owner enforces its sharing rules; this node seals its own
// leg as the item's record. A relayed batch takes at most half of the next hop's slots
// (tiers.maxConcurrentPerHop), so interactive queries through that hop keep the rest.
import type { FastifyRequest } from 'fastify'
import type { Config } from '../config/index.js'
import type { Db } from '../stores/postgres.js'
import type { CatalogResource } from '../catalog/repository.js'
import type { QueryEngine } from '../exchange/query.js'
import type { AuditContext } from '../audit/plugin.js'
import { buildAuditRecord } from '../audit/plugin.js'
import { decodeEvidence, encodeEvidence, type AuditRecord, type Evidence } from '../evidence/evidence.js'
import { jcs } from '../evidence/jcs.js'
import { Problem, isProblem } from '../problems/problem.js'
import { problemBody } from '../problems/plugin.js'
import { checkIdNumber } from '../gb/id-number.js'
import { checkCreditCode } from '../gb/credit-code.js'
import { periodRefusal } from '../validation/period.js'
import type { Metrics } from '../ops/metrics.js'
import type { UpstreamLimits } from './limits.js'
import type { Relay, Target } from '../tiers/relay.js'
import type { RemoteEntry } from '../tiers/remote-catalog.js'
import { doneIndices, getBatch, loadChunk, markRunning, statusOf, writeResults, deleteItems, type Batch, type ResultRow } from './store.js'
import { own } from '../catalog/own.js'

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
  /** The tiers relay when this node is in a tree: items of resources owned elsewhere go through it. */
  relay?: Pick<Relay, 'decide' | 'relayQuery'>
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

// Refusals that say nothing about the item: retrying the chunk later is right. An open
// breaker towards the next hop is one: the items wait for the hop, not fail one by one.
const TRANSIENT_CODES = new Set(['QUOTA_UNAVAILABLE', 'AUDIT_UNAVAILABLE', 'REVOCATION_UNAVAILABLE', 'HOP_CIRCUIT_OPEN', 'REPLAY_CHECK_UNAVAILABLE'])
// Upstream (or next hop) failures worth another try for an idempotent operation, after a pause.
const UPSTREAM_RETRY_CODES = new Set(['UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'UPSTREAM_ERROR', 'HOP_UNAVAILABLE', 'HOP_TIMEOUT'])
// The next hop's slots are all taken (interactive load): wait a moment, as for a rate limit.
const WAIT_CODES = new Set(['RATE_LIMITED', 'HOP_SATURATED'])
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

/** What a batch asks for, as the relay routes it: a verify service or a resource operation. */
export const batchTarget = (b: { service: string | null; resource: string; operation: string }): Exclude<Target, { kind: 'applications' }> =>
  b.service ? { kind: 'verify', service: b.service } : { kind: 'resources', code: b.resource, operation: b.operation }

/** Where a relayed batch's items go: the next hop, and the owner's entry when this node knows it. */
export interface RemoteRoute {
  target: Exclude<Target, { kind: 'applications' }>
  hop: string
  entry?: RemoteEntry
}

/** The owner's refusal, relayed unchanged, as a Problem of this node (same code, detail, extras). */
function relayedProblem(status: number, code: string | undefined, body: string): Problem {
  let parsed: Record<string, unknown> = {}
  try {
    parsed = JSON.parse(body) as Record<string, unknown>
  } catch {
    /* not JSON: the status says it */
  }
  const { type: _t, title: _ti, status: _s, code: _c, detail, requestId: _r, ...extra } = parsed
  return new Problem(status, code ?? `HTTP_${status}`, typeof detail === 'string' ? detail : undefined, Object.keys(extra).length ? extra : undefined)
}

/**
 * The batch's resource code; undefined for a relayed verify service whose owner this node
 * does not know (held above: the batch names the target, `verify/<service>`, and each
 * item's record the owner's code once the owner has answered).
 */
const codeOf = (b: Batch): string | undefined => (/^[0-9]{6}\/[0-9]{5}$/.test(b.resource) ? b.resource : undefined)

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
    const remote = resource ? null : this.remoteRoute(batch)
    // A relayed batch is limited per next hop, and to half its slots (see the top).
    const upstream = remote ? `hop:${remote.hop}` : resource?.service?.upstream.name ?? '-'
    const cap = remote ? Math.max(1, Math.floor(this.deps.config.tiers.maxConcurrentPerHop / 2)) : undefined
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
            writer.push(await this.runItem(batch, resource, first + k, items[k], halt, remote))
          } catch (e) {
            transient ??= e as Error
          }
        }, halt, cap),
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

  /** The relay's route for a batch whose resource is not in this node's catalogue; null: none. */
  private remoteRoute(batch: Batch): RemoteRoute | null {
    const relay = this.deps.relay
    if (!relay) return null
    const target = batchTarget(batch)
    const d = relay.decide(target, batch.principal.region, 'origin')
    return d.kind === 'hop' ? { target, hop: d.hop.id, entry: d.entry } : null
  }

  /**
   * One relayed query for an item: the owner's answer, or its refusal as a Problem (same
   * status and code). The record names the owner's resource code, read from the owner's
   * evidence, when this node did not know it (a verify service held above).
   */
  private async relayItem(batch: Batch, remote: RemoteRoute, requestId: string, item: unknown, audit: AuditContext): Promise<unknown> {
    const out = await this.deps.relay!.relayQuery(remote.target, {
      requestId,
      principal: batch.principal,
      purpose: batch.purpose,
      caseId: batch.caseId,
      operator: batch.operator,
      body: Buffer.from(jcs(item ?? null)),
    })
    if (!out) throw new Problem(404, 'RESOURCE_NOT_FOUND', `no node answers ${batch.service ? `verify/${batch.service}` : `resource ${batch.resource}`} any more`)
    const owner = out.chain[out.chain.length - 1]
    if (owner) {
      try {
        const r = decodeEvidence(owner).record as { resource?: unknown }
        if (typeof r.resource === 'string') audit.resource = r.resource
      } catch {
        /* checked by the relay already */
      }
    }
    if (out.status >= 400) throw relayedProblem(out.status, out.code, out.body)
    return JSON.parse(out.body)
  }

  /** One item: query, seal, and the row to write. Throws only for transient failures. */
  async runItem(batch: Batch, resource: CatalogResource | undefined, index: number, item: unknown, halt: () => boolean, remote: RemoteRoute | null = null): Promise<ResultRow> {
    const { config, exchange, metrics } = this.deps
    const started = performance.now()
    const requestId = itemRequestId(batch.id, index)
    const audit: AuditContext = { purpose: batch.purpose, caseId: batch.caseId, resource: codeOf(batch), operation: batch.operation }
    if (batch.operator) audit.operator = batch.operator
    let status = 200
    let body: string
    let code: string | null = null
    try {
      // Known here: this node's own resource, or the entry its owner published below it.
      const known = resource ?? (remote?.entry?.entry as CatalogResource | undefined)
      if (!resource && !remote) throw new Problem(404, 'RESOURCE_NOT_FOUND', `resource ${batch.resource} is no longer in the catalogue`)
      const binding = own(known?.service?.operations, batch.operation)
      // As the relay does: the subject field of the binding, else an idNumber in the body.
      const subjectField = binding?.subjectField ?? (remote && item && typeof (item as Record<string, unknown>).idNumber === 'string' ? 'idNumber' : undefined)
      const subject = subjectField && item && typeof item === 'object' ? own(item as Record<string, unknown>, subjectField) : undefined
      if (typeof subject === 'string') audit.subject = this.deps.hashSubject(subject)
      if (known) {
        try {
          exchange.validateRequest(known, batch.operation, item)
        } catch (e) {
          if ((e as { validation?: unknown }).validation) throw validationProblem(item, e as any)
          // A remote entry whose schema file is not on this node: the owner validates.
          if (resource) throw e
        }
      }
      // Verify operations are idempotent by nature; a binding says so for the others.
      const idempotent = binding?.idempotent ?? (remote?.target.kind === 'verify')
      const once = remote
        ? () => this.relayItem(batch, remote, requestId, item, audit)
        : () => exchange.run({ requestId, principal: batch.principal, audit }, resource!, batch.operation, item)
      let answer: unknown
      for (let attempt = 0, rateWaits = 0; ; attempt++) {
        try {
          answer = await once()
          break
        } catch (e) {
          if (!isProblem(e) || halt()) throw e
          if (WAIT_CODES.has(e.code) && rateWaits++ < RATE_RETRIES) {
            await sleep(e.code === 'RATE_LIMITED' ? 1000 - (Date.now() % 1000) + Math.floor(Math.random() * 50) : 50 + Math.floor(Math.random() * 100))
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
      defaults: { resource: codeOf(batch), operation: batch.operation },
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
