// The synthetic enterprises the simulated departments answer from (providers/enterprises.ts):
// deterministic, valid GB 32100 credit codes of Jiangsu registration offices with a valid
// GB 11714 subject code, invertible in O(1), and legal representatives who are persons of
// the synthetic population, of a founder's age when the company was founded.
import t from 'tap'
import {
  ENTERPRISE_COUNT,
  enterprise,
  enterprisesRepresentedBy,
  findEnterpriseByCreditCode,
  isActiveOn,
  orgCheckCharacter,
  type Enterprise,
} from '../../../dev/providers/enterprises.js'
import { person } from '../../../dev/providers/population.js'
import { ageOn } from '../../../dev/providers/reference.js'
import { checkCreditCode, creditCheckCharacter } from '../../../src/gb/credit-code.js'
import { isCurrentRegion, parentRegion, regionName, tierOfRegion } from '../../../src/gb/region.js'

// The README's examples.
t.test('the README examples', async (t) => {
  t.same(enterprise(0), {
    index: 0,
    creditCode: '91320722MA49M30273',
    name: '连云港恒锦化工有限公司',
    region: '320722',
    establishedOn: '2023-11-19',
    legalRepresentative: 17520,
    size: 'micro',
    employees: 2,
    industry: '化工',
  })
  t.match(person(17520), { name: '王振华', idNumber: '320722196711150354' })
  t.match(enterprise(2), { creditCode: '913212047173084912', name: '泰州晟锦纺织有限公司', region: '321204', establishedOn: '2014-01-25', size: 'small' })
  t.match(person(enterprise(2).legalRepresentative), { name: '曾斌伟', idNumber: '320381198301274175' })
  t.same(enterprisesRepresentedBy(enterprise(2).legalRepresentative), [2])
})

t.test('enterprises are deterministic', async (t) => {
  const indices = [0, 1, 2, 777, ENTERPRISE_COUNT - 1]
  const first = indices.map(enterprise)
  t.same(indices.map(enterprise), first)
  const fresh = (await import(`../../../dev/providers/enterprises.js?fresh=${Date.now()}`)) as { enterprise: (i: number) => Enterprise }
  t.not(fresh.enterprise, enterprise, 'really a fresh module')
  t.same(indices.map(fresh.enterprise), first, 'same enterprises across a fresh import')
  t.throws(() => enterprise(ENTERPRISE_COUNT), RangeError)
  t.throws(() => enterprise(-1), RangeError)
  t.throws(() => enterprise(1.5), RangeError)
})

t.test('every enterprise: valid codes, real places, a founder of the population', async (t) => {
  const codes = new Set<string>()
  const names = new Set<string>()
  const problems: string[] = []
  let dissolved = 0
  const sizes: Record<string, number> = {}
  for (let i = 0; i < ENTERPRISE_COUNT; i++) {
    const e = enterprise(i)
    codes.add(e.creditCode)
    names.add(e.name)
    sizes[e.size] = (sizes[e.size] ?? 0) + 1
    const check = checkCreditCode(e.creditCode)
    if (!check.ok) {
      problems.push(`${i}: ${e.creditCode} ${check.reason}`)
      continue
    }
    if (check.registrationAuthority !== '9' || check.entityType !== '1') problems.push(`${i}: not 91`)
    // Registered by the county's office or its city's.
    if (check.region !== e.region && check.region !== parentRegion(e.region)) problems.push(`${i}: registered at ${check.region} for ${e.region}`)
    if (!isCurrentRegion(e.region) || tierOfRegion(e.region) !== 'county' || !e.region.startsWith('32')) problems.push(`${i}: region ${e.region}`)
    // GB 11714 subject code: MA codes since the reform, the old organisation code before.
    const subject = e.creditCode.slice(8, 17)
    if (orgCheckCharacter(subject.slice(0, 8)) !== subject[8]) problems.push(`${i}: subject check ${subject}`)
    const reformed = e.establishedOn >= '2015-10-01'
    if (reformed !== subject.startsWith('MA')) problems.push(`${i}: ${subject} founded ${e.establishedOn}`)
    if (findEnterpriseByCreditCode(e.creditCode)?.index !== i) problems.push(`${i}: lookup`)
    // The name: place, trade name, industry, form.
    const place = regionName(e.region)!.endsWith('市') ? regionName(e.region)! : regionName(parentRegion(e.region)!)!
    if (!e.name.startsWith(place.replace(/市$/, '')) || !e.name.endsWith(`${e.industry}有限公司`)) problems.push(`${i}: name ${e.name}`)
    // Founded 1990 – mid-2025 by a person of the population aged 22–65 then.
    const founder = person(e.legalRepresentative)
    const age = ageOn(founder, Date.parse(e.establishedOn))
    if (age < 22 || age > 65) problems.push(`${i}: founder aged ${age}`)
    if (e.establishedOn < '1990-01-01' || e.establishedOn > '2025-06-30') problems.push(`${i}: founded ${e.establishedOn}`)
    if (e.dissolvedOn) {
      dissolved++
      if (!(e.dissolvedOn > e.establishedOn) || e.dissolvedOn > '2025-12-31') problems.push(`${i}: dissolved ${e.dissolvedOn}`)
      if (isActiveOn(e, e.dissolvedOn)) problems.push(`${i}: active when dissolved`)
    }
    if (!isActiveOn(e, e.establishedOn)) problems.push(`${i}: not active when founded`)
    if (!enterprisesRepresentedBy(e.legalRepresentative).includes(i)) problems.push(`${i}: not listed under its representative`)
  }
  t.same(problems.slice(0, 20), [], 'every enterprise is well formed')
  t.equal(codes.size, ENTERPRISE_COUNT, 'credit codes are unique')
  t.equal(names.size, ENTERPRISE_COUNT, 'names are unique')
  t.ok(dissolved > ENTERPRISE_COUNT * 0.08 && dissolved < ENTERPRISE_COUNT * 0.16, `${dissolved} deregistered`)
  t.ok(sizes.micro > sizes.small && sizes.small > sizes.medium && sizes.medium > sizes.large && sizes.large > 0, JSON.stringify(sizes))
})

t.test('lookups find only the population’s codes', async (t) => {
  const e = enterprise(0)
  const swap = e.creditCode.slice(0, 17) + (e.creditCode[17] === '0' ? '1' : '0')
  t.equal(findEnterpriseByCreditCode(swap), undefined, 'wrong check character')
  t.equal(findEnterpriseByCreditCode(e.creditCode.toLowerCase()), undefined, 'lower case')
  // A valid code of the same subject under another office is someone else's.
  const moved17 = `91320100${e.creditCode.slice(8, 17)}`
  t.equal(findEnterpriseByCreditCode(moved17 + creditCheckCharacter(moved17)), undefined, 'another office')
  for (const code of ['11320000014000120T', '11320000MB0000105J', '', 'x'.repeat(18), '91320722MA49M3027']) {
    t.equal(findEnterpriseByCreditCode(code), undefined, code)
  }
  t.equal(findEnterpriseByCreditCode(42 as unknown as string), undefined)
})

t.test('GB 11714 check characters', async (t) => {
  // The standard's worked example: D2143569 → X.
  t.equal(orgCheckCharacter('D2143569'), 'X')
  t.equal(orgCheckCharacter('MA49M302'), '7')
})
