import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadCatalogDir, loadSchemaFile, validateCatalogEntry, type CatalogFileError } from '../../src/catalog/files.js'
import { run } from '../../src/cli/catalog.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const schemas = join(root, 'schemas')
const catalog = join(root, 'catalog')

const identity = () => JSON.parse(readFileSync(join(catalog, '101001-00001.json'), 'utf8'))
const property = () => JSON.parse(readFileSync(join(catalog, '103002-00001.json'), 'utf8'))
const propertyDetail = () => JSON.parse(readFileSync(join(catalog, '103002-00002.json'), 'utf8'))

/** A temp directory (removed after the test) holding `files`; objects are written as JSON. */
function fixture(t: Test, files: Record<string, unknown>): string {
  const text = (content: unknown) => (typeof content === 'string' ? content : JSON.stringify(content, null, 2))
  return t.testdir(Object.fromEntries(Object.entries(files).map(([name, content]) => [name, text(content)])))
}

const only = (errors: CatalogFileError[], file: string) => errors.filter((e) => e.file.endsWith(file))

t.test('the shipped catalogue validates', async (t) => {
  const { entries, errors } = await loadCatalogDir(catalog, schemas)
  t.same(errors, [])
  t.same(
    entries.map((e) => [e.code, e.sharing.type]),
    [
      ['101001/00001', 'unconditional'],
      ['103002/00001', 'unconditional'],
      ['103002/00002', 'conditional'],
      ['103002/00003', 'unconditional'],
      ['110001/00001', 'unconditional'],
      ['110001/00002', 'conditional'],
      ['301002/00001', 'none'],
      ['305001/00001', 'unconditional'],
      ['306001/00001', 'unconditional'],
      ['307001/00001', 'unconditional'],
    ],
  )
  // The five verification services, property twice: the province's registry and Nanjing's.
  t.same(
    entries.filter((e) => e.service?.verifyService).map((e) => [e.service!.verifyService, e.provider.region, e.code]),
    [
      ['identity', '320000', '101001/00001'],
      ['property', '320000', '103002/00001'],
      ['property', '320100', '103002/00003'],
      ['tax', '320000', '305001/00001'],
      ['degree', '320000', '306001/00001'],
      ['social-security', '320000', '307001/00001'],
    ],
  )
})

t.test('invalid JSON names the file and the place', async (t) => {
  const dir = fixture(t, { '101001-00001.json': '{\n  "code": "101001/00001",\n}\n' })
  const { entries, errors } = await loadCatalogDir(dir, schemas)
  t.same(entries, [])
  t.equal(errors.length, 1)
  t.equal(errors[0].file, join(dir, '101001-00001.json'))
  t.equal(errors[0].path, '')
  t.match(errors[0].reason, /^invalid JSON: .*line 3, column 1/)
})

t.test('a UTF-8 BOM is tolerated', async (t) => {
  const dir = fixture(t, { '101001-00001.json': '\ufeff' + JSON.stringify(identity()) })
  t.same((await loadCatalogDir(dir, schemas)).errors, [])
})

t.test('schema violations: one error each, with pointer and reason', async (t) => {
  const entry = identity()
  delete entry.summary
  entry.format = 'pdf'
  entry.provider.code = '11320000014000120I' // I is not in the GB 32100 alphabet
  entry.publishedAt = '2026-02-30'
  entry.owner = 'someone'
  const errors = validateCatalogEntry(entry, schemas, 'x.json')
  t.same(errors.map((e) => e.path).sort(), ['/format', '/owner', '/provider/code', '/publishedAt', '/summary'])
  const at = (path: string) => errors.find((e) => e.path === path)!
  t.same(at('/summary'), { file: 'x.json', path: '/summary', reason: 'is required' })
  t.equal(at('/format').reason, 'must be one of: api, database, file, spreadsheet, image, media')
  t.match(at('/provider/code').reason, /must match pattern .*统一社会信用代码/)
  t.match(at('/publishedAt').reason, /must match format "date"/)
  t.equal(at('/owner').reason, 'is not allowed')
})

t.test('nested violations point into the entry', async (t) => {
  const entry = identity()
  entry.items[0].shareType = 'open'
  entry.service.operations.Verify = entry.service.operations.verify
  entry.service.upstream.timeoutMs = 50
  const errors = validateCatalogEntry(entry, schemas)
  t.same(errors.map((e) => [e.path, e.reason]), [
    ['/items/0/shareType', 'must be one of: unconditional, conditional, none'],
    ['/service/operations/Verify', 'name must match pattern "^[a-z][a-z0-9-]*$"'],
    ['/service/upstream/timeoutMs', 'must be >= 100'],
  ])
})

t.test('a verify service is any well-formed name the entry binds, not one of a fixed list', async (t) => {
  const named = (verifyService: unknown) => {
    const entry = identity()
    entry.service.verifyService = verifyService
    return validateCatalogEntry(entry, schemas)
  }
  for (const name of ['marriage', 'vehicle-registration', 'a', `m${'0'.repeat(31)}`]) t.same(named(name), [], name)
  for (const name of ['Marriage', 'social_security', '1-marriage', '-x', 'x/y', '', `m${'0'.repeat(32)}`, 7]) {
    const errors = named(name)
    t.same(errors.map((e) => e.path), ['/service/verifyService'], JSON.stringify(name))
    t.match(errors[0]?.reason, typeof name === 'string' ? /^must match pattern "\^\[a-z\]\[a-z0-9-\]\{0,31\}\$" \(.*服务名/ : /^must be string/)
  }
})

t.test('sharing attributes required by share type', async (t) => {
  const none = identity()
  none.sharing = { type: 'none' }
  none.items[0].shareType = 'none'
  t.same(validateCatalogEntry(none, schemas).map((e) => [e.path, e.reason]), [['/sharing/legalBasis', 'is required']])

  const conditional = propertyDetail()
  delete conditional.sharing.condition
  t.same(validateCatalogEntry(conditional, schemas).map((e) => e.path), ['/sharing/condition'])

  const unserved = identity()
  delete unserved.service
  t.same(validateCatalogEntry(unserved, schemas).map((e) => e.path), ['/service'])

  const withdrawn = identity() // a none resource may keep its binding, or drop it
  withdrawn.sharing = { type: 'none', legalBasis: '测试' }
  withdrawn.items[0].shareType = 'none'
  t.same(validateCatalogEntry(withdrawn, schemas), [])
  delete withdrawn.service
  t.same(validateCatalogEntry(withdrawn, schemas), [])
})

t.test('share types: a none resource releases nothing', async (t) => {
  const notShared = property()
  notShared.sharing = { type: 'none', legalBasis: '测试' }
  notShared.items[2].shareType = 'none'
  t.same(validateCatalogEntry(notShared, schemas).map((e) => [e.path, e.reason]), [
    ['/items/0/shareType', 'is unconditional, but nothing of a resource that is not shared may be released: make the item none'],
    ['/items/1/shareType', 'is conditional, but nothing of a resource that is not shared may be released: make the item none'],
  ])
  for (const item of notShared.items) item.shareType = 'none'
  t.same(validateCatalogEntry(notShared, schemas), [])
})

t.test('share types: an unconditional resource needs an unconditional item', async (t) => {
  // The shipped example: open to every department, with items that need a grant naming them.
  const entry = property()
  t.same(entry.sharing, { type: 'unconditional', method: 'api' })
  t.same(entry.items.map((i: { shareType: string }) => i.shareType), ['unconditional', 'conditional', 'conditional'])
  t.same(validateCatalogEntry(entry, schemas), [])

  const allKinds = property() // none items are allowed too: they are never returned
  allKinds.items[2].shareType = 'none'
  t.same(validateCatalogEntry(allKinds, schemas), [])
  const fullyOpen = identity()
  t.same(validateCatalogEntry(fullyOpen, schemas), [])

  const grantOnly = property()
  grantOnly.items[0].shareType = 'conditional'
  t.same(validateCatalogEntry(grantOnly, schemas).map((e) => [e.path, e.reason]), [
    ['/sharing/type', 'is unconditional, but no item is: an unconditional resource needs at least one unconditional item, released to every department (make an item unconditional, or the resource conditional)'],
  ])

  const nothing = property()
  for (const item of nothing.items) item.shareType = 'none'
  t.same(validateCatalogEntry(nothing, schemas).map((e) => [e.path, e.reason]), [
    ['/sharing/type', 'is unconditional, but no item is: an unconditional resource needs at least one unconditional item, released to every department (make an item unconditional, or the resource none)'],
  ])
})

t.test('share types: a conditional resource needs a conditional item', async (t) => {
  // The shipped example: a grant opens the resource; hasProperty goes to every holder unnamed.
  const entry = propertyDetail()
  t.equal(entry.sharing.type, 'conditional')
  t.same(entry.items.map((i: { shareType: string }) => i.shareType), ['unconditional', 'conditional'])
  t.same(validateCatalogEntry(entry, schemas), [])

  const allConditional = propertyDetail()
  allConditional.items[0].shareType = 'conditional'
  t.same(validateCatalogEntry(allConditional, schemas), [])
  const withNone = propertyDetail()
  withNone.items[0].shareType = 'none'
  t.same(validateCatalogEntry(withNone, schemas), [])

  const open = propertyDetail() // nothing would need the grant
  open.items[1].shareType = 'unconditional'
  t.same(validateCatalogEntry(open, schemas).map((e) => [e.path, e.reason]), [
    ['/sharing/type', 'is conditional, but no item is: a conditional resource needs at least one conditional item, released only under a grant naming it (make an item conditional, or the resource unconditional)'],
  ])
  open.items[0].shareType = 'none' // a none item beside the unconditional one changes nothing
  t.same(validateCatalogEntry(open, schemas).map((e) => [e.path, e.reason]), [
    ['/sharing/type', 'is conditional, but no item is: a conditional resource needs at least one conditional item, released only under a grant naming it (make an item conditional, or the resource unconditional)'],
  ])

  const closed = propertyDetail()
  for (const item of closed.items) item.shareType = 'none'
  t.same(validateCatalogEntry(closed, schemas).map((e) => [e.path, e.reason]), [
    ['/sharing/type', 'is conditional, but no item is: a conditional resource needs at least one conditional item, released only under a grant naming it (make an item conditional, or the resource none)'],
  ])
})

t.test('duplicate item names', async (t) => {
  const entry = property()
  entry.items[2].name = 'hasProperty'
  const errors = validateCatalogEntry(entry, schemas)
  t.ok(errors.some((e) => e.path === '/items/2/name' && /duplicates \/items\/0\/name/.test(e.reason)))
})

t.test('referenced schema files', async (t) => {
  const missing = identity()
  missing.service.operations.verify.requestSchema = 'verify/nobody.request.schema.json'
  t.same(validateCatalogEntry(missing, schemas).map((e) => [e.path, e.reason]), [
    ['/service/operations/verify/requestSchema', `verify/nobody.request.schema.json not found in ${schemas}`],
  ])

  const escaping = identity()
  escaping.service.operations.verify.responseSchema = '../package.json'
  t.same(validateCatalogEntry(escaping, schemas).map((e) => e.path), ['/service/operations/verify/responseSchema'])

  const subject = identity()
  subject.service.operations.verify.subjectField = 'idNo'
  t.same(validateCatalogEntry(subject, schemas).map((e) => [e.path, e.reason]), [
    ['/service/operations/verify/subjectField', '"idNo" is not a property of verify/identity.request.schema.json (it has: idNumber, name)'],
  ])

  const noVerify = identity()
  noVerify.service.operations = { check: noVerify.service.operations.verify }
  t.same(validateCatalogEntry(noVerify, schemas).map((e) => e.path), ['/service/operations/verify'])
})

t.test('referenced schemas must compile and close the response', async (t) => {
  const copy = (rel: string) => readFileSync(join(schemas, rel), 'utf8')
  const dir = t.testdir({
    'catalog-entry.schema.json': copy('catalog-entry.schema.json'),
    verify: {
      'identity.request.schema.json': copy('verify/identity.request.schema.json'),
      'identity.response.schema.json': copy('verify/identity.response.schema.json'),
      'broken.schema.json': '{ "type": "object", "properties": { "a": { "type": "text" } } }',
      'typo.schema.json': '{ "type": "object", "properties": { "idNumber": { "type": "string", "format": "gb11634" } } }',
      'open.schema.json': '{ "type": "object", "properties": { "match": { "type": "boolean" } } }',
      'extra.schema.json':
        '{ "type": "object", "additionalProperties": false, "properties": { "match": { "type": "boolean" }, "address": { "type": "string" } } }',
    },
  })
  const withResponse = (rel: string) => {
    const entry = identity()
    entry.service.operations.verify.responseSchema = rel
    return validateCatalogEntry(entry, dir).map((e) => e.reason)
  }
  t.match(withResponse('verify/broken.schema.json'), [/^verify\/broken.schema.json does not compile: schema is invalid: .*type/])
  const withRequest = (rel: string) => {
    const entry = identity()
    entry.service.operations.verify.requestSchema = rel
    return validateCatalogEntry(entry, dir).map((e) => e.reason)
  }
  t.match(withRequest('verify/typo.schema.json'), [/does not compile: unknown format "gb11634"/])
  t.same(withRequest('verify/identity.request.schema.json'), [], 'the gateway formats (gb11643) are known')
  t.match(withResponse('verify/open.schema.json'), [/additionalProperties: false/])
  t.same(withResponse('verify/extra.schema.json'), ['verify/extra.schema.json returns "address", which is not a catalogue item'])
})

t.test('file name, duplicate code and verify service across files', async (t) => {
  const second = { ...identity(), code: '101001/00002' } // also claims verifyService identity
  const dir = fixture(t, {
    '101001-00001.json': identity(),
    '101001-00002.json': second,
    'copy.json': identity(),
  })
  const { entries, errors } = await loadCatalogDir(dir, schemas)
  t.same(entries.map((e) => e.code), ['101001/00001'])
  t.same(only(errors, '101001-00002.json').map((e) => [e.path, e.reason]), [
    ['/service/verifyService', '"identity" is already bound by 101001-00001.json for provider region 320000'],
  ])
  t.same(only(errors, 'copy.json').map((e) => [e.path, e.reason]), [
    ['/code', '"101001/00001" does not match the file name: expected 101001-00001.json'],
    ['/code', '"101001/00001" is already used by 101001-00001.json'],
    ['/service/verifyService', '"identity" is already bound by 101001-00001.json for provider region 320000'],
  ])
})

t.test('a verify service: one resource per provider region, all with the same schemas', async (t) => {
  const city = (region: string, code: string) => ({ ...property(), code, provider: { name: '南京市不动产登记中心', code: '12320100466003417C', region } })
  // A city registry next to the provincial one: both load (the caller's region decides).
  let dir = fixture(t, { '103002-00001.json': property(), '103002-00003.json': city('320100', '103002/00003') })
  let loaded = await loadCatalogDir(dir, schemas)
  t.same(loaded.errors, [])
  t.same(loaded.entries.map((e) => e.code), ['103002/00001', '103002/00003'])
  // Two for the same region would make the choice arbitrary.
  dir = fixture(t, { '103002-00001.json': property(), '103002-00003.json': city('320100', '103002/00003'), '103002-00004.json': city('320100', '103002/00004') })
  loaded = await loadCatalogDir(dir, schemas)
  t.same(loaded.entries.map((e) => e.code), ['103002/00001', '103002/00003'])
  t.same(loaded.errors.map((e) => [e.file.slice(dir.length + 1), e.path, e.reason]), [
    ['103002-00004.json', '/service/verifyService', '"property" is already bound by 103002-00003.json for provider region 320100'],
  ])
  // The route has one request and one response schema: a city resource may not differ.
  const other = city('320500', '103002/00005')
  other.service = { ...other.service, operations: { verify: { ...other.service.operations.verify, requestSchema: 'property/detail.request.schema.json', responseSchema: 'verify/property.response.schema.json' } } }
  dir = fixture(t, { '103002-00001.json': property(), '103002-00005.json': other })
  loaded = await loadCatalogDir(dir, schemas)
  t.same(loaded.entries.map((e) => e.code), ['103002/00001'])
  t.same(loaded.errors.map((e) => [e.path, e.reason]), [
    ['/service/operations/verify/requestSchema', 'is property/detail.request.schema.json, but "property" is answered with verify/property.request.schema.json (103002-00001.json): every resource of a verify service uses the same schemas'],
  ])
})

t.test('a misnamed copy sorted first does not take the code from the rightful file', async (t) => {
  const dir = fixture(t, { '0-copy.json': identity(), '101001-00001.json': identity() })
  const { entries, errors } = await loadCatalogDir(dir, schemas)
  t.same(entries.map((e) => e.code), ['101001/00001'])
  t.same(errors.map((e) => [e.file.slice(dir.length + 1), e.path]), [['0-copy.json', '/code']])
})

t.test('loadSchemaFile parses once and refuses paths outside the directory', async (t) => {
  const a = loadSchemaFile(schemas, 'verify/identity.request.schema.json')
  t.equal(a.$id, 'https://tongban.local/schemas/verify/identity.request.schema.json')
  t.equal(loadSchemaFile(schemas, 'verify/identity.request.schema.json'), a)
  t.throws(() => loadSchemaFile(schemas, '../package.json'), /outside/)
})

t.test('cli: tongban catalog validate', async (t) => {
  const capture = () => {
    const io = { lines: [] as string[], errs: [] as string[], out: (s: string) => { io.lines.push(s) }, err: (s: string) => { io.errs.push(s) } }
    return io
  }
  let io = capture()
  t.equal(await run(['validate', catalog, '--schemas', schemas], io), 0)
  t.same(io.lines, ['10 valid entries'])

  const entry = identity()
  entry.sharing = { type: 'none' }
  entry.items[0].shareType = 'none'
  const dir = fixture(t, { '101001-00001.json': entry, 'bad.json': '{' })
  io = capture()
  t.equal(await run(['validate', dir, '--schemas', schemas], io), 1)
  t.same(io.lines.slice(0, 1), [`${join(dir, '101001-00001.json')}: /sharing/legalBasis: is required`])
  t.match(io.lines[1], new RegExp(`^${join(dir, 'bad.json')}: invalid JSON: `))
  t.equal(io.lines[2], '2 problems; 0 valid entries')

  io = capture()
  t.equal(await run(['validate', dir, '--schemas', schemas, '--json'], io), 1)
  const report = JSON.parse(io.lines.join('\n'))
  t.equal(report.valid, false)
  t.equal(report.errors.length, 2)

  io = capture()
  t.equal(await run(['validate'], io), 2)
  t.equal(await run(['validate', dir, '--bogus'], io), 2)
  t.equal(await run(['frobnicate'], io), 2)
  t.equal(await run(['toString'], io), 2)
  t.equal(await run(['import'], io), 2)
  // import validates first: an invalid directory fails before the database is touched
  t.equal(await run(['import', dir], io), 1)
  t.equal(io.errs.at(-1), 'tongban catalog import: 2 error(s); nothing imported')
  t.equal(await run(['validate', dir, '--schemas', join(dir, 'none')], io), 2)
  t.equal(await run(['--help'], io), 0)
})
