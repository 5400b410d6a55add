// Four nodes on this machine: national 100000, Jiangsu 320000, Nanjing 320100, Jiangning
// 320115, each a gateway process of its own (src/server.ts) with its own PostgreSQL schema,
// Redis prefix and node listener, talking mutual TLS with certificates of the dev PKI.
//
//   node --import tsx src/tiers/local-tree.ts        (PostgreSQL and Redis must be running:
//                                                     `node scripts/services.mjs` starts them)
//
//   npm start -- --tiers                             (the same, after what `npm start` does
//                                                     first: dependencies, PostgreSQL, Redis)
//
// Each node imports the entries of catalog/ whose provider sits in its own region, except
// identity, which is held at the national node (the Ministry of Public Security's service
// answers for the whole country). The simulated providers of all six services run in this
// process, and every node gets them (plus any TONGBAN_UPSTREAM_* from the environment) as
// upstreams. Once all four are ready a Jiangning consumer verifies an identity at the
// national node (three hops up) and a property at Nanjing (its own registry, one hop up);
// the answers and the evidence of every hop are printed and checked, and the tree stays
// in the foreground until Ctrl-C.
//
// Ports: TONGBAN_TIERS_PORT_BASE (default 8500): public API base+1…base+4 (national first),
// node listeners base+1001…base+1004; providers base+201…base+207.
import { spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../src/config/index.js'
import { prepare } from '../src/cli/prepare.js'
import { ensureNodeCertificates } from './pki.js'
import { placeCatalogues, treeNodeEnv, treeNodes } from './demo-tree.js'
import { fetchToken } from '../packages/client/src/token.js'
import { decodeEvidence, verifyEvidence } from '../src/evidence/evidence.js'
import type { FastifyInstance } from 'fastify'
import { buildIdentityProvider } from './providers/identity/app.js'
import { buildPropertyProvider } from './providers/property/app.js'
import { buildTaxProvider } from './providers/tax/app.js'
import { buildDegreeProvider } from './providers/degree/app.js'
import { buildSocialSecurityProvider } from './providers/social-security/app.js'
import { buildNanjingPropertyProvider, nanjingHoldingsOf } from './providers/nanjing-property/app.js'
import { person } from './providers/population.js'
import { buildLicenceLibrary, devLicenceLibrary } from './providers/licences/app.js'
import { ensureSealPki } from './seal-pki.js'
import { GATEWAY_NODE_FLAGS } from '../scripts/gateway-flags.mjs'

const ROOT = resolve(fileURLToPath(import.meta.url), '../..')
const base = Number(process.env.TONGBAN_TIERS_PORT_BASE ?? 8500)
// Several trees on one machine: each node's schema and Redis prefix start from the environment's.
const schemaBase = process.env.TONGBAN_PG_SCHEMA || 'tongban_tiers'
const prefixBase = process.env.TONGBAN_REDIS_PREFIX || 'tongban:tiers:'
const log = (m: string) => console.log(`[tiers] ${m}`)

const NODES = treeNodes('国家政务数据共享交换平台（本地演示）')
const ports = NODES.map((_, i) => ({ pub: base + 1 + i, node: base + 1001 + i }))
const publicPort = (i: number) => ports[i].pub
const nodePort = (i: number) => ports[i].node

// ---- providers, in this process: [upstream env, provider] ----
// The licence library seals with the dev seal keys: made first when missing.
await ensureSealPki({ dir: join(ROOT, 'certs'), log })
const providers: Array<[string, FastifyInstance]> = [
  ['TONGBAN_UPSTREAM_MPS_IDENTITY', buildIdentityProvider({})],
  ['TONGBAN_UPSTREAM_NR_PROPERTY', buildPropertyProvider({})],
  ['TONGBAN_UPSTREAM_TAX_CERTIFICATES', buildTaxProvider({})],
  ['TONGBAN_UPSTREAM_EDU_CREDENTIALS', buildDegreeProvider({})],
  ['TONGBAN_UPSTREAM_HRSS_SOCIAL_SECURITY', buildSocialSecurityProvider({})],
  ['TONGBAN_UPSTREAM_NJ_PROPERTY', buildNanjingPropertyProvider({})],
  ['TONGBAN_UPSTREAM_LICENCE_LIBRARY', buildLicenceLibrary({ library: await devLicenceLibrary(join(ROOT, 'certs')) })],
]
const upstreamEnv: Record<string, string> = {}
for (const [i, [env, app]] of providers.entries()) {
  await app.listen({ host: '127.0.0.1', port: base + 201 + i })
  upstreamEnv[env] = `http://127.0.0.1:${base + 201 + i}`
}
Object.assign(upstreamEnv, Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('TONGBAN_UPSTREAM_'))))

// ---- certificates and per-node catalogues ----
await ensureNodeCertificates({ dir: join(ROOT, 'certs'), nodes: NODES.map((n) => ({ id: n.id, name: n.name })), log })
const catalogues = placeCatalogues(ROOT, join(ROOT, '.tongban', 'tiers'), NODES)

const envs = NODES.map((n, i) => {
  const { dir, codes } = catalogues[i]
  log(`node ${n.id} (${n.tier}): ${codes.length} catalogue entr${codes.length === 1 ? 'y' : 'ies'} of its own (${codes.join(', ') || 'none'})`)
  return {
    ...process.env,
    ...upstreamEnv,
    ...treeNodeEnv(NODES, ports, i, { schema: `${schemaBase}_${n.id}`, redisPrefix: `${prefixBase}${n.id}:`, replicaId: `${process.env.TONGBAN_PG_SCHEMA ? schemaBase : 'tiers'}-${n.id}-r1`, catalogDir: dir }),
    TONGBAN_LOG_LEVEL: process.env.TONGBAN_LOG_LEVEL ?? 'warn',
  } as Record<string, string>
})

for (const env of envs) await prepare(loadConfig(env, ROOT))

// ---- the four gateways ----
const children: ChildProcess[] = []
let stopping = false
const stop = (code = 0) => {
  if (stopping) return
  stopping = true
  for (const c of children) c.kill('SIGTERM')
  void Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r))))).then(async () => {
    for (const [, app] of providers) await app.close()
    process.exit(code)
  })
}
NODES.forEach((n, i) => {
  const child = spawn(process.execPath, [...GATEWAY_NODE_FLAGS, '--import', 'tsx', 'src/server.ts'], { cwd: ROOT, env: envs[i], stdio: ['ignore', 'inherit', 'inherit'] })
  child.once('exit', (code) => {
    if (!stopping) {
      log(`node ${n.id} exited (${code}); stopping the others`)
      stop(1)
    }
  })
  children.push(child)
})
for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => stop(0))

for (let i = 0; i < NODES.length; i++) {
  const url = `http://127.0.0.1:${publicPort(i)}/readyz`
  for (let k = 0; k < 300; k++) {
    if (await fetch(url).then((r) => r.ok, () => false)) break
    await new Promise((r) => setTimeout(r, 200))
  }
  log(`node ${NODES[i].id} ready: public http://127.0.0.1:${publicPort(i)}, node listener https://127.0.0.1:${nodePort(i)}`)
}

// ---- two cross-tier calls ----
const county = `http://127.0.0.1:${publicPort(3)}`
const clientKey = readFileSync(join(ROOT, 'certs/clients/jn-civil-affairs.key.pem'), 'utf8')
const { access_token: token } = await fetchToken(county, 'jn-civil-affairs', clientKey)
const certs = NODES.map((n) => readFileSync(join(ROOT, 'certs/node', `${n.id}.crt.pem`), 'utf8'))
const ca = readFileSync(join(ROOT, 'certs/ca.crt.pem'), 'utf8')
let homeOwner = 0
while (!nanjingHoldingsOf(homeOwner).some((h) => h.usage === '住宅')) homeOwner++
let failed = false
for (const [service, p, where] of [['identity', person(0), 'the national node'], ['property', person(homeOwner), 'Nanjing']] as const) {
  const res = await fetch(`${county}/v1/verify/${service}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'tongban-purpose': 'SA-01', 'tongban-case-id': 'JN-2026-0001' },
    body: JSON.stringify({ idNumber: p.idNumber, name: p.name }),
  })
  const body = await res.text()
  log(`Jiangning consumer → POST ${county}/v1/verify/${service} (held at ${where}): ${res.status} ${body}`)
  const evidence = [res.headers.get('tongban-evidence'), ...(res.headers.get('tongban-evidence-chain') ?? '').split(',')].map((s) => s?.trim()).filter(Boolean) as string[]
  for (const header of evidence) {
    const r = decodeEvidence(header).record
    const v = verifyEvidence({ header, body, certificates: certs, caCertificate: ca })
    if (!v.ok) failed = true
    log(`  evidence of node ${r.node}: ${r.decision}, resource ${r.resource}, request ${r.requestId}, ${v.ok ? 'verifies' : `does NOT verify (${v.reason})`}`)
  }
  if (res.status !== 200) failed = true
}
if (failed) log('a cross-tier call did not succeed: see above')
log(`repeat one: TOKEN=$(npm run -s tongban -- token jn-civil-affairs --url ${county}) && curl -s -X POST ${county}/v1/verify/identity -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -H 'tongban-purpose: SA-01' -H 'tongban-case-id: JN-2026-0002' -d '{"idNumber":"${person(0).idNumber}","name":"${person(0).name}"}'`)
log('running; Ctrl-C stops the four nodes')
