// Redis unreachable during load (through a TCP proxy the test cuts). Documented behaviour
// per share type (docs/performance.md, "Faults"):
// - unconditional resources keep answering (the per-system rate limit is skipped, logged);
// - conditional resources fail closed: 503 QUOTA_UNAVAILABLE — nothing is released under a
//   grant without being counted against its quota;
// - the token endpoint fails closed: 503 REPLAY_CHECK_UNAVAILABLE (a client assertion could
//   otherwise be used twice).
// When Redis is back, everything answers again on its own. The grant's counter holds every
// conditional answer released: exactly, but for one script call that Redis ran while the cut
// dropped its reply (those queries were counted and refused with 503, never released).
import t from 'tap'
import { Redis } from 'ioredis'
import { REDIS_URL, startNode } from '../helpers/harness.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { signClientAssertion, CLIENT_ASSERTION_TYPE } from '../../packages/client/src/assertion.js'
import { clientKey } from '../helpers/harness.js'
import { chinaDay, quotaKey } from '../../src/policy/quota.js'
import { samplePersons } from '../../dev/providers/population.js'
import { checkAnswersAudited, loadLoop, sleep, startGateway, tally, type Answer } from './helpers.js'

const people = samplePersons(100)
const body = (i: number) => ({ idNumber: people[i % 100].idNumber, name: people[i % 100].name })

t.test('Redis cut under load: fail closed where counting is needed, recover by itself', async (t) => {
  const h = await startNode({ tag: 'redisfault' })
  t.teardown(() => h.close())
  const jn = await h.token('jn-civil-affairs')
  const nr = await h.token('js-natural-resources')
  const applied = await h.app.inject({
    method: 'POST', url: '/v1/applications', headers: { authorization: `Bearer ${jn}` },
    payload: { resource: '103002/00002', items: ['properties'], purposes: ['SA-01'], basis: 'fault test', validTo: new Date(Date.now() + 86400_000).toISOString(), dailyQuota: 1_000_000 },
  })
  const decided = await h.app.inject({ method: 'POST', url: `/v1/applications/${applied.json().id}/decision`, headers: { authorization: `Bearer ${nr}` }, payload: { decision: 'approve' } })
  t.equal(decided.statusCode, 200, 'grant approved')
  const grantId = decided.json().grantId as string

  const proxy = await startTcpProxy(Number(new URL(REDIS_URL).port || 6379))
  t.teardown(() => proxy.close())
  const viaProxy = new URL(REDIS_URL)
  viaProxy.port = String(proxy.port)
  const gw = await startGateway(h, 'redis', { TONGBAN_REDIS_URL: viaProxy.toString() })
  t.teardown(() => gw.stop())

  let stop = false
  const until = () => !stop
  const unconditional = loadLoop({ base: gw.base, path: '/v1/verify/identity', token: jn, body, concurrency: 6, until })
  const conditional = loadLoop({ base: gw.base, path: `/v1/resources/${encodeURIComponent('103002/00002')}/query`, token: jn, body, concurrency: 6, until })
  const tokens: Answer[] = []
  const tokenLoop = (async () => {
    while (!stop) {
      const res = await fetch(`${gw.base}/v1/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE,
          client_assertion: signClientAssertion({ clientId: 'jn-civil-affairs', keyPem: clientKey('jn-civil-affairs'), audience: h.config.node.publicUrl + '/v1/oauth/token' }),
        }),
      }).catch(() => null)
      const text = res ? await res.text() : ''
      tokens.push({ status: res?.status ?? 0, code: res && res.status >= 400 ? JSON.parse(text).code : undefined, body: '', ms: 0, at: Date.now() })
      await sleep(150)
    }
  })()

  await sleep(1500)
  const cutAt = Date.now()
  await proxy.cut()
  await sleep(3000)
  const restoredAt = Date.now()
  await proxy.restore()
  await sleep(6000)
  stop = true
  const [u, c] = await Promise.all([unconditional, conditional, tokenLoop])
  const phase = (as: Answer[], from: number, to: number) => tally(as.filter((a) => a.at > from && a.at < to))
  t.comment(`unconditional: ${JSON.stringify(tally(u))}`)
  t.comment(`conditional:   ${JSON.stringify(tally(c))}`)
  t.comment(`token:         ${JSON.stringify(tally(tokens))}`)

  // While Redis is gone (a little after the cut, a little before the restore).
  const down = (as: Answer[]) => phase(as, cutAt + 300, restoredAt)
  t.same(Object.keys(down(u)), ['200'], 'unconditional resources keep answering 200')
  t.same(Object.keys(down(c)), ['503 QUOTA_UNAVAILABLE'], 'conditional resources: 503 QUOTA_UNAVAILABLE only')
  t.same(Object.keys(down(tokens)), ['503 REPLAY_CHECK_UNAVAILABLE'], 'token endpoint: 503 REPLAY_CHECK_UNAVAILABLE only')
  for (const [name, as] of [['unconditional', u], ['conditional', c], ['token', tokens]] as const) {
    const odd = as.filter((a) => a.status !== 200 && a.status !== 503)
    t.same(tally(odd), {}, `${name}: no status but 200 and 503`)
  }

  // Recovery, on its own: the last seconds are all 200 again.
  const back = (as: Answer[]) => phase(as, restoredAt + 3000, Infinity)
  t.same(Object.keys(back(c)), ['200'], 'conditional queries answer 200 again within 3 s')
  t.same(Object.keys(back(tokens)), ['200'], 'tokens are issued again within 3 s')
  t.same(Object.keys(back(u)), ['200'], 'unconditional still 200')

  const audited = await checkAnswersAudited(h, [...u, ...c])
  t.same(audited.problems, [], `every 200 has its record (${audited.matched})`)
  // Nothing released under the grant went uncounted.
  const redis = new Redis(REDIS_URL)
  const counted = Number(await redis.get(`${h.config.redis.prefix}${quotaKey(grantId, chinaDay(Date.now()))}`))
  redis.disconnect()
  const released = c.filter((a) => a.status === 200).length
  t.ok(counted >= released, `nothing released uncounted: the grant's counter (${counted}) ≥ the conditional answers released (${released})`)
  // Calls Redis ran while the cut dropped their replies count their queries without
  // releasing them (at most the six the load keeps in flight): counted, never over-released.
  t.ok(counted - released <= 6, `counted but not released: ${counted - released} (at most the six in flight)`)
  t.equal((await gw.stop()).code, 0, 'exits 0')
})
