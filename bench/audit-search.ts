// Auditor-side benchmark (issue 5): 1,000,000 sealed audit records (real record shape, real
// leaves, Merkle roots and one RS256-signed checkpoint per 256-record batch, chained) made
// directly in a scratch schema, then: the stats rollup catching up (records/s), search
// latency by subject, by case id, by department and day (through the real routes, each
// call itself sealed), subject report, stats (rollup path; the raw reference query once,
// for comparison, and a check that both give the same answer), integrity speed
// (records/s), export and offline verify speed.
//
//   npm run bench:audit [-- --records 1000000 --days 60 --rounds 25]
//   npm run bench:audit -- --schema bench_audit_1m            # keep the schema; a later run with
//                                                             # the same --schema/--records/--days reuses it (no load)
//   npm run bench:audit -- --phases rollup,stats              # only some phases (default: all)
//
// Phases: rollup, search, stats, integrity, export (export + offline verify). At 1M records
// on 2 busy cores: load ~8 min, rollup catch-up < 1 min, searches and stats ~1 min,
// integrity, export and verify ~1 min each; ~13 min in all.
//
// Prints a table and writes bench/results/audit-search-<time>.json.
import { createWriteStream, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cpus, tmpdir } from 'node:os'
import { parseArgs } from 'node:util'
import { startNode, ROOT } from '../test/helpers/harness.js'
import { person } from '../dev/providers/population.js'
import { backdatedSigner, insertBatches, makeBatch, syntheticRecord, type SealedSynthetic } from '../dev/synthetic-audit.js'
import { GENESIS } from '../src/audit/store.js'
import { verifyDatabase } from '../src/auditor/integrity.js'
import { exportBundle, verifyBundle } from '../src/auditor/bundle.js'
import { rollup } from '../src/auditor/rollup.js'
import { computeStats, defaultFrom } from '../src/auditor/stats.js'
import { resolver } from '../src/auditor/routes/shared.js'
import pg from 'pg'

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '1000000' },
    days: { type: 'string', default: '60' },
    rounds: { type: 'string', default: '25' },
    subjects: { type: 'string', default: '50000' },
    schema: { type: 'string' },
    phases: { type: 'string', default: 'rollup,search,stats,integrity,export' },
  },
})
const PHASES = new Set(values.phases!.split(',').map((p) => p.trim()))
for (const p of PHASES) if (!['rollup', 'search', 'stats', 'integrity', 'export'].includes(p)) throw new Error(`unknown phase ${p}`)
if (values.schema && !/^[a-z_][a-z0-9_]{0,62}$/.test(values.schema)) throw new Error('--schema: a lower-case SQL identifier')
const N = Number(values.records)
const DAYS = Number(values.days)
const ROUNDS = Number(values.rounds)
const SUBJECTS = Number(values.subjects)
const BATCH = 256
const log = (m: string) => process.stderr.write(`[bench:audit] ${m}\n`)

const h = await startNode({ tag: 'benchaudit', env: { TONGBAN_PG_POOL: '4' }, ...(values.schema ? { schema: values.schema, keepSchema: true } : {}) })
// The rollup is timed on its own below; the loader's two statements per chunk (checkpoints,
// then records) are not one transaction as the sealer's are, so no rollup may run meanwhile.
await h.app.auditRollup.stop()
const results: Record<string, unknown> = {}
try {
  const node = h.config.node.id
  await h.query('CREATE TABLE IF NOT EXISTS bench_meta (k text PRIMARY KEY, v jsonb NOT NULL)')
  const [meta] = await h.query("SELECT v FROM bench_meta WHERE k = 'load'")
  const reuse = meta && meta.v.records === N && meta.v.days === DAYS && meta.v.subjects === SUBJECTS ? meta.v : null
  if (meta && !reuse) throw new Error(`schema ${h.schema} holds another load (${JSON.stringify(meta.v)}): use another --schema`)
  if (!meta && (await h.query("SELECT 1 FROM audit_checkpoints WHERE chain = 'bench' LIMIT 1")).length) {
    throw new Error(`schema ${h.schema} holds an unfinished load: DROP SCHEMA ${h.schema} CASCADE first`)
  }
  const signer = reuse
    ? { certPem: reuse.certPem as string }
    : await backdatedSigner(h.app.db, {
      caCertPem: h.app.identity.caPem, caKeyPem: readFileSync(join(ROOT, 'certs/ca.key.pem'), 'utf8'), nodeId: node, validFromDaysAgo: DAYS + 10,
    })
  const end: number = reuse ? reuse.end : Date.now() - 3600_000
  const start = end - DAYS * 86400_000
  await h.query('SELECT ensure_audit_partitions($1, $2)', [new Date(start), Math.ceil(DAYS / 28) + 1])

  // ---- load -----------------------------------------------------------------------
  const people = Array.from({ length: SUBJECTS }, (_, i) => person(i).idNumber)
  const hashes = people.map((id) => h.app.hashSubject(id))
  const depts = Array.from({ length: 24 }, (_, i) => ({
    department: `11320${String(100 + i * 4).padStart(3, '0')}MB${String(i).padStart(7, '0')}X`,
    system: `sys-${i}`,
    region: i < 4 ? '320000' : i < 12 ? `3201${String(i).padStart(2, '0')}`.slice(0, 4) + '00' : `3201${String(i).padStart(2, '0')}`,
  }))
  const resources = h.app.catalog.list().map((r) => r.code)
  const purposes = [...h.app.purposes.keys()]
  const reasons = ['POLICY_NO_GRANT', 'QUOTA_EXCEEDED', 'POLICY_PURPOSE_NOT_GRANTED', 'INPUT_INVALID_ID_NUMBER']
  // mulberry32: deterministic, so runs are comparable.
  let rnd = 42
  const rand = (n: number) => {
    rnd = (rnd + 0x6d2b79f5) | 0
    let x = Math.imul(rnd ^ (rnd >>> 15), 1 | rnd)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return (((x ^ (x >>> 14)) >>> 0) % n)
  }
  const sampleCases: string[] = []
  for (let k = 1; k < N; k += 50_000) sampleCases.push(`JS-2026-${String(Math.floor(k / 3)).padStart(7, '0')}`)
  if (reuse) {
    log(`reusing the ${N} records of schema ${h.schema} (loaded ${reuse.loadedAt})`)
    results.load = reuse.result
  } else {
  log(`making ${N} records in ${Math.ceil(N / BATCH)} signed batches over ${DAYS} days…`)
  if (!('sign' in signer)) throw new Error('unreachable')
  // Its own pool without the gateway's 5 s query timeout: a loaded machine must not fail the load.
  const loader = new pg.Pool({ connectionString: h.env.TONGBAN_PG_URL, options: `-c search_path=${h.schema}`, max: 2 })
  const t0 = performance.now()
  let prev = GENESIS
  let seq = 0
  let pending: SealedSynthetic[] = []
  const inflight = new Set<Promise<void>>()
  let made = 0
  for (let n = 0; n < N; n += BATCH) {
    const size = Math.min(BATCH, N - n)
    const records = Array.from({ length: size }, (_, i) => {
      const k = n + i
      const d = depts[rand(depts.length)]
      const roll = rand(100)
      const caseId = `JS-2026-${String(Math.floor(k / 3)).padStart(7, '0')}`
      return syntheticRecord(node, {
        time: new Date(start + Math.floor((k * (end - start)) / N)),
        latencyMs: 5 + rand(60) + (rand(100) === 0 ? 500 : 0),
        consumer: d,
        resource: resources[rand(resources.length)],
        operation: rand(4) ? 'verify' : 'query',
        purpose: purposes[rand(purposes.length)],
        caseId,
        subject: hashes[rand(hashes.length)],
        ...(roll < 7 ? { decision: 'denied' as const, reason: reasons[rand(reasons.length)] } : roll < 9 ? { decision: 'failed' as const, reason: 'UPSTREAM_TIMEOUT' } : {}),
        ...(rand(5) === 0 ? { operator: `op-${rand(500)}` } : {}),
      })
    })
    const b = makeBatch({ chain: 'bench', node, signer, records, seq: ++seq, prev })
    prev = b.hash
    pending.push(b)
    made += size
    if (pending.length === 16 || made === N) {
      const chunk = pending
      pending = []
      const p = insertBatches(loader, chunk).finally(() => inflight.delete(p))
      inflight.add(p)
      if (inflight.size >= 2) await Promise.race(inflight)
    }
    if (seq % 400 === 0) log(`  ${made} records (${Math.round(made / ((performance.now() - t0) / 1000))}/s)`)
  }
  await Promise.all(inflight)
  await loader.end()
  const loadS = (performance.now() - t0) / 1000
  log(`loaded in ${loadS.toFixed(1)} s; ANALYZE…`)
  await h.query('ANALYZE audit_records')
  await h.query('ANALYZE audit_checkpoints')
  const [{ size }] = await h.query("SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) AS size FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'audit_records'::regclass")
  results.load = { records: N, batches: seq, seconds: round(loadS), recordsPerSecond: Math.round(N / loadS), tableSize: size }
  await h.query("INSERT INTO bench_meta (k, v) VALUES ('load', $1)", [{ records: N, days: DAYS, subjects: SUBJECTS, end, certPem: signer.certPem, loadedAt: new Date().toISOString(), result: results.load }])
  }

  // ---- the stats rollup catching up ---------------------------------------------------
  if (PHASES.has('rollup')) {
    const [{ done }] = await h.query('SELECT coalesce(sum(records), 0)::bigint AS done FROM audit_rollup_state')
    if (Number(done) > 0) log(`rollup: ${done} records already rolled up (reused schema)`)
    log('rollup: catching up…')
    const r = await rollup(h.app.db)
    const again = await rollup(h.app.db)
    await h.query('ANALYZE audit_daily')
    await h.query('ANALYZE audit_daily_latency')
    const [d] = await h.query(`SELECT count(*)::int AS rows, pg_size_pretty(pg_total_relation_size('audit_daily')) AS size,
      coalesce(sum(cardinality(latency_ms)), 0)::int AS buckets FROM audit_daily`)
    results.rollup = {
      records: r.records, batches: r.batches, steps: r.steps, seconds: round(r.ms / 1000), recordsPerSecond: r.ms ? Math.round(r.records / (r.ms / 1000)) : null,
      rows: d.rows, histogramBuckets: d.buckets, tableSize: d.size, rerunRecords: again.records, rerunMs: again.ms,
    }
    log(`rollup: ${r.records} records in ${r.steps} steps, ${(r.ms / 1000).toFixed(1)} s → ${d.rows} rows (${d.size}); re-run added ${again.records} in ${again.ms} ms`)
  }

  // ---- searches through the routes ----------------------------------------------------
  const token = await h.token('js-audit')
  const auth = { authorization: `Bearer ${token}` }
  async function timed(name: string, call: (i: number) => Promise<{ statusCode: number; body: string }>, rounds = ROUNDS) {
    const ms: number[] = []
    let items = 0
    for (let i = 0; i < rounds; i++) {
      const t = performance.now()
      const res = await call(i)
      ms.push(performance.now() - t)
      if (res.statusCode !== 200) {
        // Recorded, not fatal: the rest of the benchmark still runs.
        results[name] = { error: `${res.statusCode} ${res.body.slice(0, 200)}` }
        log(`${name}: FAILED ${res.statusCode}`)
        return
      }
      const j = JSON.parse(res.body)
      items += j.items?.length ?? j.accesses?.length ?? 0
    }
    ms.sort((a, b) => a - b)
    const r = { p50: round(ms[Math.floor(ms.length * 0.5)]), p95: round(ms[Math.min(ms.length - 1, Math.floor(ms.length * 0.95))]), max: round(ms[ms.length - 1]), rounds, avgItems: round(items / rounds) }
    results[name] = r
    log(`${name}: p50 ${r.p50} ms, p95 ${r.p95} ms (${r.avgItems} items)`)
  }
  const post = (url: string, payload: object) => h.app.inject({ method: 'POST', url, headers: auth, payload })
  const get = (url: string) => h.app.inject({ method: 'GET', url, headers: auth })
  const dayStart = (i: number) => new Date(start + (1 + (i * 7) % (DAYS - 2)) * 86400_000)

  if (PHASES.has('search')) {
  await timed('search by subject (all time, newest 50)', (i) => post('/v1/audit/records/search', { subject: people[(i * 7919) % SUBJECTS], limit: 50 }))
  await timed('search by case id', (i) => post('/v1/audit/records/search', { caseId: sampleCases[i % sampleCases.length], limit: 50 }))
  await timed('search by department and day (first page of 50)', (i) => {
    const from = dayStart(i)
    return get(`/v1/audit/records?department=${depts[i % depts.length].department}&from=${from.toISOString()}&to=${new Date(from.getTime() + 86400_000).toISOString()}&limit=50`)
  })
  await timed('search by department and day (page 5 via cursor)', async (i) => {
    const from = dayStart(i)
    const url = `/v1/audit/records?department=${depts[(i + 3) % depts.length].department}&from=${from.toISOString()}&to=${new Date(from.getTime() + 86400_000).toISOString()}&limit=50`
    let res = await get(url)
    for (let p = 0; p < 4; p++) {
      const next = JSON.parse(res.body).nextCursor
      if (!next) break
      res = await get(`${url}&cursor=${next}`)
    }
    return res
  }, Math.ceil(ROUNDS / 5))
  await timed('search by reason over 7 days', (i) => {
    const from = dayStart(i)
    return get(`/v1/audit/records?reason=QUOTA_EXCEEDED&from=${from.toISOString()}&to=${new Date(from.getTime() + 7 * 86400_000).toISOString()}&limit=50`)
  })
  await timed('subject access report', (i) => post('/v1/audit/subjects/report', { subject: people[(i * 104729) % SUBJECTS] }))
  }

  // ---- stats ------------------------------------------------------------------------
  if (PHASES.has('stats')) {
  // Each call a new range (the answer cache is keyed by the filters).
  const iso = (ms: number) => new Date(ms).toISOString()
  const shanghaiMidnight = (ms: number) => Math.floor((ms + 8 * 3600_000) / 86400_000) * 86400_000 - 8 * 3600_000
  await timed('stats, one day, one department (uncached)', (i) => {
    const from = dayStart(i)
    return get(`/v1/audit/stats?from=${from.toISOString()}&to=${new Date(from.getTime() + 86400_000).toISOString()}&department=${depts[i % depts.length].department}`)
  }, Math.min(ROUNDS, 10))
  await timed('stats, 7 days, all departments (uncached)', (i) => {
    const from = dayStart(i)
    return get(`/v1/audit/stats?from=${from.toISOString()}&to=${new Date(from.getTime() + 7 * 86400_000).toISOString()}`)
  }, Math.min(ROUNDS, 10))
  await timed('stats, 7 whole days (Shanghai midnights; uncached)', (i) => {
    const from = shanghaiMidnight(dayStart(i).getTime())
    return get(`/v1/audit/stats?from=${iso(from)}&to=${iso(from + 7 * 86400_000)}`)
  }, Math.min(ROUNDS, 10))
  // What the console asks by default (no from/to): the 7 calendar days up to now — here up
  // to the newest record (the data ends an hour before the load); the last day is partial.
  await timed('stats, default range: 7 calendar days up to the newest record (uncached)', (i) => {
    const to = iso(end - i * 1000)
    return get(`/v1/audit/stats?from=${defaultFrom(to)}&to=${to}`)
  }, Math.min(ROUNDS, 10))
  await timed('stats, 7 days, one department (uncached)', (i) => {
    const from = dayStart(i)
    return get(`/v1/audit/stats?from=${from.toISOString()}&to=${new Date(from.getTime() + 7 * 86400_000).toISOString()}&department=${depts[i % depts.length].department}`)
  }, Math.min(ROUNDS, 10))
  const month = Math.min(30, DAYS - 2)
  await timed(`stats, ${month} whole days, all departments (uncached)`, (i) => {
    const from = shanghaiMidnight(start) + (1 + i) * 86400_000
    return get(`/v1/audit/stats?from=${iso(from)}&to=${iso(from + month * 86400_000)}`)
  }, Math.min(ROUNDS, 6))
  await timed('stats, 7 days (cached)', () => get(`/v1/audit/stats?from=${dayStart(0).toISOString()}&to=${new Date(dayStart(0).getTime() + 7 * 86400_000).toISOString()}`), 10)
  await timed('stats, 7 days, by purpose (no rollup: raw records)', (i) => {
    const from = dayStart(i)
    return get(`/v1/audit/stats?from=${from.toISOString()}&to=${new Date(from.getTime() + 7 * 86400_000).toISOString()}&purpose=${purposes[i % purposes.length]}`)
  }, 3)

  // The reference: the one-statement definition over audit_records (what stats ran before
  // the rollup), without the pool's query timeout; and whether both answers agree.
  const ref = new pg.Pool({ connectionString: h.env.TONGBAN_PG_URL, options: `-c search_path=${h.schema}`, max: 1 })
  try {
    const compared: Record<string, unknown> = {}
    const to = iso(end)
    for (const [name, filters] of [
      ['7 days, partial first and last day', { from: dayStart(1).toISOString(), to: new Date(dayStart(1).getTime() + 7 * 86400_000).toISOString(), kind: 'query' as const }],
      ['default range (7 calendar days)', { from: defaultFrom(to), to, kind: 'query' as const }],
      ['7 days, one department', { from: dayStart(2).toISOString(), to: new Date(dayStart(2).getTime() + 7 * 86400_000).toISOString(), kind: 'query' as const, department: depts[5].department }],
    ] as const) {
      let t = performance.now()
      const reference = await computeStats(ref, { filters, resolver: resolver(h.app), mode: 'reference' })
      const refMs = performance.now() - t
      t = performance.now()
      const fast = await computeStats(h.app.db, { filters, resolver: resolver(h.app) })
      const fastMs = performance.now() - t
      const strip = (s: object) => ({ ...s, generatedAt: null, cached: null, plan: null })
      const same = JSON.stringify(strip(reference)) === JSON.stringify(strip(fast))
      compared[name] = { records: fast.totals.total, referenceMs: round(refMs), rollupMs: round(fastMs), identical: same, plan: fast.plan }
      log(`stats ${name}: reference query (one statement over the records) ${refMs.toFixed(0)} ms; rollup path ${fastMs.toFixed(0)} ms; identical: ${same}`)
      if (!same) throw new Error(`${name}: the rollup answer differs from the reference query`)
    }
    results['stats: reference query vs rollup'] = compared
  } finally {
    await ref.end()
  }
  }

  // ---- integrity, export, offline verify --------------------------------------------
  if (PHASES.has('integrity')) {
  log('integrity over everything…')
  let t = performance.now()
  const integrity = await verifyDatabase(h.app.db, { chain: 'bench', caPem: h.app.identity.caPem, certificates: [signer.certPem] })
  let s = (performance.now() - t) / 1000
  if (!integrity.ok) throw new Error(`integrity not ok: ${JSON.stringify(integrity.firstFailure)}`)
  results.integrity = { records: integrity.records, checkpoints: integrity.checkpoints, seconds: round(s), recordsPerSecond: Math.round(integrity.records / s) }
  log(`integrity: ${integrity.records} records in ${s.toFixed(1)} s`)
  }
  if (PHASES.has('export')) {
  const dir = join(tmpdir(), `tongban-bench-${process.pid}`)
  mkdirSync(dir, { recursive: true })
  const file = join(dir, 'bench.tongban-audit.jsonl.gz')
  let t = performance.now()
  const exported = await exportBundle(h.app.db, createWriteStream(file), { node, chain: 'bench', certificates: [signer.certPem], caChain: [h.app.identity.caPem] })
  let s = (performance.now() - t) / 1000
  results.export = { records: exported.records, seconds: round(s), recordsPerSecond: Math.round(exported.records / s), megabytes: round(statSync(file).size / 1e6) }
  log(`export: ${exported.records} records, ${(statSync(file).size / 1e6).toFixed(1)} MB in ${s.toFixed(1)} s`)
  t = performance.now()
  const verified = await verifyBundle(file, { caPem: h.app.identity.caPem, heads: [exported.chains[0].head] })
  s = (performance.now() - t) / 1000
  if (!verified.ok) throw new Error(`bundle not ok: ${JSON.stringify(verified.firstFailure)}`)
  results.verify = { records: verified.records, seconds: round(s), recordsPerSecond: Math.round(verified.records / s) }
  log(`offline verify: ${verified.records} records in ${s.toFixed(1)} s`)
  rmSync(dir, { recursive: true, force: true })
  }

  // ---- report -----------------------------------------------------------------------
  const env = { node: process.version, cpus: cpus().length, cpu: cpus()[0]?.model, postgres: (await h.query('SHOW server_version'))[0].server_version }
  const out = { when: new Date().toISOString(), records: N, days: DAYS, subjects: SUBJECTS, env, results }
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true })
  const outFile = join(ROOT, 'bench/results', `audit-search-${out.when.replace(/[:.]/g, '-')}.json`)
  writeFileSync(outFile, JSON.stringify(out, null, 2) + '\n')
  console.log(`\nAudit search benchmark: ${N.toLocaleString('en')} records over ${DAYS} days, ${SUBJECTS.toLocaleString('en')} subjects (${env.cpus} cores, Node ${env.node}, PostgreSQL ${env.postgres})\n`)
  console.log('| measure | p50 ms | p95 ms | max ms | rounds |\n|---|---|---|---|---|')
  for (const [k, v] of Object.entries(results)) {
    const r = v as Record<string, number>
    if ('p50' in r) console.log(`| ${k} | ${r.p50} | ${r.p95} | ${r.max} | ${r.rounds} |`)
  }
  console.log('\n| throughput | records | seconds | records/s | notes |\n|---|---|---|---|---|')
  const l = results.load as Record<string, number | string>
  console.log(`| load (make + sign + insert)${reuse ? ' (earlier run)' : ''} | ${l.records} | ${l.seconds} | ${l.recordsPerSecond} | ${l.batches} batches, table ${l.tableSize} |`)
  const ru = results.rollup as Record<string, number | string> | undefined
  if (ru) console.log(`| stats rollup (catch-up) | ${ru.records} | ${ru.seconds} | ${ru.recordsPerSecond} | ${ru.steps} transactions → ${ru.rows} rows, ${ru.histogramBuckets} histogram buckets, ${ru.tableSize}; re-run +${ru.rerunRecords} in ${ru.rerunMs} ms |`)
  for (const k of ['integrity', 'export', 'verify'] as const) {
    const r = results[k] as Record<string, number> | undefined
    if (r) console.log(`| ${k} | ${r.records} | ${r.seconds} | ${r.recordsPerSecond} | ${k === 'export' ? `${r.megabytes} MB gzip` : ''} |`)
  }
  const cmp = results['stats: reference query vs rollup'] as Record<string, Record<string, number | boolean>> | undefined
  if (cmp) {
    console.log('\n| stats, one call | records | reference query ms | rollup path ms | identical |\n|---|---|---|---|---|')
    for (const [k, r] of Object.entries(cmp)) console.log(`| ${k} | ${r.records} | ${r.referenceMs} | ${r.rollupMs} | ${r.identical} |`)
  }
  console.log(`\nwritten: ${outFile}`)
} finally {
  await h.close()
}

function round(x: number): number {
  return Math.round(x * 10) / 10
}
