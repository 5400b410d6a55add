// The inbox in PostgreSQL: one row per notice; a repeated event (a retried job, a redelivered
// message) finds its `ref` taken and adds nothing.
import { monotonicFactory } from 'ulid'
import type { Db } from '../stores/postgres.js'
import type { NotificationKind, Text } from './texts.js'

const ulid = monotonicFactory()

export interface Notice {
  department: string
  system?: string | null
  kind: NotificationKind
  title: Text
  body: Text
  link?: string
  ref: string
}

export interface Notification {
  id: string
  kind: NotificationKind
  title: Text
  body: Text
  link?: string
  createdAt: string
  readAt: string | null
}

const fromRow = (r: any): Notification => ({
  id: r.id,
  kind: r.kind,
  title: r.title,
  body: r.body,
  ...(r.link ? { link: r.link } : {}),
  createdAt: r.created_at.toISOString(),
  readAt: r.read_at ? r.read_at.toISOString() : null,
})

/** The new notice's id; null when its `ref` was already told. */
export async function addNotice(db: Db, n: Notice): Promise<string | null> {
  const { rows } = await db.query(
    `INSERT INTO notifications (id, department, system, kind, title, body, link, ref) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (ref) DO NOTHING RETURNING id`,
    [ulid(), n.department, n.system ?? null, n.kind, n.title, n.body, n.link ?? null, n.ref],
  )
  return rows[0]?.id ?? null
}

/** Who reads: a department, and one of its systems or people (notices for the department, or for that one). */
export interface Reader {
  department: string
  system: string
}

export async function listNotices(db: Db, r: Reader, f: { unread?: boolean; before?: string; limit: number }): Promise<Notification[]> {
  const params: unknown[] = [r.department, r.system]
  const where = ['department = $1', '(system IS NULL OR system = $2)']
  if (f.unread) where.push('read_at IS NULL')
  if (f.before) where.push(`id < $${params.push(f.before)}`)
  const { rows } = await db.query(`SELECT * FROM notifications WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT $${params.push(f.limit)}`, params)
  return rows.map(fromRow)
}

/** Marks read (once; a second call keeps the first time); null when the reader cannot see it. */
export async function markRead(db: Db, r: Reader, id: string): Promise<Notification | null> {
  const { rows } = await db.query(
    `UPDATE notifications SET read_at = coalesce(read_at, now()) WHERE id = $1 AND department = $2 AND (system IS NULL OR system = $3) RETURNING *`,
    [id, r.department, r.system],
  )
  return rows[0] ? fromRow(rows[0]) : null
}
