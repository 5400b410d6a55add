// Makes sure what `npm start` and `npm test` need is there: dependencies installed, and
// PostgreSQL and Redis reachable (started when they are local and installed but down).
// Plain Node, no dependencies: it runs before `npm install`.
//
//   node scripts/services.mjs        check (and start) PostgreSQL and Redis
//
// Env: TONGBAN_PG_URL (default postgres://postgres@127.0.0.1:5432/test),
//      TONGBAN_REDIS_URL (default redis://127.0.0.1:6379).
import { spawnSync } from 'node:child_process'
import { accessSync, constants, existsSync, mkdirSync, readdirSync, statSync, utimesSync } from 'node:fs'
import net from 'node:net'
import { delimiter, dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const DEFAULT_PG_URL = 'postgres://postgres@127.0.0.1:5432/test'
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'

const WAIT_MS = 15_000
const PROBE_TIMEOUT_MS = 2_000
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]', ''])

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

// ---------------------------------------------------------------------------------------
// Dependencies

/** Runs `npm install` when node_modules is missing or older than package-lock.json. */
export function ensureDependencies({ log = console.log, root = ROOT } = {}) {
  const hidden = join(root, 'node_modules/.package-lock.json')
  const lock = join(root, 'package-lock.json')
  const mtime = (f) => (existsSync(f) ? statSync(f).mtimeMs : undefined)
  const installed = mtime(hidden)
  const wanted = mtime(lock) ?? mtime(join(root, 'package.json'))
  if (installed !== undefined && (wanted === undefined || wanted <= installed)) return false
  log(installed === undefined ? 'dependencies: node_modules is missing; running npm install' : 'dependencies: package-lock.json changed; running npm install')
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const r = spawnSync(npm, ['install', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' })
  if (r.error) throw new Error(`npm install could not run: ${r.error.message}`)
  if (r.status !== 0) throw new Error(`npm install failed (exit ${r.status ?? r.signal})`)
  // npm leaves the hidden lockfile alone when nothing changed; mark the install as current.
  if (existsSync(hidden)) {
    const now = new Date()
    utimesSync(hidden, now, now)
  }
  return true
}

// ---------------------------------------------------------------------------------------
// Small helpers

/** Absolute path of an executable on PATH (or in extra dirs), or null. */
export function which(cmd, extraDirs = []) {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), ...extraDirs]) {
    if (!dir) continue
    const p = join(dir, cmd)
    try {
      accessSync(p, constants.X_OK)
      if (statSync(p).isFile()) return p
    } catch {}
  }
  return null
}

const run = (cmd, args, opts = {}) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, ...opts })
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim()
  return { ok: !r.error && r.status === 0, status: r.status, out: r.error ? r.error.message : out }
}

const writable = (dir) => {
  try {
    accessSync(dir, constants.W_OK)
    return statSync(dir).isDirectory()
  } catch {
    return false
  }
}

const isLocal = (host) => LOCAL_HOSTS.has(host) || host.startsWith('/')
const bareHost = (h) => h.replace(/^\[(.*)\]$/, '$1')
const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0

/** Connects, writes `first`, and hands every received chunk to `onData(buffer, socket)` until it resolves. */
function converse(target, first, onData, timeoutMs = PROBE_TIMEOUT_MS) {
  return new Promise((resolveP) => {
    let buf = Buffer.alloc(0)
    let done = false
    const socket = net.connect(target)
    const finish = (result) => {
      if (done) return
      done = true
      clearTimeout(timer)
      // Close politely (FIN, not RST) so servers do not log a reset; force it shortly after.
      socket.end()
      setTimeout(() => socket.destroy(), 200).unref()
      resolveP(result)
    }
    const timer = setTimeout(() => finish({ state: 'down', reason: `no answer within ${timeoutMs} ms` }), timeoutMs)
    socket.on('connect', () => socket.write(first))
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk])
      const r = onData(buf, socket)
      if (r) finish(r)
    })
    socket.on('error', (e) => finish({ state: 'down', reason: e.code ?? e.message }))
    socket.on('close', () => finish({ state: 'down', reason: 'connection closed' }))
  })
}

async function waitFor(probe, ms = WAIT_MS) {
  const until = Date.now() + ms
  let last
  for (;;) {
    last = await probe()
    if (last.state !== 'down' && last.state !== 'starting') return last
    if (Date.now() >= until) return last
    await sleep(250)
  }
}

// ---------------------------------------------------------------------------------------
// Redis

export function parseRedisUrl(url) {
  const u = new URL(url)
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new Error(`TONGBAN_REDIS_URL must be a redis:// URL, got ${url}`)
  return {
    host: u.hostname || '127.0.0.1',
    port: Number(u.port || 6379),
    tls: u.protocol === 'rediss:',
    username: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
  }
}

const resp = (...args) => `*${args.length}\r\n` + args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')

/** `PING` over a raw socket (after AUTH when the URL has a password). */
export async function probeRedis(r) {
  const host = bareHost(r.host)
  if (r.tls) {
    // No TLS client here: an open port is as far as this check goes.
    return converse({ host, port: r.port }, '', () => null, 300).then((x) => (x.reason === 'connection closed' || x.reason?.startsWith('no answer') ? { state: 'up' } : x))
  }
  const auth = r.password ? (r.username ? resp('AUTH', r.username, r.password) : resp('AUTH', r.password)) : ''
  return converse({ host, port: r.port }, auth + resp('PING'), (buf) => {
    const lines = buf.toString('utf8').split('\r\n')
    if (lines.length < (auth ? 3 : 2)) return null
    const [a, b] = auth ? lines : [null, lines[0]]
    // A password in the URL for a server without one is what ioredis tolerates too.
    if (auth && !a.startsWith('+OK') && !/without any password configured/.test(a)) return { state: 'error', reason: `Redis refused AUTH: ${a.slice(1)}` }
    if (b.startsWith('+PONG')) return { state: 'up' }
    if (b.startsWith('-LOADING')) return { state: 'starting', reason: b.slice(1) }
    if (b.startsWith('-NOAUTH') || b.startsWith('-WRONGPASS')) return { state: 'error', reason: `Redis wants a password: set it in TONGBAN_REDIS_URL (${b.slice(1)})` }
    return { state: 'error', reason: `unexpected answer to PING: ${JSON.stringify(b)} (is this a Redis server?)` }
  })
}

function startRedis(r, log) {
  const server = which('redis-server')
  if (!server) {
    throw new Error(
      `Redis is not reachable at ${r.host}:${r.port} and redis-server is not installed.\n` +
        `  Install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis),\n` +
        `  or point TONGBAN_REDIS_URL at a running Redis (e.g. redis://host:6379).`,
    )
  }
  const version = Number(/v=(\d+)/.exec(run(server, ['--version']).out)?.[1] ?? 0)
  // Use the machine's usual place when we may write there, else a directory of our own.
  let dir = '/var/lib/redis'
  let logfile = '/var/log/redis/ci.log'
  if (!writable(dir) || !writable(dirname(logfile))) {
    dir = join(ROOT, '.tongban/redis')
    mkdirSync(dir, { recursive: true })
    logfile = join(dir, 'redis.log')
  }
  const bind = bareHost(r.host) === '::1' ? ['::1', '127.0.0.1'] : version >= 7 ? ['127.0.0.1', '-::1'] : ['127.0.0.1']
  const args = ['--daemonize', 'yes', '--bind', ...bind, '--port', String(r.port), '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', logfile]
  log(`redis: not reachable at ${r.host}:${r.port}; starting ${server} (log ${logfile})`)
  const res = run(server, args)
  if (!res.ok) throw new Error(`redis-server did not start (exit ${res.status}): ${res.out || `see ${logfile}`}`)
  return logfile
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

export function parsePgUrl(url) {
  const u = new URL(url)
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error(`TONGBAN_PG_URL must be a postgres:// URL, got ${url}`)
  const socketDir = u.searchParams.get('host')
  const host = socketDir?.startsWith('/') ? socketDir : u.hostname || '127.0.0.1'
  const user = decodeURIComponent(u.username) || process.env.PGUSER || 'postgres'
  return {
    host,
    port: Number(u.port || 5432),
    user,
    database: decodeURIComponent(u.pathname.slice(1)) || user,
  }
}

const pgTarget = (p) => (p.host.startsWith('/') ? { path: join(p.host, `.s.PGSQL.${p.port}`) } : { host: bareHost(p.host), port: p.port })

/**
 * SSLRequest, then (when the server says 'N') a startup message, and reads the first answer:
 * an authentication request means the server takes connections; an ErrorResponse says why not
 * (starting up, no such database, …). The connection is closed before authenticating.
 */
export async function probePostgres(p) {
  const ssl = Buffer.alloc(8)
  ssl.writeInt32BE(8, 0)
  ssl.writeInt32BE(80877103, 4)
  const params = Buffer.from(`user\0${p.user}\0database\0${p.database}\0application_name\0tongban-probe\0\0`, 'utf8')
  const startup = Buffer.alloc(8 + params.length)
  startup.writeInt32BE(startup.length, 0)
  startup.writeInt32BE(196608, 4) // protocol 3.0
  params.copy(startup, 8)
  const terminate = Buffer.from([0x58, 0, 0, 0, 4])
  let sentStartup = false

  return converse(pgTarget(p), ssl, (buf, socket) => {
    if (!sentStartup) {
      const c = String.fromCharCode(buf[0])
      if (c === 'S') return { state: 'up' } // wants TLS: it is a PostgreSQL server, that is enough here
      if (c !== 'N') return { state: 'error', reason: `unexpected answer to SSLRequest (${JSON.stringify(c)}): is this PostgreSQL?` }
      sentStartup = true
      socket.write(startup)
      return null
    }
    // Skip the consumed SSLRequest answer (1 byte), then read messages: type, int32 length, body.
    // With trust auth the server checks the role and database only after AuthenticationOk.
    let m = buf.subarray(1)
    while (m.length >= 5) {
      const type = String.fromCharCode(m[0])
      const len = m.readInt32BE(1)
      if (m.length < 1 + len) return null
      const body = m.subarray(5, 1 + len)
      m = m.subarray(1 + len)
      if (type === 'R') {
        if (body.readInt32BE(0) !== 0) return { state: 'up' } // wants a password: it takes connections
        continue
      }
      if (type === 'S' || type === 'K' || type === 'N') continue
      if (type === 'Z') {
        socket.write(terminate)
        return { state: 'up' }
      }
      if (type === 'E') {
        const fields = {}
        for (const part of body.toString('utf8').split('\0')) if (part) fields[part[0]] = part.slice(1)
        const code = fields.C ?? ''
        const msg = fields.M ?? 'error'
        if (code === '57P03') return { state: 'starting', reason: msg }
        if (code === '3D000') return { state: 'nodb', reason: msg }
        if (code.startsWith('28')) return { state: 'error', reason: `PostgreSQL refused user ${p.user}: ${msg}` }
        return { state: 'up', warning: `${code} ${msg}` }
      }
      return { state: 'error', reason: `unexpected PostgreSQL message ${JSON.stringify(type)}` }
    }
    return null
  })
}

/** Server binaries: PATH first, then the distribution's versioned directories (newest first). */
export function pgBin(name) {
  const extra = []
  for (const base of ['/usr/lib/postgresql', '/usr/pgsql']) {
    try {
      const versions = readdirSync(base).filter((v) => /^\d+(\.\d+)?$/.test(v)).sort((a, b) => Number(b) - Number(a))
      for (const v of versions) extra.push(join(base, v, 'bin'))
    } catch {}
  }
  extra.push('/usr/local/pgsql/bin', '/opt/homebrew/bin', '/usr/local/bin')
  return which(name, extra)
}

function startPostgres(p, log) {
  const host = bareHost(p.host)
  const ctlcluster = which('pg_ctlcluster')
  if (ctlcluster) {
    const listing = which('pg_lsclusters') ? run('pg_lsclusters', ['-h']).out : ''
    const clusters = listing
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length >= 4 && /^\d/.test(f[0]))
      .map(([version, name, port, status]) => ({ version, name, port: Number(port), status }))
    let cluster = clusters.find((c) => c.port === p.port)
    if (!cluster && !listing && existsSync('/etc/postgresql')) {
      // No pg_lsclusters: assume the newest version's `main` cluster.
      const v = readdirSync('/etc/postgresql').sort((a, b) => Number(b) - Number(a))[0]
      if (v) cluster = { version: v, name: 'main', port: p.port, status: 'unknown' }
    }
    if (cluster) {
      log(`postgres: not reachable at ${p.host}:${p.port}; starting cluster ${cluster.version}/${cluster.name} with pg_ctlcluster`)
      const r = run(ctlcluster, ['--skip-systemctl-redirect', cluster.version, cluster.name, 'start'])
      // "already running" is not a failure: the probe decides.
      if (!r.ok && !/already running/i.test(r.out)) {
        throw new Error(`pg_ctlcluster ${cluster.version} ${cluster.name} start failed: ${r.out}`)
      }
      return `/var/log/postgresql/postgresql-${cluster.version}-${cluster.name}.log`
    }
    if (clusters.length) {
      log(`postgres: no cluster listens on port ${p.port} (${clusters.map((c) => `${c.version}/${c.name} on ${c.port}`).join(', ')}); using a private data directory`)
    }
  }

  const pgCtl = pgBin('pg_ctl')
  const initdb = pgBin('initdb')
  if (!pgCtl) {
    throw new Error(
      `PostgreSQL is not reachable at ${p.host}:${p.port} and no PostgreSQL server is installed.\n` +
        `  Install it (Debian/Ubuntu: apt-get install postgresql-15, or apt-get install postgresql;\n` +
        `  macOS: brew install postgresql@15), or point TONGBAN_PG_URL at a running server\n` +
        `  (e.g. postgres://user@host:5432/dbname).`,
    )
  }
  if (isRoot()) {
    throw new Error(
      `PostgreSQL is not reachable at ${p.host}:${p.port}, and pg_ctl/initdb refuse to run as root.\n` +
        `  Create and start a cluster as root with postgresql-common (apt-get install postgresql-15;\n` +
        `  pg_createcluster 15 main --port ${p.port} --start), run this as a normal user, or point TONGBAN_PG_URL at a running server.`,
    )
  }
  const dataDir = join(ROOT, '.tongban/pgdata')
  const logFile = join(ROOT, '.tongban/postgres.log')
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    if (!initdb) throw new Error(`pg_ctl is installed but initdb is not: install the PostgreSQL server package (apt-get install postgresql-15)`)
    log(`postgres: creating a private cluster in ${dataDir} (initdb, user ${p.user}, trust auth on loopback)`)
    mkdirSync(dirname(dataDir), { recursive: true })
    const r = run(initdb, ['-D', dataDir, '-U', p.user, '--auth=trust', '-E', 'UTF8', '--locale=C'])
    if (!r.ok) throw new Error(`initdb failed: ${r.out}`)
  }
  const sockDir = join(ROOT, '.tongban')
  const listen = host.startsWith('/') ? '' : host === 'localhost' ? 'localhost' : host
  log(`postgres: starting ${dataDir} on port ${p.port} with pg_ctl (log ${logFile})`)
  const r = run(pgCtl, ['-D', dataDir, '-l', logFile, '-w', '-t', '15', '-o', `-p ${p.port} -c listen_addresses='${listen}' -k ${sockDir}`, 'start'])
  if (!r.ok && !/another server might be running/i.test(r.out)) throw new Error(`pg_ctl start failed: ${r.out} (see ${logFile})`)
  return logFile
}

function createDatabase(p, log) {
  const createdb = pgBin('createdb')
  if (!createdb) return false
  log(`postgres: database ${p.database} does not exist; creating it`)
  const hostArg = p.host.startsWith('/') ? p.host : bareHost(p.host)
  const r = run(createdb, ['-h', hostArg, '-p', String(p.port), '-U', p.user, p.database], { env: { ...process.env, PGCONNECT_TIMEOUT: '5' } })
  if (!r.ok) throw new Error(`createdb ${p.database} failed: ${r.out}`)
  return true
}

// ---------------------------------------------------------------------------------------

async function ensureRedis(url, log) {
  const r = parseRedisUrl(url)
  const where = `${r.host}:${r.port}`
  let s = await probeRedis(r)
  if (s.state === 'starting') s = await waitFor(() => probeRedis(r))
  if (s.state === 'up') return log(`redis: ok (${where})`)
  if (s.state === 'error') throw new Error(`Redis at ${where} (TONGBAN_REDIS_URL): ${s.reason}`)
  if (!isLocal(r.host)) throw new Error(`Redis is not reachable at ${where} (${s.reason}); start it or fix TONGBAN_REDIS_URL`)
  const logfile = startRedis(r, log)
  s = await waitFor(() => probeRedis(r))
  if (s.state !== 'up') throw new Error(`Redis was started but does not answer at ${where} after ${WAIT_MS / 1000} s (${s.reason}); see ${logfile}`)
  log(`redis: started (${where})`)
}

async function ensurePostgres(url, log) {
  const p = parsePgUrl(url)
  const where = `${p.host}:${p.port}`
  let s = await probePostgres(p)
  if (s.state === 'starting') s = await waitFor(() => probePostgres(p))
  let started = false
  if (s.state === 'down') {
    if (!isLocal(p.host)) throw new Error(`PostgreSQL is not reachable at ${where} (${s.reason}); start it or fix TONGBAN_PG_URL`)
    const logFile = startPostgres(p, log)
    s = await waitFor(() => probePostgres(p))
    if (s.state === 'down' || s.state === 'starting') {
      throw new Error(`PostgreSQL was started but does not take connections at ${where} after ${WAIT_MS / 1000} s (${s.reason}); see ${logFile}`)
    }
    started = true
  }
  if (s.state === 'nodb') {
    if (!isLocal(p.host) || !createDatabase(p, log)) {
      throw new Error(`PostgreSQL at ${where}: ${s.reason}. Create it (createdb -h ${p.host} -p ${p.port} -U ${p.user} ${p.database}) or fix TONGBAN_PG_URL`)
    }
    s = await probePostgres(p)
  }
  if (s.state !== 'up') throw new Error(`PostgreSQL at ${where} (TONGBAN_PG_URL): ${s.reason}`)
  if (s.warning) log(`postgres: note: ${s.warning}`)
  log(`postgres: ${started ? 'started' : 'ok'} (${where}, database ${p.database})`)
}

/** Checks PostgreSQL and Redis; starts the local ones that are installed but down; throws with what to do otherwise. */
export async function ensureServices({ log = console.log, env = process.env } = {}) {
  const pgUrl = env.TONGBAN_PG_URL || DEFAULT_PG_URL
  const redisUrl = env.TONGBAN_REDIS_URL || DEFAULT_REDIS_URL
  await ensurePostgres(pgUrl, log)
  await ensureRedis(redisUrl, log)
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    await ensureServices()
  } catch (e) {
    console.error(`services: ${e.message}`)
    process.exit(1)
  }
}
