// What the workbench sees of applications and grants beyond the stored rows: department
// names, the reviewer's deadline (working days left, overdue, reminder/escalation state),
// who acted in the history (names, never a bare client id), and a grant's use today.
import type { FastifyInstance } from 'fastify'
import type { Principal } from '../../auth/principal.js'
import { departmentSchema } from '../../catalog/departments.js'
import { workingDaysBetween, type WorkingCalendar } from '../calendar.js'
import type { Application } from '../applications.js'
import type { Grant } from '../grants.js'
import { usedToday } from '../quota.js'

/** A principal signed in as a person (the workbench session) carries the person. */
export const personName = (p: Principal): string | undefined => (p as Principal & { person?: { name?: string } }).person?.name

export type DeadlineState = 'none' | 'reminded' | 'escalated'

export function deadlineView(a: Application, cal: WorkingCalendar, now = new Date()) {
  const open = a.status === 'pending' && a.dueAt !== null
  const due = a.dueAt ? new Date(a.dueAt) : null
  const deadlineState: DeadlineState = a.escalatedAt ? 'escalated' : a.remindedAt ? 'reminded' : 'none'
  return {
    workingDaysLeft: open && due ? workingDaysBetween(now, due, cal) : null,
    overdue: open && due ? due.getTime() <= now.getTime() : false,
    deadlineState,
  }
}

export async function applicationViews(app: FastifyInstance, cal: WorkingCalendar, list: Application[]) {
  const dept = await app.departments.resolve(list.flatMap((a) => [a.consumerDepartment, a.providerDepartment]))
  const now = new Date()
  return list.map((a) => ({ ...a, consumer: dept(a.consumerDepartment), provider: dept(a.providerDepartment), ...deadlineView(a, cal, now) }))
}

const DEADLINE_JOBS = 'tongban-deadlines'

/** Who acted, as words: the person's name where a person acted, else the system's name. */
export function historyView(app: FastifyInstance, events: { at: string; actor: string; action: string; detail: Record<string, unknown> }[]) {
  return events.map((e) => {
    const person = typeof e.detail?.actorName === 'string' ? e.detail.actorName : null
    const system = app.systems.get(e.actor)
    const actorName = person ?? system?.name ?? (e.actor === DEADLINE_JOBS ? '期限提醒 (deadline jobs)' : null)
    return { ...e, actorName, actorKind: e.actor.startsWith('person:') ? 'person' : e.actor === DEADLINE_JOBS ? 'job' : 'system' }
  })
}

export async function grantViews(app: FastifyInstance, list: Grant[]) {
  const [dept, used] = await Promise.all([
    app.departments.resolve(list.flatMap((g) => [g.consumerDepartment, g.providerDepartment])),
    // The use today is a display: without Redis the list still answers (usedToday null).
    usedToday(app.redis, list.map((g) => g.id)).catch(() => list.map(() => null)),
  ])
  return list.map((g, i) => ({ ...g, consumer: dept(g.consumerDepartment), provider: dept(g.providerDepartment), usedToday: used[i] }))
}

export const applicationExtras = {
  consumer: departmentSchema,
  provider: { ...departmentSchema, type: ['object', 'null'], description: 'null until the owning node has answered' },
  workingDaysLeft: { type: ['integer', 'null'], description: 'pending with a deadline: working days from today to the deadline (negative: overdue)' },
  overdue: { type: 'boolean', description: 'pending and past its deadline' },
  deadlineState: { type: 'string', enum: ['none', 'reminded', 'escalated'], description: 'whether the reminder or the escalation has happened' },
}

export const historyItem = {
  type: 'object',
  properties: {
    at: { type: 'string' }, actor: { type: 'string' }, action: { type: 'string', description: 'submitted, reminder-sent, escalated, approved, rejected, grant-revoked, grant-expired, …' },
    actorName: { type: ['string', 'null'], description: 'the person who acted (workbench), or the system\'s name' },
    actorKind: { type: 'string', enum: ['person', 'system', 'job'] },
    detail: { type: 'object', additionalProperties: true },
  },
}

export const grantExtras = {
  consumer: departmentSchema,
  provider: departmentSchema,
  usedToday: { type: ['integer', 'null'], description: 'queries counted against the daily quota today (China time); read without consuming (null: the quota store is unavailable)' },
}
