// src/validation/ajv.ts is the only place the gateway builds Ajv: every instance knows the
// domain formats and keywords, compiles a schema once, and never trips over a repeated $id.
import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { catalogueValidators, reportingValidators, requestValidators } from '../../src/validation/ajv.js'
import { ROOT } from '../helpers/harness.js'

const VALID_ID = '11010519491231002X'
const person = {
  type: 'object',
  required: ['idNumber', 'from', 'to'],
  properties: { idNumber: { type: 'string', format: 'gb11643' }, from: { type: 'string' }, to: { type: 'string' }, when: { type: 'string', format: 'date' } },
  'x-tongban-period': ['from', 'to'],
}

t.test('every instance knows the domain formats, the period keyword and the standard formats', async (t) => {
  const all = { request: requestValidators, reporting: reportingValidators, catalogue: catalogueValidators({}) }
  for (const [name, v] of Object.entries(all)) {
    const validate = v.compile(person)
    t.ok(validate({ idNumber: VALID_ID, from: '2024-01', to: '2024-02' }), `${name}: a valid body`)
    t.notOk(validate({ idNumber: '110105194912310021', from: '2024-01', to: '2024-02' }), `${name}: gb11643 checks the check digit`)
    t.notOk(validate({ idNumber: VALID_ID, from: '2024-03', to: '2024-02' }), `${name}: a reversed period`)
    t.equal(validate.errors?.[0].keyword, 'x-tongban-period')
    t.notOk(validate({ idNumber: VALID_ID, from: '2024-01', to: '2024-02', when: '2024-13-40' }), `${name}: format date`)
  }
})

t.test('requests stop at the first error; reports give them all; neither changes the data', async (t) => {
  const bad = { idNumber: 'x', from: 1, to: 2 }
  const request = requestValidators.compile(person)
  t.notOk(request(bad))
  t.equal(request.errors!.length, 1)
  const report = reportingValidators.compile(person)
  t.notOk(report(bad))
  t.ok(report.errors!.length >= 3, 'every error')
  const numeric = { type: 'object', properties: { n: { type: 'integer' } } }
  t.notOk(requestValidators.compile(numeric)({ n: '1' }), 'no coercion of a string to an integer')
})

t.test('a schema is compiled once, however often it is built', async (t) => {
  const make = () => ({ type: 'object', properties: { a: { type: 'string' } } })
  t.equal(requestValidators.compile(make()), requestValidators.compile(make()), 'the same validator for an equal schema')
  t.not(requestValidators.compile(make()), reportingValidators.compile(make()), 'each instance its own')
})

t.test('two schemas with the same $id (a file and its edited copy) both compile', async (t) => {
  const v1 = { $id: 'https://tongban.test/x.schema.json', type: 'object', properties: { a: { type: 'string' } } }
  const v2 = { ...v1, properties: { a: { type: 'integer' } } }
  const c = catalogueValidators(v1)
  t.ok(c.compile(v1)({ a: 'text' }))
  t.ok(c.compile(v2)({ a: 1 }), 'the edited copy is compiled as it is')
  t.notOk(c.compile(v2)({ a: 'text' }))
  t.ok(requestValidators.compile(v1)({ a: 'text' }))
  t.ok(requestValidators.compile(v2)({ a: 2 }))
})

t.test('catalogue schemas: strict (a typo is refused), draft 2020-12 when declared', async (t) => {
  t.throws(() => catalogueValidators({}).compile({ type: 'object', propertys: {} }), /unknown keyword/)
  t.throws(() => catalogueValidators({}).compile({ type: 'string', format: 'gb1164' }), /unknown format/)
  const tuple = { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'array', prefixItems: [{ type: 'string' }], items: false }
  const v = catalogueValidators(tuple).compile(tuple)
  t.ok(v(['a']))
  t.notOk(v(['a', 'b']), 'prefixItems and items: false, as 2020-12 means them')
})

t.test('no other module of the gateway constructs Ajv', async (t) => {
  const files = (dir: string): string[] =>
    readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : n.endsWith('.ts') ? [join(dir, n)] : []))
  for (const f of files(join(ROOT, 'src'))) {
    const rel = relative(ROOT, f)
    if (rel === 'src/validation/ajv.ts') continue
    const text = readFileSync(f, 'utf8')
    t.notMatch(text, /new Ajv(2020)?\s*\(|from 'ajv-formats'|\bajv:\s*\{\s*customOptions/, `${rel} builds no Ajv of its own`)
  }
})
