// Attacks on access tokens and client assertions, each refused with its own code and each
// attempt audited (a denied record with the code as reason): alg none, HS256 keyed with the
// node's public key, expired, not yet valid, wrong issuer, wrong audience, a tampered
// payload, a token signed by another node's key (a second dev CA and node made here), a
// reused client assertion, and a system whose certificate was revoked (`tongban pki revoke`,
// run as the operator would).
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { createHmac, createPrivateKey, sign as rsaSign } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startNode, context, ROOT } from '../helpers/harness.js'
import { ensureDevPki } from '../../dev/pki.js'
import { CLIENT_ASSERTION_TYPE } from '../../packages/client/src/assertion.js'
import { person } from '../../dev/providers/population.js'

const h = await startNode({ tag: 'tokatk' })
t.teardown(() => h.close())

const b64 = (v: object | string | Buffer) => Buffer.from(typeof v === 'string' || Buffer.isBuffer(v) ? v : JSON.stringify(v)).toString('base64url')
const nodeKey = readFileSync(h.config.pki.keyFile, 'utf8')
const nodeCert = readFileSync(h.config.pki.certFile, 'utf8')
const nodeId = h.config.node.id
const now = () => Math.floor(Date.now() / 1000)
const claims = (over: Record<string, unknown> = {}) => ({
  sub: 'jn-civil-affairs', dept: '11320115MB0000012H', region: '320115', tier: 'county', roles: ['consumer'],
  iss: nodeId, aud: nodeId, iat: now(), exp: now() + 300, ...over,
})
const rs256 = (payload: object, keyPem = nodeKey, header: object = { alg: 'RS256', typ: 'JWT', kid: h.app.identity.kid }) => {
  const input = `${b64(header)}.${b64(payload)}`
  return `${input}.${rsaSign('sha256', Buffer.from(input), createPrivateKey(keyPem)).toString('base64url')}`
}

const p = person(3)
let n = 0
async function query(token: string, label: string) {
  const requestId = `atk-${label}-${n++}`.replace(/[^A-Za-z0-9._:-]/g, '-').slice(0, 64)
  const res = await h.app.inject({
    method: 'POST', url: '/v1/verify/identity',
    headers: { authorization: `Bearer ${token}`, 'tongban-request-id': requestId, ...context() },
    payload: { idNumber: p.idNumber, name: p.name },
  })
  return { res, requestId }
}

async function audited(requestId: string) {
  const rows = await h.query('SELECT decision, reason, consumer_system FROM audit_records WHERE client_request_id = $1', [requestId])
  return rows
}

async function expectRefused(t: Test, token: string, label: string, code: string) {
  const { res, requestId } = await query(token, label)
  t.equal(res.statusCode, 401, `${label}: 401`)
  t.match(res.headers['content-type'], /application\/problem\+json/)
  t.equal(res.json().code, code, `${label}: ${code}`)
  t.notMatch(res.body, /"match"/, 'nothing released')
  const rows = await audited(requestId)
  t.equal(rows.length, 1, `${label}: the attempt is audited`)
  t.same(rows[0] && { decision: rows[0].decision, reason: rows[0].reason }, { decision: 'denied', reason: code })
}

t.test('a proper token works (control)', async (t) => {
  const { res } = await query(rs256(claims()), 'control')
  t.equal(res.statusCode, 200, res.body)
})

t.test('alg none', async (t) => {
  const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`
  await expectRefused(t, token, 'alg-none', 'AUTH_TOKEN_INVALID')
  // Also with a junk signature part and with "None" spelled otherwise.
  await expectRefused(t, `${b64({ alg: 'none' })}.${b64(claims())}.${b64('x')}`, 'alg-none-sig', 'AUTH_TOKEN_INVALID')
  await expectRefused(t, `${b64({ alg: 'NONE' })}.${b64(claims())}.`, 'alg-NONE', 'AUTH_TOKEN_INVALID')
})

t.test('HS256 keyed with the node public key (algorithm confusion)', async (t) => {
  const publicKeyPem = h.app.identity.cert.publicKey.export({ type: 'spki', format: 'pem' }) as string
  for (const [label, secret] of [['hs256-spki', publicKeyPem], ['hs256-cert', nodeCert]] as const) {
    const input = `${b64({ alg: 'HS256', typ: 'JWT', kid: h.app.identity.kid })}.${b64(claims())}`
    const token = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
    await expectRefused(t, token, label, 'AUTH_TOKEN_INVALID')
  }
})

t.test('expired and not yet valid', async (t) => {
  await expectRefused(t, rs256(claims({ iat: now() - 900, exp: now() - 600 })), 'expired', 'AUTH_TOKEN_EXPIRED')
  await expectRefused(t, rs256(claims({ nbf: now() + 600 })), 'not-yet-valid', 'AUTH_TOKEN_NOT_YET_VALID')
})

t.test('wrong issuer, wrong audience, tampered payload', async (t) => {
  await expectRefused(t, rs256(claims({ iss: '320100' })), 'wrong-iss', 'AUTH_TOKEN_INVALID')
  await expectRefused(t, rs256(claims({ aud: '320100' })), 'wrong-aud', 'AUTH_TOKEN_INVALID')
  await expectRefused(t, rs256(claims({ aud: undefined })), 'no-aud', 'AUTH_TOKEN_INVALID')
  await expectRefused(t, rs256(claims({ iss: undefined })), 'no-iss', 'AUTH_TOKEN_INVALID')
  await expectRefused(t, rs256(claims({ exp: undefined })), 'no-exp', 'AUTH_TOKEN_INVALID')
  const [hd, , sig] = rs256(claims()).split('.')
  await expectRefused(t, `${hd}.${b64(claims({ roles: ['consumer', 'auditor'] }))}.${sig}`, 'tampered', 'AUTH_TOKEN_INVALID')
})

t.test('a token signed by another node (another CA) is refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tongban-othernode-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const other = await ensureDevPki({ dir, nodeId, nodeName: 'an impostor with the same node id', systems: [] })
  const otherKey = readFileSync(other.node.key, 'utf8')
  // Same node id, same claims, same kid header: only the key differs.
  await expectRefused(t, rs256(claims(), otherKey), 'other-node', 'AUTH_TOKEN_INVALID')
})

const tokenRequest = (assertion: string, requestId: string) =>
  h.app.inject({
    method: 'POST', url: '/v1/oauth/token', headers: { 'tongban-request-id': requestId },
    payload: { grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: assertion },
  })

t.test('a client assertion is good for one token only', async (t) => {
  const assertion = h.assertion('nj-housing')
  const first = await tokenRequest(assertion, 'atk-assertion-first')
  t.equal(first.statusCode, 200)
  const again = await tokenRequest(assertion, 'atk-assertion-again')
  t.equal(again.statusCode, 401)
  t.equal(again.json().code, 'AUTH_ASSERTION_REPLAYED')
  t.notOk(again.json().access_token)
  const rows = await audited('atk-assertion-again')
  t.same(rows.map((r) => [r.decision, r.reason, r.consumer_system]), [['denied', 'AUTH_ASSERTION_REPLAYED', 'nj-housing']], 'the replay is audited, naming the client')
})

t.test('a revoked client certificate gets no token, and its tokens stop working', async (t) => {
  const held = await h.token('jn-civil-affairs-mobile')
  const ok = await query(held, 'before-revoke')
  t.equal(ok.res.statusCode, 200, 'works before the revocation')

  // The operator's command, against this node's database and Redis.
  const cli = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'pki', 'revoke', 'jn-civil-affairs-mobile', '--reason', 'key compromised (test)'], {
    cwd: ROOT, env: { ...process.env, ...h.env }, encoding: 'utf8',
  })
  t.equal(cli.status, 0, `tongban pki revoke: ${cli.stdout}${cli.stderr}`)
  t.match(cli.stdout, /revoked: jn-civil-affairs-mobile/)
  const [row] = await h.query("SELECT client_id, reason FROM revoked_certs WHERE client_id = 'jn-civil-affairs-mobile'")
  t.same(row, { client_id: 'jn-civil-affairs-mobile', reason: 'key compromised (test)' })

  // The registry reloads on the bus message; give it a moment.
  let res
  for (let i = 0; i < 50; i++) {
    res = await tokenRequest(h.assertion('jn-civil-affairs-mobile'), `atk-revoked-${i}`)
    if (res.statusCode !== 200) break
    await new Promise((r) => setTimeout(r, 100))
  }
  t.equal(res!.statusCode, 401)
  t.equal(res!.json().code, 'AUTH_CLIENT_CERT_REVOKED', 'the token endpoint refuses the revoked certificate')
  const denied = await h.query("SELECT decision, reason FROM audit_records WHERE client_request_id LIKE 'atk-revoked-%' AND decision = 'denied'")
  t.same(denied, [{ decision: 'denied', reason: 'AUTH_CLIENT_CERT_REVOKED' }], 'audited')

  await expectRefused(t, held, 'revoked-held-token', 'AUTH_CLIENT_CERT_REVOKED')
  const again = await tokenRequest(h.assertion('jn-civil-affairs'), 'atk-other-system')
  t.equal(again.statusCode, 200, 'other systems are not affected')

  const twice = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'pki', 'revoke', 'jn-civil-affairs-mobile'], { cwd: ROOT, env: { ...process.env, ...h.env }, encoding: 'utf8' })
  t.equal(twice.status, 0)
  t.match(twice.stdout, /already revoked/)
  const unknown = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'pki', 'revoke', 'no-such-system'], { cwd: ROOT, env: { ...process.env, ...h.env }, encoding: 'utf8' })
  t.equal(unknown.status, 1, 'an unknown client id is an error')
})
