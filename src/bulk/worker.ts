// Runs one chunk of a batch: every item is one query through the same pipeline as a single
// call (src/exchange/query.ts: context, validation, route, sharing rules and quotas,
// upstream, item filter, seal), as the submitting principal, under the batch's purpose and
// case; its own audit record is sealed (allowed, denied or failed, with the problem code)
// and its result row written. Idempotent per item: indices that already have a result are skipped, and a row
// is never written twice (unique key). An item whose answer was sealed but whose row was
// not yet written when the worker died is queried again on retry; it then has two audit
// records (both true: it was queried twice) and still one result.
//
// Items of a resource another node owns go through the engine's route step (src/tiers), one
// relayed query per item, as a single query of the consumer would: every hop authenticates,
// audits and signs its leg, the owner enforces its sharing rules; this node seals its own
// leg as the item's record. A relayed batch takes at most half of the next hop's slots
// (tiers.maxConcurrentPerHop), so interactive queries through that hop keep the rest.
import type { Config } from '../config/index.js'
import type { Db } from '../stores/postgres.js'
import type { CatalogResource } from '../catalog/repository.js'
import type { Query, QueryEngine } from '../exchange/query.js'
import { answerHeaders, type AnswerNote } from '../exchange/plugin.js'
import { DATA_NOTICE_HEADER } from '../disputes/notices.js'
import { encodeEvidence } from '../evidence/evidence.js'
import { jcs } from '../evidence/jcs.js'
import type { ProblemCode } from '../problems/problem.js'
import type { Metrics } from '../ops/metrics.js'
import type { UpstreamLimits } from './limits.js'
import type { Relay, Target } from '../tiers/relay.js'
import type { RemoteEntry } from '../tiers/remote-catalog.js'
import { doneIndices, getBatch, loadChunk, markRunning, statusOf, writeResults, deleteItems, type Batch, type ResultRow } from './store.js'

export interface ChunkJobData {
  batchId: string
  chunk: number
}

export interface ProcessorDeps {
  db: Db
  config: Config
  catalog: { get(code: string): CatalogResource | undefined }
  exchange: Pick<QueryEngine, 'answer' | 'seal'>
  limits: UpstreamLimits
  /** The tiers relay when this node is in a tree: which next hop a relayed batch's items take. */
  relay?: Pick<Relay, 'decide'>
  /** The answer notes a single query's answer gets (app.answerNotes): an item keeps its Tongban-Data-Notice. */
  notes?: readonly AnswerNote[]
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
const TRANSIENT_CODES = new Set<ProblemCode>(['QUOTA_UNAVAILABLE', 'AUDIT_UNAVAILABLE', 'REVOCATION_UNAVAILABLE', 'HOP_CIRCUIT_OPEN', 'REPLAY_CHECK_UNAVAILABLE'])
// Upstream (or next hop) failures worth another try for an idempotent operation, after a pause.
const UPSTREAM_RETRY_CODES = new Set<ProblemCode>(['UPSTREAM_UNAVAILABLE', 'UPSTREAM_TIMEOUT', 'UPSTREAM_ERROR', 'HOP_UNAVAILABLE', 'HOP_TIMEOUT'])
// The next hop's slots are all taken (interactive load): wait a moment, as for a rate limit.
const WAIT_CODES = new Set<ProblemCode>(['RATE_LIMITED', 'HOP_SATURATED'])
const UPSTREAM_RETRIES = 2
const RATE_RETRIES = 30
const CANCEL_CHECK_MS = 500

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** What a batch asks for, as the relay routes it: a verify service or a resource operation. */
export const batchTarget = (b: { service: string | null; resource: string; operation: string }): Exclude<Target, { kind: 'applications' }> =>
  b.service ? { kind: 'verify', service: b.service } : { kind: 'resources', code: b.resource, operation: b.operation }

/** Where a relayed batch's items go: the next hop, and the owner's entry when this node knows it. */
export interface RemoteRoute {
  target: Exclude<Target, { kind: 'applications' }>
  hop: string
  entry?: RemoteEntry
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
            writer.push(await this.runItem(batch, resource, first + k, items[k], halt))
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

  /** One item: query, seal, and the row to write. Throws only for transient failures. */
  async runItem(batch: Batch, _resource: CatalogResource | undefined, index: number, item: unknown, halt: () => boolean): Promise<ResultRow> {
    const { exchange, metrics } = this.deps
    const started = performance.now()
    const requestId = itemRequestId(batch.id, index)
    const q: Query = {
      requestId,
      principal: batch.principal,
      target: batchTarget(batch),
      context: { purpose: batch.purpose, caseId: batch.caseId, operator: batch.operator },
      body: item,
      bodyBytes: jcs(item ?? null),
      state: { resource: codeOf(batch), operation: batch.operation },
    }
    let rateWaits = 0
    const answered = await exchange.answer(q, async (p, attempt, idempotent) => {
      if (halt()) return false
      if (WAIT_CODES.has(p.code) && rateWaits++ < RATE_RETRIES) {
        await sleep(p.code === 'RATE_LIMITED' ? 1000 - (Date.now() % 1000) + Math.floor(Math.random() * 50) : 50 + Math.floor(Math.random() * 100))
        return true
      }
      if (idempotent && UPSTREAM_RETRY_CODES.has(p.code) && attempt < UPSTREAM_RETRIES + rateWaits) {
        await sleep(250 * 2 ** Math.min(attempt, 4))
        return true
      }
      return false
    })
    // Result lines promise the JCS form of each body (reproducible from the parsed line), a
    // relayed owner's bytes included: the record is sealed over that form.
    const answer = { ...answered, body: jcs(JSON.parse(answered.body)) }
    if (answer.code && TRANSIENT_CODES.has(answer.code)) throw new TransientBatchError(`batch item ${index}: ${answer.code}`)
    if (answer.code === 'INTERNAL') this.deps.log.error({ batch: batch.id, index }, 'batch item failed unexpectedly')
    let sealed
    try {
      sealed = await exchange.seal(q, answer)
    } catch (e) {
      throw new TransientBatchError(`batch item ${index}: the audit record could not be made durable`, { cause: e })
    }
    const code = answer.code ?? null
    const outcome = answer.status < 400 ? 'allowed' : answer.status < 500 ? 'denied' : 'failed'
    metrics?.batchItem({ resource: batch.resource, operation: batch.operation, outcome, code: code ?? '' }, (performance.now() - started) / 1000)
    const upstream = this.deps.catalog.get(batch.resource)?.service?.upstream.name
    if (code?.startsWith('UPSTREAM_') && upstream) metrics?.upstreamError(upstream, code)
    // The notice a single query would have carried: this node's own, or the owner's passed on by the relay.
    const dataNotice = answerHeaders(sealed, this.deps.notes ?? []).find(([name]) => name === DATA_NOTICE_HEADER)?.[1] ?? null
    return { idx: index, ok: answer.status < 400, status: answer.status, code, body: answer.body, requestId, evidence: encodeEvidence(sealed.evidence), dataNotice }
  }
}
