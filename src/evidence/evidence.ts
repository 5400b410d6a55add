// Evidence formats v1 and v2 (docs/evidence.md), a wire contract verified in other languages
// too: `Tongban-Evidence` = base64url(UTF-8 JSON { v, record, index, size, path, checkpoint, sig }).
// v1 hashes with SHA-256; v2 is the same structure with SM3 (GB/T 32905) for the digests, the
// Merkle tree and the checkpoint hash, and its checkpoint says so itself (`v: 2`), so that a
// checkpoint alone (an integrity run, a parent's copy) tells how to hash its batch.
import { X509Certificate } from 'node:crypto'
import { jcs } from './jcs.js'
import { hashHex, leafHash, rootFromPath, type TreeHash } from './merkle.js'
import { certThumbprint } from '../pki/thumbprint.js'
import { isSuiteName, verifySignature } from '../pki/suites.js'
import { isIssuedBy } from '../pki/issued.js'

/**
 * The audit record's public fields, exactly as hashed into the leaf. Open: more may follow.
 * A request refused early (no token, no purpose) is audited too, so what was not known by
 * then is null.
 */
export interface AuditRecord {
  requestId: string
  time: string
  node: string
  consumer: { department: string; system: string; region: string } | null
  resource: string | null
  operation: string | null
  purpose: string | null
  caseId: string | null
  decision: string
  reason?: string
  /** Keyed hash of the subject's identifier, never the identifier itself. */
  subject?: string
  operator?: string
  /** The caller's own request id, when it sent one (optional: older records have none). */
  clientRequestId?: string
  requestDigest: string
  responseDigest: string
  [field: string]: unknown
}

export type EvidenceVersion = 1 | 2

/** The hash of a format version: v1 SHA-256, v2 SM3. */
export const hashOfVersion = (v: EvidenceVersion): TreeHash => (v === 2 ? 'sm3' : 'sha256')

export interface Checkpoint {
  /** 2 for a v2 (SM3) batch; absent in v1, whose checkpoints predate the field. */
  v?: 2
  node: string
  chain: string
  seq: number
  /** Hex Merkle root of the batch. */
  root: string
  size: number
  /** checkpointHash of the previous checkpoint in this chain. */
  prev: string
  time: string
  alg: string
  kid: string
}

/** The format version of a checkpoint's batch. */
export const versionOf = (cp: { v?: unknown }): EvidenceVersion => (cp.v === 2 ? 2 : 1)

export interface Evidence {
  v: EvidenceVersion
  record: AuditRecord
  index: number
  size: number
  path: string[]
  checkpoint: Checkpoint
  /** base64url signature over JCS(checkpoint). */
  sig: string
}

// The checkpoint and signature are the same for every record of a batch: the sealer has
// their JSON made once per batch (registerBatch), and the rest is made per record. The
// bytes are exactly JSON.stringify(e)'s, keys in the same order.
const EVIDENCE_KEYS = 'v,record,index,size,path,checkpoint,sig'
const batchTails = new WeakMap<Checkpoint, { sig: string; tail: string }>()

/** Called by the sealer once per sealed batch, with the objects its evidence will carry. */
export function registerBatch(checkpoint: Checkpoint, sig: string): void {
  batchTails.set(checkpoint, { sig, tail: `,"checkpoint":${JSON.stringify(checkpoint)},"sig":${JSON.stringify(sig)}}` })
}

export function encodeEvidence(e: Evidence): string {
  const t = batchTails.get(e.checkpoint)
  const json = t !== undefined && t.sig === e.sig && Object.keys(e).join() === EVIDENCE_KEYS
    ? `{"v":${JSON.stringify(e.v)},"record":${JSON.stringify(e.record)},"index":${JSON.stringify(e.index)},"size":${JSON.stringify(e.size)},"path":${JSON.stringify(e.path)}${t.tail}`
    : JSON.stringify(e)
  return Buffer.from(json, 'utf8').toString('base64url')
}

/** Parses and shape-checks a header value; any defect throws a plain Error saying which. */
export function decodeEvidence(header: string): Evidence {
  if (!matches(B64URL, header) || header.length % 4 === 1) {
    fail('not base64url')
  }
  let value: unknown
  try {
    value = JSON.parse(UTF8.decode(Buffer.from(header, 'base64url')))
  } catch {
    fail('not UTF-8 JSON')
  }
  const e = object(value, 'evidence')
  if (e.v !== 1 && e.v !== 2) fail('v must be 1 or 2')
  const v = e.v as EvidenceVersion
  const r = object(e.record, 'record')
  for (const f of RECORD_STRINGS) string(r[f], `record.${f}`)
  for (const f of RECORD_NULLABLE) {
    if (r[f] !== null && typeof r[f] !== 'string') fail(`record.${f} must be a string or null`)
  }
  for (const f of RECORD_OPTIONAL) if (r[f] !== undefined) string(r[f], `record.${f}`)
  if (r.consumer !== null) {
    if (typeof r.consumer !== 'object' || Array.isArray(r.consumer)) fail('record.consumer must be an object or null')
    const consumer = r.consumer as Record<string, unknown>
    for (const f of CONSUMER_STRINGS) string(consumer[f], `record.consumer.${f}`)
  }
  for (const f of DIGESTS) if (!matches(DIGEST[v], r[f])) fail(`record.${f} must be ${DIGEST_PREFIX[v]}:<hex>`)
  count(e.index, 'index', 0)
  count(e.size, 'size', 1)
  if (!Array.isArray(e.path) || !e.path.every((h) => matches(HASH, h))) fail('path must be a list of hex hashes')
  const cp = object(e.checkpoint, 'checkpoint')
  // The checkpoint is what is signed: it must name the same format as the evidence.
  if (v === 2 ? cp.v !== 2 : cp.v !== undefined) fail(v === 2 ? 'checkpoint.v must be 2' : 'checkpoint.v must be absent in v1')
  for (const f of CHECKPOINT_STRINGS) string(cp[f], `checkpoint.${f}`)
  count(cp.seq, 'checkpoint.seq', 0)
  count(cp.size, 'checkpoint.size', 1)
  if (!matches(HASH, cp.root)) fail('checkpoint.root must be a hex hash')
  if (!matches(HASH, cp.prev)) fail('checkpoint.prev must be a hex hash')
  if (!matches(B64URL, e.sig)) fail('sig must be base64url')
  return e as unknown as Evidence
}

/** Hex hash of JCS(checkpoint) (SHA-256, SM3 for a v2 checkpoint): what the next checkpoint's `prev` names. */
export function checkpointHash(cp: Checkpoint): string {
  return hashHex(hashOfVersion(versionOf(cp)), jcs(cp))
}

/** `sha256:<hex>` (v1) or `sm3:<hex>` (v2) of the exact bytes (a string is taken as UTF-8). */
export function digest(bytes: Buffer | string, v: EvidenceVersion = 1): string {
  return `${DIGEST_PREFIX[v]}:${hashHex(hashOfVersion(v), bytes)}`
}

export interface VerifyEvidenceInput {
  /** The Tongban-Evidence header value. */
  header: string
  /** The exact response body bytes. */
  body: Buffer | string
  /** Node certificate PEMs; the one whose thumbprint is checkpoint.kid is used. */
  certificates: string[]
  /** Trust anchor. Without it the given certificates are trusted as they are (pinned). */
  caCertificate?: string
  /** When the node certificate must be valid; defaults to now. */
  now?: Date | number
}

export type VerifyEvidenceResult =
  | { ok: true; evidence: Evidence }
  | { ok: false; reason: string; detail?: string }

/** The verifier's checks of docs/audit.md, in order; the first that fails is the reason. */
export function verifyEvidence(input: VerifyEvidenceInput): VerifyEvidenceResult {
  let e: Evidence
  try {
    e = decodeEvidence(input.header)
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: (err as Error).message }
  }
  const cp = e.checkpoint
  const h = hashOfVersion(e.v)
  if (digest(input.body, e.v) !== e.record.responseDigest) return { ok: false, reason: 'body-digest-mismatch' }
  if (e.index >= e.size) return { ok: false, reason: 'index-out-of-range' }
  if (e.size !== cp.size) return { ok: false, reason: 'size-mismatch' }

  const root = rootFromPath(leafHash(jcs(e.record), h), e.index, e.size, e.path.map((p) => Buffer.from(p, 'hex')), h)
  if (!root || root.toString('hex') !== cp.root) return { ok: false, reason: 'bad-inclusion-proof' }

  const cert = input.certificates.find((pem) => thumbprintOrNull(pem) === cp.kid)
  if (!cert) return { ok: false, reason: 'unknown-kid' }
  if (!isSuiteName(cp.alg)) return { ok: false, reason: 'unsupported-alg' }
  if (!verifySignature(cp.alg, cert, Buffer.from(jcs(cp)), Buffer.from(e.sig, 'base64url'))) {
    return { ok: false, reason: 'bad-signature' }
  }

  if (input.caCertificate !== undefined) {
    const reason = certificateProblem(cert, input.caCertificate, Number(input.now ?? Date.now()))
    if (reason) return { ok: false, reason }
  }
  return { ok: true, evidence: e }
}

function certificateProblem(certPem: string, caPem: string, now: number): string | null {
  let cert: X509Certificate
  let ca: X509Certificate
  try {
    cert = new X509Certificate(certPem)
    ca = new X509Certificate(caPem)
  } catch {
    return 'untrusted-certificate'
  }
  if (!ca.ca || !isIssuedBy(cert, ca)) return 'untrusted-certificate'
  if (now < Date.parse(cert.validFrom)) return 'certificate-not-yet-valid'
  if (now > Date.parse(cert.validTo)) return 'certificate-expired'
  return null
}

function thumbprintOrNull(pem: string): string | null {
  try {
    return certThumbprint(pem)
  } catch {
    return null
  }
}

const B64URL = /^[A-Za-z0-9_-]+$/
const HASH = /^[0-9a-f]{64}$/
const DIGEST_PREFIX = { 1: 'sha256', 2: 'sm3' } as const
const DIGEST = { 1: /^sha256:[0-9a-f]{64}$/, 2: /^sm3:[0-9a-f]{64}$/ } as const
const UTF8 = new TextDecoder('utf-8', { fatal: true })
const RECORD_STRINGS = ['requestId', 'time', 'node', 'decision'] as const
const RECORD_NULLABLE = ['resource', 'operation', 'purpose', 'caseId'] as const
const RECORD_OPTIONAL = ['reason', 'subject', 'operator', 'clientRequestId'] as const
const DIGESTS = ['requestDigest', 'responseDigest'] as const
const CONSUMER_STRINGS = ['department', 'system', 'region'] as const
const CHECKPOINT_STRINGS = ['node', 'chain', 'time', 'alg', 'kid'] as const

function fail(what: string): never {
  throw new Error(`evidence: ${what}`)
}

function object(v: unknown, name: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(`${name} must be an object`)
  return v as Record<string, unknown>
}

function string(v: unknown, name: string): void {
  if (typeof v !== 'string') fail(`${name} must be a string`)
}

// RegExp.test would coerce a non-string (['ab'] tests as 'ab').
function matches(re: RegExp, v: unknown): v is string {
  return typeof v === 'string' && re.test(v)
}

function count(v: unknown, name: string, min: number): void {
  if (!Number.isSafeInteger(v) || (v as number) < min) fail(`${name} must be an integer >= ${min}`)
}

/** A checkpoint head held outside the log (an anchor, a parent's copy, a high-water mark): a truncated tail shows against it. */
export interface Anchor {
  chain?: string
  seq?: number
  hash: string
  /** Who holds it, for the finding (default: an anchor). */
  heldBy?: string
}
