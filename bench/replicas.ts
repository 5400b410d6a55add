// `npm run bench -- --replicas 1,2,3` (or node --import tsx bench/replicas.ts --replicas 1,2,3):
// throughput, p99 and CPU per query of 1, 2, 3 … gateway replicas behind HAProxy, against
// as many bare proxies (bench/baseline-proxy.ts: Fastify + reply-from, nothing else) behind
// the same HAProxy, in the same run and the same rounds.
//
// One upstream process (bench/upstream.ts), the largest count of gateways and of bare
// proxies started once; for each count HAProxy (scripts/haproxy.mjs) is started on one fixed
// port over the first k of them (round robin, /readyz checks), loaded with autocannon
// (POST /v1/verify/identity), then stopped. CPU per query is the process CPU time (user +
// system, /proc) of the k replicas and haproxy over the round, divided by its requests; the
// upstream's is reported apart. Every 200 must have its audit record (all chains counted).
//
// Options: --replicas 1,2,3  --rounds 2  --duration 8 (s)  --connections 64  --label NAME
//          (bench/results/replicas-NAME.json)  --log-level info (the gateways'; the production default)
// On a machine with fewer cores than replicas + haproxy + upstream + load generator, more
// replicas share the same cores: the figures then show the cost of a replica, not a speed-up.
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import os from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import pg from 'pg'
import { ROOT, RESULTS, cpuSeconds, freePort, load, median, sleep, startProc, type LoadResult, type Proc, clearRedisPrefix } from './lib.js'
import { loadConfig } from '../src/config/index.js'
import { prepare } from '../src/cli/prepare.js'
import { fetchToken } from '../packages/client/src/token.js'
import { person } from '../dev/providers/population.js'
import { GATEWAY_NODE_FLAGS } from '../scripts/gateway-flags.mjs'
import { ensureHaproxy, startHaproxy, type Haproxy } from '../scripts/haproxy.mjs'

const { values: opt } = parseArgs({
  options: {
    replicas: { type: 'string', default: '1,2,3' },
    rounds: { type: 'string', default: '2' },
    duration: { type: 'string', default: '8' },
    connections: { type: 'string', default: '64' },
    label: { type: 'string', default: 'latest' },
    'log-level': { type: 'string', default: 'info' },
  },
  strict: false,
})
const COUNTS = String(opt.replicas).split(',').map(Number)
if (!COUNTS.every((n) => Number.isInteger(n) && n >= 1 && n <= 8)) {
  console.error('--replicas takes counts from 1 to 8, e.g. 1,2,3')
  process.exit(2)
}
const MAX = Math.max(...COUNTS)
const ROUNDS = Number(opt.rounds)
const DURATION = Number(opt.duration)
const CONNECTIONS = Number(opt.connections)
const log = (m: string) => console.log(`[bench:replicas] ${m}`)

const services = spawnSync(process.execPath, [join(ROOT, 'scripts/services.mjs')], { stdio: 'inherit' })
if (services.status !== 0) process.exit(1)
ensureHaproxy({ log })

const schema = `bench_rep_${process.pid}_${randomBytes(2).toString('hex')}`
const PG_URL = process.env.TONGBAN_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const REDIS_URL = process.env.TONGBAN_REDIS_URL ?? 'redis://127.0.0.1:6379'
const lbPort = await freePort()
const lbUrl = `http://127.0.0.1:${lbPort}`
const baseEnv: Record<string, string> = {
  TONGBAN_PG_URL: PG_URL,
  TONGBAN_REDIS_URL: REDIS_URL,
  TONGBAN_PG_SCHEMA: schema,
  TONGBAN_REDIS_PREFIX: `${schema}:`,
  TONGBAN_RATE_LIMIT: '100000000',
  TONGBAN_LOG_LEVEL: String(opt['log-level']),
  // Every replica answers for HAProxy's URL (the token audience).
  TONGBAN_PUBLIC_URL: lbUrl,
}

const procs: Proc[] = []
const dir = mkdtempSync(join(tmpdir(), 'tongban-bench-replicas-'))
const db = new pg.Pool({ connectionString: PG_URL, options: `-c search_path=${schema}`, max: 2 })
let lb: Haproxy | null = null
let cleaned = false
async function cleanup() {
  if (cleaned) return
  cleaned = true
  await lb?.stop().catch(() => {})
  await Promise.all(procs.map((p) => p.stop().catch(() => {})))
  await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {})
  await db.end().catch(() => {})
  await clearRedisPrefix(REDIS_URL, schema)
  rmSync(dir, { recursive: true, force: true })
}
process.once('SIGINT', () => cleanup().finally(() => process.exit(130)))

interface Row extends LoadResult {
  target: 'gateway' | 'baseline'
  replicas: number
  round: number
  cpuUsPerReq: number
  replicaCpuPct: number
  haproxyCpuPct: number
  upstreamCpuUsPerReq: number
  auditLoss?: number
}
const rows: Row[] = []

const allowedRecords = async () => (await db.query(`SELECT count(*)::int AS n FROM audit_records WHERE decision = 'allowed'`)).rows[0].n as number

try {
  log(`scratch schema ${schema}; preparing`)
  await prepare(loadConfig({ ...baseEnv }, ROOT))
  const upstream = await startProc({ name: 'upstream', script: 'bench/upstream.ts', readyLine: true })
  procs.push(upstream)
  const identityUrl = `http://127.0.0.1:${upstream.ready.identity}`
  const propertyUrl = `http://127.0.0.1:${upstream.ready.property}`
  const upstreamEnv = { TONGBAN_UPSTREAM_MPS_IDENTITY: identityUrl, TONGBAN_UPSTREAM_NR_PROPERTY: propertyUrl }

  const gateways: Array<Proc & { port: number }> = []
  const baselines: Array<Proc & { port: number }> = []
  for (let i = 1; i <= MAX; i++) {
    const port = await freePort()
    const g = await startProc({
      name: `replica-${i}`,
      script: 'src/server.ts',
      nodeArgs: GATEWAY_NODE_FLAGS,
      env: { ...baseEnv, ...upstreamEnv, TONGBAN_PORT: String(port), TONGBAN_REPLICA_ID: `${schema}-r${i}` },
      waitUrl: `http://127.0.0.1:${port}/readyz`,
    })
    procs.push(g)
    gateways.push(Object.assign(g, { port }))
    const b = await startProc({ name: `baseline-${i}`, script: 'bench/baseline-proxy.ts', readyLine: true, env: { IDENTITY_URL: identityUrl, PROPERTY_URL: propertyUrl } })
    procs.push(b)
    baselines.push(Object.assign(b, { port: b.ready.port as number }))
  }
  log(`${MAX} replicas and ${MAX} bare proxies up; HAProxy on ${lbUrl}`)

  const key = readFileSync(join(ROOT, 'certs/clients/jn-civil-affairs.key.pem'), 'utf8')
  const p = person(7)
  const body = JSON.stringify({ idNumber: p.idNumber, name: p.name })

  const behind = async (targets: Array<{ port: number }>) => {
    await lb?.stop()
    lb = await startHaproxy({ dir: join(dir, `lb-${Date.now()}`), port: lbPort, servers: targets.map((x, i) => ({ name: `r${i + 1}`, host: '127.0.0.1', port: x.port })) })
    return lb
  }
  let token = ''
  const measure = async (target: Row['target'], k: number, round: number, procsUsed: Proc[]) => {
    const headers = { authorization: `Bearer ${token}`, 'tongban-purpose': 'SA-01', 'tongban-case-id': 'BENCH-REPLICAS-1' }
    const pids = [...procsUsed.map((x) => x.pid), lb!.pid]
    const before = pids.map(cpuSeconds)
    const up0 = cpuSeconds(upstream.pid)
    const audit0 = target === 'gateway' ? await allowedRecords() : 0
    const r = await load({ url: `${lbUrl}/v1/verify/identity`, connections: CONNECTIONS, durationS: DURATION, body, headers })
    const cpu = pids.map((pid, i) => cpuSeconds(pid) - before[i])
    const replicaCpu = cpu.slice(0, -1).reduce((a, b) => a + b, 0)
    const haCpu = cpu[cpu.length - 1]
    const row: Row = {
      target, replicas: k, round, ...r,
      cpuUsPerReq: Math.round(((replicaCpu + haCpu) * 1e6) / Math.max(1, r.requests)),
      replicaCpuPct: Math.round((100 * replicaCpu) / r.durationS),
      haproxyCpuPct: Math.round((100 * haCpu) / r.durationS),
      upstreamCpuUsPerReq: Math.round(((cpuSeconds(upstream.pid) - up0) * 1e6) / Math.max(1, r.requests)),
    }
    if (target === 'gateway') {
      await sleep(300)
      row.auditLoss = Math.max(0, r.ok - ((await allowedRecords()) - audit0))
    }
    rows.push(row)
    log(`${target.padEnd(8)} ×${k} round ${round}: ${String(r.rps).padStart(6)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms  non2xx ${r.non2xx} err ${r.errors}  ` +
      `cpu ${row.cpuUsPerReq} µs/req (replicas ${row.replicaCpuPct}%, haproxy ${row.haproxyCpuPct}%; upstream ${row.upstreamCpuUsPerReq} µs/req)` +
      (row.auditLoss !== undefined ? `  audit loss ${row.auditLoss}` : ''))
  }

  await behind(gateways.slice(0, 1))
  token = (await fetchToken(lbUrl, 'jn-civil-affairs', key)).access_token
  for (let round = 1; round <= ROUNDS; round++) {
    for (const k of COUNTS) {
      await behind(baselines.slice(0, k))
      if (round === 1) await load({ url: `${lbUrl}/v1/verify/identity`, connections: CONNECTIONS, durationS: 2, body, headers: {} })
      await measure('baseline', k, round, baselines.slice(0, k))
      await behind(gateways.slice(0, k))
      // Warm-up of replicas that join (JIT, pools), not measured.
      if (round === 1) await load({ url: `${lbUrl}/v1/verify/identity`, connections: CONNECTIONS, durationS: 3, body, headers: { authorization: `Bearer ${token}`, 'tongban-purpose': 'SA-01', 'tongban-case-id': 'BENCH-WARM' } })
      await measure('gateway', k, round, gateways.slice(0, k))
    }
  }
} finally {
  await cleanup()
}

const summary = COUNTS.map((k) => {
  const of = (t: Row['target']) => rows.filter((r) => r.target === t && r.replicas === k)
  const g = of('gateway')
  const b = of('baseline')
  const ratios = g.map((x) => +(x.rps / b.find((y) => y.round === x.round)!.rps).toFixed(3))
  return {
    replicas: k,
    gatewayRps: median(g.map((r) => r.rps)),
    gatewayP50: median(g.map((r) => r.p50)),
    gatewayP99: median(g.map((r) => r.p99)),
    gatewayCpuUsPerReq: median(g.map((r) => r.cpuUsPerReq)),
    baselineRps: median(b.map((r) => r.rps)),
    baselineP99: median(b.map((r) => r.p99)),
    baselineCpuUsPerReq: median(b.map((r) => r.cpuUsPerReq)),
    ratioMedian: median(ratios),
    ratioPerRound: ratios,
    gatewayNon2xx: g.reduce((a, r) => a + r.non2xx + r.errors, 0),
    auditLoss: g.reduce((a, r) => a + (r.auditLoss ?? 0), 0),
  }
})
const one = summary.find((s) => s.replicas === Math.min(...COUNTS))!
for (const s of summary) Object.assign(s, { speedup: +(s.gatewayRps / one.gatewayRps).toFixed(2) })
const result = {
  at: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, memGiB: Math.round(os.totalmem() / 2 ** 30), loadavg: os.loadavg() },
  settings: { counts: COUNTS, rounds: ROUNDS, durationS: DURATION, connections: CONNECTIONS, gatewayLogLevel: opt['log-level'] },
  summary,
  rows,
}
mkdirSync(RESULTS, { recursive: true })
const out = join(RESULTS, `replicas-${opt.label}.json`)
writeFileSync(out, JSON.stringify(result, null, 2) + '\n')
console.log(`\nreplicas behind HAProxy, POST /v1/verify/identity, ${CONNECTIONS} connections, medians of ${ROUNDS} round(s); ${os.cpus().length} cores shared by replicas, haproxy, upstream, PostgreSQL, Redis and the load generator:`)
console.table(summary.map((s: any) => ({
  replicas: s.replicas, 'gateway req/s': s.gatewayRps, 'vs 1': s.speedup, 'gw p50/p99 ms': `${s.gatewayP50}/${s.gatewayP99}`, 'gw µs cpu/req': s.gatewayCpuUsPerReq,
  'bare proxy req/s': s.baselineRps, 'bare p99 ms': s.baselineP99, 'bare µs cpu/req': s.baselineCpuUsPerReq, ratio: s.ratioMedian, 'audit loss': s.auditLoss,
})))
console.log(`results in ${out}`)
const loss = summary.reduce((a, s) => a + s.auditLoss, 0)
console.log(loss === 0 ? 'audit: every 200 has its record (zero loss)' : `AUDIT LOSS: ${loss} answers without a record`)
process.exit(loss === 0 ? 0 : 1)
