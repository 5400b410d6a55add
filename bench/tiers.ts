// `npm run bench:tiers [-- options]`: what each extra hop of the tier tree costs (issue 4,
// "Measure and report"; docs/tiers.md §8, docs/performance.md "Cross-tier").
//
// Starts, each as an OS process of its own, as src/tiers/local-tree.ts does: the upstream
// (bench/upstream.ts) and four gateways (src/server.ts) on loopback — national 100000,
// Jiangsu 320000, Nanjing 320100, Jiangning 320115 — each with its own scratch PostgreSQL
// schema, Redis prefix, catalogue and node listener (mTLS, dev PKI), all dropped afterwards.
// The identity resource (101001/00001) sits at the national node here (公安部's service),
// so one and the same resource and upstream is reached over 0, 1, 2 and 3 hops:
//
//   hops 0  a national consumer   → national node                      (same node)
//   hops 1  a Jiangsu consumer    → province → national
//   hops 2  a Nanjing consumer    → city → province → national
//   hops 3  a Jiangning consumer  → county → city → province → national
//
// Each hop authenticates the previous one, audits and signs its own leg (docs/tiers.md §3).
// Per round and path, autocannon: 1 connection (sequential: latency p50/p99 from every
// response time, sub-millisecond) and 32 connections (throughput). Added latency per hop =
// the difference between consecutive hop counts; throughput ratios are of the same round.
// Every 200 must have its allowed audit record at every node on its path (audit loss).
//
// Options: --rounds 2  --duration 5 (s per load)  --label NAME (bench/results/tiers-NAME.json)
//          --log-level info (the gateways'; info is the production default)
//          --paths 0,1,2,3 (hop counts to load; e.g. --paths 3 for the county → national path only)
//          --profile (the four gateways run with --cpu-prof; profiles under
//          bench/results/profiles/tiers-<label>-<time>/<node id>/, git-ignored; self and
//          inclusive time per function and package of each node printed and kept in the JSON)
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import os from 'node:os'
import pg from 'pg'
import autocannon from 'autocannon'
import { ROOT, RESULTS, cpuSeconds, freePort, load, median, sleep, startProc, type Proc, clearRedisPrefix } from './lib.js'
import { GATEWAY_NODE_FLAGS } from '../scripts/gateway-flags.mjs'
import { summariseProfile } from './profile.js'
import { inclusiveProfile } from './profile-inclusive.js'
import { loadConfig } from '../src/config/index.js'
import { prepare } from '../src/cli/prepare.js'
import { ensureNodeCertificates } from '../dev/pki.js'
import { placeCatalogues, treeNodeEnv, treeNodes } from '../dev/demo-tree.js'
import { fetchToken } from '../packages/client/src/token.js'
import { creditCheckCharacter } from '../src/gb/credit-code.js'
import { person } from '../dev/providers/population.js'

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    duration: { type: 'string', default: '5' },
    label: { type: 'string', default: 'latest' },
    'log-level': { type: 'string', default: 'info' },
    paths: { type: 'string', default: '0,1,2,3' },
    profile: { type: 'boolean', default: false },
  },
})
const WANTED = new Set(opt.paths!.split(',').map(Number))
const profileDir = join(RESULTS, 'profiles', `tiers-${opt.label}-${Date.now()}`)
const ROUNDS = Number(opt.rounds)
const DURATION = Number(opt.duration)
const THROUGHPUT_CONNECTIONS = 32
const log = (m: string) => console.log(`[bench:tiers] ${m}`)

const services = spawnSync(process.execPath, [join(ROOT, 'scripts/services.mjs')], { stdio: 'inherit' })
if (services.status !== 0) process.exit(1)

const PG_URL = process.env.TONGBAN_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const REDIS_URL = process.env.TONGBAN_REDIS_URL ?? 'redis://127.0.0.1:6379'
const tag = `tiersbench_${process.pid}_${randomBytes(2).toString('hex')}`
const work = join(ROOT, '.tongban', 'bench-tiers', tag)

const NODES = treeNodes('国家政务数据共享交换平台（基准测试）')

// A department code (GB 32100) with a right check character, for the bench's own systems.
const deptCode = (region: string, n: string) => {
  const first17 = `11${region}MB${n.padStart(7, '0')}`
  return first17 + creditCheckCharacter(first17)
}
// No consumer system of the national or provincial tier is in config/systems.json; the
// bench adds one of each (their client certificates are issued by prepare's dev PKI).
const BENCH_SYSTEMS = [
  { clientId: 'bench-national-consumer', name: '国家部委业务系统（基准测试）', department: { code: deptCode('100000', '9001'), name: '某部委（基准测试）' }, region: '100000', roles: ['consumer'] },
  { clientId: 'bench-js-consumer', name: '江苏省厅局业务系统（基准测试）', department: { code: deptCode('320000', '9002'), name: '江苏省某厅（基准测试）' }, region: '320000', roles: ['consumer'] },
]
// The consumer at each node, by hop count to the national node.
const PATHS = [
  { hops: 0, node: 0, client: 'bench-national-consumer', route: 'national (same node)' },
  { hops: 1, node: 1, client: 'bench-js-consumer', route: 'province → national' },
  { hops: 2, node: 2, client: 'nj-housing', route: 'city → province → national' },
  { hops: 3, node: 3, client: 'jn-civil-affairs', route: 'county → city → province → national' },
] as const

const procs: Proc[] = []
const pools = NODES.map((n) => new pg.Pool({ connectionString: PG_URL, options: `-c search_path=${tag}_${n.id}`, max: 1 }))
let cleaned = false
async function cleanup() {
  if (cleaned) return
  cleaned = true
  await Promise.all(procs.map((p) => p.stop().catch(() => {})))
  for (const [i, n] of NODES.entries()) {
    await pools[i].query(`DROP SCHEMA IF EXISTS ${tag}_${n.id} CASCADE`).catch(() => {})
    await pools[i].end().catch(() => {})
  }
  await clearRedisPrefix(REDIS_URL, tag)
  rmSync(work, { recursive: true, force: true })
}
process.once('SIGINT', () => cleanup().finally(() => process.exit(130)))

/** Records and checkpoints (sealed batches) of a node so far: records per batch, per load. */
const sealedAt = async (i: number): Promise<{ records: number; batches: number }> => {
  const { rows } = await pools[i].query(`SELECT (SELECT count(*)::int FROM audit_records) AS records, (SELECT count(*)::int FROM audit_checkpoints) AS batches`)
  return rows[0]
}
const allowedAt = async (i: number): Promise<number> =>
  Number((await pools[i].query(`SELECT count(*)::int AS n FROM audit_records WHERE decision = 'allowed'`)).rows[0].n)

/** Sequential load with every response time kept: autocannon's histogram has 1 ms steps. */
async function sequential(url: string, body: string, headers: Record<string, string>) {
  const samples: number[] = []
  const inst = autocannon({ url, method: 'POST', connections: 1, duration: DURATION, body, headers: { 'content-type': 'application/json', ...headers } })
  inst.on('response', (_c: unknown, status: number, _b: number, ms: number) => {
    if (status === 200) samples.push(ms)
  })
  const r = await inst
  samples.sort((a, b) => a - b)
  const q = (p: number) => +samples[Math.min(samples.length - 1, Math.floor(p * samples.length))].toFixed(2)
  return { requests: r.requests.total as number, ok: r['2xx'] as number, non2xx: r.non2xx as number, errors: r.errors as number, rps: Math.round(r.requests.total / r.duration), p50: q(0.5), p90: q(0.9), p99: q(0.99), max: +samples[samples.length - 1].toFixed(2) }
}

interface Row {
  round: number
  hops: number
  mode: 'sequential' | 'c32'
  rps: number
  p50: number
  p99: number
  requests: number
  ok: number
  non2xx: number
  errors: number
  /** CPU of the four gateways together, per request (µs). */
  cpuUsPerReq: number
  /** CPU of each gateway, per request (µs), by node id. */
  cpuUsPerReqByNode: Record<string, number>
  loadavg1: number
  auditLoss?: number
  /** Audit records per sealed batch at each node on the path (one RSA signature and one commit per batch). */
  recordsPerBatchByNode?: Record<string, number>
}
const rows: Row[] = []
const summary: Record<string, any> = {}

try {
  log(`scratch ${tag}; preparing four nodes`)
  mkdirSync(work, { recursive: true })
  const upstream = await startProc({ name: 'tiers-upstream', script: 'bench/upstream.ts', readyLine: true })
  procs.push(upstream)
  const upstreamEnv = {
    TONGBAN_UPSTREAM_MPS_IDENTITY: `http://127.0.0.1:${upstream.ready.identity}`,
    TONGBAN_UPSTREAM_NR_PROPERTY: `http://127.0.0.1:${upstream.ready.property}`,
  }

  await ensureNodeCertificates({ dir: join(ROOT, 'certs'), nodes: NODES.map((n) => ({ id: n.id, name: n.name })), log })
  const systemsFile = join(work, 'systems.json')
  const systems = JSON.parse(readFileSync(join(ROOT, 'config/systems.json'), 'utf8'))
  writeFileSync(systemsFile, JSON.stringify({ ...systems, systems: [...systems.systems, ...BENCH_SYSTEMS] }, null, 2))

  // Catalogues: each node the entries of its own region; identity at the national node.
  const catalogues = placeCatalogues(ROOT, work, NODES)

  const ports = await Promise.all(NODES.map(async () => ({ pub: await freePort(), node: await freePort() })))
  const envs = NODES.map((n, i): Record<string, string> => ({
    TONGBAN_PG_URL: PG_URL,
    TONGBAN_REDIS_URL: REDIS_URL,
    ...upstreamEnv,
    ...treeNodeEnv(NODES, ports, i, { schema: `${tag}_${n.id}`, redisPrefix: `${tag}:${n.id}:`, replicaId: `${tag}-${n.id}`, catalogDir: catalogues[i].dir }),
    TONGBAN_SYSTEMS_FILE: systemsFile,
    // The rate limit stays on (tokens leased from Redis), never refusing the bench.
    TONGBAN_RATE_LIMIT: '100000000',
    TONGBAN_LOG_LEVEL: opt['log-level']!,
  }))
  for (const env of envs) await prepare(loadConfig({ ...env }, ROOT))

  const gateways: Proc[] = []
  for (const [i, n] of NODES.entries()) {
    // Every thread writes a profile (tsx's loader runs in a worker): the main thread's is the largest.
    const nodeArgs = [...GATEWAY_NODE_FLAGS, ...(opt.profile ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, n.id)}`] : [])]
    const p = await startProc({ name: `tiers-${n.id}`, script: 'src/server.ts', env: envs[i], nodeArgs, waitUrl: `http://127.0.0.1:${ports[i].pub}/readyz` })
    procs.push(p)
    gateways.push(p)
  }
  log('four nodes ready')

  const p = person(7)
  const body = JSON.stringify({ idNumber: p.idNumber, name: p.name })
  const ctx = { 'tongban-purpose': 'SA-01', 'tongban-case-id': 'BENCH-TIERS-0001' }
  const key = (id: string) => readFileSync(join(ROOT, 'certs/clients', `${id}.key.pem`), 'utf8')
  const targets = []
  for (const path of PATHS.filter((p) => WANTED.has(p.hops))) {
    const base = `http://127.0.0.1:${ports[path.node].pub}`
    const { access_token: token } = await fetchToken(base, path.client, key(path.client))
    const headers = { authorization: `Bearer ${token}`, ...ctx }
    const url = `${base}/v1/verify/identity`
    // Sanity: the answer, and the evidence of every hop (own + chain = hops + 1 nodes).
    const res = await fetch(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body })
    const text = await res.text()
    const chain = (res.headers.get('tongban-evidence-chain') ?? '').split(',').filter((s) => s.trim()).length
    if (res.status !== 200 || chain !== path.hops) throw new Error(`${path.route}: ${res.status} ${text} (evidence chain of ${chain}, expected ${path.hops})`)
    log(`${path.hops} hop(s), ${path.route}: ${text}, evidence of ${chain + 1} node(s)`)
    targets.push({ ...path, url, headers, nodes: Array.from({ length: path.hops + 1 }, (_, k) => path.node - k) })
  }

  // Warm-up: JIT, pools, TLS sessions, token and grant caches on every path.
  for (const t of targets) await load({ url: t.url, connections: 8, durationS: 2, body, headers: t.headers })

  const cpuEach = () => gateways.map((g) => cpuSeconds(g.pid))
  const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0)
  const perNode = (c0: number[], c1: number[], n: number) => Object.fromEntries(NODES.map((node, k) => [node.id, Math.round(((c1[k] - c0[k]) * 1e6) / Math.max(1, n))]))
  for (let round = 1; round <= ROUNDS; round++) {
    for (const t of targets) {
      let cpu0 = cpuEach()
      const s = await sequential(t.url, body, t.headers)
      let cpu1 = cpuEach()
      rows.push({ round, hops: t.hops, mode: 'sequential', ...pick(s), cpuUsPerReq: Math.round(((sum(cpu1) - sum(cpu0)) * 1e6) / Math.max(1, s.requests)), cpuUsPerReqByNode: perNode(cpu0, cpu1, s.requests), loadavg1: +os.loadavg()[0].toFixed(2) })
      report(rows[rows.length - 1])

      const before = await Promise.all(t.nodes.map(allowedAt))
      const sealed0 = await Promise.all(t.nodes.map(sealedAt))
      cpu0 = cpuEach()
      const r = await load({ url: t.url, connections: THROUGHPUT_CONNECTIONS, durationS: DURATION, body, headers: t.headers })
      cpu1 = cpuEach()
      const cpu = sum(cpu1) - sum(cpu0)
      await sleep(300) // the last answers' records are sealed within milliseconds
      const after = await Promise.all(t.nodes.map(allowedAt))
      const sealed1 = await Promise.all(t.nodes.map(sealedAt))
      const recordsPerBatchByNode = Object.fromEntries(t.nodes.map((i, k) => [NODES[i].id, +((sealed1[k].records - sealed0[k].records) / Math.max(1, sealed1[k].batches - sealed0[k].batches)).toFixed(1)]))
      const auditLoss = Math.max(...t.nodes.map((_, k) => Math.max(0, r.ok - (after[k] - before[k]))))
      rows.push({ round, hops: t.hops, mode: 'c32', ...pick(r), cpuUsPerReq: Math.round((cpu * 1e6) / Math.max(1, r.requests)), cpuUsPerReqByNode: perNode(cpu0, cpu1, r.requests), loadavg1: +os.loadavg()[0].toFixed(2), auditLoss, recordsPerBatchByNode })
      report(rows[rows.length - 1])
    }
  }

  const of = (hops: number, mode: Row['mode']) => rows.filter((r) => r.hops === hops && r.mode === mode)
  const ran = PATHS.filter((p) => WANTED.has(p.hops))
  const byHops = ran.map((path) => {
    const seq = of(path.hops, 'sequential')
    const thr = of(path.hops, 'c32')
    const ratios = WANTED.has(0) ? thr.map((r) => +(r.rps / of(0, 'c32').find((z) => z.round === r.round)!.rps).toFixed(3)) : []
    const nodeIds = NODES.map((n) => n.id)
    return {
      hops: path.hops,
      route: path.route,
      seqP50: r2(median(seq.map((r) => r.p50))),
      seqP99: r2(median(seq.map((r) => r.p99))),
      seqRps: median(seq.map((r) => r.rps)),
      c32Rps: Math.round(median(thr.map((r) => r.rps))),
      c32P50: r2(median(thr.map((r) => r.p50))),
      c32P99: r2(median(thr.map((r) => r.p99))),
      ratioToSameNodePerRound: ratios,
      ratioToSameNode: ratios.length ? +median(ratios).toFixed(3) : null,
      cpuUsPerReq: Math.round(median(thr.map((r) => r.cpuUsPerReq))),
      // CPU per request of each node (µs), 32 connections: what one query costs each node it passes.
      cpuUsPerReqByNode: Object.fromEntries(nodeIds.map((id) => [id, Math.round(median(thr.map((r) => r.cpuUsPerReqByNode[id])))])),
      non2xx: thr.reduce((a, r) => a + r.non2xx + r.errors, 0) + seq.reduce((a, r) => a + r.non2xx + r.errors, 0),
      auditLoss: thr.reduce((a, r) => a + (r.auditLoss ?? 0), 0),
      recordsPerBatchByNode: Object.fromEntries(Object.keys(thr[0]?.recordsPerBatchByNode ?? {}).map((id) => [id, median(thr.map((r) => r.recordsPerBatchByNode![id]))])),
    }
  })
  const zero = byHops.find((h) => h.hops === 0)
  summary.byHops = byHops.map((h) => {
    const prev = byHops.find((x) => x.hops === h.hops - 1)
    return {
      ...h,
      addedP50PerHop: prev ? +(h.seqP50 - prev.seqP50).toFixed(2) : null,
      addedP99PerHop: prev ? +(h.seqP99 - prev.seqP99).toFixed(2) : null,
      addedP50VsSameNode: zero ? +(h.seqP50 - zero.seqP50).toFixed(2) : null,
      addedP99VsSameNode: zero ? +(h.seqP99 - zero.seqP99).toFixed(2) : null,
    }
  })
  const last = summary.byHops.find((h: { hops: number }) => h.hops === 3)
  if (last && zero) {
    summary.averagePerHop = { p50: +(last.addedP50VsSameNode / 3).toFixed(2), p99: +(last.addedP99VsSameNode / 3).toFixed(2) }
    summary.countyToNationalVsSameNode = last.ratioToSameNode
  }
} finally {
  await cleanup()
}

// The gateways wrote their profiles at exit (cleanup stopped them): per node, the main
// thread's (the largest file), self and inclusive time.
const profiles: Record<string, unknown> = {}
if (opt.profile) {
  for (const n of NODES) {
    const dir = join(profileDir, n.id)
    let files: string[] = []
    try {
      files = readdirSync(dir).map((f) => join(dir, f)).sort((a, b) => statSync(b).size - statSync(a).size)
    } catch {
      /* no profile */
    }
    if (!files.length) continue
    const selfTime = summariseProfile(files[0], 25)
    const inclusive = inclusiveProfile(files[0], 40)
    profiles[n.id] = { file: files[0], busyMs: selfTime.busyMs, idleMs: selfTime.idleMs, self: selfTime.functions, selfGroups: selfTime.groups, inclusive: inclusive.functions, inclusiveGroups: inclusive.groups }
    log(`profile of node ${n.id} (${n.tier}): ${files[0]}; busy ${selfTime.busyMs} ms, idle ${selfTime.idleMs} ms`)
    console.table(selfTime.groups.slice(0, 15))
    console.table(inclusive.functions.slice(0, 30))
  }
}

function r2(x: number) {
  return +x.toFixed(2)
}
function pick(r: { rps: number; p50: number; p99: number; requests: number; ok: number; non2xx: number; errors: number }) {
  return { rps: r.rps, p50: r.p50, p99: r.p99, requests: r.requests, ok: r.ok, non2xx: r.non2xx, errors: r.errors }
}
function report(r: Row) {
  log(`round ${r.round} hops ${r.hops} ${r.mode.padEnd(10)} ${String(r.rps).padStart(5)} req/s  p50 ${r.p50} ms  p99 ${r.p99} ms  non2xx ${r.non2xx} err ${r.errors}` +
    `  cpu ${r.cpuUsPerReq} µs/req (4 nodes: ${Object.values(r.cpuUsPerReqByNode).join('/')})${r.auditLoss !== undefined ? `  audit loss ${r.auditLoss}` : ''}` +
    `${r.recordsPerBatchByNode ? `  records/batch ${Object.entries(r.recordsPerBatchByNode).map(([k, v]) => `${k}:${v}`).join(' ')}` : ''}  load ${r.loadavg1}`)
}

const result = {
  at: new Date().toISOString(),
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version, memGiB: Math.round(os.totalmem() / 2 ** 30) },
  settings: { rounds: ROUNDS, durationS: DURATION, connections: [1, THROUGHPUT_CONNECTIONS], gatewayLogLevel: opt['log-level'], paths: [...WANTED], profile: opt.profile },
  summary,
  rows,
  ...(opt.profile ? { profiles } : {}),
}
mkdirSync(RESULTS, { recursive: true })
const outFile = join(RESULTS, `tiers-${opt.label}.json`)
writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n')

console.log('\nverify/identity at the national node, by hops from the consumer\'s node (median of rounds):')
console.table(summary.byHops.map((h: any) => ({
  hops: h.hops,
  route: h.route,
  'seq p50/p99 ms': `${h.seqP50}/${h.seqP99}`,
  'added p50/p99 vs one hop fewer': h.addedP50PerHop === null ? '-' : `${h.addedP50PerHop}/${h.addedP99PerHop}`,
  'c32 req/s': h.c32Rps,
  'c32 p50/p99 ms': `${h.c32P50}/${h.c32P99}`,
  'vs same node': h.ratioToSameNode,
  'cpu µs/req (4 nodes)': h.cpuUsPerReq,
  'cpu µs/req per node (nat/prov/city/county)': Object.values(h.cpuUsPerReqByNode).join('/'),
  'audit loss': h.auditLoss,
})))
console.log('per round (the machine is shared: compare within a round; load = 1-min load average):')
console.table(rows.map((r) => ({ round: r.round, hops: r.hops, mode: r.mode, 'req/s': r.rps, 'p50 ms': r.p50, 'p99 ms': r.p99, load: r.loadavg1 })))
if (summary.averagePerHop) console.log(`average per hop (3 hops vs same node): p50 +${summary.averagePerHop.p50} ms, p99 +${summary.averagePerHop.p99} ms; county → national throughput ${summary.countyToNationalVsSameNode} × same node`)
console.log(`results in ${outFile}`)
const loss = rows.reduce((a, r) => a + (r.auditLoss ?? 0), 0)
console.log(loss === 0 ? 'audit: every 200 has its record at every node on its path (zero loss)' : `AUDIT LOSS: ${loss}`)
process.exit(loss === 0 ? 0 : 1)
