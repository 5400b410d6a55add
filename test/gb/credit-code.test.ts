import t from 'tap'
import { readFileSync } from 'node:fs'
import { checkCreditCode, creditCheckCharacter } from '../../src/gb/credit-code.js'

interface Vectors {
  unifiedSocialCreditCode: { valid: string[]; invalid: { code: string; why: string }[] }
}
const vectors: Vectors = JSON.parse(readFileSync(new URL('../vectors/ids.json', import.meta.url), 'utf8'))

const ALPHABET = '0123456789ABCDEFGHJKLMNPQRTUWXY'
const complete = (first17: string): string => first17 + creditCheckCharacter(first17)
const reason = (code: unknown): string => {
  const r = checkCreditCode(code as string)
  if (r.ok) throw new Error('expected a refusal')
  return r.reason
}

t.test('reference vectors', async (t) => {
  for (const code of vectors.unifiedSocialCreditCode.valid) {
    t.equal(checkCreditCode(code).ok, true, code)
    t.equal(creditCheckCharacter(code.slice(0, 17)), code[17], `${code}: check character`)
  }
  for (const { code, why } of vectors.unifiedSocialCreditCode.invalid) {
    t.match(checkCreditCode(code), { ok: false, code: 'INPUT_INVALID_CREDIT_CODE' }, `${code}: ${why}`)
  }
  t.same(checkCreditCode('91350100M000100Y43'), {
    ok: true, region: '350100', registrationAuthority: '9', entityType: '1',
  })
  t.same(checkCreditCode('12320115MB000012KR'), {
    ok: true, region: '320115', registrationAuthority: '1', entityType: '2',
  })
  t.equal(reason('91350100M000100Y44'), 'wrong check character')
  t.equal(reason('91350100m000100y43'), 'letters must be upper case')
})

t.test('alphabet: I O S V Z are not code characters', async (t) => {
  for (const letter of 'IOSVZ') {
    const code = `91350100M000${letter}00Y43`
    t.match(reason(code), /code alphabet/, letter)
  }
  t.match(reason('91350100M000-00Y43'), /code alphabet/)
  t.match(reason('91350100M000一00Y43'), /code alphabet/)
  t.throws(() => creditCheckCharacter('91350100M000I00Y4'), RangeError)
})

t.test('case and length', async (t) => {
  t.equal(reason('91350100m000100Y43'), 'letters must be upper case')
  for (const code of ['', '91350100M000100Y4', '91350100M000100Y433', ' 91350100M000100Y43']) {
    t.equal(reason(code), 'must be 18 characters', JSON.stringify(code))
  }
  for (const bad of [undefined, null, 913501, {}, ['91350100M000100Y43']]) {
    t.equal(reason(bad), 'not a string', String(bad))
  }
  t.throws(() => creditCheckCharacter('91350100M000100Y'), RangeError)
})

t.test('every check value is verified, 31 → 0 included', async (t) => {
  const seen = new Set<string>()
  let zero = ''
  for (const c of ALPHABET) {
    const code = complete(`91320115MA${c}000001`)
    seen.add(code[17])
    if (code[17] === '0') zero = code
    t.equal(checkCreditCode(code).ok, true, code)
    const v = ALPHABET.indexOf(code[17])
    for (const wrong of [ALPHABET[(v + 1) % 31], ALPHABET[(v + 30) % 31]]) {
      t.equal(reason(code.slice(0, 17) + wrong), 'wrong check character')
    }
  }
  t.equal(seen.size, 31, 'one body character through the alphabet reaches every check value')
  t.ok(zero, 'a sum divisible by 31 gives check character 0')
})

t.test('region: province strict, retired county accepted', async (t) => {
  t.match(checkCreditCode(complete('91320124MA0000001')), { ok: true, region: '320124' }, 'Lishui, retired 2013')
  t.match(checkCreditCode(complete('91329999MA0000001')), { ok: true, region: '329999' })
  // Central registries use the national code.
  t.match(checkCreditCode(complete('12100000400000001')), { ok: true, region: '100000' })
  for (const region of ['990115', '000000', '100100', '830000']) {
    t.match(checkCreditCode(complete(`91${region}MA0000001`)), { ok: false, code: 'INPUT_UNKNOWN_REGION' }, region)
  }
  t.equal(reason(complete('9132A115MA0000001')), 'characters 3-8 must be digits')
})
