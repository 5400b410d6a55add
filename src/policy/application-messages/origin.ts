// The origin: POST /v1/applications by a consumer of this node for a resource another node
// holds. Records the application at once (its id, status pending, delivery `forwarding`),
// writes its `submit` message in the same transaction, answers 202; send.ts carries it on.
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Problem } from '../../problems/problem.js'
import * as store from '../applications.js'
import { checkPeriod } from '../routes.js'
import { regionWithin } from '../../tiers/topology.js'
import { APP_ID, CODE, NODE_ID, newMessage, writeMessage, type LinkClaims, type MessagesContext } from './message.js'
import type { Outbox } from './outbox.js'

export type OriginHook = (request: FastifyRequest, reply: FastifyReply) => Promise<boolean>

/**
 * The origin hook as a preHandler of POST /v1/applications, callback style on purpose: an
 * async preHandler that answered used to `return reply`, but a reply is a thenable, and its
 * promise could settle before the audit onSend had written it, so Fastify went on into the
 * route, which answered a second time (ERR_HTTP_HEADERS_SENT, found by bench:tiers). Here
 * `done` is not called when the hook answered, which stops the chain for good.
 */
export const asPreHandler = (hook: OriginHook) =>
  (request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    hook(request, reply).then((answered) => { if (!answered) done() }, (e: Error) => done(e))
  }

/** preHandler of POST /v1/applications (plugin.ts), in place of the relay's: true when it answered. */
export function originHook(x: MessagesContext, outbox: Outbox): OriginHook {
  return async (request, reply) => {
    const { relay, topology, app, self } = x
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
      throw new Problem(403, 'TIERS_CONSUMER_OUTSIDE_NODE', `node ${self.id} forwards applications of consumers of region ${topology.self.region} only`)
    }
    // What this node can check; the owner checks the rest (items, purposes, share type).
    const { validFrom, validTo } = checkPeriod(b)
    const body = b as unknown as Record<string, unknown> & { items: string[]; purposes: string[]; basis: string; dailyQuota: number; systemOnly?: boolean }
    const id = store.newApplicationId()
    const m = newMessage(self.id, id, 'submit', b.resource, self.id, { request: body })
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
    }, { id, ownerNode: d.entry?.node ?? null, delivery: 'forwarding', inTx: (c) => writeMessage(c, self.id, m, claims) })
    await outbox.enqueue(m.id)
    request.log.info({ application: id, message: m.id, hop: d.hop.id }, 'application for a resource held elsewhere: queued')
    reply.code(202)
    reply.send(application)
    return true
  }
}
