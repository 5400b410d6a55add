// Evidence export (issue 5, item 4): a self-contained, offline-verifiable bundle of the
// audit log. One gzip-compressed NDJSON file:
//
//   {"t":"tongban-audit-bundle","v":1, node, createdAt, range, chains:[{chain, firstSeq,
//     lastSeq, prev, head}], certificates:[PEM…], caChain:[PEM…]}
//   {"t":"c","checkpoint":{…as signed…},"sig":"…","hash":"…"}     one per batch, in seq order
//   {"t":"r","idx":0,"leaf":"…","record":{…as hashed…}}            its records, in idx order
//   …
//   {"t":"end","checkpoints":N,"records":M}
//
// `verifyBundle` needs nothing but the file and the trusted root CA certificate: it runs the
// same IntegrityVerifier as GET /v1/audit/integrity. Batches are exported whole, so every
// Merkle root can be rebuilt; `prev` of each chain's first checkpoint is what the previous
// bundle's `head` must be, so consecutive bundles chain too.
import { createReadStream } from 'node:fs'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { createGunzip, createGzip } from 'node:zlib'
import { PassThrough, type Writable } from 'node:stream'
import type { Db } from '../stores/postgres.js'
import { jcs } from '../evidence/jcs.js'
import { leafHash, rootFromPath } from '../evidence/merkle.js'
import { isSuiteName, verifySignature } from '../pki/suites.js'
import { checkpointHash, decodeEvidence, hashOfVersion, verifyEvidence, versionOf, type AuditRecord, type Checkpoint, type Evidence } from '../evidence/evidence.js'
import { CertificateSet, IntegrityVerifier, splitPem, type IntegrityReport, type StoredRecord } from './integrity.js'

export const BUNDLE_TYPE = 'tongban-audit-bundle'

export interface ChainRange {
  chain: string
  firstSeq: number
  lastSeq: number
}

export interface BundleChain extends ChainRange {
  /** prev of the first checkpoint: the head of the bundle before this one. */
  prev: string
  /** Hash of the last checkpoint. */
  head: string
}

export interface BundleHeader {
  t: typeof BUNDLE_TYPE
  v: 1
  node: string
  createdAt: string
  range: { from?: string; to?: string; chain?: string; by: 'checkpoint-time' | 'record-time' | 'seq' }
  chains: BundleChain[]
  certificates: string[]
  caChain: string[]
}

export interface ExportOptions {
  node: string
  from?: Date
  to?: Date
  chain?: string
  /** Select batches by their checkpoint's time (default) or by any record's time (retention). */
  by?: 'checkpoint-time' | 'record-time'
  /** Explicit ranges instead of a time range. */
  ranges?: ChainRange[]
  /** The node's own certificate(s) and its CA chain, besides audit_certificates. */
  certificates?: string[]
  caChain: string[]
  /** Refuse beyond this many records (HTTP export). */
  maxRecords?: number
  /** gzip the output (default true); plain NDJSON otherwise. */
  compress?: boolean
}

export interface ExportResult {
  records: number
  checkpoints: number
  chains: BundleChain[]
  sha256: string
  bytes: number
}

export class ExportTooLargeError extends Error {}

/** Which batches a time range covers, per chain. */
export async function rangesFor(db: Db, o: Pick<ExportOptions, 'from' | 'to' | 'chain' | 'by'>): Promise<ChainRange[]> {
  const cond: string[] = []
  const params: unknown[] = []
  if (o.from) cond.push(`time >= $${params.push(o.from)}`)
  if (o.to) cond.push(`time < $${params.push(o.to)}`)
  if (o.chain) cond.push(`chain = $${params.push(o.chain)}`)
  const table = o.by === 'record-time' ? 'audit_records' : 'audit_checkpoints'
  const { rows } = await db.query(
    `SELECT chain, min(seq)::bigint AS first, max(seq)::bigint AS last FROM ${table}
     ${cond.length ? `WHERE ${cond.join(' AND ')}` : ''} GROUP BY chain ORDER BY chain`,
    params,
  )
  return rows.map((r) => ({ chain: r.chain, firstSeq: Number(r.first), lastSeq: Number(r.last) }))
}

/** Writes a bundle to `out` (gzip applied here). Resolves once everything is written. */
export async function exportBundle(db: Db, out: Writable, o: ExportOptions): Promise<ExportResult> {
  const ranges = o.ranges ?? (await rangesFor(db, o))
  if (o.maxRecords !== undefined) {
    let n = 0
    for (const r of ranges) {
      const { rows } = await db.query('SELECT coalesce(sum(size), 0)::bigint AS n FROM audit_checkpoints WHERE chain = $1 AND seq BETWEEN $2 AND $3', [r.chain, r.firstSeq, r.lastSeq])
      n += Number(rows[0].n)
    }
    if (n > o.maxRecords) throw new ExportTooLargeError(`the range holds ${n} records; at most ${o.maxRecords} are exported here`)
  }
  const chains: BundleChain[] = []
  for (const r of ranges) {
    const { rows } = await db.query(
      'SELECT seq, prev, hash FROM audit_checkpoints WHERE chain = $1 AND seq IN ($2, $3)',
      [r.chain, r.firstSeq, r.lastSeq],
    )
    const first = rows.find((x) => Number(x.seq) === r.firstSeq)
    const last = rows.find((x) => Number(x.seq) === r.lastSeq)
    chains.push({ ...r, prev: first?.prev ?? '', head: last?.hash ?? '' })
  }
  const certs = new Set<string>((o.certificates ?? []).flatMap(splitPem))
  for (const row of (await db.query('SELECT cert_pem FROM audit_certificates ORDER BY first_seen')).rows) {
    for (const pem of splitPem(row.cert_pem)) certs.add(pem)
  }
  const header: BundleHeader = {
    t: BUNDLE_TYPE,
    v: 1,
    node: o.node,
    createdAt: new Date().toISOString(),
    range: {
      ...(o.from ? { from: o.from.toISOString() } : {}),
      ...(o.to ? { to: o.to.toISOString() } : {}),
      ...(o.chain ? { chain: o.chain } : {}),
      by: o.ranges ? 'seq' : o.by ?? 'checkpoint-time',
    },
    chains,
    certificates: [...certs],
    caChain: o.caChain.flatMap(splitPem),
  }

  const gzip: Writable & { pipe<T extends NodeJS.WritableStream>(d: T): T } = o.compress === false ? new PassThrough() : createGzip({ level: 6 })
  const hash = createHash('sha256')
  let bytes = 0
  const tee = new PassThrough()
  tee.on('data', (d: Buffer) => {
    hash.update(d)
    bytes += d.length
  })
  gzip.pipe(tee).pipe(out)
  const finished = once(out, 'finish')
  const write = async (line: string) => {
    if (!gzip.write(line + '\n')) await once(gzip, 'drain')
  }
  let records = 0
  let checkpoints = 0
  await write(JSON.stringify(header))
  const CHUNK = 64
  for (const r of ranges) {
    for (let lo = r.firstSeq; lo <= r.lastSeq; lo += CHUNK) {
      const hi = Math.min(r.lastSeq, lo + CHUNK - 1)
      const [cps, recs] = await Promise.all([
        db.query('SELECT seq, sig, hash, checkpoint FROM audit_checkpoints WHERE chain = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq', [r.chain, lo, hi]),
        db.query('SELECT seq, idx, leaf, record::text AS record FROM audit_records WHERE chain = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq, idx', [r.chain, lo, hi]),
      ])
      let i = 0
      for (const cp of cps.rows) {
        const { sig: _s, ...signed } = cp.checkpoint
        await write(JSON.stringify({ t: 'c', checkpoint: signed, sig: cp.sig, hash: cp.hash }))
        checkpoints++
        const seq = Number(cp.seq)
        while (i < recs.rows.length && Number(recs.rows[i].seq) < seq) i++
        const lines: string[] = []
        for (; i < recs.rows.length && Number(recs.rows[i].seq) === seq; i++) {
          const rec = recs.rows[i]
          lines.push(`{"t":"r","idx":${rec.idx},"leaf":"${rec.leaf}","record":${rec.record}}`)
          records++
        }
        if (lines.length) await write(lines.join('\n'))
      }
    }
  }
  await write(JSON.stringify({ t: 'end', checkpoints, records }))
  gzip.end()
  await finished
  return { records, checkpoints, chains, sha256: hash.digest('hex'), bytes }
}

export interface VerifyBundleOptions {
  /** The trusted root CA certificate(s), PEM. Never taken from the bundle. */
  caPem: string
  /** Checkpoint hashes the auditor holds: each must be in the bundle (else: truncated). */
  heads?: string[]
  /**
   * Consumers' saved evidence (and responses) to find in the bundle. Without a body only the
   * evidence itself is checked (proof, signature), not that it belongs to a response.
   */
  evidence?: Array<{ header: string; body?: Buffer | string }>
}

export interface EvidenceMatch {
  requestId: string | null
  ok: boolean
  /** Where the record is in the bundle. */
  chain?: string
  seq?: number
  idx?: number
  reason?: string
}

export interface BundleReport extends IntegrityReport {
  header: Omit<BundleHeader, 'certificates' | 'caChain'> | null
  evidence: EvidenceMatch[]
}

/**
 * A client's verified evidence names a checkpoint (chain, seq, hash) the node signed and
 * released. A bundle of that chain and period that lacks it, or holds another checkpoint at
 * that seq, shows a cut (or rewritten) log: the client's evidence is a head kept elsewhere.
 * Evidence outside the bundle's range is just not in it (reported on the match).
 */
function evidenceCut(v: IntegrityVerifier, header: BundleHeader, ev: Evidence, hashAt: Map<string, string>, lastOfChain: Map<string, { seq: number; hash: string }>): void {
  const cp = ev.checkpoint
  const h = checkpointHash(cp)
  const where = `${cp.chain}#${cp.seq} (${h.slice(0, 16)}…)`
  const held = hashAt.get(`${cp.chain}\u0000${cp.seq}`)
  v.noteAnchor()
  if (held === h) return
  if (held !== undefined) {
    v.fail({ kind: 'anchor-mismatch', chain: cp.chain, seq: cp.seq, detail: `a client's evidence names checkpoint ${where}; the bundle holds another at that seq: the chain was rewritten` })
    return
  }
  const hc = header.chains.find((c) => c.chain === cp.chain)
  const last = lastOfChain.get(cp.chain)
  const t = Date.parse(cp.time)
  const r = header.range
  // Within the chain's seqs in the bundle, or past them and within the period it covers.
  const withinSeqs = !!hc && cp.seq >= hc.firstSeq && cp.seq <= hc.lastSeq
  const withinTime = r.by !== 'seq' && (!r.chain || r.chain === cp.chain) &&
    (!r.from || t >= Date.parse(r.from)) && (!r.to || t < Date.parse(r.to)) && (!hc || cp.seq > hc.lastSeq)
  if (withinSeqs || withinTime) {
    v.fail({ kind: 'truncated', chain: cp.chain, seq: cp.seq, detail: `a client's evidence names checkpoint ${where}, which the bundle does not contain though it covers that ${withinSeqs ? 'seq' : 'time'} (the chain ends at #${last?.seq ?? '-'} in it): the chain was cut` })
  }
}

/** Evidence without its response body: the inclusion proof and the checkpoint signature. */
function verifyWithoutBody(e: Evidence, certs: CertificateSet): { ok: boolean; reason?: string } {
  const cp = e.checkpoint
  if (e.index >= e.size || e.size !== cp.size) return { ok: false, reason: 'size-mismatch' }
  const alg = hashOfVersion(e.v)
  const root = rootFromPath(leafHash(jcs(e.record), alg), e.index, e.size, e.path.map((h) => Buffer.from(h, 'hex')), alg)
  if (!root || root.toString('hex') !== cp.root) return { ok: false, reason: 'bad-inclusion-proof' }
  if (!certs.has(cp.kid)) return { ok: false, reason: 'unknown-kid' }
  const problem = certs.problem(cp.kid, cp.time)
  if (problem) return { ok: false, reason: problem }
  if (!isSuiteName(cp.alg) || !verifySignature(cp.alg, certs.pem(cp.kid)!, Buffer.from(jcs(cp)), Buffer.from(e.sig, 'base64url'))) return { ok: false, reason: 'bad-signature' }
  return { ok: true }
}

/** Verifies a bundle file (gzip or plain NDJSON) with nothing but the trusted CA. */
export async function verifyBundle(file: string, o: VerifyBundleOptions): Promise<BundleReport> {
  const raw = createReadStream(file)
  const head = await new Promise<Buffer>((resolve, reject) => {
    const s = createReadStream(file, { start: 0, end: 1 })
    const parts: Buffer[] = []
    s.on('data', (d) => parts.push(d as Buffer))
    s.on('end', () => resolve(Buffer.concat(parts)))
    s.on('error', reject)
  })
  const gz = head[0] === 0x1f && head[1] === 0x8b
  const input = gz ? raw.pipe(createGunzip()) : raw
  return verifyBundleLines(createInterface({ input, crlfDelay: Infinity }), o, input)
}

async function verifyBundleLines(lines: AsyncIterable<string>, o: VerifyBundleOptions, input: NodeJS.ReadableStream): Promise<BundleReport> {
  let header: BundleHeader | null = null
  let v: IntegrityVerifier | null = null
  let certs: CertificateSet | null = null
  let pending: { checkpoint: Checkpoint; sig: string; hash: string; records: StoredRecord[] } | null = null
  let currentChain: string | null = null
  let ended = false
  let lineNo = 0
  let counted = { checkpoints: 0, records: 0 }
  const seenHashes = new Set<string>()
  const lastOfChain = new Map<string, { seq: number; hash: string }>()
  /** chain\0seq → checkpoint hash: what a client's evidence is compared with. */
  const hashAt = new Map<string, string>()

  // Evidence to match: the record's leaf and its checkpoint's hash, by position.
  const wanted = new Map<string, { i: number; leaf: string; cpHash: string }>()
  const matches: EvidenceMatch[] = []
  const evidences: Array<Evidence | null> = []
  for (const [i, e] of (o.evidence ?? []).entries()) {
    let ev: Evidence | null = null
    try {
      ev = decodeEvidence(e.header)
    } catch (err) {
      matches.push({ requestId: null, ok: false, reason: `malformed evidence: ${(err as Error).message}` })
      evidences.push(null)
      continue
    }
    evidences.push(ev)
    matches.push({ requestId: ev.record.requestId, ok: false, reason: 'not in the bundle' })
    wanted.set(`${ev.checkpoint.chain}\u0000${ev.checkpoint.seq}\u0000${ev.index}`, {
      i,
      leaf: leafHash(jcs(ev.record), hashOfVersion(ev.v)).toString('hex'),
      cpHash: checkpointHash(ev.checkpoint),
    })
  }

  const malformed = (detail: string) => {
    const vv = v ?? new IntegrityVerifier(new CertificateSet([]))
    v = vv
    vv.fail({ kind: 'bundle-malformed', chain: currentChain ?? '', seq: pending?.checkpoint.seq ?? 0, detail })
  }

  const flush = () => {
    if (!pending || !v || !header) return
    const b = pending
    pending = null
    const chain = b.checkpoint.chain
    if (chain !== currentChain) {
      const hc = header.chains.find((c) => c.chain === chain)
      v.startChain(chain, hc && b.checkpoint.seq === hc.firstSeq ? hc.prev : undefined, b.checkpoint.seq - 1)
      currentChain = chain
    }
    v.addBatch({ checkpoint: b.checkpoint, sig: b.sig, hash: b.hash, records: b.records })
    const h = checkpointHash(b.checkpoint)
    seenHashes.add(h)
    hashAt.set(`${chain}\u0000${b.checkpoint.seq}`, h)
    lastOfChain.set(chain, { seq: b.checkpoint.seq, hash: h })
    for (const r of b.records) {
      const w = wanted.get(`${chain}\u0000${b.checkpoint.seq}\u0000${r.idx}`)
      if (!w) continue
      const m = matches[w.i]
      m.chain = chain
      m.seq = b.checkpoint.seq
      m.idx = r.idx
      if (w.cpHash !== h) m.reason = 'the evidence names another checkpoint at that position'
      else if (w.leaf !== r.leaf || leafHash(jcs(r.record), hashOfVersion(versionOf(b.checkpoint))).toString('hex') !== w.leaf) m.reason = 'the record in the bundle differs from the evidence'
      else {
        m.ok = true
        delete m.reason
      }
    }
  }

  try {
    for await (const line of lines) {
      lineNo++
      if (!line.trim()) continue
      let obj: any
      try {
        obj = JSON.parse(line)
      } catch {
        malformed(`line ${lineNo} is not JSON`)
        break
      }
      if (lineNo === 1) {
        if (obj?.t !== BUNDLE_TYPE || obj.v !== 1 || !Array.isArray(obj.chains) || !Array.isArray(obj.certificates)) {
          malformed('not a Tongban audit bundle (v1)')
          break
        }
        header = obj as BundleHeader
        certs = new CertificateSet(o.caPem, header.caChain ?? [])
        for (const pem of header.certificates) {
          try {
            certs.add(pem)
          } catch {
            /* unreadable: its checkpoints report unknown-kid */
          }
        }
        v = new IntegrityVerifier(certs)
        continue
      }
      if (!header || !v) break
      if (ended) {
        malformed(`content after the end line (line ${lineNo})`)
        break
      }
      if (obj.t === 'c') {
        flush()
        if (!obj.checkpoint || typeof obj.checkpoint.chain !== 'string' || typeof obj.sig !== 'string') {
          malformed(`line ${lineNo}: bad checkpoint line`)
          break
        }
        pending = { checkpoint: obj.checkpoint, sig: obj.sig, hash: obj.hash, records: [] }
        counted.checkpoints++
      } else if (obj.t === 'r') {
        if (!pending || typeof obj.idx !== 'number' || typeof obj.leaf !== 'string' || typeof obj.record !== 'object') {
          malformed(`line ${lineNo}: bad record line`)
          break
        }
        pending.records.push({ idx: obj.idx, leaf: obj.leaf, record: obj.record as AuditRecord })
        counted.records++
      } else if (obj.t === 'end') {
        flush()
        ended = true
        if (obj.checkpoints !== counted.checkpoints || obj.records !== counted.records) {
          malformed(`the end line counts ${obj.checkpoints} checkpoints and ${obj.records} records; the bundle holds ${counted.checkpoints} and ${counted.records}`)
        }
      } else {
        malformed(`line ${lineNo}: unknown line type ${JSON.stringify(obj.t)}`)
        break
      }
    }
  } catch (err) {
    malformed(`unreadable: ${(err as Error).message}`)
  }
  ;(input as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.()
  flush()
  if (!v) {
    v = new IntegrityVerifier(new CertificateSet([]))
    v.fail({ kind: 'bundle-malformed', chain: '', seq: 0, detail: 'empty file' })
  }
  if (header && !ended) malformed('the bundle is cut short (no end line)')
  if (header) {
    for (const hc of header.chains) {
      const last = lastOfChain.get(hc.chain)
      if (!last || last.seq !== hc.lastSeq || last.hash !== hc.head) {
        v.fail({ kind: 'truncated', chain: hc.chain, seq: hc.lastSeq, detail: `the header names head #${hc.lastSeq} ${hc.head.slice(0, 16)}…; the bundle ends at #${last?.seq ?? '-'}` })
      }
    }
  }
  for (const h of o.heads ?? []) {
    v.noteAnchor()
    if (!seenHashes.has(h)) v.fail({ kind: 'truncated', chain: '?', seq: 0, detail: `the anchored checkpoint ${h.slice(0, 16)}… is not in the bundle` })
  }
  // Evidence: the consumer's evidence must verify on its own with the same certificates.
  for (const [i, e] of (o.evidence ?? []).entries()) {
    const ev = evidences[i]
    if (!ev || !certs) continue
    const r = e.body !== undefined
      ? verifyEvidence({ header: e.header, body: e.body, certificates: certs.kids().map((k) => certs!.pem(k)!), caCertificate: o.caPem, now: Date.parse(ev.checkpoint.time) })
      : verifyWithoutBody(ev, certs)
    if (!r.ok) {
      matches[i].ok = false
      matches[i].reason = `the evidence does not verify: ${r.reason}`
      continue
    }
    if (header) evidenceCut(v, header, ev, hashAt, lastOfChain)
  }
  const report = v.report()
  let hdr: BundleReport['header'] = null
  if (header) {
    const { certificates: _c, caChain: _a, ...rest } = header
    hdr = rest
  }
  return { ...report, ok: report.ok && matches.every((m) => m.ok), header: hdr, evidence: matches }
}
