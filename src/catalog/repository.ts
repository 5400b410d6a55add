// The catalogue as the request path sees it: the newest version of every resource, held in
// memory (one lookup per query, no database round trip) and reloaded on change. Writes
// (catalogue administration) go to PostgreSQL, where every version is kept; a write adds
// a row, never changes one.
import { claimDepartmentName } from '../onboarding/departments.js'
import { createHash } from 'node:crypto'
import type { PoolClient } from 'pg'
import type { Db } from '../stores/postgres.js'
import { jcs } from '../evidence/jcs.js'
import { Problem } from '../problems/problem.js'
import type { CatalogEntry, VerifyService } from './types.js'
import type { CatalogElsewhere } from './elsewhere.js'

export type ResourceStatus = 'active' | 'retired'

export interface CatalogResource extends CatalogEntry {
  version: number
  status: ResourceStatus
}

/** One stored version, as the version history lists it. */
export interface CatalogVersionInfo {
  version: number
  status: ResourceStatus
  createdAt: string
  createdBy: string
  contentHash: string
}

/** The version the caller last saw (`If-Match`); undefined means no precondition. */
export type VersionPrecondition = { any: true } | { versions: number[] } | undefined

/** Content hash of an entry, its version aside (the same rule as the file import). */
export const contentHash = (e: CatalogEntry): string => {
  const { version: _v, ...content } = e
  return createHash('sha256').update(jcs(content)).digest('hex')
}

const UNIQUE_VIOLATION = '23505'
const WRITE_ATTEMPTS = 3

export class CatalogRepository {
  private byCode = new Map<string, CatalogResource>()
  private byService = new Map<string, CatalogResource[]>()
  private loading?: Promise<void>
  private queued?: Promise<void>

  constructor(private readonly db: Db) {}

  async load(): Promise<void> {
    const { rows } = await this.db.query(
      `SELECT DISTINCT ON (code) entry, version, status FROM catalog_resources ORDER BY code, version DESC`,
    )
    const byCode = new Map<string, CatalogResource>()
    const byService = new Map<string, CatalogResource[]>()
    for (const r of rows) {
      const res: CatalogResource = { ...r.entry, version: r.version, status: r.status }
      byCode.set(res.code, res)
      // Retired resources stay bound, so that verify/{service} answers RESOURCE_RETIRED
      // rather than "not found" when nothing active is left for the service.
      const svc = res.service?.verifyService
      if (svc) byService.set(svc, [...(byService.get(svc) ?? []), res])
    }
    this.byCode = byCode
    this.byService = byService
  }

  /**
   * Reloads, coalescing bursts: at most one load runs and at most one waits. Every caller's
   * promise settles after a load that started after the call, so it sees what was
   * committed before it asked.
   */
  reload(): Promise<void> {
    if (!this.loading) {
      this.loading = this.load().finally(() => {
        this.loading = undefined
      })
      return this.loading
    }
    this.queued ??= this.loading
      .catch(() => {})
      .then(() => {
        this.queued = undefined
        return this.reload()
      })
    return this.queued
  }

  get(code: string): CatalogResource | undefined {
    return this.byCode.get(code)
  }

  /** Resources held by other nodes (attached by the tiers step; null on a stand-alone node). */
  elsewhere: CatalogElsewhere | null = null

  list(): CatalogResource[] {
    return [...this.byCode.values()]
  }

  /**
   * The resource answering `verify/{service}` for a caller: the one whose provider region is
   * the most specific ancestor of (or equal to) the caller's region — a city registry
   * before the provincial one, the provincial one before the national one. Active
   * resources first; a retired one only when no active one is left (it answers 410).
   */
  forVerifyService(service: VerifyService, callerRegion: string): CatalogResource | undefined {
    const candidates = this.byService.get(service)
    if (!candidates) return undefined
    return bestFor(candidates.filter((c) => c.status === 'active'), callerRegion) ?? bestFor(candidates, callerRegion)
  }

  verifyServices(): string[] {
    return [...this.byService.keys()]
  }

  // ---- administration: every version kept, PostgreSQL the arbiter of concurrent writers ----

  /** Every stored version of a resource, oldest first; [] when the code is unknown. */
  async versions(code: string): Promise<CatalogVersionInfo[]> {
    const { rows } = await this.db.query(
      `SELECT version, status, created_at, created_by, content_hash FROM catalog_resources WHERE code = $1 ORDER BY version`,
      [code],
    )
    return rows.map((r) => ({
      version: r.version,
      status: r.status,
      createdAt: new Date(r.created_at).toISOString(),
      createdBy: r.created_by,
      contentHash: r.content_hash,
    }))
  }

  /** One stored version, as it was. */
  async version(code: string, version: number): Promise<CatalogResource | undefined> {
    const { rows } = await this.db.query(
      `SELECT entry, version, status FROM catalog_resources WHERE code = $1 AND version = $2`,
      [code, version],
    )
    return rows[0] ? { ...rows[0].entry, version: rows[0].version, status: rows[0].status } : undefined
  }

  /** Registers a new resource as version 1. 409 CATALOG_CODE_EXISTS if the code was ever used. */
  async create(entry: CatalogEntry, actor: string): Promise<CatalogResource> {
    return this.write(entry.code, async (client, latest) => {
      if (latest) {
        throw new Problem(409, 'CATALOG_CODE_EXISTS', `resource ${entry.code} already exists (version ${latest.version}, ${latest.status}); update it with PUT`)
      }
      await assertVerifyServiceFree(client, entry)
      await claimDepartmentName(client, entry.provider.code, entry.provider.name, '/provider/name')
      return insert(client, entry, 1, 'active', actor)
    })
  }

  /**
   * Stores `entry` as the next version. An entry equal to the newest one is left alone
   * (answered as it is, like the file import). A retired resource is not updated.
   */
  async update(entry: CatalogEntry, actor: string, expected: VersionPrecondition): Promise<{ resource: CatalogResource; changed: boolean }> {
    return this.write(entry.code, async (client, latest) => {
      const current = checkCurrent(entry.code, latest, expected)
      if (current.status === 'retired') {
        throw new Problem(409, 'CATALOG_ALREADY_RETIRED', `resource ${entry.code} was retired in version ${current.version}; a retired resource is not updated`)
      }
      if (current.contentHash === contentHash(entry)) return { resource: current.resource, changed: false }
      await assertVerifyServiceFree(client, entry)
      await claimDepartmentName(client, entry.provider.code, entry.provider.name, '/provider/name')
      return { resource: await insert(client, entry, current.version + 1, 'active', actor), changed: true }
    })
  }

  /** Retires a resource: a new version, entry unchanged, status retired. */
  async retire(code: string, actor: string, expected: VersionPrecondition): Promise<CatalogResource> {
    return this.write(code, async (client, latest) => {
      const current = checkCurrent(code, latest, expected)
      if (current.status === 'retired') {
        throw new Problem(409, 'CATALOG_ALREADY_RETIRED', `resource ${code} was already retired in version ${current.version}`)
      }
      return insert(client, current.resource, current.version + 1, 'retired', actor)
    })
  }

  /**
   * One catalogue write in one transaction. Writers of this node's catalogue are serialised
   * by a transaction-scoped advisory lock (a catalogue write is rare; checks across
   * resources, such as a verify service bound once, need the whole catalogue still). The
   * primary key (code, version) stays the final arbiter: a writer that bypasses the lock
   * (the file import) makes a racing insert fail with a unique violation, and the write is
   * tried again on the new state.
   */
  private async write<T>(code: string, fn: (client: PoolClient, latest: Latest | undefined) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.db.connect()
      try {
        await client.query('BEGIN')
        await client.query(`SELECT pg_advisory_xact_lock(hashtext('tongban-catalog:' || current_schema()))`)
        const { rows } = await client.query(
          `SELECT entry, version, status, content_hash FROM catalog_resources WHERE code = $1 ORDER BY version DESC LIMIT 1`,
          [code],
        )
        const latest = rows[0]
          ? {
              version: rows[0].version as number,
              status: rows[0].status as ResourceStatus,
              contentHash: rows[0].content_hash as string,
              resource: { ...rows[0].entry, version: rows[0].version, status: rows[0].status } as CatalogResource,
            }
          : undefined
        const result = await fn(client, latest)
        await client.query('COMMIT')
        return result
      } catch (e) {
        await client.query('ROLLBACK').catch(() => {})
        if ((e as { code?: string }).code === UNIQUE_VIOLATION && attempt < WRITE_ATTEMPTS) continue
        if ((e as { code?: string }).code === UNIQUE_VIOLATION) {
          throw new Problem(409, 'CATALOG_WRITE_CONFLICT', `resource ${code} is being changed by another writer; try again`)
        }
        throw e
      } finally {
        client.release()
      }
    }
  }
}

interface Latest {
  version: number
  status: ResourceStatus
  contentHash: string
  resource: CatalogResource
}

function checkCurrent(code: string, latest: Latest | undefined, expected: VersionPrecondition): Latest {
  if (!latest) throw new Problem(404, 'RESOURCE_NOT_FOUND', `no resource ${code} in the catalogue`)
  if (expected && !('any' in expected) && !expected.versions.includes(latest.version)) {
    throw new Problem(412, 'CATALOG_VERSION_CONFLICT', `resource ${code} is at version ${latest.version}, not the version named in If-Match (${expected.versions.join(', ')}); reload it and try again`, { title: 'Precondition Failed' })
  }
  return latest
}

// The file loader's rule, for entries registered through the API: one resource of the
// catalogue (retired ones aside) answers a verify service per provider region (a city's own
// registry may answer it next to the provincial one; forVerifyService picks the nearest).
async function assertVerifyServiceFree(client: PoolClient, entry: CatalogEntry): Promise<void> {
  const service = entry.service?.verifyService
  if (!service) return
  const { rows } = await client.query(
    `SELECT code FROM (
       SELECT DISTINCT ON (code) code, status, entry FROM catalog_resources ORDER BY code, version DESC
     ) latest
     WHERE status = 'active' AND code <> $1 AND entry->'service'->>'verifyService' = $2
       AND entry->'provider'->>'region' = $3
     LIMIT 1`,
    [entry.code, service, entry.provider.region],
  )
  if (rows[0]) {
    throw new Problem(409, 'CATALOG_VERIFY_SERVICE_BOUND', `verify service "${service}" is already answered by resource ${rows[0].code} for provider region ${entry.provider.region}`, {
      errors: [{ pointer: '/service/verifyService', detail: `"${service}" is already bound by ${rows[0].code} for provider region ${entry.provider.region}` }],
    })
  }
}

async function insert(client: PoolClient, entry: CatalogEntry, version: number, status: ResourceStatus, actor: string): Promise<CatalogResource> {
  const { status: _s, ...content } = entry as CatalogEntry & { status?: unknown }
  const stored: CatalogEntry = { ...content, version }
  await client.query(
    'INSERT INTO catalog_resources (code, version, entry, content_hash, status, created_by) VALUES ($1, $2, $3, $4, $5, $6)',
    [entry.code, version, stored, contentHash(stored), status, actor],
  )
  return { ...stored, version, status }
}

function bestFor(candidates: CatalogResource[], callerRegion: string): CatalogResource | undefined {
  let best: CatalogResource | undefined
  let bestDepth = -1
  for (const c of candidates) {
    const depth = regionDepthCovering(c.provider.region, callerRegion)
    if (depth > bestDepth) {
      best = c
      bestDepth = depth
    }
  }
  return best
}

// 3 = same county, 2 = same city, 1 = same province, 0 = national/other (still usable).
function regionDepthCovering(provider: string, caller: string): number {
  if (provider === caller) return 3
  if (provider.endsWith('0000')) return provider.slice(0, 2) === caller.slice(0, 2) ? 1 : 0
  if (provider.endsWith('00')) return provider.slice(0, 4) === caller.slice(0, 4) ? 2 : 0
  return 0
}
