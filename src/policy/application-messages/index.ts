// Applications across tiers as queued messages (docs/tiers.md: "Applications for a remote
// resource travel to the owning node as queued messages (BullMQ), with retries, and the
// decision travels back"). docs/tiers.md §7.
//
//   origin (consumer's node)  origin.ts: POST /v1/applications for a resource it does not
//                             hold records the application and its `submit` message, 202.
//   every hop                 outbox.ts: a row per message and a BullMQ job per row (job id
//                             `msg-<message id>`); send.ts: the job hands it to the next hop
//                             over mTLS with the assertion chain, retries, gives up;
//                             receive.ts: the next hop verifies the chain, audits its leg, and
//                             stores and forwards it or is its destination.
//   owner                     receive.ts: runs its own POST /v1/applications with the SAME id
//                             (idempotent), answers with an `accepted` (or `refused`) message;
//                             a provider's decision writes a `decision` message in the
//                             decision's transaction (outbox.ts).
//   back at the origin        apply-at-origin.ts: the answer updates the local copy.
//
// Disputes about data held elsewhere travel the same way with kinds of their own (message.ts
// DISPUTE_KINDS): the same outbox, queue, route, chain, retries and re-queue; their side at
// the owner and at the origin is src/disputes/tiers.ts (handleDisputes).
//
// A hop forwards later than it received, so earlier links may have expired by then: the
// verifier accepts them up to MAX_AGE_S (they were checked fresh when taken); the sender's own
// link is signed at each attempt and must be fresh, its jti is remembered (no replay).
import type { ApplicationOutbox } from '../routes.js'
import { writeMessage, type ApplicationMessagesDeps, type DisputeMessageHandler, type LinkClaims, type Message, type MessagesContext } from './message.js'
import type { PoolClient } from 'pg'
import type { Db } from '../../stores/postgres.js'
import { Outbox } from './outbox.js'
import { originHook, type OriginHook } from './origin.js'
import { registerReceiveRoute } from './receive.js'
import { registerRequeueRoute, requeue } from './requeue.js'
import { createMessageQueue, type MessageQueue } from './send.js'

export { asPreHandler } from './origin.js'
export { KINDS, MESSAGES_PATH, MESSAGES_QUEUE, newMessage, problemAt, type ApplicationMessagesDeps, type DisputeMessageHandler, type Kind, type LinkClaims, type Message } from './message.js'

export class ApplicationMessages {
  private readonly x: MessagesContext
  private readonly box: Outbox
  private pair?: MessageQueue
  private closing?: Promise<void>
  /** Written in the decision's transaction at the owner (policy routes). */
  readonly outbox: ApplicationOutbox
  /** preHandler of POST /v1/applications (plugin.ts), in place of the relay's: true when it answered. */
  readonly originHook: OriginHook

  constructor(d: ApplicationMessagesDeps) {
    this.x = { ...d, self: d.topology.self }
    this.box = new Outbox(this.x)
    this.outbox = this.box.decisions
    this.originHook = originHook(this.x, this.box)
  }

  /** Re-queues what this node gave up on for an application; the message ids. */
  requeue(applicationId: string): Promise<string[]> {
    return requeue(this.x, this.box, applicationId)
  }

  /** Disputes travel the same way (src/disputes/tiers.ts): their side at the owner and at the origin. */
  handleDisputes(h: DisputeMessageHandler): void {
    this.x.disputes = h
  }

  /** Where a resource this node does not hold is: the next hop toward it and what the catalogue below says; null when held here or nowhere. */
  ownerOf(resource: string, consumerRegion: string): { hop: string; ownerNode: string | null; providerDepartment: string | null } | null {
    const d = this.x.relay.decide({ kind: 'applications', code: resource }, consumerRegion, 'origin')
    if (d.kind !== 'hop') return null
    return { hop: d.hop.id, ownerNode: d.entry?.node ?? null, providerDepartment: d.entry?.entry.provider?.code ?? null }
  }

  /** Writes a message of this node in the caller's transaction; `flush` queues it after the commit. */
  write(c: PoolClient | Db, m: Message, claims: LinkClaims): Promise<void> {
    return writeMessage(c, this.x.self.id, m, claims)
  }

  flush(messageId: string): Promise<void> {
    return this.box.enqueue(messageId)
  }

  get nodeId(): string {
    return this.x.self.id
  }

  get region(): string {
    return this.x.self.region
  }

  register(): void {
    const { app } = this.x
    registerReceiveRoute(this.x, this.box)
    registerRequeueRoute(this.x, this.box)
    app.addHook('onReady', async () => this.start())
    app.addHook('onClose', async () => this.close())
  }

  private start(): void {
    this.pair = createMessageQueue(this.x, this.box)
    this.box.start(this.pair.queue)
  }

  private close(): Promise<void> {
    return (this.closing ??= (async () => {
      this.box.stop()
      await this.pair?.close()
    })())
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The node channel's queued messages (null off a tier tree): applications, and disputes (src/disputes/tiers.ts). */
    tierMessages: ApplicationMessages | null
  }
}
