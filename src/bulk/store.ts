// PostgreSQL side of bulk verification: batches, their items (chunked) and their results
// (one row per item, unique per batch and index). See migrations/003_batches.sql.
import type { Db } from '../stores/postgres.js'
import type { Principal } from '../auth/principal.js'

export type BatchStatus = 'queued' | 'running' | 'completed' | 'cancelled'

export interface Batch {
  id: string
  consumerDepartment: string
  consumerSystem: string
  principal: Principal
  resource: string
  operation: string
  service: string | null
  purpose: string
  caseId: string
  operator: string | null
  requestId: string
  total: number
  chunkSize: number
  succeeded: number
  failed: number
  status: BatchStatus
  createdAt: Date
  startedAt: Date | null
  updatedAt: Date
  finishedAt: Date | null
}

export interface NewBatch {
  id: string
  principal: Principal
  resource: string
  operation: string
  service: string | null
  purpose: string
  caseId: string
  operator: string | null
  requestId: string
  chunkSize: number
}

export interface ResultRow {
  idx: number
  ok: boolean
  status: number
  code: string | null
  /** JCS of the answer or of the problem: the exact bytes the record's responseDigest covers. */
  body: string
  requestId: string
  /** Tongban-Evidence value (base64url JSON). */
  evidence: string
  /** Tongban-Data-Notice the item's answer carried (a corrected subject), else null. */
  dataNotice: string | null
}

const fromRow = (r: any): Batch => ({
  id: r.id,
  consumerDepartment: r.consumer_department,
  consumerSystem: r.consumer_system,
  principal: r.principal,
  resource: r.resource,
  operation: r.operation,
  service: r.service,
  purpose: r.purpose,
  caseId: r.case_id,
  operator: r.operator,
  requestId: r.request_id,
  total: r.total,
  chunkSize: r.chunk_size,
  succeeded: r.succeeded,
  failed: r.failed,
  status: r.status,
  createdAt: r.created_at,
  startedAt: r.started_at,
  updatedAt: r.updated_at,
  finishedAt: r.finished_at,
})

/** Rows of chunk JSON written per statement: bounds one statement's size. */
const CHUNKS_PER_STATEMENT = 100

/** Stores a batch and its items, chunked, in one transaction. Returns the number of chunks. */
export async function createBatch(db: Db, b: NewBatch, items: unknown[]): Promise<number> {
  const chunks: string[] = []
  for (let i = 0; i < items.length; i += b.chunkSize) chunks.push(JSON.stringify(items.slice(i, i + b.chunkSize)))
  const client = await db.connect()
  try {
    await client.query('BEGIN')
    await client.query(
      `INSERT INTO batches (id, consumer_department, consumer_system, principal, resource, operation, service, purpose, case_id, operator, request_id, total, chunk_size)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [b.id, b.principal.department, b.principal.system, JSON.stringify(b.principal), b.resource, b.operation, b.service, b.purpose, b.caseId, b.operator, b.requestId, items.length, b.chunkSize],
    )
    for (let start = 0; start < chunks.length; start += CHUNKS_PER_STATEMENT) {
      const part = chunks.slice(start, start + CHUNKS_PER_STATEMENT)
      await client.query(
        `INSERT INTO batch_items (batch_id, chunk, items) SELECT $1, n, j::jsonb FROM unnest($2::int[], $3::text[]) AS u(n, j)`,
        [b.id, part.map((_, k) => start + k), part],
      )
    }
    await client.query('COMMIT')
    return chunks.length
  } catch (e) {
    await client.query('ROLLBACK').catch(() => {})
    throw e
  } finally {
    client.release()
  }
}

export async function getBatch(db: Db, id: string): Promise<Batch | null> {
  const { rows } = await db.query('SELECT * FROM batches WHERE id = $1', [id])
  return rows[0] ? fromRow(rows[0]) : null
}

export async function listBatches(db: Db, system: string, limit: number): Promise<Batch[]> {
  const { rows } = await db.query('SELECT * FROM batches WHERE consumer_system = $1 ORDER BY created_at DESC LIMIT $2', [system, limit])
  return rows.map(fromRow)
}

export async function statusOf(db: Db, id: string): Promise<BatchStatus | null> {
  const { rows } = await db.query('SELECT status FROM batches WHERE id = $1', [id])
  return rows[0]?.status ?? null
}

/** queued → running (first chunk taken). */
export async function markRunning(db: Db, id: string): Promise<void> {
  await db.query(`UPDATE batches SET status = 'running', started_at = coalesce(started_at, now()), updated_at = now() WHERE id = $1 AND status = 'queued'`, [id])
}

/** The items of one chunk, or null once the batch has ended (items are deleted then). */
export async function loadChunk(db: Db, id: string, chunk: number): Promise<unknown[] | null> {
  const { rows } = await db.query('SELECT items FROM batch_items WHERE batch_id = $1 AND chunk = $2', [id, chunk])
  return rows[0] ? rows[0].items : null
}

/** Indices in [from, to] that already have a result. */
export async function doneIndices(db: Db, id: string, from: number, to: number): Promise<Set<number>> {
  const { rows } = await db.query('SELECT idx FROM batch_results WHERE batch_id = $1 AND idx BETWEEN $2 AND $3', [id, from, to])
  return new Set(rows.map((r) => r.idx as number))
}

export async function countResults(db: Db, id: string, from: number, to: number): Promise<number> {
  const { rows } = await db.query('SELECT count(*)::int AS n FROM batch_results WHERE batch_id = $1 AND idx BETWEEN $2 AND $3', [id, from, to])
  return rows[0].n
}

export interface Progress {
  succeeded: number
  failed: number
  total: number
  status: BatchStatus
}

/**
 * Writes results and counts them in one statement: only rows actually inserted (not a
 * duplicate of an index already written) are counted, and the batch completes when the
 * last one lands. A cancelled batch stays cancelled.
 */
export async function writeResults(db: Db, id: string, rows: ResultRow[]): Promise<Progress | null> {
  const { rows: out } = await db.query(
    `WITH ins AS (
       INSERT INTO batch_results (batch_id, idx, ok, status, code, body, request_id, evidence, data_notice)
       SELECT $1, * FROM unnest($2::int[], $3::boolean[], $4::smallint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
       ON CONFLICT (batch_id, idx) DO NOTHING
       RETURNING ok
     ), n AS (
       SELECT count(*) FILTER (WHERE ok)::int AS s, count(*) FILTER (WHERE NOT ok)::int AS f FROM ins
     )
     UPDATE batches b SET
       succeeded = b.succeeded + n.s,
       failed = b.failed + n.f,
       updated_at = now(),
       status = CASE WHEN b.status = 'cancelled' THEN b.status
                     WHEN b.succeeded + n.s + b.failed + n.f >= b.total THEN 'completed'
                     ELSE 'running' END,
       finished_at = CASE WHEN b.status <> 'cancelled' AND b.succeeded + n.s + b.failed + n.f >= b.total THEN now() ELSE b.finished_at END
     FROM n WHERE b.id = $1
     RETURNING b.succeeded, b.failed, b.total, b.status`,
    [
      id,
      rows.map((r) => r.idx),
      rows.map((r) => r.ok),
      rows.map((r) => r.status),
      rows.map((r) => r.code),
      rows.map((r) => r.body),
      rows.map((r) => r.requestId),
      rows.map((r) => r.evidence),
      rows.map((r) => r.dataNotice),
    ],
  )
  return out[0] ?? null
}

/** Items hold raw identifiers: gone as soon as the batch has ended. */
export async function deleteItems(db: Db, id: string): Promise<void> {
  await db.query('DELETE FROM batch_items WHERE batch_id = $1', [id])
}

/** Cancels a queued or running batch; returns the batch as it is afterwards, or null if absent. */
export async function cancelBatch(db: Db, id: string, by: string): Promise<{ batch: Batch; changed: boolean } | null> {
  const { rows } = await db.query(
    `UPDATE batches SET status = 'cancelled', finished_at = now(), updated_at = now(), cancelled_by = $2
     WHERE id = $1 AND status IN ('queued', 'running') RETURNING *`,
    [id, by],
  )
  if (rows[0]) {
    await deleteItems(db, id)
    return { batch: fromRow(rows[0]), changed: true }
  }
  const batch = await getBatch(db, id)
  return batch ? { batch, changed: false } : null
}

/** Results in index order from `from`, a page at a time (keyset pagination). */
export async function* readResults(db: Db, id: string, from = 0, page = 1000): AsyncGenerator<ResultRow> {
  let next = from
  for (;;) {
    const { rows } = await db.query(
      `SELECT idx, ok, status, code, body, request_id, evidence, data_notice FROM batch_results
       WHERE batch_id = $1 AND idx >= $2 ORDER BY idx LIMIT $3`,
      [id, next, page],
    )
    for (const r of rows) yield { idx: r.idx, ok: r.ok, status: r.status, code: r.code, body: r.body, requestId: r.request_id, evidence: r.evidence, dataNotice: r.data_notice }
    if (rows.length < page) return
    next = rows[rows.length - 1].idx + 1
  }
}

/** Unfinished batches with no progress for `idleMs`: candidates for re-enqueueing their chunks. */
export async function staleBatches(db: Db, idleMs: number): Promise<Batch[]> {
  const { rows } = await db.query(
    `SELECT * FROM batches WHERE status IN ('queued', 'running') AND updated_at < now() - make_interval(secs => $1::double precision / 1000) ORDER BY updated_at LIMIT 50`,
    [idleMs],
  )
  return rows.map(fromRow)
}

export async function touch(db: Db, id: string): Promise<void> {
  await db.query('UPDATE batches SET updated_at = now() WHERE id = $1', [id])
}

/** Housekeeping: items of ended batches, and whole batches ended more than `days` ago. */
export async function purge(db: Db, days: number): Promise<{ items: number; batches: number }> {
  const items = await db.query(
    `DELETE FROM batch_items i USING batches b WHERE i.batch_id = b.id AND b.status IN ('completed', 'cancelled')`,
  )
  const batches = await db.query(`DELETE FROM batches WHERE finished_at < now() - make_interval(days => $1)`, [days])
  return { items: items.rowCount ?? 0, batches: batches.rowCount ?? 0 }
}
