// The wire form of a message between nodes and its row in application_messages (docs/tiers.md
// §7), shared by the outbox, send and receive. Two topics travel the same way: applications
// and disputes (src/disputes/tiers.ts); the kind says which, and the body names its thread
// by the topic's field (`application` or `dispute`). A message is a JSON body (its exact bytes
// travel unchanged, link 0 signs their digest) and the chain of `Tongban-Assertion`: link 0
// signed by the node that wrote it, then one link per forwarding hop.
import type { FastifyInstance } from 'fastify'
import type { PoolClient } from 'pg'
import type * as store from '../applications.js'
import type { AssertionSigner, AssertionVerifier, ConsumerClaims } from '../../tiers/assertion.js'
import type { NodeClient } from '../../tiers/node-client.js'
import type { Relay } from '../../tiers/relay.js'
import type { Topology, TopologyNode } from '../../tiers/topology.js'
import { codeFrom } from '../../problems/codes.js'

export const MESSAGES_QUEUE = 'tiers-applications'
export const MESSAGES_PATH = '/v1/tiers/applications/messages'
/** How old the stored links of a message may be when it is forwarded (a long outage of a hop). */
export const MAX_AGE_S = 30 * 86400

export const APPLICATION_KINDS = ['submit', 'accepted', 'refused', 'decision', 'undeliverable'] as const
export const DISPUTE_KINDS = ['dispute', 'dispute-accepted', 'dispute-refused', 'dispute-resolved', 'dispute-undeliverable'] as const
export const KINDS = [...APPLICATION_KINDS, ...DISPUTE_KINDS] as const
export type Kind = (typeof KINDS)[number]
export type DisputeKind = (typeof DISPUTE_KINDS)[number]
export type Topic = 'application' | 'dispute'
export const topicOf = (kind: Kind): Topic => ((DISPUTE_KINDS as readonly string[]).includes(kind) ? 'dispute' : 'application')
/** The kinds written at the consumer's node that go to whichever node holds the resource. */
export const towardOwner = (kind: Kind) => kind === 'submit' || kind === 'dispute'
/** What a hop gives up on and tells the origin of, per outbound kind. */
export const undeliverableOf = (kind: Kind): Kind | null => (kind === 'submit' ? 'undeliverable' : kind === 'dispute' ? 'dispute-undeliverable' : null)
export const tgtOf = (kind: Kind) => `application-messages/${kind}`
/** The operation a hop's leg is audited as: `application.<kind>`, `dispute.message.<what>`. */
export const operationOf = (kind: Kind) => (topicOf(kind) === 'application' ? `application.${kind}` : `dispute.message.${kind === 'dispute' ? 'filed' : kind.slice('dispute-'.length)}`)
export const APP_ID = /^[0-9A-Z]{26}$/
const MESSAGE_ID = new RegExp(`^([0-9A-Z]{26})\\.(${KINDS.join('|')})(\\.[0-9a-z]{1,12})?$`)
export const NODE_ID = /^[1-9][0-9]{5}$/
export const CODE = /^[0-9]{6}\/[0-9]{5}$/

/** The body of a message. Exactly these bytes travel; every hop checks their digest. */
export interface Message {
  v: 1
  id: string
  kind: Kind
  /** The thread of an application message. */
  application?: string
  /** The thread of a dispute message. */
  dispute?: string
  resource: string
  /** The consumer's node. */
  origin: string
  /** The node that wrote the message (signer of link 0). */
  from: string
  /** The destination node; absent for a submit, which goes to whichever node holds the resource. */
  to?: string
  at: string
  /** submit: the consumer's POST /v1/applications body. */
  request?: Record<string, unknown>
  /** accepted: what the owner recorded. */
  accepted?: { providerDepartment: string | null; dueAt: string | null; createdAt: string }
  /** decision: the provider's decision. */
  decision?: { status: 'approved' | 'rejected'; reason: string | null; decidedAt: string | null; decidedBy: string | null; grantId: string | null; granted: store.Granted | null }
  /** refused (by the owner) / undeliverable (a hop gave up): the problem. */
  problem?: { code: string; detail: string; node: string }
  /** dispute: what the consumer filed (the evidence was checked at the origin, against its own record). */
  filing?: { requestId: string; items: string[]; reason: string; description: string }
  /** dispute-resolved: the provider's resolution at the owner. */
  resolution?: { resolution: string; note: string; effectiveFrom: string | null; resolvedAt: string; resolvedBy: string }
}

/** The id of the message's application or dispute. */
export const threadOf = (m: Pick<Message, 'application' | 'dispute'>): string => m.dispute ?? m.application ?? ''

export const messageSchema = {
  type: 'object',
  required: ['v', 'id', 'kind', 'resource', 'origin', 'from', 'at'],
  properties: {
    v: { const: 1 },
    id: { type: 'string', pattern: MESSAGE_ID.source },
    kind: { enum: KINDS },
    application: { type: 'string', pattern: APP_ID.source },
    dispute: { type: 'string', pattern: APP_ID.source },
    resource: { type: 'string', pattern: CODE.source },
    origin: { type: 'string', pattern: NODE_ID.source },
    from: { type: 'string', pattern: NODE_ID.source },
    to: { type: 'string', pattern: NODE_ID.source },
    at: { type: 'string', maxLength: 40 },
    request: { type: 'object' },
    accepted: { type: 'object' },
    decision: { type: 'object' },
    problem: { type: 'object' },
    filing: { type: 'object' },
    resolution: { type: 'object' },
  },
  // Exactly one thread, the one of its kind's topic.
  oneOf: [
    { required: ['application'], not: { required: ['dispute'] }, properties: { kind: { enum: APPLICATION_KINDS } } },
    { required: ['dispute'], not: { required: ['application'] }, properties: { kind: { enum: DISPUTE_KINDS } } },
  ],
} as const

export interface Row {
  id: string
  application_id: string
  kind: Kind
  toward: 'owner' | 'node'
  target: string
  writer: string
  origin_node: string
  received_from: string | null
  body: string
  chain: string | null
  claims: LinkClaims | null
  state: 'queued' | 'sent' | 'failed'
  attempts: number
}

export type LinkClaims = Omit<ConsumerClaims, 'tgt' | 'bd'>

export interface ApplicationMessagesDeps {
  app: FastifyInstance
  topology: Topology
  client: NodeClient
  signer: AssertionSigner
  verifier: AssertionVerifier
  relay: Relay
}

/** The disputes' side of the messages (src/disputes/tiers.ts), handed in once the disputes plugin is up. */
export interface DisputeMessageHandler {
  /** At the owner: a `dispute` arrived; files it with the same id or refuses it, writing the answer message either way. */
  atOwner(m: Message, claims: ConsumerClaims): Promise<'created' | 'duplicate' | 'refused'>
  /** At the origin: the owner's answer or resolution, or a hop's undeliverable notice; conditional updates. */
  atOrigin(m: Message): Promise<'applied' | 'duplicate'>
}

/** What every part of the workflow is given: the deps and this node. */
export interface MessagesContext extends ApplicationMessagesDeps {
  self: TopologyNode
  disputes?: DisputeMessageHandler
}

export const split = (v: string | string[] | undefined): string[] =>
  (Array.isArray(v) ? v.join(',') : v ?? '').split(',').map((s) => s.trim()).filter(Boolean)

/** A new message written by node `from` about thread `thread` (an application or a dispute, by the kind). */
export function newMessage(from: string, thread: string, kind: Kind, resource: string, origin: string, extra: Partial<Message>, suffix?: string): Message {
  return {
    v: 1,
    id: `${thread}.${kind}${suffix ? `.${suffix}` : ''}`,
    kind,
    [topicOf(kind)]: thread,
    resource,
    origin,
    from,
    at: new Date().toISOString(),
    ...extra,
  }
}

/**
 * A message written by this node (`writer`), in the caller's transaction. A message id is
 * written once; an `undeliverable` notice may be written again (another attempt failed
 * later), hence its suffix.
 */
export async function writeMessage(c: PoolClient | FastifyInstance['db'], writer: string, m: Message, claims: LinkClaims): Promise<void> {
  await c.query(
    `INSERT INTO application_messages (id, application_id, kind, toward, target, writer, origin_node, body, claims)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING`,
    [m.id, threadOf(m), m.kind, m.to ? 'node' : 'owner', m.to ?? m.resource, writer, m.origin, JSON.stringify(m), claims],
  )
}

/** A claim of link 0 of a stored chain (the consumer's, for a forwarded message), if readable. */
export function firstLinkClaim(chain: string | null, claim: 'region' | 'dept'): string | undefined {
  try {
    const first = split(chain ?? '')[0]
    const value = first ? (JSON.parse(Buffer.from(first.split('.')[1], 'base64url').toString('utf8')) as Record<string, unknown>)[claim] : undefined
    return typeof value === 'string' ? value : undefined
  } catch {
    return undefined
  }
}

/**
 * A refusal's or a give-up's problem as `CODE@node`, the node where it arose: a hop that gave
 * up reports the code it met already placed (`HOP_UNAVAILABLE@320000`). Unknown codes are
 * not repeated as sent.
 */
export function problemAt(p: Message['problem']): string | null {
  if (!p || typeof p.code !== 'string' || typeof p.node !== 'string' || !NODE_ID.test(p.node)) return null
  const [code, node] = p.code.split('@')
  return `${codeFrom(code, 500)}@${node && NODE_ID.test(node) ? node : p.node}`
}
