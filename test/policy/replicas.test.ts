// Two gateway processes sharing PostgreSQL and Redis, as replicas behind a load balancer:
// the daily quota is exact under concurrency, and a revocation binds both at once.
import t from 'tap'
import { request } from 'undici'
import { startNode, context } from '../helpers/harness.js'
import { spawnGateway, type GatewayProcess } from '../helpers/gateway-process.js'
import { samplePersons } from '../../dev/providers/population.js'

const h = await startNode({ tag: 'replicas' })
t.teardown(() => h.close())

const tokens = { jn: await h.token('jn-civil-affairs'), nr: await h.token('js-natural-resources') }
const [a, b] = await Promise.all([spawnGateway(h, 'a'), spawnGateway(h, 'b')])
t.teardown(async () => {
  await Promise.all([a.stop(), b.stop()])
})

const api = async (gw: GatewayProcess, token: string, method: 'GET' | 'POST' | 'DELETE', path: string, body?: object) => {
  const res = await request(`${gw.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  })
  return { status: res.statusCode, json: (await res.body.json()) as any }
}

const query = async (gw: GatewayProcess, i: number) => {
  const p = samplePersons(200)[i % 200]
  const res = await request(`${gw.base}/v1/resources/${encodeURIComponent('103002/00002')}/query`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokens.jn}`, 'content-type': 'application/json', ...context({ 'tongban-case-id': `JN-Q-${i}` }) },
    body: JSON.stringify({ idNumber: p.idNumber, name: p.name }),
  })
  const body = (await res.body.json()) as any
  return { status: res.statusCode, code: body.code as string | undefined }
}

const applied = await api(a, tokens.jn, 'POST', '/v1/applications', {
  resource: '103002/00002', items: ['properties'], purposes: ['SA-01'], basis: '《社会救助暂行办法》家庭财产核对',
  validTo: new Date(Date.now() + 30 * 86400_000).toISOString(), dailyQuota: 50,
})
const decided = await api(b, tokens.nr, 'POST', `/v1/applications/${applied.json.id}/decision`, { decision: 'approve', reason: '同意' })
const grantId = decided.json.grantId as string

t.test('200 concurrent queries over two processes against a quota of 50: exactly 50 succeed', async (t) => {
  t.equal(decided.status, 200)
  // The grant approved on b is known on a too (pub/sub), before any query.
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => query(i % 2 ? a : b, i)))
  const ok = results.filter((r) => r.status === 200).length
  const refused = results.filter((r) => r.status === 429 && r.code === 'QUOTA_EXCEEDED').length
  t.equal(ok, 50, 'exactly the quota')
  t.equal(refused, 150, 'all others refused with QUOTA_EXCEEDED')
  const rows = await h.query("SELECT decision, count(*)::int AS n FROM audit_records WHERE resource = '103002/00002' AND operation = 'query' GROUP BY decision")
  t.same(Object.fromEntries(rows.map((r) => [r.decision, r.n])), { allowed: 50, denied: 150 }, 'every query audited, on both chains')
  const chains = await h.query("SELECT DISTINCT chain FROM audit_records WHERE resource = '103002/00002'")
  t.equal(chains.length, 2, 'each replica seals its own chain')
})

t.test('a revocation on one process binds the other at once', async (t) => {
  // A fresh day's worth of quota is not needed: revocation is checked before the quota.
  const revoked = await api(a, tokens.nr, 'DELETE', `/v1/grants/${grantId}`)
  t.equal(revoked.status, 200)
  const next = await query(b, 1)
  t.equal(next.status, 403)
  t.equal(next.code, 'POLICY_GRANT_REVOKED')
  const onA = await query(a, 2)
  t.equal(onA.code, 'POLICY_GRANT_REVOKED')
})
