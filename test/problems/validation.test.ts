// The validation-to-problem mapping (src/problems/validation.ts), called as the batch worker
// calls it: no Fastify request, only the data and ajv's errors from a real compiled schema.
// And the no-grant table both the query and the batch path refuse with.
import t from 'tap'
import { Ajv } from 'ajv'
import { validationProblem } from '../../src/problems/validation.js'
import { noGrantProblem } from '../../src/policy/authorize.js'
import { domainFormats, domainKeywords } from '../../src/validation/formats.js'

const ajv = new Ajv({ allErrors: false, formats: domainFormats, keywords: domainKeywords })
const body = ajv.compile({
  type: 'object',
  additionalProperties: false,
  required: ['idNumber'],
  properties: {
    idNumber: { type: 'string', format: 'gb11643' },
    creditCode: { type: 'string', format: 'gb32100' },
    from: { type: 'string' },
    to: { type: 'string' },
  },
  'x-tongban-period': ['from', 'to'],
})
const errorsOf = (data: unknown) => {
  if (body(data)) throw new Error(`expected invalid: ${JSON.stringify(data)}`)
  return body.errors ?? []
}

t.test('a domain format answers with the code of the rule the value broke', async (t) => {
  const data = { idNumber: '110101199003074511' }
  const p = validationProblem(data, errorsOf(data))
  t.equal(p.status, 400)
  t.equal(p.code, 'INPUT_INVALID_ID_NUMBER')
  t.match(p.detail, /^idNumber: /)
  const cc = { idNumber: '11010519491231002X', creditCode: '91350100M000100Y4X' }
  t.equal(validationProblem(cc, errorsOf(cc)).code, 'INPUT_INVALID_CREDIT_CODE')
})

t.test('a reversed period has its own code', async (t) => {
  const data = { idNumber: '11010519491231002X', from: '2024-05', to: '2024-01' }
  t.equal(validationProblem(data, errorsOf(data)).code, 'INPUT_PERIOD_REVERSED')
})

t.test('anything else is INPUT_INVALID with pointers, naming what was validated', async (t) => {
  const data = { idNumber: '11010519491231002X', extra: 1 }
  const p = validationProblem(data, errorsOf(data))
  t.equal(p.code, 'INPUT_INVALID')
  t.equal(p.detail, 'body does not match the schema')
  t.same(p.extra, { errors: [{ pointer: '/', detail: 'must NOT have additional properties' }] })
  const item = validationProblem(data, errorsOf(data), 'item')
  t.equal(item.detail, 'item does not match the schema', 'a batch item says item')
  t.same(item.extra, p.extra)
})

t.test('context headers missing or malformed have their own codes', async (t) => {
  const required = (h: string) => [{ keyword: 'required', instancePath: '', params: { missingProperty: h }, message: `must have required property '${h}'` }]
  const pattern = (h: string) => [{ keyword: 'pattern', instancePath: `/${h}`, params: {}, message: 'must match pattern' }]
  t.equal(validationProblem({}, required('tongban-purpose'), 'headers').code, 'INPUT_PURPOSE_MISSING')
  t.equal(validationProblem({}, required('tongban-case-id'), 'headers').code, 'INPUT_CASE_ID_MISSING')
  t.equal(validationProblem({}, pattern('tongban-case-id'), 'headers').code, 'INPUT_CASE_ID_INVALID')
  t.equal(validationProblem({}, pattern('tongban-operator'), 'headers').code, 'INPUT_OPERATOR_INVALID')
  t.equal(validationProblem({}, pattern('tongban-operator'), 'headers').detail, 'header tongban-operator is malformed')
  t.equal(validationProblem({}, pattern('x-other'), 'headers').code, 'INPUT_INVALID')
  t.equal(validationProblem({}, required('tongban-purpose'), 'body').code, 'INPUT_INVALID', 'header codes only for headers')
})

t.test('no usable grant: one table, a 403 saying why', async (t) => {
  const cases = { none: 'POLICY_NO_GRANT', purpose: 'POLICY_PURPOSE_NOT_GRANTED', expired: 'POLICY_GRANT_EXPIRED', 'not-yet-valid': 'POLICY_GRANT_NOT_YET_VALID', revoked: 'POLICY_GRANT_REVOKED' } as const
  for (const [why, code] of Object.entries(cases)) {
    const p = noGrantProblem({ grant: null, why: why as keyof typeof cases })
    t.equal(p.status, 403)
    t.equal(p.code, code, why)
  }
  t.equal(noGrantProblem(null).code, 'POLICY_NO_GRANT', 'no match at all')
  t.equal(noGrantProblem(null).detail, 'an approved grant is required (有条件共享): apply with POST /v1/applications')
})
