// Dispute statistics per resource (docs/disputes.md): disputes filed in the period, the share
// resolved by the deadline, the median time to resolve, and corrections per 10,000 answers
// (allowed answers of the resource in the same period, from the audit log). Counted where the
// resource is held: a copy at the consumer's node of a dispute sent elsewhere is not counted.
import type { Db } from '../stores/postgres.js'

export interface ResourceStats {
  resource: string
  providerDepartment: string
  filed: number
  open: number
  resolved: number
  byReason: Record<string, number>
  byResolution: Record<string, number>
  resolvedInTimeShare: number | null
  medianSecondsToResolve: number | null
  corrections: number
  answers: number
  correctionsPer10000Answers: number | null
}

export async function disputeStats(db: Db, f: { from: Date; to: Date; providerDepartment: string | null }): Promise<ResourceStats[]> {
  const params: unknown[] = [f.from, f.to]
  const own = f.providerDepartment ? `AND provider_department = $${params.push(f.providerDepartment)}` : ''
  const { rows } = await db.query(
    `SELECT resource, min(provider_department) AS provider,
            count(*)::int AS filed,
            count(*) FILTER (WHERE status = 'open')::int AS open,
            count(*) FILTER (WHERE status = 'resolved')::int AS resolved,
            count(*) FILTER (WHERE status = 'resolved' AND resolved_at <= due_at)::int AS in_time,
            count(*) FILTER (WHERE status = 'resolved' OR due_at < now())::int AS due,
            count(*) FILTER (WHERE resolution = 'CORRECTED')::int AS corrections,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM resolved_at - created_at)) FILTER (WHERE status = 'resolved') AS median_s,
            jsonb_object_agg(reason, n_reason) AS by_reason,
            jsonb_object_agg(coalesce(resolution, 'OPEN'), n_resolution) AS by_resolution
       FROM (SELECT *, count(*) OVER (PARTITION BY resource, reason) AS n_reason,
                    count(*) OVER (PARTITION BY resource, resolution) AS n_resolution
               FROM disputes WHERE created_at >= $1 AND created_at < $2 AND delivery IS NULL ${own}) d
      GROUP BY resource ORDER BY resource`,
    params,
  )
  if (!rows.length) return []
  // Answers that released data, not workflow steps recorded under the resource's code.
  const answers = await db.query(
    `SELECT resource, count(*)::int AS n FROM audit_records
      WHERE time >= $1 AND time < $2 AND decision = 'allowed' AND resource = ANY($3)
        AND (operation IS NULL OR (operation NOT LIKE 'dispute.%' AND operation NOT LIKE 'application.%'))
      GROUP BY resource`,
    [f.from, f.to, rows.map((r) => r.resource)],
  )
  const answered = new Map(answers.rows.map((r) => [r.resource, r.n as number]))
  return rows.map((r) => {
    const n = answered.get(r.resource) ?? 0
    const byResolution = { ...r.by_resolution }
    delete byResolution.OPEN
    return {
      resource: r.resource,
      providerDepartment: r.provider,
      filed: r.filed,
      open: r.open,
      resolved: r.resolved,
      byReason: r.by_reason,
      byResolution,
      resolvedInTimeShare: r.due ? r.in_time / r.due : null,
      medianSecondsToResolve: r.median_s === null ? null : Math.round(Number(r.median_s) * 10) / 10,
      corrections: r.corrections,
      answers: n,
      correctionsPer10000Answers: n ? Math.round((r.corrections / n) * 10000 * 100) / 100 : null,
    }
  })
}
