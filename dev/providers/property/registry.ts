// The simulated real-estate register (不动产登记簿) of the 自然资源 departments: which of the
// synthetic population's people hold which registered units. Nothing is stored: a person's
// holdings are drawn from personRng(index, 'property'), so they are the same in every
// process and run, and independent of what the other providers derive.
//
// The model, as of REFERENCE_DATE (2026-01-01):
// - minors own nothing; about 60% of adults hold 1–3 homes (住宅), the young less often;
// - homes lie in the person's county or, now and then, another county of the same city;
// - about one owner in ten also holds a commercial unit (商业), listed in the detail only:
//   the verification counts homes (住房套数), as the catalogue's items say;
// - areas are 45–180 m² with two decimals, registered after the 18th birthday and not
//   before 2016 (the unified 不动产权证书 replaced the old 房屋所有权证 then), so every
//   certificate number has the unified form 苏(YYYY)<登记机构>不动产权第NNNNNNN号;
// - a few units are mortgaged (抵押), very few seized (查封).
import { person, personRng, POPULATION_SIZE, type Person } from '../population.js'
import { isCurrentRegion, parentRegion, regionName, tierOfRegion } from '../../../src/gb/region.js'

export type Usage = '住宅' | '商业'

export interface Holding {
  /** 不动产权证书号, e.g. 苏(2021)南京市不动产权第0012345号. */
  certificateNo: string
  /** County (GB/T 2260) where the unit lies. */
  region: string
  usage: Usage
  /** 建筑面积, m², two decimals. */
  area: number
  /** 登记日期, YYYY-MM-DD. */
  registeredOn: string
  /** 权利限制: 抵押 (mortgage) and 查封 (seizure). */
  encumbered: { mortgage: boolean; seizure: boolean }
}

export const REFERENCE_DATE = '2026-01-01'

const DAY_MS = 86_400_000
const REFERENCE_MS = Date.parse(REFERENCE_DATE)
const UNIFIED_FROM_MS = Date.parse('2016-01-01')
const LAST_MS = REFERENCE_MS - DAY_MS // registered by 2025-12-31

// Registered to the retired 溧水县 code, living in what is now 溧水区.
const CURRENT_CODE: Record<string, string> = { '320124': '320117' }

const countiesByCity = new Map<string, string[]>()
for (let code = 320100; code < 321400; code++) {
  const c = String(code)
  if (!isCurrentRegion(c) || tierOfRegion(c) !== 'county') continue
  const city = parentRegion(c)!
  const list = countiesByCity.get(city) ?? []
  list.push(c)
  countiesByCity.set(city, list)
}

/**
 * The registration authority's name in a certificate number: a county or county-level
 * city registers its own units (江阴市, 沭阳县), a city registers its districts' (南京市).
 */
export const registryName = (county: string): string => {
  const own = regionName(county)
  if (own && /[市县]$/.test(own)) return own
  return regionName(parentRegion(county)!)!
}

/** True when the person is 18 or older on REFERENCE_DATE. */
export const isAdult = (p: Person): boolean => eighteenthBirthdayMs(p) <= REFERENCE_MS

// Date.UTC rolls 29 February over to 1 March in a common year, as the law counts it.
const eighteenthBirthdayMs = (p: Person): number =>
  Date.UTC(+p.birthDate.slice(0, 4) + 18, +p.birthDate.slice(5, 7) - 1, +p.birthDate.slice(8, 10))

const ageOn = (p: Person, ms: number): number => {
  const d = new Date(ms)
  const [y, m, day] = [+p.birthDate.slice(0, 4), +p.birthDate.slice(5, 7), +p.birthDate.slice(8, 10)]
  const before = d.getUTCMonth() + 1 < m || (d.getUTCMonth() + 1 === m && d.getUTCDate() < day)
  return d.getUTCFullYear() - y - (before ? 1 : 0)
}

// Home ownership by age; weighted by the population's ages this comes to about 60%.
const ownershipRate = (age: number): number => (age < 25 ? 0.2 : age < 35 ? 0.55 : 0.66)

// Certificate serials: an injective map of (person, unit) into 1 … 9 999 999, so no two
// units of the population share a number, yet neighbours look unrelated.
const SERIAL_SPACE = 9_999_999 // 3² · 239 · 4649
const SERIAL_STEP = 7_368_787 // coprime with SERIAL_SPACE
const MAX_UNITS = 4
const serial = (index: number, unit: number): string =>
  String(((index * MAX_UNITS + unit) * SERIAL_STEP + 271_828) % SERIAL_SPACE + 1).padStart(7, '0')

const isoDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10)

/** Every registered unit of person `index`, oldest registration first; [] for minors and for adults who own nothing. */
export const holdingsOf = (index: number): Holding[] => {
  const p = person(index)
  if (!isAdult(p)) return []
  const rnd = personRng(index, 'property')
  if (rnd() >= ownershipRate(ageOn(p, REFERENCE_MS))) return []

  const r = rnd()
  const homes = r < 0.62 ? 1 : r < 0.9 ? 2 : 3
  const commercial = rnd() < 0.1 ? 1 : 0
  const own = CURRENT_CODE[p.region] ?? p.region
  const neighbours = countiesByCity.get(parentRegion(own)!) ?? [own]
  const first = Math.max(eighteenthBirthdayMs(p) + DAY_MS, UNIFIED_FROM_MS)
  const days = Math.floor((LAST_MS - first) / DAY_MS) + 1

  const units: Holding[] = []
  for (let k = 0; k < homes + commercial; k++) {
    const region = rnd() < 0.75 ? own : neighbours[Math.floor(rnd() * neighbours.length)]
    const usage: Usage = k < homes ? '住宅' : '商业'
    // The mean of two uniforms: most homes 80–140 m², few at the ends of 45–180.
    const cents = 4500 + Math.floor(((rnd() + rnd()) / 2) * 13_501)
    const registeredMs = first + Math.floor(rnd() * days) * DAY_MS
    const recent = registeredMs >= Date.UTC(2021, 0, 1)
    const mortgage = rnd() < (recent ? 0.3 : 0.1)
    const seizure = rnd() < 0.01
    const registeredOn = isoDate(registeredMs)
    units.push({
      certificateNo: `苏(${registeredOn.slice(0, 4)})${registryName(region)}不动产权第${serial(index, k)}号`,
      region,
      usage,
      area: cents / 100,
      registeredOn,
      encumbered: { mortgage, seizure },
    })
  }
  return units.sort((a, b) => a.registeredOn.localeCompare(b.registeredOn) || a.certificateNo.localeCompare(b.certificateNo))
}

export interface PropertySummary {
  hasProperty: boolean
  propertyCount: number
  totalArea: number
}

/** What the verification reports: homes only, total area summed exactly in cents. */
export const summarise = (holdings: Holding[]): PropertySummary => {
  const homes = holdings.filter((h) => h.usage === '住宅')
  const cents = homes.reduce((sum, h) => sum + Math.round(h.area * 100), 0)
  return { hasProperty: homes.length > 0, propertyCount: homes.length, totalArea: cents / 100 }
}

/** The first `n` indices (from `from` on) whose holder owns a home: handy for tests and docs. */
export const homeOwners = (n: number, from = 0): number[] => {
  const found: number[] = []
  for (let i = from; i < POPULATION_SIZE && found.length < n; i++) {
    if (holdingsOf(i).some((h) => h.usage === '住宅')) found.push(i)
  }
  return found
}
