// One pg pool per process, pinned to the node's schema (each test run gets its own schema).
import pg from 'pg'
import type { Config } from '../config/index.js'

export type Db = pg.Pool

export function createPool(cfg: Config['postgres'], applicationName = 'tongban'): Db {
  const pool = new pg.Pool({
    connectionString: cfg.url,
    max: cfg.poolSize,
    application_name: applicationName,
    // A hung database must turn into AUDIT_UNAVAILABLE, not into requests that never end.
    connectionTimeoutMillis: Math.min(cfg.queryTimeoutMs, 3000),
    query_timeout: cfg.queryTimeoutMs,
    options: `-c search_path=${cfg.schema}`,
  })
  // An idle client losing its server must not crash the process; the next query reconnects.
  pool.on('error', () => {})
  return pool
}
