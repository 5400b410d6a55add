// Subject access report (issue 5, item 6): which departments accessed one person's or
// enterprise's data, when, for what purpose and case — what a citizen or an enterprise can
// be given on request (like Estonia's Data Tracker). Found by the subject's keyed hash; the
// raw identifier is never stored, logged or echoed (only a masked form the requester
// recognises). The response is an audited route, so it carries the node's signed evidence.
import type { Db } from '../stores/postgres.js'
import { kindCondition } from './search.js'

export const REPORT_MAX_ACCESSES = 1000

export interface ReportNames {
  resource(code: string): string | undefined
  department(code: string): string | undefined
  system(clientId: string): string | undefined
  purpose(code: string): string | undefined
}

export interface Access {
  time: string
  requestId: string
  department: string | null
  departmentName?: string
  system: string | null
  systemName?: string
  resource: string | null
  resourceName?: string
  operation: string | null
  purpose: string | null
  purposeName?: string
  caseId: string | null
  operator?: string
  decision: string
  reason?: string
  node: string
}

export interface DepartmentSummary {
  department: string | null
  name?: string
  accesses: number
  allowed: number
  refused: number
  first: string
  last: string
  purposes: Array<{ code: string | null; name?: string; count: number }>
  resources: Array<{ code: string | null; name?: string; count: number }>
}

export interface SubjectReport {
  subject: { hash: string; masked?: string }
  node: { id: string; name: string }
  from: string | null
  to: string | null
  generatedAt: string
  total: number
  departments: DepartmentSummary[]
  accesses: Access[]
  truncated: boolean
  includesAuditorLookups: boolean
  note: string
}

/** 320115199003070128 → 3201**********0128; an 18-character code keeps 4 + 4. */
export function maskSubject(raw: string): string {
  const v = raw.trim().toUpperCase()
  if (v.length <= 8) return '*'.repeat(v.length)
  return v.slice(0, 4) + '*'.repeat(v.length - 8) + v.slice(-4)
}

export async function subjectReport(db: Db, o: {
  hash: string
  masked?: string
  from?: string
  to?: string
  includeAuditorLookups?: boolean
  node: { id: string; name: string }
  names: ReportNames
}): Promise<SubjectReport> {
  const params: unknown[] = [o.hash]
  const cond = ['subject = $1']
  if (o.from) cond.push(`time >= $${params.push(o.from)}::timestamptz`)
  if (o.to) cond.push(`time < $${params.push(o.to)}::timestamptz`)
  if (!o.includeAuditorLookups) cond.push(`NOT (${kindCondition('audit')})`)
  const where = cond.join(' AND ')
  const [summary, list] = await Promise.all([
    db.query(
      `SELECT consumer_department AS department, purpose, resource, count(*)::int AS n,
         count(*) FILTER (WHERE decision = 'allowed')::int AS allowed,
         min(time) AS first, max(time) AS last
       FROM audit_records WHERE ${where}
       GROUP BY consumer_department, purpose, resource`,
      params,
    ),
    db.query(
      `SELECT record FROM audit_records WHERE ${where}
       ORDER BY time DESC, chain DESC, seq DESC, idx DESC LIMIT ${REPORT_MAX_ACCESSES + 1}`,
      params,
    ),
  ])
  const n = o.names
  const depts = new Map<string, DepartmentSummary>()
  let total = 0
  for (const r of summary.rows) {
    total += r.n
    const key = r.department ?? ''
    let d = depts.get(key)
    if (!d) {
      d = {
        department: r.department,
        ...(r.department && n.department(r.department) ? { name: n.department(r.department) } : {}),
        accesses: 0, allowed: 0, refused: 0,
        first: (r.first as Date).toISOString(), last: (r.last as Date).toISOString(),
        purposes: [], resources: [],
      }
      depts.set(key, d)
    }
    d.accesses += r.n
    d.allowed += r.allowed
    d.refused += r.n - r.allowed
    if ((r.first as Date).toISOString() < d.first) d.first = (r.first as Date).toISOString()
    if ((r.last as Date).toISOString() > d.last) d.last = (r.last as Date).toISOString()
    const p = d.purposes.find((x) => x.code === r.purpose)
    if (p) p.count += r.n
    else d.purposes.push({ code: r.purpose, ...(r.purpose && n.purpose(r.purpose) ? { name: n.purpose(r.purpose) } : {}), count: r.n })
    const res = d.resources.find((x) => x.code === r.resource)
    if (res) res.count += r.n
    else d.resources.push({ code: r.resource, ...(r.resource && n.resource(r.resource) ? { name: n.resource(r.resource) } : {}), count: r.n })
  }
  const accesses: Access[] = list.rows.slice(0, REPORT_MAX_ACCESSES).map(({ record: r }) => {
    const a: Access = {
      time: r.time,
      requestId: r.requestId,
      department: r.consumer?.department ?? null,
      system: r.consumer?.system ?? null,
      resource: r.resource,
      operation: r.operation,
      purpose: r.purpose,
      caseId: r.caseId,
      decision: r.decision,
      node: r.node,
    }
    if (a.department && n.department(a.department)) a.departmentName = n.department(a.department)
    if (a.system && n.system(a.system)) a.systemName = n.system(a.system)
    if (a.resource && n.resource(a.resource)) a.resourceName = n.resource(a.resource)
    if (a.purpose && n.purpose(a.purpose)) a.purposeName = n.purpose(a.purpose)
    if (r.operator) a.operator = r.operator
    if (r.reason) a.reason = r.reason
    return a
  })
  const departments = [...depts.values()].sort((a, b) => b.accesses - a.accesses)
  for (const d of departments) {
    d.purposes.sort((a, b) => b.count - a.count)
    d.resources.sort((a, b) => b.count - a.count)
  }
  return {
    subject: { hash: o.hash, ...(o.masked ? { masked: o.masked } : {}) },
    node: o.node,
    from: o.from ?? null,
    to: o.to ?? null,
    generatedAt: new Date().toISOString(),
    total,
    departments,
    accesses,
    truncated: list.rows.length > REPORT_MAX_ACCESSES,
    includesAuditorLookups: !!o.includeAuditorLookups,
    note: 'Every access to data about this subject through this node, allowed or refused. Refused requests released no data. Each entry names the request id under which the full signed audit record can be retrieved.',
  }
}
