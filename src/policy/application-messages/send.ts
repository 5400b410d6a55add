// Sending: one BullMQ job per outbox row carries the message to the next hop over mTLS with
// the assertion chain, until the hop takes it. A hop that is busy or away is retried with
// exponential backoff; a refusal that retrying cannot change, or the last attempt, gives up:
// the consumer learns it (delivery `failed` at the origin, an `undeliverable` notice from a
// hop in the middle), and operators re-queue (requeue.ts).
import { UnrecoverableError } from 'bullmq'
import { Problem, isProblem, type ProblemCode } from '../../problems/problem.js'
import { codeFrom, statusFallback } from '../../problems/codes.js'
import { createQueuePair, type QueuePair } from '../../queues/factory.js'
import { digest } from '../../evidence/evidence.js'
import * as store from '../applications.js'
import { ASSERTION_HEADER } from '../../tiers/assertion.js'
import type { TopologyNode } from '../../tiers/topology.js'
import { MESSAGES_PATH, MESSAGES_QUEUE, firstLinkClaim, newMessage, split, tgtOf, towardOwner, undeliverableOf, writeMessage, type Message, type MessagesContext, type Row } from './message.js'
import { consumerRegionOf, nextHop } from './routing.js'
import type { Outbox } from './outbox.js'
import { bullPrefix } from '../../stores/redis.js'

export type MessageQueue = QueuePair<{ id: string }, void, string>

/** What the next hop answered when it did not take a message. */
class LegRefused extends Error {
  constructor(readonly code: ProblemCode, readonly detail: string, readonly node: string, readonly permanent: boolean) {
    super(code)
  }
}

/** A problem's code at the node where it arose (CODE@node): what the consumer sees as lastError. */
const codeAt = (e: unknown, node: string): string => {
  if (e instanceof LegRefused) return `${e.code}@${e.node}`
  if (isProblem(e)) return `${e.code}@${typeof e.extra?.hop === 'string' ? e.extra.hop : node}`
  return `INTERNAL@${node}`
}

/** The `tiers-applications` queue and this replica's worker, which runs sendMessage. */
export function createMessageQueue(x: MessagesContext, outbox: Outbox): MessageQueue {
  const { config, log } = x.app
  return createQueuePair<{ id: string }, void, string>({
    name: MESSAGES_QUEUE,
    redis: config.redis,
    prefix: bullPrefix(config.redis),
    clientName: 'messages',
    label: 'application messages',
    log,
    processor: async (job) => sendMessage(x, outbox, String(job.data?.id), job.attemptsMade, job.opts.attempts ?? 1),
    concurrency: 4,
    defaultJobOptions: {
      attempts: config.tiers.messageAttempts,
      backoff: { type: 'exponential', delay: config.tiers.messageBackoffMs },
      removeOnComplete: { count: 1000 },
      removeOnFail: { count: 10_000 },
    },
    closeTimeoutMs: 5000,
  })
}

/** One attempt at handing message `id` to the next hop; throws to have BullMQ retry. */
export async function sendMessage(x: MessagesContext, outbox: Outbox, id: string, attemptsMade: number, attempts: number): Promise<void> {
  const { app } = x
  const { rows } = await app.db.query('SELECT * FROM application_messages WHERE id = $1', [id])
  const r = rows[0] as Row | undefined
  if (!r || r.state !== 'queued') return
  let hop: TopologyNode | null = null
  try {
    const m = JSON.parse(r.body) as Message
    hop = nextHop(x, r, consumerRegionOf(r, m))
    if (!hop) throw new Problem(500, 'INTERNAL', 'a message for this node was queued to be sent')
    await handOver(x, r, hop)
  } catch (e) {
    await failed(x, outbox, r, hop, e, attemptsMade + 1 >= attempts, attemptsMade + 1)
  }
}

/** Posts the message with its chain (plus this hop's link) to `hop`; throws LegRefused unless it took it. */
async function handOver(x: MessagesContext, r: Row, hop: TopologyNode): Promise<void> {
  const { app, client, signer } = x
  const chain = r.chain
    ? [...split(r.chain), signer.hop(hop.id, r.id, split(r.chain).at(-1)!)]
    : [signer.origin(hop.id, r.id, { ...r.claims!, tgt: tgtOf(r.kind), bd: digest(r.body) })]
  const res = await client.send(hop, {
    method: 'POST',
    path: MESSAGES_PATH,
    headers: { 'tongban-request-id': r.id, [ASSERTION_HEADER]: chain.join(', ') },
    body: r.body,
    timeoutMs: app.config.tiers.hopTimeoutMs,
    // Background traffic: its retries are BullMQ's, it does not count against the query guard.
    guarded: false,
  })
  if (res.status >= 200 && res.status < 300) {
    await app.db.query(`UPDATE application_messages SET state = 'sent', next_hop = $2, attempts = attempts + 1, last_error = NULL, updated_at = now() WHERE id = $1 AND state = 'queued'`, [r.id, hop.id])
    if (towardOwner(r.kind) && !r.received_from) await app.db.query(`UPDATE ${originTable(r.kind)} SET delivery_at = now() WHERE id = $1`, [r.application_id])
    app.log.info({ message: r.id, kind: r.kind, hop: hop.id }, 'application message: handed to the next hop')
    return
  }
  let code: ProblemCode = statusFallback(res.status)
  let detail = `node ${hop.id} answered HTTP ${res.status}`
  let at = hop.id
  try {
    const p = JSON.parse(res.body) as { code?: unknown; detail?: unknown; hop?: unknown }
    if (typeof p.code === 'string') code = codeFrom(p.code, res.status)
    if (typeof p.detail === 'string') detail = p.detail
    if (typeof p.hop === 'string') at = p.hop
  } catch {
    /* not JSON: the status says enough */
  }
  // A refusal of the message itself will not change by retrying (a forged chain, no route);
  // a busy or failing node, a replay check without Redis, a timeout will.
  const permanent = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429
  throw new LegRefused(code, detail, at, permanent)
}

/** Records a failed attempt; gives up when retrying cannot help or this was the last try. Always throws. */
async function failed(x: MessagesContext, outbox: Outbox, r: Row, hop: TopologyNode | null, e: unknown, final: boolean, attempt: number): Promise<never> {
  const { app, self } = x
  // No route from here (404) will not change by retrying either; hop failures (HOP_*) will.
  const permanent = e instanceof LegRefused ? e.permanent : isProblem(e) && e.status === 404
  const code = codeAt(e, hop?.id ?? self.id)
  const gaveUp = permanent || final
  await app.db.query(
    `UPDATE application_messages SET attempts = attempts + 1, last_error = $2, next_hop = coalesce($3, next_hop), state = CASE WHEN $4 THEN 'failed' ELSE state END, updated_at = now()
     WHERE id = $1 AND state = 'queued'`,
    [r.id, code, hop?.id ?? null, gaveUp],
  )
  app.log.warn({ message: r.id, kind: r.kind, hop: hop?.id ?? null, code, attempt, gaveUp }, gaveUp ? 'application message: given up' : 'application message: failed, will retry')
  if (!gaveUp) throw new Error(code)
  await giveUp(x, outbox, r, code, e instanceof LegRefused ? e.detail : isProblem(e) ? e.detail ?? e.message : 'unexpected error')
  throw new UnrecoverableError(code)
}

/**
 * A message this node could not pass on: the consumer must learn it, not lose it. At the
 * origin the application (or dispute) shows delivery `failed`; a hop in the middle sends an
 * `undeliverable` (`dispute-undeliverable`) notice back to the origin. Operators re-queue
 * (POST /v1/tiers/applications/{id}/requeue, /v1/tiers/disputes/{id}/requeue).
 */
async function giveUp(x: MessagesContext, outbox: Outbox, r: Row, code: string, detail: string): Promise<void> {
  const { app, self } = x
  const undeliverable = undeliverableOf(r.kind)
  if (!undeliverable) return
  if (!r.received_from) {
    await store.inTransaction(app.db, async (c) => {
      const { rowCount } = await c.query(`UPDATE ${originTable(r.kind)} SET delivery = 'failed', delivery_error = $2, delivery_at = now() WHERE id = $1 AND delivery = 'forwarding'`, [r.application_id, code])
      // A dispute's history holds its sealed steps only; its delivery state says enough.
      if (rowCount && r.kind === 'submit') await store.event(c, r.application_id, `node:${self.id}`, 'delivery-failed', { code })
    })
    return
  }
  const m = JSON.parse(r.body) as Message
  if (m.origin === self.id) return
  const notice = newMessage(self.id, r.application_id, undeliverable, m.resource, m.origin, { to: m.origin, problem: { code, detail: detail.slice(0, 500), node: self.id } }, Date.now().toString(36))
  const dept = firstLinkClaim(r.chain, 'dept') ?? `node:${self.id}`
  await writeMessage(app.db, self.id, notice, { sub: `node:${self.id}`, dept, region: self.region, purpose: null, case: null })
  await outbox.enqueue(notice.id)
}

/** Where the origin keeps what an outbound message reports on. */
const originTable = (kind: Row['kind']) => (kind === 'dispute' ? 'disputes' : 'applications')
