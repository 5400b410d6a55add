// The catalogue flowing DOWN the tiers (docs/tiers.md §5). A parent sends each child one
// snapshot: its own active resources and every active resource it knows from elsewhere —
// published by its other children, or sent down by its own parent — grouped by the node
// that holds each. The child keeps them apart from its own catalogue
// (tiers_upstream_resources), replacing them whole with every snapshot, so a resource
// withdrawn or retired upstairs disappears below; it sends the same down to its children.
//
// Queue side: a `catalog.down` job per child on the `tiers-down` queue (src/queues/factory.ts)
// when the own catalogue changes, a child's snapshot changed, the parent's changed, at start
// and periodically; failures retry with exponential backoff. The snapshot is read when the
// job runs, and the child ignores duplicates, so piled-up jobs send the newest state once.
import type { FastifyInstance } from 'fastify'
import type { Db } from '../stores/postgres.js'
import { Problem } from '../problems/problem.js'
import { CATALOG_TOPIC } from '../catalog/admin-routes.js'
import { schemasOnly, type CatalogElsewhere, type ElsewhereEntry } from '../catalog/elsewhere.js'
import { createQueuePair } from '../queues/factory.js'
import { peerNodeOf } from './listener.js'
import { REMOTE_CATALOG_TOPIC } from './catalog-sync.js'
import { checkSnapshotShape, hashOf, shareable, type RemoteCatalog, type SharedEntry, type Snapshot, type SnapshotGroup } from './remote-catalog.js'
import { backgroundTimeoutMs, type TierLink } from './node-channel.js'
import { regionTier, regionWithin, type Tier, type TopologyNode } from './topology.js'
import { bullPrefix } from '../stores/redis.js'

export const DOWN_PATH = '/v1/tiers/catalog/down'
export const UPSTREAM_CATALOG_TOPIC = 'tiers-catalog-down'
export const DOWN_QUEUE = 'tiers-down'
export const JOB_DOWN = 'catalog.down'

export interface UpstreamEntry {
  node: string
  region: string
  tier: Tier
  code: string
  version: number
  entry: SharedEntry
  receivedAt: string
}

/** What the parent sent down, in memory (reloaded on every replica when it changes). */
export class UpstreamCatalog {
  private all: UpstreamEntry[] = []
  private byCode = new Map<string, UpstreamEntry[]>()

  constructor(private readonly db: Db) {}

  async load(): Promise<void> {
    const { rows } = await this.db.query('SELECT node, region, tier, code, version, entry, received_at FROM tiers_upstream_resources ORDER BY code, node')
    const all: UpstreamEntry[] = rows.map((r) => ({ node: r.node, region: r.region, tier: r.tier, code: r.code, version: r.version, entry: r.entry, receivedAt: new Date(r.received_at).toISOString() }))
    const byCode = new Map<string, UpstreamEntry[]>()
    for (const e of all) byCode.set(e.code, [...(byCode.get(e.code) ?? []), e])
    this.all = all
    this.byCode = byCode
  }

  list(): UpstreamEntry[] {
    return this.all
  }

  /** With several holders, the one whose division covers the caller's most closely. */
  get(code: string, callerRegion?: string): UpstreamEntry | undefined {
    const list = this.byCode.get(code)
    if (!list?.length) return undefined
    const rank = (e: UpstreamEntry) => (callerRegion && regionWithin(callerRegion, e.region) ? 1 + TIER_DEPTH.indexOf(e.tier) : 0)
    return [...list].sort((a, b) => rank(b) - rank(a))[0]
  }

  /** Replaces everything with the parent's snapshot; changed: false for a duplicate or an older one. */
  async apply(s: Snapshot, parent: string): Promise<{ changed: boolean; entries: number }> {
    const hash = hashOf(s.groups)
    const entries = s.groups.reduce((n, g) => n + g.entries.length, 0)
    const c = await this.db.connect()
    try {
      await c.query('BEGIN')
      await c.query(`SELECT pg_advisory_xact_lock(hashtext('tongban-tiers-down:' || current_schema()))`)
      const { rows } = await c.query('SELECT snapshot_time, snapshot_hash FROM tiers_upstream_state WHERE parent = $1', [parent])
      const prev = rows[0]
      if (prev && (prev.snapshot_hash === hash || new Date(prev.snapshot_time).getTime() > Date.parse(s.generatedAt))) {
        await c.query('ROLLBACK')
        return { changed: false, entries }
      }
      await c.query('DELETE FROM tiers_upstream_resources')
      for (const g of s.groups) {
        for (const e of g.entries) {
          await c.query(
            'INSERT INTO tiers_upstream_resources (node, code, region, tier, version, entry) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (node, code) DO NOTHING',
            [g.node, e.code, g.region, g.tier, e.version, e],
          )
        }
      }
      await c.query('DELETE FROM tiers_upstream_state')
      await c.query('INSERT INTO tiers_upstream_state (parent, snapshot_time, snapshot_hash) VALUES ($1, $2, $3)', [parent, s.generatedAt, hash])
      await c.query('COMMIT')
      return { changed: true, entries }
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {})
      throw e
    } finally {
      c.release()
    }
  }
}

const TIER_DEPTH: Tier[] = ['national', 'province', 'city', 'county']

/**
 * What this node sends `child`: its own active resources, the active ones its other
 * children published, and what its parent sent down — never what came from the child itself.
 */
export async function buildDownSnapshot(db: Db, self: { id: string; region: string; tier: Tier }, child: { id: string }): Promise<Snapshot> {
  const [own, below, above] = await Promise.all([
    db.query("SELECT DISTINCT ON (code) entry, version, status FROM catalog_resources ORDER BY code, version DESC"),
    db.query("SELECT r.node, r.entry, n.region, n.tier FROM tiers_remote_resources r LEFT JOIN tiers_nodes n ON n.id = r.node WHERE r.via <> $1 AND r.status = 'active' ORDER BY r.node, r.code", [child.id]),
    db.query('SELECT node, region, tier, entry FROM tiers_upstream_resources ORDER BY node, code'),
  ])
  const groups = new Map<string, SnapshotGroup>()
  groups.set(self.id, {
    node: self.id,
    region: self.region,
    tier: self.tier,
    entries: own.rows.filter((r) => r.status === 'active').map((r) => shareable({ ...r.entry, version: r.version, status: r.status })),
  })
  for (const r of [...below.rows, ...above.rows]) {
    if (r.node === self.id) continue
    let g = groups.get(r.node)
    if (!g) groups.set(r.node, (g = { node: r.node, region: r.region ?? r.node, tier: r.tier ?? regionTier(r.node), entries: [] }))
    if (!g.entries.some((e) => e.code === r.entry.code)) g.entries.push(r.entry)
  }
  return { v: 1, node: self.id, generatedAt: new Date().toISOString(), groups: [...groups.values()] }
}

/** What the catalogue routes show of resources held elsewhere: below (published up to here) and above or beside (sent down). */
export function elsewhereOf(remote: RemoteCatalog, upstream: UpstreamCatalog): CatalogElsewhere {
  const fromBelow = (e: ReturnType<RemoteCatalog['list']>[number]): ElsewhereEntry => ({
    heldBy: { node: e.node, region: e.node, tier: regionTier(e.node) },
    resource: { ...schemasOnly(e.entry), code: e.code, status: e.status },
  })
  const fromAbove = (e: UpstreamEntry): ElsewhereEntry => ({
    heldBy: { node: e.node, region: e.region, tier: e.tier },
    resource: { ...schemasOnly(e.entry), code: e.code, status: 'active' },
  })
  return {
    list: () => {
      const below = remote.list().map(fromBelow)
      const seen = new Set(below.map((e) => `${e.heldBy.node}|${e.resource.code}`))
      return [...below, ...upstream.list().filter((e) => !seen.has(`${e.node}|${e.code}`)).map(fromAbove)]
    },
    get: (code, callerRegion) => {
      const b = remote.get(code, callerRegion)
      if (b) return fromBelow(b)
      const a = upstream.get(code, callerRegion)
      return a ? fromAbove(a) : undefined
    },
  }
}

/** Registers both sides: the route a child receives on, and (with children) the jobs sending down. */
export function registerCatalogDown(app: FastifyInstance, link: TierLink, upstream: UpstreamCatalog): { close(): Promise<void> } | null {
  const { topology } = link
  if (topology.parent) registerDownRoute(app, link, upstream)
  return topology.children.length ? startDownJobs(app, link) : null
}

function registerDownRoute(app: FastifyInstance, { topology }: TierLink, upstream: UpstreamCatalog): void {
  app.post(DOWN_PATH, { schema: { hide: true }, bodyLimit: 32 * 1024 * 1024 }, async (request) => {
    const peer = peerNodeOf(request)
    if (peer !== topology.parent?.id) throw new Problem(403, 'NODE_NOT_PARENT', `node ${peer} is not the parent of node ${topology.self.id}`)
    const snapshot = checkSnapshotShape(request.body)
    if (snapshot.node !== peer) throw new Problem(403, 'TIERS_SNAPSHOT_NOT_YOURS', `the snapshot is from node ${snapshot.node}, but the TLS peer is node ${peer}`)
    const result = await upstream.apply(snapshot, peer)
    if (result.changed) {
      await upstream.load()
      await app.bus.publish(UPSTREAM_CATALOG_TOPIC).catch(() => {})
    }
    request.log.info({ parent: peer, ...result }, 'tiers sync: catalogue from the parent')
    return { node: topology.self.id, ...result }
  })
}

function startDownJobs(app: FastifyInstance, { topology, client }: TierLink): { close(): Promise<void> } {
  const { config } = app
  const pair = createQueuePair<{ child: string; reason?: string }, void, string>({
    name: DOWN_QUEUE,
    redis: config.redis,
    prefix: bullPrefix(config.redis),
    clientName: 'tiers-down',
    label: 'tiers sync down',
    log: app.log,
    processor: async (job) => {
      if (job.name !== JOB_DOWN) return
      const child = topology.children.find((c) => c.id === job.data.child)
      if (child) await sendDown(app, client, topology.self, child)
    },
    concurrency: 1,
    defaultJobOptions: {
      attempts: config.tiers.syncAttempts,
      backoff: { type: 'exponential', delay: config.tiers.syncBackoffMs },
      removeOnComplete: { count: 100 },
      removeOnFail: { count: 1000 },
    },
    closeTimeoutMs: 5000,
  })
  pair.worker.on('failed', (job, err) => {
    if (!job) return
    const final = job.attemptsMade >= (job.opts.attempts ?? 1)
    app.log[final ? 'error' : 'warn']({ err: { message: err.message }, job: { id: job.id, child: job.data.child, attemptsMade: job.attemptsMade } }, final ? 'tiers sync down: failed for good' : 'tiers sync down: failed, will retry')
  })
  const request = async (reason: string) => {
    for (const c of topology.children) {
      await pair.add(JOB_DOWN, { child: c.id, reason }).catch((err) => app.log.warn({ err: { message: (err as Error).message }, reason }, 'tiers sync down: could not queue'))
    }
  }
  // What a child sees changed: the own catalogue, a child's snapshot (REMOTE_CATALOG_TOPIC,
  // published by catalog-sync.ts), what the parent sent.
  for (const topic of [CATALOG_TOPIC, REMOTE_CATALOG_TOPIC, UPSTREAM_CATALOG_TOPIC]) app.bus.subscribe(topic, () => void request(`${topic} changed`))
  const timer = setInterval(() => void request('periodic'), config.tiers.syncIntervalMs)
  timer.unref()
  app.addHook('onReady', async () => request('node started'))
  const close = async () => {
    clearInterval(timer)
    await pair.close()
  }
  app.addHook('onClose', close)
  return { close }
}

async function sendDown(app: FastifyInstance, client: TierLink['client'], self: { id: string; region: string; tier: Tier }, child: TopologyNode): Promise<void> {
  const snapshot = await buildDownSnapshot(app.db, self, child)
  const res = await client.send(child, { method: 'POST', path: DOWN_PATH, body: JSON.stringify(snapshot), timeoutMs: backgroundTimeoutMs(app), guarded: false })
  if (res.status !== 200) throw new Error(`node ${child.id} answered ${res.status}: ${res.body.slice(0, 300)}`)
}
