// Every step of a dispute is an audit record sealed like a query (docs/disputes.md): the
// step's JSON text is the "answer" whose digest the record holds, so each history entry
// verifies with the node certificate like an answer (verifyEvidence: the text, the header).
import type { PoolClient } from 'pg'
import type { FastifyInstance } from 'fastify'
import type { Principal } from '../auth/principal.js'
import { buildAuditRecord } from '../audit/plugin.js'
import { encodeEvidence } from '../evidence/evidence.js'
import { jcs } from '../evidence/jcs.js'
import { ulid } from '../exchange/request-id.js'
import { addEvent, type Dispute } from './store.js'

export type StepAction = 'filed' | 'reminded' | 'escalated' | 'resolved' | 'consumers-told'

export interface Step {
  action: StepAction
  /** The system (or `person:<sub>`) that acted, or `tongban-disputes` for the node's own jobs. */
  actor: string
  principal: Principal | null
  /** What the step holds besides the dispute's id and state: no personal data. */
  detail?: Record<string, unknown>
}

/** Seals one step of `d` and writes it to the history, inside the caller's transaction. */
export async function sealStep(app: FastifyInstance, c: PoolClient, d: Dispute, s: Step): Promise<void> {
  const at = new Date().toISOString()
  const requestId = ulid()
  const sealed = jcs({
    dispute: d.id,
    action: s.action,
    actor: s.actor,
    at,
    status: d.status,
    answer: d.requestId,
    resource: d.resource,
    consumer: d.consumerDepartment,
    provider: d.providerDepartment,
    ...(s.detail ?? {}),
  })
  const record = buildAuditRecord({
    node: app.config.node.id,
    requestId,
    principal: s.principal,
    audit: { resource: d.resource, operation: `dispute.${s.action}`, ...(d.subject ? { subject: d.subject } : {}) },
    status: 200,
    responseBody: sealed,
  })
  const evidence = encodeEvidence(await app.sealer.seal(record))
  await addEvent(c, d.id, { at, actor: s.actor, action: s.action, requestId, sealed, evidence })
}
