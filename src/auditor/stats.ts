// Service-efficiency analytics (issue 5, item 7): query volumes, denial and failure rates
// by reason, latency percentiles, by day, resource, department, region and tier.
//
// Latency is not a field of the hashed record (a wire contract). It is derived: the
// gateway's generated request ids are ULIDs, whose first 48 bits are the arrival time in
// ms; the record's time is when the answer was ready. Caller-chosen request ids (not
// ULIDs, or implausible) give no latency and are left out of the percentiles.
//
// The definition is `referenceQuery` below: one GROUPING SETS statement over audit_records,
// percentiles by percentile_cont. It reads every record of the range, so it is only run as
// the reference (tests, bench). What answers the endpoint (`computeStats`) gives exactly the
// same result from the daily rollup (rollup.ts, audit_daily):
//
// - whole days (Asia/Shanghai) of the range: their audit_daily rows (counts; latency
//   histograms with 1 ms buckets, so percentiles are exact), plus the records of those days
//   in batches past the rollup watermark, read from audit_records (the open part: what was
//   sealed since the last rollup pass);
// - a partial last day (`to` = now, typically) the same way, when no rolled-up record of
//   that day lies at or after `to`; otherwise, and for a partial first day, the records of
//   the partial day from audit_records;
// - filters the rollup has no column for (system is one; purpose, case, operator, node,
//   chain, grant, subject, request id are not) read the whole range from audit_records.
//
// Both parts are folded into the same (day, key, latency, count) shape and aggregated in one
// statement; percentiles are percentile_cont's own arithmetic (float8, linear interpolation
// between the two closest ranks) over the merged histograms. Everything is read in one
// REPEATABLE READ snapshot, so a rollup pass committing meanwhile is seen wholly or not at all.
import type { Db } from '../stores/postgres.js'
import { whereFor, type ResourceResolver, type SearchFilters } from './search.js'
import { recordFacts, ROLLUP_KEY, ROLLUP_TZ } from './rollup.js'

export const STATS_TZ = ROLLUP_TZ

export interface Counts {
  total: number
  allowed: number
  denied: number
  failed: number
}

export interface Latency {
  p50: number | null
  p95: number | null
  p99: number | null
  samples: number
}

/** How an answer was computed (not part of the statistics themselves). */
export interface StatsPlan {
  path: 'rollup' | 'records' | 'reference'
  /** Days answered from audit_daily (a partial last day included). */
  rollupDays: number
  /** Batches past the rollup watermark, read from audit_records. */
  pendingBatches: number
  /** Time ranges read from audit_records as a whole. */
  recordRanges: Array<[string, string]>
}

export interface StatsResult {
  from: string
  to: string
  timeZone: string
  totals: Counts & { denialRate: number; failureRate: number; latency: Latency }
  byDay: Array<Counts & { day: string; latency: Latency }>
  byReason: Array<{ reason: string; decision: string; count: number }>
  byResource: Array<Counts & { resource: string | null; name?: string; denialRate: number; latency: Latency }>
  byDepartment: Array<Counts & { department: string | null; name?: string; denialRate: number }>
  byRegion: Array<Counts & { region: string | null; tier: string | null }>
  byTier: Array<Counts & { tier: string | null }>
  generatedAt: string
  cached: boolean
  plan: StatsPlan
}

const LATENCY = `CASE WHEN tongban_ulid_ms(request_id) IS NOT NULL
  AND (extract(epoch FROM time) * 1000)::bigint - tongban_ulid_ms(request_id) BETWEEN 0 AND 600000
  THEN (extract(epoch FROM time) * 1000)::bigint - tongban_ulid_ms(request_id) END`

const TIER = `CASE WHEN consumer_region IS NULL THEN NULL WHEN consumer_region = '100000' THEN 'national'
  WHEN consumer_region LIKE '%0000' THEN 'province' WHEN consumer_region LIKE '%00' THEN 'city' ELSE 'county' END`

const GROUPING_SETS = 'GROUPING SETS ((), (day), (reason, decision), (resource), (consumer_department), (consumer_region, tier), (tier))'

const rate = (n: number, d: number) => (d ? Math.round((n / d) * 10000) / 10000 : 0)

export interface StatsOptions {
  filters: SearchFilters & { from: string; to: string }
  resolver: ResourceResolver
  names?: { resource(code: string): string | undefined; department(code: string): string | undefined }
  /** `reference`: the one-statement definition over audit_records (tests, bench). */
  mode?: 'auto' | 'reference'
  /** Past this many batches beyond the watermark, the open part is read by time range (tests lower it). */
  pendingByBatchMax?: number
}

/** Filters that audit_daily_latency has a column for (or that resolve to one). */
const COARSE_FILTERS = new Set<keyof SearchFilters>(['resource', 'provider', 'service', 'operation', 'kind'])

/** Filters that audit_daily has a column for (or that resolve to one). */
const ROLLUP_FILTERS = new Set<keyof SearchFilters>(['from', 'to', 'department', 'system', 'region', 'provider', 'resource', 'service', 'operation', 'kind', 'decision', 'reason'])

const DAY_MS = 86_400_000
// Asia/Shanghai has been UTC+8 all year since 1991 (no DST): midnights are computed here.
const SHANGHAI_OFFSET_MS = 8 * 3_600_000
const FIXED_OFFSET_SINCE = Date.parse('1992-01-01T00:00:00+08:00')
const midnight = (ms: number) => Math.floor((ms + SHANGHAI_OFFSET_MS) / DAY_MS) * DAY_MS - SHANGHAI_OFFSET_MS
const dayName = (ms: number) => new Date(ms + SHANGHAI_OFFSET_MS).toISOString().slice(0, 10)
const iso = (ms: number) => new Date(ms).toISOString()

/**
 * A bound as whole ms, rounded up: record times are whole ms (JavaScript ISO strings), so
 * `time >= x` and `time < x` select the same records for x and for x rounded up to the ms
 * (RFC 3339 allows more digits; Date.parse drops them).
 */
function wholeMs(s: string): number {
  const ms = Date.parse(s)
  const frac = /\.(\d+)/.exec(s)?.[1] ?? ''
  return frac.length > 3 && /[1-9]/.test(frac.slice(3)) ? ms + 1 : ms
}

/**
 * The default range ending at `to`: the 7 calendar days (Asia/Shanghai) up to it, the day
 * of `to` included (whole days: from the rollup, and a chart has no partial first day).
 */
export function defaultFrom(to: string): string {
  return iso(midnight(Date.parse(to) - 1) - 6 * DAY_MS)
}

/** Past this many batches beyond the watermark, the open part is read by time range instead of batch by batch. */
export const PENDING_BY_BATCH_MAX = 2000

export async function computeStats(db: Db, o: StatsOptions): Promise<StatsResult> {
  if (o.mode === 'reference') return shape(o, await referenceQuery(db, o), { path: 'reference', rollupDays: 0, pendingBatches: 0, recordRanges: [[o.filters.from, o.filters.to]] })
  const from = wholeMs(o.filters.from)
  const to = wholeMs(o.filters.to)
  const { from: _f, to: _t, ...filters } = o.filters
  const rollupable = (Object.keys(filters) as (keyof SearchFilters)[]).every((k) => (filters as SearchFilters)[k] === undefined || ROLLUP_FILTERS.has(k))
  // Whole days: [firstDay, lastDay); then the partial last day [lastDay, to).
  const firstDay = from === midnight(from) ? from : midnight(from) + DAY_MS
  const lastDay = midnight(to)
  const client = await db.connect()
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
    const params: unknown[] = []
    const p = (v: unknown) => `$${params.push(v)}`
    let tzParam: string | undefined
    const tz = () => (tzParam ??= p(STATS_TZ))
    const byBatchMax = o.pendingByBatchMax ?? PENDING_BY_BATCH_MAX
    // Parameters are numbered as they are used: nothing may be pushed that the SQL does not use.
    let rawWhereSql: string | undefined
    const rawWhere = () => (rawWhereSql ??= whereFor(filters, o.resolver, params, 'r.').sql)
    const segments: string[] = []
    const plan: StatsPlan = { path: 'records', rollupDays: 0, pendingBatches: 0, recordRanges: [] }
    const range = (a: number, b: number) => {
      if (a >= b) return
      plan.recordRanges.push([iso(a), iso(b)])
      segments.push(recordFacts('audit_records r', `r.time >= ${p(iso(a))}::timestamptz AND r.time < ${p(iso(b))}::timestamptz AND ${rawWhere()}`, tz()))
    }
    let roll = ''
    let rollLatency = ''
    if (!rollupable || from < FIXED_OFFSET_SINCE || firstDay > lastDay) {
      range(from, to)
    } else {
      plan.path = 'rollup'
      // The rollup's state in this snapshot: every chain's watermark, the batches past it,
      // and whether the partial last day can come from the rollup.
      const { rows: chains } = await client.query(
        `WITH RECURSIVE ch AS (
           (SELECT chain FROM audit_checkpoints ORDER BY chain LIMIT 1)
           UNION ALL
           SELECT (SELECT c.chain FROM audit_checkpoints c WHERE c.chain > ch.chain ORDER BY c.chain LIMIT 1) FROM ch WHERE ch.chain IS NOT NULL
         )
         SELECT ch.chain, coalesce(w.seq, 0)::bigint AS done,
           (SELECT array_agg(x.seq ORDER BY x.seq) FROM (SELECT c.seq FROM audit_checkpoints c WHERE c.chain = ch.chain AND c.seq > coalesce(w.seq, 0) ORDER BY c.seq LIMIT ${byBatchMax + 1}) x)::bigint[] AS pending
         FROM ch LEFT JOIN audit_rollup_state w ON w.chain = ch.chain WHERE ch.chain IS NOT NULL`,
      )
      const partial = to > lastDay
      let tailFromRollup = false
      if (partial) {
        const { rows: [t] } = await client.query('SELECT max(last_time) < $2::timestamptz AS ok FROM audit_daily WHERE day = $1::date', [dayName(lastDay), iso(to)])
        tailFromRollup = t.ok !== false
      }
      const rollEnd = tailFromRollup ? to : lastDay
      const rollEndDay = tailFromRollup ? lastDay + DAY_MS : lastDay
      plan.rollupDays = Math.round((rollEndDay - firstDay) / DAY_MS)
      range(from, firstDay)
      if (!tailFromRollup) range(lastDay, to)
      // The open part: records of the rolled-up days in batches past the watermark.
      const pending = chains.flatMap((c) => (c.pending ?? []).map((s: string) => ({ chain: c.chain as string, seq: Number(s) })))
      plan.pendingBatches = pending.length
      if (pending.length && rollEnd > firstDay) {
        const a = p(iso(firstDay))
        const b = p(iso(rollEnd))
        if (pending.length <= byBatchMax) {
          segments.push(recordFacts(
            `unnest(${p(pending.map((x) => x.chain))}::text[], ${p(pending.map((x) => x.seq))}::bigint[]) AS pb(chain, seq)
             CROSS JOIN LATERAL (SELECT * FROM audit_records r0 WHERE r0.chain = pb.chain AND r0.seq = pb.seq
               AND r0.time >= ${a}::timestamptz AND r0.time < ${b}::timestamptz OFFSET 0) AS r`,
            rawWhere(), tz()))
        } else {
          // Far behind (the rollup has not run for a while): by time, minus what is rolled up.
          segments.push(recordFacts(
            `audit_records r LEFT JOIN unnest(${p(chains.map((c) => c.chain))}::text[], ${p(chains.map((c) => Number(c.done)))}::bigint[]) AS w(chain, seq) ON w.chain = r.chain`,
            `r.time >= ${a}::timestamptz AND r.time < ${b}::timestamptz AND r.seq > coalesce(w.seq, 0) AND ${rawWhere()}`, tz()))
        }
      }
      if (rollEndDay > firstDay) {
        const d0 = p(dayName(firstDay))
        const d1 = p(dayName(rollEndDay))
        roll = `SELECT d.day, ${ROLLUP_KEY.map((k) => `d.${k}`).join(', ')}, d.records FROM audit_daily d
          WHERE d.day >= ${d0}::date AND d.day < ${d1}::date AND ${whereFor(filters, o.resolver, params, 'd.').sql}`
        // Latency: from the (day, resource, operation) histograms when nothing else filters;
        // else from audit_daily's own, of the rows that match.
        rollLatency = (Object.keys(filters) as (keyof SearchFilters)[]).every((k) => (filters as SearchFilters)[k] === undefined || COARSE_FILTERS.has(k))
          ? `SELECT l.day, l.resource, u.ms, u.n FROM audit_daily_latency l CROSS JOIN LATERAL unnest(l.latency_ms, l.latency_n) AS u(ms, n)
             WHERE l.day >= ${d0}::date AND l.day < ${d1}::date AND ${whereFor(filters, o.resolver, params, 'l.').sql}`
          : `SELECT d.day, d.resource, u.ms, u.n FROM audit_daily d CROSS JOIN LATERAL unnest(d.latency_ms, d.latency_n) AS u(ms, n)
             WHERE d.day >= ${d0}::date AND d.day < ${d1}::date AND ${whereFor(filters, o.resolver, params, 'd.').sql}`
      }
    }
    const KEY = ROLLUP_KEY.join(', ')
    const none = `SELECT NULL::date AS day, ${ROLLUP_KEY.map((k) => `NULL::text AS ${k}`).join(', ')}`
    const sql = `
      WITH raw AS MATERIALIZED (
        ${segments.length ? segments.join('\n UNION ALL\n') : `${none}, NULL::timestamptz AS time, NULL::bigint AS latency WHERE false`}
      ),
      roll AS (
        ${roll || `${none}, 0::bigint AS records WHERE false`}
      ),
      cnt AS (
        SELECT day, ${KEY}, count(*)::bigint AS n FROM raw GROUP BY day, ${KEY}
        UNION ALL
        SELECT day, ${KEY}, records FROM roll
      ),
      counts AS (
        SELECT grouping(day) AS g_day, grouping(reason, decision) AS g_reason, grouping(resource) AS g_resource,
          grouping(consumer_department) AS g_dept, grouping(consumer_region, tier) AS g_region, grouping(tier) AS g_tier,
          day, reason, decision, resource, consumer_department, consumer_region, tier,
          coalesce(sum(n), 0)::int AS total,
          coalesce(sum(n) FILTER (WHERE decision = 'allowed'), 0)::int AS allowed,
          coalesce(sum(n) FILTER (WHERE decision = 'denied'), 0)::int AS denied,
          coalesce(sum(n) FILTER (WHERE decision = 'failed'), 0)::int AS failed
        FROM (SELECT *, ${TIER} AS tier FROM cnt) c
        GROUP BY ${GROUPING_SETS}
      ),
      lat AS (
        SELECT day, resource, latency::int AS ms, count(*)::bigint AS n FROM raw WHERE latency IS NOT NULL GROUP BY day, resource, latency
        ${rollLatency ? `UNION ALL
        SELECT day, resource, ms, sum(n)::bigint AS n FROM (${rollLatency}) rl GROUP BY day, resource, ms` : ''}
      ),
      hist AS (
        SELECT grouping(day) AS gd, grouping(resource) AS gr, day, resource, ms, sum(n)::bigint AS n
        FROM lat GROUP BY GROUPING SETS ((ms), (day, ms), (resource, ms))
      ),
      hc AS (
        SELECT gd, gr, day, resource, ms,
          sum(n) OVER (PARTITION BY gd, gr, day, resource ORDER BY ms)::bigint AS cum,
          sum(n) OVER (PARTITION BY gd, gr, day, resource)::bigint AS tot
        FROM hist
      ),
      ranks AS (
        SELECT gd, gr, day, resource, max(tot) AS tot,
          ${[0.5, 0.95, 0.99].map((q, i) => {
            const pos = `(${q}::float8 * (tot - 1)::float8)`
            return `min(ms) FILTER (WHERE cum > floor${pos}) AS lo${i}, min(ms) FILTER (WHERE cum > ceil${pos}) AS hi${i}`
          }).join(',\n          ')}
        FROM hc GROUP BY gd, gr, day, resource
      ),
      pct AS (
        -- percentile_cont: first + proportion * (second − first), in float8, as PostgreSQL does
        SELECT gd, gr, day, resource, tot AS samples, ARRAY[${[0.5, 0.95, 0.99].map((q, i) => {
          const pos = `(${q}::float8 * (tot - 1)::float8)`
          return `CASE WHEN ceil${pos} > floor${pos} THEN lo${i}::float8 + ((${pos} - floor${pos}) * (hi${i}::float8 - lo${i}::float8)) ELSE lo${i}::float8 END`
        }).join(', ')}] AS pct
        FROM ranks
      )
      SELECT c.g_day, c.g_reason, c.g_resource, c.g_dept, c.g_region, c.g_tier,
        to_char(c.day, 'YYYY-MM-DD') AS day, c.reason, c.decision, c.resource, c.consumer_department, c.consumer_region, c.tier,
        c.total, c.allowed, c.denied, c.failed, coalesce(p.samples, 0)::int AS samples, p.pct
      FROM counts c
      LEFT JOIN pct p ON c.g_reason <> 0 AND c.g_dept <> 0 AND c.g_region <> 0 AND c.g_tier <> 0
        AND p.gd = c.g_day AND p.gr = c.g_resource
        AND p.day IS NOT DISTINCT FROM c.day AND p.resource IS NOT DISTINCT FROM c.resource`
    const { rows } = await client.query(sql, params)
    await client.query('COMMIT')
    return shape(o, rows, plan)
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {})
    throw e
  } finally {
    client.release()
  }
}

/**
 * The definition: one statement over audit_records, percentile_cont per group. Reads every
 * record of the range (seconds at a million records): the reference for tests and bench.
 */
export async function referenceQuery(db: Db, o: Pick<StatsOptions, 'filters' | 'resolver'>): Promise<any[]> {
  const { sql, params } = whereFor(o.filters, o.resolver)
  const tz = `$${params.push(STATS_TZ)}`
  const { rows } = await db.query(
    `WITH r AS (
       SELECT time, decision, reason, resource, consumer_department, consumer_region,
         (time AT TIME ZONE ${tz})::date AS day, ${LATENCY} AS latency, ${TIER} AS tier
       FROM audit_records WHERE ${sql}
     )
     SELECT grouping(day) AS g_day, grouping(reason, decision) AS g_reason, grouping(resource) AS g_resource,
       grouping(consumer_department) AS g_dept, grouping(consumer_region, tier) AS g_region, grouping(tier) AS g_tier,
       to_char(day, 'YYYY-MM-DD') AS day, reason, decision, resource, consumer_department, consumer_region, tier,
       count(*)::int AS total,
       count(*) FILTER (WHERE decision = 'allowed')::int AS allowed,
       count(*) FILTER (WHERE decision = 'denied')::int AS denied,
       count(*) FILTER (WHERE decision = 'failed')::int AS failed,
       count(latency)::int AS samples,
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency) AS pct
     FROM r
     GROUP BY ${GROUPING_SETS}`,
    params,
  )
  return rows
}

// Ties in the rankings are broken by their key (absent last), so an answer does not depend
// on the order in which PostgreSQL happened to return the groups.
const byKey = (a: string | null, b: string | null) => (a === b ? 0 : a === null ? 1 : b === null ? -1 : a < b ? -1 : 1)

function shape(o: StatsOptions, rows: any[], plan: StatsPlan): StatsResult {
  const counts = (r: any): Counts => ({ total: r.total, allowed: r.allowed, denied: r.denied, failed: r.failed })
  const latency = (r: any): Latency => {
    const p = r.pct as Array<number | null> | null
    const round = (x: number | null | undefined) => (x === null || x === undefined ? null : Math.round(x * 10) / 10)
    return { p50: round(p?.[0]), p95: round(p?.[1]), p99: round(p?.[2]), samples: r.samples }
  }
  const only = (flags: Record<string, number>) =>
    rows.filter((r) => ['g_day', 'g_reason', 'g_resource', 'g_dept', 'g_region', 'g_tier'].every((g) => (flags[g] ?? 1) === 0 ? r[g] === 0 : r[g] !== 0))
  const all = rows.find((r) => r.g_day && r.g_reason && r.g_resource && r.g_dept && r.g_region && r.g_tier)
  const total = all ? counts(all) : { total: 0, allowed: 0, denied: 0, failed: 0 }
  const byCount = <T extends { total: number }>(a: T[], key: (x: T) => string | null) => a.sort((x, y) => y.total - x.total || byKey(key(x), key(y)))
  return {
    from: o.filters.from,
    to: o.filters.to,
    timeZone: STATS_TZ,
    totals: {
      ...total,
      denialRate: rate(total.denied, total.total),
      failureRate: rate(total.failed, total.total),
      latency: all ? latency(all) : { p50: null, p95: null, p99: null, samples: 0 },
    },
    byDay: only({ g_day: 0 })
      .map((r) => ({ day: r.day as string, ...counts(r), latency: latency(r) }))
      .sort((a, b) => a.day.localeCompare(b.day)),
    byReason: only({ g_reason: 0 })
      .filter((r) => r.reason !== null)
      .map((r) => ({ reason: r.reason as string, decision: r.decision as string, count: r.total as number }))
      .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason) || byKey(a.decision, b.decision)),
    byResource: byCount(only({ g_resource: 0 }).map((r) => ({
      resource: r.resource,
      ...(r.resource && o.names?.resource(r.resource) ? { name: o.names.resource(r.resource) } : {}),
      ...counts(r),
      denialRate: rate(r.denied, r.total),
      latency: latency(r),
    })), (x) => x.resource),
    byDepartment: byCount(only({ g_dept: 0 }).map((r) => ({
      department: r.consumer_department,
      ...(r.consumer_department && o.names?.department(r.consumer_department) ? { name: o.names.department(r.consumer_department) } : {}),
      ...counts(r),
      denialRate: rate(r.denied, r.total),
    })), (x) => x.department),
    byRegion: byCount(only({ g_region: 0, g_tier: 0 }).map((r) => ({ region: r.consumer_region, tier: r.tier, ...counts(r) })), (x) => x.region),
    byTier: byCount(only({ g_tier: 0 }).map((r) => ({ tier: r.tier, ...counts(r) })), (x) => x.tier),
    generatedAt: new Date().toISOString(),
    cached: false,
    plan,
  }
}

/** A small time-bounded cache: ranges that ended a while ago do not change (append-only). */
export class StatsCache {
  private readonly entries = new Map<string, { at: number; ttl: number; value: StatsResult }>()

  constructor(private readonly max = 200) {}

  get(key: string): StatsResult | undefined {
    const e = this.entries.get(key)
    if (!e) return undefined
    if (Date.now() - e.at > e.ttl) {
      this.entries.delete(key)
      return undefined
    }
    return { ...e.value, cached: true }
  }

  set(key: string, value: StatsResult): void {
    const closed = Date.parse(value.to) < Date.now() - 60_000
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!)
    this.entries.set(key, { at: Date.now(), ttl: closed ? 10 * 60_000 : 15_000, value })
  }
}
