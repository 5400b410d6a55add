// Working days in China (工作日): the deadline for deciding an application is counted in
// working days (README.md: default 10). Weekends are rest days unless the State Council's
// yearly notice makes them make-up working days (调休上班); public holidays are rest days
// even on weekdays. Dates are civil dates in China time (UTC+8, no DST), so an instant is
// first mapped to its day in China: 23:30 UTC on the 1st is already the 2nd in Beijing.
//
// Deadline rule: the submission day does not count; the deadline is the end
// (23:59:59.999 +08:00) of the Nth working day after it.
import { readFileSync } from 'node:fs'

export interface WorkingCalendar {
  /** Public holidays (rest days), 'YYYY-MM-DD' in China time. */
  holidays: Set<string>
  /** Make-up working days (调休上班) that fall on a Saturday or Sunday, 'YYYY-MM-DD'. */
  workdays: Set<string>
  /** Offset of the calendar's civil time from UTC in minutes: 480 (+08:00) for China. */
  utcOffsetMinutes: number
  /** Years whose holiday data is complete (from the file); outside them only weekends and
   *  whatever holidays are listed are known. Absent: no claim. */
  years?: Set<number>
}

export const CHINA_UTC_OFFSET_MINUTES = 480
export const DEFAULT_DECISION_WORKING_DAYS = 10

const DAY_MS = 86_400_000
const DATE_KEY = /^(\d{4})-(\d{2})-(\d{2})$/

/** A calendar with no holidays: weekends only (useful as a base and in tests). */
export function weekendOnlyCalendar(utcOffsetMinutes = CHINA_UTC_OFFSET_MINUTES): WorkingCalendar {
  return { holidays: new Set(), workdays: new Set(), utcOffsetMinutes }
}

// Civil dates are handled as "day numbers": days since 1970-01-01 in the calendar's zone.
function dayNumberOf(instant: Date, cal: WorkingCalendar): number {
  const t = instant.getTime()
  if (!Number.isFinite(t)) throw new TypeError('calendar: invalid Date')
  return Math.floor((t + cal.utcOffsetMinutes * 60_000) / DAY_MS)
}

const keyOfDay = (day: number): string => new Date(day * DAY_MS).toISOString().slice(0, 10)
/** 0 = Sunday … 6 = Saturday (1970-01-01 was a Thursday). */
const weekdayOfDay = (day: number): number => (((day + 4) % 7) + 7) % 7
const endOfDay = (day: number, cal: WorkingCalendar): Date => new Date((day + 1) * DAY_MS - cal.utcOffsetMinutes * 60_000 - 1)

function isWorkingDayNumber(day: number, cal: WorkingCalendar): boolean {
  const key = keyOfDay(day)
  if (cal.holidays.has(key)) return false
  if (cal.workdays.has(key)) return true
  const wd = weekdayOfDay(day)
  return wd !== 0 && wd !== 6
}

/** The civil date ('YYYY-MM-DD') of an instant in the calendar's time zone. */
export function dateKeyOf(instant: Date, cal: WorkingCalendar): string {
  return keyOfDay(dayNumberOf(instant, cal))
}

/** Whether an instant's day (in the calendar's zone), or a 'YYYY-MM-DD' date, is a working day. */
export function isWorkingDay(date: Date | string, cal: WorkingCalendar): boolean {
  if (typeof date === 'string') {
    const day = parseDateKey(date)
    if (day === undefined) throw new TypeError(`calendar: ${JSON.stringify(date)} is not a YYYY-MM-DD date`)
    return isWorkingDayNumber(day, cal)
  }
  return isWorkingDayNumber(dayNumberOf(date, cal), cal)
}

/** Whether the holiday data covers the year of the instant's day (when the calendar says which years it covers). */
export function calendarCovers(instant: Date, cal: WorkingCalendar): boolean {
  if (!cal.years) return true
  return cal.years.has(Number(dateKeyOf(instant, cal).slice(0, 4)))
}

/**
 * The end (23:59:59.999 in the calendar's zone) of the Nth working day after the day of
 * `start`; the day of `start` itself does not count. n = 0 gives the end of the day of
 * `start`; a negative n counts backwards (the end of the |n|th working day before the day
 * of `start`, e.g. for a reminder two working days before a deadline).
 */
export function addWorkingDays(start: Date, n: number, cal: WorkingCalendar): Date {
  if (!Number.isSafeInteger(n)) throw new TypeError(`calendar: working days must be an integer, got ${n}`)
  let day = dayNumberOf(start, cal)
  const step = n < 0 ? -1 : 1
  let left = Math.abs(n)
  // Guard against a calendar that (wrongly) has no working days at all.
  let budget = left * 7 + 400
  while (left > 0) {
    day += step
    if (isWorkingDayNumber(day, cal)) left--
    if (--budget < 0) throw new Error(`calendar: no working days found around ${keyOfDay(day)}`)
  }
  return endOfDay(day, cal)
}

/**
 * Working days after the day of `from` up to and including the day of `to` (negative when
 * `to` is before `from`). For n >= 0, workingDaysBetween(s, addWorkingDays(s, n)) === n.
 */
export function workingDaysBetween(from: Date, to: Date, cal: WorkingCalendar): number {
  const a = dayNumberOf(from, cal)
  const b = dayNumberOf(to, cal)
  if (b < a) return -workingDaysBetween(to, from, cal)
  let count = 0
  for (let d = a + 1; d <= b; d++) if (isWorkingDayNumber(d, cal)) count++
  return count
}

// ---- the holiday file ---------------------------------------------------------------

export class CalendarFileError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`invalid holiday calendar ${file}: ${problems.join('; ')}`)
    this.name = 'CalendarFileError'
  }
}

/** Day number of a well-formed, real 'YYYY-MM-DD' date; undefined otherwise. */
function parseDateKey(s: string): number | undefined {
  const m = DATE_KEY.exec(s)
  if (!m) return undefined
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])]
  const t = Date.UTC(y, mo - 1, d)
  const back = new Date(t)
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return undefined
  return t / DAY_MS
}

function parseOffset(s: unknown): number | undefined {
  if (typeof s !== 'string') return undefined
  const m = /^([+-])(\d{2}):(\d{2})$/.exec(s)
  if (!m || Number(m[2]) > 14 || Number(m[3]) > 59) return undefined
  return (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]))
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Validate the parsed contents of a holiday file (see config/holidays.json) and build the
 * calendar; every problem found is listed in the CalendarFileError.
 */
export function parseCalendar(doc: unknown, file = '<calendar>'): WorkingCalendar {
  const problems: string[] = []
  const holidays = new Set<string>()
  const workdays = new Set<string>()
  const years = new Set<number>()
  if (!isObject(doc)) throw new CalendarFileError(file, ['the file must hold a JSON object'])

  let utcOffsetMinutes = CHINA_UTC_OFFSET_MINUTES
  if (doc.utcOffset !== undefined) {
    const off = parseOffset(doc.utcOffset)
    if (off === undefined) problems.push(`utcOffset ${JSON.stringify(doc.utcOffset)} is not of the form +08:00`)
    else utcOffsetMinutes = off
  }

  if (!isObject(doc.years)) {
    problems.push('"years" must be an object keyed by year ("2026": { "periods": [...] })')
    throw new CalendarFileError(file, problems)
  }
  for (const [yearKey, entry] of Object.entries(doc.years)) {
    const at = `years.${yearKey}`
    if (!/^\d{4}$/.test(yearKey)) {
      problems.push(`${at}: the key must be a four-digit year`)
      continue
    }
    const year = Number(yearKey)
    if (!isObject(entry) || !Array.isArray(entry.periods)) {
      problems.push(`${at}: must be an object with a "periods" array`)
      continue
    }
    if (entry.complete !== undefined && typeof entry.complete !== 'boolean') problems.push(`${at}: "complete" must be true or false`)
    // A year counts as covered unless it says its data is partial (e.g. before its notice is out).
    if (entry.complete !== false) years.add(year)
    entry.periods.forEach((p: unknown, i: number) => {
      const pat = `${at}.periods[${i}]`
      if (!isObject(p)) {
        problems.push(`${pat}: must be an object`)
        return
      }
      const name = typeof p.name === 'string' && p.name ? p.name : undefined
      if (!name) problems.push(`${pat}: "name" must be a non-empty string`)
      const label = name ? `${pat} (${name})` : pat
      for (const kind of ['holidays', 'workdays'] as const) {
        const list = p[kind] ?? (kind === 'workdays' ? [] : undefined)
        if (!Array.isArray(list)) {
          problems.push(`${label}: "${kind}" must be an array of YYYY-MM-DD dates`)
          continue
        }
        for (const s of list) {
          const day = typeof s === 'string' ? parseDateKey(s) : undefined
          if (day === undefined) {
            problems.push(`${label}: ${JSON.stringify(s)} in ${kind} is not a real YYYY-MM-DD date`)
            continue
          }
          const key = s as string
          const y = Number(key.slice(0, 4))
          if (Math.abs(y - year) > 1) problems.push(`${label}: ${key} is far from the year ${year} it is listed under`)
          const wd = weekdayOfDay(day)
          if (kind === 'workdays' && wd !== 0 && wd !== 6) {
            problems.push(`${label}: make-up working day ${key} is a weekday (make-up days fall on a Saturday or Sunday)`)
          }
          const own = kind === 'holidays' ? holidays : workdays
          const other = kind === 'holidays' ? workdays : holidays
          if (own.has(key)) problems.push(`${label}: ${key} is listed twice in ${kind}`)
          if (other.has(key)) problems.push(`${label}: ${key} is both a holiday and a make-up working day`)
          own.add(key)
        }
      }
    })
  }
  if (problems.length) throw new CalendarFileError(file, problems)
  return { holidays, workdays, utcOffsetMinutes, years }
}

/** Read and validate a holiday file such as config/holidays.json. */
export function loadCalendar(file: string): WorkingCalendar {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new CalendarFileError(file, [`cannot read the file (${(e as Error).message})`])
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (e) {
    throw new CalendarFileError(file, [`not valid JSON (${(e as Error).message})`])
  }
  return parseCalendar(doc, file)
}
