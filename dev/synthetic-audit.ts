// Sealed audit history made directly in the database, with the real record shape, real
// leaves, Merkle roots and signed, chained checkpoints: for tests that need records at
// chosen times (stats fixtures, retention of old months, tampering on a chain of their own)
// and for the search benchmark. Never used by the running gateway.
import { jcs } from '../src/evidence/jcs.js'
import { buildTree, leafHash } from '../src/evidence/merkle.js'
import { checkpointHash, digest, type AuditRecord, type Checkpoint } from '../src/evidence/evidence.js'
import { readHead, writeBatch } from '../src/audit/store.js'
import type { Db } from '../src/stores/postgres.js'

export interface SyntheticSigner {
  alg: string
  kid: string
  sign(data: Buffer): Buffer
}

export interface RecordSpec {
  time: Date
  /** Milliseconds between arrival and answer: the ULID request id is made that much earlier. */
  latencyMs?: number
  requestId?: string
  consumer?: { department: string; system: string; region: string } | null
  resource?: string | null
  operation?: string | null
  purpose?: string | null
  caseId?: string | null
  decision?: 'allowed' | 'denied' | 'failed'
  reason?: string
  subject?: string
  operator?: string
  grant?: string
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/** A ULID for the given time (48-bit ms + 80 random bits, not cryptographic: synthetic only). */
export function ulidAt(ms: number): string {
  let time = ''
  for (let i = 0, m = ms; i < 10; i++, m = Math.floor(m / 32)) time = CROCKFORD[m % 32] + time
  let rest = ''
  for (let i = 0; i < 16; i++) rest += CROCKFORD[(Math.random() * 32) | 0]
  return time + rest
}

export function syntheticRecord(node: string, s: RecordSpec): AuditRecord {
  const t = s.time.getTime()
  const r: AuditRecord = {
    requestId: s.requestId ?? ulidAt(t - (s.latencyMs ?? 20)),
    time: s.time.toISOString(),
    node,
    consumer: s.consumer === undefined ? { department: '11320115MB0000012H', system: 'jn-civil-affairs', region: '320115' } : s.consumer,
    resource: s.resource === undefined ? '101001/00001' : s.resource,
    operation: s.operation === undefined ? 'verify' : s.operation,
    purpose: s.purpose === undefined ? 'SA-01' : s.purpose,
    caseId: s.caseId === undefined ? 'JN-2026-0001' : s.caseId,
    decision: s.decision ?? 'allowed',
    requestDigest: digest(`request ${t}`),
    responseDigest: digest(`response ${t}`),
  } as AuditRecord
  if (r.decision !== 'allowed') r.reason = s.reason ?? 'POLICY_NO_GRANT'
  if (s.subject) r.subject = s.subject
  if (s.operator) r.operator = s.operator
  if (s.grant) r.grant = s.grant
  return r
}

export interface SealedSynthetic {
  checkpoint: Checkpoint
  sig: string
  hash: string
  records: AuditRecord[]
  leaves: string[]
}

/** Seals one batch on `chain` through the gateway's own writeBatch (chained onto its head). */
export async function sealSynthetic(db: Db, o: { chain: string; node: string; signer: SyntheticSigner; records: AuditRecord[]; time?: Date }): Promise<SealedSynthetic> {
  const head = await readHead(db, o.chain)
  const b = makeBatch({ ...o, seq: head.seq + 1, prev: head.hash })
  await writeBatch(db, b)
  return b
}

export function makeBatch(o: { chain: string; node: string; signer: SyntheticSigner; records: AuditRecord[]; seq: number; prev: string; time?: Date }): SealedSynthetic {
  const leafBufs = o.records.map((r) => leafHash(jcs(r)))
  const tree = buildTree(leafBufs)
  const lastTime = o.records.reduce((m, r) => Math.max(m, Date.parse(r.time)), 0)
  const checkpoint: Checkpoint = {
    node: o.node,
    chain: o.chain,
    seq: o.seq,
    root: tree.root.toString('hex'),
    size: o.records.length,
    prev: o.prev,
    time: (o.time ?? new Date(lastTime + 2)).toISOString(),
    alg: o.signer.alg,
    kid: o.signer.kid,
  }
  const sig = o.signer.sign(Buffer.from(jcs(checkpoint))).toString('base64url')
  return { checkpoint, sig, hash: checkpointHash(checkpoint), records: o.records, leaves: leafBufs.map((l) => l.toString('hex')) }
}

/** Many batches in two statements (checkpoints, then records): the benchmark's loader. */
export async function insertBatches(db: Db, batches: SealedSynthetic[]): Promise<void> {
  if (!batches.length) return
  const cps = batches.map((b) => b.checkpoint)
  await db.query(
    `INSERT INTO audit_checkpoints (chain, seq, node, root, size, prev, time, alg, kid, sig, hash, checkpoint)
     SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::int[], $6::text[], $7::timestamptz[],
       $8::text[], $9::text[], $10::text[], $11::text[], $12::jsonb[])`,
    [
      cps.map((c) => c.chain), cps.map((c) => c.seq), cps.map((c) => c.node), cps.map((c) => c.root), cps.map((c) => c.size),
      cps.map((c) => c.prev), cps.map((c) => c.time), cps.map((c) => c.alg), cps.map((c) => c.kid),
      batches.map((b) => b.sig), batches.map((b) => b.hash), batches.map((b) => JSON.stringify({ ...b.checkpoint, sig: b.sig })),
    ],
  )
  const cols: unknown[][] = Array.from({ length: 16 }, () => [])
  for (const b of batches) {
    b.records.forEach((r, i) => {
      const v = [b.checkpoint.chain, b.checkpoint.seq, i, r.time, r.requestId, r.consumer?.department ?? null, r.consumer?.system ?? null,
        r.resource, r.operation, r.purpose, r.caseId, r.decision, r.reason ?? null, r.subject ?? null, b.leaves[i], JSON.stringify(r)]
      for (let k = 0; k < v.length; k++) cols[k].push(v[k])
    })
  }
  await db.query(
    `INSERT INTO audit_records (chain, seq, idx, time, request_id, consumer_department, consumer_system, resource, operation,
       purpose, case_id, decision, reason, subject, leaf, record)
     SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::text[],
       $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::jsonb[])`,
    cols,
  )
}

/**
 * A node certificate (RSA 2048, from the given CA) valid from `validFromDaysAgo` days ago:
 * history made for a past month must be signed by a certificate that was valid then. The
 * certificate goes into audit_certificates, as a key rotation would put it.
 */
export async function backdatedSigner(db: Db, o: { caCertPem: string; caKeyPem: string; nodeId: string; validFromDaysAgo: number }): Promise<SyntheticSigner & { certPem: string }> {
  const forge = (await import('node-forge')).default
  const { createSigner } = await import('../src/pki/suites.js')
  const { certThumbprint } = await import('../src/pki/thumbprint.js')
  const caCert = forge.pki.certificateFromPem(o.caCertPem)
  const caKey = forge.pki.privateKeyFromPem(o.caKeyPem)
  const keys = forge.pki.rsa.generateKeyPair(2048)
  const cert = forge.pki.createCertificate()
  cert.publicKey = keys.publicKey
  cert.serialNumber = '7' + Date.now().toString(16)
  cert.validity.notBefore = new Date(Date.now() - o.validFromDaysAgo * 86400_000)
  cert.validity.notAfter = new Date(Date.now() + 30 * 86400_000)
  cert.setSubject([{ name: 'commonName', value: `tongban-node-${o.nodeId}-history` }])
  // forge reads UTF8String values as raw UTF-8 bytes but encodes them again when writing.
  cert.setIssuer(caCert.subject.attributes.map((a) =>
    a.valueTagClass === (forge.asn1.Type.UTF8 as number) && typeof a.value === 'string' ? { ...a, value: forge.util.decodeUtf8(a.value) } : a))
  cert.setExtensions([{ name: 'basicConstraints', cA: false }, { name: 'keyUsage', digitalSignature: true }])
  cert.sign(caKey, forge.md.sha256.create())
  const certPem = forge.pki.certificateToPem(cert)
  const kid = certThumbprint(certPem)
  await db.query('INSERT INTO audit_certificates (kid, cert_pem) VALUES ($1, $2) ON CONFLICT (kid) DO NOTHING', [kid, certPem])
  const signer = createSigner('RS256', forge.pki.privateKeyToPem(keys.privateKey))
  return { alg: signer.alg, kid, sign: signer.sign, certPem }
}
