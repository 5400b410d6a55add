// One pg pool per process, pinned to the node's schema (each test run gets its own schema).
// With TONGBAN_PG_HOSTS (a primary and its standby) the pool follows the server that takes
// writes: node-postgres takes one host, so each new connection goes to the host found by
// trying the list in order with `SELECT pg_is_in_recovery()` (what libpq's
// target_session_attrs=read-write does), and a connection that fails sends the next one
// looking again. Promotion itself is the operator's (`pg_ctl promote`, runbook in
// docs/operations.md): nothing here elects a primary.
import pg from 'pg'
import type { Config } from '../config/index.js'

export type Db = pg.Pool

type PgConfig = Config['postgres']

export interface PgHost {
  host: string
  port: number
}

/** `host:port,host:port` (IPv6 in brackets) → the hosts, in order. */
export function parseHosts(list: string): PgHost[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const at = s.lastIndexOf(':')
      const port = Number(s.slice(at + 1))
      const host = s.slice(0, at).replace(/^\[(.*)\]$/, '$1')
      if (at <= 0 || !host || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`TONGBAN_PG_HOSTS: ${JSON.stringify(s)} is not host:port`)
      return { host, port }
    })
}

const name = (h: PgHost) => `${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}`

/** node-postgres reads host and port from these when it connects (client.js _connect). */
interface Aimable {
  host: string
  port: number
  connectionParameters: { host: string; port: number }
}
function aim(client: pg.Client, h: PgHost): void {
  const c = client as unknown as Aimable
  c.host = c.connectionParameters.host = h.host
  c.port = c.connectionParameters.port = h.port
}

/** The host that takes writes, remembered until a connection to it fails. */
export class PrimaryFinder {
  private current: PgHost | null = null
  private looking: Promise<PgHost> | null = null
  /** A failed search is not repeated for a moment: a burst of requests makes one search. */
  private failedUntil = 0
  private failure: Error | null = null

  constructor(
    readonly hosts: PgHost[],
    private readonly clientConfig: pg.ClientConfig,
    private readonly onChange?: (primary: string | null, detail: string) => void,
  ) {}

  get primary(): string | null {
    return this.current ? name(this.current) : null
  }

  find(): Promise<PgHost> {
    if (this.current) return Promise.resolve(this.current)
    if (Date.now() < this.failedUntil && this.failure) return Promise.reject(this.failure)
    this.looking ??= this.search().finally(() => (this.looking = null))
    return this.looking
  }

  /** A connection to `h` failed (or found it in recovery): look again next time. */
  lost(h: PgHost, why: string): void {
    if (this.current && this.current.host === h.host && this.current.port === h.port) {
      this.current = null
      this.onChange?.(null, `${name(h)}: ${why}`)
    }
  }

  private async search(): Promise<PgHost> {
    const seen: string[] = []
    for (const h of this.hosts) {
      const c = new pg.Client(this.clientConfig)
      aim(c, h)
      c.on('error', () => {})
      try {
        await c.connect()
        const { rows } = await c.query('SELECT pg_is_in_recovery() AS standby')
        if (!rows[0].standby) {
          this.current = h
          this.failure = null
          this.onChange?.(name(h), seen.length ? `after ${seen.join('; ')}` : 'first host')
          return h
        }
        seen.push(`${name(h)} in recovery`)
      } catch (e) {
        seen.push(`${name(h)} ${(e as Error).message}`)
      } finally {
        await c.end().catch(() => {})
      }
    }
    this.failure = new Error(`no PostgreSQL host takes writes (${seen.join('; ')})`)
    this.failedUntil = Date.now() + 250
    throw this.failure
  }
}

export interface PoolOptions {
  /** Told when the pool's primary changes (found, or lost). */
  onPrimary?: (primary: string | null, detail: string) => void
}

export function createPool(cfg: PgConfig, applicationName = 'tongban', o: PoolOptions = {}): Db {
  const base = {
    connectionString: cfg.url,
    application_name: applicationName,
    // A hung database must turn into AUDIT_UNAVAILABLE, not into requests that never end.
    connectionTimeoutMillis: Math.min(cfg.queryTimeoutMs, 3000),
    query_timeout: cfg.queryTimeoutMs,
    // The session's synchronous_commit: with a synchronous standby, remote_apply makes every
    // commit (the audit batch above all) wait until the standby has applied it.
    options: `-c search_path=${cfg.schema} -c synchronous_commit=${cfg.synchronousCommit}`,
  }
  const hosts = parseHosts(cfg.hosts)
  const pool =
    hosts.length === 0
      ? new pg.Pool({ ...base, max: cfg.poolSize })
      : new pg.Pool({ ...base, max: cfg.poolSize, Client: failoverClient(new PrimaryFinder(hosts, { ...base, application_name: `${applicationName}-probe` }, o.onPrimary)) })
  // An idle client losing its server must not crash the process; the next query reconnects.
  pool.on('error', () => {})
  return pool
}

/**
 * The auditor's pool: TONGBAN_PG_READ_URL (a standby: reads only), or null when unset. A
 * standby serves what its primary committed with remote_apply before the answer left.
 */
export function createReadPool(cfg: PgConfig, applicationName = 'tongban'): Db | null {
  if (!cfg.readUrl) return null
  const pool = new pg.Pool({
    connectionString: cfg.readUrl,
    max: Math.max(2, Math.ceil(cfg.poolSize / 2)),
    application_name: `${applicationName}-read`,
    connectionTimeoutMillis: Math.min(cfg.queryTimeoutMs, 3000),
    query_timeout: cfg.queryTimeoutMs,
    options: `-c search_path=${cfg.schema} -c default_transaction_read_only=on`,
  })
  pool.on('error', () => {})
  return pool
}

/** A pg.Client that connects to the finder's primary, checks it takes writes, and reports failures. */
function failoverClient(finder: PrimaryFinder): typeof pg.Client {
  return class FailoverClient extends pg.Client {
    connect(): Promise<pg.Client>
    connect(callback: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): void
    connect(callback?: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): Promise<pg.Client> | void {
      const done = this.connectToPrimary().then(() => this as pg.Client)
      if (!callback) return done
      const cb = callback as (err: Error | null, c?: pg.Client) => void
      done.then((c) => cb(null, c), (e: Error) => cb(e))
    }

    private async connectToPrimary(): Promise<void> {
      const h = await finder.find()
      aim(this, h)
      try {
        await super.connect()
        // Found a moment ago, but a promotion may have happened since: ask again, on this connection.
        const { rows } = await super.query('SELECT pg_is_in_recovery() AS standby')
        if (rows[0].standby) throw new Error(`${name(h)} is in recovery (a standby)`)
      } catch (e) {
        finder.lost(h, (e as Error).message)
        await this.end().catch(() => {})
        throw e
      }
      // A connection that breaks later (the primary stopped) sends the next one looking.
      this.on('error', (e: Error) => finder.lost(h, e.message))
    }
  } as unknown as typeof pg.Client
}

/** `fn` in one transaction on one pooled connection: committed when it returns, rolled back when it throws. */
export async function inTransaction<T>(db: Db, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await db.connect()
  try {
    await c.query('BEGIN')
    const out = await fn(c)
    await c.query('COMMIT')
    return out
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {})
    throw e
  } finally {
    c.release()
  }
}
