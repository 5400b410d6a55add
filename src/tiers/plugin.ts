// Four tiers (docs/tiers.md): topology, the node listener (mTLS), the relay of queries and
// applications for resources owned elsewhere, and catalogue sync to the parent.
//
// Registered after the catalogue and before the policy and exchange plugins, which it
// serves: `app.tiers.router` is the query engine's route step (src/exchange/query.ts asks it
// where a target this node does not hold goes), `app.tiers.link` the node channel the
// application messages of src/policy travel on. A node without a parent and children (the
// one-node default) registers the read-only routes only, and both are null.
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { Problem } from '../problems/problem.js'
import { problemResponses } from '../problems/schema.js'
import { certThumbprint } from '../pki/thumbprint.js'
import { publicView } from '../catalog/views.js'
import { CATALOG_TOPIC } from '../catalog/admin-routes.js'
import { AssertionSigner, AssertionVerifier } from './assertion.js'
import { NodeClient } from './node-client.js'
import { peerNodeOf, startNodeListener, type NodeListener } from './listener.js'
import { Relay, type Target } from './relay.js'
import { RemoteCatalog, buildSnapshot, checkSnapshot } from './remote-catalog.js'
import { createSyncJobs, type SyncJobs } from './sync-jobs.js'
import { createCheckpointJobs, fetchParentHeads, pushCheckpoints, type CheckpointJobs } from './checkpoint-push.js'
import { registerCheckpointRoutes } from './checkpoint-parent.js'
import type { Anchor } from '../evidence/evidence.js'
import { Topology } from './topology.js'

export const REMOTE_CATALOG_TOPIC = 'tiers-catalog'

/** What the application messages (src/policy) travel on: the node channel of a node in a tree. */
export interface TierLink {
  topology: Topology
  client: NodeClient
  signer: AssertionSigner
  verifier: AssertionVerifier
  relay: Relay
}

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

const sec = [{ bearer: [] }]

export default fp(
  async function tiers(app: FastifyInstance) {
    const { config, identity } = app
    const topology = new Topology(config.node, config.tiers.nodes)
    const remote = new RemoteCatalog(app.db)
    await remote.load()
    app.bus.subscribe(REMOTE_CATALOG_TOPIC, () => {
      remote.load().catch((err) => app.log.error({ err }, 'remote catalogue reload failed'))
    })

    let listener: NodeListener | null = null
    let jobs: SyncJobs | null = null
    let client: NodeClient | null = null
    let cpJobs: CheckpointJobs | null = null
    let cpClient: NodeClient | null = null
    let router: Relay | null = null
    let link: TierLink | null = null
    app.decorate('tiers', {
      topology,
      remote,
      get router() {
        return router
      },
      get link() {
        return link
      },
      nodePort: () => listener?.port ?? null,
      publish: async (reason = 'requested') => {
        await jobs?.request(reason)
      },
      pushCheckpoints: async (reason = 'requested') => {
        await cpJobs?.request(reason)
      },
      parentHeads: async () => {
        const p = topology.parent
        if (!p || !cpClient) return null
        return { parent: p.id, heads: await fetchParentHeads(cpClient, p, topology.self.id, Math.max(config.tiers.hopTimeoutMs, 10_000)) }
      },
    } satisfies Tiers)

    // ---- read-only routes, on every node ----

    app.get('/v1/tiers/topology', {
      onRequest: [app.authenticate],
      schema: {
        tags: ['tiers'],
        summary: 'This node in the tier tree: parent, children, nodes known below it, the state of each next hop',
        security: sec,
        response: { 200: { type: 'object', additionalProperties: true }, ...problemResponses(401) },
      },
    }, async () => ({
      self: topology.self,
      parent: topology.parent,
      children: topology.children,
      nodePort: listener?.port ?? null,
      below: await remote.nodes(),
      hops: client?.allGuards().map((g) => g.snapshot()) ?? [],
    }))

    app.get<{ Querystring: { status?: 'active' | 'all'; node?: string } }>('/v1/tiers/catalog/resources', {
      onRequest: [app.authenticate],
      schema: {
        tags: ['tiers'],
        summary: 'The catalogue as this node sees it: its own resources and those published by the nodes below it, each with its owning node',
        security: sec,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            status: { type: 'string', enum: ['active', 'all'], default: 'active', description: 'all: retired resources too' },
            node: { type: 'string', pattern: '^[1-9][0-9]{5}$', description: 'only the resources of this owning node' },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              node: { type: 'string' },
              resources: {
                type: 'array',
                items: {
                  type: 'object',
                  additionalProperties: true,
                  properties: { node: { type: 'string' }, via: { type: ['string', 'null'] }, code: { type: 'string' }, version: { type: 'integer' }, status: { type: 'string' } },
                },
              },
            },
          },
          ...problemResponses(400, 401),
        },
      },
    }, async (request) => {
      const all = request.query.status === 'all'
      const own = app.catalog.list().map((r) => ({ ...publicView(r), node: topology.self.id, via: null }))
      const below = remote.list().map((e) => {
        const { service, ...rest } = e.entry
        return {
          ...rest,
          ...(service ? { service: { verifyService: service.verifyService, operations: Object.fromEntries(Object.entries(service.operations).map(([k, o]) => [k, { requestSchema: o.requestSchema, responseSchema: o.responseSchema }])) } } : {}),
          node: e.node,
          via: e.via,
          receivedAt: e.receivedAt,
        }
      })
      const resources = [...own, ...below].filter((r) => (all || r.status === 'active') && (!request.query.node || r.node === request.query.node))
      return { node: topology.self.id, resources }
    })

    if (!topology.connected) return

    // ---- a node in a tree ----

    const signer = new AssertionSigner(config.node.id, identity.keyPem, identity.certPem)
    const verifier = new AssertionVerifier(identity.caPem)
    client = new NodeClient({
      certPem: identity.certPem,
      keyPem: identity.keyPem,
      caPem: identity.caPem,
      timeoutMs: config.tiers.hopTimeoutMs,
      maxConcurrentPerHop: config.tiers.maxConcurrentPerHop,
      breaker: config.tiers.breaker,
      // As upstream `node:<id>` in tongban_upstream_circuit_state.
      onBreakerState: (hop, state) => app.metrics.upstreamCircuit(`node:${hop}`, state),
    })
    const relay = new Relay({ app, topology, client, signer, verifier, remote })
    router = relay
    link = { topology, client, signer, verifier, relay }

    // Node-facing routes: they answer on the node listener only (peerNodeOf refuses the rest).
    const nodeRoute = { schema: { hide: true }, bodyLimit: config.http.bodyLimit, config: { sealsItself: true } }
    type ResourceParams = { code: string; operation: string }
    app.post<{ Params: ResourceParams }>('/v1/tiers/relay/resources/:code/:operation', nodeRoute, (request, reply) =>
      relay.handle(request, reply, () => {
        const { code, operation } = request.params
        if (!/^[0-9]{6}\/[0-9]{5}$/.test(code) || !/^[a-z][a-z0-9-]{0,31}$/.test(operation)) throw new Problem(404, 'RESOURCE_NOT_FOUND', 'no such resource')
        return { kind: 'resources', code, operation }
      }))
    app.post<{ Params: { service: string } }>('/v1/tiers/relay/verify/:service', nodeRoute, (request, reply) =>
      relay.handle(request, reply, () => {
        if (!/^[a-z][a-z0-9-]{0,31}$/.test(request.params.service)) throw new Problem(404, 'SERVICE_UNKNOWN', 'no such verification service')
        return { kind: 'verify', service: request.params.service }
      }))
    app.post('/v1/tiers/relay/applications', nodeRoute, (request, reply) =>
      relay.handle(request, reply, (): Target => {
        const code = (request.body as { resource?: unknown } | null)?.resource
        if (typeof code !== 'string' || !/^[0-9]{6}\/[0-9]{5}$/.test(code)) throw new Problem(400, 'INPUT_INVALID', 'resource must be a resource code')
        return { kind: 'applications', code }
      }))

    // Catalogue sync, parent side: a child sends its whole snapshot.
    app.post('/v1/tiers/catalog/sync', { schema: { hide: true }, bodyLimit: 32 * 1024 * 1024 }, async (request) => {
      const peer = peerNodeOf(request)
      const child = topology.children.find((c) => c.id === peer)
      if (!child) throw new Problem(403, 'NODE_NOT_CHILD', `node ${peer} is not a child of node ${topology.self.id}`)
      const snapshot = checkSnapshot(request.body, child)
      const socket = request.raw.socket as unknown as { getPeerCertificate(detailed?: boolean): { raw?: Buffer } }
      const raw = socket.getPeerCertificate().raw
      const thumbprint = raw ? certThumbprint(`-----BEGIN CERTIFICATE-----\n${raw.toString('base64')}\n-----END CERTIFICATE-----`) : null
      const result = await remote.apply(snapshot, { id: child.id, region: child.region, tier: child.tier, thumbprint })
      if (result.changed) {
        await remote.load()
        await app.bus.publish(REMOTE_CATALOG_TOPIC).catch(() => {})
        await jobs?.request(`child ${child.id} changed`)
      }
      request.log.info({ child: child.id, ...result }, 'tiers sync: snapshot from child')
      return { node: topology.self.id, ...result }
    })

    // Checkpoints: children send theirs here (checkpoint-parent.ts).
    if (topology.children.length) registerCheckpointRoutes(app, topology)

    // Catalogue sync, child side: BullMQ jobs publish the snapshot to the parent.
    const parent = topology.parent
    if (parent) {
      jobs = createSyncJobs({
        redisUrl: config.redis.url,
        prefix: `${config.redis.prefix}bull`,
        attempts: config.tiers.syncAttempts,
        backoffMs: config.tiers.syncBackoffMs,
        log: app.log,
        publish: async (reason) => {
          const snapshot = await buildSnapshot(app.db, topology.self)
          const res = await client!.send(parent, {
            method: 'POST',
            path: '/v1/tiers/catalog/sync',
            body: JSON.stringify(snapshot),
            timeoutMs: Math.max(config.tiers.hopTimeoutMs, 10_000),
            guarded: false,
          })
          if (res.status !== 200) throw new Error(`node ${parent.id} answered ${res.status}: ${res.body.slice(0, 300)}`)
          app.log.info({ parent: parent.id, reason, groups: snapshot.groups.length }, 'tiers sync: published to the parent')
        },
      })
      // Own catalogue changed (admin write on any replica, or a bus reconnect): publish.
      app.bus.subscribe(CATALOG_TOPIC, () => void jobs!.request('catalogue changed'))
      const timer = setInterval(() => void jobs!.request('periodic'), config.tiers.syncIntervalMs)
      timer.unref()
      app.addHook('onClose', async () => clearInterval(timer))

      // Checkpoints to the parent (checkpoint-push.ts), on a client of their own: background
      // traffic never takes a query's connection to the parent.
      cpClient = new NodeClient({
        certPem: identity.certPem, keyPem: identity.keyPem, caPem: identity.caPem,
        timeoutMs: Math.max(config.tiers.hopTimeoutMs, 10_000), maxConcurrentPerHop: 2, breaker: config.tiers.breaker,
      })
      const push = (reason: string, timeoutMs = Math.max(config.tiers.hopTimeoutMs, 10_000)) => pushCheckpoints({
        db: app.db, client: cpClient!, parent, self: topology.self.id, own: { kid: identity.kid, certPem: identity.certPem },
        batch: config.checkpointPush.batch, timeoutMs, log: app.log,
      }, reason)
      cpJobs = createCheckpointJobs({ redisUrl: config.redis.url, prefix: `${config.redis.prefix}bull`, backoffMs: config.tiers.syncBackoffMs, log: app.log, push })
      const cpTimer = setInterval(() => void cpJobs!.request('periodic'), config.checkpointPush.intervalMs)
      cpTimer.unref()
      app.addHook('onClose', async () => {
        clearInterval(cpTimer)
        // The last batches sealed before shutdown go up now, not after the restart.
        await app.sealer.flush().catch(() => {})
        await cpJobs!.final(() => push('shutdown', 3000))
        await cpJobs!.close()
        await cpClient!.close()
      })
    }

    app.addHook('onReady', async () => {
      const l = config.tiers.listen
      if (l) {
        listener = await startNodeListener(app, { host: l.host, port: l.port, certPem: identity.certPem, keyPem: identity.keyPem, caPem: identity.caPem })
        app.log.info({ port: listener.port, node: topology.self.id }, 'node listener (mTLS) ready')
      }
      await jobs?.request('node started')
      await cpJobs?.request('node started')
    })
    app.addHook('preClose', async () => {
      await listener?.close()
    })
    app.addHook('onClose', async () => {
      await jobs?.close()
      await client?.close()
    })
  },
  { name: 'tiers', dependencies: ['stores', 'metrics', 'node-identity', 'audit', 'auth', 'catalog'] },
)
