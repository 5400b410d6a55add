// Dates every simulated department agrees on. The synthetic records describe the world as of
// REFERENCE_DATE (the property registry uses the same date): registrations, graduations,
// contributions and tax payments all end on the day before it.
import type { Person } from './population.js'

export const REFERENCE_DATE = '2026-01-01'
export const REFERENCE_MS = Date.parse(REFERENCE_DATE)
/** The last month with records: 2025-12. */
export const LAST_RECORD_MONTH = '2025-12'
/** The last full calendar year with records: 2025. */
export const LAST_RECORD_YEAR = 2025

export const DAY_MS = 86_400_000

export const isoDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10)

const parts = (date: string): [number, number, number] => [+date.slice(0, 4), +date.slice(5, 7), +date.slice(8, 10)]

/** The day a person turns `years` old (29 February rolls over to 1 March, as the law counts it). */
export const birthdayMs = (p: Person, years: number): number => {
  const [y, m, d] = parts(p.birthDate)
  return Date.UTC(y + years, m - 1, d)
}

/** Age in whole years on `ms`. */
export const ageOn = (p: Person, ms: number): number => {
  const [y, m, d] = parts(p.birthDate)
  const at = new Date(ms)
  const before = at.getUTCMonth() + 1 < m || (at.getUTCMonth() + 1 === m && at.getUTCDate() < d)
  return at.getUTCFullYear() - y - (before ? 1 : 0)
}

// Months as integers (year·12 + month − 1) make periods plain arithmetic.

/** 'YYYY-MM' → month number. */
export const monthNumber = (ym: string): number => +ym.slice(0, 4) * 12 + (+ym.slice(5, 7) - 1)

/** Month number → 'YYYY-MM'. */
export const monthString = (n: number): string => `${Math.floor(n / 12)}-${String((n % 12) + 1).padStart(2, '0')}`

/** The month number of a date (ms). */
export const monthOfMs = (ms: number): number => {
  const d = new Date(ms)
  return d.getUTCFullYear() * 12 + d.getUTCMonth()
}

export const LAST_RECORD_MONTH_NUMBER = monthNumber(LAST_RECORD_MONTH)

/** A standard normal deviate from a uniform PRNG (Box–Muller). */
export const gaussian = (rnd: () => number): number => {
  const u = 1 - rnd() // (0, 1]
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rnd())
}
