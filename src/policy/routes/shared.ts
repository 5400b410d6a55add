// What the sharing routes share: the dependencies the policy plugin hands them, the
// outbox of a node in a tier tree, the period check, the caller, and the schemas.
import type { FastifyInstance, FastifyRequest, preHandlerHookHandler } from 'fastify'
import { Problem } from '../../problems/problem.js'
import { queryValidators } from '../../validation/ajv.js'
import type { Principal } from '../../auth/principal.js'
import type { Purpose } from '../purposes.js'
import * as store from '../applications.js'
import type { Grant } from '../grants.js'
import type { WorkingCalendar } from '../calendar.js'
import { applicationExtras, grantExtras, historyItem } from './views.js'

/**
 * Applications across tiers (src/tiers/application-messages.ts implements it on a node in a
 * tree): the outbox that carries a decision back to the consumer's node.
 */
export interface ApplicationOutbox {
  /** Inside the decision's transaction: writes the message for an application that came from another node. */
  decided: store.DecisionHook
  /** After the commit: queue the decision's message of this application. Never throws. */
  flush(applicationId: string): void
}

declare module 'fastify' {
  interface FastifyInstance {
    applicationOutbox?: ApplicationOutbox
  }
  interface FastifyRequest {
    /** Set by the tiers hook on the owner's in-process call for an application that travelled here. */
    remoteApplication: { id: string; originNode: string } | null
  }
}

export interface PolicyRouteDeps {
  purposes: Map<string, Purpose>
  /** The route step of POST /v1/applications in a tier tree (application-messages.ts). */
  routeApplication?: preHandlerHookHandler
  dueDate(from: Date): { dueAt: Date; remindAt: Date }
  /** The working calendar the deadlines are counted in (the inbox's working days left). */
  calendar: WorkingCalendar
  onSubmitted(a: store.Application): Promise<void>
  onDecided(a: store.Application, grant: Grant | null): Promise<void>
  /** Before the database: makes the revocation binding on every replica (Redis marker). */
  markRevoked(g: Grant): Promise<void>
  onRevoked(g: Grant): Promise<void>
}

const MAX_VALIDITY_MS = 3 * 366 * 86400_000

/** The period applied for: checked where the consumer applies, and again by the owner. */
export function checkPeriod(b: { validFrom?: string; validTo: string }, now = new Date()): { validFrom: Date; validTo: Date } {
  const validFrom = b.validFrom ? new Date(b.validFrom) : now
  const validTo = new Date(b.validTo)
  if (!(validTo > validFrom) || validTo <= now) throw new Problem(400, 'APPLICATION_INVALID_PERIOD', 'validTo must be after validFrom and in the future')
  if (validTo.getTime() - validFrom.getTime() > MAX_VALIDITY_MS) throw new Problem(400, 'APPLICATION_INVALID_PERIOD', 'a grant may last at most 3 years')
  return { validFrom, validTo }
}

export const me = (request: FastifyRequest) => request.principal as Principal
/** A department's provider role covers its own resources only. */
export const isProviderOf = (p: Principal, providerDepartment: string | null) => p.roles.includes('provider') && p.department === providerDepartment

/** The application, if the caller's department applied for it or provides it; else 404. */
export async function visibleApplication(app: FastifyInstance, request: FastifyRequest, id: string): Promise<store.Application> {
  const a = await store.getApplication(app.db, id)
  const p = me(request)
  // Other departments' applications are not even confirmed to exist.
  if (!a || (a.consumerDepartment !== p.department && a.providerDepartment !== p.department)) {
    throw new Problem(404, 'APPLICATION_NOT_FOUND', 'no such application')
  }
  return a
}

export const applicationSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' }, consumerDepartment: { type: 'string' }, consumerSystem: { type: 'string' }, systemOnly: { type: 'boolean' },
    resource: { type: 'string' }, providerDepartment: { type: ['string', 'null'], description: 'null until the owning node has answered' },
    items: { type: 'array', items: { type: 'string' } }, purposes: { type: 'array', items: { type: 'string' } },
    basis: { type: 'string' }, validFrom: { type: 'string' }, validTo: { type: 'string' }, dailyQuota: { type: 'integer' },
    status: { type: 'string', enum: ['pending', 'approved', 'rejected', 'withdrawn'] },
    dueAt: { type: ['string', 'null'] }, remindedAt: { type: ['string', 'null'] }, escalatedAt: { type: ['string', 'null'] },
    decidedAt: { type: ['string', 'null'] }, decidedBy: { type: ['string', 'null'] }, decisionReason: { type: ['string', 'null'] },
    createdAt: { type: 'string' }, grantId: { type: ['string', 'null'], description: "the grant's id (at the consumer's node: the owning node's grant)" },
    granted: {
      type: ['object', 'null'],
      description: 'what the approval granted, possibly narrowed',
      properties: { items: { type: 'array', items: { type: 'string' } }, validFrom: { type: 'string' }, validTo: { type: 'string' }, dailyQuota: { type: 'integer' } },
    },
    originNode: { type: ['string', 'null'], description: "at the owning node: the consumer's node, where the decision goes back to" },
    ownerNode: { type: ['string', 'null'], description: "at the consumer's node: the node that holds the resource and decides (null: this node, or not known yet)" },
    delivery: {
      type: ['object', 'null'],
      description: "at the consumer's node, for a resource held by another node: how the application travels to the owner (docs/tiers.md §7)",
      properties: {
        state: { type: 'string', enum: ['forwarding', 'delivered', 'failed', 'refused'] },
        attempts: { type: 'integer', description: "attempts of this node's leg" },
        nextHop: { type: ['string', 'null'] },
        lastError: { type: ['string', 'null'], description: 'a problem code, with the node where it arose (CODE@node)' },
        updatedAt: { type: ['string', 'null'] },
      },
    },
    history: { type: 'array', items: historyItem },
    ...applicationExtras,
  },
}

export const grantSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' }, applicationId: { type: 'string' }, consumerDepartment: { type: 'string' }, consumerSystem: { type: ['string', 'null'] },
    resource: { type: 'string' }, providerDepartment: { type: 'string' },
    items: { type: 'array', items: { type: 'string' } }, purposes: { type: 'array', items: { type: 'string' } },
    validFrom: { type: 'string' }, validTo: { type: 'string' }, dailyQuota: { type: 'integer' },
    status: { type: 'string', enum: ['active', 'revoked', 'expired'] },
    ...grantExtras,
  },
}

export const itemList = { type: 'array', minItems: 1, maxItems: 100, uniqueItems: true, items: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9]{0,63}$' } }
export const dateTime = { type: 'string', format: 'date-time' }
export const idParam = { type: 'object', required: ['id'], properties: { id: { type: 'string', pattern: '^[0-9A-Z]{26}$' } } }
export const quota = { type: 'integer', minimum: 1, maximum: 1_000_000 }
export const listLimit = { type: 'integer', minimum: 1, maximum: 200, default: 50 }

export const sec = [{ bearer: [] }]

/** A list route's query string is text: coerced (limit=20 is a number), as the auditor routes do. */
export const queryCompiler = ({ schema }: { schema: object }) => queryValidators.compile(schema)
