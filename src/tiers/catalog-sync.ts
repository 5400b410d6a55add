// Catalogue sync (docs/tiers.md). Parent side: a child sends its whole snapshot to
// POST /v1/tiers/catalog/sync. Child side: BullMQ jobs publish the snapshot to the parent
// when the own catalogue changes, when a child's changed, periodically and at start.
import type { FastifyInstance } from 'fastify'
import { Problem } from '../problems/problem.js'
import { certThumbprint } from '../pki/thumbprint.js'
import { CATALOG_TOPIC } from '../catalog/admin-routes.js'
import { peerNodeOf } from './listener.js'
import { buildSnapshot, checkSnapshot } from './remote-catalog.js'
import { createSyncJobs, type SyncJobs } from './sync-jobs.js'
import { backgroundTimeoutMs, type TierLink } from './node-channel.js'
import type { TopologyNode } from './topology.js'
import { bullPrefix } from '../stores/redis.js'

export const REMOTE_CATALOG_TOPIC = 'tiers-catalog'

/** Registers both sides; returns the child's jobs (null: no parent). */
export function registerCatalogSync(app: FastifyInstance, link: TierLink): SyncJobs | null {
  const parent = link.topology.parent
  const jobs = parent ? startSyncJobs(app, link, parent) : null
  registerSyncRoute(app, link, jobs)
  return jobs
}

function peerThumbprint(request: { raw: { socket: unknown } }): string | null {
  const socket = request.raw.socket as { getPeerCertificate(detailed?: boolean): { raw?: Buffer } }
  const raw = socket.getPeerCertificate().raw
  return raw ? certThumbprint(`-----BEGIN CERTIFICATE-----\n${raw.toString('base64')}\n-----END CERTIFICATE-----`) : null
}

function registerSyncRoute(app: FastifyInstance, { topology }: TierLink, jobs: SyncJobs | null): void {
  const { remote } = app.tiers
  app.post('/v1/tiers/catalog/sync', { schema: { hide: true }, bodyLimit: 32 * 1024 * 1024 }, async (request) => {
    const peer = peerNodeOf(request)
    const child = topology.children.find((c) => c.id === peer)
    if (!child) throw new Problem(403, 'NODE_NOT_CHILD', `node ${peer} is not a child of node ${topology.self.id}`)
    const snapshot = checkSnapshot(request.body, child)
    const result = await remote.apply(snapshot, { id: child.id, region: child.region, tier: child.tier, thumbprint: peerThumbprint(request) })
    if (result.changed) {
      await remote.load()
      await app.bus.publish(REMOTE_CATALOG_TOPIC).catch(() => {})
      await jobs?.request(`child ${child.id} changed`)
    }
    request.log.info({ child: child.id, ...result }, 'tiers sync: snapshot from child')
    return { node: topology.self.id, ...result }
  })
}

function startSyncJobs(app: FastifyInstance, { topology, client }: TierLink, parent: TopologyNode): SyncJobs {
  const { config } = app
  const jobs = createSyncJobs({
    redis: config.redis,
    prefix: bullPrefix(config.redis),
    attempts: config.tiers.syncAttempts,
    backoffMs: config.tiers.syncBackoffMs,
    log: app.log,
    publish: async (reason) => {
      const snapshot = await buildSnapshot(app.db, topology.self)
      const res = await client.send(parent, {
        method: 'POST',
        path: '/v1/tiers/catalog/sync',
        body: JSON.stringify(snapshot),
        timeoutMs: backgroundTimeoutMs(app),
        guarded: false,
      })
      if (res.status !== 200) throw new Error(`node ${parent.id} answered ${res.status}: ${res.body.slice(0, 300)}`)
      app.log.info({ parent: parent.id, reason, groups: snapshot.groups.length }, 'tiers sync: published to the parent')
    },
  })
  // Own catalogue changed (admin write on any replica, or a bus reconnect): publish.
  app.bus.subscribe(CATALOG_TOPIC, () => void jobs.request('catalogue changed'))
  const timer = setInterval(() => void jobs.request('periodic'), config.tiers.syncIntervalMs)
  timer.unref()
  app.addHook('onClose', async () => clearInterval(timer))
  return jobs
}
