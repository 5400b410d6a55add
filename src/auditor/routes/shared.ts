// What every auditor route shares: the auditor role, the auditor's own case id into the
// record of the call, the audit config (every call is itself sealed), the OpenAPI tag,
// security and common problem responses, the filter schemas and their parsing.
import type { FastifyInstance, FastifyRequest, FastifySchema, RouteShorthandOptions } from 'fastify'
import { queryValidators } from '../../validation/ajv.js'
import { holdsPersonalNumber } from '../../gb/personal-number.js'
import { Problem } from '../../problems/problem.js'
import { problemResponses } from '../../problems/schema.js'
import { DEFAULT_PAGE, KINDS, MAX_PAGE, type ResourceResolver, type SearchFilters } from '../search.js'

const CASE_ID = '^[A-Za-z0-9_.:/-]{1,64}$'
export const HASH = '^[0-9a-f]{64}$'
const SUBJECT_HASH = '^hmac-sha256:[0-9a-f]{64}$'
const text = (max = 128) => ({ type: 'string', minLength: 1, maxLength: max })

export const filterProperties = {
  from: { type: 'string', format: 'date-time', description: 'records at or after (RFC 3339)' },
  to: { type: 'string', format: 'date-time', description: 'records before (RFC 3339)' },
  department: { ...text(32), description: 'consumer department (统一社会信用代码)' },
  system: { ...text(64), description: 'consumer system (client id)' },
  region: { ...text(6), description: 'consumer region (GB/T 2260)' },
  provider: { ...text(32), description: 'provider department code: the resources it owns' },
  resource: { ...text(32), description: 'resource code, e.g. 101001/00001' },
  service: { ...text(32), description: 'verification service, e.g. identity' },
  operation: { ...text(64), description: 'operation, e.g. verify, catalog.update, grant.revoke' },
  kind: { type: 'string', enum: [...KINDS], description: 'query (data queries), admin (catalogue, applications, grants, keys), login (token endpoint), audit (auditors\' own calls)' },
  decision: { type: 'string', enum: ['allowed', 'denied', 'failed'] },
  reason: { ...text(64), description: 'reason code, e.g. POLICY_NO_GRANT' },
  purpose: { ...text(32), description: 'purpose code' },
  caseId: { ...text(64), description: 'case (办件) number' },
  operator: { ...text(64), description: 'the civil servant (Tongban-Operator)' },
  node: text(16),
  requestId: text(64),
  clientRequestId: { ...text(64), description: 'the caller\'s own Tongban-Request-Id (its retries share it)' },
  chain: { ...text(128), description: 'replica chain' },
  grant: text(64),
  subjectHash: { type: 'string', pattern: SUBJECT_HASH, description: 'the keyed subject hash, as found in a record' },
} as const

export const pageProperties = {
  limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: DEFAULT_PAGE, description: `page size (hard cap ${MAX_PAGE})` },
  cursor: { type: 'string', maxLength: 512, description: 'nextCursor of the previous page' },
  order: { type: 'string', enum: ['desc', 'asc'], default: 'desc' },
} as const

export const includeOwnProperty = {
  includeOwn: { type: 'boolean', default: false, description: "show the calling auditor's own audit calls (audit.* records of its system), hidden by default" },
} as const

/** The filters of a search, with the caller's own audit calls hidden unless includeOwn. */
export function searchFiltersOf(q: Record<string, any>, caller: string): SearchFilters {
  const f = filtersOf(q)
  if (q.includeOwn !== true) f.hideAuditOf = caller
  return f
}

/** A raw subject as a query parameter: documented, and refused by refuseRawInQuery. */
export const refusedSubject = { type: 'string', description: 'refused: AUDIT_SUBJECT_IN_URL' } as const

export const open = { type: 'object', additionalProperties: true }
export const auditorHeaders = {
  type: 'object',
  properties: {
    'tongban-case-id': { type: 'string', pattern: CASE_ID, description: 'optional: the auditor\'s own case (e.g. an inspection file number), recorded with the call' },
  },
}
export const ERRORS = problemResponses(400, 401, 403, 503)

export function filtersOf(q: Record<string, any>): SearchFilters {
  const f: SearchFilters = {}
  for (const k of Object.keys(filterProperties) as (keyof SearchFilters)[]) if (q[k] !== undefined) (f as any)[k] = q[k]
  return f
}

/** Throws AUDIT_RANGE_INVALID unless `from` is before `to` (when both are given). */
export function requireOrderedRange(from: string | Date | undefined, to: string | Date | undefined): void {
  const ms = (d: string | Date) => (typeof d === 'string' ? Date.parse(d) : d.getTime())
  if (from !== undefined && to !== undefined && ms(from) >= ms(to)) throw new Problem(400, 'AUDIT_RANGE_INVALID', '`from` must be before `to`')
}

export function resolver(app: FastifyInstance): ResourceResolver {
  return {
    byProvider: (dept) => app.catalog.list().filter((r) => r.provider.code === dept).map((r) => r.code),
    byService: (service) => app.catalog.list().filter((r) => r.service?.verifyService === service).map((r) => r.code),
  }
}

// Fastify's own validation (app.ts) does not coerce, so JSON bodies are validated as they
// are; routes with a query string coerce it (src/validation/ajv.ts, queryValidators).
const textCompiler = ({ schema }: { schema: object }) => queryValidators.compile(schema)

// The auditor's own case id, if given, goes into the record of the call.
async function recordCaseId(request: FastifyRequest) {
  const caseId = request.headers['tongban-case-id']
  if (typeof caseId !== 'string') return
  // Stored in clear for good, like a consumer's: never a person's or an enterprise's number.
  if (holdsPersonalNumber(caseId)) {
    throw new Problem(400, 'INPUT_CASE_ID_PERSONAL_DATA', 'Tongban-Case-Id holds a resident id number or a credit code: personal data never enters the audit log; use the case\'s own number')
  }
  request.audit.caseId = caseId
}

export type AuditorSchema = FastifySchema & { summary: string; description?: string; response: object }

/** Options of an auditor route: role, case id, audit operation, schema (headers overridable). */
export function auditorRoute(app: FastifyInstance, operation: string, schema: AuditorSchema): RouteShorthandOptions {
  return {
    onRequest: [app.authenticate, app.requireRole('auditor')],
    preHandler: recordCaseId,
    config: { audit: { resource: 'audit', operation } },
    schema: { tags: ['audit'], security: [{ bearer: [] }], headers: auditorHeaders, ...schema },
    ...(schema.querystring ? { validatorCompiler: textCompiler } : {}),
  }
}
