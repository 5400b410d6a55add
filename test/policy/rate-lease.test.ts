// The per-system rate limit (src/policy/rate-lease.ts): tokens leased from a real Redis in
// blocks, never more than the limit in a second over all replicas, a 429 RATE_LIMITED that
// is audited, and queries admitted (with one warning, not one per query) when Redis is away.
import t from 'tap'
import { Redis } from 'ioredis'
import { RateLeases, rateKey } from '../../src/policy/rate-lease.js'
import { QuotaAdmissions } from '../../src/policy/quota.js'
import { authorize } from '../../src/policy/authorize.js'
import type { Principal } from '../../src/auth/principal.js'
import { startNode, context, uniqueName, clearRedis, REDIS_URL } from '../helpers/harness.js'
import { person } from '../../dev/providers/population.js'

const prefix = `${uniqueName('rate')}:`
const redis = new Redis(REDIS_URL, { keyPrefix: prefix })
t.teardown(async () => {
  redis.disconnect()
  await clearRedis(prefix)
})

// The counting tests log nothing: Redis is there.
const quiet = { warn() {} }

// A second well away from now, so that keys of different tests never meet.
let base = Math.floor(Date.now() / 1000) * 1000 + 3_600_000
const nextSecond = () => (base += 10_000)

const takeAll = async (leases: RateLeases[], n: number, now: number, system = 'sys-a') => {
  const results = await Promise.all(Array.from({ length: n }, (_, i) => leases[i % leases.length].take(system, now)))
  return results.filter(Boolean).length
}

t.test('one replica: exactly the limit is admitted in a second, the rest refused', async (t) => {
  const leases = new RateLeases(redis, 50, quiet)
  const now = nextSecond()
  t.equal(await takeAll([leases], 80, now), 50)
  t.equal(await leases.take('sys-a', now + 500), false, 'still refused later in the same second')
  t.equal(await leases.take('sys-a', now + 1000), true, 'admitted again in the next second')
  t.equal(await leases.take('sys-b', now), true, 'another system has its own limit')
})

t.test('three replicas together never admit more than the limit', async (t) => {
  const replicas = [new RateLeases(redis, 100, quiet), new RateLeases(redis, 100, quiet), new RateLeases(redis, 100, quiet)]
  for (let round = 0; round < 3; round++) {
    const now = nextSecond()
    // Warm every replica's idea of the rate first: its blocks are then larger than one token.
    await takeAll(replicas, 30, now - 1000)
    const admitted = await takeAll(replicas, 400, now)
    t.ok(admitted <= 100, `round ${round}: ${admitted} ≤ 100`)
    // Blocks shrink near the limit, so little stays unused on one replica.
    t.ok(admitted >= 97, `round ${round}: ${admitted} ≥ 97`)
    t.equal(Number(await redis.get(rateKey('sys-a', Math.floor(now / 1000)))), 100, 'Redis counted the whole limit as leased')
  }
})

t.test('blocks follow the rate of the second before; a quiet system asks Redis once a second', async (t) => {
  const leases = new RateLeases(redis, 1000, quiet)
  const now = nextSecond()
  t.equal(await leases.take('sys-c', now), true)
  t.equal(await redis.get(rateKey('sys-c', now / 1000)), '16', 'a quiet system leases the minimum block (1/64 of the limit)')
  // 15 more from that block: no Redis call, synchronous.
  for (let i = 0; i < 15; i++) t.equal(leases.take('sys-c', now), true)
  t.equal(await redis.get(rateKey('sys-c', now / 1000)), '16')
  t.equal(await takeAll([leases], 384, now, 'sys-c'), 384)
  t.equal(await leases.take('sys-c', now + 1000), true)
  t.equal(await redis.get(rateKey('sys-c', now / 1000 + 1)), '40', 'after 400 in the second before: a tenth of that')
  // 39 more from the block: no Redis call, synchronous.
  for (let i = 0; i < 39; i++) t.equal(leases.take('sys-c', now + 1000), true)
  t.equal(await redis.get(rateKey('sys-c', now / 1000 + 1)), '40')
  t.equal(await leases.take('sys-c', now + 3000), true)
  t.equal(await redis.get(rateKey('sys-c', now / 1000 + 3)), '16', 'after a quiet second: the minimum block again')
  t.ok(Number(await redis.pttl(rateKey('sys-c', now / 1000 + 3))) <= 2000, 'the counter expires')
})

t.test('Redis unreachable: queries admitted, one warning with the count every ten seconds', async (t) => {
  const down = new Redis('redis://127.0.0.1:1', { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null })
  down.on('error', () => {})
  t.teardown(() => down.disconnect())
  let clock = Date.now()
  t.capture(Date, 'now', () => clock)
  const warnings: any[] = []
  const leases = new RateLeases(down, 10, { warn: (o: object) => void warnings.push(o) })
  for (let i = 0; i < 30; i++) t.equal(await leases.take('sys-d'), true, `query ${i} admitted`)
  t.equal(warnings.length, 1, 'one warning for 30 queries')
  t.equal(warnings[0].queries, 1, 'the first query of the outage warns at once')
  clock += 10_000
  t.equal(await leases.take('sys-d'), true)
  t.equal(warnings.length, 2, 'ten seconds later: the next warning')
  t.equal(warnings[1].queries, 30, 'with the queries admitted unchecked since the first')
})

t.test('through the gateway: 429 RATE_LIMITED, problem+json, audited', async (t) => {
  const h = await startNode({ tag: 'ratelimit', env: { TONGBAN_RATE_LIMIT: '5' } })
  t.teardown(() => h.close())
  const token = await h.token('jn-civil-affairs')
  const verify = (attempt: number, i: number) =>
    h.app.inject({
      method: 'POST',
      url: '/v1/verify/identity',
      headers: { authorization: `Bearer ${token}`, ...context({ 'tongban-case-id': `JN-RATE-${attempt}-${i}` }) },
      payload: { idNumber: person(i).idNumber, name: person(i).name },
    })
  // Eight queries within one second: start early in a second, and try again (a new second,
  // new case ids) if a stalled machine let them run into the next one.
  let attempt = 0
  let answers: Awaited<ReturnType<typeof verify>>[] = []
  for (; attempt < 3; attempt++) {
    await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + 20))
    const second = Math.floor(Date.now() / 1000)
    answers = await Promise.all(Array.from({ length: 8 }, (_, i) => verify(attempt, i)))
    if (Math.floor(Date.now() / 1000) === second) break
  }
  t.ok(attempt < 3, 'eight queries fell into one second')
  const ok = answers.filter((a) => a.statusCode === 200)
  const limited = answers.filter((a) => a.statusCode === 429)
  t.equal(ok.length, 5, 'the limit')
  t.equal(limited.length, 3, 'the rest')
  for (const a of limited) {
    t.equal(a.headers['content-type'], 'application/problem+json; charset=utf-8')
    t.equal(a.json().code, 'RATE_LIMITED')
  }
  const rows = await h.query('SELECT decision, reason FROM audit_records WHERE case_id LIKE $1', [`JN-RATE-${attempt}-%`])
  t.equal(rows.filter((r) => r.decision === 'allowed').length, 5)
  t.equal(rows.filter((r) => r.decision === 'denied' && r.reason === 'RATE_LIMITED').length, 3, 'every refusal audited with its code')
})

t.test('Redis away, through the authorize step: queries are admitted, the skipped limit logged once', async (t) => {
  const h = await startNode({ tag: 'ratedown' })
  t.teardown(() => h.close())
  const down = new Redis('redis://127.0.0.1:1', { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null })
  down.on('error', () => {})
  t.teardown(() => down.disconnect())
  const warnings: object[] = []
  const deps = { grants: h.app.grants, quota: new QuotaAdmissions(down), rate: new RateLeases(down, 5, { warn: (o: object) => void warnings.push(o) }) }
  const identity = h.app.catalog.get('101001/00001')!
  const principal: Principal = { system: 'jn-civil-affairs', department: '11320115MB0000012H', region: '320115', tier: 'county', roles: ['consumer'] }
  for (let i = 0; i < 50; i++) {
    const a = await authorize(deps, identity, principal, 'SA-01')
    t.ok(a.items.has('match'), `query ${i} admitted`)
  }
  t.equal(warnings.length, 1, 'one warning for 50 queries (the next would come ten seconds later, with the count)')
})
