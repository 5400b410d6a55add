// Disputes in PostgreSQL (migration 020). Every state change is a conditional UPDATE (a
// repeated job or a double click changes nothing); every step is written with its sealed
// audit record (history.ts) in the same transaction.
import type { PoolClient } from 'pg'
import { inTransaction, type Db } from '../stores/postgres.js'
import type { Reason, Resolution } from './codes.js'

export interface Dispute {
  id: string
  requestId: string
  answerNode: string
  answerTime: string
  resource: string
  operation: string | null
  /** The subject's keyed hash, as in the disputed answer's audit record. */
  subject: string | null
  consumerDepartment: string
  consumerSystem: string
  /** Null at the consumer's node until the owner's `dispute-accepted` names it (docs/disputes.md "Across tiers"). */
  providerDepartment: string | null
  items: string[]
  reason: Reason
  description: string
  /** `refused`: the owning node refused it (delivery.lastError says why); closed without a resolution. */
  status: 'open' | 'resolved' | 'refused'
  /** Null at the consumer's node until the owner accepted it. */
  dueAt: string | null
  remindedAt: string | null
  escalatedAt: string | null
  resolution: Resolution | null
  resolutionNote: string | null
  effectiveFrom: string | null
  resolvedAt: string | null
  resolvedBy: string | null
  createdAt: string
  filedBy: string
  /** At the owner: the consumer's node the dispute came from (null: filed here). */
  originNode: string | null
  /** At the consumer's node: the dispute's way to the node holding the resource (null: a local dispute). */
  delivery: Delivery | null
}

export interface Delivery {
  state: 'forwarding' | 'delivered' | 'refused' | 'failed'
  ownerNode: string | null
  /** `CODE@node` of the last failure or of the owner's refusal. */
  lastError: string | null
}

const iso = (d: Date | null) => (d ? d.toISOString() : null)
const day = (d: Date | string | null) => (d === null ? null : typeof d === 'string' ? d.slice(0, 10) : `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`)

export const disputeFromRow = (r: any): Dispute => ({
  id: r.id,
  requestId: r.request_id,
  answerNode: r.answer_node,
  answerTime: iso(r.answer_time)!,
  resource: r.resource,
  operation: r.operation,
  subject: r.subject,
  consumerDepartment: r.consumer_department,
  consumerSystem: r.consumer_system,
  providerDepartment: r.provider_department,
  items: r.items,
  reason: r.reason,
  description: r.description,
  status: r.status,
  dueAt: iso(r.due_at)!,
  remindedAt: iso(r.reminded_at),
  escalatedAt: iso(r.escalated_at),
  resolution: r.resolution,
  resolutionNote: r.resolution_note,
  effectiveFrom: day(r.effective_from),
  resolvedAt: iso(r.resolved_at),
  resolvedBy: r.resolved_by,
  createdAt: iso(r.created_at)!,
  filedBy: r.filed_by,
  originNode: r.origin_node ?? null,
  delivery: r.delivery ? { state: r.delivery, ownerNode: r.owner_node ?? null, lastError: r.delivery_error ?? null } : null,
})

export { inTransaction }

/** A dispute as filed: the fields the consumer's filing fixes, the deadline as a Date. */
export type NewDispute = Pick<Dispute, 'id' | 'requestId' | 'answerNode' | 'answerTime' | 'resource' | 'operation' | 'subject' | 'consumerDepartment' | 'consumerSystem' | 'providerDepartment' | 'items' | 'reason' | 'description' | 'filedBy'> & {
  dueAt: Date | null
  /** At the owner: the consumer's node it came from. */
  originNode?: string
  /** At the consumer's node: on its way to the owner. */
  forwarding?: { ownerNode: string | null }
}

const UNIQUE_VIOLATION = '23505'

/** Inserts a dispute; null when this department already disputed that answer. `inTx` runs in the same transaction. */
export async function createDispute(db: Db, d: NewDispute, inTx: (c: PoolClient, d: Dispute) => Promise<void>): Promise<Dispute | null> {
  try {
    return await inTransaction(db, async (c) => {
      const { rows } = await c.query(
        `INSERT INTO disputes (id, request_id, answer_node, answer_time, resource, operation, subject, consumer_department,
           consumer_system, provider_department, items, reason, description, due_at, filed_by, origin_node, owner_node, delivery)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) RETURNING *`,
        [d.id, d.requestId, d.answerNode, d.answerTime, d.resource, d.operation, d.subject, d.consumerDepartment,
          d.consumerSystem, d.providerDepartment, d.items, d.reason, d.description, d.dueAt, d.filedBy,
          d.originNode ?? null, d.forwarding?.ownerNode ?? null, d.forwarding ? 'forwarding' : null],
      )
      const dispute = disputeFromRow(rows[0])
      await inTx(c, dispute)
      return dispute
    })
  } catch (e) {
    if ((e as { code?: string }).code === UNIQUE_VIOLATION) return null
    throw e
  }
}

export async function getDispute(db: Db, id: string): Promise<Dispute | null> {
  const { rows } = await db.query('SELECT * FROM disputes WHERE id = $1', [id])
  return rows[0] ? disputeFromRow(rows[0]) : null
}

export async function findByAnswer(db: Db, requestId: string, department: string): Promise<Dispute | null> {
  const { rows } = await db.query("SELECT * FROM disputes WHERE request_id = $1 AND consumer_department = $2 AND status <> 'refused'", [requestId, department])
  return rows[0] ? disputeFromRow(rows[0]) : null
}

export interface ListFilter {
  consumerDepartment?: string
  providerDepartment?: string
  status?: Dispute['status']
  resource?: string
  sort: 'created' | 'deadline'
  before?: string
  limit: number
}

export async function listDisputes(db: Db, f: ListFilter): Promise<Dispute[]> {
  const where: string[] = []
  const params: unknown[] = []
  if (f.consumerDepartment) where.push(`consumer_department = $${params.push(f.consumerDepartment)}`)
  if (f.providerDepartment) where.push(`provider_department = $${params.push(f.providerDepartment)}`)
  if (f.status) where.push(`status = $${params.push(f.status)}`)
  if (f.resource) where.push(`resource = $${params.push(f.resource)}`)
  if (f.before) where.push(`id < $${params.push(f.before)}`)
  const order = f.sort === 'deadline' ? 'due_at ASC NULLS LAST, id ASC' : 'id DESC'
  const { rows } = await db.query(
    `SELECT * FROM disputes ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY ${order} LIMIT $${params.push(f.limit)}`,
    params,
  )
  return rows.map(disputeFromRow)
}

export interface ResolutionInput {
  resolution: Resolution
  note: string
  effectiveFrom: string | null
  by: string
}

/** Resolves an open dispute; null if it was not open (resolved meanwhile). */
export async function resolveDispute(db: Db, id: string, r: ResolutionInput, inTx: (c: PoolClient, d: Dispute) => Promise<void>): Promise<Dispute | null> {
  return inTransaction(db, async (c) => {
    const { rows } = await c.query(
      `UPDATE disputes SET status = 'resolved', resolution = $2, resolution_note = $3, effective_from = $4, resolved_at = now(), resolved_by = $5
       WHERE id = $1 AND status = 'open' RETURNING *`,
      [id, r.resolution, r.note, r.effectiveFrom, r.by],
    )
    if (!rows[0]) return null
    const d = disputeFromRow(rows[0])
    await inTx(c, d)
    return d
  })
}

/**
 * Job side: marks the reminder or the escalation once; null if already done, resolved, or
 * not the moment (an escalation only once due, a reminder only before it). `now` is the job's clock.
 */
export async function markDeadline(db: Db, id: string, kind: 'reminded' | 'escalated', now: Date, inTx: (c: PoolClient, d: Dispute) => Promise<void>): Promise<Dispute | null> {
  const column = kind === 'reminded' ? 'reminded_at' : 'escalated_at'
  const due = kind === 'reminded' ? 'due_at > $2' : 'due_at <= $2'
  return inTransaction(db, async (c) => {
    const { rows } = await c.query(
      `UPDATE disputes SET ${column} = now() WHERE id = $1 AND status = 'open' AND ${column} IS NULL AND ${due} RETURNING *`,
      [id, now],
    )
    if (!rows[0]) return null
    const d = disputeFromRow(rows[0])
    await inTx(c, d)
    return d
  })
}

export interface DisputeEvent {
  at: string
  actor: string
  action: string
  /** The request id of the step's own audit record. */
  requestId: string
  /** The exact JSON text sealed (its digest is the record's responseDigest). */
  sealed: string
  /** Tongban-Evidence of that record. */
  evidence: string
}

export const addEvent = (c: PoolClient, disputeId: string, e: Omit<DisputeEvent, 'at'> & { at: string }) =>
  c.query('INSERT INTO dispute_events (dispute_id, at, actor, action, request_id, sealed, evidence) VALUES ($1, $2, $3, $4, $5, $6, $7)',
    [disputeId, e.at, e.actor, e.action, e.requestId, e.sealed, e.evidence])

export async function disputeEvents(db: Db, id: string): Promise<DisputeEvent[]> {
  const { rows } = await db.query('SELECT at, actor, action, request_id, sealed, evidence FROM dispute_events WHERE dispute_id = $1 ORDER BY id', [id])
  return rows.map((r) => ({ at: r.at.toISOString(), actor: r.actor, action: r.action, requestId: r.request_id, sealed: r.sealed, evidence: r.evidence }))
}

export interface Recipient {
  consumerDepartment: string
  answers: number
  lastAnswerAt: string
  notifiedAt: string
}

/**
 * Other departments that received answers of this resource about this subject (the keyed
 * hash) up to the correction, from the audit log: allowed answers of the resource's own
 * operations, not the dispute's steps, not the disputing department itself.
 */
export async function otherConsumers(db: Db, d: Dispute, until: Date): Promise<Array<{ department: string; answers: number; lastAnswerAt: Date }>> {
  if (!d.subject) return []
  const { rows } = await db.query(
    `SELECT consumer_department AS department, count(*)::int AS answers, max(time) AS last
       FROM audit_records
      WHERE subject = $1 AND resource = $2 AND decision = 'allowed' AND time <= $3
        AND consumer_department IS NOT NULL AND consumer_department <> $4
        AND (operation IS NULL OR operation NOT LIKE 'dispute.%')
      GROUP BY consumer_department ORDER BY consumer_department`,
    [d.subject, d.resource, until, d.consumerDepartment],
  )
  return rows.map((r) => ({ department: r.department, answers: r.answers, lastAnswerAt: r.last }))
}

export const addRecipient = (c: PoolClient, disputeId: string, r: { department: string; answers: number; lastAnswerAt: Date }) =>
  c.query(
    `INSERT INTO dispute_recipients (dispute_id, consumer_department, answers, last_answer_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (dispute_id, consumer_department) DO NOTHING`,
    [disputeId, r.department, r.answers, r.lastAnswerAt],
  )

export async function recipients(db: Db, id: string): Promise<Recipient[]> {
  const { rows } = await db.query('SELECT * FROM dispute_recipients WHERE dispute_id = $1 ORDER BY consumer_department', [id])
  return rows.map((r) => ({ consumerDepartment: r.consumer_department, answers: r.answers, lastAnswerAt: r.last_answer_at.toISOString(), notifiedAt: r.notified_at.toISOString() }))
}

/** The corrections later answers carry a notice of (notices.ts). */
export async function corrections(db: Db): Promise<Array<{ id: string; resource: string; subject: string; effectiveFrom: string; items: string[] }>> {
  const { rows } = await db.query(
    `SELECT id, resource, subject, effective_from, items FROM disputes WHERE resolution = 'CORRECTED' AND subject IS NOT NULL ORDER BY resolved_at`,
  )
  return rows.map((r) => ({ id: r.id, resource: r.resource, subject: r.subject, effectiveFrom: day(r.effective_from)!, items: r.items }))
}

// ---- a copy at the consumer's node (src/disputes/tiers.ts): what the owner's messages change.
// Conditional updates: a redelivered message changes nothing.

/** The owner took it: delivered, with the providing department and the deadline it set. */
export async function markDelivered(c: PoolClient, id: string, o: { ownerNode: string; providerDepartment: string | null; dueAt: string | null }): Promise<boolean> {
  const { rowCount } = await c.query(
    `UPDATE disputes SET delivery = 'delivered', delivery_error = NULL, delivery_at = now(), owner_node = $2,
       provider_department = coalesce($3, provider_department), due_at = coalesce($4::timestamptz, due_at)
     WHERE id = $1 AND delivery IN ('forwarding', 'failed')`,
    [id, o.ownerNode, o.providerDepartment, o.dueAt],
  )
  return !!rowCount
}

/** The owner refused it (`CODE@node`): closed, the department may file again. */
export async function markRefused(c: PoolClient, id: string, ownerNode: string, error: string): Promise<boolean> {
  const { rowCount } = await c.query(
    `UPDATE disputes SET status = 'refused', delivery = 'refused', delivery_error = $3, delivery_at = now(), owner_node = $2
     WHERE id = $1 AND status = 'open' AND delivery IN ('forwarding', 'failed')`,
    [id, ownerNode, error],
  )
  return !!rowCount
}

/** A hop further on gave up on it. */
export async function markUndeliverable(c: PoolClient, id: string, error: string): Promise<boolean> {
  const { rowCount } = await c.query(`UPDATE disputes SET delivery = 'failed', delivery_error = $2, delivery_at = now() WHERE id = $1 AND delivery = 'forwarding'`, [id, error])
  return !!rowCount
}

/** The owner's provider resolved it: the copy takes the resolution as sent; null if it was not open. */
export async function copyResolution(c: PoolClient, id: string, ownerNode: string, r: ResolutionInput & { at: string }): Promise<Dispute | null> {
  const { rows } = await c.query(
    `UPDATE disputes SET status = 'resolved', resolution = $2, resolution_note = $3, effective_from = $4, resolved_at = $5, resolved_by = $6,
       delivery = 'delivered', delivery_error = NULL, owner_node = $7
     WHERE id = $1 AND status = 'open' AND delivery IS NOT NULL RETURNING *`,
    [id, r.resolution, r.note, r.effectiveFrom, r.at, r.by, ownerNode],
  )
  return rows[0] ? disputeFromRow(rows[0]) : null
}
