// The simulated licence library (电子证照库): the electronic licences of the synthetic
// population and enterprises, derived, not stored, so every process issues the same licences
// (the seal's signature differs per process: SM2 signatures are randomised; each verifies).
//
// The model, as of REFERENCE_DATE (2026-01-01):
// - 营业执照 (YYZZ) for every enterprise; number = its credit code; issued on its founding
//   day, or for a company founded before the credit code reform (2015-10-01) re-issued then
//   (a day in 2015-10 … 2017-12, the 换照 period); 长期; a deregistered (注销) company's
//   licence is revoked on that day.
// - 居民身份证电子证照 (JMSFZ) for every person 16 or older: the second-generation card
//   (2004–2013, or at 16 when that came later), renewed when it expires (validity by age at
//   issue: 16–25 ten years, 26–45 twenty, 46+ 长期); each renewal supersedes the previous
//   licence. About 3% let their last card lapse: its licence is current but expired.
// - 不动产权证书 (BDCQZ) for every registered unit of dev/providers/property (its
//   certificate number, issued on the registration day, 长期).
// Tests add licences they made (and sealed) themselves, revoke and supersede licences and
// revoke seal certificates: the library's state beyond the model lives in this object.
import { modInverse, person, personRng, findPersonById, POPULATION_SIZE, type Person } from '../population.js'
import { findEnterpriseByCreditCode, enterprise, type Enterprise } from '../enterprises.js'
import { holdingsOf, registryName } from '../property/registry.js'
import { REFERENCE_DATE, birthdayMs, ageOn, isoDate, DAY_MS } from '../reference.js'
import { regionName } from '../../../src/gb/region.js'
import { parseSm2Certificate } from '../../../src/pki/sm2-x509.js'
import {
  LICENCE_FORMAT,
  LICENCE_TYPES,
  derToPem,
  sealLicence,
  type LicenceDocument,
  type UnsealedLicence,
} from '../../../src/licences/document.js'
import type { LoadedSeal } from '../../seal-pki.js'

export type LicenceStatus = 'current' | 'revoked' | 'superseded'

export interface LicenceRecord {
  doc: UnsealedLicence
  status: LicenceStatus
  statusChangedOn: string | null
  supersededBy: string | null
}

const REFERENCE_MS = Date.parse(REFERENCE_DATE)
const REFORM_MS = Date.UTC(2015, 9, 1)
const SECOND_GEN_FROM = Date.UTC(2004, 0, 1)
const SECOND_GEN_DAYS = (Date.UTC(2013, 11, 31) - SECOND_GEN_FROM) / DAY_MS

// ---- 居民身份证电子证照: numbers 32DZ<year><7-digit permuted index><version>, invertible.
const ID_SPACE = 10_000_000
const ID_STEP = 7_654_321 // coprime with 10^7
const ID_OFFSET = 1_234_567
const ID_STEP_INV = modInverse(ID_STEP, ID_SPACE)
const permute = (i: number) => String((i * ID_STEP + ID_OFFSET) % ID_SPACE).padStart(7, '0')
const unpermute = (s: string) => (((+s - ID_OFFSET) % ID_SPACE + ID_SPACE) % ID_SPACE * ID_STEP_INV) % ID_SPACE

const addYears = (ms: number, years: number) => {
  const d = new Date(ms)
  return Date.UTC(d.getUTCFullYear() + years, d.getUTCMonth(), d.getUTCDate())
}
// Validity of a card by the holder's age on the day it is issued (居民身份证法 第五条).
const validityYears = (age: number): number | null => (age < 26 ? 10 : age < 46 ? 20 : null)

interface CardVersion {
  number: string
  issuedMs: number
  untilMs: number | null
}

/** The holder's second-generation cards, oldest first; [] under 16. */
export function idCards(p: Person): CardVersion[] {
  const sixteen = birthdayMs(p, 16)
  if (sixteen > REFERENCE_MS) return []
  const rnd = personRng(p.index, 'licence-id')
  let issued = Math.max(sixteen + Math.floor(rnd() * 90) * DAY_MS, SECOND_GEN_FROM + Math.floor(rnd() * SECOND_GEN_DAYS) * DAY_MS)
  if (issued > REFERENCE_MS - DAY_MS) issued = REFERENCE_MS - DAY_MS
  const lapses = rnd() < 0.03
  const out: CardVersion[] = []
  for (let v = 1; v <= 9; v++) {
    const years = validityYears(ageOn(p, issued))
    const until = years === null ? null : addYears(issued, years) - DAY_MS
    out.push({ number: `32DZ${new Date(issued).getUTCFullYear()}${permute(p.index)}${v}`, issuedMs: issued, untilMs: until })
    if (until === null || until + DAY_MS > REFERENCE_MS) break
    if (lapses && until > REFERENCE_MS - 5 * 365 * DAY_MS) break // the holder let the last card lapse
    const next = until + DAY_MS - Math.floor(rnd() * 60) * DAY_MS // renewed up to two months early
    if (next > REFERENCE_MS - DAY_MS) break
    issued = next
  }
  return out
}

const sealByType = (seals: LoadedSeal[]) => {
  const map = new Map<string, LoadedSeal>()
  for (const s of seals) for (const t of s.authority.types) map.set(t, s)
  return map
}

const issuerOf = (s: LoadedSeal) => ({ name: s.authority.name, creditCode: s.authority.creditCode, region: s.authority.region })

export class LicenceLibrary {
  private readonly seals: Map<string, LoadedSeal>
  private readonly sealed = new Map<string, LicenceDocument>()
  /** Licences added (tests), by number. */
  private readonly added = new Map<string, { doc: LicenceDocument; record: LicenceRecord }>()
  /** Status changes of modelled licences, by number. */
  private readonly changes = new Map<string, Pick<LicenceRecord, 'status' | 'statusChangedOn' | 'supersededBy'>>()
  /** Seal certificates this library knows (serial → revokedOn or null). */
  private readonly sealCerts = new Map<string, string | null>()

  constructor(seals: LoadedSeal[]) {
    this.seals = sealByType(seals)
    for (const s of seals) this.sealCerts.set(parseSm2Certificate(s.certPem).serialHex, null)
  }

  // ---- the model ----

  private businessLicence(e: Enterprise): LicenceRecord {
    const seal = this.seals.get('YYZZ')!
    const founded = Date.parse(e.establishedOn)
    const rnd = personRng(e.index, 'licence-yyzz')
    const issued = founded >= REFORM_MS ? founded : REFORM_MS + Math.floor(rnd() * 822) * DAY_MS
    const issuedOn = isoDate(issued)
    const rep = person(e.legalRepresentative)
    return {
      doc: {
        format: LICENCE_FORMAT,
        typeCode: 'YYZZ',
        typeName: LICENCE_TYPES.YYZZ,
        number: e.creditCode,
        holder: { name: e.name, idType: 'GB32100', id: e.creditCode },
        issuer: issuerOf(seal),
        issuedOn,
        validFrom: e.establishedOn,
        validUntil: null,
        surface: {
          名称: e.name,
          类型: '有限责任公司',
          法定代表人: rep.name,
          成立日期: e.establishedOn,
          营业期限: '长期',
          住所: regionName(e.region) ?? e.region,
          经营范围: e.industry,
          登记机关: `${regionName(e.creditCode.slice(2, 8)) ?? ''}市场监督管理局`,
        },
      },
      status: e.dissolvedOn ? 'revoked' : 'current',
      statusChangedOn: e.dissolvedOn ?? null,
      supersededBy: null,
    }
  }

  private idLicences(p: Person): LicenceRecord[] {
    const seal = this.seals.get('JMSFZ')!
    const cards = idCards(p)
    return cards.map((c, k) => {
      const next = cards[k + 1]
      return {
        doc: {
          format: LICENCE_FORMAT,
          typeCode: 'JMSFZ',
          typeName: LICENCE_TYPES.JMSFZ,
          number: c.number,
          holder: { name: p.name, idType: 'GB11643', id: p.idNumber },
          issuer: issuerOf(seal),
          issuedOn: isoDate(c.issuedMs),
          validFrom: isoDate(c.issuedMs),
          validUntil: c.untilMs === null ? null : isoDate(c.untilMs),
          surface: {
            姓名: p.name,
            性别: p.sex === 'M' ? '男' : '女',
            出生: p.birthDate,
            公民身份号码: p.idNumber,
            签发机关: `${regionName(p.region) ?? p.region}公安局`,
            有效期限: c.untilMs === null ? `${isoDate(c.issuedMs)}-长期` : `${isoDate(c.issuedMs)}-${isoDate(c.untilMs)}`,
          },
        },
        status: next ? 'superseded' : 'current',
        statusChangedOn: next ? isoDate(next.issuedMs) : null,
        supersededBy: next ? next.number : null,
      }
    })
  }

  private propertyLicences(p: Person): LicenceRecord[] {
    const seal = this.seals.get('BDCQZ')!
    return holdingsOf(p.index).map((h) => ({
      doc: {
        format: LICENCE_FORMAT,
        typeCode: 'BDCQZ',
        typeName: LICENCE_TYPES.BDCQZ,
        number: h.certificateNo,
        holder: { name: p.name, idType: 'GB11643', id: p.idNumber },
        issuer: issuerOf(seal),
        issuedOn: h.registeredOn,
        validFrom: h.registeredOn,
        validUntil: null,
        surface: {
          权利人: p.name,
          共有情况: '单独所有',
          坐落: regionName(h.region) ?? h.region,
          权利类型: '国有建设用地使用权/房屋所有权',
          用途: h.usage,
          面积: h.area,
          登记机构: `${registryName(h.region)}不动产登记机构`,
        },
      },
      status: 'current',
      statusChangedOn: null,
      supersededBy: null,
    }))
  }

  /** The modelled licence with this number, found by arithmetic, not search. */
  private modelled(number: string): LicenceRecord | undefined {
    const id = /^32DZ(\d{4})(\d{7})(\d)$/.exec(number)
    if (id) {
      const index = unpermute(id[2])
      if (index >= POPULATION_SIZE) return undefined
      return this.idLicences(person(index)).find((r) => r.doc.number === number)
    }
    const property = /^苏\(\d{4}\).+不动产权第(\d{7})号$/.exec(number)
    if (property) {
      // Invert registry.ts's serial: ((index·4 + unit)·STEP + 271 828) mod SPACE + 1.
      const x = Number(((BigInt(+property[1] - 1 - 271_828) % 9_999_999n + 9_999_999n) % 9_999_999n * BigInt(modInverse(7_368_787, 9_999_999))) % 9_999_999n)
      const index = Math.floor(x / 4)
      if (index >= POPULATION_SIZE) return undefined
      return this.propertyLicences(person(index)).find((r) => r.doc.number === number)
    }
    const e = findEnterpriseByCreditCode(number)
    return e ? this.businessLicence(e) : undefined
  }

  // ---- queries ----

  record(number: string): LicenceRecord | undefined {
    const added = this.added.get(number)
    if (added) return added.record
    const r = this.modelled(number)
    if (!r) return undefined
    const change = this.changes.get(number)
    return change ? { ...r, ...change } : r
  }

  /** The sealed document of a licence (sealed once per process). */
  document(number: string): LicenceDocument | undefined {
    const added = this.added.get(number)
    if (added) return added.doc
    let doc = this.sealed.get(number)
    if (!doc) {
      const r = this.record(number)
      if (!r) return undefined
      const s = this.seals.get(r.doc.typeCode)!
      doc = sealLicence(r.doc, { sealId: s.authority.sealId, privateKeyHex: s.privateKeyHex, certPem: s.certPem })
      if (this.sealed.size >= 10_000) this.sealed.clear()
      this.sealed.set(number, doc)
    }
    return doc
  }

  /** Every licence of a holder (id number or credit code), modelled and added. */
  holderLicences(holderId: string): LicenceRecord[] {
    const out: LicenceRecord[] = []
    const p = findPersonById(holderId)
    if (p) out.push(...this.idLicences(p), ...this.propertyLicences(p))
    const e = findEnterpriseByCreditCode(holderId)
    if (e) out.push(this.businessLicence(e))
    const modelled = out.map((r) => this.record(r.doc.number)!).filter((r) => !this.added.has(r.doc.number))
    const added = [...this.added.values()].filter((a) => a.doc.holder.id === holderId).map((a) => a.record)
    return [...modelled, ...added]
  }

  /** Revocation status of a seal certificate by serial (hex, no leading zeros). */
  sealCertificateStatus(serial: string): { serial: string; status: 'good' | 'revoked' | 'unknown'; revokedOn: string | null } {
    if (!this.sealCerts.has(serial)) return { serial, status: 'unknown', revokedOn: null }
    const revokedOn = this.sealCerts.get(serial)!
    return { serial, status: revokedOn ? 'revoked' : 'good', revokedOn }
  }

  // ---- changes (tests, demos) ----

  /** Adds a licence sealed elsewhere (its seal certificate becomes known to the library). */
  add(doc: LicenceDocument, status: Partial<Pick<LicenceRecord, 'status' | 'statusChangedOn' | 'supersededBy'>> = {}): void {
    const { seal: _seal, ...content } = doc
    const serial = parseSm2Certificate(derToPem(Buffer.from(doc.seal.certificate, 'base64'))).serialHex
    if (!this.sealCerts.has(serial)) this.sealCerts.set(serial, null)
    this.added.set(doc.number, {
      doc,
      record: { doc: content, status: status.status ?? 'current', statusChangedOn: status.statusChangedOn ?? null, supersededBy: status.supersededBy ?? null },
    })
  }

  revoke(number: string, on: string): boolean {
    return this.change(number, { status: 'revoked', statusChangedOn: on, supersededBy: null })
  }

  supersede(number: string, by: string, on: string): boolean {
    return this.change(number, { status: 'superseded', statusChangedOn: on, supersededBy: by })
  }

  revokeSealCertificate(serial: string, on: string): void {
    this.sealCerts.set(serial, on)
  }

  private change(number: string, c: Pick<LicenceRecord, 'status' | 'statusChangedOn' | 'supersededBy'>): boolean {
    const added = this.added.get(number)
    if (added) {
      Object.assign(added.record, c)
      return true
    }
    if (!this.modelled(number)) return false
    this.changes.set(number, c)
    return true
  }
}

/** A few holders with licences of each type, for docs, demos and tests. */
export function sampleHolders(): { person: Person; enterprise: Enterprise } {
  let e = enterprise(0)
  for (let i = 0; e.dissolvedOn; i++) e = enterprise(i)
  return { person: person(0), enterprise: e }
}
