// Which answer a dispute is about, and whether the caller may dispute it: the request id
// names it, the Tongban-Evidence (with the exact answer bytes) proves it, and the audit
// record of that request id must be the very record the evidence carries, received by the
// caller's department. Cheap checks first (the record exists, it is the caller's), then the
// signature. The answer bytes are hashed and dropped, never stored.
import type { FastifyInstance } from 'fastify'
import type { Principal } from '../auth/principal.js'
import { decodeEvidence, verifyEvidence, type AuditRecord } from '../evidence/evidence.js'
import { jcs } from '../evidence/jcs.js'
import { Problem } from '../problems/problem.js'

export interface DisputedAnswer {
  record: AuditRecord
  providerDepartment: string
  resourceItems: string[]
}

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
  if (record.decision !== 'allowed' || !record.resource || (record.operation ?? '').startsWith('dispute.') || record.operation?.startsWith('application.')) {
    throw new Problem(422, 'DISPUTE_NOT_DATA', 'only an answer that released data can be disputed (not a refusal, not a workflow step)')
  }
  const resource = app.catalog.get(record.resource)
  if (!resource) {
    throw new Problem(409, 'DISPUTE_HELD_ELSEWHERE', `resource ${record.resource} is not held at this node; file the dispute where its provider is`)
  }
  return { record, providerDepartment: resource.provider.code, resourceItems: resource.items.map((i) => i.name) }
}
