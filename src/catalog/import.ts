// Loads validated catalogue entries into PostgreSQL idempotently: an unchanged entry is
// left alone, a changed one becomes a new version (the old stays readable).
import { createHash } from 'node:crypto'
import type { Db } from '../stores/postgres.js'
import { jcs } from '../audit/jcs.js'
import type { CatalogEntry } from './types.js'

export interface ImportResult {
  added: string[]
  updated: string[]
  unchanged: string[]
}

const hashOf = (e: CatalogEntry) => {
  const { version: _v, ...content } = e
  return createHash('sha256').update(jcs(content)).digest('hex')
}

export async function importCatalog(db: Db, entries: CatalogEntry[], actor: string): Promise<ImportResult> {
  const result: ImportResult = { added: [], updated: [], unchanged: [] }
  const client = await db.connect()
  try {
    await client.query('BEGIN')
    for (const entry of entries) {
      const hash = hashOf(entry)
      const { rows } = await client.query(
        'SELECT version, content_hash FROM catalog_resources WHERE code = $1 ORDER BY version DESC LIMIT 1 FOR UPDATE',
        [entry.code],
      )
      if (rows[0]?.content_hash === hash) {
        result.unchanged.push(entry.code)
        continue
      }
      const version = (rows[0]?.version ?? 0) + 1
      await client.query(
        'INSERT INTO catalog_resources (code, version, entry, content_hash, created_by) VALUES ($1, $2, $3, $4, $5)',
        [entry.code, version, { ...entry, version }, hash, actor],
      )
      ;(rows[0] ? result.updated : result.added).push(entry.code)
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
