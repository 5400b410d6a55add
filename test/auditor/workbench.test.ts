// The auditor's workbench (issue 15): its own calls hidden unless includeOwn, search results
// as CSV and XLSX (Chinese headers first, bounded, audited), the subject report as an HTML
// statement signed by the node's key, verifiable with the node certificate.
import t from 'tap'
import ExcelJS from 'exceljs'
import { startNode, context } from '../helpers/harness.js'
import { person } from '../../dev/providers/population.js'
import { verifySignature, type SuiteName } from '../../src/pki/suites.js'
import { parseStatementSignature } from '../../src/auditor/statement.js'
import { HEADERS } from '../../src/auditor/table-export.js'

const h = await startNode({ tag: 'audwb' })
t.teardown(() => h.close())
const auditor = await h.token('js-audit')
const consumer = await h.token('jn-civil-affairs')
const p0 = person(3)
const from = new Date(Date.now() - 3600_000).toISOString()
const to = () => new Date(Date.now() + 60_000).toISOString()

const verified = await h.app.inject({
  method: 'POST', url: '/v1/verify/identity',
  headers: { authorization: `Bearer ${consumer}`, ...context({ 'tongban-case-id': '-2026-001' }) },
  payload: { idNumber: p0.idNumber, name: p0.name },
})
if (verified.statusCode !== 200) throw new Error(`verify: ${verified.statusCode} ${verified.body}`)
const get = (url: string, headers: Record<string, string> = {}) => h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${auditor}`, ...headers } })

t.test("the auditor's own audit calls are hidden unless includeOwn", async (t) => {
  t.equal((await get('/v1/audit/records?limit=1')).statusCode, 200) // an audit.search record of this auditor
  const ops = async (q: string) => (await get(`/v1/audit/records?limit=500&${q}`)).json().items.map((i: any) => i.record.operation)
  const hidden = await ops('')
  t.notOk(hidden.some((o: string | null) => o?.startsWith('audit.')), 'none of its own audit.* calls')
  t.ok(hidden.includes('verify'), 'the queries are there')
  const page = (await get('/v1/audit/records?limit=5&operation=verify')).json()
  t.same(page.items[0].consumer, { code: '11320115MB0000012H', name: '南京市江宁区民政局' }, 'a hit names its consumer department')
  t.equal(page.items[0].provider.code, h.app.catalog.get(page.items[0].record.resource)!.provider.code)
  t.type(page.items[0].provider.name, 'string', 'and the provider of its resource')
  const one = (await get(`/v1/audit/records/${page.items[0].record.requestId}`)).json()
  t.same(one.consumer, page.items[0].consumer)
  t.equal(one.verified.leaf, true, 'the record itself is unchanged')
  const shown = await ops('includeOwn=true')
  t.ok(shown.includes('audit.search'), 'includeOwn=true shows them')
  const body = await h.app.inject({ method: 'POST', url: '/v1/audit/records/search', headers: { authorization: `Bearer ${auditor}` }, payload: { kind: 'audit', includeOwn: true } })
  t.ok(body.json().items.length > 0)
  const hiddenBody = await h.app.inject({ method: 'POST', url: '/v1/audit/records/search', headers: { authorization: `Bearer ${auditor}` }, payload: { kind: 'audit' } })
  t.equal(hiddenBody.json().items.length, 0)
  t.equal((await get('/v1/audit/records?includeOwn=maybe')).json().code, 'INPUT_INVALID')
})

t.test('search results as CSV: Chinese headers first, the filters of the search, audited', async (t) => {
  const res = await get(`/v1/audit/export?format=csv&from=${from}&to=${to()}&department=11320115MB0000012H&operation=verify`)
  t.equal(res.statusCode, 200, res.body)
  t.match(res.headers['content-type'], /^text\/csv/)
  t.match(res.headers['content-disposition'], /attachment; filename="audit-.*\.csv"/)
  const lines = res.body.replace(/^\uFEFF/, '').trim().split('\r\n')
  t.equal(lines[0], HEADERS.join(','))
  t.match(lines[0], /^时间 time,请求标识 request id/)
  t.equal(lines.length, 2, 'one verify of this department')
  t.match(lines[1], /南京市江宁区民政局/)
  t.match(lines[1], /'-2026-001/, 'a cell that a spreadsheet would read as a formula is text')
  t.notOk(res.body.includes(p0.idNumber), 'no raw id number')
  const audited = await h.app.inject({ method: 'POST', url: '/v1/audit/records/search', headers: { authorization: `Bearer ${auditor}` }, payload: { operation: 'audit.export', includeOwn: true } })
  t.ok(audited.json().items.length >= 1, 'the export is itself audited')
})

t.test('search results as XLSX', async (t) => {
  const res = await get(`/v1/audit/export?format=xlsx&from=${from}&to=${to()}&operation=verify`)
  t.equal(res.statusCode, 200, res.body)
  t.match(res.headers['content-type'], /spreadsheetml/)
  const wb = new ExcelJS.Workbook()
  await wb.xlsx.load(res.rawPayload as any)
  const ws = wb.worksheets[0]
  t.same((ws.getRow(1).values as unknown[]).slice(1), HEADERS)
  t.equal(ws.rowCount, 2)
  t.equal(ws.getRow(2).getCell(9).value, 'verify')
})

t.test('hostile exports are problems', async (t) => {
  for (const [q, code] of [
    [`format=pdf&from=${from}&to=${to()}`, 'INPUT_INVALID'],
    [`format=csv&from=${to()}&to=${from}`, 'AUDIT_RANGE_INVALID'],
    [`format=csv&to=${to()}`, 'INPUT_INVALID'],
    [`from=${from}&to=${to()}&department=11320115MB0000012H`, 'INPUT_INVALID'],
    [`format=csv&from=${from}&to=${to()}&subject=${p0.idNumber}`, 'INPUT_INVALID'],
  ] as const) {
    const res = await get(`/v1/audit/export?${q}`)
    t.equal(res.statusCode, 400, q)
    t.match(res.headers['content-type'], /problem\+json/)
    t.equal(res.json().code, code, q)
  }
  const asConsumer = await h.app.inject({ method: 'GET', url: `/v1/audit/export?format=csv&from=${from}&to=${to()}`, headers: { authorization: `Bearer ${consumer}` } })
  t.equal(asConsumer.statusCode, 403)
})

t.test('the subject statement is HTML in Chinese, signed over its bytes by the node key', async (t) => {
  const res = await get('/v1/audit/subjects/statement', { 'tongban-subject': p0.idNumber })
  t.equal(res.statusCode, 200, res.body)
  t.match(res.headers['content-type'], /^text\/html; charset=utf-8/)
  t.match(res.body, /<html lang="zh-CN">/)
  t.match(res.body, /关于信息被查询情况的说明/)
  t.match(res.body, /南京市江宁区民政局/)
  t.notOk(res.body.includes(p0.idNumber), 'the raw id number is not in the document')
  t.notOk(res.body.includes(p0.name), 'nor the name')
  const sig = parseStatementSignature(res.headers['tongban-statement-signature'] as string)!
  t.ok(sig)
  const node = (await h.app.inject({ method: 'GET', url: '/v1/node' })).json()
  const certPem: string = node.certificate
  t.equal(sig.kid, node.kid, 'the kid of the node certificate published at /v1/node')
  t.equal(sig.alg, node.auditAlg)
  t.ok(verifySignature(sig.alg as SuiteName, certPem, res.rawPayload, sig.sig), 'verifies with the node certificate')
  const tampered = Buffer.from(res.body.replace('南京市江宁区民政局', '南京市江宁区民政厅'), 'utf8')
  t.notOk(verifySignature(sig.alg as SuiteName, certPem, tampered, sig.sig), 'a changed document does not')
  t.ok(res.headers['tongban-evidence'], 'the call is audited like every auditor call')
  const missing = await get('/v1/audit/subjects/statement')
  t.equal(missing.json().code, 'AUDIT_SUBJECT_MISSING')
  const inUrl = await get(`/v1/audit/subjects/statement?subject=${p0.idNumber}`)
  t.equal(inUrl.statusCode, 400)
  t.equal((await get('/v1/audit/subjects/statement?format=docx', { 'tongban-subject': p0.idNumber })).json().code, 'INPUT_INVALID')
})
