// A PostgreSQL primary with one synchronous streaming standby, in a directory of its own
// (issue 17; docs/operations.md "Scale-out: PostgreSQL"). The engines' own tools do all of
// it: initdb, pg_basebackup -R (a physical replication slot), pg_ctl start/stop/promote.
// It is what the standby tests and drills run on, and what an operator can copy.
//
//   node scripts/pg-standby.mjs [dir]   start a pair, print the gateway's env, stop on Ctrl-C
//
// Ports: free ones, unless TONGBAN_PG_PRIMARY_PORT / TONGBAN_PG_STANDBY_PORT say otherwise.
// As root, the servers run as the `postgres` user (initdb and postgres refuse root).
import { spawnSync } from 'node:child_process'
import { appendFileSync, chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import { pgBin } from './services.mjs'

const HOST = '127.0.0.1'
const STANDBY_NAME = 'tongban_standby'
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

import { freePort } from './free-port.mjs'

export { freePort }

const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0

/** The server's account when we are root: its uid/gid (from `id`), else null. */
function serverAccount() {
  if (!isRoot()) return null
  const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim())
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim())
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid === 0) {
    throw new Error('pg-standby: running as root needs a `postgres` user to run the servers (apt-get install postgresql creates it)')
  }
  return { uid, gid }
}

function bin(name) {
  const p = pgBin(name)
  if (!p) throw new Error(`pg-standby: ${name} not found (apt-get install postgresql-15, or put its bin directory on PATH)`)
  return p
}

/** Runs a PostgreSQL tool (as the postgres user when we are root); throws with its output. */
function tool(account, name, args, timeout = 120_000) {
  const cmd = bin(name)
  const [file, argv] = account ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]
  const r = spawnSync(file, argv, { encoding: 'utf8', timeout, cwd: tmpdir() })
  if (r.error || r.status !== 0) {
    throw new Error(`pg-standby: ${name} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}): ${`${r.stdout}${r.stderr}`.trim().slice(-2000)}`)
  }
  return r.stdout
}

/** A directory the servers' account owns (mode 0700, as PostgreSQL wants its data). */
function ownDir(account, path) {
  mkdirSync(path, { recursive: true, mode: 0o700 })
  if (account) chownSync(path, account.uid, account.gid)
  return path
}

const conf = (settings) => Object.entries(settings).map(([k, v]) => `${k} = ${typeof v === 'number' ? v : `'${v}'`}\n`).join('')

async function query(port, sql, params = []) {
  const c = new pg.Client({ host: HOST, port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2000, application_name: 'tongban-pg-standby' })
  c.on('error', () => {})
  try {
    await c.connect()
    return (await c.query(sql, params)).rows
  } finally {
    await c.end().catch(() => {})
  }
}

async function until(what, probe, ms = 60_000) {
  const deadline = Date.now() + ms
  let last
  for (;;) {
    try {
      const r = await probe()
      if (r) return r
    } catch (e) {
      last = e
    }
    if (Date.now() > deadline) throw new Error(`pg-standby: ${what} did not happen within ${ms / 1000} s${last ? ` (${last.message})` : ''}`)
    await sleep(200)
  }
}

/** The standby as the primary sees it: `pg_stat_replication`'s row for it, or undefined. */
export async function replicationState(primaryPort) {
  const rows = await query(primaryPort, 'SELECT application_name, state, sync_state, replay_lsn = pg_current_wal_lsn() AS caught_up FROM pg_stat_replication WHERE application_name = $1', [STANDBY_NAME])
  return rows[0]
}

/**
 * Starts the pair under `dir` and resolves once the primary reports the standby streaming
 * and synchronous. `standbyConnectsTo(primaryPort)` may give another port for the standby's
 * replication connection (a TCP proxy a drill can cut); the base backup goes direct.
 */
export async function startPgPair({ dir, log = () => {}, standbyConnectsTo } = {}) {
  const account = serverAccount()
  dir = resolve(dir ?? mkdtempSync(join(tmpdir(), 'tongban-pg-')))
  mkdirSync(dir, { recursive: true })
  // The servers' account must reach its directories under ours (mkdtemp makes 0700).
  if (account) chmodSync(dir, 0o755)
  const primaryPort = Number(process.env.TONGBAN_PG_PRIMARY_PORT) || (await freePort())
  let standbyPort = Number(process.env.TONGBAN_PG_STANDBY_PORT) || (await freePort())
  while (standbyPort === primaryPort) standbyPort = await freePort()
  const primary = join(dir, 'primary')
  const standby = join(dir, 'standby')
  const sockets = ownDir(account, join(dir, 'sockets'))
  const logs = ownDir(account, join(dir, 'logs'))
  rmSync(primary, { recursive: true, force: true })
  rmSync(standby, { recursive: true, force: true })
  ownDir(account, primary)
  ownDir(account, standby) // pg_basebackup fills an empty directory

  const pgctl = (data, ...args) => tool(account, 'pg_ctl', ['-D', data, ...args])
  const started = new Set()
  const start = (data, logFile) => {
    pgctl(data, '-l', logFile, '-w', '-t', '60', 'start')
    started.add(data)
  }
  const stopServer = (data, mode = 'fast') => {
    if (!started.has(data)) return
    started.delete(data)
    try {
      pgctl(data, '-m', mode, '-w', '-t', '60', 'stop')
    } catch (e) {
      // Already gone (stopped by a drill, or crashed): nothing to stop.
      if (!/PID file .* does not exist|Is server running/.test(e.message)) throw e
    }
  }

  log(`pg-standby: initdb ${primary} (port ${primaryPort})`)
  tool(account, 'initdb', ['-D', primary, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C'])
  appendFileSync(
    primary + '/postgresql.conf',
    '\n# tongban pg-standby (scripts/pg-standby.mjs)\n' +
      conf({
        listen_addresses: HOST,
        port: primaryPort,
        unix_socket_directories: sockets,
        wal_level: 'replica',
        max_wal_senders: 5,
        max_replication_slots: 5,
        // A commit waits for this standby (the audit path asks for remote_apply on top).
        synchronous_standby_names: `FIRST 1 (${STANDBY_NAME})`,
        // A standby gone without a word (a cut link) is given up after this.
        wal_sender_timeout: '10s',
        max_connections: 200,
        shared_buffers: '64MB',
      }),
  )
  // initdb -A trust already lets 127.0.0.1 connect, replication included.
  start(primary, join(logs, 'primary.log'))

  // Immediate, as a crash (recovery on the next start): a fast stop of the primary waits for
  // its walsender to hand the shutdown checkpoint to the standby, which through a drill's
  // proxy can take wal_sender_timeout; these pairs are for tests and drills.
  const stop = async () => {
    stopServer(primary, 'immediate')
    stopServer(standby, 'immediate')
  }
  try {
    log(`pg-standby: pg_basebackup -R into ${standby} (slot ${STANDBY_NAME})`)
    tool(account, 'pg_basebackup', ['-h', HOST, '-p', String(primaryPort), '-U', 'postgres', '-D', standby, '-R', '-X', 'stream', '-C', '-S', STANDBY_NAME, '-c', 'fast'])
    const upstreamPort = standbyConnectsTo ? await standbyConnectsTo(primaryPort) : primaryPort
    // postgresql.auto.conf (where -R wrote its primary_conninfo) is read last: settle it there.
    appendFileSync(
      standby + '/postgresql.auto.conf',
      '\n# the standby (scripts/pg-standby.mjs)\n' +
        conf({
          port: standbyPort,
          hot_standby: 'on',
          // Promoted, it runs alone until a new standby is built: it must not wait for one.
          synchronous_standby_names: '',
          primary_conninfo: `host=${HOST} port=${upstreamPort} user=postgres application_name=${STANDBY_NAME} connect_timeout=2`,
          primary_slot_name: STANDBY_NAME,
          wal_receiver_timeout: '5s',
          wal_retrieve_retry_interval: '500ms',
        }),
    )
    start(standby, join(logs, 'standby.log'))
    await until('streaming synchronous replication', async () => {
      const r = await replicationState(primaryPort)
      return r && r.state === 'streaming' && r.sync_state === 'sync'
    })
  } catch (e) {
    await stop().catch(() => {})
    throw e
  }
  log(`pg-standby: primary ${HOST}:${primaryPort}, standby ${HOST}:${standbyPort} streaming, synchronous`)

  const url = (port) => `postgres://postgres@${HOST}:${port}/postgres`
  return {
    dir,
    primaryPort,
    standbyPort,
    primaryUrl: url(primaryPort),
    standbyUrl: url(standbyPort),
    env: {
      TONGBAN_PG_URL: url(primaryPort),
      // Tried in order; the pool keeps to the one that is not in recovery (src/stores/postgres.ts).
      TONGBAN_PG_HOSTS: `${HOST}:${primaryPort},${HOST}:${standbyPort}`,
      TONGBAN_PG_READ_URL: url(standbyPort),
      TONGBAN_PG_SYNC_COMMIT: 'remote_apply',
    },
    replication: () => replicationState(primaryPort),
    /** `pg_ctl stop -m immediate`: the primary is gone at once, as in a crash. */
    async stopPrimary() {
      stopServer(primary, 'immediate')
    },
    /** `pg_ctl promote`; resolves once the standby takes writes. */
    async promoteStandby() {
      pgctl(standby, '-w', '-t', '60', 'promote')
      await until('promotion', async () => (await query(standbyPort, 'SELECT pg_is_in_recovery() AS r'))[0].r === false)
    },
    stop,
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const pair = await startPgPair({ dir: process.argv[2], log: console.log })
  for (const [k, v] of Object.entries(pair.env)) console.log(`export ${k}=${v}`)
  console.log('Ctrl-C stops both servers')
  const quit = async () => {
    await pair.stop()
    process.exit(0)
  }
  process.on('SIGINT', quit)
  process.on('SIGTERM', quit)
  setInterval(() => {}, 1 << 30)
}
