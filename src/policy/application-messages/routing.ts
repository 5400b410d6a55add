// Where an application message goes next from this node: a submit toward the node holding
// the resource (as the relay routes queries), any other message toward its named node.
import { Problem } from '../../problems/problem.js'
import type { TopologyNode } from '../../tiers/topology.js'
import { firstLinkClaim, type Message, type MessagesContext, type Row } from './message.js'

/** The next hop; null when this node is the message's destination. */
export function nextHop(x: MessagesContext, r: Pick<Row, 'toward' | 'target' | 'received_from'>, consumerRegion: string): TopologyNode | null {
  const { topology, relay, self } = x
  const fromParent = r.received_from !== null && r.received_from === topology.parent?.id
  if (r.toward === 'owner') {
    const d = relay.decide({ kind: 'applications', code: r.target }, consumerRegion, r.received_from === null ? 'origin' : fromParent ? 'parent' : 'child')
    if (d.kind === 'local') return null
    if (d.kind === 'none') throw new Problem(404, 'RESOURCE_NOT_FOUND', `no node at or below node ${self.id} holds resource ${r.target}`)
    return d.hop
  }
  if (r.target === self.id) return null
  const child = topology.childToward(r.target)
  if (child) return child
  if (topology.parent && !fromParent) return topology.parent
  throw new Problem(404, 'TIERS_NODE_UNREACHABLE', `node ${r.target} is not reachable from node ${self.id}`)
}

/** The consumer's region, for routing a submit as the relay routes queries (remote catalogue preference). */
export function consumerRegionOf(r: Pick<Row, 'claims' | 'chain'>, m: Message): string {
  return r.claims?.region || (firstLinkClaim(r.chain, 'region') ?? m.origin)
}
