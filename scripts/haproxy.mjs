// HAProxy in front of gateway replicas: the configuration, and haproxy itself started and
// stopped as a child process (npm start -- --replicas, the replica drills, the scaling
// benchmark). Plain Node, no dependencies. docs/operations.md "Scale-out: replicas and
// HAProxy" explains the choices; in short:
//
// - Public API (TONGBAN_PORT): HTTP mode, round robin, no stickiness (every replica can
//   answer every request: tokens, quotas, rate leases and nonces live in Redis and
//   PostgreSQL). Active checks GET /readyz: a replica that is draining (SIGTERM), cut from
//   PostgreSQL or Redis, or whose audit chain was cut answers 503 and gets no new requests.
//   Connection errors in traffic mark a replica down at once (observe layer4), and a request
//   that never reached a replica is sent to another (retries + redispatch); a request a
//   replica had already taken is never replayed (it may have been answered and audited).
// - Node↔node listener (TONGBAN_NODE_PORT, mutual TLS): TCP mode, passthrough. The replica
//   itself must see the neighbouring node's client certificate (its CN is the node id the
//   tier assertions are checked against), so HAProxy must not terminate that TLS. It is
//   checked through the same replica's /readyz on its public port.
//
//   node scripts/haproxy.mjs config --port 8443 --server 127.0.0.1:9001 --server 127.0.0.1:9002
//       prints a configuration (--node-port P --node-server host:port… for the mTLS frontend)
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { accessSync, constants, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import { delimiter, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath, pathToFileURL } from 'node:url'

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Absolute path of haproxy (PATH, then /usr/sbin and /sbin: not on a normal user's PATH), or null. */
export function findHaproxy() {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/local/sbin']) {
    if (!dir) continue
    const p = join(dir, 'haproxy')
    try {
      accessSync(p, constants.X_OK)
      if (statSync(p).isFile()) return p
    } catch {}
  }
  return null
}

/**
 * haproxy's path; when it is missing, `apt-get install -y haproxy` (as root, where apt-get
 * exists; after `apt-get update` if the first attempt fails). Throws with what to do when
 * it cannot be installed here.
 */
export function ensureHaproxy({ log = console.log } = {}) {
  const found = findHaproxy()
  if (found) return found
  const apt = ['/usr/bin/apt-get', '/bin/apt-get'].find((p) => existsSync(p))
  const root = typeof process.getuid === 'function' && process.getuid() === 0
  if (!apt || !root) {
    throw new Error(
      `haproxy is not installed, and ${!apt ? 'there is no apt-get here' : 'installing it needs root'}.\n` +
        `  Install it (Debian/Ubuntu: sudo apt-get install haproxy; macOS: brew install haproxy), then start again.`,
    )
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const install = () => spawnSync(apt, ['install', '-y', '--no-install-recommends', 'haproxy'], { env, encoding: 'utf8', timeout: 300_000 })
  log('haproxy: not installed; apt-get install -y haproxy')
  let r = install()
  if (r.status !== 0) {
    log('haproxy: apt-get install failed; apt-get update, then again')
    spawnSync(apt, ['update'], { env, encoding: 'utf8', timeout: 300_000 })
    r = install()
  }
  const now = findHaproxy()
  if (!now) throw new Error(`apt-get install haproxy failed (exit ${r.status ?? r.error?.message}): ${`${r.stderr ?? ''}`.trim().split('\n').slice(-3).join(' | ')}`)
  log(`haproxy: installed (${now})`)
  return now
}

const hostPort = (h, p) => `${h.includes(':') ? `[${h}]` : h}:${p}`

/**
 * The configuration text. `servers`: [{ name, host, port, nodePort? }]; `nodePort` (the
 * frontend's) adds the TCP passthrough frontend for the replicas' node listeners.
 * `check`: { interMs, fall, rise } of the active /readyz checks.
 */
export function haproxyConfig({ host = '127.0.0.1', port, servers, nodePort = null, statsPort = null, socket = null, check = {}, maxconn = 4000 }) {
  if (!servers?.length) throw new Error('haproxyConfig: at least one server')
  const inter = check.interMs ?? 1000
  const fall = check.fall ?? 2
  const rise = check.rise ?? 2
  const L = []
  L.push(
    '# Tongban: gateway replicas behind HAProxy (written by scripts/haproxy.mjs; docs/operations.md',
    '# "Scale-out: replicas and HAProxy"). Round robin, no stickiness, active checks on /readyz.',
    'global',
    `    maxconn ${maxconn}`,
    // No log target: run in the foreground (-db), haproxy prints server state changes (UP,
    // DOWN) on stderr itself; there is no access log (each replica logs its requests).
    ...(socket ? [`    stats socket ${socket} mode 600 level admin`] : []),
    '',
    'defaults',
    '    mode http',
    '    log global',
    '    option dontlognull',
    '    timeout connect 2s',
    '    timeout client 60s',
    '    timeout server 60s',
    '    timeout http-request 10s',
    '    timeout http-keep-alive 10s',
    `    timeout check ${Math.max(500, Math.min(inter, 2000))}ms`,
    // Only connection failures are retried (the request never reached a replica), on another
    // replica (redispatch); a request a replica took is never sent twice.
    '    retries 3',
    '    option redispatch 1',
    '',
    'frontend tongban',
    `    bind ${hostPort(host, port)}`,
    '    option forwardfor',
    '    default_backend tongban-replicas',
    '',
    'backend tongban-replicas',
    '    balance roundrobin',
    '    option httpchk',
    '    http-check send meth GET uri /readyz',
    '    http-check expect status 200',
    // A connection error in traffic takes the replica out at once, not after `fall` checks.
    `    default-server inter ${inter}ms fastinter ${Math.max(100, Math.round(inter / 4))}ms downinter ${inter}ms fall ${fall} rise ${rise} observe layer4 error-limit 1 on-error mark-down`,
    ...servers.map((s) => `    server ${s.name} ${hostPort(s.host, s.port)} check`),
  )
  if (nodePort !== null && nodePort !== undefined) {
    const withNode = servers.filter((s) => s.nodePort)
    if (!withNode.length) throw new Error('haproxyConfig: nodePort given but no server has a nodePort')
    L.push(
      '',
      '# Node-to-node traffic (mutual TLS): passed through, so the replica sees the neighbouring',
      "# node's client certificate; each replica checked through its public port's /readyz.",
      'frontend tongban-node',
      '    mode tcp',
      `    bind ${hostPort(host, nodePort)}`,
      '    default_backend tongban-replicas-node',
      '',
      'backend tongban-replicas-node',
      '    mode tcp',
      '    balance roundrobin',
      '    option httpchk',
      '    http-check send meth GET uri /readyz',
      '    http-check expect status 200',
      `    default-server inter ${inter}ms fastinter ${Math.max(100, Math.round(inter / 4))}ms downinter ${inter}ms fall ${fall} rise ${rise} observe layer4 error-limit 1 on-error mark-down`,
      ...withNode.map((s) => `    server ${s.name} ${hostPort(s.host, s.nodePort)} check port ${s.port}`),
    )
  }
  if (statsPort !== null && statsPort !== undefined) {
    L.push(
      '',
      '# Operators: Prometheus metrics (haproxy_server_status, haproxy_backend_active_servers, …) and the stats page.',
      'frontend stats',
      `    bind ${hostPort(host, statsPort)}`,
      '    http-request use-service prometheus-exporter if { path /metrics }',
      '    stats enable',
      '    stats uri /stats',
      '    stats refresh 5s',
    )
  }
  return L.join('\n') + '\n'
}

/** `haproxy -c`: null when the file is valid, else haproxy's words. */
export function checkConfig(file, bin = findHaproxy()) {
  if (!bin) return 'haproxy is not installed'
  const r = spawnSync(bin, ['-c', '-q', '-f', file], { encoding: 'utf8', timeout: 30_000 })
  return r.status === 0 ? null : `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() || `exit ${r.status}`
}

/** A command on the stats socket; resolves the whole answer. */
export function socketCommand(socket, command, timeoutMs = 3000) {
  return new Promise((done, fail) => {
    let out = ''
    const c = net.connect(socket)
    const timer = setTimeout(() => (c.destroy(), fail(new Error(`haproxy socket: no answer to ${command}`))), timeoutMs)
    c.on('connect', () => c.write(`${command}\n`))
    c.on('data', (d) => (out += d))
    c.on('error', (e) => (clearTimeout(timer), fail(e)))
    c.on('close', () => (clearTimeout(timer), done(out)))
  })
}

/**
 * Per server of the backends: status (UP, DOWN, MAINT, "UP 1/2", …), sessions in total and
 * now, 2xx/5xx answers, times marked down — from `show stat`.
 */
export async function serverStats(socket) {
  const text = await socketCommand(socket, 'show stat')
  const [head, ...lines] = text.trim().split('\n')
  const cols = head.replace(/^# /, '').split(',')
  return lines
    .map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])))
    .filter((r) => r.svname !== 'FRONTEND' && r.svname !== 'BACKEND')
    .map((r) => ({
      backend: r.pxname,
      server: r.svname,
      status: r.status,
      sessions: Number(r.stot || 0),
      current: Number(r.scur || 0),
      http2xx: Number(r.hrsp_2xx || 0),
      http5xx: Number(r.hrsp_5xx || 0),
      downs: Number(r.chkdown || 0),
      lastChange: Number(r.lastchg || 0),
    }))
}

/**
 * Writes the configuration into `dir` and runs haproxy in the foreground (-db) as a child.
 * Resolves once the stats socket answers and every server's first check settled (UP, unless
 * `waitUp: false`).
 */
export async function startHaproxy({ dir, host = '127.0.0.1', port, servers, nodePort = null, statsPort = null, check, log = () => {}, waitUp = true, timeoutMs = 30_000 }) {
  const bin = findHaproxy()
  if (!bin) throw new Error('haproxy is not installed (Debian/Ubuntu: apt-get install haproxy)')
  mkdirSync(dir, { recursive: true })
  const socket = join(dir, 'haproxy.sock')
  const configFile = join(dir, 'haproxy.cfg')
  writeFileSync(configFile, haproxyConfig({ host, port, servers, nodePort, statsPort, socket, check }))
  const problem = checkConfig(configFile, bin)
  if (problem) throw new Error(`haproxy refuses ${configFile}: ${problem}`)
  const child = spawn(bin, ['-db', '-f', configFile], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (d) => {
    output += d
    if (output.length > 100_000) output = output.slice(-50_000)
    for (const line of `${d}`.split('\n')) if (line.trim()) log(line.trim())
  }
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const exited = once(child, 'exit')
  const until = Date.now() + timeoutMs
  for (;;) {
    if (child.exitCode !== null) throw new Error(`haproxy exited (${child.exitCode}): ${output.slice(-2000)}`)
    const stats = await serverStats(socket).catch(() => null)
    if (stats && (!waitUp || stats.every((s) => s.status === 'UP'))) break
    if (Date.now() > until) {
      child.kill('SIGKILL')
      throw new Error(`haproxy: servers not all UP after ${timeoutMs} ms: ${JSON.stringify(stats)}`)
    }
    await sleep(100)
  }
  const url = `http://${hostPort(host === '0.0.0.0' ? '127.0.0.1' : host, port)}`
  return {
    url,
    port,
    nodePort,
    configFile,
    socket,
    pid: child.pid,
    child,
    output: () => output,
    stats: () => serverStats(socket),
    /** Resolves once `server` (of the public backend) has `status`, e.g. 'UP' or 'DOWN'. */
    async waitFor(server, status, ms = 30_000) {
      const end = Date.now() + ms
      for (;;) {
        const s = (await serverStats(socket)).find((x) => x.backend === 'tongban-replicas' && x.server === server)
        if (s && s.status === status) return s
        if (Date.now() > end) throw new Error(`haproxy: ${server} is ${s?.status} after ${ms} ms, not ${status}`)
        await sleep(50)
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      await exited
    },
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const { values: v, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '8443' },
      server: { type: 'string', multiple: true, default: [] },
      'node-port': { type: 'string' },
      'node-server': { type: 'string', multiple: true, default: [] },
      'stats-port': { type: 'string' },
      socket: { type: 'string' },
    },
  })
  if (positionals[0] !== 'config' || !v.server.length) {
    console.error('usage: node scripts/haproxy.mjs config --port P --server host:port… [--node-port P --node-server host:port…] [--stats-port P] [--socket PATH]')
    process.exit(2)
  }
  const split = (s) => {
    const i = s.lastIndexOf(':')
    return [s.slice(0, i).replace(/^\[(.*)\]$/, '$1'), Number(s.slice(i + 1))]
  }
  const servers = v.server.map((s, i) => {
    const [h, p] = split(s)
    const n = v['node-server'][i]
    return { name: `r${i + 1}`, host: h, port: p, ...(n ? { nodePort: split(n)[1] } : {}) }
  })
  process.stdout.write(haproxyConfig({
    host: v.host, port: Number(v.port), servers,
    nodePort: v['node-port'] ? Number(v['node-port']) : null,
    statsPort: v['stats-port'] ? Number(v['stats-port']) : null,
    socket: v.socket ?? null,
  }))
}

export const SCRIPT = fileURLToPath(import.meta.url)
