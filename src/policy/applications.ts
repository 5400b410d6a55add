// Applications for conditional data and their decisions, in PostgreSQL. Every state change
// is a conditional UPDATE (so a repeated job or a double click changes nothing) plus an
// event row saying who, when and why.
import { monotonicFactory } from 'ulid'
import type { PoolClient } from 'pg'
import { inTransaction, type Db } from '../stores/postgres.js'
import { grantFromRow, type Grant } from './grants.js'

const ulid = monotonicFactory()

export interface Application {
  id: string
  consumerDepartment: string
  consumerSystem: string
  systemOnly: boolean
  resource: string
  /** Null at the consumer's node until the owning node has answered (application across tiers). */
  providerDepartment: string | null
  items: string[]
  purposes: string[]
  basis: string
  validFrom: string
  validTo: string
  dailyQuota: number
  status: 'pending' | 'approved' | 'rejected' | 'withdrawn'
  dueAt: string | null
  remindedAt: string | null
  escalatedAt: string | null
  decidedAt: string | null
  decidedBy: string | null
  decisionReason: string | null
  createdAt: string
  grantId?: string | null
  /** At the owning node: the consumer's node, where the decision goes back to (null: local). */
  originNode: string | null
  /** At the consumer's node: the node owning the resource (null: this node, or not known yet). */
  ownerNode: string | null
  /** At the consumer's node, for an application held by another node: how its submission travels. */
  delivery: Delivery | null
  /** What an approval granted (possibly narrowed): items, validity, daily quota. */
  granted: Granted | null
}

export type DeliveryState = 'forwarding' | 'delivered' | 'failed' | 'refused'
export interface Delivery {
  state: DeliveryState
  /** Attempts of this node's own leg, the hop it went to, and the last error seen on the way. */
  attempts: number
  nextHop: string | null
  lastError: string | null
  updatedAt: string | null
}
export interface Granted {
  items: string[]
  validFrom: string
  validTo: string
  dailyQuota: number
}

const iso = (d: Date | null) => (d ? d.toISOString() : null)

export const applicationFromRow = (r: any): Application => ({
  id: r.id,
  consumerDepartment: r.consumer_department,
  consumerSystem: r.consumer_system,
  systemOnly: r.system_only,
  resource: r.resource,
  providerDepartment: r.provider_department,
  items: r.items,
  purposes: r.purposes,
  basis: r.basis,
  validFrom: iso(r.valid_from)!,
  validTo: iso(r.valid_to)!,
  dailyQuota: r.daily_quota,
  status: r.status,
  dueAt: iso(r.due_at),
  remindedAt: iso(r.reminded_at),
  escalatedAt: iso(r.escalated_at),
  decidedAt: iso(r.decided_at),
  decidedBy: r.decided_by,
  decisionReason: r.decision_reason,
  createdAt: iso(r.created_at)!,
  grantId: r.grant_id ?? r.remote_grant_id ?? null,
  originNode: r.origin_node ?? null,
  ownerNode: r.owner_node ?? null,
  delivery: r.delivery
    ? {
        state: r.delivery,
        attempts: r.m_attempts ?? 0,
        nextHop: r.m_next_hop ?? null,
        lastError: r.delivery_error ?? r.m_last_error ?? null,
        updatedAt: iso(r.delivery_at),
      }
    : null,
  granted: r.granted ?? null,
})

export { inTransaction }

export const event = (c: PoolClient, id: string, actor: string, action: string, detail: object = {}) =>
  c.query('INSERT INTO application_events (application_id, actor, action, detail) VALUES ($1, $2, $3, $4)', [id, actor, action, detail])

export interface NewApplication {
  consumerDepartment: string
  consumerSystem: string
  systemOnly: boolean
  resource: string
  providerDepartment: string | null
  items: string[]
  purposes: string[]
  basis: string
  validFrom: Date
  validTo: Date
  dailyQuota: number
  dueAt: Date | null
  /** The person who applied (a workbench session), for the history; absent for a system. */
  actorName?: string
}

/** A person's name in an event's detail (only where a person acted: workbench sessions). */
const byName = (actorName: string | undefined) => (actorName ? { actorName } : {})

export const newApplicationId = (): string => ulid()

export interface CreateOptions {
  /** The id given by the consumer's node (an application that travelled here); default: a new one. */
  id?: string
  /** At the owner: the consumer's node. */
  originNode?: string
  /** At the consumer's node, for a resource held elsewhere: the owner if known, and 'forwarding'. */
  ownerNode?: string | null
  delivery?: DeliveryState
  /** Runs in the same transaction (the outbox row of the message that carries it). */
  inTx?: (c: PoolClient, a: Application) => Promise<void>
}

/**
 * Records an application. With a given id it is idempotent: a second call (a redelivered
 * message) creates nothing and answers the existing one with created = false.
 */
export async function createApplication(db: Db, a: NewApplication, o: CreateOptions = {}): Promise<{ application: Application; created: boolean }> {
  const id = o.id ?? ulid()
  return inTransaction(db, async (c) => {
    const { rows } = await c.query(
      `INSERT INTO applications (id, consumer_department, consumer_system, system_only, resource, provider_department,
         items, purposes, basis, valid_from, valid_to, daily_quota, due_at, origin_node, owner_node, delivery, delivery_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, CASE WHEN $16::text IS NULL THEN NULL ELSE now() END)
       ON CONFLICT (id) DO NOTHING RETURNING *`,
      [id, a.consumerDepartment, a.consumerSystem, a.systemOnly, a.resource, a.providerDepartment, a.items, a.purposes,
        a.basis, a.validFrom, a.validTo, a.dailyQuota, a.dueAt, o.originNode ?? null, o.ownerNode ?? null, o.delivery ?? null],
    )
    if (!rows[0]) {
      const { rows: existing } = await c.query(`${SELECT_WITH_GRANT} WHERE a.id = $1`, [id])
      return { application: applicationFromRow(existing[0]), created: false }
    }
    const application = applicationFromRow(rows[0])
    await event(c, id, a.consumerSystem, 'submitted', {
      ...byName(a.actorName), items: a.items, purposes: a.purposes, dueAt: a.dueAt,
      ...(o.originNode ? { origin: o.originNode } : {}), ...(o.delivery ? { delivery: o.delivery, owner: o.ownerNode ?? null } : {}),
    })
    await o.inTx?.(c, application)
    return { application, created: true }
  })
}

// The submission's own outbox row (application messages) gives its attempts and last error.
const SELECT_WITH_GRANT = `SELECT a.*, g.id AS grant_id, m.attempts AS m_attempts, m.last_error AS m_last_error, m.next_hop AS m_next_hop
  FROM applications a LEFT JOIN grants g ON g.application_id = a.id
  LEFT JOIN application_messages m ON a.delivery IS NOT NULL AND m.id = a.id || '.submit'`

export async function getApplication(db: Db, id: string): Promise<Application | null> {
  const { rows } = await db.query(`${SELECT_WITH_GRANT} WHERE a.id = $1`, [id])
  return rows[0] ? applicationFromRow(rows[0]) : null
}

export async function listApplications(
  db: Db,
  f: { consumerDepartment?: string; providerDepartment?: string; status?: string; sort?: 'created' | 'deadline'; limit: number },
): Promise<Application[]> {
  const where: string[] = []
  const params: unknown[] = []
  if (f.consumerDepartment) where.push(`a.consumer_department = $${params.push(f.consumerDepartment)}`)
  if (f.providerDepartment) where.push(`a.provider_department = $${params.push(f.providerDepartment)}`)
  // 'open': not decided yet (the reviewer's inbox).
  if (f.status) where.push(`a.status = $${params.push(f.status === 'open' ? 'pending' : f.status)}`)
  // The reviewer's inbox: the nearest deadline first (copies without a deadline last).
  const order = f.sort === 'deadline' ? 'a.due_at ASC NULLS LAST, a.id ASC' : 'a.created_at DESC, a.id DESC'
  const { rows } = await db.query(
    `${SELECT_WITH_GRANT} ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY ${order} LIMIT $${params.push(f.limit)}`,
    params,
  )
  return rows.map(applicationFromRow)
}

export async function applicationEvents(db: Db, id: string) {
  const { rows } = await db.query('SELECT at, actor, action, detail FROM application_events WHERE application_id = $1 ORDER BY id', [id])
  return rows.map((r) => ({ at: r.at.toISOString(), actor: r.actor, action: r.action, detail: r.detail }))
}

export interface Approval {
  items: string[]
  validFrom: Date
  validTo: Date
  dailyQuota: number
  reason?: string
  actorName?: string
}

/** Runs inside a decision's transaction: the outbox row that carries it to the consumer's node. */
export type DecisionHook = (c: PoolClient, a: Application, grant: Grant | null) => Promise<void>

/** Approves a pending application and creates its grant; null if it was not pending. */
export async function approveApplication(db: Db, id: string, actor: string, a: Approval, inTx?: DecisionHook): Promise<{ application: Application; grant: Grant } | null> {
  return inTransaction(db, async (c) => {
    const granted: Granted = { items: a.items, validFrom: a.validFrom.toISOString(), validTo: a.validTo.toISOString(), dailyQuota: a.dailyQuota }
    const { rows } = await c.query(
      `UPDATE applications SET status = 'approved', decided_at = now(), decided_by = $2, decision_reason = $3, granted = $4
       WHERE id = $1 AND status = 'pending' RETURNING *`,
      [id, actor, a.reason ?? null, granted],
    )
    if (!rows[0]) return null
    const app = applicationFromRow(rows[0])
    const g = await c.query(
      `INSERT INTO grants (id, application_id, consumer_department, consumer_system, resource, provider_department,
         items, purposes, valid_from, valid_to, daily_quota)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING *`,
      [ulid(), id, app.consumerDepartment, app.systemOnly ? app.consumerSystem : null, app.resource, app.providerDepartment,
        a.items, app.purposes, a.validFrom, a.validTo, a.dailyQuota],
    )
    const grant = grantFromRow(g.rows[0])
    await event(c, id, actor, 'approved', { ...byName(a.actorName), grant: grant.id, items: a.items, validFrom: a.validFrom, validTo: a.validTo, dailyQuota: a.dailyQuota, reason: a.reason })
    const application = { ...app, grantId: grant.id }
    await inTx?.(c, application, grant)
    return { application, grant }
  })
}

export async function rejectApplication(db: Db, id: string, actor: string, reason: string, inTx?: DecisionHook, actorName?: string): Promise<Application | null> {
  return inTransaction(db, async (c) => {
    const { rows } = await c.query(
      `UPDATE applications SET status = 'rejected', decided_at = now(), decided_by = $2, decision_reason = $3
       WHERE id = $1 AND status = 'pending' RETURNING *`,
      [id, actor, reason],
    )
    if (!rows[0]) return null
    await event(c, id, actor, 'rejected', { ...byName(actorName), reason })
    const application = applicationFromRow(rows[0])
    await inTx?.(c, application, null)
    return application
  })
}

/**
 * Job side: marks a reminder or an escalation once; false if already done, decided, or not
 * the moment: an escalation only once due, a reminder only before (then the escalation
 * covers it). `now` is the job's clock (the worker's, as the processor's check of its due time).
 */
export async function markDeadlineEvent(db: Db, id: string, kind: 'reminded' | 'escalated', now = new Date()): Promise<boolean> {
  const column = kind === 'reminded' ? 'reminded_at' : 'escalated_at'
  const due = kind === 'reminded' ? 'due_at > $2' : 'due_at <= $2'
  return inTransaction(db, async (c) => {
    const { rows } = await c.query(
      `UPDATE applications SET ${column} = now() WHERE id = $1 AND status = 'pending' AND ${column} IS NULL AND ${due} RETURNING due_at, provider_department`,
      [id, now],
    )
    if (!rows[0]) return false
    await event(c, id, 'tongban-deadlines', kind === 'reminded' ? 'reminder-sent' : 'escalated', {
      dueAt: rows[0].due_at, provider: rows[0].provider_department,
    })
    return true
  })
}

export async function listGrants(db: Db, f: { consumerDepartment?: string; providerDepartment?: string; status?: string; limit: number }): Promise<Grant[]> {
  const where: string[] = []
  const params: unknown[] = []
  if (f.consumerDepartment && f.providerDepartment) {
    where.push(`(consumer_department = $${params.push(f.consumerDepartment)} OR provider_department = $${params.push(f.providerDepartment)})`)
  } else if (f.consumerDepartment) where.push(`consumer_department = $${params.push(f.consumerDepartment)}`)
  else if (f.providerDepartment) where.push(`provider_department = $${params.push(f.providerDepartment)}`)
  if (f.status) where.push(`status = $${params.push(f.status)}`)
  const { rows } = await db.query(
    `SELECT * FROM grants ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at DESC, id DESC LIMIT $${params.push(f.limit)}`,
    params,
  )
  return rows.map(grantFromRow)
}

export async function getGrant(db: Db, id: string): Promise<Grant | null> {
  const { rows } = await db.query('SELECT * FROM grants WHERE id = $1', [id])
  return rows[0] ? grantFromRow(rows[0]) : null
}

/** Revokes an active grant; null if it was not active. */
export async function revokeGrant(db: Db, id: string, actor: string, reason: string, actorName?: string): Promise<Grant | null> {
  return inTransaction(db, async (c) => {
    const { rows } = await c.query(
      `UPDATE grants SET status = 'revoked', revoked_at = now(), revoked_by = $2, revoke_reason = $3
       WHERE id = $1 AND status = 'active' RETURNING *`,
      [id, actor, reason],
    )
    if (!rows[0]) return null
    await event(c, rows[0].application_id, actor, 'grant-revoked', { ...byName(actorName), grant: id, reason })
    return grantFromRow(rows[0])
  })
}

/** Job side: an expired grant is marked so (validity is already enforced by the clock, the gateway's: `now`). */
export async function expireGrant(db: Db, id: string, now = new Date()): Promise<boolean> {
  return inTransaction(db, async (c) => {
    const { rows } = await c.query(
      `UPDATE grants SET status = 'expired' WHERE id = $1 AND status = 'active' AND valid_to <= $2 RETURNING application_id`,
      [id, now],
    )
    if (!rows[0]) return false
    await event(c, rows[0].application_id, 'tongban-deadlines', 'grant-expired', { grant: id })
    return true
  })
}
