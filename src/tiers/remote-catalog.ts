// Catalogue sync, data side. A node publishes to its parent one snapshot: its own entries
// (newest version of each, retired ones included) and everything its own children
// published, grouped by owning node. The parent replaces what it held from that child with
// the snapshot, in one transaction: new and changed entries appear, retired ones turn
// retired, withdrawn ones (no longer sent) disappear. Snapshots are whole and idempotent,
// so a retried or repeated publication changes nothing; an older one than the last applied
// (two replicas racing) is ignored.
import { createHash } from 'node:crypto'
import { requestValidators } from '../validation/ajv.js'
import type { Db } from '../stores/postgres.js'
import { jcs } from '../evidence/jcs.js'
import { Problem } from '../problems/problem.js'
import type { CatalogResource } from '../catalog/repository.js'
import type { CatalogEntry, OperationBinding } from '../catalog/types.js'
import { regionTier, regionWithin, type Tier } from './topology.js'

/** An entry as it travels between nodes: no upstream binding (addresses stay inside the owner). */
export type SharedEntry = Omit<CatalogEntry, 'service'> & {
  version: number
  status: 'active' | 'retired'
  service?: { verifyService?: string; operations: Record<string, OperationBinding> }
}

export interface SnapshotGroup {
  node: string
  region: string
  tier: Tier
  entries: SharedEntry[]
}

export interface Snapshot {
  v: 1
  /** The sending node (the child). */
  node: string
  generatedAt: string
  groups: SnapshotGroup[]
}

export interface RemoteEntry {
  /** The owning node. */
  node: string
  /** The child through which it is reached. */
  via: string
  code: string
  version: number
  status: 'active' | 'retired'
  entry: SharedEntry
  receivedAt: string
}

export function shareable(r: CatalogResource | (CatalogEntry & { version: number; status: 'active' | 'retired' })): SharedEntry {
  const { service, ...rest } = r as CatalogResource
  const out: SharedEntry = { ...rest, version: r.version, status: r.status }
  if (service) out.service = { ...(service.verifyService ? { verifyService: service.verifyService } : {}), operations: service.operations }
  return out
}

export const hashOf = (v: unknown) => createHash('sha256').update(jcs(v)).digest('hex')

const snapshotSchema = {
  type: 'object',
  required: ['v', 'node', 'generatedAt', 'groups'],
  properties: {
    v: { const: 1 },
    node: { type: 'string', pattern: '^[1-9][0-9]{5}$' },
    generatedAt: { type: 'string', format: 'date-time' },
    groups: {
      type: 'array',
      maxItems: 10_000,
      items: {
        type: 'object',
        required: ['node', 'region', 'tier', 'entries'],
        properties: {
          node: { type: 'string', pattern: '^[1-9][0-9]{5}$' },
          region: { type: 'string', pattern: '^[1-9][0-9]{5}$' },
          tier: { enum: ['national', 'province', 'city', 'county'] },
          entries: {
            type: 'array',
            maxItems: 100_000,
            items: {
              type: 'object',
              required: ['code', 'name', 'version', 'status', 'provider', 'sharing', 'items'],
              properties: {
                code: { type: 'string', pattern: '^[0-9]{6}/[0-9]{5}$' },
                name: { type: 'string', minLength: 1, maxLength: 200 },
                version: { type: 'integer', minimum: 1 },
                status: { enum: ['active', 'retired'] },
                provider: { type: 'object', required: ['region'], properties: { region: { type: 'string', pattern: '^[1-9][0-9]{5}$' } } },
                sharing: { type: 'object', required: ['type'], properties: { type: { enum: ['unconditional', 'conditional', 'none'] } } },
                items: { type: 'array' },
              },
            },
          },
        },
      },
    },
  },
}
const validateSnapshot = requestValidators.compile(snapshotSchema)

/** The shape of a snapshot, either way (up from a child, down from the parent). */
export function checkSnapshotShape(body: unknown): Snapshot {
  if (!validateSnapshot(body)) {
    const e = validateSnapshot.errors?.[0]
    throw new Problem(400, 'TIERS_SNAPSHOT_INVALID', `catalogue snapshot: ${e?.instancePath || '/'} ${e?.message ?? 'invalid'}`)
  }
  return body as unknown as Snapshot
}

/** Checks a snapshot a child sent: its shape, and that every group's node lies below the child. */
export function checkSnapshot(body: unknown, child: { id: string; region: string }): Snapshot {
  const s = checkSnapshotShape(body)
  if (s.node !== child.id) throw new Problem(403, 'TIERS_SNAPSHOT_NOT_YOURS', `the snapshot is from node ${s.node}, but the TLS peer is node ${child.id}`)
  if (Number.isNaN(Date.parse(s.generatedAt))) throw new Problem(400, 'TIERS_SNAPSHOT_INVALID', 'generatedAt is not a time')
  const seen = new Set<string>()
  for (const g of s.groups) {
    if (seen.has(g.node)) throw new Problem(400, 'TIERS_SNAPSHOT_INVALID', `node ${g.node} appears twice`)
    seen.add(g.node)
    if (g.node !== g.region || regionTier(g.region) !== g.tier) throw new Problem(400, 'TIERS_SNAPSHOT_INVALID', `group ${g.node}: node id, region and tier disagree`)
    if (!regionWithin(g.region, child.region)) {
      throw new Problem(403, 'TIERS_SNAPSHOT_NOT_YOURS', `node ${child.id} cannot publish for node ${g.node}: it does not lie below it`)
    }
    const codes = new Set<string>()
    for (const e of g.entries) {
      if (codes.has(e.code)) throw new Problem(400, 'TIERS_SNAPSHOT_INVALID', `group ${g.node}: code ${e.code} appears twice`)
      codes.add(e.code)
    }
  }
  return s
}

export class RemoteCatalog {
  private byCode = new Map<string, RemoteEntry[]>()
  private all: RemoteEntry[] = []

  constructor(private readonly db: Db) {}

  async load(): Promise<void> {
    const { rows } = await this.db.query('SELECT node, via, code, version, status, entry, received_at FROM tiers_remote_resources ORDER BY code, node')
    const all: RemoteEntry[] = rows.map((r) => ({
      node: r.node,
      via: r.via,
      code: r.code,
      version: r.version,
      status: r.status,
      entry: r.entry,
      receivedAt: new Date(r.received_at).toISOString(),
    }))
    const byCode = new Map<string, RemoteEntry[]>()
    for (const e of all) byCode.set(e.code, [...(byCode.get(e.code) ?? []), e])
    this.all = all
    this.byCode = byCode
  }

  list(): RemoteEntry[] {
    return this.all
  }

  /** The entry of `code` below this node; with several owners, the one nearest the consumer's region. */
  get(code: string, consumerRegion?: string): RemoteEntry | undefined {
    const list = this.byCode.get(code)
    if (!list?.length) return undefined
    if (!consumerRegion || list.length === 1) return list[0]
    return [...list].sort((a, b) => depth(b.node, consumerRegion) - depth(a.node, consumerRegion))[0]
  }

  /**
   * The entry answering verify/{service} for a consumer of `consumerRegion` below this node:
   * only an owner whose division covers the consumer's (a city's registry serves its city's
   * counties, not the rest of the province). Active before retired; the most specific first.
   */
  forVerifyService(service: string, consumerRegion: string): RemoteEntry | undefined {
    const candidates = this.all.filter((e) => e.entry.service?.verifyService === service && regionWithin(consumerRegion, e.node))
    const rank = (e: RemoteEntry) => (e.status === 'active' ? 10 : 0) + depth(e.node, consumerRegion)
    return candidates.sort((a, b) => rank(b) - rank(a))[0]
  }

  // ---- the parent side of a sync: apply a child's snapshot ----

  /** Applies a snapshot from `child`; true when anything changed (the parent then publishes upward). */
  async apply(s: Snapshot, child: { id: string; region: string; tier: Tier; thumbprint: string | null }): Promise<{ changed: boolean; stale: boolean; entries: number }> {
    const hash = hashOf(s.groups)
    const entries = s.groups.reduce((n, g) => n + g.entries.length, 0)
    const c = await this.db.connect()
    try {
      await c.query('BEGIN')
      await c.query(`SELECT pg_advisory_xact_lock(hashtext('tongban-tiers-sync:' || current_schema() || ':' || $1))`, [child.id])
      const { rows } = await c.query('SELECT snapshot_time, snapshot_hash FROM tiers_nodes WHERE id = $1', [child.id])
      const prev = rows[0]
      if (prev?.snapshot_time && new Date(prev.snapshot_time).getTime() > Date.parse(s.generatedAt)) {
        await c.query('ROLLBACK')
        return { changed: false, stale: true, entries }
      }
      const changed = prev?.snapshot_hash !== hash
      if (changed) {
        const nodes: string[] = []
        const codes: string[] = []
        for (const g of s.groups) {
          for (const e of g.entries) {
            nodes.push(g.node)
            codes.push(e.code)
            await c.query(
              `INSERT INTO tiers_remote_resources (node, code, via, version, status, entry, content_hash)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (node, code) DO UPDATE SET via = $3, version = $4, status = $5, entry = $6, content_hash = $7, received_at = now()
               WHERE tiers_remote_resources.content_hash <> $7 OR tiers_remote_resources.via <> $3`,
              [g.node, e.code, child.id, e.version, e.status, e, hashOf(e)],
            )
          }
        }
        // Withdrawn below: whatever came through this child and is no longer sent.
        await c.query(
          `DELETE FROM tiers_remote_resources r WHERE r.via = $1
             AND NOT EXISTS (SELECT 1 FROM unnest($2::text[], $3::text[]) AS s(node, code) WHERE s.node = r.node AND s.code = r.code)`,
          [child.id, nodes, codes],
        )
        const groupIds = s.groups.map((g) => g.node)
        for (const g of s.groups) {
          if (g.node === child.id) continue
          await c.query(
            `INSERT INTO tiers_nodes (id, region, tier, via, entries) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET region = $2, tier = $3, via = $4, entries = $5, updated_at = now()`,
            [g.node, g.region, g.tier, child.id, g.entries.length],
          )
        }
        await c.query('DELETE FROM tiers_nodes WHERE via = $1 AND id <> $1 AND NOT (id = ANY($2::text[]))', [child.id, groupIds])
      }
      const own = s.groups.find((g) => g.node === child.id)?.entries.length ?? 0
      await c.query(
        `INSERT INTO tiers_nodes (id, region, tier, via, cert_thumbprint, snapshot_time, snapshot_hash, entries)
         VALUES ($1, $2, $3, $1, $4, $5, $6, $7)
         ON CONFLICT (id) DO UPDATE SET region = $2, tier = $3, via = $1, cert_thumbprint = $4, snapshot_time = $5,
           snapshot_hash = $6, entries = $7, updated_at = now()`,
        [child.id, child.region, child.tier, child.thumbprint, s.generatedAt, hash, own],
      )
      await c.query('COMMIT')
      return { changed, stale: false, entries }
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {})
      throw e
    } finally {
      c.release()
    }
  }

  async nodes(): Promise<Array<{ id: string; region: string; tier: string; via: string; entries: number; snapshotTime: string | null; updatedAt: string }>> {
    const { rows } = await this.db.query('SELECT id, region, tier, via, entries, snapshot_time, updated_at FROM tiers_nodes ORDER BY id')
    return rows.map((r) => ({
      id: r.id,
      region: r.region,
      tier: r.tier,
      via: r.via,
      entries: r.entries,
      snapshotTime: r.snapshot_time ? new Date(r.snapshot_time).toISOString() : null,
      updatedAt: new Date(r.updated_at).toISOString(),
    }))
  }
}

/** The snapshot this node publishes to its parent, read fresh from PostgreSQL (not a replica's cache). */
export async function buildSnapshot(db: Db, self: { id: string; region: string; tier: Tier }): Promise<Snapshot> {
  const [own, remote, nodes] = await Promise.all([
    db.query('SELECT DISTINCT ON (code) entry, version, status FROM catalog_resources ORDER BY code, version DESC'),
    db.query('SELECT node, entry FROM tiers_remote_resources ORDER BY node, code'),
    db.query('SELECT id, region, tier FROM tiers_nodes'),
  ])
  const groups = new Map<string, SnapshotGroup>()
  groups.set(self.id, {
    node: self.id,
    region: self.region,
    tier: self.tier,
    entries: own.rows.map((r) => shareable({ ...r.entry, version: r.version, status: r.status })),
  })
  const known = new Map(nodes.rows.map((n) => [n.id, n]))
  for (const r of remote.rows) {
    let g = groups.get(r.node)
    if (!g) {
      const n = known.get(r.node)
      g = { node: r.node, region: n?.region ?? r.node, tier: (n?.tier as Tier) ?? regionTier(r.node), entries: [] }
      groups.set(r.node, g)
    }
    g.entries.push(r.entry)
  }
  return { v: 1, node: self.id, generatedAt: new Date().toISOString(), groups: [...groups.values()] }
}

// 3 = same division, 2 = same city, 1 = same province, 0 = elsewhere.
function depth(node: string, consumer: string): number {
  if (node === consumer) return 3
  if (regionTier(node) === 'city' && regionWithin(consumer, node)) return 2
  if (regionTier(node) === 'province' && regionWithin(consumer, node)) return 1
  return 0
}
