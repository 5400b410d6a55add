// GB 11643 citizen identity number: 6-digit region, 8-digit birth date, 3-digit sequence
// (odd = male), ISO 7064 MOD 11-2 check character. Runs on every query: a single pass of
// charCodeAt and no regular expressions; strings are cut only for a successful answer.
//
// Only upper-case X is accepted as the check character, as the standard writes it. A
// lower-case x is refused rather than folded, so each person has exactly one spelling end
// to end: the audit log's keyed subject hash and the upstream lookups see the same bytes.
// Callers normalise their input.
import { isCurrentRegion, isProvincePrefix } from './region.js'

export type IdNumberCheck =
  | {
      ok: true
      region: string
      regionStatus: 'current' | 'retired-or-unknown'
      birthDate: string // YYYY-MM-DD
      sex: 'M' | 'F'
    }
  | { ok: false; code: 'INPUT_INVALID_ID_NUMBER' | 'INPUT_UNKNOWN_REGION'; reason: string }

const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
const CHECK_CHARS = '10X98765432'
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
const DAY_MS = 86_400_000
const CHINA_OFFSET_MS = 8 * 3_600_000
const X = 88 // 'X'
// 18-digit numbers exist since GB 11643-1999; nobody alive then was born much before
// 1880, and the standard's own example (440524188001010014) is born on 1880-01-01.
const MIN_BIRTH_YEAR = 1880

type Refusal = Extract<IdNumberCheck, { ok: false }>

// Refusals are shared frozen objects: a flood of bad input allocates nothing.
const invalid = (reason: string): Refusal =>
  Object.freeze({ ok: false, code: 'INPUT_INVALID_ID_NUMBER', reason })
const NOT_STRING = invalid('not a string')
const BAD_LENGTH = invalid('must be 18 characters')
const NOT_DIGITS = invalid('first 17 characters must be digits')
const LOWER_X = invalid('check character must be upper-case X')
const BAD_CHECK_CHAR = invalid('check character must be a digit or X')
const WRONG_CHECK = invalid('wrong check character')
const BAD_MONTH = invalid('birth month out of range')
const BAD_DAY = invalid('birth day out of range')
const TOO_OLD = invalid('birth date before 1880')
const FUTURE = invalid('birth date in the future')
const UNKNOWN_PROVINCE: Refusal = Object.freeze({
  ok: false,
  code: 'INPUT_UNKNOWN_REGION',
  reason: 'unknown province code',
})

// Caller guarantees 17 ASCII digits.
const checkCharCode = (s: string): number => {
  let sum = 0
  for (let i = 0; i < 17; i++) sum += (s.charCodeAt(i) - 48) * WEIGHTS[i]
  return CHECK_CHARS.charCodeAt(sum % 11)
}

const digitsAt = (s: string, from: number, count: number): number => {
  let n = 0
  for (let i = from; i < from + count; i++) n = n * 10 + s.charCodeAt(i) - 48
  return n
}

const isLeap = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil):
// plain arithmetic, several times cheaper than Date.UTC on the hot path.
const daysFromCivil = (year: number, month: number, day: number): number => {
  const y = month <= 2 ? year - 1 : year
  const era = Math.floor(y / 400)
  const yoe = y - era * 400
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1
  return era * 146_097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719_468
}

// Birth dates are Beijing dates: a baby born after midnight in China is not "in the
// future" while UTC is still on the previous day.
const chinaToday = (nowMs: number): number => Math.floor((nowMs + CHINA_OFFSET_MS) / DAY_MS)

/** The MOD 11-2 check character for the first 17 digits. Throws on anything else. */
export const idCheckCharacter = (first17: string): string => {
  if (typeof first17 !== 'string' || first17.length !== 17) throw new RangeError('expected 17 digits')
  for (let i = 0; i < 17; i++) {
    const c = first17.charCodeAt(i)
    if (c < 48 || c > 57) throw new RangeError('expected 17 digits')
  }
  return String.fromCharCode(checkCharCode(first17))
}

/**
 * Validates a resident id number (`today` defaults to now). The province prefix and the
 * birth date are checked strictly; a retired or unknown county (or city) code never
 * refuses the number, it only sets `regionStatus`: an id keeps the code of the place and
 * year it was issued. Reasons never quote the number.
 */
export const checkIdNumber = (id: string, today?: Date): IdNumberCheck => {
  if (typeof id !== 'string') return NOT_STRING
  if (id.length !== 18) return BAD_LENGTH
  for (let i = 0; i < 17; i++) {
    const c = id.charCodeAt(i)
    if (c < 48 || c > 57) return NOT_DIGITS
  }
  const last = id.charCodeAt(17)
  if (last === 120) return LOWER_X
  if ((last < 48 || last > 57) && last !== X) return BAD_CHECK_CHAR
  if (checkCharCode(id) !== last) return WRONG_CHECK

  // A number with an impossible birth date is no id number at all, whatever its prefix.
  const year = digitsAt(id, 6, 4)
  const month = digitsAt(id, 10, 2)
  const day = digitsAt(id, 12, 2)
  if (month < 1 || month > 12) return BAD_MONTH
  const monthDays = month === 2 && isLeap(year) ? 29 : DAYS_IN_MONTH[month - 1]
  if (day < 1 || day > monthDays) return BAD_DAY
  if (year < MIN_BIRTH_YEAR) return TOO_OLD
  if (daysFromCivil(year, month, day) > chinaToday(today ? today.getTime() : Date.now())) return FUTURE

  if (!isProvincePrefix(digitsAt(id, 0, 2))) return UNKNOWN_PROVINCE
  const region = id.slice(0, 6)
  return {
    ok: true,
    region,
    regionStatus: isCurrentRegion(region) ? 'current' : 'retired-or-unknown',
    birthDate: `${id.slice(6, 10)}-${id.slice(10, 12)}-${id.slice(12, 14)}`,
    sex: (id.charCodeAt(16) - 48) % 2 === 1 ? 'M' : 'F',
  }
}
