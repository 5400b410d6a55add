// PostgreSQL side of sealing: one statement writes a batch (checkpoint + records) atomically,
// and refuses it unless it extends the chain's committed head.
import type { Db } from '../stores/postgres.js'
import type { AuditRecord, Checkpoint } from '../evidence/evidence.js'

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
  /** The records as JSON (the sealer passes the JCS text it hashed); made here if absent. */
  recordsJson?: string[]
}

// The checkpoint insert only happens when `prev` names the committed head (or this is the
// first, or the resume point after an acknowledged cut: the high-water mark, high-water.ts);
// the records insert reads from it, so a broken chain writes nothing at all.
// The records travel as one JSON array (the search columns are read out of it in SQL):
// thirteen array parameters, each escaped element by element by the driver, cost more
// per record than the rest of the write (bench/, docs/performance.md).
const INSERT_BATCH = `
WITH cp AS (
  INSERT INTO audit_checkpoints (chain, seq, node, root, size, prev, time, alg, kid, sig, hash, checkpoint)
  SELECT $1::text, $2::bigint, $3::text, $4::text, $5::integer, $6::text, $7::timestamptz, $8::text,
    $9::text, $10::text, $11::text, $12::jsonb
  WHERE ($2::bigint = 1 AND $6::text = '${GENESIS}')
     OR EXISTS (SELECT 1 FROM audit_checkpoints WHERE chain = $1::text AND seq = $2::bigint - 1 AND hash = $6::text)
     OR EXISTS (SELECT 1 FROM audit_alarms WHERE chain = $1::text AND kind = 'cut-acknowledged'
                AND hwm_seq = $2::bigint - 1 AND hwm_hash = $6::text)
  RETURNING chain, seq
)
INSERT INTO audit_records (chain, seq, idx, time, request_id, consumer_department, consumer_system,
  resource, operation, purpose, case_id, decision, reason, subject, leaf, record)
SELECT cp.chain, cp.seq, u.idx - 1, (u.r->>'time')::timestamptz, u.r->>'requestId',
  u.r->'consumer'->>'department', u.r->'consumer'->>'system', u.r->>'resource', u.r->>'operation',
  u.r->>'purpose', u.r->>'caseId', u.r->>'decision', u.r->>'reason', u.r->>'subject', u.leaf, u.r
FROM cp, ROWS FROM (jsonb_array_elements($13::jsonb), unnest($14::text[])) WITH ORDINALITY AS u(r, leaf, idx)`

export class ChainBrokenError extends Error {}

export async function writeBatch(db: Db, b: SealedBatch): Promise<void> {
  const cp = b.checkpoint
  const json = b.recordsJson ?? b.records.map((r) => JSON.stringify(r))
  // A named statement: each connection parses and plans it once, not once per batch
  // (PostgreSQL shares the machine's cores with the gateway).
  const res = await db.query({
    name: 'tongban-audit-batch',
    text: INSERT_BATCH,
    values: [
      cp.chain, cp.seq, cp.node, cp.root, cp.size, cp.prev, cp.time, cp.alg, cp.kid, b.sig, b.hash,
      JSON.stringify({ ...cp, sig: b.sig }),
      `[${json.join(',')}]`,
      b.leaves,
    ],
  })
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
