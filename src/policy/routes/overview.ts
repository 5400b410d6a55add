// GET /v1/overview: the workbench's first screen. Per department: its queries today (China
// time), today's refusals by reason code, and its open applications near their deadline
// (at most 3 working days left, overdue included). A department sees itself; an auditor or
// an operator sees every department. Counted from the audit table (the (consumer_department,
// time) index, or the time index for everyone) and the pending applications (migration 015).
import type { FastifyInstance } from 'fastify'
import { problemResponses } from '../../problems/schema.js'
import { statusFallback } from '../../problems/codes.js'
import { departmentSchema } from '../../catalog/departments.js'
import { chinaDay } from '../quota.js'
import { workingDaysBetween } from '../calendar.js'
import { me, sec, type PolicyRouteDeps } from './shared.js'

export const NEAR_DEADLINE_WORKING_DAYS = 3
const CHINA_OFFSET = '+08:00'

// Data queries only: not the token endpoint, not administration (catalog.*, application.*, audit.*).
const QUERIES = `(operation IS NULL OR (operation NOT LIKE '%.%' AND operation <> 'token'))`

const overviewSchema = {
  tags: ['sharing'],
  summary: "Today at a glance: queries, refusals by reason and applications near their deadline, per department (the caller's; an auditor or operator: all)",
  security: sec,
  response: {
    200: {
      type: 'object',
      properties: {
        day: { type: 'string', description: 'today in China (UTC+8), YYYY-MM-DD' },
        scope: { type: 'string', enum: ['department', 'all'] },
        departments: {
          type: 'array',
          items: {
            type: 'object',
            properties: {
              department: departmentSchema,
              queriesToday: { type: 'integer' },
              refusalsToday: { type: 'object', additionalProperties: { type: 'integer' }, description: 'reason code → count (denied and failed queries)' },
              nearDeadline: {
                type: 'array',
                description: `open applications this department decides with at most ${NEAR_DEADLINE_WORKING_DAYS} working days left (overdue included), nearest first`,
                items: { type: 'object', properties: { id: { type: 'string' }, resource: { type: 'string' }, dueAt: { type: 'string' }, workingDaysLeft: { type: 'integer' }, overdue: { type: 'boolean' } } },
              },
            },
          },
        },
      },
    },
    ...problemResponses(401),
  },
}

interface Row { department: string; queries: number; refusals: Record<string, number>; near: { id: string; resource: string; dueAt: string; workingDaysLeft: number; overdue: boolean }[] }

export default async function overview(app: FastifyInstance, deps: PolicyRouteDeps) {
  app.get('/v1/overview', { onRequest: [app.authenticate], schema: overviewSchema }, async (request) => {
    const p = me(request)
    const everyone = p.roles.includes('auditor') || p.roles.includes('operator')
    return overviewOf(app, deps, everyone ? null : p.department)
  })
}

export async function overviewOf(app: FastifyInstance, deps: PolicyRouteDeps, department: string | null, now = new Date()) {
  const day = chinaDay(now.getTime())
  const since = `${day}T00:00:00${CHINA_OFFSET}`
  const byDept = new Map<string, Row>()
  const row = (d: string) => {
    let r = byDept.get(d)
    if (!r) byDept.set(d, (r = { department: d, queries: 0, refusals: {}, near: [] }))
    return r
  }
  if (department) row(department)
  const params: unknown[] = [since]
  const mine = department ? `AND consumer_department = $${params.push(department)}` : 'AND consumer_department IS NOT NULL'
  const { rows: counts } = await app.db.query(
    `SELECT consumer_department AS d, decision, reason, count(*)::int AS n FROM audit_records
     WHERE time >= $1::timestamptz AND ${QUERIES} ${mine}
     GROUP BY consumer_department, decision, reason`,
    params,
  )
  for (const c of counts) {
    const r = row(c.d)
    r.queries += c.n
    if (c.decision !== 'allowed') {
      // A refusal recorded without a reason is counted under the status fallback code.
      const reason: string = c.reason ?? statusFallback(500)
      r.refusals[reason] = (r.refusals[reason] ?? 0) + c.n
    }
  }
  // Pending with a deadline no later than 3 working days from now: a bound in time first
  // (the calendar never has more than a few free days in a row), then the exact count.
  const horizon = new Date(now.getTime() + (NEAR_DEADLINE_WORKING_DAYS + 14) * 86400_000)
  const appParams: unknown[] = [horizon]
  const theirs = department ? `AND provider_department = $${appParams.push(department)}` : 'AND provider_department IS NOT NULL'
  const { rows: pending } = await app.db.query(
    `SELECT id, resource, provider_department AS d, due_at FROM applications
     WHERE status = 'pending' AND due_at IS NOT NULL AND due_at <= $1 ${theirs} ORDER BY due_at, id LIMIT 1000`,
    appParams,
  )
  for (const a of pending) {
    const left = workingDaysBetween(now, a.due_at, deps.calendar)
    if (left > NEAR_DEADLINE_WORKING_DAYS) continue
    row(a.d).near.push({ id: a.id, resource: a.resource, dueAt: a.due_at.toISOString(), workingDaysLeft: left, overdue: a.due_at.getTime() <= now.getTime() })
  }
  const rows = [...byDept.values()].sort((a, b) => a.department.localeCompare(b.department))
  const dept = await app.departments.resolve(rows.map((r) => r.department))
  return {
    day,
    scope: department ? ('department' as const) : ('all' as const),
    departments: rows.map((r) => ({ department: dept(r.department), queriesToday: r.queries, refusalsToday: r.refusals, nearDeadline: r.near })),
  }
}
