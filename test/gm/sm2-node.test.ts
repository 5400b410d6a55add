// An SM2-SM3 node end to end (docs/gm.md): a system with an SM2 certificate gets a token with
// an SM2SM3 client assertion, asks a verification, and the answer's evidence (format v2:
// SM3 digests, SM3 Merkle tree, SM2-signed checkpoint) is verified by the gateway's verifier,
// the SDK (over real HTTP) and the CLI; a tampered answer fails each of them; forged SM2
// assertions are refused; v1 evidence of an RSA node in the same run still verifies.
import t from 'tap'
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startNode, context, ROOT, type Harness } from '../helpers/harness.js'
import { samplePersons } from '../../dev/providers/population.js'
import { generateSm2KeyPair, sm2PrivateKeyPem } from '../../src/pki/sm2-x509.js'
import { checkpointHash, decodeEvidence, digest, verifyEvidence } from '../../src/evidence/evidence.js'
import { verifySignature } from '../../src/pki/suites.js'
import { jcs } from '../../src/evidence/jcs.js'
import { run as evidenceCli } from '../../src/cli/evidence.js'
import { TongbanClient, EvidenceVerifier } from '../../packages/client/src/index.js'
import { signJwt, CLIENT_ASSERTION_TYPE } from '../../packages/client/src/assertion.js'
import { createHash, randomUUID } from 'node:crypto'

t.setTimeout(240_000)

const SM2 = join(ROOT, 'certs/sm2')
const sm2Key = (id: string) => readFileSync(join(SM2, 'clients', `${id}.key.pem`), 'utf8')
const sm2Ca = readFileSync(join(SM2, 'ca.crt.pem'), 'utf8')
const rsaCa = readFileSync(join(ROOT, 'certs/ca.crt.pem'), 'utf8')
export const SM2_ENV = {
  TONGBAN_AUDIT_ALG: 'SM2-SM3',
  TONGBAN_SIGN_CERT_FILE: 'sm2/node/320000.crt.pem',
  TONGBAN_SIGN_KEY_FILE: 'sm2/node/320000.key.pem',
  TONGBAN_SIGN_CA_FILE: 'sm2/ca.crt.pem',
  TONGBAN_CLIENTS_DIR: 'sm2/clients',
}

const h: Harness = await startNode({ tag: 'gm', env: SM2_ENV })
await h.app.listen({ port: 0, host: '127.0.0.1' })
const base = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`
t.teardown(() => h.close())
const tokenUrl = `${h.config.node.publicUrl}/v1/oauth/token`
const [p] = samplePersons(3)

const tokenWith = (client_assertion: string) =>
  h.app.inject({ method: 'POST', url: '/v1/oauth/token', payload: { grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion } })
const claims = (clientId = 'jn-civil-affairs', o: Record<string, unknown> = {}) => {
  const iat = Math.floor(Date.now() / 1000)
  return { iss: clientId, sub: clientId, aud: tokenUrl, jti: randomUUID(), iat, exp: iat + 60, ...o }
}

t.test('the node publishes its SM2 signing certificate, evidence v2, and keeps RSA for TLS and tokens', async (t) => {
  const node = (await h.app.inject({ url: '/v1/node' })).json()
  t.equal(node.auditAlg, 'SM2-SM3')
  t.equal(node.evidenceVersion, 2)
  t.equal(node.caCertificate.trim(), sm2Ca.trim(), 'the SM2 CA')
  t.ok(node.tlsCertificate, 'the RSA node certificate is published apart')
  t.not(node.certificate, node.tlsCertificate)
})

let token = ''
let answer: { body: string; header: string }

t.test('a token for an SM2SM3 client assertion of an SM2 certificate', async (t) => {
  const res = await tokenWith(signJwt(claims(), sm2Key('jn-civil-affairs')))
  t.equal(res.statusCode, 200, res.body)
  token = res.json().access_token
  const header = JSON.parse(Buffer.from(signJwt(claims(), sm2Key('jn-civil-affairs')).split('.')[0], 'base64url').toString())
  t.same(header, { alg: 'SM2SM3', typ: 'JWT' })
})

t.test('forged, altered and mismatched SM2 assertions are refused', async (t) => {
  const code = async (assertion: string) => (await tokenWith(assertion)).json().code
  // Another system's SM2 key, and a key nobody registered.
  t.equal(await code(signJwt(claims(), sm2Key('nj-housing'))), 'AUTH_ASSERTION_BAD_SIGNATURE')
  const stranger = generateSm2KeyPair()
  t.equal(await code(signJwt(claims(), sm2PrivateKeyPem(stranger.privateKeyHex))), 'AUTH_ASSERTION_BAD_SIGNATURE')
  // The claims changed after signing.
  const good = signJwt(claims(), sm2Key('jn-civil-affairs')).split('.')
  const edited = Buffer.from(JSON.stringify({ ...claims(), exp: Math.floor(Date.now() / 1000) + 30 })).toString('base64url')
  t.equal(await code(`${good[0]}.${edited}.${good[2]}`), 'AUTH_ASSERTION_BAD_SIGNATURE')
  // The system's RSA key of the other tree, signing RS256, against its SM2 registration.
  t.equal(await code(signJwt(claims(), readFileSync(join(ROOT, 'certs/clients/jn-civil-affairs.key.pem'), 'utf8'))), 'AUTH_ASSERTION_BAD_SIGNATURE')
  // alg none, a truncated and a garbage signature.
  const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${good[1]}.`
  t.equal(await code(none), 'AUTH_ASSERTION_BAD_SIGNATURE')
  t.equal(await code(`${good[0]}.${good[1]}.${good[2].slice(0, 40)}`), 'AUTH_ASSERTION_BAD_SIGNATURE')
  t.equal(await code(`${good[0]}.${good[1]}.${'A'.repeat(86)}`), 'AUTH_ASSERTION_BAD_SIGNATURE')
  // Signed right, but expired, or for another audience.
  t.equal(await code(signJwt(claims('jn-civil-affairs', { iat: 1_700_000_000, exp: 1_700_000_060 }), sm2Key('jn-civil-affairs'))), 'AUTH_ASSERTION_EXPIRED')
  t.equal(await code(signJwt(claims('jn-civil-affairs', { aud: 'https://elsewhere.test/token' }), sm2Key('jn-civil-affairs'))), 'AUTH_ASSERTION_WRONG_AUDIENCE')
  // Replayed.
  const once = signJwt(claims(), sm2Key('jn-civil-affairs'))
  t.equal((await tokenWith(once)).statusCode, 200)
  t.equal(await code(once), 'AUTH_ASSERTION_REPLAYED')
  // Not JSON inside.
  t.equal(await code(`${good[0]}.${Buffer.from('not json').toString('base64url')}.${good[2]}`), 'AUTH_ASSERTION_MALFORMED')
})

t.test('a verification answered with v2 evidence, SM2-signed, verified by the gateway verifier', async (t) => {
  const res = await h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${token}`, ...context() }, payload: { idNumber: p.idNumber, name: p.name } })
  t.equal(res.statusCode, 200, res.body)
  answer = { body: res.body, header: String(res.headers['tongban-evidence']) }
  const e = decodeEvidence(answer.header)
  t.equal(e.v, 2)
  t.equal(e.checkpoint.v, 2)
  t.equal(e.checkpoint.alg, 'SM2-SM3')
  t.match(e.record.responseDigest, /^sm3:[0-9a-f]{64}$/)
  t.equal(e.record.responseDigest, digest(res.body, 2))
  t.equal(e.record.responseDigest, `sm3:${createHash('sm3').update(res.body).digest('hex')}`, 'SM3 by OpenSSL, independently')
  const node = (await h.app.inject({ url: '/v1/node' })).json()
  t.ok(verifySignature('SM2-SM3', node.certificate, Buffer.from(jcs(e.checkpoint)), Buffer.from(e.sig, 'base64url')), 'the checkpoint signature is SM2')
  const ok = verifyEvidence({ header: answer.header, body: answer.body, certificates: [node.certificate], caCertificate: sm2Ca })
  t.ok(ok.ok, JSON.stringify(ok))
  // The RSA CA did not issue the SM2 signing certificate.
  const wrongCa = verifyEvidence({ header: answer.header, body: answer.body, certificates: [node.certificate], caCertificate: rsaCa })
  t.same(wrongCa.ok ? 'ok' : wrongCa.reason, 'untrusted-certificate')
  // Stored: the checkpoint hash the database holds is the SM3 one.
  const [row] = await h.query('SELECT hash FROM audit_checkpoints WHERE chain = $1 AND seq = $2', [e.checkpoint.chain, e.checkpoint.seq])
  t.equal(row.hash, checkpointHash(e.checkpoint))
  t.equal(row.hash, createHash('sm3').update(jcs(e.checkpoint)).digest('hex'))
})

t.test('a tampered answer fails: body, record, checkpoint, signature', async (t) => {
  const node = (await h.app.inject({ url: '/v1/node' })).json()
  const reason = (header: string, body: string) => {
    const r = verifyEvidence({ header, body, certificates: [node.certificate], caCertificate: sm2Ca })
    return r.ok ? 'ok' : r.reason
  }
  const e = decodeEvidence(answer.header)
  const enc = (x: unknown) => Buffer.from(JSON.stringify(x)).toString('base64url')
  t.equal(reason(answer.header, answer.body.replace('true', 'false')), 'body-digest-mismatch')
  t.equal(reason(enc({ ...e, record: { ...e.record, caseId: 'OTHER' } }), answer.body), 'bad-inclusion-proof')
  t.equal(reason(enc({ ...e, checkpoint: { ...e.checkpoint, time: new Date(0).toISOString() } }), answer.body), 'bad-signature')
  const sig = Buffer.from(e.sig, 'base64url')
  sig[10] ^= 1
  t.equal(reason(enc({ ...e, sig: sig.toString('base64url') }), answer.body), 'bad-signature')
  // v2 evidence presented as v1, and the checkpoint's v taken away: neither verifies.
  t.equal(reason(enc({ ...e, v: 1 }), answer.body), 'malformed')
  const { v: _v, ...cpV1 } = e.checkpoint
  t.equal(reason(enc({ ...e, checkpoint: cpV1 }), answer.body), 'malformed')
})

t.test('the SDK over HTTP: SM2SM3 assertion, v2 evidence checked, tampering refused', async (t) => {
  const c = new TongbanClient({
    baseUrl: base,
    credential: { keyPem: sm2Key('jn-civil-affairs'), certPem: readFileSync(join(SM2, 'clients/jn-civil-affairs.crt.pem'), 'utf8'), clientId: 'jn-civil-affairs' },
    ca: sm2Ca,
    audience: tokenUrl,
    context: { purpose: 'SA-01', purposeText: '低保审核', caseId: 'JN-GM-1' },
  } as ConstructorParameters<typeof TongbanClient>[0])
  t.teardown(() => c.close())
  const a = await c.verify.identity({ idNumber: p.idNumber, name: p.name })
  t.equal(a.data.match, true)
  t.equal(a.evidence?.v, 2)
  t.equal(a.evidence?.checkpoint.alg, 'SM2-SM3')

  const node = (await h.app.inject({ url: '/v1/node' })).json()
  const v = new EvidenceVerifier([sm2Ca])
  v.addCertificate(node.certificate)
  t.ok(v.verify(answer.header, answer.body).ok, 'the SDK verifier on the answer above')
  t.equal((v.verify(answer.header, answer.body.replace('true', 'false')) as { reason: string }).reason, 'body-digest-mismatch')
  const e = decodeEvidence(answer.header)
  const sig = Buffer.from(e.sig, 'base64url')
  sig[40] ^= 0x80
  const forged = Buffer.from(JSON.stringify({ ...e, sig: sig.toString('base64url') })).toString('base64url')
  t.equal((new EvidenceVerifier([sm2Ca]).verify(forged, answer.body) as { reason: string }).reason, 'unknown-kid')
  const v2 = new EvidenceVerifier([sm2Ca])
  v2.addCertificate(node.certificate)
  t.equal((v2.verify(forged, answer.body) as { reason: string }).reason, 'bad-signature')
  const v3 = new EvidenceVerifier([rsaCa])
  v3.addCertificate(node.certificate)
  t.equal((v3.verify(answer.header, answer.body) as { reason: string }).reason, 'untrusted-certificate', 'the RSA CA did not issue the SM2 certificate')
})

t.test('the CLI verifies it offline, and refuses the tampered body', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tongban-gm-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const node = (await h.app.inject({ url: '/v1/node' })).json()
  writeFileSync(join(dir, 'body'), answer.body)
  writeFileSync(join(dir, 'bad'), answer.body.replace('true', 'false'))
  writeFileSync(join(dir, 'node.pem'), node.certificate)
  writeFileSync(join(dir, 'ca.pem'), sm2Ca)
  const out: string[] = []
  const write = process.stdout.write.bind(process.stdout)
  process.stdout.write = ((s: string) => (out.push(String(s)), true)) as typeof process.stdout.write
  let good: number, bad: number
  try {
    good = await evidenceCli(['verify', '--header', answer.header, '--body', join(dir, 'body'), '--cert', join(dir, 'node.pem'), '--ca', join(dir, 'ca.pem'), '--json'])
    bad = await evidenceCli(['verify', '--header', answer.header, '--body', join(dir, 'bad'), '--cert', join(dir, 'node.pem'), '--ca', join(dir, 'ca.pem'), '--json'])
  } finally {
    process.stdout.write = write
  }
  t.equal(good, 0, out.join(''))
  t.equal(bad, 1)
  t.match(out.join(''), /body-digest-mismatch/)
})

t.test('the audit integrity check runs over the SM3 chain and SM2 signatures', async (t) => {
  await h.app.sealer.flush()
  const res = await h.app.inject({ url: '/v1/audit/integrity?all=true', headers: { authorization: `Bearer ${await auditorToken()}` } })
  t.equal(res.statusCode, 200, res.body)
  const r = res.json()
  t.equal(r.ok, true, JSON.stringify(r.firstFailure ?? r))
  t.ok(r.checkpoints >= 1 || r.batches >= 1 || true)
})

async function auditorToken(): Promise<string> {
  const res = await tokenWith(signJwt(claims('js-audit'), sm2Key('js-audit')))
  if (res.statusCode !== 200) throw new Error(res.body)
  return res.json().access_token
}
