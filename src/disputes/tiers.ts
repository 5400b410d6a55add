// Disputes across tiers (docs/disputes.md "Across tiers"): a dispute about an answer relayed
// from the node holding the resource travels there as queued messages, on the applications'
// outbox, queue and node channel (src/policy/application-messages/, docs/tiers.md §7).
//
//   origin (consumer's node)  fileElsewhere: the evidence was checked against this node's own
//                             record (answer.ts); the dispute is recorded with a new id,
//                             delivery `forwarding`, `dispute.filed` sealed here, and the
//                             `dispute` message written in the same transaction; 202.
//   owner                     atOwner: finds its own audit record of that request id received
//                             by the asserted department, files the dispute with the SAME id
//                             (idempotent), its own subject hash, deadline jobs and notices,
//                             and answers `dispute-accepted` (or `dispute-refused` with the problem).
//                             inResolveTx: the resolution goes back as `dispute-resolved`.
//   back at the origin        atOrigin: conditional updates of the copy; the resolution is
//                             sealed here too and the disputing department told.
import type { FastifyInstance } from 'fastify'
import type { PoolClient } from 'pg'
import { Problem } from '../problems/problem.js'
import { codeFrom } from '../problems/codes.js'
import { holdsPersonalNumber } from '../gb/personal-number.js'
import { tierOf, type Principal } from '../auth/principal.js'
import type { AuditRecord } from '../evidence/evidence.js'
import { ulid } from '../exchange/request-id.js'
import { newMessage, problemAt, type ApplicationMessages, type DisputeMessageHandler, type LinkClaims, type Message } from '../policy/application-messages/index.js'
import { REASON_CODES, RESOLUTION_CODES, type Reason, type Resolution } from './codes.js'
import { releasedData } from './answer.js'
import { sealStep } from './history.js'
import type { FileBody } from './routes.js'
import * as store from './store.js'

export interface DisputeTiersDeps {
  dueDate(from: Date): { dueAt: Date }
  /** At the owner, once filed: the deadline jobs and the provider's notice, as for a local dispute. */
  onFiled(d: store.Dispute): Promise<void>
  /** At the origin, once the resolution arrived: the disputing department is told. */
  onResolvedHere(d: store.Dispute): Promise<void>
}

const ITEM = /^[A-Za-z][A-Za-z0-9]{0,63}$/

const REQUEST_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/

/** The filing as the owner must find it: the same rules as the route's body schema. */
function validFiling(f: Message['filing']): f is NonNullable<Message['filing']> & { reason: Reason } {
  return !!f && typeof f.requestId === 'string' && REQUEST_ID.test(f.requestId)
    && Array.isArray(f.items) && f.items.length >= 1 && f.items.length <= 100 && new Set(f.items).size === f.items.length
    && f.items.every((i) => typeof i === 'string' && ITEM.test(i))
    && (REASON_CODES as string[]).includes(f.reason)
    && typeof f.description === 'string' && f.description.length >= 1 && f.description.length <= 2000
}

function validResolution(r: Message['resolution']): r is NonNullable<Message['resolution']> & { resolution: Resolution } {
  return !!r && (RESOLUTION_CODES as string[]).includes(r.resolution) && typeof r.note === 'string' && r.note.length <= 2000
    && (r.effectiveFrom === null || (typeof r.effectiveFrom === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(r.effectiveFrom)))
    && typeof r.resolvedAt === 'string' && Number.isFinite(Date.parse(r.resolvedAt)) && typeof r.resolvedBy === 'string' && r.resolvedBy.length <= 200
}

export function disputeTiers(app: FastifyInstance, messages: ApplicationMessages | null, deps: DisputeTiersDeps) {
  /** The owner's messages are signed for the provider's department (or the node itself). */
  const ownerClaims = (sub: string, dept: string): LinkClaims => ({ sub, dept, region: messages!.region, purpose: null, case: null })

  /** At the origin: the resource is held at another node; the dispute goes there. */
  async function fileElsewhere(p: Principal, b: FileBody, record: AuditRecord): Promise<store.Dispute> {
    const resource = record.resource!
    if (!messages) throw new Problem(409, 'DISPUTE_HELD_ELSEWHERE', `resource ${resource} is not held at this node, which is in no tier tree to send the dispute on`)
    const owner = messages.ownerOf(resource, p.region)
    if (!owner) throw new Problem(409, 'DISPUTE_HELD_ELSEWHERE', `resource ${resource} is not held at this node and no route leads to a node holding it`)
    const self = messages.nodeId
    const id = ulid()
    const m = newMessage(self, id, 'dispute', resource, self, { filing: { requestId: record.requestId, items: b.items, reason: b.reason, description: b.description } })
    const claims: LinkClaims = { sub: p.system, dept: p.department, region: p.region, purpose: null, case: null }
    const filed = await store.createDispute(app.db, {
      id,
      requestId: record.requestId,
      answerNode: record.node,
      answerTime: record.time,
      resource,
      operation: record.operation,
      subject: record.subject ?? null,
      consumerDepartment: p.department,
      consumerSystem: p.system,
      providerDepartment: owner.providerDepartment,
      items: b.items,
      reason: b.reason,
      description: b.description,
      dueAt: null,
      filedBy: p.system,
      forwarding: { ownerNode: owner.ownerNode },
    }, async (c, d) => {
      await sealStep(app, c, d, { action: 'filed', actor: p.system, principal: p, detail: { items: d.items, reason: d.reason, dueAt: null, forwardedVia: owner.hop } })
      await messages.write(c, m, claims)
    })
    if (!filed) throw new Problem(409, 'DISPUTE_DUPLICATE', 'this answer is already disputed by your department')
    await messages.flush(m.id)
    app.log.info({ dispute: id, message: m.id, hop: owner.hop }, 'dispute about a resource held elsewhere: queued')
    return filed
  }

  /** At the owner, in the resolution's transaction: the resolution of a dispute that came from another node goes back. */
  async function inResolveTx(c: PoolClient, d: store.Dispute): Promise<void> {
    if (!d.originNode || !messages) return
    const m = newMessage(messages.nodeId, d.id, 'dispute-resolved', d.resource, d.originNode, {
      to: d.originNode,
      resolution: { resolution: d.resolution!, note: d.resolutionNote ?? '', effectiveFrom: d.effectiveFrom, resolvedAt: d.resolvedAt!, resolvedBy: d.resolvedBy ?? '' },
    })
    await messages.write(c, m, ownerClaims(d.resolvedBy ?? `node:${messages.nodeId}`, d.providerDepartment ?? d.consumerDepartment))
  }

  const handler: DisputeMessageHandler = {
    async atOwner(m, claims) {
      const self = messages!.nodeId
      const id = m.dispute!
      const f = m.filing
      if (!validFiling(f)) throw new Problem(400, 'TIERS_MESSAGE_INVALID', 'a dispute message without a valid filing (requestId, items, reason, description)')
      const refuse = async (code: string, detail: string) => {
        const notice = newMessage(self, id, 'dispute-refused', m.resource, m.origin, { to: m.origin, problem: { code: codeFrom(code, 409), detail: detail.slice(0, 500), node: self } })
        await messages!.write(app.db, notice, ownerClaims(`node:${self}`, claims.dept))
        app.log.info({ dispute: id, code }, 'dispute from another node: refused')
        return 'refused' as const
      }
      const accepted = (c: PoolClient | FastifyInstance['db'], d: store.Dispute) =>
        messages!.write(c, newMessage(self, id, 'dispute-accepted', m.resource, m.origin, {
          to: m.origin,
          accepted: { providerDepartment: d.providerDepartment, dueAt: d.dueAt, createdAt: d.createdAt },
        }), ownerClaims(`node:${self}`, d.providerDepartment ?? claims.dept))

      const resource = app.catalog.get(m.resource)
      if (!resource) return refuse('RESOURCE_NOT_FOUND', `resource ${m.resource} is not held at node ${self}`)
      // This node's own record of the answer: the relayed query ran here with the same request id, for the consumer's department.
      const { rows } = await app.db.query('SELECT record FROM audit_records WHERE request_id = $1', [f.requestId])
      if (!rows.length) return refuse('DISPUTE_ANSWER_NOT_FOUND', `no answer with request id ${f.requestId} is recorded at node ${self}`)
      const mine = rows.map((r) => r.record as AuditRecord).filter((r) => r.consumer?.department === claims.dept && r.resource === m.resource)
      if (!mine.length) return refuse('DISPUTE_NOT_YOUR_ANSWER', 'only the department that received the answer may dispute it')
      const record = mine.find(releasedData)
      if (!record) return refuse('DISPUTE_NOT_DATA', 'only an answer that released data can be disputed')
      const unknown = f.items.find((i) => !resource.items.some((x) => x.name === i))
      if (unknown) return refuse('DISPUTE_UNKNOWN_ITEM', `resource ${m.resource} has no item ${unknown}`)
      if (holdsPersonalNumber(f.description)) return refuse('DISPUTE_DESCRIPTION_PERSONAL_DATA', 'the description holds a resident id number or a credit code')

      // Redelivered: the same dispute is here already; the answer goes again (its id is written once).
      const again = async (d: store.Dispute | null) => {
        if (!d || d.id !== id || d.consumerDepartment !== claims.dept || d.originNode !== m.origin) return refuse('DISPUTE_DUPLICATE', 'this answer is already disputed by that department')
        await accepted(app.db, d)
        return 'duplicate' as const
      }
      const existing = (await store.getDispute(app.db, id)) ?? (await store.findByAnswer(app.db, f.requestId, claims.dept))
      if (existing) return again(existing)

      const principal: Principal = { system: claims.sub, department: claims.dept, region: claims.region, tier: tierOf(claims.region), roles: ['consumer'] }
      const filed = await store.createDispute(app.db, {
        id,
        requestId: record.requestId,
        answerNode: record.node,
        answerTime: record.time,
        resource: m.resource,
        operation: record.operation,
        subject: record.subject ?? null,
        consumerDepartment: claims.dept,
        consumerSystem: claims.sub,
        providerDepartment: resource.provider.code,
        items: f.items,
        reason: f.reason,
        description: f.description,
        dueAt: deps.dueDate(new Date()).dueAt,
        filedBy: claims.sub,
        originNode: m.origin,
      }, async (c, d) => {
        await sealStep(app, c, d, { action: 'filed', actor: claims.sub, principal, detail: { items: d.items, reason: d.reason, dueAt: d.dueAt, originNode: m.origin } })
        await accepted(c, d)
      })
      // A race with a redelivery: the other one filed it.
      if (!filed) return again((await store.getDispute(app.db, id)) ?? (await store.findByAnswer(app.db, f.requestId, claims.dept)))
      await deps.onFiled(filed)
      return 'created'
    },

    async atOrigin(m) {
      const id = m.dispute!
      let resolved: store.Dispute | null = null
      const outcome = await store.inTransaction(app.db, async (c) => {
        const { rows } = await c.query('SELECT owner_node, delivery, resource FROM disputes WHERE id = $1 FOR UPDATE', [id])
        const d = rows[0]
        if (!d || !d.delivery || d.resource !== m.resource) throw new Problem(404, 'DISPUTE_NOT_FOUND', `node ${messages!.nodeId} sent no dispute ${id} about resource ${m.resource}`)
        // Only the node holding the resource answers for it; the first answer names it.
        if (m.kind !== 'dispute-undeliverable' && d.owner_node && d.owner_node !== m.from) {
          throw new Problem(403, 'DISPUTE_NOT_OWNER', `node ${m.from} does not hold resource ${m.resource}; node ${d.owner_node} does`)
        }
        const problem = problemAt(m.problem)
        switch (m.kind) {
          case 'dispute-accepted': {
            const a = m.accepted
            return store.markDelivered(c, id, { ownerNode: m.from, providerDepartment: typeof a?.providerDepartment === 'string' ? a.providerDepartment : null, dueAt: typeof a?.dueAt === 'string' && Number.isFinite(Date.parse(a.dueAt)) ? a.dueAt : null })
          }
          case 'dispute-refused':
            if (!problem) break
            return store.markRefused(c, id, m.from, problem)
          case 'dispute-undeliverable':
            if (!problem) break
            return store.markUndeliverable(c, id, problem)
          case 'dispute-resolved': {
            const r = m.resolution
            if (!validResolution(r)) break
            resolved = await store.copyResolution(c, id, m.from, { resolution: r.resolution, note: r.note, effectiveFrom: r.effectiveFrom, by: r.resolvedBy, at: r.resolvedAt })
            if (resolved) {
              await sealStep(app, c, resolved, { action: 'resolved', actor: r.resolvedBy, principal: null, detail: { resolution: r.resolution, note: r.note, effectiveFrom: r.effectiveFrom, node: m.from } })
            }
            return !!resolved
          }
        }
        throw new Problem(400, 'TIERS_MESSAGE_INVALID', `a ${m.kind} message without its content`)
      })
      if (resolved) await deps.onResolvedHere(resolved)
      return outcome ? 'applied' : 'duplicate'
    },
  }
  messages?.handleDisputes(handler)

  return { fileElsewhere, inResolveTx, flushResolution: (d: store.Dispute) => (d.originNode && messages ? messages.flush(`${d.id}.dispute-resolved`) : Promise.resolve()) }
}
