// Whether a value names a person or an enterprise by its national number. Context headers
// (case id, operator, purpose description, request ids) go into the
// append-only audit log in clear and stay there for good: a resident id number (GB 11643)
// or a credit code (GB 32100) in one, even inside a longer value, would be personal data
// that can never be erased. Such values are refused, not stored.
import { checkIdNumber } from './id-number.js'
import { checkCreditCode } from './credit-code.js'

const LEN = 18
const SIX_DIGITS = /[0-9]{6}/

/** True when some 18-character stretch of the value is a valid id number or credit code. */
export function holdsPersonalNumber(value: string): boolean {
  // Both need six digits in a row (the id's region and date, the code's region).
  if (value.length < LEN || !SIX_DIGITS.test(value)) return false
  // Lower case (a check character x, a credit code typed in lower case) still names someone.
  const v = value.toUpperCase()
  for (let i = 0; i + LEN <= v.length; i++) {
    const w = v.slice(i, i + LEN)
    if (checkIdNumber(w).ok || checkCreditCode(w).ok) return true
  }
  return false
}
