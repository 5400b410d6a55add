// PostgreSQL side of sealing: one statement writes a batch (checkpoint + records) atomically,
// and refuses it unless it extends the chain's committed head.
import type { Db } from '../stores/postgres.js'
import type { AuditRecord, Checkpoint } from './evidence.js'

export const GENESIS = '0'.repeat(64)

export interface ChainHead {
  seq: number
  hash: string
}

export interface SealedBatch {
  checkpoint: Checkpoint
  sig: string
  hash: string
  records: AuditRecord[]
  leaves: string[]
}

// The checkpoint insert only happens when `prev` names the committed head (or this is the
// first); the records insert reads from it, so a broken chain writes nothing at all.
const INSERT_BATCH = `
WITH cp AS (
  INSERT INTO audit_checkpoints (chain, seq, node, root, size, prev, time, alg, kid, sig, hash, checkpoint)
  SELECT $1::text, $2::bigint, $3::text, $4::text, $5::integer, $6::text, $7::timestamptz, $8::text,
    $9::text, $10::text, $11::text, $12::jsonb
  WHERE ($2::bigint = 1 AND $6::text = '${GENESIS}')
     OR EXISTS (SELECT 1 FROM audit_checkpoints WHERE chain = $1::text AND seq = $2::bigint - 1 AND hash = $6::text)
  RETURNING chain, seq
)
INSERT INTO audit_records (chain, seq, idx, time, request_id, consumer_department, consumer_system,
  resource, operation, purpose, case_id, decision, reason, subject, leaf, record)
SELECT cp.chain, cp.seq, u.idx - 1, u.time, u.request_id, u.dept, u.sys, u.resource, u.operation,
  u.purpose, u.case_id, u.decision, u.reason, u.subject, u.leaf, u.record
FROM cp, unnest($13::timestamptz[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[],
  $19::text[], $20::text[], $21::text[], $22::text[], $23::text[], $24::text[], $25::jsonb[])
  WITH ORDINALITY AS u(time, request_id, dept, sys, resource, operation, purpose, case_id, decision,
  reason, subject, leaf, record, idx)`

export class ChainBrokenError extends Error {}

export async function writeBatch(db: Db, b: SealedBatch): Promise<void> {
  const cp = b.checkpoint
  const col = <T>(f: (r: AuditRecord) => T) => b.records.map(f)
  const res = await db.query(INSERT_BATCH, [
    cp.chain, cp.seq, cp.node, cp.root, cp.size, cp.prev, cp.time, cp.alg, cp.kid, b.sig, b.hash,
    JSON.stringify({ ...cp, sig: b.sig }),
    col((r) => r.time),
    col((r) => r.requestId),
    col((r) => r.consumer?.department ?? null),
    col((r) => r.consumer?.system ?? null),
    col((r) => r.resource ?? null),
    col((r) => r.operation ?? null),
    col((r) => r.purpose ?? null),
    col((r) => r.caseId ?? null),
    col((r) => r.decision),
    col((r) => r.reason ?? null),
    col((r) => r.subject ?? null),
    b.leaves,
    col((r) => JSON.stringify(r)),
  ])
  if (res.rowCount !== b.records.length) {
    throw new ChainBrokenError(`checkpoint ${cp.chain}#${cp.seq} does not extend the committed chain`)
  }
}

export async function readHead(db: Db, chain: string): Promise<ChainHead> {
  const { rows } = await db.query(
    'SELECT seq, hash FROM audit_checkpoints WHERE chain = $1 ORDER BY seq DESC LIMIT 1',
    [chain],
  )
  return rows[0] ? { seq: Number(rows[0].seq), hash: rows[0].hash } : { seq: 0, hash: GENESIS }
}
