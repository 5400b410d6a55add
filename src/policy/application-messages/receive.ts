// Receiving: POST /v1/tiers/applications/messages on the node listener. A neighbour hands a
// message over; this hop verifies its chain, audits its leg, and applies it here: forwards
// it (stored and queued for the next hop), creates the application at the owner, or
// records the owner's answer at the origin; a dispute message goes to the disputes' side
// (src/disputes/tiers.ts) at either end.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Problem, isProblem } from '../../problems/problem.js'
import { codeFrom } from '../../problems/codes.js'
import { problemBody } from '../../problems/plugin.js'
import { digest } from '../../evidence/evidence.js'
import { tierOf } from '../../auth/principal.js'
import type * as store from '../applications.js'
import { ASSERTION_HEADER, type ConsumerClaims } from '../../tiers/assertion.js'
import { peerNodeOf } from '../../tiers/listener.js'
import { MAX_AGE_S, MESSAGES_PATH, messageSchema, newMessage, operationOf, split, tgtOf, threadOf, topicOf, towardOwner, writeMessage, type Message, type MessagesContext, type Row } from './message.js'
import { nextHop } from './routing.js'
import { applyAtOrigin } from './apply-at-origin.js'
import type { Outbox } from './outbox.js'

export function registerReceiveRoute(x: MessagesContext, outbox: Outbox): void {
  const { app, relay } = x
  app.post(MESSAGES_PATH, { schema: { hide: true, body: messageSchema }, bodyLimit: app.config.http.bodyLimit, attachValidation: true }, async (request, reply) => {
    if (request.validationError) {
      request.audit.reason = 'TIERS_MESSAGE_INVALID'
      const p = new Problem(400, 'TIERS_MESSAGE_INVALID', `the message does not match its schema: ${request.validationError.message}`)
      return relay.sealAndSend(request, reply, 400, 'application/problem+json', JSON.stringify(problemBody(request, p)), [])
    }
    return receive(x, outbox, request, reply)
  })
}

/** Verifies a message handed over by a neighbour and applies it at this hop; every answer is a sealed record or a problem. */
export async function receive(x: MessagesContext, outbox: Outbox, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { relay } = x
  // At the owner its own route seals the record.
  let sealHere = true
  try {
    const { m, claims, peer, raw, chain } = await verified(x, request)
    const row = {
      toward: (towardOwner(m.kind) ? 'owner' : 'node') as Row['toward'],
      target: towardOwner(m.kind) ? m.resource : m.to ?? '',
      received_from: peer,
    }
    if (row.toward === 'node' && !m.to) throw new Problem(400, 'TIERS_MESSAGE_INVALID', `a ${m.kind} message names the node it goes to`)
    const next = nextHop(x, row, claims.region)
    if (next) {
      const state = await storeForward(x, outbox, m, raw.toString('utf8'), row, peer, chain)
      return relay.sealAndSend(request, reply, 202, 'application/json', JSON.stringify({ message: m.id, state }), [])
    }
    if (m.kind === 'submit') {
      sealHere = false
      return await acceptAtOwner(x, outbox, request, reply, m, claims)
    }
    const state = await (topicOf(m.kind) === 'dispute' ? atDisputeDestination(x, outbox, m, claims) : applyAtOrigin(x, m))
    return relay.sealAndSend(request, reply, 200, 'application/json', JSON.stringify({ message: m.id, state }), [])
  } catch (e) {
    let p: Problem
    if (isProblem(e)) p = e
    else if ((e as { validation?: unknown }).validation) p = new Problem(400, 'TIERS_MESSAGE_INVALID', 'the message does not match its schema')
    else {
      request.log.error({ err: e }, 'application message failed')
      p = new Problem(500, 'INTERNAL', 'an unexpected error occurred; it has been logged')
    }
    return relay.refuse(request, reply, p, sealHere)
  }
}

/** The message, its neighbour and its verified chain (no replay); sets the request's principal and audit fields. */
async function verified(x: MessagesContext, request: FastifyRequest) {
  const { topology, verifier, relay, self } = x
  const peer = peerNodeOf(request)
  if (!topology.isNeighbour(peer)) {
    throw new Problem(403, 'NODE_NOT_NEIGHBOUR', `node ${peer} is not a neighbour of node ${self.id}: messages pass parent and children only`)
  }
  const m = request.body as Message
  request.audit.resource = m.resource
  request.audit.operation = operationOf(m.kind)
  const named = `${threadOf(m)}.${m.kind}`
  if (m.id !== request.id || (m.id !== named && !m.id.startsWith(`${named}.`))) {
    throw new Problem(400, 'TIERS_MESSAGE_INVALID', 'the request id must be the message id, which names the application (or dispute) and the kind')
  }
  const raw = request.rawBody ?? Buffer.alloc(0)
  const header = request.headers[ASSERTION_HEADER]
  const v = verifier.verify(Array.isArray(header) ? header.join(', ') : header, {
    self: self.id,
    peer,
    rid: request.id,
    tgt: tgtOf(m.kind),
    bodyDigest: digest(raw),
    storedLinksMaxAgeS: MAX_AGE_S,
  })
  const c = v.consumer
  if (c.iss !== m.from || (towardOwner(m.kind) && m.origin !== m.from)) {
    throw new Problem(401, 'NODE_ASSERTION_INVALID', 'node assertion: link 0 is not signed by the node that wrote the message')
  }
  request.principal = { system: c.sub, department: c.dept, region: c.region, tier: tierOf(c.region), roles: towardOwner(m.kind) ? ['consumer'] : ['provider'] }
  await relay.noReplay(v.jti, v.exp, v.iat)
  const chain = split(Array.isArray(header) ? header.join(',') : header).join(', ')
  return { m, claims: c, peer, raw, chain }
}

/** A hop in the middle: keep the exact body and chain, queue for the next hop. Idempotent by message id. */
async function storeForward(x: MessagesContext, outbox: Outbox, m: Message, body: string, row: { toward: Row['toward']; target: string }, peer: string, chain: string): Promise<'queued' | 'duplicate'> {
  // A redelivery of a message this hop had given up on is a new try; of one it holds or has
  // passed on, a duplicate.
  const { rows } = await x.app.db.query(
    `INSERT INTO application_messages (id, application_id, kind, toward, target, writer, origin_node, received_from, body, chain)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (id) DO UPDATE SET state = 'queued', attempts = 0, last_error = NULL, received_from = EXCLUDED.received_from,
       body = EXCLUDED.body, chain = EXCLUDED.chain, updated_at = now()
     WHERE application_messages.state = 'failed'
     RETURNING id`,
    [m.id, threadOf(m), m.kind, row.toward, row.target, m.from, m.origin, peer, body, chain],
  )
  if (!rows[0]) return 'duplicate'
  await outbox.enqueue(m.id)
  return 'queued'
}

/** The owner: its own POST /v1/applications for the consumer, with the same id; the answer goes back as a message. */
async function acceptAtOwner(x: MessagesContext, outbox: Outbox, request: FastifyRequest, reply: FastifyReply, m: Message, c: ConsumerClaims): Promise<FastifyReply> {
  const { relay, app, self } = x
  const res = await relay.runOwnRoute('/v1/applications', request.id, c, Buffer.from(JSON.stringify(m.request ?? {})), {
    'tongban-application-id': threadOf(m),
    'tongban-application-origin': m.origin,
  })
  if (res.statusCode >= 500) {
    // Nothing decided: the sender tries again.
    throw new Problem(503, 'TIERS_OWNER_UNAVAILABLE', `node ${self.id} could not record the application now (HTTP ${res.statusCode})`, { retryAfter: 5 })
  }
  const owner = { sub: `node:${self.id}`, region: self.region, purpose: null, case: null }
  let notice: Message
  let dept: string
  if (res.statusCode < 300) {
    const a = res.json() as store.Application
    notice = newMessage(self.id, threadOf(m), 'accepted', m.resource, m.origin, {
      to: m.origin,
      accepted: { providerDepartment: a.providerDepartment, dueAt: a.dueAt, createdAt: a.createdAt },
    })
    dept = a.providerDepartment ?? c.dept
  } else {
    // The owner's rules refuse it (unknown item, not shared, retired…): a final answer, sent back.
    const p = res.json() as { code?: string; detail?: string }
    notice = newMessage(self.id, threadOf(m), 'refused', m.resource, m.origin, {
      to: m.origin,
      problem: { code: codeFrom(p.code, res.statusCode), detail: String(p.detail ?? '').slice(0, 500), node: self.id },
    })
    dept = c.dept
  }
  await writeMessage(app.db, self.id, notice, { ...owner, dept })
  await outbox.enqueue(notice.id)
  const state = res.statusCode >= 300 ? 'refused' : res.statusCode === 201 ? 'created' : 'duplicate'
  const evidence = res.headers['tongban-evidence']
  if (typeof evidence === 'string') reply.header('tongban-evidence', evidence)
  reply.code(200).type('application/json')
  return reply.send(JSON.stringify({ message: m.id, state }))
}

/** A dispute message at its destination: filed at the owner, or its answer applied at the origin (src/disputes/tiers.ts). */
async function atDisputeDestination(x: MessagesContext, outbox: Outbox, m: Message, c: ConsumerClaims): Promise<string> {
  const h = x.disputes
  // Disputes not running on this node (yet): the sender tries again.
  if (!h) throw new Problem(503, 'TIERS_OWNER_UNAVAILABLE', `node ${x.self.id} cannot take dispute messages now`, { retryAfter: 5 })
  if (m.kind !== 'dispute') return h.atOrigin(m)
  const state = await h.atOwner(m, c)
  await outbox.enqueue(`${threadOf(m)}.${state === 'refused' ? 'dispute-refused' : 'dispute-accepted'}`)
  return state
}
