// The delivery log: one row per notice and channel, from queued to delivered or failed,
// with the attempts made and the last error (never personal data: notices name none).
import { monotonicFactory } from 'ulid'
import type { Db } from '../../stores/postgres.js'

const ulid = monotonicFactory()

export type Channel = 'webhook' | 'email'
export type DeliveryStatus = 'queued' | 'delivered' | 'failed'

export interface Delivery {
  id: string
  notificationId: string
  department: string
  channel: Channel
  target: string
  status: DeliveryStatus
  attempts: number
  lastError: string | null
  createdAt: string
  updatedAt: string
  deliveredAt: string | null
}

const fromRow = (r: any): Delivery => ({
  id: r.id,
  notificationId: r.notification_id,
  department: r.department,
  channel: r.channel,
  target: r.target,
  status: r.status,
  attempts: r.attempts,
  lastError: r.last_error,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
  deliveredAt: r.delivered_at ? r.delivered_at.toISOString() : null,
})

/** The new delivery's id, or null when this notice already has one on this channel. */
export async function addDelivery(db: Db, d: { notificationId: string; department: string; channel: Channel; target: string }): Promise<string | null> {
  const { rows } = await db.query(
    `INSERT INTO notification_deliveries (id, notification_id, department, channel, target) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (notification_id, channel) DO NOTHING RETURNING id`,
    [ulid(), d.notificationId, d.department, d.channel, d.target],
  )
  return rows[0]?.id ?? null
}

/** A queued delivery with its notice, or null when there is none (or it is no longer queued). */
export async function queuedDelivery(db: Db, id: string): Promise<{ delivery: Delivery; notice: any } | null> {
  const { rows } = await db.query(
    `SELECT d.*, row_to_json(n.*) AS notice FROM notification_deliveries d JOIN notifications n ON n.id = d.notification_id WHERE d.id = $1 AND d.status = 'queued'`,
    [id],
  )
  return rows[0] ? { delivery: fromRow(rows[0]), notice: rows[0].notice } : null
}

export async function markDelivered(db: Db, id: string): Promise<void> {
  await db.query(`UPDATE notification_deliveries SET status = 'delivered', attempts = attempts + 1, last_error = NULL, updated_at = now(), delivered_at = now() WHERE id = $1 AND status = 'queued'`, [id])
}

/** One failed attempt; `final`: no more will be made. */
export async function markAttemptFailed(db: Db, id: string, error: string, final: boolean, counts = true): Promise<void> {
  await db.query(
    `UPDATE notification_deliveries SET attempts = attempts + $4::int, last_error = $2, status = CASE WHEN $3 THEN 'failed' ELSE status END, updated_at = now() WHERE id = $1 AND status = 'queued'`,
    [id, error.slice(0, 500), final, counts ? 1 : 0],
  )
}

/** Newest first; `department` null: all (operators). */
export async function listDeliveries(db: Db, f: { department: string | null; status?: DeliveryStatus; channel?: Channel; before?: string; limit: number }): Promise<Delivery[]> {
  const params: unknown[] = []
  const where: string[] = []
  if (f.department !== null) where.push(`department = $${params.push(f.department)}`)
  if (f.status) where.push(`status = $${params.push(f.status)}`)
  if (f.channel) where.push(`channel = $${params.push(f.channel)}`)
  if (f.before) where.push(`id < $${params.push(f.before)}`)
  const { rows } = await db.query(
    `SELECT * FROM notification_deliveries ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT $${params.push(f.limit)}`,
    params,
  )
  return rows.map(fromRow)
}
