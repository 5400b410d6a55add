// Evidence formats v1 and v2 (the gateway's docs/evidence.md; v2 hashes with SM3 and its
// checkpoint carries v: 2), the wire contract every answer carries:
// `Tongban-Evidence` = base64url(UTF-8 JSON { v, record, index, size, path, checkpoint, sig }).
// The decoder checks the shape only; verifier.ts checks what it proves.
import { createHash } from 'node:crypto'
import { hashHex, type TreeHash } from './merkle.js'

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
export const hashOfVersion = (v: EvidenceVersion): TreeHash => (v === 2 ? 'sm3' : 'sha256')

export interface Checkpoint {
  /** 2 for a v2 (SM3) batch; absent in v1. */
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
  for (const f of DIGESTS) if (!matches(DIGEST[v], r[f])) fail(`record.${f} must be ${hashOfVersion(v)}:<hex>`)
  count(e.index, 'index', 0)
  count(e.size, 'size', 1)
  if (!Array.isArray(e.path) || !e.path.every((h) => matches(HASH, h))) fail('path must be a list of hex hashes')
  const cp = object(e.checkpoint, 'checkpoint')
  if (v === 2 ? cp.v !== 2 : cp.v !== undefined) fail(v === 2 ? 'checkpoint.v must be 2' : 'checkpoint.v must be absent in v1')
  for (const f of CHECKPOINT_STRINGS) string(cp[f], `checkpoint.${f}`)
  count(cp.seq, 'checkpoint.seq', 0)
  count(cp.size, 'checkpoint.size', 1)
  if (!matches(HASH, cp.root)) fail('checkpoint.root must be a hex hash')
  if (!matches(HASH, cp.prev)) fail('checkpoint.prev must be a hex hash')
  if (!matches(B64URL, e.sig)) fail('sig must be base64url')
  return e as unknown as Evidence
}

/** `sha256:<hex>` (v1) or `sm3:<hex>` (v2) of the exact bytes (a string is taken as UTF-8). */
export function digest(bytes: Buffer | string, v: EvidenceVersion = 1): string {
  const alg = hashOfVersion(v)
  return `${alg}:${hashHex(alg, bytes)}`
}

const B64URL = /^[A-Za-z0-9_-]+$/
const HASH = /^[0-9a-f]{64}$/
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

/** DER bytes of the first PEM block with this label. */
export function pemToDer(pem: string, label = 'CERTIFICATE'): Buffer {
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(pem)
  if (!m) throw new Error(`pem: no ${label} block`)
  return Buffer.from(m[1].replace(/\s+/g, ''), 'base64')
}

/** base64url (no padding) SHA-256 of the certificate DER: the checkpoint's `kid`. */
export function certThumbprint(certPem: string): string {
  return createHash('sha256').update(pemToDer(certPem)).digest('base64url')
}
