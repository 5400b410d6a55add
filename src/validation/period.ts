// A rule JSON Schema cannot state: one field must not come after another (a period's start
// and end). Request schemas name the pair with the keyword
//   "x-tongban-period": ["from", "to"]
// (an `x-` extension, so the OpenAPI document stays valid), and every ajv instance that
// compiles request schemas registers `periodKeyword`. A reversed period is then refused at
// the validate step with INPUT_PERIOD_REVERSED, like any other input refusal, and nothing
// leaves the gateway: the agency would refuse it anyway, and its refusal is a 502.
import type { KeywordDefinition } from 'ajv'

export const PERIOD_KEYWORD = 'x-tongban-period'
export const PERIOD_CODE = 'INPUT_PERIOD_REVERSED'

// YYYY-MM or YYYY-MM-DD: zero-padded, so string order is time order. Values of another
// shape are left to their own property schemas (their refusal is INPUT_INVALID).
const DATE_LIKE = /^[0-9]{4}-[0-9]{2}(-[0-9]{2})?$/

type Body = Record<string, unknown>

/** The pointer-free reason when `body[from]` is after `body[to]`, else null. */
export function reversedPeriod(body: unknown, [from, to]: readonly string[]): string | null {
  if (body === null || typeof body !== 'object') return null
  const a = (body as Body)[from]
  const b = (body as Body)[to]
  if (typeof a !== 'string' || typeof b !== 'string' || !DATE_LIKE.test(a) || !DATE_LIKE.test(b) || a.length !== b.length) return null
  return a > b ? `${from} must not be after ${to}` : null
}

export const periodKeyword: KeywordDefinition = {
  keyword: PERIOD_KEYWORD,
  type: 'object',
  schemaType: 'array',
  metaSchema: { type: 'array', items: { type: 'string' }, minItems: 2, maxItems: 2 },
  errors: true,
  validate: function check(schema: string[], data: unknown) {
    const reason = reversedPeriod(data, schema)
    if (reason === null) return true
    ;(check as { errors?: unknown[] }).errors = [{ keyword: PERIOD_KEYWORD, message: reason, params: { from: schema[0], to: schema[1] } }]
    return false
  },
}

/** The coded problem for a period error among ajv errors, if there is one and nothing else. */
export function periodRefusal(errors: ReadonlyArray<{ keyword: string; message?: string }>): { code: typeof PERIOD_CODE; reason: string } | null {
  if (errors.length === 0 || !errors.every((e) => e.keyword === PERIOD_KEYWORD)) return null
  return { code: PERIOD_CODE, reason: errors[0].message ?? 'the period ends before it starts' }
}
