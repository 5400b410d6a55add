// The replay memory across a Redis restart without persistence: a node on a redis-server of
// the test's own, which the test kills and starts again. An assertion used before the restart
// must not buy a second token after it (the jti is forgotten, the epoch is not).
import t from 'tap'
import { createSigner } from 'fast-jwt'
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { startNode, clientKey } from '../helpers/harness.js'
import { CLIENT_ASSERTION_TYPE } from '../../packages/client/src/assertion.js'
import { ReplayStore, EPOCH_ALLOWANCE_MS } from '../../src/auth/replay-store.js'
import { startOwnRedis } from '../helpers/own-redis.js'

const own = await startOwnRedis()
t.teardown(() => own.close())

async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

t.test('token endpoint: an assertion used before a Redis restart is refused after it; a fresh one works', async (t) => {
  const h = await startNode({ tag: 'replayrs', env: { TONGBAN_REDIS_URL: own.url } })
  t.teardown(() => h.close())
  const tokenUrl = `${h.config.node.publicUrl}/v1/oauth/token`
  const requestToken = (client_assertion: string) =>
    h.app.inject({
      method: 'POST',
      url: '/v1/oauth/token',
      payload: { grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion },
    })
  const now = Math.floor(Date.now() / 1000)
  const key = clientKey('jn-civil-affairs')
  const claims = { iss: 'jn-civil-affairs', sub: 'jn-civil-affairs', aud: tokenUrl }
  // An ordinary assertion, valid for a minute, captured.
  const captured = createSigner({ key, algorithm: 'RS256' })({ ...claims, jti: randomUUID(), iat: now, exp: now + 60 })
  // iat is required: without it nothing says whether the assertion predates the epoch.
  const noIat = createSigner({ key, algorithm: 'RS256', noTimestamp: true })({ ...claims, jti: randomUUID(), exp: now + 50 })
  const refused = await requestToken(noIat)
  t.equal(refused.statusCode, 401)
  t.equal(refused.json().code, 'AUTH_ASSERTION_INVALID', 'an assertion without iat is refused')

  t.equal((await requestToken(captured)).statusCode, 200)
  t.equal((await requestToken(captured)).json().code, 'AUTH_ASSERTION_REPLAYED', 'before the restart: the jti is known')

  // Assertions issued within the allowance before a restart are still taken (clock skew):
  // the restart comes after it.
  await until('the allowance has passed since the assertion was issued', () => Date.now() > now * 1000 + EPOCH_ALLOWANCE_MS + 500)
  await own.restart()
  await until('the node reconnects to Redis', () => h.app.redis.status === 'ready')
  const probe = new Redis(own.url)
  t.teardown(() => probe.disconnect())
  t.equal(await probe.exists(`${h.config.redis.prefix}jti:jn-civil-affairs:${JSON.parse(Buffer.from(captured.split('.')[1], 'base64url').toString()).jti}`), 0, 'the restart forgot the jti')

  const again = await requestToken(captured)
  t.equal(again.statusCode, 401, 'the captured assertion is refused after the restart')
  t.match(again.headers['content-type'], /^application\/problem\+json/)
  t.equal(again.json().code, 'AUTH_ASSERTION_BEFORE_REPLAY_WINDOW')
  const fresh = await requestToken(h.assertion('jn-civil-affairs'))
  t.equal(fresh.statusCode, 200, 'a fresh assertion gets a token')
  const rows = await h.query("SELECT reason FROM audit_records WHERE operation = 'token' AND reason = 'AUTH_ASSERTION_BEFORE_REPLAY_WINDOW'")
  t.equal(rows.length, 1, 'the refusal is audited')
})

t.test('the replay store itself (what node links use too): fresh, replayed, before the epoch, across a restart', async (t) => {
  const redis = new Redis(own.url, { keyPrefix: `t_replay_${process.pid}:`, maxRetriesPerRequest: 1, enableOfflineQueue: false })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  await until('connected', () => redis.status === 'ready')
  let clock = Date.now()
  const warnings: string[] = []
  const store = new ReplayStore(redis, { now: () => clock, log: { warn: (_o, msg) => warnings.push(msg ?? '') } })
  const issued = clock
  t.equal(await store.claim('tiers:jti:link-1', issued, 60_000), 'fresh')
  t.equal(await store.claim('tiers:jti:link-1', issued, 60_000), 'replayed')
  const firstEpoch = store.epoch!
  t.ok(firstEpoch <= clock)

  clock += 30_000 // the restart comes half a minute later
  await own.restart()
  await until('reconnected, epoch renewed', () => redis.status === 'ready' && store.epoch !== firstEpoch)
  t.equal(store.epoch, clock, 'a new epoch once Redis is back')
  t.ok(warnings.some((w) => /started anew/.test(w)), 'the new epoch is logged')
  t.equal(await store.claim('tiers:jti:link-1', issued, 60_000), 'before-epoch', 'the link used before the restart')
  t.equal(await store.claim('tiers:jti:link-2', clock - EPOCH_ALLOWANCE_MS - 1000, 60_000), 'before-epoch', 'older than the allowance')
  t.equal(await store.claim('tiers:jti:link-3', clock - EPOCH_ALLOWANCE_MS + 1000, 60_000), 'fresh', 'within the allowance (clock skew)')
  t.equal(await store.claim('tiers:jti:link-4', clock, 60_000), 'fresh', 'a fresh link')
  t.equal(await store.claim('tiers:jti:link-4', clock, 60_000), 'replayed')
})

t.test('the epoch is checked in the same script as the jti: a loss the client has not noticed changes nothing', async (t) => {
  const redis = new Redis(own.url, { keyPrefix: `t_replay2_${process.pid}:`, maxRetriesPerRequest: 1, enableOfflineQueue: false })
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  await until('connected', () => redis.status === 'ready')
  let clock = Date.now()
  const store = new ReplayStore(redis, { now: () => clock })
  const issued = clock
  t.equal(await store.claim('jti:c:1', issued, 60_000), 'fresh')
  // Every key vanishes on the same connection: no reconnect, no 'ready' event to learn from.
  await redis.flushall()
  clock += 30_000
  t.equal(await store.claim('jti:c:1', issued, 60_000), 'before-epoch')
  t.equal(store.epoch, clock)
})
