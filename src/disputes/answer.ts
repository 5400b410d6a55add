// Which answer a dispute is about, and whether the caller may dispute it: the request id
// names it, the Tongban-Evidence (with the exact answer bytes) proves it, and the audit
// record of that request id must be the very record the evidence carries, received by the
// caller's department. Cheap checks first (the record exists, it is the caller's), then the
// signature. The answer bytes are hashed and dropped, never stored. An answer relayed from the
// node holding the resource is checked the same way, against this node's record of its leg.
import type { FastifyInstance } from 'fastify'
import type { Principal } from '../auth/principal.js'
import { decodeEvidence, verifyEvidence, type AuditRecord } from '../evidence/evidence.js'
import { jcs } from '../evidence/jcs.js'
import { Problem } from '../problems/problem.js'

export interface DisputedAnswer {
  record: AuditRecord
  /** The resource as held here; null when it is held at another node (the dispute travels there: tiers.ts). */
  held: { providerDepartment: string; items: string[] } | null
}

/** An answer that released data: allowed, of a resource, not a workflow step (a dispute's or an application's). */
export const releasedData = (r: AuditRecord): boolean =>
  r.decision === 'allowed' && !!r.resource && !(r.operation ?? '').startsWith('dispute.') && !(r.operation ?? '').startsWith('application.')

export async function disputedAnswer(app: FastifyInstance, p: Principal, b: { requestId: string; evidence: string; answer: string }): Promise<DisputedAnswer> {
  const { rows } = await app.db.query('SELECT record FROM audit_records WHERE request_id = $1', [b.requestId])
  const mine = rows.map((r) => r.record as AuditRecord).filter((r) => r.consumer?.department === p.department)
  if (!rows.length) throw new Problem(404, 'DISPUTE_ANSWER_NOT_FOUND', `no answer with request id ${b.requestId} is recorded at this node`)
  if (!mine.length) throw new Problem(403, 'DISPUTE_NOT_YOUR_ANSWER', 'only the department that received the answer may dispute it')

  let checkpointTime: number | undefined
  try {
    checkpointTime = Date.parse(decodeEvidence(b.evidence).checkpoint.time)
  } catch (e) {
    throw new Problem(400, 'DISPUTE_EVIDENCE_INVALID', `Tongban-Evidence: ${(e as Error).message}`)
  }
  const certificates = [app.identity.cert.toString(), ...(await app.db.query('SELECT cert_pem FROM audit_certificates')).rows.map((r) => r.cert_pem as string)]
  const v = verifyEvidence({ header: b.evidence, body: b.answer, certificates, caCertificate: app.identity.caPem, now: Number.isFinite(checkpointTime) ? checkpointTime : undefined })
  if (!v.ok) throw new Problem(400, 'DISPUTE_EVIDENCE_INVALID', `Tongban-Evidence does not verify with the answer given: ${v.reason}${v.detail ? ` (${v.detail})` : ''}`)
  const e = v.evidence.record
  if (e.requestId !== b.requestId) throw new Problem(422, 'DISPUTE_EVIDENCE_MISMATCH', `the evidence names request ${e.requestId}, not ${b.requestId}`)
  const record = mine.find((r) => jcs(r) === jcs(e))
  if (!record) throw new Problem(422, 'DISPUTE_EVIDENCE_MISMATCH', 'the evidence does not carry the audit record of that request id')
  if (!releasedData(record)) {
    throw new Problem(422, 'DISPUTE_NOT_DATA', 'only an answer that released data can be disputed (not a refusal, not a workflow step)')
  }
  const resource = app.catalog.get(record.resource!)
  return { record, held: resource ? { providerDepartment: resource.provider.code, items: resource.items.map((i) => i.name) } : null }
}
