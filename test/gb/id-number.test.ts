import t from 'tap'
import { readFileSync } from 'node:fs'
import { checkIdNumber, idCheckCharacter } from '../../src/gb/id-number.js'

interface Vectors {
  residentId: { valid: string[]; invalid: { id: string; why: string }[] }
}
const vectors: Vectors = JSON.parse(readFileSync(new URL('../vectors/ids.json', import.meta.url), 'utf8'))

// Vectors that disagree with the standard, and why we side with the standard.
const ERRATA: Record<string, string> = {
  // Check character right, but 1966 is not a leap year: there is no 29 February 1966.
  '320583196602295054': 'birth day out of range',
}

const TODAY = new Date('2026-06-15T04:00:00Z')
/** A complete id number: region + YYYYMMDD + sequence, with its check character. */
const make = (region: string, yyyymmdd: string, seq = '012'): string => {
  const first17 = region + yyyymmdd + seq
  return first17 + idCheckCharacter(first17)
}
const refused = (id: unknown, today = TODAY) => {
  const r = checkIdNumber(id as string, today)
  if (r.ok) throw new Error('expected a refusal')
  return r
}

t.test('reference vectors: valid', async (t) => {
  for (const id of vectors.residentId.valid) {
    const r = checkIdNumber(id, TODAY)
    if (ERRATA[id]) {
      t.match(r, { ok: false, code: 'INPUT_INVALID_ID_NUMBER', reason: ERRATA[id] }, `${id} (erratum)`)
    } else {
      t.equal(r.ok, true, id)
    }
  }
  t.same(checkIdNumber('11010519491231002X', TODAY), {
    ok: true, region: '110105', regionStatus: 'current', birthDate: '1949-12-31', sex: 'F',
  })
  t.same(checkIdNumber('440524188001010014', TODAY), {
    ok: true, region: '440524', regionStatus: 'retired-or-unknown', birthDate: '1880-01-01', sex: 'M',
  })
})

t.test('reference vectors: invalid', async (t) => {
  for (const { id, why } of vectors.residentId.invalid) {
    const r = refused(id)
    const expected = why.startsWith('no such province') ? 'INPUT_UNKNOWN_REGION' : 'INPUT_INVALID_ID_NUMBER'
    t.equal(r.code, expected, `${id}: ${why}`)
    t.notMatch(r.reason, /[0-9]{6}/, 'the reason does not echo the number')
  }
  t.equal(refused('110105194912310020').reason, 'wrong check character')
  t.equal(refused('320115199013320122').reason, 'birth month out of range')
  t.equal(refused('320115199002300126').reason, 'birth day out of range')
})

t.test('a retired or unknown county never refuses the person', async (t) => {
  t.match(checkIdNumber('320124197510200014', TODAY), { ok: true, region: '320124', regionStatus: 'retired-or-unknown' })
  t.match(checkIdNumber(make('440524', '19800101'), TODAY), { ok: true, regionStatus: 'retired-or-unknown' })
  t.match(checkIdNumber(make('329999', '19800101'), TODAY), { ok: true, regionStatus: 'retired-or-unknown' })
  t.match(checkIdNumber(make('329900', '19800101'), TODAY), { ok: true, regionStatus: 'retired-or-unknown' })
  t.match(checkIdNumber('320115199003070123', TODAY), { ok: true, region: '320115', regionStatus: 'current' })
  t.match(checkIdNumber(make('320117', '20140101'), TODAY), { ok: true, regionStatus: 'current' }, 'Lishui today')
})

t.test('the province prefix is checked strictly', async (t) => {
  for (const p of ['00', '10', '19', '20', '30', '39', '66', '70', '83', '90', '99']) {
    t.equal(refused(make(`${p}0101`, '19800101')).code, 'INPUT_UNKNOWN_REGION', p)
  }
  // GB/T 2260 lists Hong Kong and Macao; their residents' residence permits use 810000/820000.
  t.match(checkIdNumber(make('810000', '19800101'), TODAY), { ok: true, regionStatus: 'current' })
})

t.test('birth dates: real, not in the future, not before 1880', async (t) => {
  t.equal(checkIdNumber(make('320115', '20000229'), TODAY).ok, true, '2000 is a leap year')
  t.equal(checkIdNumber(make('320115', '20240229'), TODAY).ok, true)
  t.equal(refused(make('320115', '19000229')).reason, 'birth day out of range', '1900 is not')
  t.equal(refused(make('320115', '19800431')).reason, 'birth day out of range')
  t.equal(refused(make('320115', '19800100')).reason, 'birth day out of range')
  t.equal(refused(make('320115', '19800015')).reason, 'birth month out of range')

  t.equal(checkIdNumber(make('320115', '18991231'), TODAY).ok, true, '1899 is accepted')
  t.equal(checkIdNumber(make('320115', '18800101'), TODAY).ok, true, 'the earliest accepted day')
  t.equal(refused(make('320115', '18791231')).reason, 'birth date before 1880')
  t.equal(refused(make('320115', '08991231')).reason, 'birth date before 1880')

  t.equal(checkIdNumber(make('320115', '20260615'), TODAY).ok, true, 'born today')
  t.equal(refused(make('320115', '20260616')).reason, 'birth date in the future')
  t.equal(refused(make('320115', '20300101')).reason, 'birth date in the future')
  t.equal(refused(make('320115', '99991231')).reason, 'birth date in the future')
})

t.test('"today" is the date in Beijing', async (t) => {
  const id = make('320115', '20260301')
  // 00:30 on 1 March in Beijing is still 28 February in UTC.
  t.equal(checkIdNumber(id, new Date('2026-02-28T16:30:00Z')).ok, true)
  t.equal(refused(id, new Date('2026-02-28T15:30:00Z')).reason, 'birth date in the future')
})

t.test('today defaults to now', async (t) => {
  t.equal(checkIdNumber('320115199003070123').ok, true)
  t.equal(checkIdNumber(make('320115', '29991231')).ok, false)
})

t.test('lower-case x is refused: one spelling per person, callers normalise', async (t) => {
  const r = refused('11010519491231002x')
  t.equal(r.code, 'INPUT_INVALID_ID_NUMBER')
  t.equal(r.reason, 'check character must be upper-case X')
})

t.test('malformed input is refused, never thrown', async (t) => {
  for (const bad of [undefined, null, 11010519491231002, {}, ['11010519491231002X'], true]) {
    t.same(refused(bad), { ok: false, code: 'INPUT_INVALID_ID_NUMBER', reason: 'not a string' }, String(bad))
  }
  t.equal(refused('').reason, 'must be 18 characters')
  t.equal(refused(' 11010519491231002X').reason, 'must be 18 characters')
  t.equal(refused('１１0105194912310020').reason, 'first 17 characters must be digits', 'full-width digits')
  t.equal(refused('11010519491231 02X').reason, 'first 17 characters must be digits')
  t.equal(refused('11010519491231002Ｘ').reason, 'check character must be a digit or X')
})

t.test('idCheckCharacter', async (t) => {
  t.equal(idCheckCharacter('11010519491231002'), 'X')
  t.equal(idCheckCharacter('44052418800101001'), '4')
  t.equal(idCheckCharacter('32011519900307012'), '3')
  t.throws(() => idCheckCharacter('1101051949123100'), RangeError)
  t.throws(() => idCheckCharacter('1101051949123100X'), RangeError)
  t.throws(() => idCheckCharacter(undefined as unknown as string), RangeError)
})

t.test('every check character value is reachable and verified', async (t) => {
  const seen = new Set<string>()
  for (let seq = 0; seq < 200; seq++) {
    const id = make('320115', '19900307', String(seq).padStart(3, '0'))
    seen.add(id[17])
    t.equal(checkIdNumber(id, TODAY).ok, true)
    const wrong = id.slice(0, 17) + (id[17] === '0' ? '1' : '0')
    t.equal(refused(wrong).reason, 'wrong check character')
  }
  t.equal(seen.size, 11, 'all of 0-9 and X')
})

t.test('sex from the 17th digit', async (t) => {
  t.match(checkIdNumber(make('320115', '19900307', '011'), TODAY), { sex: 'M' })
  t.match(checkIdNumber(make('320115', '19900307', '010'), TODAY), { sex: 'F' })
})
