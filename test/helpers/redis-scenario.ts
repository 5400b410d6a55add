// What a gateway must still do on a Redis Sentinel or Redis Cluster topology (issue 17):
// answer queries, refuse a replayed client assertion, enforce a grant's daily quota exactly,
// rate-limit a system, and run its BullMQ jobs (a bulk batch: chunk queue + worker). Shared
// by test/scale/redis-sentinel.test.ts and redis-cluster.test.ts; each passes the topology's
// env and a reader of a key on the servers that hold it.
import type { Test } from 'tap'
import { CLIENT_ASSERTION_TYPE } from '../../packages/client/src/assertion.js'
import { context, startNode, type Harness } from './harness.js'
import { samplePersons } from '../../dev/providers/population.js'
import { chinaDay, quotaKey, revokedKey } from '../../src/policy/quota.js'

const people = samplePersons(200)
const person = (i: number) => ({ idNumber: people[i % 200].idNumber, name: people[i % 200].name })
export const RATE_LIMIT = 30
const QUOTA = 10
const RESOURCE = '103002/00002'

export interface Topology {
  env: Record<string, string>
  /** The value of a full key (prefix included) on every data server that should hold it. */
  readEverywhere(key: string): Promise<Array<string | null>>
  cluster: boolean
}

const byStatus = (rs: Array<{ statusCode: number; body: string }>) => {
  const out: Record<string, number> = {}
  for (const r of rs) {
    let code = ''
    if (r.statusCode >= 400) code = ` ${JSON.parse(r.body).code}`
    out[`${r.statusCode}${code}`] = (out[`${r.statusCode}${code}`] ?? 0) + 1
  }
  return out
}

/** A node on the topology (the caller closes it before it stops the topology). */
export const nodeOn = (tag: string, topo: Pick<Topology, 'env'>) => startNode({ tag, env: { ...topo.env, TONGBAN_RATE_LIMIT: String(RATE_LIMIT) } })

export async function runScenario(t: Test, h: Harness, topo: Topology): Promise<void> {

  const tokenWith = (assertion: string) => h.app.inject({
    method: 'POST', url: '/v1/oauth/token',
    payload: { grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: assertion },
  })

  await t.test('tokens are issued, and a replayed assertion is refused', async (t) => {
    const a = h.assertion('jn-civil-affairs')
    const first = await tokenWith(a)
    t.equal(first.statusCode, 200, 'first use: a token')
    const again = await tokenWith(a)
    t.equal(again.statusCode, 401)
    t.equal(again.json().code, 'AUTH_ASSERTION_REPLAYED', 'second use: AUTH_ASSERTION_REPLAYED')
  })

  const jn = await h.token('jn-civil-affairs')
  const mobile = await h.token('jn-civil-affairs-mobile')
  const nr = await h.token('js-natural-resources')
  const verify = (token: string, i: number) => h.app.inject({
    method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${token}`, ...context() }, payload: person(i),
  })

  await t.test('an unconditional query is answered and signed', async (t) => {
    const res = await verify(jn, 0)
    t.equal(res.statusCode, 200, res.body)
    t.same(res.json(), { match: true })
    t.ok(res.headers['tongban-evidence'], 'with its evidence')
  })

  await t.test("a grant's daily quota holds exactly, and is on the replicas", async (t) => {
    const applied = await h.app.inject({
      method: 'POST', url: '/v1/applications', headers: { authorization: `Bearer ${jn}` },
      payload: { resource: RESOURCE, items: ['properties'], purposes: ['SA-01'], basis: 'scale test', validTo: new Date(Date.now() + 86400_000).toISOString(), dailyQuota: QUOTA },
    })
    t.equal(applied.statusCode, 201, applied.body)
    const decided = await h.app.inject({ method: 'POST', url: `/v1/applications/${applied.json().id}/decision`, headers: { authorization: `Bearer ${nr}` }, payload: { decision: 'approve' } })
    t.equal(decided.statusCode, 200, decided.body)
    const grantId = decided.json().grantId as string
    // 25 at once, under the rate limit: exactly the quota is released.
    const answers = await Promise.all(Array.from({ length: 25 }, (_, i) => h.app.inject({
      method: 'POST', url: `/v1/resources/${encodeURIComponent(RESOURCE)}/query`,
      headers: { authorization: `Bearer ${jn}`, ...context({ 'tongban-case-id': `SCALE-${i}` }) }, payload: person(i),
    })))
    t.same(byStatus(answers), { 200: QUOTA, '429 QUOTA_EXCEEDED': 25 - QUOTA }, `exactly ${QUOTA} released, the rest QUOTA_EXCEEDED`)
    const key = `${h.config.redis.prefix}${quotaKey(grantId, chinaDay(Date.now()), { isCluster: topo.cluster })}`
    const values = await topo.readEverywhere(key)
    t.same(values, values.map(() => String(QUOTA)), `the counter (${key}) is ${QUOTA} on the master and its replica`)
    if (topo.cluster) t.match(key, `{${grantId}}`, "hash-tagged by grant: the script's keys share a slot")
    t.equal(revokedKey(grantId, { isCluster: topo.cluster }).includes(topo.cluster ? `{${grantId}}` : `:${grantId}:`), true)
  })

  await t.test('the per-system rate limit holds across the topology', async (t) => {
    const startSecond = Math.floor(Date.now() / 1000)
    const answers = await Promise.all(Array.from({ length: 120 }, (_, i) => verify(mobile, i)))
    const seconds = Math.floor(Date.now() / 1000) - startSecond + 1
    const tally = byStatus(answers)
    t.same(Object.keys(tally).sort(), ['200', '429 RATE_LIMITED'], `only 200 and RATE_LIMITED (${JSON.stringify(tally)})`)
    t.ok(tally['200'] <= RATE_LIMIT * seconds, `at most ${RATE_LIMIT}/s admitted: ${tally['200']} in ${seconds} s`)
    t.ok(tally['429 RATE_LIMITED'] >= 120 - RATE_LIMIT * seconds, 'the rest refused')
  })

  await t.test('BullMQ jobs run: a bulk batch is chunked, queued and completed', async (t) => {
    const items = Array.from({ length: 12 }, (_, i) => person(i + 50))
    const res = await h.app.inject({
      method: 'POST', url: '/v1/batches', headers: { authorization: `Bearer ${jn}`, ...context({ 'tongban-case-id': 'SCALE-BATCH' }) },
      payload: { service: 'identity', items },
    })
    t.equal(res.statusCode, 202, res.body)
    const id = res.json().id
    const end = Date.now() + 90_000
    let b: any
    for (;;) {
      b = (await h.app.inject({ method: 'GET', url: `/v1/batches/${id}`, headers: { authorization: `Bearer ${jn}` } })).json()
      if (b.status === 'completed' || Date.now() > end) break
      await new Promise((r) => setTimeout(r, 100))
    }
    t.equal(b.status, 'completed', `the batch completed (${JSON.stringify(b.counts ?? b)})`)
  })
}
