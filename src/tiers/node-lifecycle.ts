// The node listener's lifecycle and the channel's shutdown. The listener starts once the app
// is ready and closes in preClose, so no node request arrives while the app shuts down; the
// sync jobs close before the client they send on.
import type { FastifyInstance } from 'fastify'
import { startNodeListener, type NodeListener } from './listener.js'
import type { SyncJobs } from './sync-jobs.js'
import type { CheckpointsToParent } from './checkpoints.js'
import type { TierLink } from './node-channel.js'

export interface NodeParts {
  link: TierLink
  sync: SyncJobs | null
  checkpoints: CheckpointsToParent | null
}

/** Adds the hooks; returns the listener's port once ready (null: none configured). */
export function registerNodeLifecycle(app: FastifyInstance, { link, sync, checkpoints }: NodeParts): () => number | null {
  const { config, identity } = app
  let listener: NodeListener | null = null
  app.addHook('onReady', async () => {
    const l = config.tiers.listen
    if (l) {
      listener = await startNodeListener(app, { host: l.host, port: l.port, certPem: identity.certPem, keyPem: identity.keyPem, caPem: identity.caPem })
      app.log.info({ port: listener.port, node: link.topology.self.id }, 'node listener (mTLS) ready')
    }
    await sync?.request('node started')
    await checkpoints?.request('node started')
  })
  app.addHook('preClose', async () => {
    await listener?.close()
  })
  app.addHook('onClose', async () => {
    await sync?.close()
    await link.client.close()
  })
  return () => listener?.port ?? null
}
