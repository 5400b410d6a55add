// Ajv validation errors as a Problem, as a client sees them: a context header missing or
// malformed has its own code, a domain format (GB 11643, GB 32100) the code of the rule the
// value broke, a reversed period INPUT_PERIOD_REVERSED, anything else INPUT_INVALID with
// pointers. Needs no Fastify request (batch items are validated in a worker).
import { Problem } from './problem.js'
import type { ProblemCode } from './codes.js'
import { checkIdNumber } from '../gb/id-number.js'
import { checkCreditCode } from '../gb/credit-code.js'
import { periodRefusal } from '../validation/period.js'

export interface ValidationError {
  keyword: string
  instancePath: string
  params?: Record<string, any>
  message?: string
}

// Headers the context checks name. The operator is optional: it is never missing.
const HEADER_CODES: Record<string, { missing?: ProblemCode; invalid: ProblemCode }> = {
  'tongban-purpose': { missing: 'INPUT_PURPOSE_MISSING', invalid: 'INPUT_PURPOSE_INVALID' },
  'tongban-case-id': { missing: 'INPUT_CASE_ID_MISSING', invalid: 'INPUT_CASE_ID_INVALID' },
  'tongban-operator': { invalid: 'INPUT_OPERATOR_INVALID' },
}

/**
 * The Problem for `errors` found validating `data` (the body, or a batch item); `where`
 * names what was validated: 'body', 'headers', 'querystring', 'params' or 'item'.
 */
export function validationProblem(data: unknown, errors: readonly ValidationError[], where = 'body'): Problem {
  const first = errors[0]
  if (where === 'headers' && first) {
    const header = String(first.params?.missingProperty ?? first.instancePath.slice(1))
    const codes = Object.hasOwn(HEADER_CODES, header) ? HEADER_CODES[header] : undefined
    const missing = first.keyword === 'required'
    const code = codes && (missing ? codes.missing : codes.invalid)
    if (code) return new Problem(400, code, `header ${header} is ${missing ? 'required' : 'malformed'}`)
  }
  // Domain formats carry their own codes: recompute which rule the value broke.
  for (const v of errors) {
    if (v.keyword !== 'format') continue
    const value = pointerGet(data, v.instancePath)
    if (typeof value !== 'string') continue
    const check = v.params?.format === 'gb11643' ? checkIdNumber(value) : v.params?.format === 'gb32100' ? checkCreditCode(value) : null
    if (check && !check.ok) return new Problem(400, check.code, `${v.instancePath.slice(1) || 'value'}: ${check.reason}`)
  }
  // Rules across fields (a reversed period) have their own code when nothing else is wrong.
  const period = periodRefusal(errors)
  if (period) return new Problem(400, period.code, period.reason)
  return new Problem(400, 'INPUT_INVALID', `${where} does not match the schema`, {
    errors: errors.slice(0, 20).map((v) => ({
      pointer: v.instancePath || '/',
      detail: v.message ?? v.keyword,
    })),
  })
}

function pointerGet(obj: unknown, pointer: string): unknown {
  let cur: any = obj
  for (const part of pointer.split('/').slice(1)) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = Object.prototype.hasOwnProperty.call(cur, part) ? cur[part] : undefined
  }
  return cur
}
