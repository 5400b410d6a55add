// The provider's decision on an application for one of its resources: approve (possibly
// narrowed, never widened) or reject with a reason.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Problem } from '../../problems/problem.js'
import { problemResponses } from '../../problems/schema.js'
import type { Principal } from '../../auth/principal.js'
import * as store from '../applications.js'
import { applicationViews, personName } from './views.js'
import { applicationSchema, dateTime, idParam, isProviderOf, itemList, me, quota, sec, visibleApplication, type PolicyRouteDeps } from './shared.js'

type DecisionBody = { decision: 'approve' | 'reject'; reason?: string; items?: string[]; validFrom?: string; validTo?: string; dailyQuota?: number }
type DecisionRequest = FastifyRequest<{ Params: { id: string }; Body: DecisionBody }>

const decisionSchema = {
  tags: ['sharing'],
  summary: 'Decide an application for one of your resources: approve (possibly narrowed) or reject with a reason',
  security: sec,
  params: idParam,
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['decision'],
    properties: {
      decision: { type: 'string', enum: ['approve', 'reject'] },
      reason: { type: 'string', minLength: 1, maxLength: 2000 },
      items: itemList,
      validFrom: dateTime,
      validTo: dateTime,
      dailyQuota: quota,
    },
  },
  response: { 200: applicationSchema, ...problemResponses(400, 401, 403, 404, 409) },
}

export default async function decisions(app: FastifyInstance, deps: PolicyRouteDeps) {
  app.post<{ Params: { id: string }; Body: DecisionBody }>('/v1/applications/:id/decision', {
    onRequest: [app.authenticate, app.requireRole('provider')],
    config: { audit: { operation: 'application.decide' } },
    schema: decisionSchema,
  }, async (request) => {
    const p = me(request)
    const a = await visibleApplication(app, request, request.params.id)
    request.audit.resource = a.resource
    if (!isProviderOf(p, a.providerDepartment)) throw new Problem(403, 'AUTH_NOT_PROVIDER', 'only the providing department decides this application')
    // A copy at the consumer's node: the owning node decides, its decision comes back here.
    if (a.delivery) throw new Problem(409, 'APPLICATION_HELD_ELSEWHERE', `the application is decided at node ${a.ownerNode ?? '(the owning node)'}`)
    if (a.status !== 'pending') throw new Problem(409, 'APPLICATION_ALREADY_DECIDED', `the application is ${a.status}`)
    const decided = request.body.decision === 'reject' ? await reject(app, deps, request, p, a) : await approve(app, deps, request, p, a)
    return (await applicationViews(app, deps.calendar, [decided]))[0]
  })
}

async function reject(app: FastifyInstance, deps: PolicyRouteDeps, request: DecisionRequest, p: Principal, a: store.Application) {
  const outbox = app.applicationOutbox
  const { reason } = request.body
  if (!reason) throw new Problem(400, 'APPLICATION_REASON_REQUIRED', 'a rejection needs a reason')
  const rejected = await store.rejectApplication(app.db, a.id, p.system, reason, outbox?.decided, personName(p))
  if (!rejected) throw new Problem(409, 'APPLICATION_ALREADY_DECIDED', 'the application was decided meanwhile')
  outbox?.flush(a.id)
  await deps.onDecided(rejected, null)
  return rejected
}

/** What the approval grants: what was asked, or less (items, period, quota), never more. */
function narrowed(b: DecisionBody, a: store.Application) {
  const items = b.items ?? a.items
  const outside = items.find((i) => !a.items.includes(i))
  if (outside) throw new Problem(400, 'APPLICATION_WIDENED', `item ${outside} was not applied for`)
  const validFrom = b.validFrom ? new Date(b.validFrom) : new Date(a.validFrom)
  const validTo = b.validTo ? new Date(b.validTo) : new Date(a.validTo)
  if (validFrom < new Date(a.validFrom) || validTo > new Date(a.validTo) || !(validTo > validFrom)) {
    throw new Problem(400, 'APPLICATION_WIDENED', 'the approved period must lie within the period applied for')
  }
  const dailyQuota = b.dailyQuota ?? a.dailyQuota
  if (dailyQuota > a.dailyQuota) throw new Problem(400, 'APPLICATION_WIDENED', 'the approved quota cannot exceed the quota applied for')
  return { items, validFrom, validTo, dailyQuota }
}

async function approve(app: FastifyInstance, deps: PolicyRouteDeps, request: DecisionRequest, p: Principal, a: store.Application) {
  const outbox = app.applicationOutbox
  const terms = narrowed(request.body, a)
  const approved = await store.approveApplication(app.db, a.id, p.system, { ...terms, reason: request.body.reason, actorName: personName(p) }, outbox?.decided)
  if (!approved) throw new Problem(409, 'APPLICATION_ALREADY_DECIDED', 'the application was decided meanwhile')
  outbox?.flush(a.id)
  await deps.onDecided(approved.application, approved.grant)
  return approved.application
}
