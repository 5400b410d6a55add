// POST /v1/oauth/token (client credentials + private_key_jwt) and access-token checks.
import t, { type Test } from 'tap'
import { createSigner } from 'fast-jwt'
import { randomUUID } from 'node:crypto'
import { startNode, clientKey, context } from '../helpers/harness.js'
import { CLIENT_ASSERTION_TYPE } from '../../packages/client/src/assertion.js'

const h = await startNode({ tag: 'token' })
t.teardown(() => h.close())
const tokenUrl = `${h.config.node.publicUrl}/v1/oauth/token`

const requestToken = (client_assertion: string, extra: Record<string, string> = {}) =>
  h.app.inject({
    method: 'POST',
    url: '/v1/oauth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion, ...extra }).toString(),
  })

const signWith = (keyPem: string, claims: Record<string, unknown>, opts: { expiresIn?: number } = {}) =>
  createSigner({ key: keyPem, algorithm: 'RS256', ...(opts.expiresIn !== undefined ? { expiresIn: opts.expiresIn } : {}) })(claims)

const claimsFor = (clientId: string, over: Record<string, unknown> = {}) => ({
  iss: clientId, sub: clientId, aud: tokenUrl, jti: randomUUID(), exp: Math.floor(Date.now() / 1000) + 60, ...over,
})

async function expectRefused(t: Test, res: Awaited<ReturnType<typeof requestToken>>, status: number, code: string) {
  t.equal(res.statusCode, status, code)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  t.equal(res.json().code, code)
}

t.test('a valid assertion gets a short-lived access token naming system, department, region, tier, roles', async (t) => {
  const res = await requestToken(h.assertion('jn-civil-affairs'))
  t.equal(res.statusCode, 200)
  const body = res.json()
  t.equal(body.token_type, 'Bearer')
  t.equal(body.expires_in, h.config.token.ttlSeconds)
  t.equal(res.headers['cache-control'], 'no-store')
  const payload = JSON.parse(Buffer.from(body.access_token.split('.')[1], 'base64url').toString())
  t.match(payload, { sub: 'jn-civil-affairs', dept: '11320115MB0000012H', region: '320115', tier: 'county', roles: ['consumer'], iss: '320000', aud: '320000' })
  t.ok(payload.exp - payload.iat <= h.config.token.ttlSeconds)
  const header = JSON.parse(Buffer.from(body.access_token.split('.')[0], 'base64url').toString())
  t.equal(header.kid, h.app.identity.kid)
})

t.test('the node id is accepted as audience too; JSON bodies too', async (t) => {
  const res = await h.app.inject({
    method: 'POST',
    url: '/v1/oauth/token',
    payload: { grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: h.assertion('nj-housing', { audience: '320000' }) },
  })
  t.equal(res.statusCode, 200)
})

t.test('refusals, each with its code', async (t) => {
  const key = clientKey('jn-civil-affairs')
  await expectRefused(t, await requestToken(signWith(key, claimsFor('jn-civil-affairs', { exp: Math.floor(Date.now() / 1000) - 120 }))), 401, 'AUTH_ASSERTION_EXPIRED')
  await expectRefused(t, await requestToken(h.assertion('jn-civil-affairs', { audience: 'https://elsewhere.example/token' })), 401, 'AUTH_ASSERTION_WRONG_AUDIENCE')
  await expectRefused(t, await requestToken(h.assertion('jn-civil-affairs', { keyPem: clientKey('nj-housing') })), 401, 'AUTH_ASSERTION_BAD_SIGNATURE')
  await expectRefused(t, await requestToken(signWith(key, claimsFor('jn-civil-affairs', { sub: 'nj-housing' }))), 401, 'AUTH_ASSERTION_INVALID')
  await expectRefused(t, await requestToken(signWith(key, claimsFor('no-such-system'))), 401, 'AUTH_UNKNOWN_CLIENT')
  await expectRefused(t, await requestToken(signWith(key, claimsFor('jn-civil-affairs', { exp: Math.floor(Date.now() / 1000) + 3600 }))), 401, 'AUTH_ASSERTION_LIFETIME')
  await expectRefused(t, await requestToken(signWith(key, claimsFor('jn-civil-affairs', { jti: undefined }))), 401, 'AUTH_ASSERTION_INVALID')
  await expectRefused(t, await requestToken('not.a.jwt'), 401, 'AUTH_ASSERTION_MALFORMED')
  await expectRefused(t, await requestToken(h.assertion('jn-civil-affairs'), { grant_type: 'password' }), 400, 'AUTH_UNSUPPORTED_GRANT_TYPE')
  await expectRefused(t, await requestToken(h.assertion('jn-civil-affairs'), { client_assertion_type: 'x' }), 400, 'AUTH_ASSERTION_TYPE')
  const res = await h.app.inject({ method: 'POST', url: '/v1/oauth/token', payload: {} })
  await expectRefused(t, res, 400, 'INPUT_INVALID')
})

t.test('an assertion is good for one token only (jti kept in Redis)', async (t) => {
  const a = h.assertion('jn-civil-affairs')
  t.equal((await requestToken(a)).statusCode, 200)
  await expectRefused(t, await requestToken(a), 401, 'AUTH_ASSERTION_REPLAYED')
  const keys = await h.app.redis.keys(`${h.config.redis.prefix}jti:*`)
  t.ok(keys.length >= 1, 'nonce stored under the run prefix')
})

t.test('access tokens: missing, forged, expired, wrong issuer are 401 with codes', async (t) => {
  const call = (authorization?: string) =>
    h.app.inject({
      method: 'POST',
      url: '/v1/verify/identity',
      headers: { ...(authorization ? { authorization } : {}), ...context() },
      payload: { idNumber: '11010519491231002X', name: '张三' },
    })
  await expectRefused(t, await call(), 401, 'AUTH_TOKEN_MISSING')
  await expectRefused(t, await call('Basic abc'), 401, 'AUTH_TOKEN_MISSING')
  const claims = { sub: 'jn-civil-affairs', dept: '11320115MB0000012H', region: '320115', tier: 'county', roles: ['consumer'], iss: '320000', aud: '320000' }
  // Signed by a departmental key, not the node's: forged.
  await expectRefused(t, await call(`Bearer ${signWith(clientKey('jn-civil-affairs'), claims, { expiresIn: 60_000 })}`), 401, 'AUTH_TOKEN_INVALID')
  // Signed by the node but long expired.
  const expired = signWith(h.app.identity.keyPem, { ...claims, iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 })
  await expectRefused(t, await call(`Bearer ${expired}`), 401, 'AUTH_TOKEN_EXPIRED')
  const otherIssuer = signWith(h.app.identity.keyPem, { ...claims, iss: '100000' }, { expiresIn: 60_000 })
  await expectRefused(t, await call(`Bearer ${otherIssuer}`), 401, 'AUTH_TOKEN_INVALID')
  // alg=none must never pass.
  const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ ...claims, exp: 9999999999 })).toString('base64url')}.`
  await expectRefused(t, await call(`Bearer ${none}`), 401, 'AUTH_TOKEN_INVALID')
})

t.test('failed and successful logins are in the sealed audit log', async (t) => {
  const rows = await h.query("SELECT decision, reason, consumer_system FROM audit_records WHERE operation = 'token'")
  t.ok(rows.some((r) => r.decision === 'allowed' && r.consumer_system === 'jn-civil-affairs'))
  t.ok(rows.some((r) => r.reason === 'AUTH_ASSERTION_REPLAYED'))
  t.ok(rows.some((r) => r.reason === 'AUTH_UNKNOWN_CLIENT'))
})

t.test('Redis down: the token endpoint fails closed (no replay check, no token)', async (t) => {
  const { startNode: start } = await import('../helpers/harness.js')
  const dead = await start({ tag: 'tokredis', env: { TONGBAN_REDIS_URL: 'redis://127.0.0.1:1' } })
  t.teardown(() => dead.close())
  const res = await dead.app.inject({
    method: 'POST',
    url: '/v1/oauth/token',
    payload: { grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: dead.assertion('jn-civil-affairs') },
  })
  await expectRefused(t, res, 503, 'REPLAY_CHECK_UNAVAILABLE')
})
