// `tongban catalog import <dir>` and `tongban catalog list`: the catalogue in the node's
// database. Import validates every file first and writes nothing if one is invalid.
import { resolve } from 'node:path'
import { loadConfig } from '../config/index.js'
import { createPool } from '../stores/postgres.js'
import { migrate } from '../stores/migrate.js'
import { loadCatalogDir } from '../catalog/files.js'
import { importCatalog } from '../catalog/import.js'
import type { Io } from './io.js'
import { parseCommand } from './args.js'

const IMPORT_HELP = `Usage: tongban catalog import <dir> [--force] [--json]

Validates every *.json entry in <dir> and loads them into this node's database: new codes
are added, changed entries become a new version (the old one stays readable), unchanged
entries are left alone. Nothing is written if any file is invalid. A resource changed or
retired through the admin API since is skipped unless --force.`

const LIST_HELP = `Usage: tongban catalog list [--json]

Lists the newest version of every resource in this node's database.`

const OPTIONS = { json: { type: 'boolean', default: false }, force: { type: 'boolean', default: false } } as const

export async function importCommand(args: string[], io: Io): Promise<number> {
  const parsed = parseCommand(io, 'catalog import', IMPORT_HELP, args, OPTIONS)
  if (typeof parsed === 'number') return parsed
  if (parsed.positionals.length !== 1) return io.err(IMPORT_HELP), 2
  const config = loadConfig()
  const { entries, errors } = await loadCatalogDir(resolve(parsed.positionals[0]), config.files.schemasDir)
  if (errors.length) {
    for (const e of errors) io.err(`${e.file}: ${e.path || '/'}: ${e.reason}`)
    io.err(`tongban catalog import: ${errors.length} error(s); nothing imported`)
    return 1
  }
  await migrate(config.postgres.url, config.postgres.schema)
  const db = createPool(config.postgres, 'tongban-cli')
  try {
    const r = await importCatalog(db, entries, `cli:${process.env.USER ?? 'operator'}`, { force: parsed.values.force })
    if (parsed.values.json) io.out(JSON.stringify(r))
    else {
      io.out(`imported ${entries.length} entries: ${r.added.length} added, ${r.updated.length} updated, ${r.unchanged.length} unchanged, ${r.skipped.length} skipped`)
      if (r.skipped.length) io.out(`skipped (managed through the admin API; --force overrides): ${r.skipped.join(', ')}`)
    }
    return 0
  } finally {
    await db.end()
  }
}

export async function listCommand(args: string[], io: Io): Promise<number> {
  const parsed = parseCommand(io, 'catalog list', LIST_HELP, args, OPTIONS)
  if (typeof parsed === 'number') return parsed
  if (parsed.positionals.length) return io.err(`tongban catalog list: takes no arguments\n\n${LIST_HELP}`), 2
  const config = loadConfig()
  const db = createPool(config.postgres, 'tongban-cli')
  try {
    const { rows } = await db.query(
      `SELECT DISTINCT ON (code) code, version, status, entry->>'name' AS name, entry->'sharing'->>'type' AS sharing
       FROM catalog_resources ORDER BY code, version DESC`,
    )
    if (parsed.values.json) io.out(JSON.stringify(rows))
    else for (const r of rows) io.out(`${r.code}  v${r.version}  ${r.status.padEnd(7)}  ${r.sharing.padEnd(13)}  ${r.name}`)
    return 0
  } finally {
    await db.end()
  }
}
