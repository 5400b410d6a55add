// Daily quotas of grants (src/policy/quota.ts) against a real Redis: exact under concurrency,
// queries of one grant asking in the same turn coalesced into one script call, overlapping
// calls still first come first served, the revocation marker seen by every call, and a rejection (the caller fails closed) when Redis is away.
import t from 'tap'
import { Redis } from 'ioredis'
import { QuotaAdmissions, chinaDay, quotaKey, revokedKey } from '../../src/policy/quota.js'
import { uniqueName, clearRedis, REDIS_URL } from '../helpers/harness.js'

const prefix = `${uniqueName('quota')}:`
const redis = new Redis(REDIS_URL, { keyPrefix: prefix })
t.teardown(async () => {
  redis.disconnect()
  await clearRedis(prefix)
})

const quotas = new QuotaAdmissions(redis)
// Count the script calls (the calls still go to Redis).
let calls = 0
const call = redis.tongbanAdmit.bind(redis)
redis.tongbanAdmit = (...args: Parameters<typeof call>) => {
  calls++
  return call(...args)
}
const counter = async (grant: string) => Number(await redis.get(quotaKey(grant, chinaDay(Date.now()))))

t.test('100 concurrent queries against a quota of 30: exactly 30, the first ones, in one call', async (t) => {
  calls = 0
  const results = await Promise.all(Array.from({ length: 100 }, () => quotas.admit('g-1', 30)))
  t.equal(results.filter((r) => r.ok).length, 30)
  t.ok(results.slice(0, 30).every((r) => r.ok), 'the first ones asking are admitted')
  t.ok(results.slice(30).every((r) => !r.ok && r.why === 'quota'), 'the rest: quota')
  t.equal(await counter('g-1'), 30, 'the counter holds what was admitted, nothing refused')
  t.equal(calls, 1, 'asked in one turn of the event loop: one script call')
  t.ok(Number(await redis.ttl(quotaKey('g-1', chinaDay(Date.now())))) > 86400, 'the counter expires after the day')
  const again = await quotas.admit('g-1', 30)
  t.same(again, { ok: false, why: 'quota' })
  t.equal(await counter('g-1'), 30, 'a refusal takes nothing')
  t.same(await quotas.admit('g-1', 31), { ok: true }, 'a raised quota admits again')
})

t.test('grants count apart', async (t) => {
  const [a, b] = await Promise.all([quotas.admit('g-2', 1), quotas.admit('g-3', 1)])
  t.ok(a.ok && b.ok)
  t.equal(await counter('g-2'), 1)
  t.equal(await counter('g-3'), 1)
})

t.test('queries of later turns overlap in flight and are still admitted in order', async (t) => {
  calls = 0
  const results: Promise<{ ok: boolean }>[] = []
  for (let i = 0; i < 60; i++) {
    results.push(quotas.admit('g-6', 25))
    await new Promise((r) => setImmediate(r)) // the next query asks in a turn of its own
  }
  const settled = await Promise.all(results)
  t.ok(calls > 1, `${calls} script calls, several in flight at once`)
  t.same(settled.map((r) => r.ok), Array.from({ length: 60 }, (_, i) => i < 25), 'the first 25 admitted, the rest refused')
  t.equal(await counter('g-6'), 25)
})

t.test('a revocation binds every call made after it, gathered ones included', async (t) => {
  t.same(await quotas.admit('g-4', 100), { ok: true })
  // One call sent, more gathered for the next; the marker lands before the gathered ones go.
  const first = quotas.admit('g-4', 100)
  await new Promise((r) => setImmediate(r))
  const waiting = Array.from({ length: 5 }, () => quotas.admit('g-4', 100))
  await redis.set(revokedKey('g-4'), '1')
  t.same(await first, { ok: true }, 'decided before the marker')
  for (const w of await Promise.all(waiting)) t.same(w, { ok: false, why: 'revoked' })
  t.equal(await counter('g-4'), 2, 'nothing counted for refused queries')
})

t.test('Redis unreachable: every query asking is rejected', async (t) => {
  const down = new Redis('redis://127.0.0.1:1', { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => null })
  down.on('error', () => {})
  const q = new QuotaAdmissions(down)
  const results = await Promise.allSettled(Array.from({ length: 3 }, () => q.admit('g-5', 10)))
  t.ok(results.every((r) => r.status === 'rejected'))
  down.disconnect()
})
