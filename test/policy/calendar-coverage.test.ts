// The operator is warned when the holiday calendar ends soon: the coverage count on fixed
// dates, then a node whose calendar has no complete year for today (log at start, /readyz
// still ready with a warning, the tongban_calendar_days_covered gauge) next to one whose
// calendar reaches far enough.
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { startNode } from '../helpers/harness.js'
import { loadCalendar, parseCalendar } from '../../src/policy/calendar.js'
import { calendarCoverage } from '../../src/policy/calendar-coverage.js'

const cn = (date: string) => new Date(`${date}T12:00:00+08:00`)
const calendarOf = (years: Record<string, boolean>) =>
  ({ years: Object.fromEntries(Object.entries(years).map(([y, complete]) => [y, { complete, periods: [{ name: '元旦', holidays: [`${y}-01-01`] }] }])) })

t.test('coverage counts the days to the end of the last complete year, today included', async (t) => {
  const cal = parseCalendar(calendarOf({ 2025: true, 2026: true, 2027: false }))
  t.match(calendarCoverage(cn('2026-12-31'), cal, 60), { daysCovered: 1, coveredUntil: '2026-12-31', warning: true })
  t.match(calendarCoverage(cn('2026-11-02'), cal, 60), { daysCovered: 60, coveredUntil: '2026-12-31', warning: false })
  t.match(calendarCoverage(cn('2026-11-03'), cal, 60), { daysCovered: 59, warning: true }, 'one day short of 60: warned')
  t.match(calendarCoverage(cn('2025-03-01'), cal, 60), { daysCovered: 306 + 365, coveredUntil: '2026-12-31' }, 'consecutive complete years add up')
  t.match(calendarCoverage(cn('2027-01-05'), cal, 60), { daysCovered: 0, coveredUntil: null, warning: true }, 'a provisional year covers nothing')
  t.match(calendarCoverage(cn('2026-12-31'), cal, 0), { warning: false }, 'a threshold of 0 never warns')
  // A day is a day in China: 16:30 UTC on 31 December is already 1 January in Beijing.
  t.equal(calendarCoverage(new Date('2026-12-31T16:30:00Z'), cal, 60).daysCovered, 0)
})

t.test('the shipped calendar: 2026 complete, 2027 provisional', async (t) => {
  const cal = loadCalendar('config/holidays.json')
  t.match(calendarCoverage(cn('2026-12-02'), cal, 60), { daysCovered: 30, coveredUntil: '2026-12-31', warning: true }, 'warned until the 2027 notice is added')
})

const dir = mkdtempSync(join(tmpdir(), 'tongban-calendar-'))
const fileWith = (name: string, years: Record<string, boolean>) => {
  const file = join(dir, name)
  writeFileSync(file, JSON.stringify(calendarOf(years)))
  return file
}
const thisYear = Number(new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 4))

let logged = ''
const stream = new Writable({
  write(chunk, _enc, done) {
    logged += chunk.toString()
    done()
  },
})
const short = await startNode({ tag: 'calshort', env: { TONGBAN_HOLIDAYS_FILE: fileWith('short.json', { [thisYear - 1]: true, [thisYear]: false }) }, logger: { level: 'warn', stream } })
const long = await startNode({ tag: 'callong', env: { TONGBAN_HOLIDAYS_FILE: fileWith('long.json', { [thisYear]: true, [thisYear + 1]: true }), TONGBAN_CALENDAR_WARN_DAYS: '90' } })
t.teardown(() => Promise.all([short.close(), long.close()]))

t.test('a calendar without a complete year for today: warned at start, still ready, gauge 0', async (t) => {
  const lines = logged.split('\n').filter(Boolean).map((l) => JSON.parse(l))
  const warning = lines.find((l) => l.calendar)
  t.ok(warning, 'a warning was logged at start')
  t.equal(warning.level, 40)
  t.match(warning, { calendar: { daysCovered: 0, coveredUntil: null, warnDays: 60 } })
  t.match(warning.msg, /国务院办公厅/)

  const ready = await short.app.inject({ method: 'GET', url: '/readyz' })
  t.equal(ready.statusCode, 200, 'still ready')
  t.match(ready.json(), { status: 'ready', calendar: { status: 'warning', daysCovered: 0, coveredUntil: null, warnDays: 60 } })

  const metrics = (await short.app.inject({ method: 'GET', url: '/metrics' })).body
  t.match(metrics, /^tongban_calendar_days_covered\{[^}]*\} 0$/m)
})


t.test('a calendar complete through next year: no warning; the gauge counts the days', async (t) => {
  const ready = (await long.app.inject({ method: 'GET', url: '/readyz' })).json()
  t.equal(ready.calendar.status, 'ok')
  t.equal(ready.calendar.warnDays, 90, 'TONGBAN_CALENDAR_WARN_DAYS sets the threshold')
  t.equal(ready.calendar.coveredUntil, `${thisYear + 1}-12-31`)
  t.ok(ready.calendar.daysCovered >= 366)
  const metrics = (await long.app.inject({ method: 'GET', url: '/metrics' })).body
  const m = /^tongban_calendar_days_covered\{[^}]*\} (\d+)$/m.exec(metrics)
  t.ok(m, 'the gauge is exported')
  t.equal(Number(m![1]), ready.calendar.daysCovered)
})
