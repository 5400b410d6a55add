// The dispute routes (docs/disputes.md): a consumer files, the provider reads its inbox and
// resolves, both (and auditors) read a dispute with its verifiable history; statistics for
// auditors and providers. The POSTs are audited routes (their answers carry Tongban-Evidence);
// each step is also sealed on its own into the dispute's history (history.ts).
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { PoolClient } from 'pg'
import type { AuditRecord } from '../evidence/evidence.js'
import { Problem } from '../problems/problem.js'
import { problemResponses } from '../problems/schema.js'
import { queryValidators } from '../validation/ajv.js'
import { holdsPersonalNumber } from '../gb/personal-number.js'
import type { Principal } from '../auth/principal.js'
import { ulid } from '../exchange/request-id.js'
import { REASONS, REASON_CODES, RESOLUTIONS, RESOLUTION_CODES, type Reason, type Resolution } from './codes.js'
import { disputedAnswer } from './answer.js'
import { sealStep } from './history.js'
import * as store from './store.js'
import { disputeStats } from './stats.js'
import { chinaDay } from '../policy/quota.js'
import { workingDaysBetween, type WorkingCalendar } from '../policy/calendar.js'
import { departmentSchema } from '../catalog/departments.js'

export interface DisputeRouteDeps {
  dueDate(from: Date): { dueAt: Date; remindAt: Date | null }
  /** The node's working calendar: an open dispute's working days left. */
  calendar: WorkingCalendar
  onFiled(d: store.Dispute): Promise<void>
  onResolved(d: store.Dispute, told: Array<{ department: string }>): Promise<void>
  /** An answer about a resource held at another node: the dispute travels there (tiers.ts); 202. */
  fileElsewhere(p: Principal, b: FileBody, record: AuditRecord): Promise<store.Dispute>
  /** In the resolution's transaction: a dispute that came from another node sends the resolution back. */
  inResolveTx(c: PoolClient, d: store.Dispute): Promise<void>
}

const sec = [{ bearer: [] }]
const ULID = '^[0-9A-HJKMNP-TV-Z]{26}$'
const text = { type: 'object', properties: { zh: { type: 'string' }, en: { type: 'string' } } }
const nullable = (t: string) => ({ type: [t, 'null'] })
const queryCompiler = ({ schema }: { schema: object }) => queryValidators.compile(schema)
const STATUSES = ['open', 'resolved', 'refused']

const disputeSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    requestId: { type: 'string', description: 'the disputed answer' },
    answerNode: { type: 'string' }, answerTime: { type: 'string' },
    resource: { type: 'string' }, resourceName: { type: 'string' }, operation: nullable('string'),
    subject: { ...nullable('string'), description: "the subject's keyed hash (as in the audit record), never the id itself" },
    consumerDepartment: { type: 'string' }, consumerSystem: { type: 'string' },
    consumer: { ...departmentSchema, description: 'the disputing department, with its name' },
    provider: { ...departmentSchema, type: ['object', 'null'], description: "the providing department, with its name (null at the consumer's node until the owning node accepted the dispute)" },
    workingDaysLeft: { type: ['integer', 'null'], description: 'open with a deadline: working days from today to the deadline (negative: overdue)' },
    providerDepartment: { ...nullable('string'), description: "null at the consumer's node until the owning node accepted the dispute" },
    items: { type: 'array', items: { type: 'string' } },
    reason: { type: 'string', enum: REASON_CODES }, reasonText: text,
    description: { type: 'string' },
    status: { type: 'string', enum: STATUSES, description: 'open 处理中, resolved 已处理, refused 未受理 (the owning node refused it: see delivery.lastError)' },
    dueAt: { ...nullable('string'), description: "null at the consumer's node until the owning node accepted the dispute" }, overdue: { type: 'boolean' },
    remindedAt: nullable('string'), escalatedAt: nullable('string'),
    resolution: { type: ['string', 'null'], enum: [...RESOLUTION_CODES, null] }, resolutionText: { type: ['object', 'null'], properties: text.properties },
    resolutionNote: nullable('string'), effectiveFrom: nullable('string'),
    resolvedAt: nullable('string'), resolvedBy: nullable('string'), resolvedInTime: { type: ['boolean', 'null'] },
    createdAt: { type: 'string' }, filedBy: { type: 'string' },
    originNode: { ...nullable('string'), description: "at the owning node: the consumer's node the dispute came from" },
    delivery: {
      type: ['object', 'null'],
      description: "at the consumer's node, for a resource held at another node: the dispute's way there (null: a local dispute)",
      properties: {
        state: { type: 'string', enum: ['forwarding', 'delivered', 'refused', 'failed'], description: 'forwarding 传送中, delivered 已送达, refused 被拒收, failed 传送失败' },
        ownerNode: nullable('string'),
        lastError: { ...nullable('string'), description: 'CODE@node of the last failure, or of the refusal' },
      },
    },
    history: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          at: { type: 'string' }, actor: { type: 'string' }, action: { type: 'string' },
          requestId: { type: 'string', description: "the step's own audit record" },
          sealed: { type: 'string', description: 'the exact JSON text sealed: verify `evidence` against these bytes' },
          evidence: { type: 'string', description: 'Tongban-Evidence of the step' },
        },
      },
    },
    consumersTold: {
      type: 'array',
      description: 'after a correction: other departments that received the same subject from this resource (provider and auditors only)',
      items: { type: 'object', properties: { consumerDepartment: { type: 'string' }, department: departmentSchema, answers: { type: 'integer' }, lastAnswerAt: { type: 'string' }, notifiedAt: { type: 'string' } } },
    },
  },
}

const me = (request: FastifyRequest) => request.principal as Principal

/** Disputes as the API shows them: words for the codes, department names, the deadline in working days. */
async function views(app: FastifyInstance, cal: WorkingCalendar, list: store.Dispute[], now = Date.now()) {
  const dept = await app.departments.resolve(list.flatMap((d) => [d.consumerDepartment, d.providerDepartment]))
  return list.map((d) => ({
    ...view(app, d, now),
    consumer: dept(d.consumerDepartment),
    provider: dept(d.providerDepartment),
    workingDaysLeft: d.status === 'open' && d.dueAt ? workingDaysBetween(new Date(now), new Date(d.dueAt), cal) : null,
  }))
}

const one = async (app: FastifyInstance, cal: WorkingCalendar, d: store.Dispute) => (await views(app, cal, [d]))[0]

/** The departments told of a correction, with their names. */
async function toldViews(app: FastifyInstance, id: string) {
  const told = await store.recipients(app.db, id)
  const dept = await app.departments.resolve(told.map((r) => r.consumerDepartment))
  return told.map((r) => ({ ...r, department: dept(r.consumerDepartment) }))
}

function view(app: FastifyInstance, d: store.Dispute, now = Date.now()) {
  const resource = app.catalog.get(d.resource)
  return {
    ...d,
    resourceName: resource?.name ?? d.resource,
    reasonText: REASONS[d.reason],
    resolutionText: d.resolution ? RESOLUTIONS[d.resolution] : null,
    overdue: d.status === 'open' && d.dueAt ? Date.parse(d.dueAt) < now : false,
    resolvedInTime: d.resolvedAt && d.dueAt ? Date.parse(d.resolvedAt) <= Date.parse(d.dueAt) : null,
  }
}

/** The dispute, if the caller's department filed it or provides the resource, or the caller audits; else 404. */
async function visible(app: FastifyInstance, request: FastifyRequest, id: string): Promise<store.Dispute> {
  const d = await store.getDispute(app.db, id)
  const p = me(request)
  if (!d || (d.consumerDepartment !== p.department && d.providerDepartment !== p.department && !p.roles.includes('auditor'))) {
    throw new Problem(404, 'DISPUTE_NOT_FOUND', 'no such dispute')
  }
  return d
}

export type FileBody = { requestId: string; evidence: string; answer: string; items: string[]; reason: Reason; description: string }
type ResolveBody = { resolution: Resolution; note: string; effectiveFrom?: string }
type ListQuery = { as?: 'consumer' | 'provider'; status?: store.Dispute['status']; resource?: string; sort?: 'created' | 'deadline'; before?: string; limit?: number }

export async function disputeRoutes(app: FastifyInstance, deps: DisputeRouteDeps) {
  app.post<{ Body: FileBody }>('/v1/disputes', {
    onRequest: [app.authenticate, app.requireRole('consumer')],
    config: { audit: { operation: 'dispute.file' } },
    schema: {
      tags: ['disputes'],
      summary: 'Dispute an answer your department received (疑义): the request id, its Tongban-Evidence and the exact answer bytes prove which',
      security: sec,
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['requestId', 'evidence', 'answer', 'items', 'reason', 'description'],
        properties: {
          requestId: { type: 'string', pattern: ULID, description: "the answer's Tongban-Request-Id" },
          evidence: { type: 'string', minLength: 1, maxLength: 16384, description: "the answer's Tongban-Evidence header, as received" },
          answer: { type: 'string', maxLength: 32768, description: 'the exact answer body (UTF-8 text): hashed to check the evidence, never stored' },
          items: { type: 'array', minItems: 1, maxItems: 100, uniqueItems: true, items: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9]{0,63}$' }, description: 'the items believed wrong (names, not values)' },
          reason: { type: 'string', enum: REASON_CODES, description: 'FACT_MISMATCH 与事实不符, OUTDATED 数据过期, MISSING 记录缺失, OTHER 其他' },
          description: { type: 'string', minLength: 1, maxLength: 2000, description: 'what is wrong; no id numbers or credit codes' },
        },
      },
      response: {
        201: disputeSchema,
        202: { ...disputeSchema, description: 'the resource is held at another node: recorded here, on its way there (delivery.state forwarding); not yet accepted by the owner' },
        ...problemResponses(400, 401, 403, 404, 409, 413, 415, 422),
      },
    },
  }, async (request, reply) => {
    const p = me(request)
    const b = request.body
    if (holdsPersonalNumber(b.description)) {
      throw new Problem(400, 'DISPUTE_DESCRIPTION_PERSONAL_DATA', 'the description holds a resident id number or a credit code: describe the error without them (the subject is known from the answer)')
    }
    const answer = await disputedAnswer(app, p, b)
    request.audit.resource = answer.record.resource!
    if (answer.record.subject) request.audit.subject = answer.record.subject
    const { held } = answer
    // Held elsewhere: the owner knows the items and checks them.
    const unknown = held && b.items.find((i) => !held.items.includes(i))
    if (unknown) throw new Problem(400, 'DISPUTE_UNKNOWN_ITEM', `resource ${answer.record.resource} has no item ${unknown}`)
    const existing = await store.findByAnswer(app.db, b.requestId, p.department)
    if (existing) throw new Problem(409, 'DISPUTE_DUPLICATE', `this answer is already disputed by your department (dispute ${existing.id})`)
    if (!held) return reply.code(202).send(await one(app, deps.calendar, await deps.fileElsewhere(p, b, answer.record)))
    const now = new Date()
    const { dueAt } = deps.dueDate(now)
    const r = answer.record
    const filed = await store.createDispute(app.db, {
      id: ulid(),
      requestId: r.requestId,
      answerNode: r.node,
      answerTime: r.time,
      resource: r.resource!,
      operation: r.operation,
      subject: r.subject ?? null,
      consumerDepartment: p.department,
      consumerSystem: p.system,
      providerDepartment: held.providerDepartment,
      items: b.items,
      reason: b.reason,
      description: b.description,
      dueAt,
      filedBy: p.system,
    }, (c, d) => sealStep(app, c, d, { action: 'filed', actor: p.system, principal: p, detail: { items: d.items, reason: d.reason, dueAt: d.dueAt } }))
    if (!filed) throw new Problem(409, 'DISPUTE_DUPLICATE', 'this answer is already disputed by your department')
    await deps.onFiled(filed)
    return reply.code(201).send(await one(app, deps.calendar, filed))
  })

  app.get<{ Querystring: ListQuery }>('/v1/disputes', {
    onRequest: [app.authenticate],
    validatorCompiler: queryCompiler,
    schema: {
      tags: ['disputes'],
      summary: "Disputes: those about the caller's department's resources (as=provider: the inbox) or those it filed (as=consumer); auditors see all",
      security: sec,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: {
          as: { type: 'string', enum: ['consumer', 'provider'] },
          status: { type: 'string', enum: STATUSES },
          resource: { type: 'string', pattern: '^[0-9]{6}/[0-9]{5}$' },
          sort: { type: 'string', enum: ['created', 'deadline'], default: 'created', description: 'created: newest first; deadline: the nearest deadline first' },
          before: { type: 'string', pattern: ULID, description: 'with sort=created: disputes older than this one' },
          limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 },
        },
      },
      response: { 200: { type: 'object', properties: { disputes: { type: 'array', items: disputeSchema } } }, ...problemResponses(400, 401, 403) },
    },
  }, async (request) => {
    const p = me(request)
    const q = request.query
    const auditor = p.roles.includes('auditor') && !q.as
    const as = q.as ?? (p.roles.includes('provider') ? 'provider' : 'consumer')
    if (!auditor && !p.roles.includes(as)) throw new Problem(403, 'AUTH_ROLE_REQUIRED', `listing as ${as} requires the ${as} role`)
    const list = await store.listDisputes(app.db, {
      ...(auditor ? {} : { [as === 'provider' ? 'providerDepartment' : 'consumerDepartment']: p.department }),
      status: q.status,
      resource: q.resource,
      sort: q.sort ?? 'created',
      before: q.before,
      limit: q.limit ?? 50,
    })
    return { disputes: await views(app, deps.calendar, list) }
  })

  app.get<{ Querystring: { from?: string; to?: string } }>('/v1/disputes/stats', {
    onRequest: [app.authenticate],
    validatorCompiler: queryCompiler,
    schema: {
      tags: ['disputes'],
      summary: "Dispute statistics per resource (auditors: every resource; providers: their own): filed, share resolved in time, median time to resolve, corrections per 10,000 answers",
      security: sec,
      querystring: {
        type: 'object',
        additionalProperties: false,
        properties: { from: { type: 'string', format: 'date-time' }, to: { type: 'string', format: 'date-time' } },
      },
      response: {
        200: {
          type: 'object',
          properties: {
            from: { type: 'string' }, to: { type: 'string' },
            resources: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  resource: { type: 'string' }, resourceName: { type: 'string' }, providerDepartment: { type: 'string' },
                  filed: { type: 'integer' }, open: { type: 'integer' }, resolved: { type: 'integer' },
                  byReason: { type: 'object', additionalProperties: { type: 'integer' } },
                  byResolution: { type: 'object', additionalProperties: { type: 'integer' } },
                  resolvedInTimeShare: { type: ['number', 'null'], description: 'resolved by the deadline, of those resolved or past their deadline' },
                  medianSecondsToResolve: { type: ['number', 'null'] },
                  corrections: { type: 'integer' }, answers: { type: 'integer', description: 'allowed answers of the resource in the period' },
                  correctionsPer10000Answers: { type: ['number', 'null'] },
                },
              },
            },
          },
        },
        ...problemResponses(400, 401, 403),
      },
    },
  }, async (request) => {
    const p = me(request)
    if (!p.roles.includes('auditor') && !p.roles.includes('provider')) throw new Problem(403, 'AUTH_ROLE_REQUIRED', 'dispute statistics are for auditors and providers')
    const to = request.query.to ? new Date(request.query.to) : new Date()
    const from = request.query.from ? new Date(request.query.from) : new Date(to.getTime() - 365 * 86400_000)
    if (!(from < to)) throw new Problem(400, 'DISPUTE_INVALID_PERIOD', 'from must be before to')
    const resources = await disputeStats(app.db, { from, to, providerDepartment: p.roles.includes('auditor') ? null : p.department })
    return { from: from.toISOString(), to: to.toISOString(), resources: resources.map((r) => ({ ...r, resourceName: app.catalog.get(r.resource)?.name ?? r.resource })) }
  })

  app.get<{ Params: { id: string } }>('/v1/disputes/:id', {
    onRequest: [app.authenticate],
    schema: {
      tags: ['disputes'],
      summary: 'One dispute with its history (each step with its sealed text and Tongban-Evidence)',
      security: sec,
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: ULID } } },
      response: { 200: disputeSchema, ...problemResponses(400, 401, 404) },
    },
  }, async (request) => {
    const d = await visible(app, request, request.params.id)
    const p = me(request)
    const seesRecipients = p.department === d.providerDepartment || p.roles.includes('auditor')
    return {
      ...(await one(app, deps.calendar, d)),
      history: await store.disputeEvents(app.db, d.id),
      ...(seesRecipients ? { consumersTold: await toldViews(app, d.id) } : {}),
    }
  })

  app.post<{ Params: { id: string }; Body: ResolveBody }>('/v1/disputes/:id/resolution', {
    onRequest: [app.authenticate, app.requireRole('provider')],
    config: { audit: { operation: 'dispute.resolve' } },
    schema: {
      tags: ['disputes'],
      summary: 'Resolve a dispute about your resource: CONFIRMED 核实无误 (with an explanation), CORRECTED 已更正 (with the date effective from), REJECTED 不予受理 (with a reason)',
      security: sec,
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: ULID } } },
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['resolution', 'note'],
        properties: {
          resolution: { type: 'string', enum: RESOLUTION_CODES },
          note: { type: 'string', minLength: 1, maxLength: 2000, description: 'the explanation, correction made, or reason for not accepting' },
          effectiveFrom: { type: 'string', format: 'date', description: 'CORRECTED: the date the corrected data is effective from' },
        },
      },
      response: { 200: disputeSchema, ...problemResponses(400, 401, 403, 404, 409) },
    },
  }, async (request) => {
    const p = me(request)
    const b = request.body
    const d = await visible(app, request, request.params.id)
    request.audit.resource = d.resource
    if (d.subject) request.audit.subject = d.subject
    if (!(p.roles.includes('provider') && p.department === d.providerDepartment)) {
      throw new Problem(403, 'DISPUTE_NOT_PROVIDER', 'only the department providing the resource resolves this dispute')
    }
    if (d.delivery) throw new Problem(409, 'DISPUTE_HELD_ELSEWHERE', `the dispute is resolved at node ${d.delivery.ownerNode ?? 'holding the resource'}; this is the consumer's node's copy`)
    if (d.status !== 'open') throw new Problem(409, 'DISPUTE_ALREADY_RESOLVED', `the dispute was resolved (${d.resolution})`)
    if (b.resolution === 'CORRECTED' && !b.effectiveFrom) throw new Problem(400, 'DISPUTE_EFFECTIVE_DATE_REQUIRED', 'a correction needs the date it is effective from (effectiveFrom)')
    if (b.resolution !== 'CORRECTED' && b.effectiveFrom) throw new Problem(400, 'DISPUTE_EFFECTIVE_DATE_REQUIRED', 'effectiveFrom belongs to a correction only')
    if (b.effectiveFrom && !plausibleEffectiveDate(b.effectiveFrom, Date.now())) {
      throw new Problem(400, 'DISPUTE_EFFECTIVE_DATE_OUT_OF_RANGE', `effectiveFrom ${b.effectiveFrom} is before 1900 or more than a year after today (China time)`)
    }
    if (holdsPersonalNumber(b.note)) throw new Problem(400, 'DISPUTE_DESCRIPTION_PERSONAL_DATA', 'the note holds a resident id number or a credit code')
    let told: Array<{ department: string; answers: number; lastAnswerAt: Date }> = []
    const resolved = await store.resolveDispute(app.db, d.id, { resolution: b.resolution, note: b.note, effectiveFrom: b.effectiveFrom ?? null, by: p.system }, async (c, r) => {
      await sealStep(app, c, r, { action: 'resolved', actor: p.system, principal: p, detail: { resolution: r.resolution, note: r.resolutionNote, effectiveFrom: r.effectiveFrom } })
      await deps.inResolveTx(c, r)
      if (r.resolution !== 'CORRECTED') return
      // Who else received this subject's data of this resource: from the audit log, by the keyed hash.
      told = await store.otherConsumers(app.db, r, new Date())
      for (const t of told) await store.addRecipient(c, r.id, t)
      await sealStep(app, c, r, { action: 'consumers-told', actor: 'tongban-disputes', principal: null, detail: { departments: told.map((t) => t.department) } })
    })
    if (!resolved) throw new Problem(409, 'DISPUTE_ALREADY_RESOLVED', 'the dispute was resolved meanwhile')
    await deps.onResolved(resolved, told)
    return {
      ...(await one(app, deps.calendar, resolved)),
      history: await store.disputeEvents(app.db, d.id),
      consumersTold: await toldViews(app, d.id),
    }
  })
}

/**
 * A correction holds from a date in the past (the data was wrong since then) or soon (a change
 * taking effect later), not from year 9999: every later answer would carry that date.
 */
export function plausibleEffectiveDate(date: string, now: number): boolean {
  return date >= '1900-01-01' && date <= chinaDay(now + 366 * 86_400_000)
}
