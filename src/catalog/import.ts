// Loads validated catalogue entries from files into PostgreSQL idempotently: an unchanged
// entry is left alone, a changed one becomes a new version (the old stays readable). Files
// do not override the catalogue admins: a resource whose newest version was written through
// the admin API (or retired) is skipped unless the import is forced.
import type { Db } from '../stores/postgres.js'
import { contentHash } from './repository.js'
import type { CatalogEntry } from './types.js'

export interface ImportResult {
  added: string[]
  updated: string[]
  unchanged: string[]
  /** Managed through the admin API since (or retired): left as they are. */
  skipped: string[]
}

export const IMPORT_ACTOR_PREFIX = 'import:'

export async function importCatalog(db: Db, entries: CatalogEntry[], source: string, opts: { force?: boolean } = {}): Promise<ImportResult> {
  const result: ImportResult = { added: [], updated: [], unchanged: [], skipped: [] }
  const client = await db.connect()
  try {
    await client.query('BEGIN')
    // The admin API takes the same lock: imports and admin writes never interleave.
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('tongban-catalog:' || current_schema()))`)
    for (const entry of entries) {
      const { rows } = await client.query(
        'SELECT version, content_hash, status, created_by FROM catalog_resources WHERE code = $1 ORDER BY version DESC LIMIT 1',
        [entry.code],
      )
      const latest = rows[0]
      if (latest && !opts.force && (latest.status === 'retired' || !latest.created_by.startsWith(IMPORT_ACTOR_PREFIX))) {
        result.skipped.push(entry.code)
        continue
      }
      const version = (latest?.version ?? 0) + 1
      const stored = { ...entry, version }
      const hash = contentHash(stored)
      if (latest?.content_hash === hash && latest.status === 'active') {
        result.unchanged.push(entry.code)
        continue
      }
      await client.query(
        'INSERT INTO catalog_resources (code, version, entry, content_hash, created_by) VALUES ($1, $2, $3, $4, $5)',
        [entry.code, version, stored, hash, IMPORT_ACTOR_PREFIX + source],
      )
      ;(latest ? result.updated : result.added).push(entry.code)
    }
    await client.query('COMMIT')
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {})
    throw e
  } finally {
    client.release()
  }
  return result
}
