// Ordered SQL migrations under src/stores/migrations, applied once each, under an advisory
// lock so that replicas starting together do not race.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pg from 'pg'

const dir = join(dirname(fileURLToPath(import.meta.url)), 'migrations')

export async function migrate(url: string, schema: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  const applied: string[] = []
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`tongban-migrate:${schema}`])
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
    await client.query(`SET search_path = ${schema}`)
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`)
    const done = new Set((await client.query('SELECT name FROM schema_migrations')).rows.map((r) => r.name))
    for (const name of readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()) {
      if (done.has(name)) continue
      await client.query('BEGIN')
      try {
        await client.query(readFileSync(join(dir, name), 'utf8'))
        await client.query('INSERT INTO schema_migrations (name) VALUES ($1)', [name])
        await client.query('COMMIT')
        applied.push(name)
      } catch (e) {
        await client.query('ROLLBACK')
        throw new Error(`migration ${name} failed: ${(e as Error).message}`)
      }
    }
    // Monthly audit partitions a little ahead of time; the default partition catches the rest.
    await client.query('SELECT ensure_audit_partitions(now(), 3)')
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`tongban-migrate:${schema}`]).catch(() => {})
    await client.end()
  }
  return applied
}
