// A sixth verification service added the way docs/adding-a-service.md says, and nothing
// else: copies of catalog/ and schemas/ plus one catalogue entry (婚姻登记, 江苏省民政厅) and
// its two schema files, a real HTTP provider on loopback bound through
// TONGBAN_UPSTREAM_MCA_MARRIAGE, and a real node started on them. No source file, enum or
// generated type is edited: the route, its validation, the OpenAPI document, the catalogue
// listing, the audit record and the SDK's types all follow from the entry.
import t from 'tap'
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startNode, context, ROOT } from '../helpers/harness.js'
import { person } from '../../dev/providers/population.js'
import { decodeEvidence, digest, verifyEvidence } from '../../src/evidence/evidence.js'
import { creditCheckCharacter } from '../../src/gb/credit-code.js'
import { idCheckCharacter } from '../../src/gb/id-number.js'
import { generateClientTypes } from '../../scripts/gen-client-types.js'
import { TongbanClient } from '../../packages/client/src/index.js'

const CODE = '102001/00001'
const dir = mkdtempSync(join(tmpdir(), 'tongban-sixth-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
cpSync(join(ROOT, 'catalog'), join(dir, 'catalog'), { recursive: true })
cpSync(join(ROOT, 'schemas'), join(dir, 'schemas'), { recursive: true })
const write = (rel: string, value: unknown) => writeFileSync(join(dir, rel), JSON.stringify(value, null, 2) + '\n')

write('catalog/102001-00001.json', {
  code: CODE,
  version: 1,
  name: '婚姻登记信息核验',
  category: { code: '102001', name: '婚姻登记信息' },
  provider: { name: '江苏省民政厅', code: `11320000MB0000150${creditCheckCharacter('11320000MB0000150')}`, region: '320000' },
  summary: '按公民身份号码和姓名核验其在江苏省内是否登记结婚，只回答是或否。',
  format: 'api',
  items: [{ name: 'married', title: '是否已登记结婚', type: 'boolean', shareType: 'unconditional' }],
  sharing: { type: 'unconditional', method: 'api' },
  opening: { type: 'none' },
  updateCycle: 'daily',
  publishedAt: '2026-06-01',
  service: {
    verifyService: 'marriage',
    operations: {
      verify: {
        requestSchema: 'verify/marriage.request.schema.json',
        responseSchema: 'verify/marriage.response.schema.json',
        subjectField: 'idNumber',
        idempotent: true,
      },
    },
    upstream: { name: 'mca-marriage', method: 'POST', path: '/v1/marriage/verify', timeoutMs: 3000, retries: 1 },
  },
})
write('schemas/verify/marriage.request.schema.json', {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://tongban.local/schemas/verify/marriage.request.schema.json',
  title: '婚姻登记核验请求',
  type: 'object',
  additionalProperties: false,
  required: ['idNumber', 'name'],
  properties: {
    idNumber: { title: '公民身份号码', type: 'string', format: 'gb11643', maxLength: 18 },
    name: { title: '姓名', type: 'string', minLength: 1, maxLength: 64 },
  },
})
write('schemas/verify/marriage.response.schema.json', {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://tongban.local/schemas/verify/marriage.response.schema.json',
  title: '婚姻登记核验结果',
  type: 'object',
  additionalProperties: false,
  required: ['married'],
  properties: { married: { title: '是否已登记结婚', type: 'boolean' } },
})

// The provider: married when the id number's sequence digit is even (any rule will do),
// and only for the name that goes with the number in the synthetic population.
const p0 = person(0)
const p1 = person(1)
const marriedOf = (idNumber: string) => Number(idNumber[16]) % 2 === 0
const calls: Array<{ path: string; body: Record<string, unknown> }> = []
const readJson = async (req: IncomingMessage) => {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return JSON.parse(Buffer.concat(chunks).toString('utf8'))
}
const provider = createServer(async (req, res) => {
  const body = await readJson(req)
  calls.push({ path: req.url ?? '', body })
  const known = [p0, p1].find((p) => p.idNumber === body.idNumber && p.name === body.name)
  res.writeHead(req.method === 'POST' && req.url === '/v1/marriage/verify' ? 200 : 404, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ married: known ? marriedOf(known.idNumber) : false }))
})
await new Promise<void>((r) => provider.listen(0, '127.0.0.1', r))
t.teardown(() => new Promise<void>((r) => provider.close(() => r())))
const providerUrl = `http://127.0.0.1:${(provider.address() as { port: number }).port}`

const h = await startNode({
  tag: 'sixth',
  env: { TONGBAN_CATALOG_DIR: join(dir, 'catalog'), TONGBAN_SCHEMAS_DIR: join(dir, 'schemas'), TONGBAN_UPSTREAM_MCA_MARRIAGE: providerUrl },
})
t.teardown(() => h.close())
const token = await h.token('jn-civil-affairs')

const verify = (payload: unknown) =>
  h.app.inject({
    method: 'POST',
    url: '/v1/verify/marriage',
    headers: { authorization: `Bearer ${token}`, ...context() },
    payload: payload as object,
  })

t.test('POST /v1/verify/marriage answers from the new provider, with evidence that verifies', async (t) => {
  for (const p of [p0, p1]) {
    const before = calls.length
    const res = await verify({ idNumber: p.idNumber, name: p.name })
    t.equal(res.statusCode, 200, res.body)
    t.equal(res.body, JSON.stringify({ married: marriedOf(p.idNumber) }))
    t.same(calls.slice(before), [{ path: '/v1/marriage/verify', body: { idNumber: p.idNumber, name: p.name } }], 'the provider was asked once')
    const header = res.headers['tongban-evidence'] as string
    const v = verifyEvidence({ header, body: res.body, certificates: [h.app.identity.certPem], caCertificate: h.app.identity.caPem })
    t.ok(v.ok, v.ok ? 'evidence verifies' : `evidence: ${v.reason}`)
    const record = decodeEvidence(header).record
    t.match(record, { resource: CODE, operation: 'verify', decision: 'allowed', responseDigest: digest(res.body) })
    t.match(record.subject, /^hmac-sha256:[0-9a-f]{64}$/, 'the subject is audited as a keyed hash')
  }
})

t.test('a malformed id number is refused before anything leaves the gateway', async (t) => {
  const wrongCheck = p0.idNumber.slice(0, 17) + (idCheckCharacter(p0.idNumber.slice(0, 17)) === '0' ? '1' : '0')
  const before = calls.length
  const res = await verify({ idNumber: wrongCheck, name: p0.name })
  t.equal(res.statusCode, 400, res.body)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.match(res.json(), { status: 400, code: 'INPUT_INVALID_ID_NUMBER' })
  t.equal(calls.length, before, 'the provider was not called')
  const unknown = await verify({ idNumber: p0.idNumber, name: p0.name, spouse: 'x' })
  t.match({ status: unknown.statusCode, ...unknown.json() }, { status: 400, code: 'INPUT_INVALID' }, 'the request schema is the new one')
})

t.test('the route is in /openapi.json with the new schemas', async (t) => {
  const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json()
  const op = doc.paths['/v1/verify/marriage']?.post
  t.ok(op, 'POST /v1/verify/marriage is documented')
  t.same(op.tags, ['verify'])
  t.match(op.summary, /marriage/)
  const body = op.requestBody.content['application/json'].schema
  t.same(Object.keys(body.properties).sort(), ['idNumber', 'name'])
  t.same(Object.keys(op.responses['200'].content['application/json'].schema.properties), ['married'])
})

t.test('GET /v1/catalog/resources lists the new resource and its service', async (t) => {
  const res = await h.app.inject({ method: 'GET', url: '/v1/catalog/resources', headers: { authorization: `Bearer ${token}` } })
  t.equal(res.statusCode, 200)
  const entry = res.json().resources.find((r: { code: string }) => r.code === CODE)
  t.match(entry, { code: CODE, name: '婚姻登记信息核验', provider: { name: '江苏省民政厅' }, service: { verifyService: 'marriage' } })
  t.notOk(entry.service.upstream, 'the upstream binding stays inside the node')
})

t.test('the audit records name the new resource, and no raw identifier', async (t) => {
  const rows = await h.query(`SELECT resource, operation, decision, reason, subject, record::text AS record FROM audit_records WHERE resource = $1 ORDER BY seq, idx`, [CODE])
  t.same(rows.map((r) => [r.operation, r.decision, r.reason]), [
    ['verify', 'allowed', null],
    ['verify', 'allowed', null],
    ['verify', 'denied', 'INPUT_INVALID_ID_NUMBER'],
    ['verify', 'denied', 'INPUT_INVALID'],
  ])
  t.equal(rows[0].subject, h.app.hashSubject(p0.idNumber))
  for (const r of rows) t.notMatch(r.record, new RegExp(`${p0.idNumber}|${p1.idNumber}|${p0.name}|${p1.name}`), 'no raw id number or name')
})

t.test('the SDK: types generated from the catalogue name the service; the generic call reaches it', async (t) => {
  const types = await generateClientTypes(dir)
  t.match(types, /'marriage': \{ request: MarriageVerifyRequest; response: MarriageVerifyResponse \}/)
  t.match(types, /export const VERIFY_SERVICES = \[[^\]]*'marriage'[^\]]*\] as const/)
  t.match(types, /export interface MarriageVerifyResponse \{[^}]*married: boolean/)

  await h.app.listen({ port: 0, host: '127.0.0.1' })
  const client = new TongbanClient({
    baseUrl: `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`,
    credential: { keyFile: join(ROOT, 'certs/clients/jn-civil-affairs.key.pem'), certFile: join(ROOT, 'certs/clients/jn-civil-affairs.crt.pem'), caFile: join(ROOT, 'certs/ca.crt.pem') },
    context: { purpose: 'SA-01', purposeText: '低保审核', caseId: 'JN-2026-1000' },
  })
  t.teardown(() => client.close())
  // A service the SDK's generated types do not know yet: the generic call, evidence checked.
  const answer = await client.verifyService<{ married: boolean }>('marriage', { idNumber: p0.idNumber, name: p0.name })
  t.same(answer.data, { married: marriedOf(p0.idNumber) })
  t.equal(answer.evidence?.record.resource, CODE)
})
