// `npm start`: a working node on this machine in one command.
//   1. dependencies installed; PostgreSQL and Redis reachable (started when local and down)
//   2. `tongban prepare`: dev PKI, audit key, database schema, systems, catalogue
//   3. the simulated identity provider (PROVIDER_PORT, default 7101), the simulated
//      real-estate registry (PROPERTY_PORT, default 7102), tax bureau (TAX_PORT, 7103),
//      certificate register (DEGREE_PORT, 7104), social insurance agency
//      (SOCIAL_SECURITY_PORT, 7105), Nanjing real-estate registry (NJ_PROPERTY_PORT, 7106)
//      and licence library (LICENCE_LIBRARY_PORT, 7107),
//      the development sign-in provider (dev/oidc, DEV_OIDC_PORT, default 8455; not when
//      TONGBAN_OIDC_ISSUER names another issuer or none) and the gateway (TONGBAN_PORT,
//      default 8443), its mps-identity, nr-property,
//      tax-certificates, edu-credentials, hrss-social-security and nj-property upstreams
//      pointed at them
//   4. once /readyz answers 200: the gateway's URL recorded in the state file
//      (TONGBAN_STATE_FILE, default .tongban/node.json, keyed by port; removed again on
//      exit) where `tongban token` and the other commands find it, then one real, signed
//      and audited example call, with the commands to repeat it
// `npm start -- --suite sm2`: the same node with national cryptography: checkpoints signed
// SM2-SM3 with its certs/sm2 certificate, evidence v2 (SM3), systems registered with their
// SM2 certificates (docs/gm.md); TLS stays RSA.
// `npm start -- --tiers` instead brings up four nodes (national, Jiangsu, Nanjing, Jiangning)
// with their providers and makes two cross-tier calls (dev/local-tree.ts).
// `npm start -- --replicas 3` runs that many gateway processes instead of one (each its own
// TONGBAN_REPLICA_ID, audit chain and free port, all on the same schema and Redis prefix)
// behind HAProxy on TONGBAN_PORT (scripts/haproxy.mjs; haproxy is apt-get installed when
// missing and possible), with its stats page and Prometheus metrics on HAPROXY_STATS_PORT
// (default 8404); the state file points the CLI at HAProxy. `--ha` adds Redis Sentinel (a
// master, a replica, three sentinels: scripts/redis-topology.mjs) and a PostgreSQL primary
// with a synchronous standby (scripts/pg-standby.mjs) under .tongban/ha, instead of the
// machine's Redis and PostgreSQL.
// Then it stays in the foreground: Ctrl-C (SIGINT) or SIGTERM stops every process
// gracefully (so does SIGTERM to npm itself: the parent going away counts as SIGTERM); if
// one dies, the others are stopped and the exit code is non-zero.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import { join, resolve } from 'node:path'
import { hostname } from 'node:os'
import { ROOT, ensureDependencies, ensureServices } from './services.mjs'
import { ensureHaproxy, startHaproxy } from './haproxy.mjs'
import { GATEWAY_NODE_FLAGS, suiteEnv } from './gateway-flags.mjs'
import { buildWorkbench } from './build-workbench.mjs'
import { forgetNode, recordNode } from './node-state.mjs'

const log = (m) => console.log(`[start] ${m}`)
const die = (m, code = 1) => {
  console.error(`[start] ${m}`)
  process.exit(code)
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// ---- how many gateways ------------------------------------------------------------------
function flagValue(name) {
  const i = process.argv.findIndex((a) => a === name || a.startsWith(`${name}=`))
  if (i < 0) return undefined
  const a = process.argv[i]
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : process.argv[i + 1]
}
const replicasFlag = flagValue('--replicas')
const replicas = replicasFlag === undefined ? 0 : Number(replicasFlag)
if (replicasFlag !== undefined && !(Number.isInteger(replicas) && replicas >= 1 && replicas <= 16)) {
  die(`--replicas takes a number of gateway processes from 1 to 16, got ${JSON.stringify(replicasFlag)}`, 2)
}
const ha = process.argv.includes('--ha')
if (ha && !replicas) die('--ha goes with --replicas N (e.g. npm start -- --replicas 3 --ha)', 2)

// ---- where things listen ----------------------------------------------------------------
// The same precedence as src/config/index.ts: env, then config/node.json, then defaults.
function portFromEnv(name) {
  const v = process.env[name]
  if (v === undefined || v === '') return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1 || n > 65535) die(`${name} must be a port number from 1 to 65535, got ${JSON.stringify(v)}`, 2)
  return n
}
let fileConfig = {}
const configFile = process.env.TONGBAN_CONFIG ? resolve(ROOT, process.env.TONGBAN_CONFIG) : join(ROOT, 'config/node.json')
if (existsSync(configFile)) {
  try {
    fileConfig = JSON.parse(readFileSync(configFile, 'utf8'))
  } catch (e) {
    die(`config file ${configFile}: ${e.message}`, 2)
  }
}
const gatewayHost = process.env.TONGBAN_HOST || fileConfig.http?.host || '127.0.0.1'
const gatewayPort = portFromEnv('TONGBAN_PORT') ?? portFromEnv('PORT') ?? fileConfig.http?.port ?? 8443
const providerPort = portFromEnv('PROVIDER_PORT') ?? 7101
const clientHost = ['0.0.0.0', '::', ''].includes(gatewayHost) ? '127.0.0.1' : gatewayHost
const urlHost = (h) => (h.includes(':') ? `[${h}]` : h)
const gatewayUrl = `http://${urlHost(clientHost)}:${gatewayPort}`
const providerUrl = `http://127.0.0.1:${providerPort}`
const upstream = process.env.TONGBAN_UPSTREAM_MPS_IDENTITY || providerUrl
const propertyPort = portFromEnv('PROPERTY_PORT') ?? 7102
const propertyUrl = `http://127.0.0.1:${propertyPort}`
const propertyUpstream = process.env.TONGBAN_UPSTREAM_NR_PROPERTY || propertyUrl
// The other departments' simulated services: [label, child name, entry, port env, default
// port, upstream env, what it is].
const departments = [
  ['tax bureau', 'tax', 'dev/providers/tax/main.ts', 'TAX_PORT', 7103, 'TONGBAN_UPSTREAM_TAX_CERTIFICATES', 'simulated 税务 tax-paid records, enterprises and persons'],
  ['degree register', 'degree', 'dev/providers/degree/main.ts', 'DEGREE_PORT', 7104, 'TONGBAN_UPSTREAM_EDU_CREDENTIALS', 'simulated 学历证书 register, as 学信网 answers'],
  ['social insurance', 'social-security', 'dev/providers/social-security/main.ts', 'SOCIAL_SECURITY_PORT', 7105, 'TONGBAN_UPSTREAM_HRSS_SOCIAL_SECURITY', 'simulated 人社 pension contributions'],
  ['Nanjing registry', 'nj-property', 'dev/providers/nanjing-property/main.ts', 'NJ_PROPERTY_PORT', 7106, 'TONGBAN_UPSTREAM_NJ_PROPERTY', 'simulated 南京市不动产登记中心, for Nanjing callers'],
  ['licence library', 'licences', 'dev/providers/licences/main.ts', 'LICENCE_LIBRARY_PORT', 7107, 'TONGBAN_UPSTREAM_LICENCE_LIBRARY', 'simulated 电子证照库: 营业执照, 居民身份证, 不动产权证书, SM2-sealed'],
].map(([label, name, entry, portEnv, fallback, upstreamEnv, about]) => {
  const port = portFromEnv(portEnv) ?? fallback
  const url = `http://127.0.0.1:${port}`
  return { label, name, entry, portEnv, port, url, upstreamEnv, upstream: process.env[upstreamEnv] || url, about }
})

// The development identity provider for people's sign-in (dev/oidc): started unless the
// gateway is pointed at another issuer (TONGBAN_OIDC_ISSUER or people.issuer), or none.
const devOidcPort = portFromEnv('DEV_OIDC_PORT') ?? 8455
const devOidcUrl = `http://127.0.0.1:${devOidcPort}`
const issuerSetting = process.env.TONGBAN_OIDC_ISSUER ?? (fileConfig.people && 'issuer' in fileConfig.people ? fileConfig.people.issuer ?? '' : undefined)
const devOidc = issuerSetting === undefined || issuerSetting.replace(/\/$/, '') === devOidcUrl
// --suite sm2 (or --suite=sm2): the node's signature suite and evidence format.
const suiteArg = process.argv.findIndex((a) => a === '--suite' || a.startsWith('--suite='))
const suite = suiteArg < 0 ? 'rsa' : process.argv[suiteArg].includes('=') ? process.argv[suiteArg].split('=')[1] : process.argv[suiteArg + 1]
let suiteVars
try {
  suiteVars = suiteEnv(suite ?? '', process.env.TONGBAN_NODE_ID || fileConfig.node?.id || '320000')
} catch (e) {
  die(`--suite: ${e.message}`, 2)
}
const gatewayEnv = {
  ...suiteVars,
  ...process.env,
  ...(devOidc ? { TONGBAN_OIDC_ISSUER: devOidcUrl } : {}),
  // src/server.ts serves plain http: a Secure cookie would never come back.
  ...(gatewayUrl.startsWith('http:') && process.env.TONGBAN_SESSION_COOKIE_SECURE === undefined ? { TONGBAN_SESSION_COOKIE_SECURE: '0' } : {}),
  TONGBAN_UPSTREAM_MPS_IDENTITY: upstream,
  TONGBAN_UPSTREAM_NR_PROPERTY: propertyUpstream,
  ...Object.fromEntries(departments.map((d) => [d.upstreamEnv, d.upstream])),
}
if (replicas) {
  // The URL departments use is HAProxy's: every replica takes the same token audience.
  if (!process.env.TONGBAN_PUBLIC_URL) gatewayEnv.TONGBAN_PUBLIC_URL = gatewayUrl
  // Longer than HAProxy's fall × inter (2 × 1 s): a stopping replica is out before it closes.
  if (!process.env.TONGBAN_DRAIN_MS) gatewayEnv.TONGBAN_DRAIN_MS = '3000'
}
const haproxyStatsPort = portFromEnv('HAPROXY_STATS_PORT') ?? 8404
const providerEnv = { ...process.env, PORT: String(providerPort), HOST: '127.0.0.1' }
const propertyEnv = { ...process.env, PORT: String(propertyPort), HOST: '127.0.0.1' }

/** Resolves null when host:port can be bound, else the error code (EADDRINUSE, EACCES, …). */
const bindProblem = (host, port) =>
  new Promise((done) => {
    const srv = net.createServer()
    srv.once('error', (e) => done(e.code ?? e.message))
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => done(null)))
  })

async function whatListens(url) {
  try {
    const res = await fetch(`${url}/v1/node`, { signal: AbortSignal.timeout(1500) })
    if (res.ok) {
      const n = await res.json()
      if (n?.id) return ` — it is a Tongban gateway already (node ${n.id}, replica ${n.replica ?? '?'})`
    }
  } catch {}
  return ''
}

async function checkPort(name, host, port, envName, url) {
  const problem = await bindProblem(host, port)
  if (!problem) return
  if (problem === 'EADDRINUSE') {
    die(
      `the ${name} port ${port} on ${host} is already in use${await whatListens(url)}.\n` +
        `  Stop what listens there (see: ss -ltnp 'sport = :${port}'), or choose another port: ${envName}=${port + 1} npm start`,
    )
  }
  die(`cannot listen on ${host}:${port} for the ${name} (${problem}); choose another port with ${envName}`)
}

// ---- the state file: where the CLI finds the node this process started --------------------
const stateFile = resolve(ROOT, process.env.TONGBAN_STATE_FILE || '.tongban/node.json')
let recorded = false
function record() {
  try {
    recordNode(stateFile, gatewayPort, gatewayUrl)
    recorded = true
  } catch (e) {
    log(`could not record the gateway in ${stateFile} (${e.message}); give the CLI TONGBAN_PORT=${gatewayPort} or --url ${gatewayUrl}`)
  }
}
function forget() {
  if (!recorded) return
  recorded = false
  try {
    forgetNode(stateFile, gatewayPort)
  } catch {}
}

// ---- children ---------------------------------------------------------------------------
const children = new Map() // name -> ChildProcess, while running
let held = null // child output held back while the example call prints
let stopping = false
let firstSignalAt = 0
let exitCode = 0

function pipeLines(stream, name, out) {
  let rest = ''
  stream.on('data', (chunk) => {
    const lines = (rest + chunk.toString('utf8')).split('\n')
    rest = lines.pop()
    for (const line of lines) emit(out, `${name} | ${line}\n`)
  })
  stream.on('end', () => rest && emit(out, `${name} | ${rest}\n`))
}
const emit = (out, text) => (held ? held.push([out, text]) : out.write(text))
const release = () => {
  const h = held ?? []
  held = null
  for (const [out, text] of h) out.write(text)
}

function startChild(name, args, env) {
  // Own process group: a terminal's Ctrl-C reaches only us, and we pass it on exactly once
  // (the gateway's second SIGINT would skip its graceful shutdown).
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  children.set(name, child)
  pipeLines(child.stdout, name, process.stdout)
  pipeLines(child.stderr, name, process.stderr)
  child.exited = new Promise((done) => {
    child.on('exit', (code, signal) => {
      children.delete(name)
      done({ code, signal })
      onChildExit(name, code, signal)
    })
  })
  child.on('error', (e) => log(`${name}: ${e.message}`))
  return child
}

// Started by --ha (Redis Sentinel, PostgreSQL pair): stopped after the gateways.
const haStops = []
async function exitAll(code) {
  for (const stop of haStops.splice(0).reverse()) await stop().catch((e) => log(`stopping: ${e.message}`))
  process.exit(code)
}

function onChildExit(name, code, signal) {
  release()
  if (stopping && name !== 'haproxy' && children.size === 1 && children.has('haproxy')) {
    // The replicas are gone (drained, sealed): HAProxy last.
    children.get('haproxy').kill('SIGTERM')
  }
  if (!stopping) {
    log(`the ${name} exited unexpectedly (${signal ?? `exit code ${code}`}); stopping the rest`)
    exitCode = code || 1
    stopAll('SIGTERM')
  } else {
    log(`the ${name} stopped (${signal ?? `exit code ${code}`})`)
    // HAProxy stopped by us exits with 143 (SIGTERM) or 0: not a failure.
    if (code !== 0 && !(name === 'haproxy' && (signal || code === 143)) && !exitCode) exitCode = code ?? 1
  }
  if (children.size === 0) exitAll(exitCode)
}

function stopAll(signal) {
  if (stopping) {
    // A second request more than 3 s later: the user insists.
    if (Date.now() - firstSignalAt > 3000) {
      log('stopping now (SIGKILL)')
      for (const c of children.values()) c.kill('SIGKILL')
    }
    return
  }
  stopping = true
  firstSignalAt = Date.now()
  if (children.size === 0) return exitAll(exitCode)
  // HAProxy keeps routing to the replicas that are still up while the others drain.
  for (const [name, c] of children) if (name !== 'haproxy' || children.size === 1) c.kill(signal)
}

for (const s of ['SIGINT', 'SIGTERM']) {
  process.on(s, () => {
    if (!stopping) log(`${s}: stopping the gateway and the providers (in-flight requests finish, the last audit batch is sealed)`)
    stopAll(s)
  })
}
// `npm start` runs this under `sh -c`: a SIGTERM to npm (a process manager stopping it) ends
// npm and the shell, and the shell does not pass it on. Left behind, the gateway and the
// providers would keep their ports. So the parent going away is a SIGTERM too.
// A real signal to itself: whichever handler is in place (one node, replicas, --tiers) runs.
const parentAtStart = process.ppid
const orphaned = setInterval(() => {
  if (process.ppid === parentAtStart) return
  clearInterval(orphaned)
  log(`the parent process (${parentAtStart}) is gone: stopping as for SIGTERM`)
  process.kill(process.pid, 'SIGTERM')
}, 1000).unref()
process.on('exit', () => {
  forget()
  for (const c of children.values()) c.kill('SIGTERM')
})

/** Polls url until it answers 200; rejects when the child exits first or time runs out. */
async function waitReady(name, child, url, seconds) {
  let exited = false
  child.exited.then(() => (exited = true))
  const until = Date.now() + seconds * 1000
  let last = 'no answer'
  while (Date.now() < until) {
    if (exited || stopping) return false
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
      if (res.ok) return true
      last = `${res.status} ${(await res.text()).slice(0, 200)}`
    } catch (e) {
      last = e.cause?.code ?? e.message
    }
    await sleep(300)
  }
  log(`the ${name} is not ready after ${seconds} s (${url}: ${last}); stopping`)
  exitCode = 1
  stopAll('SIGTERM')
  return false
}

// ---- go ---------------------------------------------------------------------------------
try {
  ensureDependencies({ log })
  await ensureServices({ log })
  if (replicas) ensureHaproxy({ log })
  // The workbench at /workbench (src/workbench/plugin.ts): built when its sources are newer.
  await buildWorkbench({ log })
} catch (e) {
  die(e.message)
}

// `npm start -- --tiers`: four nodes instead of one (dev/local-tree.ts; docs/tiers.md).
if (process.argv.includes('--tiers')) {
  log('four tiers: node --import tsx dev/local-tree.ts')
  const tree = spawn(process.execPath, ['--import', 'tsx', 'dev/local-tree.ts'], { cwd: ROOT, stdio: 'inherit' })
  // The tree stops its own nodes; this process only passes the signal on and waits.
  for (const s of ['SIGINT', 'SIGTERM']) process.removeAllListeners(s).on(s, () => tree.kill(s))
  tree.once('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
  await new Promise(() => {})
}

await checkPort('gateway', gatewayHost, gatewayPort, 'TONGBAN_PORT', gatewayUrl)
await checkPort('identity provider', '127.0.0.1', providerPort, 'PROVIDER_PORT', providerUrl)
await checkPort('real-estate registry', '127.0.0.1', propertyPort, 'PROPERTY_PORT', propertyUrl)
for (const d of departments) await checkPort(d.label, '127.0.0.1', d.port, d.portEnv, d.url)
if (devOidc) await checkPort('development sign-in provider', '127.0.0.1', devOidcPort, 'DEV_OIDC_PORT', devOidcUrl)

if (replicas) await checkPort('HAProxy stats', gatewayHost, haproxyStatsPort, 'HAPROXY_STATS_PORT', `http://${urlHost(clientHost)}:${haproxyStatsPort}`)

// --ha: the stores of a province (docs/operations.md, Scale-out: Redis / PostgreSQL), started
// by their helpers' scripts; their env points every replica (and prepare) at them.
if (ha) {
  const haDir = resolve(ROOT, '.tongban/ha')
  const missing = ['redis-topology.mjs', 'pg-standby.mjs'].filter((f) => !existsSync(join(ROOT, 'scripts', f)))
  if (missing.length) die(`--ha needs scripts/${missing.join(' and scripts/')} (Redis Sentinel, PostgreSQL standby), which this checkout does not have`)
  try {
    const { startRedisSentinel } = await import('./redis-topology.mjs')
    const { startPgPair } = await import('./pg-standby.mjs')
    log('--ha: Redis Sentinel (master, replica, three sentinels)')
    const sentinel = await startRedisSentinel({ dir: join(haDir, 'redis'), log })
    haStops.push(() => sentinel.stop())
    log('--ha: PostgreSQL primary with a synchronous standby')
    const pair = await startPgPair({ dir: join(haDir, 'pg'), log })
    haStops.push(() => pair.stop())
    // Both are made afresh on every run (empty database): the chains' high-water marks must
    // be too, or each replica would find its chain "cut" (marks of a database that is gone).
    const marks = join(haDir, 'audit-hwm')
    rmSync(marks, { recursive: true, force: true })
    // TONGBAN_REDIS_URL names the first master too, for a gateway without Sentinel settings.
    Object.assign(gatewayEnv, { TONGBAN_REDIS_URL: `redis://127.0.0.1:${sentinel.masterPort}`, TONGBAN_AUDIT_STATE_DIR: marks }, sentinel.env, pair.env)
    log(`--ha: ${Object.entries({ ...sentinel.env, ...pair.env }).map(([k, v]) => `${k}=${v}`).join(' ')}`)
  } catch (e) {
    log(`--ha could not start the stores: ${e.message}`)
    await exitAll(1)
  }
}

log('preparing the node: node --import tsx src/cli/main.ts prepare')
const prep = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'prepare'], { cwd: ROOT, env: gatewayEnv, stdio: 'inherit' })
if (prep.error || prep.status !== 0) {
  log(`prepare failed (${prep.error?.message ?? `exit ${prep.status ?? prep.signal}`}); nothing was started`)
  await exitAll(1)
}

log(`starting the simulated identity provider on ${providerUrl}`)
const provider = startChild('provider', ['dev/providers/identity/main.ts'], providerEnv)
if (!(await waitReady('identity provider', provider, `${providerUrl}/healthz`, 30))) await new Promise(() => {})
log(`starting the simulated real-estate registry on ${propertyUrl}`)
const property = startChild('property', ['dev/providers/property/main.ts'], propertyEnv)
if (!(await waitReady('real-estate registry', property, `${propertyUrl}/healthz`, 30))) await new Promise(() => {})
for (const d of departments) {
  log(`starting the ${d.about} on ${d.url}`)
  const child = startChild(d.name, [d.entry], { ...process.env, PORT: String(d.port), HOST: '127.0.0.1' })
  if (!(await waitReady(d.label, child, `${d.url}/healthz`, 30))) await new Promise(() => {})
}

if (devOidc) {
  log(`starting the development sign-in provider (OpenID Connect) on ${devOidcUrl}`)
  const oidc = startChild('oidc', ['dev/oidc/main.ts'], { ...process.env, DEV_OIDC_PORT: String(devOidcPort) })
  if (!(await waitReady('development sign-in provider', oidc, `${devOidcUrl}/.well-known/openid-configuration`, 30))) await new Promise(() => {})
} else {
  log(`people sign in at ${issuerSetting === '' || issuerSetting === 'none' || issuerSetting === null ? 'no provider (people.issuer is none)' : issuerSetting}; the development provider is not started`)
}

const replicaList = []
if (!replicas) {
  log(`starting the gateway on ${gatewayUrl} (mps-identity upstream: ${upstream})`)
  const gateway = startChild('gateway', [...GATEWAY_NODE_FLAGS, 'src/server.ts'], gatewayEnv)
  if (!(await waitReady('gateway', gateway, `${gatewayUrl}/readyz`, 60))) await new Promise(() => {})
} else {
  // Each replica on a free loopback port of its own, its own chain id (stable for this
  // machine: a restart continues the chain), all on the same schema and Redis prefix.
  for (let i = 1; i <= replicas; i++) {
    const port = await new Promise((done) => {
      const srv = net.createServer().listen(0, '127.0.0.1', () => {
        const p = srv.address().port
        srv.close(() => done(p))
      })
    })
    const id = process.env.TONGBAN_REPLICA_ID ? `${process.env.TONGBAN_REPLICA_ID}-r${i}` : `${hostname()}-r${i}`
    replicaList.push({ name: `r${i}`, id, host: '127.0.0.1', port, url: `http://127.0.0.1:${port}` })
  }
  for (const r of replicaList) {
    log(`starting gateway replica ${r.name} (chain ${r.id}) on ${r.url}`)
    const child = startChild(`gateway-${r.name}`, [...GATEWAY_NODE_FLAGS, 'src/server.ts'], { ...gatewayEnv, TONGBAN_HOST: '127.0.0.1', TONGBAN_PORT: String(r.port), TONGBAN_REPLICA_ID: r.id })
    if (!(await waitReady(`gateway replica ${r.name}`, child, `${r.url}/readyz`, 90))) await new Promise(() => {})
  }
  log(`starting HAProxy on ${gatewayUrl}: round robin over ${replicaList.length} replicas, checks on /readyz`)
  try {
    const lb = await startHaproxy({
      dir: resolve(ROOT, '.tongban/haproxy'), host: gatewayHost, port: gatewayPort, statsPort: haproxyStatsPort,
      servers: replicaList.map((r) => ({ name: r.name, host: r.host, port: r.port })),
      log: (line) => emit(process.stdout, `haproxy | ${line}\n`),
    })
    lb.child.exited = new Promise((done) => lb.child.on('exit', (code, signal) => done({ code, signal })))
    children.set('haproxy', lb.child)
    lb.child.on('exit', (code, signal) => {
      children.delete('haproxy')
      onChildExit('haproxy', code, signal)
    })
  } catch (e) {
    log(`HAProxy did not start: ${e.message}`)
    exitCode = 1
    stopAll('SIGTERM')
    await new Promise(() => {})
  }
}
record()
const suiteCli = suite === 'sm2' ? 'TONGBAN_CLIENTS_DIR=sm2/clients ' : ''
const tokenCommand = `${suiteCli}TONGBAN_PORT=${gatewayPort} node bin/tongban.js token jn-civil-affairs`

// Hold the servers' log lines while the summary prints, so it reads in one piece.
held = []
const bar = '─'.repeat(78)
console.log(`\n${bar}`)
console.log(`Tongban is running${suite === 'sm2' ? ' with national cryptography: SM2-SM3 checkpoints, evidence v2 (SM3), SM2 client certificates' : ''}.`)
console.log(`  gateway            ${gatewayUrl}${replicas ? `   (HAProxy, round robin over ${replicas} replicas)` : ''}`)
for (const r of replicaList) console.log(`    replica ${r.name.padEnd(10)} ${r.url}   (audit chain ${r.id})`)
if (replicas) console.log(`  HAProxy stats      http://${urlHost(clientHost)}:${haproxyStatsPort}/stats   (Prometheus: /metrics)`)
console.log(`  API docs           ${gatewayUrl}/docs   (OpenAPI: ${gatewayUrl}/openapi.json)`)
console.log(`  node and keys      ${gatewayUrl}/v1/node   ${gatewayUrl}/.well-known/jwks.json`)
console.log(`  identity provider  ${providerUrl}   (simulated 公安 identity service, synthetic population)`)
console.log(`  property registry  ${propertyUrl}   (simulated 自然资源 real-estate registry, same population)`)
for (const d of departments) console.log(`  ${d.label.padEnd(19)}${d.url}   (${d.about})`)
console.log(`  workbench          ${gatewayUrl}/workbench/`)
if (devOidc) {
  console.log(`  sign-in provider   ${devOidcUrl}   (development OpenID Connect; password tongban for all)`)
  console.log(`                     admin 张伟 目录管理员 · police 李娜 公安厅审核 · land 王芳 自然资源厅审核`)
  console.log(`                     applicant 刘洋 江宁区民政局申请 · auditor 陈静 审计厅审计`)
}
console.log(`  a token            ${tokenCommand}`)
console.log(`                     (the CLI finds this gateway through ${stateFile.startsWith(ROOT) ? stateFile.slice(ROOT.length + 1) : stateFile} too)`)
console.log(bar)
const example = await new Promise((done) => {
  const c = spawn(process.execPath, ['--import', 'tsx', 'scripts/example-call.ts', '--url', gatewayUrl, '--token-command', tokenCommand], { cwd: ROOT, env: gatewayEnv, stdio: ['ignore', 'inherit', 'inherit'] })
  c.on('error', (e) => done({ code: 1, error: e }))
  c.on('exit', (code) => done({ code }))
})
if (example.code !== 0) console.log(`\n[start] the example call did not succeed (see above); the gateway keeps running.`)
console.log(`${bar}\nPress Ctrl-C to stop them all.\n`)
release()
