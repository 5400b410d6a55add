// A schema failure of a query as the client sees it: the precise code where one rule says
// what is wrong (a context header, a GB 11643 / GB 32100 check, a reversed period), else
// INPUT_INVALID with the JSON pointers.
import { Problem } from '../problems/problem.js'
import { checkIdNumber } from '../gb/id-number.js'
import { checkCreditCode } from '../gb/credit-code.js'
import { periodRefusal } from '../validation/period.js'

export interface SchemaError {
  keyword: string
  instancePath: string
  params?: Record<string, any>
  message?: string
}

// Headers the context checks name; a missing or malformed one gets its own code.
const HEADER_CODES: Record<string, string> = {
  'tongban-purpose': 'INPUT_PURPOSE',
  'tongban-case-id': 'INPUT_CASE_ID',
  'tongban-operator': 'INPUT_OPERATOR',
}

export function validationProblem(body: unknown, errors: readonly SchemaError[], where = 'body'): Problem {
  const first = errors[0]
  if (where === 'headers' && first) {
    const header = String(first.params?.missingProperty ?? first.instancePath.slice(1))
    const base = Object.hasOwn(HEADER_CODES, header) ? HEADER_CODES[header] : undefined
    if (base) {
      const missing = first.keyword === 'required'
      return new Problem(400, missing ? `${base}_MISSING` : `${base}_INVALID`, `header ${header} is ${missing ? 'required' : 'malformed'}`)
    }
  }
  // Domain formats carry their own codes: recompute which rule the value broke.
  for (const v of errors) {
    if (v.keyword !== 'format') continue
    const value = pointerGet(body, v.instancePath)
    if (typeof value !== 'string') continue
    const check = v.params?.format === 'gb11643' ? checkIdNumber(value) : v.params?.format === 'gb32100' ? checkCreditCode(value) : null
    if (check && !check.ok) return new Problem(400, check.code, `${v.instancePath.slice(1) || 'value'}: ${check.reason}`)
  }
  // Rules across fields (a reversed period) have their own code when nothing else is wrong.
  const period = periodRefusal(errors as any)
  if (period) return new Problem(400, period.code, period.reason)
  return new Problem(400, 'INPUT_INVALID', `${where} does not match the schema`, {
    errors: errors.slice(0, 20).map((v) => ({ pointer: v.instancePath || '/', detail: v.message ?? v.keyword })),
  })
}

function pointerGet(obj: unknown, pointer: string): unknown {
  let cur: any = obj
  for (const part of pointer.split('/').slice(1)) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = Object.hasOwn(cur, part) ? cur[part] : undefined
  }
  return cur
}
