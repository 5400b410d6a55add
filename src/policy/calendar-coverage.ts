// How far ahead the holiday calendar can be trusted: deadlines counted in working days are
// only right while the holiday file holds the State Council's notice for the days they
// span. A year marked "complete": false (provisional, before its notice) does not count.
// The operator is warned (log, /readyz, metric) when fewer than policy.calendarWarnDays
// days from today are covered, so the next notice is added in time.
import { dateKeyOf, type WorkingCalendar } from './calendar.js'

export interface CalendarCoverage {
  /** Days from today (today included) whose year's holidays are complete; Infinity when the calendar makes no claim. */
  daysCovered: number
  /** The last covered day ('YYYY-MM-DD', China time); null when not even today is covered. */
  coveredUntil: string | null
  /** The threshold (policy.calendarWarnDays). */
  warnDays: number
  /** True when daysCovered < warnDays. */
  warning: boolean
}

const DAY_MS = 86_400_000

export function calendarCoverage(now: Date, cal: WorkingCalendar, warnDays: number): CalendarCoverage {
  if (!cal.years) return { daysCovered: Infinity, coveredUntil: null, warnDays, warning: false }
  const today = dateKeyOf(now, cal)
  let year = Number(today.slice(0, 4))
  if (!cal.years.has(year)) return { daysCovered: 0, coveredUntil: null, warnDays, warning: warnDays > 0 }
  while (cal.years.has(year + 1)) year++
  const coveredUntil = `${year}-12-31`
  const daysCovered = Math.round((Date.parse(coveredUntil) - Date.parse(today)) / DAY_MS) + 1
  return { daysCovered, coveredUntil, warnDays, warning: daysCovered < warnDays }
}

/** The operator's message (English, for the log). */
export const coverageMessage = (c: CalendarCoverage): string =>
  c.coveredUntil === null
    ? `the holiday calendar has no complete year for today: working-day deadlines ignore holidays not listed; add the State Council notice (国务院办公厅 部分节假日安排的通知) to the holidays file`
    : `the holiday calendar is complete only until ${c.coveredUntil} (${c.daysCovered} days, fewer than ${c.warnDays}): add the next year's State Council notice (国务院办公厅 部分节假日安排的通知) to the holidays file`
