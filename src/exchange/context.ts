// The query context every call must state (README.md): purpose (事由), case id (办件编号)
// and optionally the operator. Parsed before body validation so that even a refused query
// is audited with its purpose and case.
import type { FastifyRequest } from 'fastify'
import { Problem, type ProblemCode } from '../problems/problem.js'
import { PURPOSE_CODE, type Purpose } from '../policy/purposes.js'
import type { AuditContext } from '../audit/plugin.js'
import { holdsPersonalNumber } from '../gb/personal-number.js'

const CASE_ID = /^[A-Za-z0-9\-_.:/]{1,64}$/
const OPERATOR = /^[A-Za-z0-9\-_.:@]{1,64}$/

/** Route schema for the context headers: documentation (OpenAPI) and a second check. */
export const contextHeadersSchema = {
  type: 'object',
  required: ['tongban-purpose', 'tongban-case-id'],
  properties: {
    'tongban-purpose': {
      type: 'string',
      maxLength: 512,
      description: '<purpose code>[;<percent-encoded description>] — a code from GET /v1/purposes',
      examples: ['SA-01;%E4%BD%8E%E4%BF%9D%E5%AE%A1%E6%A0%B8'],
    },
    'tongban-case-id': { type: 'string', pattern: CASE_ID.source, description: 'case (办件) number', examples: ['JN-2026-1000'] },
    'tongban-operator': { type: 'string', pattern: OPERATOR.source, description: 'the civil servant at the keyboard' },
    'tongban-request-id': {
      type: 'string',
      description: 'the caller\'s own id, kept as clientRequestId (answered in Tongban-Client-Request-Id) when 8–64 of A-Z a-z 0-9 - _ . :; the node\'s request id is always its own',
    },
  },
} as const

const header = (request: FastifyRequest, name: string): string | undefined => {
  const v = request.headers[name]
  return Array.isArray(v) ? v[0] : v
}

// The refusal names the header, never the value; the record keeps what came before it.
const personal = (code: ProblemCode, header: string) =>
  new Problem(400, code, `${header} holds a resident id number or a credit code: personal data never enters the audit log; use the case's own number`)


/** The purpose description as sent (percent-encoded) and decoded, to be scanned. */
function describes(purposeHeader: string): string {
  const text = purposeHeader.slice(purposeHeader.indexOf(';') + 1)
  try {
    return `${text} ${decodeURIComponent(text)}`
  } catch {
    return text
  }
}

/** The context as stated, before it is checked. */
export interface RawContext {
  purpose?: string | null
  caseId?: string | null
  operator?: string | null
}

/** The context headers of an HTTP request. */
export const contextOf = (request: FastifyRequest): RawContext => ({
  purpose: header(request, 'tongban-purpose'),
  caseId: header(request, 'tongban-case-id'),
  operator: header(request, 'tongban-operator'),
})

/** Checks the context and writes it into the request state (purpose code, case id, operator). */
export function checkContext(raw: RawContext, purposes: Map<string, Purpose>, state: AuditContext): void {
  const purposeHeader = raw.purpose
  if (!purposeHeader) throw new Problem(400, 'INPUT_PURPOSE_MISSING', 'header Tongban-Purpose is required')
  const code = purposeHeader.split(';', 1)[0].trim()
  if (purposeHeader.includes(';') && holdsPersonalNumber(describes(purposeHeader))) throw personal('INPUT_PURPOSE_PERSONAL_DATA', 'Tongban-Purpose')
  if (!PURPOSE_CODE.test(code)) throw new Problem(400, 'INPUT_PURPOSE_INVALID', 'Tongban-Purpose must start with a purpose code')
  if (!purposes.has(code)) throw new Problem(400, 'INPUT_PURPOSE_UNKNOWN', 'the purpose code is not in this node\'s list (GET /v1/purposes)')
  state.purpose = code

  const caseId = raw.caseId
  if (!caseId) throw new Problem(400, 'INPUT_CASE_ID_MISSING', 'header Tongban-Case-Id is required')
  if (holdsPersonalNumber(caseId)) throw personal('INPUT_CASE_ID_PERSONAL_DATA', 'Tongban-Case-Id')
  if (!CASE_ID.test(caseId)) throw new Problem(400, 'INPUT_CASE_ID_INVALID', 'Tongban-Case-Id: 1–64 of A-Z a-z 0-9 - _ . : /')
  state.caseId = caseId

  const operator = raw.operator
  // A signed-in person is the operator (set from the session, src/people): no header replaces them.
  if (operator !== undefined && operator !== null && state.operator === undefined) {
    if (holdsPersonalNumber(operator)) throw personal('INPUT_OPERATOR_PERSONAL_DATA', 'Tongban-Operator')
    if (!OPERATOR.test(operator)) throw new Problem(400, 'INPUT_OPERATOR_INVALID', 'Tongban-Operator: 1–64 of A-Z a-z 0-9 - _ . : @')
    state.operator = operator
  }
}

/** The context of an HTTP request, into its request state (routes outside the query engine: bulk). */
export function readContext(request: FastifyRequest, purposes: Map<string, Purpose>): void {
  checkContext(contextOf(request), purposes, request.audit)
}
