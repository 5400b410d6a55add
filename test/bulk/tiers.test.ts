// Batch jobs across tiers: a batch submitted at the Jiangning county node (320115) for a
// resource the Jiangsu province (320000) owns runs every item through the relay, county →
// Nanjing (320100) → province, as single queries would go: each item is audited at every
// node under the same request id, the owner enforces its sharing rules item by item and
// validates, and the county seals its own leg as the item's result evidence. A relayed
// batch keeps to half of the next hop's slots, so interactive queries still get through.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startNode, context, ROOT, type Harness } from '../helpers/harness.js'
import { catalogDir, entryFile } from '../helpers/tiers.js'
import { freePort } from '../helpers/gateway-process.js'
import { samplePersons } from '../../dev/providers/population.js'
import { decodeEvidence, verifyEvidence } from '../../src/evidence/evidence.js'
import { jcs } from '../../src/evidence/jcs.js'

t.setTimeout(180_000)

const JS = '320000'
const NJ = '320100'
const JN = '320115'

const dirs: Record<string, string> = {
  // The province owns identity (unconditional) and the conditional real-estate detail.
  [JS]: catalogDir([{ ...entryFile('101001-00001.json') }, { ...entryFile('103002-00002.json'), provider: { name: '江苏省自然资源厅', code: '11320000MB0000091R', region: JS } }], 'batch-tiers'),
  [NJ]: catalogDir([], 'batch-tiers'),
  [JN]: catalogDir([], 'batch-tiers'),
}

const ports: Record<string, number> = { [JS]: await freePort(), [NJ]: await freePort(), [JN]: await freePort() }
const tree = [
  { id: JS, tier: 'province', region: JS, parent: null, nodeUrl: `https://127.0.0.1:${ports[JS]}` },
  { id: NJ, tier: 'city', region: NJ, parent: JS, nodeUrl: `https://127.0.0.1:${ports[NJ]}` },
  { id: JN, tier: 'county', region: JN, parent: NJ, nodeUrl: `https://127.0.0.1:${ports[JN]}` },
]
const nodeEnv = (id: string, tier: string, parent: string | null, extra: Record<string, string> = {}) => ({
  env: {
    TONGBAN_NODE_ID: id,
    TONGBAN_NODE_REGION: id,
    TONGBAN_NODE_TIER: tier,
    TONGBAN_NODE_NAME: `batch tiers test ${id}`,
    TONGBAN_NODE_PARENT: parent ?? '',
    TONGBAN_TOPOLOGY: JSON.stringify(tree),
    TONGBAN_NODE_PORT: String(ports[id]),
    TONGBAN_CATALOG_DIR: dirs[id],
    ...extra,
  },
})
const province = await startNode({ tag: 'btiers_js', ...nodeEnv(JS, 'province', null) })
const [city, county] = await Promise.all([
  startNode({ tag: 'btiers_nj', ...nodeEnv(NJ, 'city', JS) }),
  // Four slots towards Nanjing: a relayed batch may take two of them.
  startNode({ tag: 'btiers_jn', ...nodeEnv(JN, 'county', NJ, { TONGBAN_HOP_MAX_CONCURRENT: '4', TONGBAN_BATCH_UPSTREAM_CONCURRENCY: '16' }) }),
])
t.teardown(async () => {
  await county.close()
  await city.close()
  await province.close()
})

const pem = (rel: string) => readFileSync(join(ROOT, 'certs', rel), 'utf8')
const caCertificate = pem('ca.crt.pem')
const certificates = [JS, NJ, JN].map((id) => pem(`node/${id}.crt.pem`))
const jn = await county.token('jn-civil-affairs')
const people = samplePersons(200)

type Line = { index: number; status: number; requestId: string; body?: any; problem?: any; evidence: string }
const submit = (payload: object, caseId = 'JN-BATCH-TIERS-1') =>
  county.app.inject({ method: 'POST', url: '/v1/batches', headers: { authorization: `Bearer ${jn}`, ...context({ 'tongban-case-id': caseId }) }, payload })
const get = (url: string) => county.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${jn}` } })
async function finished(id: string): Promise<any> {
  const end = Date.now() + 120_000
  for (;;) {
    const b = (await get(`/v1/batches/${id}`)).json()
    if (b.status === 'completed' || b.status === 'cancelled') return b
    if (Date.now() > end) throw new Error(`batch ${id} did not finish: ${JSON.stringify(b)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
const results = async (id: string): Promise<Line[]> => (await get(`/v1/batches/${id}/results`)).body.split('\n').filter(Boolean).map((l) => JSON.parse(l))
const recordsAt = (h: Harness, id: string) =>
  h.query(`SELECT request_id, decision, reason, resource, subject, consumer_system FROM audit_records WHERE request_id LIKE $1 ORDER BY request_id`, [`${id}.%`])

t.test('a batch for a resource owned two tiers up: every item relayed, audited at every node', async (t) => {
  const items = [
    ...people.slice(0, 40).map((p) => ({ idNumber: p.idNumber, name: p.name })),
    { idNumber: people[40].idNumber, name: '不是本人' },
    { idNumber: '110105194912310021', name: '张三' }, // wrong check character: the owner refuses it
  ]
  const res = await submit({ service: 'identity', items })
  t.equal(res.statusCode, 202, res.body)
  const accepted = res.json()
  t.equal(accepted.service, 'identity')
  t.equal(accepted.resource, 'verify/identity', 'the owner is above: the batch names the target until the owner answers')

  // Interactive queries through the same hop while the batch runs: the batch leaves them room.
  const p = people[100]
  const interactive: number[] = []
  for (let i = 0; i < 10; i++) {
    const r = await county.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${jn}`, ...context() }, payload: { idNumber: p.idNumber, name: p.name } })
    interactive.push(r.statusCode)
  }
  t.same(interactive, Array(10).fill(200), 'single queries are not refused HOP_SATURATED meanwhile')

  const done = await finished(accepted.id)
  t.same({ status: done.status, succeeded: done.succeeded, failed: done.failed }, { status: 'completed', succeeded: 41, failed: 1 })
  const lines = await results(accepted.id)
  t.same(lines.map((l) => l.index), [...Array(42).keys()])
  t.ok(lines.slice(0, 40).every((l) => l.status === 200 && l.body.match === true), 'the owner answered every item')
  t.same(lines[40].body, { match: false })
  t.equal(lines[41].status, 400)
  t.equal(lines[41].problem.code, 'INPUT_INVALID_ID_NUMBER', 'refused at the origin with its code, as a single query is: nothing malformed leaves the node')
  t.equal(lines[41].problem.requestId, `${accepted.id}.41`)
  for (const l of lines) {
    const v = verifyEvidence({ header: l.evidence, body: jcs(l.body ?? l.problem), certificates, caCertificate })
    if (!v.ok) t.fail(`evidence of item ${l.index}: ${v.reason}`)
  }
  const own = decodeEvidence(lines[0].evidence).record
  t.match(own, { node: JN, requestId: `${accepted.id}.0`, resource: '101001/00001', purpose: 'SA-01', caseId: 'JN-BATCH-TIERS-1', consumer: { system: 'jn-civil-affairs' } }, "the county's record names the owner's resource")

  // One record per relayed item at each of the three nodes, with the same request ids and
  // decisions; the malformed item was refused (and recorded) at the county alone.
  const [atJn, atNj, atJs] = await Promise.all([recordsAt(county, accepted.id), recordsAt(city, accepted.id), recordsAt(province, accepted.id)])
  t.match(atJn.find((r) => r.request_id === `${accepted.id}.41`), { decision: 'denied', reason: 'INPUT_INVALID_ID_NUMBER' }, 'county: the refusal is recorded')
  for (const [name, rows, count] of [['county', atJn, 42], ['city', atNj, 41], ['province (owner)', atJs, 41]] as const) {
    t.equal(rows.length, count, `${name}: one record per item it saw`)
    t.equal(rows.filter((r) => r.decision === 'allowed').length, 41, `${name}: 41 allowed`)
    t.ok(rows.filter((r) => r.request_id !== `${accepted.id}.41`).every((r) => /^hmac-sha256:/.test(r.subject)), `${name}: subjects as keyed hashes`)
  }
  t.notOk(atNj.some((r) => r.request_id === `${accepted.id}.41`) || atJs.some((r) => r.request_id === `${accepted.id}.41`), 'the malformed item never left the county')
  t.ok(atJs.every((r) => r.consumer_system === 'jn-civil-affairs'), 'the owner ran each item for the county consumer')
  t.ok(atJs.filter((r) => r.decision === 'allowed').every((r) => r.resource === '101001/00001'), '… against its identity resource')
})

t.test("a conditional resource: the owner's sharing rules decide each item", async (t) => {
  const res = await submit({ resource: '103002/00002', operation: 'query', items: people.slice(0, 3).map((p) => ({ idNumber: p.idNumber, name: p.name })) }, 'JN-BATCH-TIERS-2')
  t.equal(res.statusCode, 202, res.body)
  t.equal(res.json().resource, '103002/00002')
  const done = await finished(res.json().id)
  t.same({ succeeded: done.succeeded, failed: done.failed }, { succeeded: 0, failed: 3 })
  const lines = await results(res.json().id)
  t.ok(lines.every((l) => l.status === 403 && l.problem.code === 'POLICY_NO_GRANT'), 'no grant for the county department at the owner')
  const atJs = await recordsAt(province, res.json().id)
  t.same(atJs.map((r) => r.reason), Array(3).fill('POLICY_NO_GRANT'), 'refused and audited at the owner')
})

t.test('a code nobody above holds: each item ends with the not-found of the node that knows', async (t) => {
  const res = await submit({ resource: '999999/00001', operation: 'verify', items: [{ idNumber: people[0].idNumber, name: people[0].name }] }, 'JN-BATCH-TIERS-3')
  t.equal(res.statusCode, 202, 'the county cannot know: codes held above are not published down')
  const done = await finished(res.json().id)
  t.equal(done.failed, 1)
  const [line] = await results(res.json().id)
  t.equal(line.status, 404)
  t.equal(line.problem.code, 'RESOURCE_NOT_FOUND')
})

t.test('where no node can hold it, the submission itself is refused', async (t) => {
  // At the root nothing is above, and nothing below published 999999/00001; a malformed
  // code is never relayed.
  const nj = await province.token('nj-housing')
  const atRoot = await province.app.inject({ method: 'POST', url: '/v1/batches', headers: { authorization: `Bearer ${nj}`, ...context() }, payload: { resource: '999999/00001', operation: 'verify', items: [{}] } })
  t.equal(atRoot.statusCode, 404)
  t.equal(atRoot.json().code, 'RESOURCE_NOT_FOUND')
  const malformed = await submit({ resource: 'not-a-code', operation: 'verify', items: [{}] })
  t.equal(malformed.statusCode, 404)
  t.equal(malformed.json().code, 'RESOURCE_NOT_FOUND')
})
