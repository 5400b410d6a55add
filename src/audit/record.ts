// Building the audit record of one answer: what the onSend hook seals, and what batch jobs,
// relay legs and the CLI seal.
import type { Principal } from '../auth/principal.js'
import { digest, type AuditRecord, type EvidenceVersion } from '../evidence/evidence.js'
import { representable } from './representable.js'
import type { ProblemCode } from '../problems/problem.js'
import { statusFallback } from '../problems/codes.js'

export interface AuditContext {
  resource?: string
  operation?: string
  purpose?: string
  caseId?: string
  operator?: string
  subject?: string
  /** Why the answer was not an allowed one: its problem code. */
  reason?: ProblemCode
  grant?: string
  consumer?: { department: string; system: string; region: string }
  /** The caller's own Tongban-Request-Id (the request id is always the node's). */
  clientRequestId?: string
}

const EMPTY_DIGEST = { 1: digest('', 1), 2: digest('', 2) } as const

const decisionOf = (status: number) => (status < 400 ? 'allowed' : status < 500 ? 'denied' : 'failed')

export interface RecordInput {
  node: string
  requestId: string
  principal: Principal | null
  audit: AuditContext
  status: number
  requestBytes?: Buffer | string
  responseBody: string
  /** Route defaults for resource and operation. */
  defaults?: { resource?: string; operation?: string }
  /** The response digest when the caller hashed the bytes itself (a streamed answer). */
  responseDigest?: string
  /** The evidence format the record is sealed in (its digests' hash): the sealer's version, default 1. */
  version?: EvidenceVersion
}

/**
 * The audit record of one answer. Never unstorable: a string jsonb cannot hold exactly
 * (NUL, a lone surrogate) is escaped and its field named in `escaped` (docs/audit.md), so
 * one record can never make a batch fail. Routes refuse such input first (400
 * INPUT_UNREPRESENTABLE, the audit plugin); this is the last line of defence.
 */
export function buildAuditRecord(i: RecordInput): AuditRecord {
  const a = i.audit
  const p = i.principal
  const decision = decisionOf(i.status)
  const v = i.version ?? 1
  const record: AuditRecord = {
    requestId: i.requestId,
    time: new Date().toISOString(),
    node: i.node,
    consumer: p ? { department: p.department, system: p.system, region: p.region } : a.consumer ?? null,
    resource: a.resource ?? i.defaults?.resource ?? null,
    operation: a.operation ?? i.defaults?.operation ?? null,
    purpose: a.purpose ?? null,
    caseId: a.caseId ?? null,
    decision,
    requestDigest: i.requestBytes ? digest(i.requestBytes, v) : EMPTY_DIGEST[v],
    responseDigest: i.responseDigest ?? digest(i.responseBody, v),
  } as AuditRecord
  if (decision !== 'allowed') record.reason = a.reason ?? statusFallback(i.status)
  if (a.subject) record.subject = a.subject
  if (a.operator) record.operator = a.operator
  if (a.grant) record.grant = a.grant
  if (a.clientRequestId) record.clientRequestId = a.clientRequestId
  const safe = representable(record)
  if (safe.escaped.length) safe.value.escaped = safe.escaped.sort()
  return safe.value
}
