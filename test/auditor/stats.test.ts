// GET /v1/audit/stats against a hand-computed fixture: volumes, denial and failure rates,
// reasons, latency percentiles (from the ULID request ids), by day (Asia/Shanghai),
// resource, department, region and tier. Then the daily rollup (src/audit/rollup.ts): the
// answers from the rollup equal the reference query over the records, whatever has been
// rolled up so far, for whole and partial days and every filter; a re-run of the rollup
// changes nothing; concurrent runs, a run that fails half-way and a run that finds the
// lock taken count nothing twice.
import t from 'tap'
import type { Test } from 'tap'
import { startNode } from '../helpers/harness.js'
import { createSigner } from '../../src/pki/suites.js'
import { sealSynthetic, syntheticRecord, type RecordSpec } from '../../dev/synthetic-audit.js'
import { computeStats, defaultFrom, type StatsResult } from '../../src/auditor/stats.js'
import { rollup, rollupStatus } from '../../src/auditor/rollup.js'
import { resolver } from '../../src/auditor/routes/shared.js'
import type { SearchFilters } from '../../src/auditor/search.js'

const h = await startNode({ tag: 'audstats' })
t.teardown(() => h.close())
// The tests drive the rollup themselves.
await h.app.auditRollup.stop()
const node = h.config.node.id
const signer = { ...createSigner('RS256', h.app.identity.keyPem), kid: h.app.identity.kid }
const auditor = await h.token('js-audit')
const db = h.app.db
const resolve = resolver(h.app)

const JN = { department: '11320115MB0000012H', system: 'jn-civil-affairs', region: '320115' }
const NJ = { department: '11320100MB00000342', system: 'nj-housing', region: '320100' }
const JS = { department: '11320000014000120T', system: 'js-public-security', region: '320000' }
const at = (s: string) => new Date(s)
const fixture: RecordSpec[] = [
  { time: at('2026-01-10T01:00:00.000Z'), consumer: JN, latencyMs: 10 },
  { time: at('2026-01-10T02:00:00.000Z'), consumer: JN, latencyMs: 20 },
  { time: at('2026-01-10T03:00:00.000Z'), consumer: NJ, resource: '103002/00002', operation: 'query', decision: 'denied', reason: 'POLICY_NO_GRANT', latencyMs: 30 },
  { time: at('2026-01-10T04:00:00.000Z'), consumer: JS, resource: '101001/00001', operation: 'catalog.update', latencyMs: 5 }, // admin: not a query
  { time: at('2026-01-10T17:00:00.000Z'), consumer: NJ, latencyMs: 40 }, // 01:00 on the 11th in Shanghai
  { time: at('2026-01-11T05:00:00.000Z'), consumer: JN, decision: 'failed', reason: 'UPSTREAM_TIMEOUT', latencyMs: 50 },
  { time: at('2026-01-11T06:00:00.000Z'), consumer: JS, decision: 'denied', reason: 'QUOTA_EXCEEDED', latencyMs: 60 },
  { time: at('2026-01-11T07:00:00.000Z'), consumer: JN, requestId: 'CALLER-CHOSEN-ID-1' }, // no latency
  { time: at('2026-01-12T07:00:00.000Z'), consumer: JN, latencyMs: 1 }, // outside the range
]
await sealSynthetic(db, { chain: 'stats', node, signer, records: fixture.slice(0, 5).map((s) => syntheticRecord(node, s)) })
await sealSynthetic(db, { chain: 'stats', node, signer, records: fixture.slice(5).map((s) => syntheticRecord(node, s)) })

const range = 'from=2026-01-09T16:00:00.000Z&to=2026-01-11T16:00:00.000Z'
const stats = async (q: string) => {
  const res = await h.app.inject({ method: 'GET', url: `/v1/audit/stats?${q}`, headers: { authorization: `Bearer ${auditor}` } })
  if (res.statusCode !== 200) throw new Error(`${res.statusCode} ${res.body}`)
  return res.json()
}

const checkFixture = (t: Test, s: StatsResult) => {
  t.same(s.totals, {
    total: 7, allowed: 4, denied: 2, failed: 1, denialRate: 0.2857, failureRate: 0.1429,
    // latencies 10, 20, 30, 40, 50, 60 (linear interpolation)
    latency: { p50: 35, p95: 57.5, p99: 59.5, samples: 6 },
  })
  t.same(s.byDay, [
    { day: '2026-01-10', total: 3, allowed: 2, denied: 1, failed: 0, latency: { p50: 20, p95: 29, p99: 29.8, samples: 3 } },
    { day: '2026-01-11', total: 4, allowed: 2, denied: 1, failed: 1, latency: { p50: 50, p95: 59, p99: 59.8, samples: 3 } },
  ])
  t.same(s.byReason, [
    { reason: 'POLICY_NO_GRANT', decision: 'denied', count: 1 },
    { reason: 'QUOTA_EXCEEDED', decision: 'denied', count: 1 },
    { reason: 'UPSTREAM_TIMEOUT', decision: 'failed', count: 1 },
  ])
  t.same(s.byResource.map((r: any) => [r.resource, r.total, r.allowed, r.denied, r.failed, r.denialRate]), [
    ['101001/00001', 6, 4, 1, 1, 0.1667],
    ['103002/00002', 1, 0, 1, 0, 1],
  ])
  t.same(s.byDepartment.map((d: any) => [d.department, d.total, d.denied]), [
    ['11320115MB0000012H', 4, 0],
    ['11320100MB00000342', 2, 1],
    ['11320000014000120T', 1, 1],
  ])
  t.same(s.byRegion.map((r: any) => [r.region, r.tier, r.total]), [['320115', 'county', 4], ['320100', 'city', 2], ['320000', 'province', 1]])
  t.same(s.byTier.map((r: any) => [r.tier, r.total]), [['county', 4], ['city', 2], ['province', 1]])
  t.equal(s.timeZone, 'Asia/Shanghai')
}

const fixtureFilters = { from: '2026-01-09T16:00:00.000Z', to: '2026-01-11T16:00:00.000Z', kind: 'query' as const }

t.test('matches the hand-computed fixture', async (t) => {
  t.test('the reference query over the records', async (t) => {
    checkFixture(t, await computeStats(db, { filters: fixtureFilters, resolver: resolve, mode: 'reference' }))
  })
  t.test('nothing rolled up yet: the open part from the records', async (t) => {
    const s = await computeStats(db, { filters: fixtureFilters, resolver: resolve })
    t.match(s.plan, { path: 'rollup', rollupDays: 2, recordRanges: [] })
    t.ok(s.plan.pendingBatches >= 2, 'the fixture\'s two batches (and the node\'s own) are past the watermark')
    checkFixture(t, s)
  })
  t.test('rolled up: from audit_daily, through the endpoint', async (t) => {
    const r = await rollup(db)
    t.match(r, { locked: false, more: false })
    t.ok(r.records >= 9 && r.batches >= 2, 'the fixture (and the node\'s own records: its token calls) rolled up')
    const s = await stats(range)
    t.match(s.plan, { path: 'rollup', rollupDays: 2, pendingBatches: 0, recordRanges: [] })
    checkFixture(t, s)
    t.equal(s.byResource[0].name, '居民身份信息核验')
    t.equal(s.byDepartment[0].name, '南京市江宁区民政局')
  })
})

t.test('filters, kinds, cache, refusals', async (t) => {
  const nj = await stats(`${range}&department=11320100MB00000342`)
  t.equal(nj.totals.total, 2)
  t.equal(nj.totals.denied, 1)
  const admin = await stats(`${range}&kind=admin`)
  t.equal(admin.totals.total, 1, 'kind=admin counts the catalogue change only')
  const again = await stats(`${range}&department=11320100MB00000342`)
  t.equal(again.cached, true, 'a closed range is served from the cache')
  t.same(again.totals, nj.totals)
  let res = await h.app.inject({ method: 'GET', url: '/v1/audit/stats?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z', headers: { authorization: `Bearer ${auditor}` } })
  t.equal(res.json().code, 'AUDIT_RANGE_INVALID')
  res = await h.app.inject({ method: 'GET', url: '/v1/audit/stats?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z', headers: { authorization: `Bearer ${auditor}` } })
  t.equal(res.json().code, 'AUDIT_RANGE_TOO_LARGE')
  // The default range: the 7 calendar days (Shanghai) up to `to`, its day included.
  t.equal(defaultFrom('2026-11-26T20:00:00.000Z'), '2026-11-20T16:00:00.000Z', 'to mid-day: six whole days and the day of `to`')
  t.equal(defaultFrom('2026-11-26T16:00:00.000Z'), '2026-11-19T16:00:00.000Z', 'to at midnight: seven whole days')
  const recent = await stats('kind=query')
  t.equal(recent.from, defaultFrom(recent.to))
  t.equal(Date.parse(recent.to) <= Date.now() && Date.parse(recent.to) > Date.now() - 60_000, true, '`to` defaults to now')
  const consumer = await h.token('jn-civil-affairs')
  res = await h.app.inject({ method: 'GET', url: `/v1/audit/stats?${range}`, headers: { authorization: `Bearer ${consumer}` } })
  t.equal(res.statusCode, 403)
})

// ---- the rollup against the reference ----------------------------------------------
// Varied history on three chains in March 2026: records around Shanghai midnights, every
// kind of operation, absent consumers and resources, denials and failures with reasons,
// latencies of every sort (none, caller-chosen ids, negative, past the 600 s cap, ties).
let seed = 7 // mulberry32: deterministic
const rand = (n: number) => {
  seed = (seed + 0x6d2b79f5) | 0
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
  return ((x ^ (x >>> 14)) >>> 0) % n
}
const consumers = [JN, NJ, JS, { department: '11320106MB0000099K', system: 'gl-civil-affairs', region: '320106' }, null]
const resources = ['101001/00001', '103002/00002', '201001/00001', null]
const operations = ['verify', 'verify', 'query', null, 'catalog.update', 'grant.revoke', 'token', 'audit.search']
const reasons = { denied: ['POLICY_NO_GRANT', 'QUOTA_EXCEEDED', 'AUTH_TOKEN_INVALID'], failed: ['UPSTREAM_TIMEOUT', 'HTTP_502'] }
const BASE = Date.parse('2026-03-01T00:00:00+08:00')
const spec = (i: number, dayFrom: number, days: number): RecordSpec => {
  // Many around midnight (Shanghai), the rest anywhere in the day.
  const day = dayFrom + rand(days)
  const offset = rand(4) === 0 ? (rand(2) ? 86400_000 - 1 - rand(2000) : rand(2000)) : rand(86400_000)
  const d = rand(20)
  const decision = d < 3 ? 'denied' as const : d < 5 ? 'failed' as const : 'allowed' as const
  const l = rand(40)
  return {
    time: new Date(BASE + day * 86400_000 + offset),
    consumer: consumers[rand(consumers.length)],
    resource: resources[rand(resources.length)],
    operation: operations[rand(operations.length)],
    decision,
    ...(decision !== 'allowed' ? { reason: reasons[decision][rand(reasons[decision].length)] } : {}),
    ...(l === 0 ? { requestId: `caller-${i}` } : l === 1 ? { latencyMs: -5 } : l === 2 ? { latencyMs: 600_001 } : l === 3 ? { latencyMs: 600_000 } : { latencyMs: l < 20 ? 5 + rand(30) : rand(3000) }),
  }
}
const sealMany = async (chain: string, n: number, dayFrom: number, days: number, perBatch = 37) => {
  for (let i = 0; i < n; i += perBatch) {
    const records = Array.from({ length: Math.min(perBatch, n - i) }, (_, k) => syntheticRecord(node, spec(i + k, dayFrom, days)))
    await sealSynthetic(db, { chain, node, signer, records })
  }
}

const day = (n: number, hour = 0) => new Date(BASE + n * 86400_000 + hour * 3600_000).toISOString()
const ranges: Array<[string, string, string]> = [
  ['whole days', day(0), day(10)],
  ['one whole day', day(3), day(4)],
  ['partial first and last day', day(1, 5.5), day(8, 13.25)],
  ['partial last day only', day(2), day(6, 1)],
  ['partial first day only', day(2, 23), day(7)],
  ['within one day', day(4, 1), day(4, 20)],
  ['a day plus a bit', day(4, 23), day(6, 1)],
  ['ending past the data', day(5), day(30)],
  ['to exactly at midnight + 1 ms', day(0), new Date(Date.parse(day(9)) + 1).toISOString()],
  ['bounds with microseconds', day(1).replace('.000Z', '.000001Z'), day(8, 2).replace('.000Z', '.999001Z')],
]
const filterSets: Array<[string, SearchFilters]> = [
  ['kind=query', { kind: 'query' }],
  ['no filter', {}],
  ['kind=admin', { kind: 'admin' }],
  ['kind=login', { kind: 'login' }],
  ['kind=audit', { kind: 'audit' }],
  ['department', { department: NJ.department, kind: 'query' }],
  ['system', { system: JN.system }],
  ['region', { region: '320000' }],
  ['resource', { resource: '103002/00002' }],
  ['provider', { provider: '11320000014000120T' }],
  ['service', { service: 'identity' }],
  ['operation', { operation: 'verify' }],
  ['decision', { decision: 'denied', kind: 'query' }],
  ['reason', { reason: 'HTTP_502' }],
  ['purpose (not in the rollup)', { purpose: 'SA-01' }],
]
const strip = (s: StatsResult) => ({ ...s, generatedAt: null, cached: null, plan: null })

async function agree(t: Test, label: string, o: { pendingByBatchMax?: number; only?: number } = {}) {
  let viaRollup = 0
  // Ending just after the last record of a day with records: that day from the rollup too.
  const [{ last }] = await h.query('SELECT max(time) AS last FROM audit_records WHERE time >= $1 AND time < $2', [day(9), day(10)])
  const afterLast = new Date(last.getTime() + 1).toISOString()
  const tail = await computeStats(db, { filters: { from: day(0), to: afterLast }, resolver: resolve, pendingByBatchMax: o.pendingByBatchMax })
  t.match(tail.plan, { path: 'rollup', rollupDays: 10, recordRanges: [] }, `${label}: a partial last day with every rolled-up record before \`to\` comes from the rollup`)
  for (const [rn, from, to] of [...ranges, ['ending just after the last record of its day', day(1, 7), afterLast] as [string, string, string]]) {
    for (const [fn, f] of filterSets.slice(0, o.only ?? filterSets.length)) {
      const filters = { ...f, from, to }
      const ref = await computeStats(db, { filters, resolver: resolve, mode: 'reference' })
      const fast = await computeStats(db, { filters, resolver: resolve, pendingByBatchMax: o.pendingByBatchMax })
      if (fast.plan.rollupDays > 0) viaRollup++
      t.same(strip(fast), strip(ref), `${label}: ${rn}, ${fn} (${fast.plan.path}, ${fast.plan.rollupDays} days from the rollup, ${fast.plan.pendingBatches} pending batches)`)
    }
  }
  t.ok(viaRollup >= ranges.length, `${label}: answers came from the rollup (${viaRollup})`)
}

async function daily() {
  return h.query(`SELECT day::text, resource, operation, consumer_department, consumer_system, consumer_region, decision, reason, records::int,
    latency_ms, latency_n, first_time, last_time FROM audit_daily
    ORDER BY day, resource NULLS FIRST, operation NULLS FIRST, consumer_department NULLS FIRST, consumer_system NULLS FIRST, consumer_region NULLS FIRST, decision, reason NULLS FIRST`)
}
const state = () => h.query('SELECT chain, seq::int, records::int FROM audit_rollup_state ORDER BY chain')

t.test('the rollup path and the raw path agree', async (t) => {
  await sealMany('agree-a', 700, 0, 10)
  await sealMany('agree-b', 500, 0, 10, 53)
  await sealMany('agree-c', 300, 2, 5, 11)
  const total = 1500
  // The fixture's chain is rolled up already; of the new ones, only part.
  const none = await rollup(db, { budgetMs: 0 })
  t.match(none, { more: true, records: 0 }, 'a budget leaves work for later')
  let steps = 0
  await t.rejects(rollup(db, { maxRecords: 200, beforeCommit: () => { if (++steps > 2) throw new Error('stop here') } }), /stop here/)
  const mid = await rollupStatus(db)
  const a = mid.find((c) => c.chain === 'agree-a')!
  t.ok(a.done > 0 && a.done < a.head, `agree-a half rolled up (${a.done}/${a.head})`)
  t.ok(mid.filter((c) => c.chain.startsWith('agree-')).some((c) => c.done === 0), 'another chain not at all')
  await agree(t, 'partly rolled up')
  await agree(t, 'partly rolled up, open part read by time', { pendingByBatchMax: 3, only: 3 })

  await rollup(db)
  const [{ rolled }] = await h.query("SELECT sum(records)::int AS rolled FROM audit_rollup_state WHERE chain LIKE 'agree-%'")
  t.equal(rolled, total, 'every record rolled up once')
  await agree(t, 'fully rolled up', { only: 8 })

  // Late batches: records dated in days that were rolled up already, on a known chain and
  // on a chain the rollup has never seen.
  await sealMany('agree-a', 120, 1, 4, 40)
  await sealMany('agree-late', 80, 3, 2, 16)
  await agree(t, 'late batches not rolled up yet', { only: 4 })
  await rollup(db)
  await agree(t, 'late batches rolled up', { only: 4 })
  const [{ n }] = await h.query("SELECT sum(records)::int AS n FROM audit_daily WHERE day >= '2026-03-01' AND day < '2026-04-01'")
  t.equal(n, total + 200, 'audit_daily holds every March record exactly once')
})

t.test('a re-run of the rollup is idempotent', async (t) => {
  await rollup(db)
  const before = { daily: await daily(), state: await state() }
  t.ok(before.daily.length > 50)
  const again = await rollup(db)
  t.match(again, { records: 0, batches: 0, steps: 0, locked: false, more: false }, 'nothing to do')
  t.same({ daily: await daily(), state: await state() }, before, 'audit_daily and the watermarks unchanged')

  // A step that fails before it commits leaves nothing behind; the next run does its work once.
  await sealMany('idem', 90, 5, 3, 30)
  await t.rejects(rollup(db, { beforeCommit: () => { throw new Error('crash before commit') } }), /crash before commit/)
  t.same({ daily: await daily(), state: await state() }, before, 'the failed step changed nothing')

  // Another replica holding the lock: this one does nothing.
  const holder = await db.connect()
  try {
    await holder.query("SELECT pg_advisory_lock(hashtext('tongban-audit-rollup:' || current_schema()))")
    const locked = await rollup(db)
    t.match(locked, { locked: true, records: 0 })
    t.same({ daily: await daily(), state: await state() }, before, 'a locked-out run changed nothing')
  } finally {
    await holder.query("SELECT pg_advisory_unlock(hashtext('tongban-audit-rollup:' || current_schema()))")
    holder.release()
  }

  // Two runs at once (two replicas): each batch counted once.
  const [x, y] = await Promise.all([rollup(db, { maxRecords: 30 }), rollup(db, { maxRecords: 30 })])
  t.ok(x.locked || y.locked || x.records + y.records >= 90, 'one run worked, or each did part')
  await rollup(db)
  const [{ idem }] = await h.query("SELECT records::int AS idem FROM audit_rollup_state WHERE chain = 'idem'")
  t.equal(idem, 90, 'the 90 new records counted once between the runs')
  const [{ n }] = await h.query("SELECT sum(records)::int AS n FROM audit_daily WHERE day >= '2026-03-01' AND day < '2026-04-01'")
  t.equal(n, 1700 + 90)
  const after = await rollup(db)
  t.equal(after.records, 0)
  await agree(t, 'after the failed, locked and concurrent runs', { only: 2 })
})

t.test('the runner', async (t) => {
  await sealMany('runner', 20, 6, 1, 10)
  const r = await h.app.auditRollup.runNow()
  t.match(r, { records: 20, batches: 2 })
  t.match(h.app.auditRollup.last, { records: 20 })
  const s = await stats('from=2026-03-01T00:00:00%2B08:00&to=2026-03-11T00:00:00%2B08:00&kind=admin')
  t.match(s.plan, { path: 'rollup', rollupDays: 10, pendingBatches: 0 })
})
