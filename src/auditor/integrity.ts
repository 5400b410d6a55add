// Integrity of the audit log (docs/audit.md): re-verifies, batch by batch and chain by
// chain, that every record hashes to its stored leaf, that the leaves (in index order)
// fold to the batch's signed Merkle root, that every checkpoint's signature verifies with
// a node certificate that chains to the trusted CA, and that the checkpoints form an
// unbroken hash chain (each `prev` names the hash of seq - 1; seqs contiguous). A
// truncated tail is only visible against a head recorded elsewhere: anchors, and the heads
// the parent node holds (src/tiers/checkpoint-push.ts).
//
// The verifier is fed batches in (chain, seq) order by a source — the database
// (verifyDatabase, below) or an offline bundle (bundle.ts) — so both check exactly the same
// things and report the same failure kinds.
import { jcs } from '../evidence/jcs.js'
import { buildTree, leafHash } from '../evidence/merkle.js'
import { checkpointHash, hashOfVersion, versionOf, type Anchor, type AuditRecord, type Checkpoint } from '../evidence/evidence.js'
import { GENESIS } from '../audit/store.js'
import { isSuiteName, verifySignature } from '../pki/suites.js'
import { CertificateSet } from '../pki/certificate-set.js'
import type { Db } from '../stores/postgres.js'
import { recordedCuts, type Mark, type RecordedCut } from '../audit/high-water.js'

export type FailureKind =
  | 'leaf-mismatch' // a record no longer hashes to its stored leaf (an edited field)
  | 'column-mismatch' // a search column disagrees with the hashed record (search would lie)
  | 'root-mismatch' // the leaves do not fold to the signed root (edited leaf, reordered records)
  | 'record-missing' // fewer records than the checkpoint's size (a deleted record)
  | 'record-extra' // more records than the checkpoint's size, or an index twice
  | 'orphan-record' // a record whose batch has no checkpoint
  | 'checkpoint-hash' // the stored hash is not the hash of the checkpoint
  | 'checkpoint-fields' // the checkpoint's columns disagree with the signed checkpoint
  | 'unknown-kid' // no certificate for the checkpoint's kid
  | 'untrusted-certificate' // the certificate does not chain to the trusted CA, or was not valid then
  | 'unsupported-alg'
  | 'bad-signature' // the checkpoint signature does not verify (replaced or edited)
  | 'chain-gap' // a checkpoint (a whole batch) is missing: seqs not contiguous
  | 'chain-broken' // prev does not name the hash of the previous checkpoint
  | 'truncated' // an anchored checkpoint is gone (anchor, parent, high-water mark, a client's evidence): the tail was cut
  | 'cut' // a cut the node recorded (audit_alarms) and an operator acknowledged: those seqs are gone for good
  | 'anchor-mismatch' // the checkpoint at an anchored seq is not the anchored one
  | 'bundle-malformed' // offline bundles only: unreadable, or cut short

export interface Failure {
  kind: FailureKind
  chain: string
  seq: number
  idx?: number
  detail: string
}

export interface ChainSummary {
  chain: string
  firstSeq: number
  lastSeq: number
  /** Hash of the last checkpoint verified (what an auditor anchors). */
  head: string
  checkpoints: number
}

export interface IntegrityReport {
  ok: boolean
  records: number
  checkpoints: number
  /** Batches whose records were removed by retention (exported first): checkpoints verified only. */
  retainedBatches: number
  anchorsChecked: number
  chains: ChainSummary[]
  firstFailure: Failure | null
  failureCount: number
  /** Up to 20 failures, in the order found. */
  failures: Failure[]
  warnings: string[]
  elapsedMs: number
}

export interface StoredRecord {
  idx: number
  leaf: string
  record: AuditRecord
  /** Search columns as stored (database source only), compared with the record. */
  columns?: RecordColumns
}

export interface RecordColumns {
  time: Date | string
  request_id: string
  consumer_department: string | null
  consumer_system: string | null
  resource: string | null
  operation: string | null
  purpose: string | null
  case_id: string | null
  decision: string
  reason: string | null
  subject: string | null
}

export interface StoredBatch {
  /** The signed checkpoint, exactly as signed. */
  checkpoint: Checkpoint
  sig: string
  /** The stored checkpoint hash, if the source stores one. */
  hash?: string
  /** Column copies of the checkpoint (database source), compared with the signed one. */
  columns?: Partial<Record<keyof Checkpoint, unknown>>
  records: StoredRecord[]
  /** Records were removed by retention: only the checkpoint is checked. */
  retained?: boolean
}


// Where they live now; re-exported for the read side's other modules.
export { CertificateSet, splitPem } from '../pki/certificate-set.js'
export type { Anchor } from '../evidence/evidence.js'

const MAX_LISTED = 20

interface ChainState {
  chain: string
  firstSeq: number
  lastSeq: number
  lastHash: string
  checkpoints: number
}

/** Feed batches chain by chain in seq order; read report() at the end. */
export class IntegrityVerifier {
  private readonly started = performance.now()
  private records = 0
  private checkpoints = 0
  private retained = 0
  private anchorsChecked = 0
  private failureCount = 0
  private readonly failures: Failure[] = []
  private readonly warnings: string[] = []
  private readonly chains: ChainSummary[] = []
  private current: ChainState | null = null
  private readonly hashesSeen = new Map<string, { chain: string; seq: number }>()
  /** Acknowledged cuts by chain: their gap is reported once as `cut`, not as a chain-gap. */
  private readonly cuts = new Map<string, RecordedCut[]>()

  constructor(private readonly certs: CertificateSet) {}

  /** An acknowledged cut (high-water.ts): the gap #fromSeq…#toSeq is known, and reported by the caller. */
  knownCut(c: RecordedCut): void {
    const list = this.cuts.get(c.chain) ?? []
    list.push(c)
    this.cuts.set(c.chain, list)
  }

  /** The acknowledged cut that is exactly the gap before `nextSeq` (after `lastSeq`), if any. */
  cutBetween(chain: string, lastSeq: number, nextSeq: number): RecordedCut | undefined {
    return this.cuts.get(chain)?.find((c) => c.fromSeq === lastSeq + 1 && c.toSeq === nextSeq - 1)
  }

  fail(f: Failure): void {
    this.failureCount++
    if (this.failures.length < MAX_LISTED) this.failures.push(f)
  }

  warn(w: string): void {
    if (this.warnings.length < MAX_LISTED) this.warnings.push(w)
  }

  /**
   * Starts a chain. `before` is what the first checkpoint's prev must be: the hash of the
   * checkpoint before the range (null: that checkpoint is missing; undefined: not known,
   * as in a bundle, where the header states it).
   */
  startChain(chain: string, before?: string | null, beforeSeq?: number): void {
    this.endChain()
    this.current = { chain, firstSeq: -1, lastSeq: beforeSeq ?? -1, lastHash: before ?? '', checkpoints: 0 }
    if (before === null) {
      this.fail({ kind: 'chain-gap', chain, seq: beforeSeq ?? 0, detail: `checkpoint ${chain}#${beforeSeq} (just before the range) is missing` })
      this.current.lastSeq = -1
    } else if (before === undefined) {
      this.current.lastSeq = -1
    }
  }

  /** Ends the current chain; `next` is the checkpoint just after the range, if any. */
  endChain(next?: { seq: number; prev: string } | null, expectNext = false): void {
    const c = this.current
    if (!c) return
    this.current = null
    if (next && c.checkpoints > 0) {
      const cut = this.cutBetween(c.chain, c.lastSeq, next.seq)
      if (cut) {
        if (next.prev !== cut.hwmHash) this.fail({ kind: 'chain-broken', chain: c.chain, seq: next.seq, detail: `checkpoint #${next.seq} (after the range) does not name #${cut.toSeq}, the last one signed before the cut` })
      } else if (next.seq !== c.lastSeq + 1) {
        this.fail({ kind: 'chain-gap', chain: c.chain, seq: c.lastSeq + 1, detail: `checkpoints ${c.chain}#${c.lastSeq + 1}…#${next.seq - 1} are missing` })
      } else if (next.prev !== c.lastHash) {
        this.fail({ kind: 'chain-broken', chain: c.chain, seq: next.seq, detail: `checkpoint #${next.seq} (after the range) does not name #${c.lastSeq}` })
      }
    } else if (expectNext && c.checkpoints > 0) {
      this.fail({ kind: 'chain-gap', chain: c.chain, seq: c.lastSeq + 1, detail: `checkpoint ${c.chain}#${c.lastSeq + 1} is missing while later ones exist` })
    }
    if (c.checkpoints > 0) {
      this.chains.push({ chain: c.chain, firstSeq: c.firstSeq, lastSeq: c.lastSeq, head: c.lastHash, checkpoints: c.checkpoints })
    }
  }

  addBatch(b: StoredBatch): void {
    const c = this.current
    if (!c) throw new Error('integrity: addBatch before startChain')
    const cp = b.checkpoint
    const chain = c.chain
    const seq = cp.seq
    this.checkpoints++
    c.checkpoints++
    if (c.firstSeq < 0) c.firstSeq = seq

    const hash = checkpointHash(cp)
    if (cp.chain !== chain) {
      this.fail({ kind: 'checkpoint-fields', chain, seq, detail: `the signed checkpoint names chain ${cp.chain}` })
    }
    if (b.hash !== undefined && b.hash !== hash) {
      this.fail({ kind: 'checkpoint-hash', chain, seq, detail: 'the stored hash is not the hash of the checkpoint' })
    }
    if (b.columns) {
      for (const [k, v] of Object.entries(b.columns)) {
        const signed = (cp as unknown as Record<string, unknown>)[k]
        const same = k === 'time' ? sameTime(v, signed) : String(v) === String(signed)
        if (!same) {
          this.fail({ kind: 'checkpoint-fields', chain, seq, detail: `column ${k} disagrees with the signed checkpoint` })
          break
        }
      }
    }

    // Chain: contiguous seqs, each naming its predecessor.
    if (c.lastSeq >= 0 || seq === 1) {
      const expectedSeq = c.lastSeq >= 0 ? c.lastSeq + 1 : 1
      const cut = seq > expectedSeq ? this.cutBetween(chain, expectedSeq - 1, seq) : undefined
      if (cut) {
        // The batch after an acknowledged cut names the last checkpoint signed before it.
        if (cp.prev !== cut.hwmHash) this.fail({ kind: 'chain-broken', chain, seq, detail: `prev does not name #${cut.toSeq}, the last checkpoint signed before the cut` })
      } else if (seq > expectedSeq) {
        this.fail({ kind: 'chain-gap', chain, seq: expectedSeq, detail: seq - expectedSeq === 1 ? `checkpoint ${chain}#${expectedSeq} is missing` : `checkpoints ${chain}#${expectedSeq}…#${seq - 1} are missing` })
      } else if (seq < expectedSeq) {
        this.fail({ kind: 'chain-broken', chain, seq, detail: `checkpoint #${seq} appears again after #${c.lastSeq}` })
      } else {
        const prev = expectedSeq === 1 ? GENESIS : c.lastHash
        if (cp.prev !== prev) this.fail({ kind: 'chain-broken', chain, seq, detail: `prev does not name the hash of #${seq - 1}` })
      }
    }
    const dup = this.hashesSeen.get(hash)
    if (dup) this.fail({ kind: 'chain-broken', chain, seq, detail: `same checkpoint as ${dup.chain}#${dup.seq}` })
    else if (this.hashesSeen.size < 1_000_000) this.hashesSeen.set(hash, { chain, seq })
    c.lastSeq = seq
    c.lastHash = hash

    // Signature, with a certificate that chains to the trust anchor and was valid then.
    if (!this.certs.has(cp.kid)) {
      this.fail({ kind: 'unknown-kid', chain, seq, detail: `no certificate with kid ${cp.kid}` })
    } else if (!isSuiteName(cp.alg)) {
      this.fail({ kind: 'unsupported-alg', chain, seq, detail: `unsupported signature suite ${cp.alg}` })
    } else {
      const problem = this.certs.problem(cp.kid, cp.time)
      if (problem) this.fail({ kind: 'untrusted-certificate', chain, seq, detail: `certificate ${cp.kid}: ${problem}` })
      else if (!verifySignature(cp.alg, this.certs.pem(cp.kid)!, Buffer.from(jcs(cp)), Buffer.from(b.sig, 'base64url'))) {
        this.fail({ kind: 'bad-signature', chain, seq, detail: 'the checkpoint signature does not verify' })
      }
    }

    if (b.retained) {
      this.retained++
      return
    }
    this.checkRecords(b, chain, seq)
  }

  private checkRecords(b: StoredBatch, chain: string, seq: number): void {
    const cp = b.checkpoint
    const recs = b.records
    this.records += recs.length
    const byIdx: (StoredRecord | undefined)[] = new Array(cp.size)
    let extra = 0
    for (const r of recs) {
      if (r.idx < 0 || r.idx >= cp.size || byIdx[r.idx]) extra++
      else byIdx[r.idx] = r
    }
    const missing: number[] = []
    for (let i = 0; i < cp.size; i++) if (!byIdx[i]) missing.push(i)
    if (missing.length) {
      this.fail({ kind: 'record-missing', chain, seq, idx: missing[0], detail: `${missing.length} of ${cp.size} records missing (first: index ${missing[0]})` })
    }
    if (extra) {
      this.fail({ kind: 'record-extra', chain, seq, detail: `${extra} record(s) beyond the ${cp.size} the checkpoint signs` })
    }

    const leaves: Buffer[] = []
    let leafProblem = false
    // The checkpoint names its format: a v2 batch is hashed with SM3 throughout.
    const alg = hashOfVersion(versionOf(cp))
    for (let i = 0; i < cp.size; i++) {
      const r = byIdx[i]
      if (!r) continue
      const computed = leafHash(jcs(r.record), alg)
      if (computed.toString('hex') !== r.leaf) {
        leafProblem = true
        this.fail({ kind: 'leaf-mismatch', chain, seq, idx: i, detail: `record ${r.record.requestId} no longer hashes to its leaf` })
      }
      if (r.columns) {
        const col = columnProblem(r.record, r.columns)
        if (col) this.fail({ kind: 'column-mismatch', chain, seq, idx: i, detail: `column ${col} disagrees with the hashed record ${r.record.requestId}` })
      }
      leaves.push(computed)
    }
    if (!missing.length && !extra && !leafProblem) {
      if (buildTree(leaves, alg).root.toString('hex') !== cp.root) {
        this.fail({ kind: 'root-mismatch', chain, seq, detail: 'the records do not fold to the signed Merkle root (reordered, replaced or re-hashed records)' })
      }
    } else if (!missing.length && !extra) {
      // Edited record with a re-computed leaf would show here; with stale leaves the root still matches them.
      const stored = byIdx.map((r) => Buffer.from(r!.leaf, 'hex'))
      if (buildTree(stored, alg).root.toString('hex') !== cp.root) {
        this.fail({ kind: 'root-mismatch', chain, seq, detail: 'the stored leaves do not fold to the signed Merkle root' })
      }
    }
  }

  noteAnchor(): void {
    this.anchorsChecked++
  }

  report(): IntegrityReport {
    this.endChain()
    return {
      ok: this.failureCount === 0,
      records: this.records,
      checkpoints: this.checkpoints,
      retainedBatches: this.retained,
      anchorsChecked: this.anchorsChecked,
      chains: this.chains,
      firstFailure: this.failures[0] ?? null,
      failureCount: this.failureCount,
      failures: this.failures,
      warnings: this.warnings,
      elapsedMs: Math.round(performance.now() - this.started),
    }
  }
}

function sameTime(a: unknown, b: unknown): boolean {
  const ta = a instanceof Date ? a.getTime() : Date.parse(String(a))
  const tb = b instanceof Date ? b.getTime() : Date.parse(String(b))
  return ta === tb && !Number.isNaN(ta)
}

/** The search column that disagrees with the hashed record, if any. */
export function columnProblem(r: AuditRecord, c: RecordColumns): string | null {
  const eq = (a: unknown, b: unknown) => (a ?? null) === (b ?? null)
  if (!sameTime(c.time, r.time)) return 'time'
  if (!eq(c.request_id, r.requestId)) return 'request_id'
  if (!eq(c.consumer_department, r.consumer?.department)) return 'consumer_department'
  if (!eq(c.consumer_system, r.consumer?.system)) return 'consumer_system'
  if (!eq(c.resource, r.resource)) return 'resource'
  if (!eq(c.operation, r.operation)) return 'operation'
  if (!eq(c.purpose, r.purpose)) return 'purpose'
  if (!eq(c.case_id, r.caseId)) return 'case_id'
  if (!eq(c.decision, r.decision)) return 'decision'
  if (!eq(c.reason, r.reason)) return 'reason'
  if (!eq(c.subject, r.subject)) return 'subject'
  return null
}

// ---- the database as a source ---------------------------------------------------------

export interface DatabaseIntegrityOptions {
  from?: Date
  to?: Date
  chain?: string
  /** Checkpoint hashes the auditor holds (an exported or anchored head). */
  heads?: string[]
  /** Also check the anchors stored in audit_anchors (default true). */
  storedAnchors?: boolean
  /** The heads the parent node holds for this node (tiers checkpoint push), and its id. */
  parentHeads?: { parent: string; heads: Anchor[] }
  /** The chains' high-water marks (src/audit/high-water.ts: file and Redis), and where they were read. */
  highWater?: { from: string; marks: Mark[] }
  caPem: string
  /** Certificates known besides those in audit_certificates (the node's own). */
  certificates?: string[]
  /** Batches per round trip. */
  chunk?: number
}

const CP_COLUMNS = 'chain, seq, node, root, size, prev, time, alg, kid, sig, hash, checkpoint'
const REC_COLUMNS = `seq, idx, leaf, record, time, request_id, consumer_department, consumer_system, resource,
  operation, purpose, case_id, decision, reason, subject`

function batchFromRow(row: any, records: StoredRecord[], retained: boolean): StoredBatch {
  const { sig, ...signed } = row.checkpoint as Checkpoint & { sig: string }
  return {
    checkpoint: signed as Checkpoint,
    sig: row.sig,
    hash: row.hash,
    columns: {
      node: row.node, chain: row.chain, seq: Number(row.seq), root: row.root, size: row.size, prev: row.prev,
      time: row.time, alg: row.alg, kid: row.kid,
      ...(sig !== row.sig ? { sig: row.sig } : {}),
    } as Partial<Record<keyof Checkpoint, unknown>>,
    records,
    retained,
  }
}

/** Verifies the checkpoints whose time is in [from, to) (all, without a range) and their records. */
export async function verifyDatabase(db: Db, o: DatabaseIntegrityOptions): Promise<IntegrityReport> {
  const certs = new CertificateSet(o.caPem)
  for (const pem of o.certificates ?? []) certs.add(pem)
  for (const r of (await db.query('SELECT cert_pem FROM audit_certificates')).rows) {
    try {
      certs.add(r.cert_pem)
    } catch {
      /* an unreadable certificate row: its checkpoints report unknown-kid */
    }
  }
  const v = new IntegrityVerifier(certs)
  const chunk = o.chunk ?? 64
  const range: string[] = []
  const params: unknown[] = []
  if (o.from) range.push(`time >= $${params.push(o.from)}`)
  if (o.to) range.push(`time < $${params.push(o.to)}`)
  if (o.chain) range.push(`chain = $${params.push(o.chain)}`)
  const where = range.length ? `WHERE ${range.join(' AND ')}` : ''

  // Cuts the node recorded: acknowledged ones are reported as `cut` (for good); the gap they
  // leave is theirs, not a chain-gap. Unacknowledged ones, like the high-water marks, are
  // heads kept outside the checkpoints table (anchors below).
  const cuts = await recordedCuts(db, o.chain)
  const acknowledged = cuts.filter((c) => c.acknowledged)
  for (const c of acknowledged) {
    v.knownCut(c)
    const a = c.acknowledged!
    v.fail({ kind: 'cut', chain: c.chain, seq: c.fromSeq, detail: `checkpoints ${c.chain}#${c.fromSeq}…#${c.toSeq} were cut from the log (found ${c.detectedAt}); acknowledged by ${a.by} at ${a.at}: ${a.reason}` })
  }
  const inAcknowledgedCut = (chain: string | undefined, seq: number | undefined) =>
    seq !== undefined && acknowledged.some((c) => c.chain === chain && seq >= c.fromSeq && seq <= c.toSeq)

  const retainedThrough = new Map<string, number>()
  for (const r of (await db.query('SELECT through FROM audit_retention')).rows) {
    for (const [chain, seq] of Object.entries(r.through as Record<string, number>)) {
      retainedThrough.set(chain, Math.max(retainedThrough.get(chain) ?? 0, Number(seq)))
    }
  }

  const { rows: chains } = await db.query(
    `SELECT chain, min(seq)::bigint AS first, max(seq)::bigint AS last FROM audit_checkpoints ${where} GROUP BY chain ORDER BY chain`,
    params,
  )
  for (const ch of chains) {
    const chain: string = ch.chain
    const first = Number(ch.first)
    const last = Number(ch.last)
    // The checkpoint before the range must exist and be named by the first one.
    if (first > 1) {
      const { rows } = await db.query(`SELECT ${CP_COLUMNS} FROM audit_checkpoints WHERE chain = $1 AND seq = $2`, [chain, first - 1])
      const cutBefore = acknowledged.find((c) => c.chain === chain && c.toSeq === first - 1)
      v.startChain(chain, rows[0] ? checkpointHash(batchFromRow(rows[0], [], true).checkpoint) : cutBefore ? cutBefore.hwmHash : null, first - 1)
    } else {
      v.startChain(chain, GENESIS, 0)
    }
    const through = retainedThrough.get(chain) ?? 0
    for (let lo = first; lo <= last; lo += chunk) {
      const hi = Math.min(last, lo + chunk - 1)
      const [cps, recs] = await Promise.all([
        db.query(`SELECT ${CP_COLUMNS} FROM audit_checkpoints WHERE chain = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq`, [chain, lo, hi]),
        db.query(`SELECT ${REC_COLUMNS} FROM audit_records WHERE chain = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq, idx`, [chain, lo, hi]),
      ])
      const bySeq = new Map<number, StoredRecord[]>()
      for (const r of recs.rows) {
        const s = Number(r.seq)
        let list = bySeq.get(s)
        if (!list) bySeq.set(s, (list = []))
        list.push({ idx: r.idx, leaf: r.leaf, record: r.record, columns: r })
      }
      for (const row of cps.rows) {
        const s = Number(row.seq)
        const records = bySeq.get(s) ?? []
        bySeq.delete(s)
        v.addBatch(batchFromRow(row, records, s <= through && records.length < row.size))
      }
      for (const [s, list] of bySeq) {
        v.fail({ kind: 'orphan-record', chain, seq: s, idx: list[0].idx, detail: `${list.length} record(s) of batch #${s}, which has no checkpoint` })
      }
    }
    const { rows: after } = await db.query(
      'SELECT seq, prev, (SELECT max(seq) FROM audit_checkpoints WHERE chain = $1) AS max FROM audit_checkpoints WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT 1',
      [chain, last],
    )
    v.endChain(after[0] ? { seq: Number(after[0].seq), prev: after[0].prev } : null)
  }

  // Records in the range that belong to no checkpoint at all.
  const recRange = range.map((c) => c.replace(/^(time|chain)/, 'r.$1')).join(' AND ')
  const { rows: orphans } = await db.query(
    `SELECT r.chain, r.seq, min(r.idx) AS idx, count(*)::int AS n FROM audit_records r
     WHERE ${recRange || 'true'} AND NOT EXISTS (SELECT 1 FROM audit_checkpoints c WHERE c.chain = r.chain AND c.seq = r.seq)
     GROUP BY r.chain, r.seq ORDER BY r.chain, r.seq LIMIT 20`,
    params,
  )
  for (const o2 of orphans) {
    if (chains.some((c) => c.chain === o2.chain && Number(o2.seq) >= Number(c.first) && Number(o2.seq) <= Number(c.last))) continue
    v.fail({ kind: 'orphan-record', chain: o2.chain, seq: Number(o2.seq), idx: o2.idx, detail: `${o2.n} record(s) of batch #${o2.seq}, which has no checkpoint` })
  }

  // Anchors: the auditor's heads, and those stored by `tongban audit anchor`.
  const anchors: Anchor[] = (o.heads ?? []).map((hash) => ({ hash }))
  if (o.storedAnchors !== false) {
    const { rows } = await db.query(
      `SELECT DISTINCT ON (chain) chain, seq, hash FROM audit_anchors ${o.chain ? 'WHERE chain = $1' : ''} ORDER BY chain, seq DESC`,
      o.chain ? [o.chain] : [],
    )
    for (const r of rows) anchors.push({ chain: r.chain, seq: Number(r.seq), hash: r.hash })
  }
  // The parent's heads are anchors kept outside this node's database.
  for (const h of o.parentHeads?.heads ?? []) {
    if (!o.chain || h.chain === o.chain) anchors.push({ ...h, heldBy: `the parent node ${o.parentHeads!.parent}` })
  }
  for (const c of cuts) {
    if (!c.acknowledged) anchors.push({ chain: c.chain, seq: c.toSeq, hash: c.hwmHash, heldBy: 'the cut recorded in audit_alarms' })
  }
  for (const m of o.highWater?.marks ?? []) {
    if (!o.chain || m.chain === o.chain) anchors.push({ chain: m.chain, seq: m.seq, hash: m.hash, heldBy: `the high-water mark (${o.highWater!.from})` })
  }
  for (const a of anchors) {
    // Gone for good, and already reported as the acknowledged cut.
    if (a.chain !== undefined && inAcknowledgedCut(a.chain, a.seq)) continue
    v.noteAnchor()
    const { rows } = a.chain !== undefined
      ? await db.query(`SELECT ${CP_COLUMNS} FROM audit_checkpoints WHERE chain = $1 AND seq = $2`, [a.chain, a.seq])
      : await db.query(`SELECT ${CP_COLUMNS} FROM audit_checkpoints WHERE hash = $1`, [a.hash])
    const where = a.chain !== undefined ? `${a.chain}#${a.seq}` : a.hash.slice(0, 16)
    if (!rows[0]) {
      const what = a.heldBy ? `the checkpoint ${where} held by ${a.heldBy}` : `the anchored checkpoint ${where}`
      v.fail({ kind: 'truncated', chain: a.chain ?? '?', seq: a.seq ?? 0, detail: `${what} is not in the log: the chain was cut` })
      continue
    }
    const b = batchFromRow(rows[0], [], true)
    const h = checkpointHash(b.checkpoint)
    const valid = h === a.hash && certs.has(b.checkpoint.kid) && isSuiteName(b.checkpoint.alg) &&
      verifySignature(b.checkpoint.alg, certs.pem(b.checkpoint.kid)!, Buffer.from(jcs(b.checkpoint)), Buffer.from(b.sig, 'base64url'))
    if (!valid) {
      v.fail({ kind: 'anchor-mismatch', chain: b.checkpoint.chain, seq: b.checkpoint.seq, detail: `the checkpoint at the anchored position ${where} is not the one ${a.heldBy ?? 'anchored'} holds` })
    }
  }
  const anchoredChains = new Set(anchors.map((a) => a.chain))
  if (!o.heads?.length) {
    for (const ch of chains) {
      if (!anchoredChains.has(ch.chain)) v.warn(`no anchor covers chain ${ch.chain}: a cut tail would not be visible (record heads with POST /v1/audit/anchors or tongban audit anchor${o.parentHeads ? `; the parent node ${o.parentHeads.parent} holds none of it yet` : ''})`)
    }
  }
  return v.report()
}

/** The newest checkpoint of every chain: what an auditor anchors. */
export async function chainHeads(db: Db): Promise<Array<{ chain: string; seq: number; hash: string; time: string; checkpoint: Checkpoint; sig: string }>> {
  const { rows } = await db.query(
    `SELECT DISTINCT ON (chain) chain, seq, hash, time, checkpoint, sig FROM audit_checkpoints ORDER BY chain, seq DESC`,
  )
  return rows.map((r) => {
    const { sig: _s, ...cp } = r.checkpoint
    return { chain: r.chain, seq: Number(r.seq), hash: r.hash, time: (r.time as Date).toISOString(), checkpoint: cp as Checkpoint, sig: r.sig }
  })
}
