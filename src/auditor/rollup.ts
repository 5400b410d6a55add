// The daily rollup behind GET /v1/audit/stats (issue 5, item 7): audit_records folded into
// audit_daily (migration 007) — per day (Asia/Shanghai) and key (resource, operation,
// consumer department, system and region, decision, reason) a record count and a latency
// histogram with fixed 1 ms buckets, from which exact percentiles are computed (stats.ts) —
// and into audit_daily_latency, the same histograms per (day, resource, operation) only.
//
// Incremental, by a watermark per chain: audit_rollup_state.seq is the last batch of the
// chain whose records are counted. A chain's batches commit strictly in seq order (a
// checkpoint is only written when seq − 1 is committed, in the same statement as its
// records: store.ts), so the records of batches (state.seq, target] are exactly the ones
// not counted yet, whatever their times — a batch sealed late by another replica, or
// records dated in a day that was already rolled up, are counted when they arrive.
//
// One step = one transaction: take the schema's rollup advisory lock (try: if another
// replica holds it, this one skips), re-read the watermark, add the records of at most
// `maxRecords` of the chain's next batches to both tables (upsert: counts added, histograms
// merged), move the watermark — all or nothing. Re-running is a no-op; two replicas never
// count a batch twice; a crash mid-step leaves nothing behind.
//
// The runner: a timer on every replica (first pass shortly after start, then every
// minute); the advisory lock lets one replica at a time do the work. No Redis involved:
// the lock lives where the data is, and the stats stay exact if the runner lags (the
// endpoint reads the batches past the watermark from audit_records).
import type { FastifyBaseLogger } from 'fastify'
import type { Db } from '../stores/postgres.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The stats rollup runner of this replica (registered by the auditor plugin). */
    auditRollup: RollupRunner
  }
}

export const ROLLUP_TZ = 'Asia/Shanghai'

/** The key columns of audit_daily, named as in audit_records. */
export const ROLLUP_KEY = ['resource', 'operation', 'consumer_department', 'consumer_system', 'consumer_region', 'decision', 'reason'] as const

/** Latency per record is only defined in this range (ms), as in the stats definition. */
export const MAX_LATENCY_MS = 600_000

/**
 * Per record of `audit_records r`: its day, key, time and latency. The ULID and the record
 * time are decoded once per row (a LATERAL that the planner does not inline). The latency
 * is exactly stats' definition: (record time in ms, rounded) − ULID ms, if 0…600,000.
 */
export function recordFacts(from: string, where: string, tzParam: string): string {
  return `SELECT (r.time AT TIME ZONE ${tzParam})::date AS day, ${ROLLUP_KEY.map((k) => `r.${k}`).join(', ')}, r.time,
      CASE WHEN x.u IS NOT NULL AND x.t - x.u BETWEEN 0 AND ${MAX_LATENCY_MS} THEN x.t - x.u END AS latency
    FROM ${from}
    CROSS JOIN LATERAL (SELECT tongban_ulid_ms(r.request_id) AS u, (extract(epoch FROM r.time) * 1000)::bigint AS t OFFSET 0) x
    WHERE ${where}`
}

const KEY = ROLLUP_KEY.join(', ')

// Two sparse histograms (the row's and the incoming one) merged: counts of equal buckets added.
const merge = (row: string) => `
      SELECT coalesce(array_agg(m.ms ORDER BY m.ms), '{}'), coalesce(array_agg(m.n ORDER BY m.ms), '{}')
      FROM (
        SELECT u.ms, sum(u.n)::int AS n
        FROM (SELECT * FROM unnest(${row}.latency_ms, ${row}.latency_n) UNION ALL SELECT * FROM unnest(excluded.latency_ms, excluded.latency_n)) AS u(ms, n)
        GROUP BY u.ms
      ) AS m`

// The records of batches ($2, $3] of chain $1 → rows of audit_daily, merged into it.
const ROLLUP_CHAIN = `
WITH f AS (${recordFacts('audit_records r', 'r.chain = $1 AND r.seq > $2 AND r.seq <= $3', '$4')}),
h AS (
  SELECT day, ${KEY}, latency, count(*)::int AS n, min(time) AS first_time, max(time) AS last_time
  FROM f GROUP BY day, ${KEY}, latency
),
g AS (
  SELECT day, ${KEY}, sum(n)::bigint AS records,
    coalesce(array_agg(latency ORDER BY latency) FILTER (WHERE latency IS NOT NULL), '{}')::int[] AS latency_ms,
    coalesce(array_agg(n ORDER BY latency) FILTER (WHERE latency IS NOT NULL), '{}')::int[] AS latency_n,
    min(first_time) AS first_time, max(last_time) AS last_time
  FROM h GROUP BY day, ${KEY}
),
up AS (
  INSERT INTO audit_daily AS d (day, ${KEY}, records, latency_ms, latency_n, first_time, last_time)
  SELECT day, ${KEY}, records, latency_ms, latency_n, first_time, last_time FROM g
  ON CONFLICT ON CONSTRAINT audit_daily_key DO UPDATE SET
    records = d.records + excluded.records,
    first_time = least(d.first_time, excluded.first_time),
    last_time = greatest(d.last_time, excluded.last_time),
    (latency_ms, latency_n) = (${merge('d')})
  RETURNING 1
),
gl AS (
  SELECT day, resource, operation, array_agg(latency ORDER BY latency)::int[] AS latency_ms, array_agg(n ORDER BY latency)::int[] AS latency_n
  FROM (SELECT day, resource, operation, latency, sum(n)::int AS n FROM h WHERE latency IS NOT NULL GROUP BY day, resource, operation, latency) x
  GROUP BY day, resource, operation
),
upl AS (
  INSERT INTO audit_daily_latency AS l (day, resource, operation, latency_ms, latency_n)
  SELECT day, resource, operation, latency_ms, latency_n FROM gl
  ON CONFLICT ON CONSTRAINT audit_daily_latency_key DO UPDATE SET
    (latency_ms, latency_n) = (${merge('l')})
  RETURNING 1
)
SELECT (SELECT coalesce(sum(records), 0) FROM g)::bigint AS records, (SELECT count(*) FROM up)::int AS rows, (SELECT count(*) FROM upl)::int AS latency_rows`

// Every chain (a loose index scan over the checkpoints' primary key: one probe per chain),
// its head and its watermark.
export const CHAINS = `
WITH RECURSIVE ch AS (
  (SELECT chain FROM audit_checkpoints ORDER BY chain LIMIT 1)
  UNION ALL
  SELECT (SELECT c.chain FROM audit_checkpoints c WHERE c.chain > ch.chain ORDER BY c.chain LIMIT 1) FROM ch WHERE ch.chain IS NOT NULL
)
SELECT ch.chain, coalesce(w.seq, 0)::bigint AS done,
  (SELECT max(c.seq) FROM audit_checkpoints c WHERE c.chain = ch.chain)::bigint AS head
FROM ch LEFT JOIN audit_rollup_state w ON w.chain = ch.chain
WHERE ch.chain IS NOT NULL
ORDER BY ch.chain`

/** Records per step: ~0.3 s of work on 2 busy cores, far below the pool's query timeout. */
export const DEFAULT_STEP_RECORDS = 10_000

export const LOCK = `SELECT pg_try_advisory_xact_lock(hashtext('tongban-audit-rollup:' || current_schema())) AS ok`

export interface RollupOptions {
  /** Records per transaction (whole batches; at least one batch). Default 10,000. */
  maxRecords?: number
  /** Stop starting new steps after this long (ms); what is left is done next time. Default: none. */
  budgetMs?: number
  /** Tests: called inside the transaction after the upsert, before the watermark moves. */
  beforeCommit?: (step: { chain: string; from: number; to: number; records: number }) => Promise<void> | void
}

export interface RollupResult {
  /** Records added to audit_daily. */
  records: number
  /** Batches (checkpoints) consumed. */
  batches: number
  /** Transactions committed. */
  steps: number
  /** Another replica held the rollup lock: nothing done here. */
  locked: boolean
  /** Work left (the budget ran out). */
  more: boolean
  ms: number
}

interface StepResult {
  records: number
  batches: number
  locked: boolean
  done: boolean
}

/** One transaction: the next batches of one chain. */
async function step(db: Db, chain: string, o: RollupOptions): Promise<StepResult> {
  const client = await db.connect()
  try {
    await client.query('BEGIN')
    try {
      const { rows: [lock] } = await client.query(LOCK)
      if (!lock.ok) {
        await client.query('ROLLBACK')
        return { records: 0, batches: 0, locked: true, done: false }
      }
      const { rows: [w] } = await client.query('SELECT seq FROM audit_rollup_state WHERE chain = $1', [chain])
      const from = w ? Number(w.seq) : 0
      // Whole batches in seq order, as many as fit in maxRecords (at least one).
      const { rows: [t] } = await client.query(
        `SELECT max(seq)::bigint AS seq, count(*)::int AS batches FROM (
           SELECT seq, sum(size) OVER (ORDER BY seq) - size AS before
           FROM (SELECT seq, size FROM audit_checkpoints WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT 10000) a
         ) b WHERE before < $3`,
        [chain, from, o.maxRecords ?? DEFAULT_STEP_RECORDS],
      )
      if (t.seq === null) {
        await client.query('ROLLBACK')
        return { records: 0, batches: 0, locked: false, done: true }
      }
      const to = Number(t.seq)
      const { rows: [r] } = await client.query(ROLLUP_CHAIN, [chain, from, to, ROLLUP_TZ])
      const records = Number(r.records)
      await o.beforeCommit?.({ chain, from, to, records })
      const moved = await client.query(
        `INSERT INTO audit_rollup_state AS s (chain, seq, records, updated_at) VALUES ($1, $3, $4, now())
         ON CONFLICT (chain) DO UPDATE SET seq = excluded.seq, records = s.records + excluded.records, updated_at = now()
         WHERE s.seq = $2`,
        [chain, from, to, records],
      )
      // The lock makes this impossible; if it ever happens, nothing of this step is kept.
      if (moved.rowCount !== 1) throw new Error(`audit rollup: the watermark of ${chain} moved during the step`)
      await client.query('COMMIT')
      return { records, batches: t.batches, locked: false, done: false }
    } catch (e) {
      await client.query('ROLLBACK').catch(() => {})
      throw e
    }
  } finally {
    client.release()
  }
}

/**
 * Brings audit_daily up to date with every chain's committed batches (or as far as the
 * budget allows). Safe to call from anywhere at any time: idempotent, one runner at a time.
 */
export async function rollup(db: Db, o: RollupOptions = {}): Promise<RollupResult> {
  const t0 = performance.now()
  const res: RollupResult = { records: 0, batches: 0, steps: 0, locked: false, more: false, ms: 0 }
  const { rows } = await db.query(CHAINS)
  for (const c of rows) {
    if (Number(c.head) <= Number(c.done)) continue
    for (;;) {
      if (o.budgetMs !== undefined && performance.now() - t0 > o.budgetMs) {
        res.more = true
        break
      }
      const s = await step(db, c.chain, o)
      if (s.locked) {
        res.locked = true
        break
      }
      if (s.done) break
      res.records += s.records
      res.batches += s.batches
      res.steps++
    }
    if (res.locked || res.more) break
  }
  res.ms = Math.round(performance.now() - t0)
  return res
}

/** How far the rollup is: per chain its watermark and head. */
export async function rollupStatus(db: Db): Promise<Array<{ chain: string; done: number; head: number; records: number }>> {
  const { rows } = await db.query(`SELECT c.chain, c.done, c.head, coalesce(s.records, 0)::bigint AS records FROM (${CHAINS}) c LEFT JOIN audit_rollup_state s USING (chain) ORDER BY c.chain`)
  return rows.map((r) => ({ chain: r.chain, done: Number(r.done), head: Number(r.head), records: Number(r.records) }))
}

export interface RunnerOptions extends RollupOptions {
  /** Between passes (ms). Default 60,000. */
  intervalMs?: number
  /** Before the first pass (ms). Default 2,000. */
  firstDelayMs?: number
}

/**
 * The rollup on a timer: every replica runs one; the advisory lock lets one at a time work.
 * A pass that leaves work (budget) is followed by the next one at once; errors (the database
 * away, a step past the query timeout on an overloaded database) are logged, throttled, and
 * the next pass comes at the interval with steps half as large (back to full size as passes
 * succeed).
 */
export class RollupRunner {
  private timer: NodeJS.Timeout | undefined
  private running: Promise<unknown> | undefined
  private stopped = true
  private lastErrorLog = 0
  private stepRecords: number
  last: (RollupResult & { at: string }) | undefined

  constructor(private readonly db: Db, private readonly log: Pick<FastifyBaseLogger, 'info' | 'warn' | 'debug'>, private readonly o: RunnerOptions = {}) {
    this.stepRecords = o.maxRecords ?? DEFAULT_STEP_RECORDS
  }

  start(): void {
    if (!this.stopped) return
    this.stopped = false
    this.schedule(this.o.firstDelayMs ?? 2_000)
  }

  private schedule(ms: number): void {
    if (this.stopped) return
    this.timer = setTimeout(() => void this.pass(), ms)
    this.timer.unref()
  }

  private async pass(): Promise<void> {
    let next = this.o.intervalMs ?? 60_000
    const full = this.o.maxRecords ?? DEFAULT_STEP_RECORDS
    try {
      const r = await this.runNow()
      if (r.more) next = 50
      this.stepRecords = Math.min(full, this.stepRecords * 2)
    } catch (err) {
      this.stepRecords = Math.max(256, Math.floor(this.stepRecords / 2))
      if (Date.now() - this.lastErrorLog > 60_000) {
        this.lastErrorLog = Date.now()
        this.log.warn({ err, stepRecords: this.stepRecords }, 'audit rollup: pass failed; stats read the records past the watermark meanwhile')
      }
    }
    this.schedule(next)
  }

  /** One pass now (waits for a pass already running instead of starting another). */
  async runNow(): Promise<RollupResult> {
    while (this.running) await this.running.catch(() => {})
    const p = rollup(this.db, { budgetMs: 20_000, ...this.o, maxRecords: this.stepRecords })
    this.running = p
    try {
      const r = await p
      this.last = { ...r, at: new Date().toISOString() }
      if (r.records) this.log[r.records > 10_000 ? 'info' : 'debug']({ rollup: r }, 'audit rollup: records added to audit_daily')
      return r
    } finally {
      this.running = undefined
    }
  }

  /** Stops the timer and waits for a pass in progress. */
  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    await this.running?.catch(() => {})
  }
}
