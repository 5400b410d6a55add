// Applications across tiers as queued messages (DESIGN.md §6: "Applications for a remote
// resource travel to the owning node as queued messages (BullMQ), with retries, and the
// decision travels back"). docs/tiers.md §7.
//
//   origin (consumer's node)  POST /v1/applications for a resource it does not hold: records
//                             the application at once (its id, status pending, delivery
//                             `forwarding`), writes a `submit` message in the same transaction,
//                             answers 202.
//   every hop                 an outbox row per message (PostgreSQL) and a BullMQ job per row
//                             (job id = message id; retries with exponential backoff; jobs and
//                             rows survive restarts) sends it to the next hop over mTLS with the
//                             assertion chain; the next hop verifies the chain, audits its leg,
//                             and either stores and forwards it or is its destination.
//   owner                     runs its own POST /v1/applications for the consumer with the
//                             SAME id (idempotent: a redelivery creates nothing), which starts
//                             the deadline jobs as for a local one; answers with an `accepted`
//                             (or `refused`) message. A decision of its provider writes a
//                             `decision` message in the decision's transaction.
//   back at the origin        accepted / decision / refused / undeliverable update the local
//                             copy and its history (conditional updates: a redelivery changes
//                             nothing). Grants stay at the owner, which enforces them.
//
// A message is a JSON body (its exact bytes travel unchanged, link 0 signs their digest) and
// the chain of `Tongban-Assertion`: link 0 signed by the node that wrote it (for a submit,
// the consumer as the origin vouches for it), then one link per forwarding hop. A hop
// forwards later than it received, so earlier links may have expired by then: the verifier
// accepts them up to MAX_AGE_S (they were checked fresh when taken); the sender's own link
// is signed at each attempt and must be fresh, its jti is remembered (no replay).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { PoolClient } from 'pg'
import { UnrecoverableError } from 'bullmq'
import { Problem, isProblem } from '../problems/problem.js'
import { createQueuePair, type QueuePair } from '../queues/factory.js'
import { problemBody } from '../problems/plugin.js'
import { problemResponses } from '../problems/schema.js'
import { digest } from '../evidence/evidence.js'
import { tierOf } from '../auth/principal.js'
import * as store from './applications.js'
import { checkPeriod, type ApplicationOutbox } from './routes.js'
import type { Grant } from './grants.js'
import { ASSERTION_HEADER, type AssertionSigner, type AssertionVerifier, type ConsumerClaims } from '../tiers/assertion.js'
import type { NodeClient } from '../tiers/node-client.js'
import { peerNodeOf } from '../tiers/listener.js'
import type { Relay } from '../tiers/relay.js'
import { regionWithin, type Topology, type TopologyNode } from '../tiers/topology.js'

export const MESSAGES_QUEUE = 'tiers-applications'
export const MESSAGES_PATH = '/v1/tiers/applications/messages'
/** How old the stored links of a message may be when it is forwarded (a long outage of a hop). */
const MAX_AGE_S = 30 * 86400
const SWEEP_MS = 30_000

export const KINDS = ['submit', 'accepted', 'refused', 'decision', 'undeliverable'] as const
export type Kind = (typeof KINDS)[number]
const tgtOf = (kind: Kind) => `application-messages/${kind}`
const APP_ID = /^[0-9A-Z]{26}$/
const MESSAGE_ID = /^([0-9A-Z]{26})\.(submit|accepted|refused|decision|undeliverable)(\.[0-9a-z]{1,12})?$/
const NODE_ID = /^[1-9][0-9]{5}$/
const CODE = /^[0-9]{6}\/[0-9]{5}$/

/** The body of a message. Exactly these bytes travel; every hop checks their digest. */
export interface Message {
  v: 1
  id: string
  kind: Kind
  application: string
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
}

const messageSchema = {
  type: 'object',
  required: ['v', 'id', 'kind', 'application', 'resource', 'origin', 'from', 'at'],
  properties: {
    v: { const: 1 },
    id: { type: 'string', pattern: MESSAGE_ID.source },
    kind: { enum: KINDS },
    application: { type: 'string', pattern: APP_ID.source },
    resource: { type: 'string', pattern: CODE.source },
    origin: { type: 'string', pattern: NODE_ID.source },
    from: { type: 'string', pattern: NODE_ID.source },
    to: { type: 'string', pattern: NODE_ID.source },
    at: { type: 'string', maxLength: 40 },
    request: { type: 'object' },
    accepted: { type: 'object' },
    decision: { type: 'object' },
    problem: { type: 'object' },
  },
} as const

interface Row {
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

type LinkClaims = Omit<ConsumerClaims, 'tgt' | 'bd'>

export interface ApplicationMessagesDeps {
  app: FastifyInstance
  topology: Topology
  client: NodeClient
  signer: AssertionSigner
  verifier: AssertionVerifier
  relay: Relay
}

const split = (v: string | string[] | undefined): string[] =>
  (Array.isArray(v) ? v.join(',') : v ?? '').split(',').map((s) => s.trim()).filter(Boolean)

/** What the next hop answered when it did not take a message. */
class LegRefused extends Error {
  constructor(readonly code: string, readonly detail: string, readonly node: string, readonly permanent: boolean) {
    super(code)
  }
}

/** A problem's code at the node where it arose (CODE@node): what the consumer sees as lastError. */
const codeAt = (e: unknown, node: string): string => {
  if (e instanceof LegRefused) return `${e.code}@${e.node}`
  if (isProblem(e)) return `${e.code}@${typeof e.extra?.hop === 'string' ? e.extra.hop : node}`
  return `INTERNAL@${node}`
}

/**
 * The origin hook as a preHandler of POST /v1/applications, callback style on purpose: an
 * async preHandler that answered used to `return reply`, but a reply is a thenable, and its
 * promise could settle before the audit onSend had written it, so Fastify went on into the
 * route, which answered a second time (ERR_HTTP_HEADERS_SENT, found by bench:tiers). Here
 * `done` is not called when the hook answered, which stops the chain for good.
 */
export const asPreHandler = (hook: (request: FastifyRequest, reply: FastifyReply) => Promise<boolean>) =>
  (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    hook(request, reply).then((answered) => { if (!answered) done() }, (e: Error) => done(e))
  }

export class ApplicationMessages {
  private readonly self: TopologyNode
  private pair?: QueuePair<{ id: string }, void, string>
  private sweeper?: NodeJS.Timeout
  private closing?: Promise<void>

  constructor(private readonly d: ApplicationMessagesDeps) {
    this.self = d.topology.self
  }

  // ---- the policy side: a decision at the owner writes its message in the same transaction ----

  readonly outbox: ApplicationOutbox = {
    decided: async (c: PoolClient, a: store.Application, grant: Grant | null) => {
      if (!a.originNode) return
      const m = this.message(a.id, 'decision', a.resource, a.originNode, {
        to: a.originNode,
        decision: {
          status: a.status === 'approved' ? 'approved' : 'rejected',
          reason: a.decisionReason,
          decidedAt: a.decidedAt,
          decidedBy: a.decidedBy,
          grantId: grant?.id ?? null,
          granted: grant ? { items: grant.items, validFrom: grant.validFrom.toISOString(), validTo: grant.validTo.toISOString(), dailyQuota: grant.dailyQuota } : null,
        },
      })
      await this.write(c, m, { sub: a.decidedBy ?? `node:${this.self.id}`, dept: a.providerDepartment ?? a.consumerDepartment, region: this.self.region, purpose: null, case: null })
    },
    flush: (applicationId: string) => void this.enqueue(`${applicationId}.decision`),
  }

  private message(application: string, kind: Kind, resource: string, origin: string, extra: Partial<Message>, suffix?: string): Message {
    return {
      v: 1,
      id: `${application}.${kind}${suffix ? `.${suffix}` : ''}`,
      kind,
      application,
      resource,
      origin,
      from: this.self.id,
      at: new Date().toISOString(),
      ...extra,
    }
  }

  /**
   * A message written by this node, in the caller's transaction. A message id is written once;
   * an `undeliverable` notice may be written again (another attempt failed later), hence its
   * suffix.
   */
  private async write(c: PoolClient | FastifyInstance['db'], m: Message, claims: LinkClaims): Promise<void> {
    await c.query(
      `INSERT INTO application_messages (id, application_id, kind, toward, target, writer, origin_node, body, claims)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING`,
      [m.id, m.application, m.kind, m.to ? 'node' : 'owner', m.to ?? m.resource, this.self.id, m.origin, JSON.stringify(m), claims],
    )
  }

  // ---- origin: POST /v1/applications for a resource held by another node ----

  /** preHandler of POST /v1/applications (plugin.ts), in place of the relay's: true when it answered. */
  readonly originHook = async (request: FastifyRequest, reply: FastifyReply): Promise<boolean> => {
    const { relay, topology, app } = this.d
    if (relay.isInternal(request)) {
      // The owner's in-process call for an application that travelled here: keep its id.
      const id = request.headers['tongban-application-id']
      const origin = request.headers['tongban-application-origin']
      if (typeof id === 'string' && APP_ID.test(id) && typeof origin === 'string' && NODE_ID.test(origin)) request.remoteApplication = { id, originNode: origin }
      return false
    }
    const p = request.principal
    const b = request.body as { resource?: unknown; validFrom?: string; validTo: string } | null
    if (!p || typeof b?.resource !== 'string' || !CODE.test(b.resource)) return false
    const d = relay.decide({ kind: 'applications', code: b.resource }, p.region, 'origin')
    if (d.kind !== 'hop') return false
    request.audit.resource = b.resource
    if (!regionWithin(p.region, topology.self.region)) {
      throw new Problem(403, 'TIERS_CONSUMER_OUTSIDE_NODE', `node ${this.self.id} forwards applications of consumers of region ${topology.self.region} only`)
    }
    // What this node can check; the owner checks the rest (items, purposes, share type).
    const { validFrom, validTo } = checkPeriod(b)
    const body = b as unknown as Record<string, unknown> & { items: string[]; purposes: string[]; basis: string; dailyQuota: number; systemOnly?: boolean }
    const id = store.newApplicationId()
    const m = this.message(id, 'submit', b.resource, this.self.id, { request: body })
    const claims: LinkClaims = { sub: p.system, dept: p.department, region: p.region, purpose: null, case: null, ...(request.audit.operator ? { opr: request.audit.operator } : {}) }
    const { application } = await store.createApplication(app.db, {
      consumerDepartment: p.department,
      consumerSystem: p.system,
      systemOnly: body.systemOnly ?? false,
      resource: b.resource,
      providerDepartment: d.entry?.entry.provider?.code ?? null,
      items: body.items,
      purposes: body.purposes,
      basis: body.basis,
      validFrom,
      validTo,
      dailyQuota: body.dailyQuota,
      dueAt: null,
    }, { id, ownerNode: d.entry?.node ?? null, delivery: 'forwarding', inTx: (c) => this.write(c, m, claims) })
    await this.enqueue(m.id)
    request.log.info({ application: id, message: m.id, hop: d.hop.id }, 'application for a resource held elsewhere: queued')
    reply.code(202)
    reply.send(application)
    return true
  }

  // ---- sending: one BullMQ job per message, until the next hop takes it ----

  /** Adds the job of a queued message unless it is already waiting, delayed or running. */
  private async enqueue(id: string): Promise<void> {
    if (!this.pair || this.closing) return // the sweeper queues it at start
    try {
      const jobId = `msg-${id}`
      const job = await this.pair.queue.getJob(jobId)
      if (job) {
        const state = await job.getState()
        if (state !== 'completed' && state !== 'failed' && state !== 'unknown') return
        await job.remove()
      }
      await this.pair.queue.add('send', { id }, { jobId })
    } catch (err) {
      // The row is in PostgreSQL: the sweeper queues it when Redis is back.
      this.d.app.log.warn({ err: { message: (err as Error).message }, message: id }, 'application message: could not queue now')
    }
  }

  /** Queues every queued message older than `minAgeMs` (after a restart, a Redis outage, a flush). */
  private async sweep(minAgeMs = 10_000): Promise<void> {
    if (this.closing) return
    try {
      const { rows } = await this.d.app.db.query(
        `SELECT id FROM application_messages WHERE state = 'queued' AND updated_at <= now() - $1::int * interval '1 millisecond' ORDER BY updated_at LIMIT 1000`,
        [minAgeMs],
      )
      for (const r of rows) await this.enqueue(r.id)
    } catch (err) {
      this.d.app.log.warn({ err: { message: (err as Error).message } }, 'application messages: sweep failed')
    }
  }

  /** Where a message goes next from here: null when this node is its destination. */
  private nextHop(r: Pick<Row, 'toward' | 'target' | 'received_from'>, consumerRegion: string): TopologyNode | null {
    const { topology, relay } = this.d
    const fromParent = r.received_from !== null && r.received_from === topology.parent?.id
    if (r.toward === 'owner') {
      const d = relay.decide({ kind: 'applications', code: r.target }, consumerRegion, r.received_from === null ? 'origin' : fromParent ? 'parent' : 'child')
      if (d.kind === 'local') return null
      if (d.kind === 'none') throw new Problem(404, 'RESOURCE_NOT_FOUND', `no node at or below node ${this.self.id} holds resource ${r.target}`)
      return d.hop
    }
    if (r.target === this.self.id) return null
    const child = topology.childToward(r.target)
    if (child) return child
    if (topology.parent && !fromParent) return topology.parent
    throw new Problem(404, 'TIERS_NODE_UNREACHABLE', `node ${r.target} is not reachable from node ${this.self.id}`)
  }

  private async send(id: string, attemptsMade: number, attempts: number): Promise<void> {
    const { app, client, signer } = this.d
    const { rows } = await app.db.query('SELECT * FROM application_messages WHERE id = $1', [id])
    const r = rows[0] as Row | undefined
    if (!r || r.state !== 'queued') return
    const final = attemptsMade + 1 >= attempts
    let hop: TopologyNode | null = null
    try {
      const m = JSON.parse(r.body) as Message
      hop = this.nextHop(r, this.consumerRegionOf(r, m))
      if (!hop) throw new Problem(500, 'INTERNAL', 'a message for this node was queued to be sent')
      const chain = r.chain
        ? [...split(r.chain), signer.hop(hop.id, id, split(r.chain).at(-1)!)]
        : [signer.origin(hop.id, id, { ...r.claims!, tgt: tgtOf(r.kind), bd: digest(r.body) })]
      const res = await client.send(hop, {
        method: 'POST',
        path: MESSAGES_PATH,
        headers: { 'tongban-request-id': id, [ASSERTION_HEADER]: chain.join(', ') },
        body: r.body,
        timeoutMs: app.config.tiers.hopTimeoutMs,
        // Background traffic: its retries are BullMQ's, it does not count against the query guard.
        guarded: false,
      })
      if (res.status >= 200 && res.status < 300) {
        await app.db.query(`UPDATE application_messages SET state = 'sent', next_hop = $2, attempts = attempts + 1, last_error = NULL, updated_at = now() WHERE id = $1 AND state = 'queued'`, [id, hop.id])
        if (r.kind === 'submit' && !r.received_from) await app.db.query('UPDATE applications SET delivery_at = now() WHERE id = $1', [r.application_id])
        app.log.info({ message: id, kind: r.kind, hop: hop.id }, 'application message: handed to the next hop')
        return
      }
      let code = `HTTP_${res.status}`
      let detail = `node ${hop.id} answered HTTP ${res.status}`
      let at = hop.id
      try {
        const p = JSON.parse(res.body) as { code?: unknown; detail?: unknown; hop?: unknown }
        if (typeof p.code === 'string') code = p.code
        if (typeof p.detail === 'string') detail = p.detail
        if (typeof p.hop === 'string') at = p.hop
      } catch {
        /* not JSON: the status says enough */
      }
      // A refusal of the message itself will not change by retrying (a forged chain, no route);
      // a busy or failing node, a replay check without Redis, a timeout will.
      const permanent = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429
      throw new LegRefused(code, detail, at, permanent)
    } catch (e) {
      // No route from here (404) will not change by retrying either; hop failures (HOP_*) will.
      const permanent = e instanceof LegRefused ? e.permanent : isProblem(e) && e.status === 404
      const code = codeAt(e, hop?.id ?? this.self.id)
      const gaveUp = permanent || final
      await app.db.query(
        `UPDATE application_messages SET attempts = attempts + 1, last_error = $2, next_hop = coalesce($3, next_hop), state = CASE WHEN $4 THEN 'failed' ELSE state END, updated_at = now()
         WHERE id = $1 AND state = 'queued'`,
        [id, code, hop?.id ?? null, gaveUp],
      )
      app.log.warn({ message: id, kind: r.kind, hop: hop?.id ?? null, code, attempt: attemptsMade + 1, gaveUp }, gaveUp ? 'application message: given up' : 'application message: failed, will retry')
      if (gaveUp) {
        await this.gaveUp(r, code, e instanceof LegRefused ? e.detail : isProblem(e) ? e.detail ?? e.message : 'unexpected error')
        throw new UnrecoverableError(code)
      }
      throw new Error(code)
    }
  }

  /** The consumer's region, for routing a submit as the relay routes queries (remote catalogue preference). */
  private consumerRegionOf(r: Row, m: Message): string {
    if (r.claims?.region) return r.claims.region
    try {
      const first = split(r.chain ?? '')[0]
      const region = first ? (JSON.parse(Buffer.from(first.split('.')[1], 'base64url').toString('utf8')) as { region?: unknown }).region : undefined
      if (typeof region === 'string') return region
    } catch {
      /* fall through */
    }
    return m.origin
  }

  /**
   * A message this node could not pass on: the consumer must learn it, not lose it. At the
   * origin the application shows delivery `failed`; a hop in the middle sends an
   * `undeliverable` notice back to the origin. Operators re-queue (POST /v1/tiers/applications/{id}/requeue).
   */
  private async gaveUp(r: Row, code: string, detail: string): Promise<void> {
    const { app } = this.d
    if (r.kind === 'submit' && !r.received_from) {
      await store.inTransaction(app.db, async (c) => {
        const { rowCount } = await c.query(`UPDATE applications SET delivery = 'failed', delivery_error = $2, delivery_at = now() WHERE id = $1 AND delivery = 'forwarding'`, [r.application_id, code])
        if (rowCount) await store.event(c, r.application_id, `node:${this.self.id}`, 'delivery-failed', { code })
      })
      return
    }
    if (r.kind === 'submit' || r.kind === 'undeliverable') {
      const m = JSON.parse(r.body) as Message
      if (r.kind === 'undeliverable' || m.origin === this.self.id) return
      const notice = this.message(r.application_id, 'undeliverable', m.resource, m.origin, { to: m.origin, problem: { code, detail: detail.slice(0, 500), node: this.self.id } }, Date.now().toString(36))
      const dept = this.consumerDeptOf(r)
      await this.write(app.db, notice, { sub: `node:${this.self.id}`, dept, region: this.self.region, purpose: null, case: null })
      await this.enqueue(notice.id)
    }
  }

  private consumerDeptOf(r: Row): string {
    try {
      const first = split(r.chain ?? '')[0]
      const dept = (JSON.parse(Buffer.from(first.split('.')[1], 'base64url').toString('utf8')) as { dept?: unknown }).dept
      if (typeof dept === 'string') return dept
    } catch {
      /* fall through */
    }
    return `node:${this.self.id}`
  }

  // ---- receiving: POST /v1/tiers/applications/messages on the node listener ----

  async receive(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const { topology, verifier, relay } = this.d
    let sealHere = true
    try {
      const peer = peerNodeOf(request)
      if (!topology.isNeighbour(peer)) {
        throw new Problem(403, 'NODE_NOT_NEIGHBOUR', `node ${peer} is not a neighbour of node ${this.self.id}: messages pass parent and children only`)
      }
      const m = request.body as Message
      request.audit.resource = m.resource
      request.audit.operation = `application.${m.kind}`
      if (m.id !== request.id || !m.id.startsWith(`${m.application}.${m.kind}`)) {
        throw new Problem(400, 'TIERS_MESSAGE_INVALID', 'the request id must be the message id, which names the application and the kind')
      }
      const raw = request.rawBody ?? Buffer.alloc(0)
      const header = request.headers[ASSERTION_HEADER]
      const v = verifier.verify(Array.isArray(header) ? header.join(', ') : header, {
        self: this.self.id,
        peer,
        rid: request.id,
        tgt: tgtOf(m.kind),
        bodyDigest: digest(raw),
        storedLinksMaxAgeS: MAX_AGE_S,
      })
      const c = v.consumer
      if (c.iss !== m.from || (m.kind === 'submit' && m.origin !== m.from)) {
        throw new Problem(401, 'NODE_ASSERTION_INVALID', 'node assertion: link 0 is not signed by the node that wrote the message')
      }
      request.principal = { system: c.sub, department: c.dept, region: c.region, tier: tierOf(c.region), roles: m.kind === 'submit' ? ['consumer'] : ['provider'] }
      await relay.noReplay(v.jti, v.exp)

      const row = {
        toward: (m.kind === 'submit' ? 'owner' : 'node') as Row['toward'],
        target: m.kind === 'submit' ? m.resource : m.to ?? '',
        received_from: peer,
      }
      if (row.toward === 'node' && !m.to) throw new Problem(400, 'TIERS_MESSAGE_INVALID', `a ${m.kind} message names the node it goes to`)
      const next = this.nextHop(row, c.region)
      if (next) {
        const state = await this.storeForward(m, raw.toString('utf8'), row, peer, split(Array.isArray(header) ? header.join(',') : header).join(', '))
        return relay.sealAndSend(request, reply, 202, 'application/json', JSON.stringify({ message: m.id, state }), [])
      }
      if (m.kind === 'submit') {
        sealHere = false // the owner's own route seals its record
        return await this.acceptAtOwner(request, reply, m, c)
      }
      const state = await this.applyAtOrigin(m)
      return relay.sealAndSend(request, reply, 200, 'application/json', JSON.stringify({ message: m.id, state }), [])
    } catch (e) {
      let p: Problem
      if (isProblem(e)) p = e
      else if ((e as { validation?: unknown }).validation) p = new Problem(400, 'TIERS_MESSAGE_INVALID', 'the message does not match its schema')
      else {
        request.log.error({ err: e }, 'application message failed')
        p = new Problem(500, 'INTERNAL', 'an unexpected error occurred; it has been logged')
      }
      request.audit.reason = p.code
      const body = JSON.stringify(problemBody(request, p))
      if (!sealHere) {
        reply.code(p.status).type('application/problem+json')
        return reply.send(body)
      }
      return relay.sealAndSend(request, reply, p.status, 'application/problem+json', body, [])
    }
  }

  /** A hop in the middle: keep the exact body and chain, queue for the next hop. Idempotent by message id. */
  private async storeForward(m: Message, body: string, row: { toward: Row['toward']; target: string }, peer: string, chain: string): Promise<'queued' | 'duplicate'> {
    // A redelivery of a message this hop had given up on is a new try; of one it holds or has
    // passed on, a duplicate.
    const { rows } = await this.d.app.db.query(
      `INSERT INTO application_messages (id, application_id, kind, toward, target, writer, origin_node, received_from, body, chain)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
       ON CONFLICT (id) DO UPDATE SET state = 'queued', attempts = 0, last_error = NULL, received_from = EXCLUDED.received_from,
         body = EXCLUDED.body, chain = EXCLUDED.chain, updated_at = now()
       WHERE application_messages.state = 'failed'
       RETURNING id`,
      [m.id, m.application, m.kind, row.toward, row.target, m.from, m.origin, peer, body, chain],
    )
    if (!rows[0]) return 'duplicate'
    await this.enqueue(m.id)
    return 'queued'
  }

  /** The owner: its own POST /v1/applications for the consumer, with the same id. */
  private async acceptAtOwner(request: FastifyRequest, reply: FastifyReply, m: Message, c: ConsumerClaims): Promise<FastifyReply> {
    const { relay, app } = this.d
    const res = await relay.runOwnRoute('/v1/applications', request.id, c, Buffer.from(JSON.stringify(m.request ?? {})), {
      'tongban-application-id': m.application,
      'tongban-application-origin': m.origin,
    })
    if (res.statusCode >= 500) {
      // Nothing decided: the sender tries again.
      throw new Problem(503, 'TIERS_OWNER_UNAVAILABLE', `node ${this.self.id} could not record the application now (HTTP ${res.statusCode})`, { retryAfter: 5 })
    }
    const owner = { sub: `node:${this.self.id}`, region: this.self.region, purpose: null, case: null }
    let state: string
    if (res.statusCode < 300) {
      const a = res.json() as store.Application
      const notice = this.message(m.application, 'accepted', m.resource, m.origin, {
        to: m.origin,
        accepted: { providerDepartment: a.providerDepartment, dueAt: a.dueAt, createdAt: a.createdAt },
      })
      await this.write(app.db, notice, { ...owner, dept: a.providerDepartment ?? c.dept })
      await this.enqueue(notice.id)
      state = res.statusCode === 201 ? 'created' : 'duplicate'
    } else {
      // The owner's rules refuse it (unknown item, not shared, retired…): a final answer, sent back.
      const p = res.json() as { code?: string; detail?: string }
      const notice = this.message(m.application, 'refused', m.resource, m.origin, {
        to: m.origin,
        problem: { code: p.code ?? `HTTP_${res.statusCode}`, detail: String(p.detail ?? '').slice(0, 500), node: this.self.id },
      })
      await this.write(app.db, notice, { ...owner, dept: c.dept })
      await this.enqueue(notice.id)
      state = 'refused'
    }
    const evidence = res.headers['tongban-evidence']
    if (typeof evidence === 'string') reply.header('tongban-evidence', evidence)
    reply.code(200).type('application/json')
    return reply.send(JSON.stringify({ message: m.id, state }))
  }

  /** The consumer's node: the owner's answer updates the local copy and its history. Idempotent. */
  private async applyAtOrigin(m: Message): Promise<'applied' | 'duplicate'> {
    const { app } = this.d
    return store.inTransaction(app.db, async (c) => {
      const { rows } = await c.query('SELECT owner_node, delivery, resource FROM applications WHERE id = $1 FOR UPDATE', [m.application])
      const a = rows[0]
      if (!a || !a.delivery || a.resource !== m.resource) throw new Problem(404, 'APPLICATION_NOT_FOUND', `node ${this.self.id} holds no application ${m.application} sent from here for resource ${m.resource}`)
      // Only the node that holds the resource answers for it; the first answer names it.
      if (m.kind !== 'undeliverable' && a.owner_node && a.owner_node !== m.from) {
        throw new Problem(403, 'APPLICATION_NOT_OWNER', `node ${m.from} does not hold resource ${m.resource}; node ${a.owner_node} does`)
      }
      const actor = `node:${m.from}`
      let changed = 0
      if (m.kind === 'accepted') {
        const x = m.accepted ?? { providerDepartment: null, dueAt: null, createdAt: m.at }
        changed = (await c.query(
          `UPDATE applications SET delivery = 'delivered', delivery_error = NULL, delivery_at = now(), owner_node = $2,
             provider_department = coalesce($3, provider_department), due_at = coalesce($4::timestamptz, due_at)
           WHERE id = $1 AND delivery IN ('forwarding', 'failed')`,
          [m.application, m.from, x.providerDepartment, x.dueAt],
        )).rowCount ?? 0
        if (changed) await store.event(c, m.application, actor, 'delivered', { owner: m.from, dueAt: x.dueAt })
      } else if (m.kind === 'decision' && m.decision) {
        const x = m.decision
        changed = (await c.query(
          `UPDATE applications SET status = $2, decided_at = $3, decided_by = $4, decision_reason = $5, remote_grant_id = $6, granted = $7,
             delivery = 'delivered', delivery_error = NULL, delivery_at = now(), owner_node = $8
           WHERE id = $1 AND status = 'pending'`,
          [m.application, x.status, x.decidedAt, x.decidedBy, x.reason, x.grantId, x.granted, m.from],
        )).rowCount ?? 0
        if (changed) {
          await store.event(c, m.application, x.decidedBy ?? actor, x.status, {
            node: m.from, reason: x.reason, ...(x.grantId ? { grant: x.grantId, ...x.granted } : {}),
          })
        }
      } else if (m.kind === 'refused' && m.problem) {
        changed = (await c.query(
          `UPDATE applications SET status = 'rejected', decided_at = now(), decided_by = $2, decision_reason = $3,
             delivery = 'refused', delivery_error = $4, delivery_at = now(), owner_node = $5
           WHERE id = $1 AND status = 'pending'`,
          [m.application, actor, m.problem.detail || m.problem.code, `${m.problem.code}@${m.problem.node}`, m.from],
        )).rowCount ?? 0
        if (changed) await store.event(c, m.application, actor, 'refused', { code: m.problem.code, node: m.problem.node, detail: m.problem.detail })
      } else if (m.kind === 'undeliverable' && m.problem) {
        changed = (await c.query(
          `UPDATE applications SET delivery = 'failed', delivery_error = $2, delivery_at = now() WHERE id = $1 AND delivery = 'forwarding'`,
          [m.application, `${m.problem.code}@${m.problem.node}`],
        )).rowCount ?? 0
        if (changed) await store.event(c, m.application, actor, 'delivery-failed', { code: m.problem.code, node: m.problem.node })
      } else {
        throw new Problem(400, 'TIERS_MESSAGE_INVALID', `a ${m.kind} message without its content`)
      }
      return changed ? 'applied' : 'duplicate'
    })
  }

  // ---- operators: re-queue what this node gave up on ----

  async requeue(applicationId: string): Promise<string[]> {
    const { app } = this.d
    const ids = await store.inTransaction(app.db, async (c) => {
      const { rows: apps } = await c.query(`UPDATE applications SET delivery = 'forwarding', delivery_error = NULL, delivery_at = now() WHERE id = $1 AND delivery = 'failed' RETURNING id`, [applicationId])
      // At the origin a failed delivery may have failed further on: the submit goes again.
      const { rows } = await c.query(
        `UPDATE application_messages SET state = 'queued', attempts = 0, last_error = NULL, updated_at = now()
         WHERE application_id = $1 AND (state = 'failed' OR ($2 AND kind = 'submit' AND received_from IS NULL)) RETURNING id`,
        [applicationId, apps.length > 0],
      )
      if (apps.length) await store.event(c, applicationId, `node:${this.self.id}`, 'requeued', { messages: rows.map((r) => r.id) })
      return rows.map((r) => r.id as string)
    })
    for (const id of ids) await this.enqueue(id)
    return ids
  }

  // ---- wiring ----

  register(): void {
    const { app } = this.d
    const { config } = app
    app.post(MESSAGES_PATH, { schema: { hide: true, body: messageSchema }, bodyLimit: config.http.bodyLimit, attachValidation: true }, async (request, reply) => {
      if (request.validationError) {
        request.audit.reason = 'TIERS_MESSAGE_INVALID'
        const p = new Problem(400, 'TIERS_MESSAGE_INVALID', `the message does not match its schema: ${request.validationError.message}`)
        return this.d.relay.sealAndSend(request, reply, 400, 'application/problem+json', JSON.stringify(problemBody(request, p)), [])
      }
      return this.receive(request, reply)
    })

    app.post<{ Params: { id: string } }>('/v1/tiers/applications/:id/requeue', {
      onRequest: [app.authenticate],
      config: { audit: { operation: 'application.requeue' } },
      schema: {
        tags: ['tiers'],
        summary: "Re-queue an application's messages this node gave up on (delivery failed); the operator's or the applying department's call",
        security: [{ bearer: [] }],
        params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: APP_ID.source } } },
        response: {
          200: { type: 'object', properties: { application: { type: 'string' }, requeued: { type: 'array', items: { type: 'string' } } } },
          ...problemResponses(401, 403, 404, 409),
        },
      },
    }, async (request) => {
      const p = request.principal!
      const { rows } = await app.db.query('SELECT consumer_department, resource FROM applications WHERE id = $1', [request.params.id])
      const known = rows[0] ?? (await app.db.query('SELECT 1 FROM application_messages WHERE application_id = $1 LIMIT 1', [request.params.id])).rows[0]
      // An operator of this node, or the applying department (others learn nothing of it).
      const mine = p.roles.includes('consumer') && rows[0]?.consumer_department === p.department
      if (!(p.roles.includes('operator') ? known : mine)) throw new Problem(404, 'APPLICATION_NOT_FOUND', 'no such application')
      if (rows[0]) request.audit.resource = rows[0].resource
      const requeued = await this.requeue(request.params.id)
      if (requeued.length === 0) throw new Problem(409, 'TIERS_NOTHING_TO_REQUEUE', 'no message of this application has failed at this node')
      return { application: request.params.id, requeued }
    })

    app.addHook('onReady', async () => this.start())
    app.addHook('onClose', async () => this.close())
  }

  private start(): void {
    const { app } = this.d
    const { config } = app
    const prefix = `${config.redis.prefix}bull`
    this.pair = createQueuePair<{ id: string }, void, string>({
      name: MESSAGES_QUEUE,
      redisUrl: config.redis.url,
      prefix: `${config.redis.prefix}bull`,
      clientName: 'messages',
      label: 'application messages',
      log: app.log,
      processor: async (job) => this.send(String(job.data?.id), job.attemptsMade, job.opts.attempts ?? 1),
      concurrency: 4,
      defaultJobOptions: {
        attempts: config.tiers.messageAttempts,
        backoff: { type: 'exponential', delay: config.tiers.messageBackoffMs },
        removeOnComplete: { count: 1000 },
        removeOnFail: { count: 10_000 },
      },
      closeTimeoutMs: 5000,
    })
    // Rows written while Redis was away, or before a restart, are queued here.
    void this.sweep(0)
    this.sweeper = setInterval(() => void this.sweep(), SWEEP_MS)
    this.sweeper.unref()
  }

  private close(): Promise<void> {
    return (this.closing ??= (async () => {
      clearInterval(this.sweeper)
      await this.pair?.close()
    })())
  }
}
