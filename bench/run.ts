// `npm run bench [-- options]`: the gateway against a bare proxy to the same upstream.
//
// Starts, each as a process of its own: the upstream (simulated identity service and
// real-estate registry, bench/upstream.ts), the baseline (bare Fastify + @fastify/reply-from,
// bench/baseline-proxy.ts) and the gateway (src/server.ts, full pipeline: token check,
// policy, quota script in Redis, Merkle-sealed signing, durable audit in PostgreSQL), on a
// scratch PostgreSQL schema and Redis prefix that are dropped afterwards. Then loads the
// baseline and the gateway in turn with autocannon, alternating, at 32 and 128
// connections, several rounds; ratios are always of the same round.
//
// Scenarios:
//   identity     POST /v1/verify/identity (unconditional)
//   conditional  POST /v1/resources/103002%2F00002/query under a grant with a daily quota
//   latency      p99 at half the gateway's maximum throughput (gateway, baseline, direct)
//   batch        group-commit sizes (TONGBAN_AUDIT_BATCH_MAX / _WINDOW_MS), one gateway each
//   suite        an SM2 node (SM2-SM3 checkpoints, evidence v2 with SM3; scripts/gateway-flags.mjs
//                SUITE_ENV.sm2) beside the RSA gateway, alternating in the same rounds, on
//                POST /v1/verify/identity: the SM2/RSA throughput ratio per round (docs/gm.md)
//   (cross-tier: four nodes, the cost of each hop — `npm run bench:tiers`, bench/tiers.ts)
//   tiers        runs bench/tiers.ts (as a process of its own, before the gateways here start,
//                with --rounds, --duration, --log-level and --profile passed on) and adds its
//                summary: `npm run bench -- --scenarios tiers`
//
// Replicas: `npm run bench -- --replicas 1,2,3` runs bench/replicas.ts instead (1, 2, 3
// replicas behind HAProxy against as many bare proxies behind it; CPU per query).
// Options: --rounds 3  --duration 8 (s per load)  --scenarios identity,conditional,latency,batch
//          --profile (gateway runs with --cpu-prof; summary printed, profile under
//          bench/results/profiles, git-ignored)  --label NAME (bench/results/bench-NAME.json)
//          --log-level info (the gateway's; info is the production default)
//          --node-args="…"  extra Node.js flags for the gateway (e.g. heap settings)
//          --rate N  the latency scenario's offered load (default: half the gateway's maximum)
//          --compare DIR  also run the gateway of another checkout (e.g. the last commit:
//          `git archive HEAD | tar -x -C DIR`, with node_modules and certs linked) in the
//          same rounds, as target "before": before/after under the same load
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import os from 'node:os'
import pg from 'pg'
import { ROOT, RESULTS, cpuSeconds, freePort, load, median, memory, sleep, startProc, type LoadResult, type Proc, clearRedisPrefix } from './lib.js'
import { loadConfig } from '../src/config/index.js'
import { prepare } from '../src/cli/prepare.js'
import { fetchToken } from '../packages/client/src/token.js'
import { person } from '../dev/providers/population.js'
import { summariseProfile } from './profile.js'
import { GATEWAY_NODE_FLAGS, suiteEnv } from '../scripts/gateway-flags.mjs'

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '8' },
    scenarios: { type: 'string', default: 'identity,conditional,suite,latency,batch' },
    profile: { type: 'boolean', default: false },
    label: { type: 'string', default: 'latest' },
    'log-level': { type: 'string', default: 'info' },
    compare: { type: 'string' },
    'node-args': { type: 'string', default: '' },
    rate: { type: 'string' },
    replicas: { type: 'string' },
  },
})
const ROUNDS = Number(opt.rounds)
const DURATION = Number(opt.duration)
const SCENARIOS = new Set(opt.scenarios!.split(','))
const CONNECTIONS = [32, 128]

const log = (m: string) => console.log(`[bench] ${m}`)

// `--replicas 1,2,3`: replicas behind HAProxy against bare proxies behind it (bench/replicas.ts,
// a process of its own with --rounds, --duration, --label and --log-level passed on).
if (opt.replicas) {
  const args = ['--import', 'tsx', join(ROOT, 'bench/replicas.ts'), '--replicas', opt.replicas, '--label', opt.label!, '--log-level', opt['log-level']!]
  if (process.argv.some((a) => a.startsWith('--rounds'))) args.push('--rounds', String(ROUNDS))
  if (process.argv.some((a) => a.startsWith('--duration'))) args.push('--duration', String(DURATION))
  const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: ROOT })
  process.exit(r.status ?? 1)
}

// PostgreSQL and Redis up (started when local and down), as npm test does.
const services = spawnSync(process.execPath, [join(ROOT, 'scripts/services.mjs')], { stdio: 'inherit' })
if (services.status !== 0) process.exit(1)

// Cross-tier (bench/tiers.ts): four gateways of its own; run first, alone on the machine.
let tiersSummary: any = null
if (SCENARIOS.has('tiers')) {
  const args = ['--import', 'tsx', join(ROOT, 'bench/tiers.ts'), '--rounds', String(ROUNDS), '--duration', String(DURATION), '--label', opt.label!, '--log-level', opt['log-level']!, ...(opt.profile ? ['--profile'] : [])]
  const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: ROOT })
  if (r.status !== 0) {
    log(`bench/tiers.ts failed (exit ${r.status})`)
    process.exit(1)
  }
  tiersSummary = JSON.parse(readFileSync(join(RESULTS, `tiers-${opt.label}.json`), 'utf8')).summary
  if (SCENARIOS.size === 1) {
    mkdirSync(RESULTS, { recursive: true })
    writeFileSync(join(RESULTS, `bench-${opt.label}.json`), JSON.stringify({ at: new Date().toISOString(), settings: { scenarios: ['tiers'] }, summary: { tiers: tiersSummary } }, null, 2) + '\n')
    console.log('\ncross-tier, verify/identity by hops from the consumer\'s node (bench/tiers.ts):')
    console.table(tiersSummary.byHops.map((h: any) => ({ hops: h.hops, route: h.route, 'seq p50/p99 ms': `${h.seqP50}/${h.seqP99}`, 'c32 req/s': h.c32Rps, 'vs same node': h.ratioToSameNode, 'cpu µs/req (4 nodes)': h.cpuUsPerReq, 'audit loss': h.auditLoss })))
    process.exit(0)
  }
}

const schema = `bench_${process.pid}_${randomBytes(2).toString('hex')}`
const PG_URL = process.env.TONGBAN_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const REDIS_URL = process.env.TONGBAN_REDIS_URL ?? 'redis://127.0.0.1:6379'
const baseEnv: Record<string, string> = {
  TONGBAN_PG_URL: PG_URL,
  TONGBAN_REDIS_URL: REDIS_URL,
  TONGBAN_PG_SCHEMA: schema,
  TONGBAN_REDIS_PREFIX: `${schema}:`,
  // The per-system rate limit stays on (its script runs on every query) but high enough
  // that one benchmark client is never limited.
  TONGBAN_RATE_LIMIT: '100000000',
  TONGBAN_LOG_LEVEL: opt['log-level']!,
}

const procs: Proc[] = []
const db = new pg.Pool({ connectionString: PG_URL, options: `-c search_path=${schema}`, max: 2 })
let cleaned = false
async function cleanup() {
  if (cleaned) return
  cleaned = true
  await Promise.all(procs.map((p) => p.stop().catch(() => {})))
  await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {})
  await db.end().catch(() => {})
  await clearRedisPrefix(REDIS_URL, schema)
}
process.once('SIGINT', () => cleanup().finally(() => process.exit(130)))

const profileDir = join(RESULTS, 'profiles')
async function startGateway(name: string, env: Record<string, string> = {}, cwd?: string): Promise<Proc & { base: string; chain: string }> {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const chain = `${schema}-${name}`
  if (opt.profile) mkdirSync(profileDir, { recursive: true })
  const p = await startProc({
    name: `gateway-${name}`,
    script: 'src/server.ts',
    // Every thread writes a profile (tsx's loader runs in a worker): the main thread's is
    // the largest; see below.
    nodeArgs: [
      ...GATEWAY_NODE_FLAGS,
      ...(opt.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, `gateway-${name}-${Date.now()}`)}`] : []),
      ...opt['node-args']!.split(' ').filter(Boolean),
    ],
    env: { ...baseEnv, ...upstreamEnv, TONGBAN_PORT: String(port), TONGBAN_PUBLIC_URL: base, TONGBAN_REPLICA_ID: chain, ...env },
    waitUrl: `${base}/readyz`,
    cwd,
  })
  procs.push(p)
  return Object.assign(p, { base, chain })
}

const auditCount = async (chain: string) => {
  const { rows } = await db.query(
    `SELECT count(*) FILTER (WHERE decision = 'allowed')::int AS allowed, count(*)::int AS total,
       (SELECT count(*)::int FROM audit_checkpoints WHERE chain = $1) AS batches
     FROM audit_records WHERE chain = $1`,
    [chain],
  )
  return rows[0] as { allowed: number; total: number; batches: number }
}

interface Row extends LoadResult {
  scenario: string
  target: 'gateway' | 'baseline' | 'direct' | 'before' | 'sm2'
  round: number
  loadavg1?: number
  cpuUsPerReq?: number
  cpuPct?: number
  peakRssMiB?: number
  auditAllowed?: number
  auditTotal?: number
  auditPerSecond?: number
  batches?: number
  auditLoss?: number
}

const rows: Row[] = []
async function measure(
  scenario: string,
  target: Row['target'],
  round: number,
  proc: Proc,
  spec: Parameters<typeof load>[0],
  chain?: string,
): Promise<Row> {
  const before = chain ? await auditCount(chain) : null
  const cpu0 = cpuSeconds(proc.pid)
  const r = await load(spec)
  const cpu = cpuSeconds(proc.pid) - cpu0
  const row: Row = { scenario, target, round, ...r, loadavg1: +os.loadavg()[0].toFixed(2), cpuUsPerReq: Math.round((cpu * 1e6) / Math.max(1, r.requests)), cpuPct: Math.round((100 * cpu) / r.durationS), peakRssMiB: memory(proc.pid).peakRssMiB }
  if (chain && before) {
    // The last responses of the round are sealed within milliseconds; wait for them.
    await sleep(300)
    const after = await auditCount(chain)
    row.auditAllowed = after.allowed - before.allowed
    row.auditTotal = after.total - before.total
    row.batches = after.batches - before.batches
    row.auditPerSecond = Math.round(row.auditTotal / r.durationS)
    // Every 200 the load tool saw must have its record. More records than 200s are the
    // requests still in flight when the round's clock ran out (at most one per connection).
    row.auditLoss = Math.max(0, r.ok - row.auditAllowed)
  }
  rows.push(row)
  log(`${scenario.padEnd(12)} ${target.padEnd(8)} c=${String(spec.connections).padStart(3)} ${spec.rate ? `rate=${spec.rate} ` : ''}` +
    `${String(r.rps).padStart(6)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms  non2xx ${r.non2xx} err ${r.errors}` +
    (row.auditAllowed !== undefined ? `  audit ${row.auditAllowed}/${r.ok} loss ${row.auditLoss}` : '') +
    `  cpu ${row.cpuPct}% (${row.cpuUsPerReq} µs/req)  load ${row.loadavg1}  peak ${row.peakRssMiB} MiB`)
  return row
}

let upstreamEnv: Record<string, string> = {}
const summary: Record<string, any> = {}
try {
  log(`scratch schema ${schema}; preparing`)
  const config = loadConfig({ ...baseEnv }, ROOT)
  await prepare(config)

  const upstream = await startProc({ name: 'upstream', script: 'bench/upstream.ts', readyLine: true })
  procs.push(upstream)
  const identityUrl = `http://127.0.0.1:${upstream.ready.identity}`
  const propertyUrl = `http://127.0.0.1:${upstream.ready.property}`
  upstreamEnv = { TONGBAN_UPSTREAM_MPS_IDENTITY: identityUrl, TONGBAN_UPSTREAM_NR_PROPERTY: propertyUrl }
  const baseline = await startProc({
    name: 'baseline',
    script: 'bench/baseline-proxy.ts',
    readyLine: true,
    env: { IDENTITY_URL: identityUrl, PROPERTY_URL: propertyUrl },
  })
  procs.push(baseline)
  const baselineBase = `http://127.0.0.1:${baseline.ready.port}`
  const gw = await startGateway('main')
  // The other checkout reads this tree's catalogue, schemas and configuration files: the
  // database was prepared from them.
  const files = {
    TONGBAN_SCHEMAS_DIR: join(ROOT, 'schemas'), TONGBAN_CATALOG_DIR: join(ROOT, 'catalog'),
    TONGBAN_PURPOSES_FILE: join(ROOT, 'config/purposes.json'), TONGBAN_SYSTEMS_FILE: join(ROOT, 'config/systems.json'),
    TONGBAN_HOLIDAYS_FILE: join(ROOT, 'config/holidays.json'), TONGBAN_PKI_DIR: join(ROOT, 'certs'),
  }
  const before = opt.compare ? await startGateway('before', files, opt.compare) : null

  const key = (id: string) => readFileSync(join(config.pki.dir, 'clients', `${id}.key.pem`), 'utf8')
  const jn = (await fetchToken(gw.base, 'jn-civil-affairs', key('jn-civil-affairs'))).access_token
  const nr = (await fetchToken(gw.base, 'js-natural-resources', key('js-natural-resources'))).access_token

  const p = person(7)
  const body = JSON.stringify({ idNumber: p.idNumber, name: p.name })
  const ctx = { 'tongban-purpose': 'SA-01', 'tongban-case-id': 'BENCH-2026-0001' }
  const gwHeaders = { authorization: `Bearer ${jn}`, ...ctx }
  const targets = {
    identity: { before: before && `${before.base}/v1/verify/identity`, gateway: `${gw.base}/v1/verify/identity`, baseline: `${baselineBase}/v1/verify/identity`, direct: `${identityUrl}/v1/identity/verify` },
    conditional: {
      before: before && `${before.base}/v1/resources/${encodeURIComponent('103002/00002')}/query`,
      gateway: `${gw.base}/v1/resources/${encodeURIComponent('103002/00002')}/query`,
      baseline: `${baselineBase}/v1/resources/${encodeURIComponent('103002/00002')}/query`,
      direct: `${propertyUrl}/v1/property/detail`,
    },
  }

  if (SCENARIOS.has('conditional')) {
    const api = async (token: string, path: string, payload: object) => {
      const res = await fetch(`${gw.base}${path}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(payload) })
      const json: any = await res.json()
      if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`)
      return json
    }
    const app = await api(jn, '/v1/applications', {
      resource: '103002/00002', items: ['properties'], purposes: ['SA-01'], basis: '基准测试 (benchmark)',
      validTo: new Date(Date.now() + 2 * 86400_000).toISOString(), dailyQuota: 1_000_000,
    })
    await api(nr, `/v1/applications/${app.id}/decision`, { decision: 'approve', reason: 'benchmark' })
    await sleep(200)
  }

  // Warm-up: JIT, pools, caches.
  for (const t of [targets.identity.baseline, targets.identity.gateway]) {
    await load({ url: t, connections: 32, durationS: 3, body, headers: gwHeaders })
  }

  for (const scenario of ['identity', 'conditional'] as const) {
    if (!SCENARIOS.has(scenario)) continue
    const t = targets[scenario]
    for (let round = 1; round <= ROUNDS; round++) {
      for (const connections of CONNECTIONS) {
        const spec = { connections, durationS: DURATION, body, headers: gwHeaders }
        await measure(scenario, 'baseline', round, baseline, { ...spec, url: t.baseline })
        await measure(scenario, 'gateway', round, gw, { ...spec, url: t.gateway }, gw.chain)
        if (before && t.before) await measure(scenario, 'before', round, before, { ...spec, url: t.before }, before.chain)
      }
    }
    const s: Record<string, any> = {}
    for (const connections of CONNECTIONS) {
      const of = (target: string) => rows.filter((r) => r.scenario === scenario && r.target === target && r.connections === connections)
      const ratios = of('gateway').map((g) => +(g.rps / of('baseline').find((b) => b.round === g.round)!.rps).toFixed(3))
      s[`c${connections}`] = {
        gatewayRps: median(of('gateway').map((r) => r.rps)),
        baselineRps: median(of('baseline').map((r) => r.rps)),
        ratioPerRound: ratios,
        ratioMedian: median(ratios),
        gatewayP50: median(of('gateway').map((r) => r.p50)),
        gatewayP99: median(of('gateway').map((r) => r.p99)),
        baselineP50: median(of('baseline').map((r) => r.p50)),
        baselineP99: median(of('baseline').map((r) => r.p99)),
        gatewayCpuPct: median(of('gateway').map((r) => r.cpuPct!)),
        gatewayCpuUsPerReq: median(of('gateway').map((r) => r.cpuUsPerReq!)),
        baselineCpuUsPerReq: median(of('baseline').map((r) => r.cpuUsPerReq!)),
        baselineCpuPct: median(of('baseline').map((r) => r.cpuPct!)),
        auditPerSecond: median(of('gateway').map((r) => r.auditPerSecond!)),
        auditLoss: of('gateway').reduce((a, r) => a + r.auditLoss!, 0),
        gateway200s: of('gateway').reduce((a, r) => a + r.ok, 0),
        gatewayNon2xx: of('gateway').reduce((a, r) => a + r.non2xx + r.errors, 0),
        ...(before ? {
          beforeRps: median(of('before').map((r) => r.rps)),
          beforeRatioPerRound: of('before').map((g) => +(g.rps / of('baseline').find((b) => b.round === g.round)!.rps).toFixed(3)),
          beforeRatioMedian: median(of('before').map((g) => +(g.rps / of('baseline').find((b) => b.round === g.round)!.rps).toFixed(3))),
          beforeP50: median(of('before').map((r) => r.p50)),
          beforeP99: median(of('before').map((r) => r.p99)),
          beforeCpuUsPerReq: median(of('before').map((r) => r.cpuUsPerReq!)),
          beforeAuditLoss: of('before').reduce((a, r) => a + r.auditLoss!, 0),
        } : {}),
        recordsPerBatch: +(of('gateway').reduce((a, r) => a + r.auditTotal!, 0) / Math.max(1, of('gateway').reduce((a, r) => a + r.batches!, 0))).toFixed(1),
      }
    }
    summary[scenario] = s
  }

  if (SCENARIOS.has('suite')) {
    // The same pipeline, SM2 signatures and SM3 hashes: one more gateway on the same schema
    // (its own chain), RSA and SM2 loaded in turn within each round. The access token is the
    // RSA node key's, valid at both (tokens stay RS256 on an SM2 node).
    const sm2 = await startGateway('sm2', suiteEnv('sm2', config.node.id))
    const url = { gateway: targets.identity.gateway, sm2: `${sm2.base}/v1/verify/identity` }
    await load({ url: url.sm2, connections: 32, durationS: 3, body, headers: gwHeaders })
    const s: Record<string, any> = {}
    for (let round = 1; round <= ROUNDS; round++) {
      for (const connections of CONNECTIONS) {
        const spec = { connections, durationS: DURATION, body, headers: gwHeaders }
        await measure('suite', 'gateway', round, gw, { ...spec, url: url.gateway }, gw.chain)
        await measure('suite', 'sm2', round, sm2, { ...spec, url: url.sm2 }, sm2.chain)
      }
    }
    for (const connections of CONNECTIONS) {
      const of = (target: string) => rows.filter((r) => r.scenario === 'suite' && r.target === target && r.connections === connections)
      const ratios = of('sm2').map((g) => +(g.rps / of('gateway').find((b) => b.round === g.round)!.rps).toFixed(3))
      const perBatch = (t: string) => +(of(t).reduce((a, r) => a + r.auditTotal!, 0) / Math.max(1, of(t).reduce((a, r) => a + r.batches!, 0))).toFixed(1)
      s[`c${connections}`] = {
        rsaRps: median(of('gateway').map((r) => r.rps)),
        sm2Rps: median(of('sm2').map((r) => r.rps)),
        ratioPerRound: ratios,
        ratioMedian: median(ratios),
        rsaP99: median(of('gateway').map((r) => r.p99)),
        sm2P99: median(of('sm2').map((r) => r.p99)),
        rsaCpuUsPerReq: median(of('gateway').map((r) => r.cpuUsPerReq!)),
        sm2CpuUsPerReq: median(of('sm2').map((r) => r.cpuUsPerReq!)),
        rsaRecordsPerBatch: perBatch('gateway'),
        sm2RecordsPerBatch: perBatch('sm2'),
        sm2AuditLoss: of('sm2').reduce((a, r) => a + r.auditLoss!, 0),
      }
    }
    summary.suite = s
    await sm2.stop()
    procs.splice(procs.indexOf(sm2), 1)
  }

  if (SCENARIOS.has('latency')) {
    // Half of the gateway's maximum: its median throughput at 128 connections (measured now
    // if the identity scenario did not run), or the rate --rate gives.
    let rate = Number(opt.rate ?? 0)
    if (!rate) {
      let max = summary.identity?.c128?.gatewayRps
      if (!max) max = (await measure('latency-max', 'gateway', 0, gw, { url: targets.identity.gateway, connections: 128, durationS: DURATION, body, headers: gwHeaders }, gw.chain)).rps
      rate = Math.round(max / 2)
    }
    const out: Record<string, any> = { rate }
    for (let round = 1; round <= Math.max(1, ROUNDS - 1); round++) {
      // Paced (evenly spaced requests, latency from when each was due): see `paced`.
      const list: [Row['target'], Proc, string | undefined][] = [['direct', upstream, undefined], ['baseline', baseline, undefined], ['gateway', gw, gw.chain]]
      if (before) list.push(['before', before, before.chain])
      for (const [target, proc, chain] of list) {
        const r = await measure('latency', target, round, proc, { url: targets.identity[target as keyof typeof targets.identity]!, connections: 32, durationS: DURATION, body, headers: gwHeaders, rate }, chain)
        ;(out[target] ??= []).push({ p50: r.p50, p90: r.p90, p99: r.p99, max: r.max, rps: r.rps })
      }
    }
    const p99 = (t: string) => median(out[t].map((x: any) => x.p99))
    out.gatewayP99 = p99('gateway')
    out.baselineP99 = p99('baseline')
    out.directP99 = p99('direct')
    out.addedP99VsDirect = +(out.gatewayP99 - out.directP99).toFixed(2)
    out.addedP99VsBaseline = +(out.gatewayP99 - out.baselineP99).toFixed(2)
    out.gatewayP50 = median(out.gateway.map((x: any) => x.p50))
    out.directP50 = median(out.direct.map((x: any) => x.p50))
    if (out.before) out.beforeP99 = p99('before')
    summary.latency = out
  }

  if (tiersSummary) summary.tiers = tiersSummary
  summary.gatewayPeakRssMiB = memory(gw.pid).peakRssMiB
  await gw.stop()
  if (before) await before.stop()

  if (SCENARIOS.has('batch')) {
    const variants = [
      { max: 16, window: 1 },
      { max: 64, window: 1 },
      { max: 256, window: 1 },
      { max: 1024, window: 1 },
      { max: 256, window: 0 },
      { max: 256, window: 5 },
    ]
    const out = []
    for (const v of variants) {
      const g = await startGateway(`batch-${v.max}-${v.window}`, { TONGBAN_AUDIT_BATCH_MAX: String(v.max), TONGBAN_AUDIT_BATCH_WINDOW_MS: String(v.window) })
      const url = `${g.base}/v1/verify/identity`
      await load({ url, connections: 32, durationS: 2, body, headers: gwHeaders })
      const spec = { url, body, headers: gwHeaders, durationS: Math.max(4, DURATION - 2) }
      const r128 = await measure(`batch ${v.max}/${v.window}ms`, 'gateway', 1, g, { ...spec, connections: 128 }, g.chain)
      const r32 = await measure(`batch ${v.max}/${v.window}ms`, 'gateway', 1, g, { ...spec, connections: 32 }, g.chain)
      out.push({
        batchMax: v.max, windowMs: v.window,
        c128: { rps: r128.rps, p99: r128.p99, recordsPerBatch: +(r128.auditTotal! / Math.max(1, r128.batches!)).toFixed(1), auditLoss: r128.auditLoss },
        c32: { rps: r32.rps, p99: r32.p99, recordsPerBatch: +(r32.auditTotal! / Math.max(1, r32.batches!)).toFixed(1), auditLoss: r32.auditLoss },
      })
      await g.stop()
      procs.splice(procs.indexOf(g), 1)
    }
    summary.batch = out
  }
} finally {
  await cleanup()
}

let profile: unknown
if (opt.profile) {
  const dirs = readdirSync(profileDir).filter((f) => f.startsWith('gateway-main-')).sort()
  const dir = dirs.length ? join(profileDir, dirs[dirs.length - 1]) : null
  const files = dir ? readdirSync(dir).map((f) => join(dir, f)).sort((a, b) => statSync(b).size - statSync(a).size) : []
  if (files.length) {
    const file = files[0]
    profile = summariseProfile(file, 25)
    log(`profile ${file}`)
    console.table((profile as any).functions)
    console.table((profile as any).groups)
  }
}

const result = {
  at: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, memGiB: Math.round(os.totalmem() / 2 ** 30) },
  settings: { rounds: ROUNDS, durationS: DURATION, gatewayLogLevel: opt['log-level'], profile: opt.profile },
  summary,
  profile,
  rows,
}
mkdirSync(RESULTS, { recursive: true })
const outFile = join(RESULTS, `bench-${opt.label}.json`)
writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n')

console.log('\nsame-run ratios, gateway / bare proxy (median of rounds):')
const table: Record<string, any>[] = []
for (const scenario of ['identity', 'conditional']) {
  for (const c of CONNECTIONS) {
    const s = summary[scenario]?.[`c${c}`]
    if (!s) continue
    table.push({
      scenario, connections: c, gateway: s.gatewayRps, baseline: s.baselineRps, ratio: s.ratioMedian,
      'gw p50/p99 ms': `${s.gatewayP50}/${s.gatewayP99}`, 'base p50/p99 ms': `${s.baselineP50}/${s.baselineP99}`,
      ...(s.beforeRps ? { before: s.beforeRps, 'before ratio': s.beforeRatioMedian, 'before µs cpu/req': s.beforeCpuUsPerReq } : {}),
      'gw cpu %': s.gatewayCpuPct, 'gw/base µs cpu per req': `${s.gatewayCpuUsPerReq}/${s.baselineCpuUsPerReq}`, 'audit/s': s.auditPerSecond, 'rec/batch': s.recordsPerBatch, 'audit loss': s.auditLoss,
    })
  }
}
console.table(table)
if (summary.suite) {
  console.log('same-run ratios, SM2 node / RSA node, POST /v1/verify/identity (median of rounds):')
  console.table(CONNECTIONS.map((c) => {
    const s = summary.suite[`c${c}`]
    return { connections: c, rsa: s.rsaRps, sm2: s.sm2Rps, ratio: s.ratioMedian, 'per round': s.ratioPerRound.join(' '), 'p99 rsa/sm2 ms': `${s.rsaP99}/${s.sm2P99}`, 'µs cpu/req rsa/sm2': `${s.rsaCpuUsPerReq}/${s.sm2CpuUsPerReq}`, 'rec/batch rsa/sm2': `${s.rsaRecordsPerBatch}/${s.sm2RecordsPerBatch}`, 'sm2 audit loss': s.sm2AuditLoss }
  }))
}
if (summary.latency) {
  const l = summary.latency
  console.log(`p99 at half load (${l.rate} req/s paced, up to 32 connections): gateway ${l.gatewayP99} ms (p50 ${l.gatewayP50}), bare proxy ${l.baselineP99} ms, direct ${l.directP99} ms (p50 ${l.directP50})` +
    `${l.beforeP99 !== undefined ? `, before ${l.beforeP99} ms` : ''} → added ${l.addedP99VsDirect} ms vs direct`)
}
if (summary.batch) console.table(summary.batch.map((b: any) => ({ max: b.batchMax, window: b.windowMs, 'rps@128': b.c128.rps, 'p99@128': b.c128.p99, 'rec/batch@128': b.c128.recordsPerBatch, 'rps@32': b.c32.rps, 'p99@32': b.c32.p99, 'rec/batch@32': b.c32.recordsPerBatch })))
if (summary.tiers) {
  console.log('cross-tier, verify/identity by hops from the consumer\'s node (bench/tiers.ts):')
  console.table(summary.tiers.byHops.map((h: any) => ({ hops: h.hops, route: h.route, 'seq p50/p99 ms': `${h.seqP50}/${h.seqP99}`, 'c32 req/s': h.c32Rps, 'vs same node': h.ratioToSameNode, 'cpu µs/req (4 nodes)': h.cpuUsPerReq, 'audit loss': h.auditLoss })))
}
console.log(`gateway peak RSS ${summary.gatewayPeakRssMiB} MiB; results in ${outFile}`)
const loss = rows.reduce((a, r) => a + (r.auditLoss ?? 0), 0)
console.log(loss === 0 ? 'audit: every 200 has its record (zero loss)' : `AUDIT LOSS: ${loss} answers without a record`)
process.exit(loss === 0 ? 0 : 1)
