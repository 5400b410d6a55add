// The node channel of a node in a tree: the assertion signer and verifier, the mTLS client
// to the next hops and the relay, which is also the query engine's route step.
import type { FastifyInstance } from 'fastify'
import { AssertionSigner, AssertionVerifier } from './assertion.js'
import { NodeClient } from './node-client.js'
import { Relay } from './relay.js'
import type { RemoteCatalog } from './remote-catalog.js'
import type { Topology } from './topology.js'

/** What the application messages (src/policy) travel on: the node channel of a node in a tree. */
export interface TierLink {
  topology: Topology
  client: NodeClient
  signer: AssertionSigner
  verifier: AssertionVerifier
  relay: Relay
}

export function openNodeChannel(app: FastifyInstance, topology: Topology, remote: RemoteCatalog): TierLink {
  const { config, identity } = app
  const signer = new AssertionSigner(config.node.id, identity.keyPem, identity.certPem)
  const verifier = new AssertionVerifier(identity.caPem)
  const client = new NodeClient({
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
  return { topology, client, signer, verifier, relay }
}

/** Background traffic to the parent (sync, checkpoints) waits at least this long. */
export function backgroundTimeoutMs(app: FastifyInstance): number {
  return Math.max(app.config.tiers.hopTimeoutMs, 10_000)
}
