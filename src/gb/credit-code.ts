// GB 32100 unified social credit code (统一社会信用代码): registration authority (1),
// entity type (1), GB/T 2260 region of the registering office (6), GB 11714 subject code
// (9), check character (1), over a 31-character alphabet without I O S V Z. Upper case
// only, as the standard writes it; callers normalise.
import { NATIONAL_REGION, isProvincePrefix } from './region.js'

export type CreditCodeCheck =
  | {
      ok: true
      region: string
      registrationAuthority: string // e.g. '1' 机构编制, '5' 民政, '9' 工商 (市场监管)
      entityType: string // meaning depends on the authority: '91' is an enterprise
    }
  | { ok: false; code: 'INPUT_INVALID_CREDIT_CODE' | 'INPUT_UNKNOWN_REGION'; reason: string }

type Refusal = Extract<CreditCodeCheck, { ok: false }>

const ALPHABET = '0123456789ABCDEFGHJKLMNPQRTUWXY'
// Character code → value in ALPHABET, -1 outside it.
const VALUE = new Int8Array(128).fill(-1)
for (let v = 0; v < ALPHABET.length; v++) VALUE[ALPHABET.charCodeAt(v)] = v
// 3^(i-1) mod 31 for positions 1..17.
const WEIGHTS: number[] = []
for (let i = 0, w = 1; i < 17; i++, w = (w * 3) % 31) WEIGHTS.push(w)

// Refusals are shared frozen objects: a flood of bad input allocates nothing.
const invalid = (reason: string): Refusal =>
  Object.freeze({ ok: false, code: 'INPUT_INVALID_CREDIT_CODE', reason })
const NOT_STRING = invalid('not a string')
const BAD_LENGTH = invalid('must be 18 characters')
const NOT_ALPHABET = invalid('character outside the code alphabet (digits, letters except I O S V Z)')
const LOWER_CASE = invalid('letters must be upper case')
const REGION_NOT_DIGITS = invalid('characters 3-8 must be digits')
const WRONG_CHECK = invalid('wrong check character')
const UNKNOWN_PROVINCE: Refusal = Object.freeze({
  ok: false,
  code: 'INPUT_UNKNOWN_REGION',
  reason: 'unknown province code',
})

const valueAt = (s: string, i: number): number => {
  const c = s.charCodeAt(i)
  return c < 128 ? VALUE[c] : -1
}

const isLowerCase = (c: number): boolean => c >= 97 && c <= 122

// Caller guarantees 17 characters of the alphabet.
const checkValue = (s: string): number => {
  let sum = 0
  for (let i = 0; i < 17; i++) sum += VALUE[s.charCodeAt(i)] * WEIGHTS[i]
  return (31 - (sum % 31)) % 31
}

/** The check character for the first 17 characters. Throws on anything else. */
export const creditCheckCharacter = (first17: string): string => {
  if (typeof first17 !== 'string' || first17.length !== 17) throw new RangeError('expected 17 characters')
  for (let i = 0; i < 17; i++) {
    if (valueAt(first17, i) < 0) throw new RangeError('character outside the code alphabet')
  }
  return ALPHABET[checkValue(first17)]
}

/**
 * Validates a credit code. The region's province prefix is checked strictly (100000, the
 * central registries, counts as one); a retired county is accepted: a code never changes
 * after it is issued.
 */
export const checkCreditCode = (code: string): CreditCodeCheck => {
  if (typeof code !== 'string') return NOT_STRING
  if (code.length !== 18) return BAD_LENGTH
  for (let i = 0; i < 18; i++) {
    if (valueAt(code, i) < 0) return isLowerCase(code.charCodeAt(i)) ? LOWER_CASE : NOT_ALPHABET
  }
  for (let i = 2; i < 8; i++) if (valueAt(code, i) > 9) return REGION_NOT_DIGITS
  if (checkValue(code) !== VALUE[code.charCodeAt(17)]) return WRONG_CHECK

  const region = code.slice(2, 8)
  const province = VALUE[code.charCodeAt(2)] * 10 + VALUE[code.charCodeAt(3)]
  if (region !== NATIONAL_REGION && !isProvincePrefix(province)) return UNKNOWN_PROVINCE
  return { ok: true, region, registrationAuthority: code[0], entityType: code[1] }
}
