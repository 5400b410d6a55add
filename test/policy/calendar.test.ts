import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  CalendarFileError,
  DEFAULT_DECISION_WORKING_DAYS,
  addWorkingDays,
  calendarCovers,
  dateKeyOf,
  isWorkingDay,
  loadCalendar,
  parseCalendar,
  weekendOnlyCalendar,
  workingDaysBetween,
} from '../../src/policy/calendar.js'

const FILE = join(import.meta.dirname, '../..', 'config', 'holidays.json')
const cal = loadCalendar(FILE)
const plain = weekendOnlyCalendar()

/** A moment on a China civil date ('YYYY-MM-DD', at hh:mm +08:00). */
const cn = (date: string, time = '10:00') => new Date(`${date}T${time}:00+08:00`)
/** The expected deadline: end of that China day. */
const endOf = (date: string) => new Date(`${date}T23:59:59.999+08:00`)
const due = (from: string, n: number, c = cal, time?: string) => dateKeyOf(addWorkingDays(cn(from, time), n, c), c)

t.test('the shipped holiday file loads and is sane', async (t) => {
  t.ok(cal.holidays.has('2026-01-01') && cal.holidays.has('2026-10-07'))
  t.ok(cal.workdays.has('2026-02-14') && cal.workdays.has('2026-10-10'))
  t.equal(cal.utcOffsetMinutes, 480)
  for (const d of cal.workdays) t.ok([0, 6].includes(new Date(`${d}T00:00:00Z`).getUTCDay()), `make-up day ${d} is on a weekend`)
  t.ok(calendarCovers(cn('2026-06-01'), cal), '2026 is complete')
  t.notOk(calendarCovers(cn('2027-03-01'), cal), '2027 is not complete until its notice is added')
  t.notOk(isWorkingDay('2027-01-01', cal), '2027 元旦 is a holiday')
})

t.test('weekday arithmetic; the submission day does not count', async (t) => {
  // 2026-03-02 is a Monday, a week with no holidays.
  t.equal(due('2026-03-02', 1, plain), '2026-03-03')
  t.equal(due('2026-03-02', 4, plain), '2026-03-06')
  t.equal(due('2026-03-02', 5, plain), '2026-03-09', 'Saturday and Sunday skipped')
  t.equal(due('2026-03-02', 0, plain), '2026-03-02', 'n = 0: end of the submission day')
  t.equal(due('2026-03-02', 10, cal), '2026-03-16')
})

t.test('weekends are skipped', async (t) => {
  t.equal(due('2026-03-06', 1), '2026-03-09', 'Friday + 1 = Monday')
  t.equal(due('2026-03-07', 1), '2026-03-09', 'Saturday + 1 = Monday')
  t.equal(due('2026-03-08', 1), '2026-03-09', 'Sunday + 1 = Monday')
  t.notOk(isWorkingDay('2026-03-07', cal))
  t.ok(isWorkingDay('2026-03-09', cal))
})

t.test('a holiday week: 国庆 2026 (1–7 Oct, make-up Sat 10 Oct)', async (t) => {
  t.equal(due('2026-09-30', 1), '2026-10-08', 'the whole holiday is skipped')
  t.equal(due('2026-09-30', 3), '2026-10-10', 'Saturday 10 Oct is a make-up working day')
  t.equal(due('2026-09-30', 4), '2026-10-12', 'Sunday 11 Oct is not')
  t.equal(due('2026-09-30', 10), '2026-10-20')
  for (let d = 1; d <= 7; d++) t.notOk(isWorkingDay(`2026-10-0${d}`, cal), `2026-10-0${d} is a holiday`)
  t.equal(workingDaysBetween(cn('2026-09-30'), cn('2026-10-09'), cal), 2)
  // 2025: 国庆+中秋 1–8 Oct, make-up Sun 28 Sep and Sat 11 Oct.
  t.equal(due('2025-09-30', 1), '2025-10-09')
  t.equal(due('2025-09-26', 1), '2025-09-28', 'make-up Sunday')
})

t.test('make-up working days on weekends count', async (t) => {
  t.equal(due('2026-02-13', 1), '2026-02-14', 'Saturday 14 Feb 2026 (春节 make-up) is a working day')
  t.equal(due('2026-02-13', 2), '2026-02-24', '春节 15–23 Feb skipped')
  t.equal(due('2026-02-13', 10), '2026-03-05', 'Saturday 28 Feb is a working day too')
  t.equal(due('2026-09-18', 1), '2026-09-20', 'Sunday 20 Sep 2026 is a working day')
  t.equal(due('2026-01-02', 1), '2026-01-04', 'Sunday 4 Jan 2026 (元旦 make-up)')
  t.equal(due('2026-01-02', 1, plain), '2026-01-05', 'without the calendar it would be Monday')
  t.equal(due('2026-05-08', 1), '2026-05-09', 'Saturday 9 May 2026 (劳动节 make-up)')
})

t.test('the deadline is the end of the day in China (+08:00)', async (t) => {
  const d = addWorkingDays(cn('2026-03-02', '09:15'), 10, cal)
  t.equal(d.toISOString(), endOf('2026-03-16').toISOString())
  t.equal(d.toISOString(), '2026-03-16T15:59:59.999Z')
  // 23:30 UTC on Thursday 5 March is 07:30 on Friday 6 March in China.
  const late = new Date('2026-03-05T23:30:00Z')
  t.equal(dateKeyOf(late, cal), '2026-03-06')
  t.equal(addWorkingDays(late, 1, cal).toISOString(), '2026-03-09T15:59:59.999Z', 'Friday + 1 = Monday')
  // 15:59 UTC is still the same day in China; 16:00 UTC is the next.
  t.equal(addWorkingDays(new Date('2026-03-05T15:59:59.999Z'), 1, cal).toISOString(), '2026-03-06T15:59:59.999Z')
  t.equal(addWorkingDays(new Date('2026-03-05T16:00:00.000Z'), 1, cal).toISOString(), '2026-03-09T15:59:59.999Z')
  // A deadline counted from itself moves on whole days.
  t.equal(addWorkingDays(d, 1, cal).toISOString(), '2026-03-17T15:59:59.999Z')
})

t.test(`n = ${DEFAULT_DECISION_WORKING_DAYS} (the default decision period)`, async (t) => {
  const n = DEFAULT_DECISION_WORKING_DAYS
  t.equal(n, 10)
  t.equal(due('2026-11-26', n), '2026-12-10', 'a Thursday: two weekends inside')
  t.equal(due('2026-11-23', n), '2026-12-07', 'a Monday')
  t.equal(due('2026-11-28', n), '2026-12-11', 'a Saturday submission counts from Monday')
  t.equal(due('2026-04-01', n), '2026-04-16', '清明 4–6 Apr skipped')
  t.equal(due('2026-04-28', n), '2026-05-14', '劳动节 1–5 May skipped, Saturday 9 May counted')
  t.equal(due('2026-12-24', n), '2027-01-08', 'across the new year: 1 Jan 2027 skipped')
})

t.test('negative n counts backwards; workingDaysBetween inverts addWorkingDays', async (t) => {
  const dueAt = endOf('2026-10-20')
  t.equal(dateKeyOf(addWorkingDays(dueAt, -2, cal), cal), '2026-10-16', 'two working days before Tuesday 20 Oct')
  t.equal(dateKeyOf(addWorkingDays(endOf('2026-10-12'), -2, cal), cal), '2026-10-09', 'the make-up Saturday counts backwards too')
  t.equal(workingDaysBetween(addWorkingDays(dueAt, -2, cal), dueAt, cal), 2)
  t.equal(workingDaysBetween(dueAt, cn('2026-10-16'), cal), -2)
  t.equal(workingDaysBetween(cn('2026-10-16', '08:00'), cn('2026-10-16', '20:00'), cal), 0, 'same day')
  for (let day = 0; day < 365; day += 3) {
    const start = new Date(Date.UTC(2026, 0, 1) + day * 86_400_000 + ((day * 7919) % 86_400) * 1000)
    for (const n of [0, 1, 2, 5, 10, 15]) {
      const end = addWorkingDays(start, n, cal)
      if (workingDaysBetween(start, end, cal) !== n) t.fail(`between(${start.toISOString()}, +${n}) != ${n}`)
      if (n > 0 && !isWorkingDay(end, cal)) t.fail(`deadline ${end.toISOString()} is not a working day`)
    }
  }
  t.throws(() => addWorkingDays(new Date(NaN), 1, cal), TypeError)
  t.throws(() => addWorkingDays(cn('2026-03-02'), 1.5, cal), TypeError)
})

t.test('an invalid holiday file is refused with a clear error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tongban-cal-'))
  const write = (name: string, content: unknown) => {
    const f = join(dir, name)
    writeFileSync(f, typeof content === 'string' ? content : JSON.stringify(content))
    return f
  }
  const year = (periods: unknown[]) => ({ years: { '2026': { periods } } })

  const bad = write('bad.json', year([{ name: '春节', holidays: ['2026-02-30', '2026/02/16', 20260217], workdays: [] }]))
  t.throws(() => loadCalendar(bad), CalendarFileError)
  try {
    loadCalendar(bad)
  } catch (e) {
    const err = e as CalendarFileError
    t.match(err.message, bad, 'names the file')
    t.match(err.message, /"2026-02-30" in holidays is not a real YYYY-MM-DD date/)
    t.match(err.message, /"2026\/02\/16"/)
    t.equal(err.problems.length, 3, 'every problem is listed')
  }

  const both = write('both.json', year([
    { name: '国庆节', holidays: ['2026-10-01', '2026-10-10'], workdays: [] },
    { name: '调休', holidays: [], workdays: ['2026-10-10'] },
  ]))
  t.throws(() => loadCalendar(both), { name: 'CalendarFileError', message: /2026-10-10 is both a holiday and a make-up working day/ })

  const weekday = write('weekday.json', year([{ name: '劳动节', holidays: ['2026-05-01'], workdays: ['2026-05-06'] }]))
  t.throws(() => loadCalendar(weekday), { message: /make-up working day 2026-05-06 is a weekday/ })

  t.throws(() => loadCalendar(write('notjson.json', '{ "years": ')), { message: /not valid JSON/ })
  t.throws(() => loadCalendar(join(dir, 'missing.json')), { message: /cannot read the file/ })
  t.throws(() => parseCalendar({ years: [] }), { message: /"years" must be an object/ })
  t.throws(() => parseCalendar({ utcOffset: '8', years: {} }), { message: /utcOffset "8"/ })
  t.throws(() => parseCalendar(year([{ name: '元旦', holidays: ['2062-01-01'] }])), { message: /far from the year 2026/ })
  t.throws(() => parseCalendar(year([{ holidays: ['2026-01-01'] }])), { message: /"name" must be a non-empty string/ })

  const ok = parseCalendar(year([{ name: '元旦', holidays: ['2026-01-01'] }]))
  t.ok(ok.holidays.has('2026-01-01'), 'workdays may be omitted')
})
