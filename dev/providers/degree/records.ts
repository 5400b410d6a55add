// The simulated register of higher-education certificates (学历证书电子注册, as 学信网
// keeps it) for the synthetic population. Nothing is stored: a person's certificates are
// drawn from personRng(index, 'degree'), and a certificate number is decoded back to its
// holder by arithmetic.
//
// The model, as of REFERENCE_DATE (2026-01-01):
// - the share of people with any higher education rises by birth cohort, from about 2% of
//   those born in the 1940s to about 55% of those born after 1990 (the gross enrolment rate);
// - a graduate starts with 专科 (about 42%) or 本科; some 专科 graduates go on to 本科
//   (专升本, two years); some 本科 graduates take a 硕士 (two or three years), some of those a
//   博士 (three to five years);
// - graduation is on 30 June, at about 21 (专科) or 22 (本科); only graduations before
//   REFERENCE_DATE count, so every certificate holder is an adult;
// - most study in Jiangsu (南京大学, 东南大学, 苏州大学 …), some elsewhere.
//
// Certificate numbers follow the 18-digit 学历证书编号 in use since electronic registration
// (2001): 学校代码 (5, 教育部 institution code) + 办学类型 (1; 1 = 普通高等教育) + 毕业年份 (4)
// + 层次 (2: 01 博士研究生, 02 硕士研究生, 05 本科, 06 专科) + 顺序号 (6). Simplifications,
// documented: every graduate has a number of this form even before 2001 (real older
// certificates are checked by 学历认证, not online); institutions carry their current names;
// the codes of the research universities are the 教育部 codes, those of the vocational
// colleges are illustrative; the serial is a permutation of the holder's index, not a count.
import { modInverse, person, personRng, POPULATION_SIZE, type Person } from '../population.js'
import { REFERENCE_MS } from '../reference.js'

export type Level = '专科' | '本科' | '硕士研究生' | '博士研究生'

export const LEVEL_CODES: Record<Level, string> = { 博士研究生: '01', 硕士研究生: '02', 本科: '05', 专科: '06' }
const LEVEL_BY_CODE: Record<string, Level> = { '01': '博士研究生', '02': '硕士研究生', '05': '本科', '06': '专科' }

export interface Institution {
  code: string
  name: string
}

export interface Certificate {
  /** 学历证书编号, 18 digits. */
  certificateNo: string
  level: Level
  institution: string
  institutionCode: string
  graduationYear: number
}

// Jiangsu universities that grant 本科 (and, the first group, 硕士 and 博士).
const RESEARCH: Institution[] = [
  { code: '10284', name: '南京大学' },
  { code: '10286', name: '东南大学' },
  { code: '10285', name: '苏州大学' },
  { code: '10287', name: '南京航空航天大学' },
  { code: '10288', name: '南京理工大学' },
  { code: '10290', name: '中国矿业大学' },
  { code: '10294', name: '河海大学' },
  { code: '10295', name: '江南大学' },
  { code: '10307', name: '南京农业大学' },
  { code: '10316', name: '中国药科大学' },
  { code: '10319', name: '南京师范大学' },
  { code: '10299', name: '江苏大学' },
  { code: '11117', name: '扬州大学' },
  { code: '10312', name: '南京医科大学' },
  { code: '10293', name: '南京邮电大学' },
  { code: '10291', name: '南京工业大学' },
]
const UNDERGRADUATE: Institution[] = [
  ...RESEARCH,
  { code: '10300', name: '南京信息工程大学' },
  { code: '10304', name: '南通大学' },
  { code: '10292', name: '常州大学' },
  { code: '10298', name: '南京林业大学' },
  { code: '10320', name: '江苏师范大学' },
  { code: '10327', name: '南京财经大学' },
  { code: '11287', name: '南京审计大学' },
  { code: '10315', name: '南京中医药大学' },
  { code: '10289', name: '江苏科技大学' },
  { code: '10332', name: '苏州科技大学' },
  { code: '11276', name: '南京工程学院' },
  { code: '10323', name: '淮阴师范学院' },
  { code: '10324', name: '盐城师范学院' },
  { code: '11460', name: '南京晓庄学院' },
  { code: '11463', name: '江苏理工学院' },
]
// Studied outside Jiangsu.
const ELSEWHERE: Institution[] = [
  { code: '10001', name: '北京大学' },
  { code: '10003', name: '清华大学' },
  { code: '10246', name: '复旦大学' },
  { code: '10248', name: '上海交通大学' },
  { code: '10335', name: '浙江大学' },
  { code: '10358', name: '中国科学技术大学' },
  { code: '10486', name: '武汉大学' },
  { code: '10558', name: '中山大学' },
]
// 高职 (专科); codes illustrative.
const VOCATIONAL: Institution[] = [
  { code: '10850', name: '南京工业职业技术大学' },
  { code: '11049', name: '无锡职业技术学院' },
  { code: '12317', name: '常州信息职业技术学院' },
  { code: '12687', name: '苏州工业职业技术学院' },
  { code: '12920', name: '南京信息职业技术学院' },
  { code: '12806', name: '江苏经贸职业技术学院' },
  { code: '11462', name: '扬州市职业大学' },
  { code: '12685', name: '南通职业大学' },
  { code: '12682', name: '江苏农林职业技术学院' },
  { code: '14056', name: '徐州工业职业技术学院' },
]
const ALL: Institution[] = [...UNDERGRADUATE, ...ELSEWHERE, ...VOCATIONAL]
const BY_CODE = new Map(ALL.map((i) => [i.code, i]))

/** The institutions the simulated register knows, by code. */
export const institutions = (): Institution[] => [...ALL]

const SCHOOL_TYPE = '1' // 普通高等教育

// The serial: a permutation of the holder's index over 0 … 999 999 (six digits). A holder's
// certificates differ in level or year, so no two certificates share a number.
const SERIAL_SPACE = 1_000_000
const SERIAL_STEP = 738_301 // coprime with 10^6
const SERIAL_OFFSET = 90_217
const SERIAL_INV = modInverse(SERIAL_STEP, SERIAL_SPACE)
const serialOf = (index: number): string => String((index * SERIAL_STEP + SERIAL_OFFSET) % SERIAL_SPACE).padStart(6, '0')
const indexOfSerial = (serial: number): number =>
  Number(((BigInt(serial - SERIAL_OFFSET + SERIAL_SPACE) % BigInt(SERIAL_SPACE)) * BigInt(SERIAL_INV)) % BigInt(SERIAL_SPACE))

export const certificateNumber = (institution: Institution, graduationYear: number, level: Level, index: number): string =>
  `${institution.code}${SCHOOL_TYPE}${graduationYear}${LEVEL_CODES[level]}${serialOf(index)}`

// Share with any higher education, by year of birth.
const tertiaryRate = (born: number): number =>
  born < 1950 ? 0.02 : born < 1960 ? 0.05 : born < 1970 ? 0.1 : born < 1980 ? 0.2 : born < 1990 ? 0.4 : 0.55
const masterRate = (born: number): number => (born < 1970 ? 0.06 : born < 1985 ? 0.15 : 0.22)

const pick = <T>(rnd: () => number, list: T[]): T => list[Math.floor(rnd() * list.length)]

// Graduation on 30 June of the year; only those before REFERENCE_DATE are registered.
const graduated = (year: number): boolean => Date.UTC(year, 5, 30) < REFERENCE_MS

/** Every certificate of person `index`, oldest first; [] for most people, and for everyone under 20. */
export const certificatesOf = (index: number): Certificate[] => {
  const p = person(index)
  const born = +p.birthDate.slice(0, 4)
  const rnd = personRng(index, 'degree')
  if (rnd() >= tertiaryRate(born)) return []

  const steps: Array<{ level: Level; institution: Institution; year: number }> = []
  const jiangsuOrElsewhere = (list: Institution[]) => (rnd() < 0.12 ? pick(rnd, ELSEWHERE) : pick(rnd, list))
  let year: number
  if (rnd() < 0.42) {
    year = born + 20 + Math.floor(rnd() * 3) // 20–22
    steps.push({ level: '专科', institution: pick(rnd, VOCATIONAL), year })
    if (rnd() < 0.12) {
      year += 2
      steps.push({ level: '本科', institution: pick(rnd, UNDERGRADUATE), year })
    }
  } else {
    year = born + 21 + Math.floor(rnd() * 3) // 21–23
    steps.push({ level: '本科', institution: jiangsuOrElsewhere(UNDERGRADUATE), year })
    if (rnd() < masterRate(born)) {
      year += rnd() < 0.3 ? 2 : 3
      steps.push({ level: '硕士研究生', institution: jiangsuOrElsewhere(RESEARCH), year })
      if (rnd() < 0.12) {
        year += 3 + Math.floor(rnd() * 3) // 3–5
        steps.push({ level: '博士研究生', institution: jiangsuOrElsewhere(RESEARCH), year })
      }
    }
  }
  return steps
    .filter((s) => graduated(s.year))
    .map((s) => ({
      certificateNo: certificateNumber(s.institution, s.year, s.level, index),
      level: s.level,
      institution: s.institution.name,
      institutionCode: s.institution.code,
      graduationYear: s.year,
    }))
}

/** The highest level this person graduated at, if any. */
export const highestLevel = (index: number): Level | undefined => certificatesOf(index).at(-1)?.level

/** The year of this person's last graduation, if any (a career starts after it). */
export const lastGraduationYear = (index: number): number | undefined => certificatesOf(index).at(-1)?.graduationYear

const CERTIFICATE_NO = /^([0-9]{5})([0-9])([0-9]{4})(0[1256])([0-9]{6})$/

/** The certificate with this number and its holder, if the register has it. O(1). */
export const findCertificate = (certificateNo: string): { holder: Person; certificate: Certificate } | undefined => {
  if (typeof certificateNo !== 'string') return undefined
  const m = CERTIFICATE_NO.exec(certificateNo)
  if (!m || m[2] !== SCHOOL_TYPE || !BY_CODE.has(m[1]) || !LEVEL_BY_CODE[m[4]]) return undefined
  const index = indexOfSerial(Number(m[5]))
  if (index >= POPULATION_SIZE) return undefined
  const certificate = certificatesOf(index).find((c) => c.certificateNo === certificateNo)
  return certificate ? { holder: person(index), certificate } : undefined
}

/** The first `n` indices (from `from` on) holding a certificate: handy for tests and docs. */
export const graduates = (n: number, from = 0, level?: Level): number[] => {
  const found: number[] = []
  for (let i = from; i < POPULATION_SIZE && found.length < n; i++) {
    const certs = certificatesOf(i)
    if (certs.length && (!level || certs.some((c) => c.level === level))) found.push(i)
  }
  return found
}
