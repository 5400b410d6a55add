// Tongban-Data-Notice across tiers and in batches (docs/disputes.md "Tongban-Data-Notice"):
// the Jiangsu province (320000) owns identity; its provider corrects a subject after a
// dispute filed on an answer the province gave directly. A Jiangning county consumer
// (320115) then asks about that subject through Nanjing (320100): the owner adds the notice,
// every hop passes it on unchanged, the county answers with it; another subject has none.
// Batch results carry it per item, at the owner and relayed. A next hop whose notice does
// not have the owner's shape is not believed: a county whose parent is a fake Nanjing (the
// node certificate of 320100, answers the test chooses) drops it and logs a warning.
import t from 'tap'
import { createServer } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startNode, context, ROOT, type Harness } from '../helpers/harness.js'
import { catalogDir, entryFile, waitFor } from '../helpers/tiers.js'
import { freePort } from '../helpers/gateway-process.js'
import { person } from '../../dev/providers/population.js'
import { decodeEvidence, digest, encodeEvidence, verifyEvidence } from '../../src/evidence/evidence.js'
import { jcs } from '../../src/evidence/jcs.js'
import { wellFormedNotice } from '../../src/disputes/notices.js'

t.setTimeout(180_000)

const JS = '320000'
const NJ = '320100'
const JN = '320115'

const dirs: Record<string, string> = {
  [JS]: catalogDir([entryFile('101001-00001.json')], 'notice-tiers'),
  [NJ]: catalogDir([], 'notice-tiers'),
  [JN]: catalogDir([], 'notice-tiers'),
}
const ports: Record<string, number> = { [JS]: await freePort(), [NJ]: await freePort(), [JN]: await freePort() }
const at = (port: number) => `https://127.0.0.1:${port}`
const tree = [
  { id: JS, tier: 'province', region: JS, parent: null, nodeUrl: at(ports[JS]) },
  { id: NJ, tier: 'city', region: NJ, parent: JS, nodeUrl: at(ports[NJ]) },
  { id: JN, tier: 'county', region: JN, parent: NJ, nodeUrl: at(ports[JN]) },
]
const nodeEnv = (id: string, tier: string, parent: string | null, topology: object[], port: number) => ({
  TONGBAN_NODE_ID: id,
  TONGBAN_NODE_REGION: id,
  TONGBAN_NODE_TIER: tier,
  TONGBAN_NODE_NAME: `notice test ${id}`,
  TONGBAN_NODE_PARENT: parent ?? '',
  TONGBAN_TOPOLOGY: JSON.stringify(topology),
  TONGBAN_NODE_PORT: String(port),
  TONGBAN_CATALOG_DIR: dirs[id],
})
const province = await startNode({ tag: 'notice_js', env: nodeEnv(JS, 'province', null, tree, ports[JS]) })
const [city, county] = await Promise.all([
  startNode({ tag: 'notice_nj', env: nodeEnv(NJ, 'city', JS, tree, ports[NJ]) }),
  startNode({ tag: 'notice_jn', env: nodeEnv(JN, 'county', NJ, tree, ports[JN]) }),
])
t.teardown(async () => {
  await county.close()
  await city.close()
  await province.close()
})

const pem = (rel: string) => readFileSync(join(ROOT, 'certs', rel), 'utf8')
const caCertificate = pem('ca.crt.pem')
const certificates = [JS, NJ, JN].map((id) => pem(`node/${id}.crt.pem`))

const corrected = { idNumber: person(0).idNumber, name: person(0).name }
const other = { idNumber: person(1).idNumber, name: person(1).name }
const today = new Date().toISOString().slice(0, 10)
const auth = (token: string) => ({ authorization: `Bearer ${token}` })
const ask = (h: Harness, token: string, url: string, payload: object) =>
  h.app.inject({ method: 'POST', url, headers: { ...auth(token), ...context() }, payload })
const IDENTITY = '/v1/verify/identity'
const IDENTITY_RESOURCE = `/v1/resources/${encodeURIComponent('101001/00001')}/verify`
const split = (v: unknown) => String(v ?? '').split(',').map((s) => s.trim()).filter(Boolean)

const tokens = {
  jn: await county.token('jn-civil-affairs'),
  njAtCity: await city.token('nj-housing'),
  njAtProvince: await province.token('nj-housing'),
  police: await province.token('js-public-security'),
}

// The correction, at the owner, on an answer it gave directly (as test/disputes/life.test.ts).
const direct = await ask(province, tokens.njAtProvince, IDENTITY, corrected)
if (direct.statusCode !== 200) throw new Error(`direct answer: ${direct.statusCode} ${direct.body}`)
const filed = await province.app.inject({
  method: 'POST',
  url: '/v1/disputes',
  headers: auth(tokens.njAtProvince),
  payload: {
    requestId: String(direct.headers['tongban-request-id']),
    evidence: String(direct.headers['tongban-evidence']),
    answer: direct.body,
    items: ['match'],
    reason: 'FACT_MISMATCH',
    description: '申请人户籍信息已变更，核验结果有误。',
  },
})
if (filed.statusCode !== 201) throw new Error(`filing: ${filed.statusCode} ${filed.body}`)
const dispute = filed.json().id as string
const resolved = await province.app.inject({
  method: 'POST',
  url: `/v1/disputes/${dispute}/resolution`,
  headers: auth(tokens.police),
  payload: { resolution: 'CORRECTED', note: '已按户籍档案更正。', effectiveFrom: today },
})
if (resolved.statusCode !== 200) throw new Error(`resolution: ${resolved.statusCode} ${resolved.body}`)
const NOTICE = `corrected; dispute="${dispute}"; effective="${today}"; items="match"`
await waitFor('the owner holds the correction', async () => province.app.dataNotices.size === 1)

t.test('a relayed answer about the corrected subject carries the owner’s notice through every hop', async (t) => {
  const at0 = await ask(province, tokens.njAtProvince, IDENTITY, corrected)
  t.equal(at0.headers['tongban-data-notice'], NOTICE, 'the owner’s own answer carries it')

  for (const url of [IDENTITY, IDENTITY_RESOURCE]) {
    const res = await ask(county, tokens.jn, url, corrected)
    t.equal(res.statusCode, 200, `${url}: ${res.body}`)
    t.equal(res.headers['tongban-data-notice'], NOTICE, `${url}: county → Nanjing → province, the notice unchanged`)
    const evidence = [String(res.headers['tongban-evidence']), ...split(res.headers['tongban-evidence-chain'])]
    t.same(evidence.map((e) => decodeEvidence(e).record.node), [JN, NJ, JS], 'three legs, each sealed')
    for (const header of evidence) {
      const v = verifyEvidence({ header, body: res.body, certificates, caCertificate })
      t.ok(v.ok, `the evidence of ${decodeEvidence(header).record.node} verifies over the body (the notice is outside it)${v.ok ? '' : `: ${v.reason}`}`)
    }
  }

  const oneHop = await ask(city, tokens.njAtCity, IDENTITY, corrected)
  t.equal(oneHop.statusCode, 200)
  t.equal(oneHop.headers['tongban-data-notice'], NOTICE, 'one hop (Nanjing → province) too')

  const unrelated = await ask(county, tokens.jn, IDENTITY, other)
  t.equal(unrelated.statusCode, 200)
  t.notOk(unrelated.headers['tongban-data-notice'], 'another subject carries no notice')
  const refused = await county.app.inject({ method: 'POST', url: IDENTITY, headers: { ...auth(tokens.jn), ...context({ 'tongban-purpose': 'NO-SUCH-PURPOSE' }) }, payload: corrected })
  t.equal(refused.statusCode, 400, 'a refusal about the same subject…')
  t.notOk(refused.headers['tongban-data-notice'], '… releases no data and carries no notice')
})

type Line = { index: number; status: number; body?: unknown; problem?: unknown; evidence: string; dataNotice?: string }
async function batchLines(h: Harness, token: string, items: object[]): Promise<Line[]> {
  const res = await h.app.inject({ method: 'POST', url: '/v1/batches', headers: { ...auth(token), ...context({ 'tongban-case-id': 'NOTICE-BATCH-1' }) }, payload: { service: 'identity', items } })
  if (res.statusCode !== 202) throw new Error(`batch: ${res.statusCode} ${res.body}`)
  const id = res.json().id
  const get = (url: string) => h.app.inject({ method: 'GET', url, headers: auth(token) })
  await waitFor(`batch ${id}`, async () => (await get(`/v1/batches/${id}`)).json().status === 'completed', 120_000)
  return (await get(`/v1/batches/${id}/results`)).body.split('\n').filter(Boolean).map((l) => JSON.parse(l))
}

t.test('batch results: only the corrected subject’s item carries dataNotice, at the owner and relayed', async (t) => {
  for (const [where, h, token] of [['at the owner', province, tokens.njAtProvince], ['relayed from the county', county, tokens.jn]] as const) {
    const lines = await batchLines(h, token, [corrected, other, corrected])
    t.same(lines.map((l) => [l.index, l.status]), [[0, 200], [1, 200], [2, 200]], `${where}: every item answered`)
    t.equal(lines[0].dataNotice, NOTICE, `${where}: the corrected subject’s item carries the notice`)
    t.equal(lines[2].dataNotice, NOTICE, `${where}: each such item`)
    t.notOk('dataNotice' in lines[1], `${where}: the other subject’s item has none`)
    for (const l of lines) {
      const v = verifyEvidence({ header: l.evidence, body: jcs(l.body), certificates, caCertificate })
      if (!v.ok) t.fail(`${where}: evidence of item ${l.index}: ${v.reason}`)
    }
  }
})

t.test('the shape check: only what noticeValue writes is passed on', async (t) => {
  t.equal(wellFormedNotice(NOTICE), NOTICE)
  t.equal(wellFormedNotice(`corrected; dispute="${dispute}"; effective="2026-01-31"; items="match name photo"`), `corrected; dispute="${dispute}"; effective="2026-01-31"; items="match name photo"`)
  const bad: unknown[] = [
    undefined,
    '',
    ['a', 'b'],
    [NOTICE, NOTICE],
    `${NOTICE}; extra="1"`,
    `${NOTICE}\r\nSet-Cookie: x=1`,
    NOTICE.replace('corrected', 'withdrawn'),
    NOTICE.replace(dispute, 'not-a-dispute-id'),
    NOTICE.replace(dispute, dispute.toLowerCase()),
    NOTICE.replace(today, 'today'),
    NOTICE.replace('items="match"', 'items=""'),
    NOTICE.replace('items="match"', 'items="match  name"'),
    NOTICE.replace('items="match"', 'items="ma\\"tch"'),
    NOTICE.replace('items="match"', 'items="名字"'),
    NOTICE.replace('items="match"', `items="${Array(101).fill('a').join(' ')}"`),
    NOTICE.replace('; ', ';'),
    ` ${NOTICE}`,
    `corrected; items="match"; dispute="${dispute}"; effective="${today}"`,
    `corrected; dispute="${dispute}"; effective="${today}"; items="${'a'.repeat(8000)}"`,
  ]
  for (const v of bad) t.equal(wellFormedNotice(v), null, `refused: ${JSON.stringify(v)?.slice(0, 80)}`)
})

t.test('a next hop’s malformed notice is dropped and logged; the answer still goes through', async (t) => {
  // A fake Nanjing: the real node certificate of 320100, answering whatever the test says,
  // with evidence that passes the county's checks (this request id, these bytes).
  const template = decodeEvidence(String(direct.headers['tongban-evidence']))
  let answer: { status: number; notice: string | string[] | undefined } = { status: 200, notice: undefined }
  const relayed: string[] = []
  const fake = createServer({ key: pem(`node/${NJ}.key.pem`), cert: pem(`node/${NJ}.crt.pem`), ca: caCertificate, requestCert: true, rejectUnauthorized: true }, (req: IncomingMessage, res: ServerResponse) => {
    req.resume()
    req.on('end', () => {
      if (req.method !== 'POST' || !req.url?.startsWith('/v1/tiers/relay/')) {
        res.writeHead(404, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ status: 404, code: 'NOT_FOUND', title: 'not here' }))
        return
      }
      relayed.push(req.url)
      const body = answer.status < 400 ? '{"match":true}' : JSON.stringify({ type: 'about:blank', title: 'refused', status: answer.status, code: 'POLICY_NO_GRANT' })
      const record = { ...template.record, requestId: String(req.headers['tongban-request-id']), responseDigest: digest(body, template.v) }
      const headers: Record<string, string | string[]> = {
        'content-type': answer.status < 400 ? 'application/json' : 'application/problem+json',
        'tongban-evidence': encodeEvidence({ ...template, record }),
      }
      if (answer.notice !== undefined) headers['tongban-data-notice'] = answer.notice
      res.writeHead(answer.status, headers).end(body)
    })
  })
  const fakePort = await freePort()
  await new Promise<void>((resolve) => fake.listen(fakePort, '127.0.0.1', resolve))
  const ownPort = await freePort()
  const lonelyTree = tree.map((n) => (n.id === NJ ? { ...n, nodeUrl: at(fakePort) } : n.id === JN ? { ...n, nodeUrl: at(ownPort) } : n))
  const logs: string[] = []
  const lone = await startNode({ tag: 'notice_jn2', env: nodeEnv(JN, 'county', NJ, lonelyTree, ownPort), logger: { level: 'warn', stream: { write: (l: string) => logs.push(l) } } })
  t.teardown(async () => {
    await lone.close()
    await new Promise((r) => fake.close(r))
  })
  const token = await lone.token('jn-civil-affairs')
  const dropWarnings = () => logs.filter((l) => l.includes('malformed Tongban-Data-Notice'))

  const cases: Array<{ what: string; status: number; notice: string | string[]; passed: boolean }> = [
    { what: 'an extra parameter', status: 200, notice: `${NOTICE}; also="this"`, passed: false },
    { what: 'another kind of notice', status: 200, notice: NOTICE.replace('corrected', 'withdrawn'), passed: false },
    { what: 'two headers', status: 200, notice: [NOTICE, NOTICE], passed: false },
    { what: 'a well-formed notice on a refusal', status: 403, notice: NOTICE, passed: false },
    // What the shape check cannot tell: a hop may invent a well-formed notice. The consumer
    // checks the dispute it names (docs/disputes.md).
    { what: 'a well-formed notice on an answer', status: 200, notice: NOTICE, passed: true },
  ]
  for (const c of cases) {
    answer = { status: c.status, notice: c.notice }
    const before = dropWarnings().length
    const res = await ask(lone, token, IDENTITY, corrected)
    t.equal(res.statusCode, c.status, `${c.what}: answered ${c.status}`)
    if (c.passed) {
      t.equal(res.headers['tongban-data-notice'], NOTICE, `${c.what}: passed on`)
      t.equal(dropWarnings().length, before, `${c.what}: no warning`)
    } else {
      t.notOk(res.headers['tongban-data-notice'], `${c.what}: dropped`)
      await waitFor(`the warning about ${c.what}`, async () => dropWarnings().length === before + 1)
    }
  }
  t.equal(relayed.length, cases.length, 'every query went to the fake Nanjing')
  const warning = JSON.parse(dropWarnings()[0])
  t.match(warning, { level: 40, hop: NJ, status: 200 }, 'logged at warn, naming the hop')
  t.notOk(dropWarnings().some((l) => l.includes('also=') || l.includes(dispute)), 'the dropped value itself is not logged')
})
