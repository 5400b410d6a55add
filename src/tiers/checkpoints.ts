// Checkpoints, both sides' wiring. Parent: the routes children push to (checkpoint-parent.ts).
// Child: push jobs to the parent (checkpoint-push.ts), periodic and on request, and the
// last push at shutdown, after the sealer has flushed.
import type { FastifyInstance } from 'fastify'
import type { Anchor } from '../evidence/evidence.js'
import { NodeClient } from './node-client.js'
import { createCheckpointJobs, fetchParentHeads, pushCheckpoints } from './checkpoint-push.js'
import { registerCheckpointRoutes } from './checkpoint-parent.js'
import { backgroundTimeoutMs, type TierLink } from './node-channel.js'
import type { TopologyNode } from './topology.js'
import { bullPrefix } from '../stores/redis.js'

/** The child side, as app.tiers offers it. */
export interface CheckpointsToParent {
  request(reason: string): Promise<void>
  parentHeads(): Promise<{ parent: string; heads: Anchor[] }>
}

/** Registers both sides; returns the child side (null: no parent). */
export function registerCheckpoints(app: FastifyInstance, { topology }: TierLink): CheckpointsToParent | null {
  if (topology.children.length) registerCheckpointRoutes(app, topology)
  const parent = topology.parent
  return parent ? startCheckpointPush(app, parent, topology.self.id) : null
}

function startCheckpointPush(app: FastifyInstance, parent: TopologyNode, self: string): CheckpointsToParent {
  const { config, identity } = app
  // A client of their own: background traffic never takes a query's connection to the parent.
  const client = new NodeClient({
    certPem: identity.certPem, keyPem: identity.keyPem, caPem: identity.caPem,
    timeoutMs: backgroundTimeoutMs(app), maxConcurrentPerHop: 2, breaker: config.tiers.breaker,
  })
  const push = (reason: string, timeoutMs = backgroundTimeoutMs(app)) => pushCheckpoints({
    db: app.db, client, parent, self, own: { kid: identity.signing.kid, certPem: identity.signing.certPem },
    batch: config.checkpointPush.batch, timeoutMs, log: app.log,
  }, reason)
  const jobs = createCheckpointJobs({ redis: config.redis, prefix: bullPrefix(config.redis), backoffMs: config.tiers.syncBackoffMs, log: app.log, push })
  const timer = setInterval(() => void jobs.request('periodic'), config.checkpointPush.intervalMs)
  timer.unref()
  app.addHook('onClose', async () => {
    clearInterval(timer)
    // The last batches sealed before shutdown go up now, not after the restart.
    await app.sealer.flush().catch(() => {})
    await jobs.final(() => push('shutdown', 3000))
    await jobs.close()
    await client.close()
  })
  return {
    request: (reason) => jobs.request(reason),
    parentHeads: async () => ({ parent: parent.id, heads: await fetchParentHeads(client, parent, self, backgroundTimeoutMs(app)) }),
  }
}
