// Four tiers (docs/tiers.md): topology, the node listener (mTLS), the relay of queries and
// applications for resources owned elsewhere, catalogue sync to the parent and down to the
// children (catalog-down.ts).
//
// Registered after the catalogue and before the policy and exchange plugins, which it
// serves: `app.tiers.router` is the query engine's route step (src/exchange/query.ts asks it
// where a target this node does not hold goes), `app.tiers.link` the node channel the
// application messages of src/policy travel on. A node without a parent and children (the
// one-node default) registers the read-only routes only, and both are null.
//
// This file only composes; each part is registered in the order its hooks must run.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Anchor } from '../evidence/evidence.js'
import { RemoteCatalog } from './remote-catalog.js'
import { Topology } from './topology.js'
import type { Relay } from './relay.js'
import type { SyncJobs } from './sync-jobs.js'
import { openNodeChannel, type TierLink } from './node-channel.js'
import { registerReadRoutes } from './routes/read.js'
import { registerRelayRoutes } from './routes/relay.js'
import { REMOTE_CATALOG_TOPIC, registerCatalogSync } from './catalog-sync.js'
import { registerCheckpoints, type CheckpointsToParent } from './checkpoints.js'
import { registerNodeLifecycle } from './node-lifecycle.js'
import { UPSTREAM_CATALOG_TOPIC, UpstreamCatalog, elsewhereOf, registerCatalogDown } from './catalog-down.js'

export { REMOTE_CATALOG_TOPIC, type TierLink }

export interface Tiers {
  topology: Topology
  remote: RemoteCatalog
  /** The route step of the query engine (null: a stand-alone node, everything is local). */
  readonly router: Relay | null
  /** The node channel, for application messages (null: a stand-alone node). */
  readonly link: TierLink | null
  /** The port of the node listener once the app is ready (null: no listener). */
  nodePort(): number | null
  /** Queue a catalogue publication to the parent now (tests, operators). */
  publish(reason?: string): Promise<void>
  /** Queue a push of this node's checkpoints to the parent now (checkpoint-push.ts). */
  pushCheckpoints(reason?: string): Promise<void>
  /** The checkpoint heads the parent holds for this node; null without a parent. */
  parentHeads(): Promise<{ parent: string; heads: Anchor[] } | null>
}

declare module 'fastify' {
  interface FastifyInstance {
    tiers: Tiers
  }
}

/** The parts of a node in a tree, filled in once registered (all null on a stand-alone node). */
interface Parts {
  link: TierLink | null
  sync: SyncJobs | null
  checkpoints: CheckpointsToParent | null
  nodePort: (() => number | null) | null
}

function facade(topology: Topology, remote: RemoteCatalog, parts: Parts): Tiers {
  return {
    topology,
    remote,
    get router() {
      return parts.link?.relay ?? null
    },
    get link() {
      return parts.link
    },
    nodePort: () => parts.nodePort?.() ?? null,
    publish: async (reason = 'requested') => {
      await parts.sync?.request(reason)
    },
    pushCheckpoints: async (reason = 'requested') => {
      await parts.checkpoints?.request(reason)
    },
    parentHeads: async () => (parts.checkpoints ? parts.checkpoints.parentHeads() : null),
  }
}

/** What the parent sent down (catalog-down.ts), reloaded on every replica when it changes. */
async function openUpstreamCatalog(app: FastifyInstance): Promise<UpstreamCatalog> {
  const upstream = new UpstreamCatalog(app.db)
  await upstream.load()
  app.bus.subscribe(UPSTREAM_CATALOG_TOPIC, () => {
    upstream.load().catch((err) => app.log.error({ err }, 'upstream catalogue reload failed'))
  })
  return upstream
}

async function openRemoteCatalog(app: FastifyInstance): Promise<RemoteCatalog> {
  const remote = new RemoteCatalog(app.db)
  await remote.load()
  app.bus.subscribe(REMOTE_CATALOG_TOPIC, () => {
    remote.load().catch((err) => app.log.error({ err }, 'remote catalogue reload failed'))
  })
  return remote
}

export default fp(
  async function tiers(app: FastifyInstance) {
    const topology = new Topology(app.config.node, app.config.tiers.nodes)
    const remote = await openRemoteCatalog(app)
    const parts: Parts = { link: null, sync: null, checkpoints: null, nodePort: null }
    app.decorate('tiers', facade(topology, remote, parts))
    registerReadRoutes(app)
    if (!topology.connected) return
    // The catalogue routes list what other nodes hold, below and above, with the holder.
    const upstream = await openUpstreamCatalog(app)
    app.catalog.elsewhere = elsewhereOf(remote, upstream)

    // A node in a tree. Hook order: sync timer, checkpoint push (after the sealer flushes),
    // then the listener (closes in preClose) and the jobs before the clients (onClose).
    const link = openNodeChannel(app, topology, remote)
    parts.link = link
    registerRelayRoutes(app, link)
    parts.sync = registerCatalogSync(app, link)
    registerCatalogDown(app, link, upstream)
    parts.checkpoints = registerCheckpoints(app, link)
    parts.nodePort = registerNodeLifecycle(app, { link, sync: parts.sync, checkpoints: parts.checkpoints })
  },
  { name: 'tiers', dependencies: ['stores', 'metrics', 'node-identity', 'audit', 'auth', 'catalog'] },
)
