// Makes a node ready to start: dev PKI and audit key if missing, database migrated,
// systems registered, catalogue imported. Idempotent; `npm start` and `npm test` run it.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { Config } from '../config/index.js'
import { ensureDevPki } from '../../dev/pki.js'
import { ensureSm2DevPki, sm2Dir } from '../../dev/pki-sm2.js'
import { ensureSealPki } from '../../dev/seal-pki.js'
import { migrate } from '../stores/migrate.js'
import { createPool } from '../stores/postgres.js'
import { readSystemsFile, seedSystems } from '../auth/systems.js'
import { loadCatalogDir } from '../catalog/files.js'
import { importCatalog, type ImportResult } from '../catalog/import.js'
import { checkTopology } from '../tiers/topology.js'

export interface PrepareResult {
  migrations: string[]
  systems: number
  catalog: ImportResult
}

export class CatalogInvalidError extends Error {}

export async function prepare(config: Config, log: (m: string) => void = () => {}): Promise<PrepareResult> {
  checkTopology(config)
  await ensureDevPki({
    dir: config.pki.dir,
    nodeId: config.node.id,
    nodeName: config.node.name,
    systems: readSystemsFile(config.files.systemsFile),
    log,
  })
  if (config.audit.alg === 'SM2-SM3') {
    await ensureSm2DevPki({ dir: sm2Dir(config.pki.dir), nodes: [{ id: config.node.id, name: config.node.name }], systems: readSystemsFile(config.files.systemsFile), log })
  }
  // The seal CA and the licence authorities' seals (SM2): the library signs, the node trusts.
  await ensureSealPki({ dir: config.pki.dir, log })
  ensureAuditKey(config.audit.keyFile, log)

  const migrations = await migrate(config.postgres.url, config.postgres.schema)
  if (migrations.length) log(`database schema ${config.postgres.schema}: applied ${migrations.join(', ')}`)

  const { entries, errors } = await loadCatalogDir(config.files.catalogDir, config.files.schemasDir)
  if (errors.length) {
    throw new CatalogInvalidError(`catalogue ${config.files.catalogDir} is invalid:\n` + errors.map((e) => `  ${e.file}: ${e.path}: ${e.reason}`).join('\n'))
  }
  const db = createPool(config.postgres, 'tongban-prepare')
  try {
    const systems = await seedSystems(db, config.files.systemsFile, config.pki.clientsDir)
    const catalog = await importCatalog(db, entries, 'prepare')
    return { migrations, systems, catalog }
  } finally {
    await db.end()
  }
}

// The audit HMAC key must outlive restarts: subjects are only searchable under the same key.
function ensureAuditKey(file: string, log: (m: string) => void): void {
  if (existsSync(file) && /^[0-9a-f]{64}$/.test(readFileSync(file, 'utf8').trim())) return
  if (existsSync(file)) throw new Error(`${file} is not a 32-byte hex key`)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600 })
  log(`generated the audit HMAC key ${file}`)
}
