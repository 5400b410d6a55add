// POST /v1/licences/verify end to end: a real node, the simulated licence library on loopback,
// real SM2 seals. Licences are made and sealed by this test under seal CAs it creates itself
// (one trusted by the node, one not), added to the library, then presented, edited, forged,
// revoked and superseded; every answer is sealed and audited.
import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startNode, context, ROOT } from '../helpers/harness.js'
import { person } from '../../dev/providers/population.js'
import { generateSm2KeyPair, issueSm2Certificate, parseSm2Certificate, sm2SignHex, sm2SignatureToDer, type Sm2KeyPair } from '../../src/pki/sm2-x509.js'
import { LICENCE_FORMAT, sealLicence, tbsBytes, type LicenceDocument, type UnsealedLicence } from '../../src/licences/document.js'
import { decodeEvidence, verifyEvidence, digest } from '../../src/evidence/evidence.js'

const dir = mkdtempSync(join(tmpdir(), 'tongban-licences-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

// ---- the test's own seal PKI ----
function ca(cn: string) {
  const key = generateSm2KeyPair()
  const certPem = issueSm2Certificate({ subject: { C: 'CN', O: '测试电子印章机构', CN: cn }, publicKeyHex: key.publicKeyHex, signerPrivateKeyHex: key.privateKeyHex, notBefore: new Date('2000-01-01'), notAfter: new Date('2040-01-01'), isCA: true, pathLen: 0 })
  return { key, certPem }
}
function sealCert(issuer: { key: Sm2KeyPair; certPem: string }, o: { notBefore?: string; notAfter?: string; cn?: string } = {}) {
  const key = generateSm2KeyPair()
  const certPem = issueSm2Certificate({
    subject: { C: 'CN', O: '测试市场监督管理局', CN: o.cn ?? '测试市场监督管理局电子印章', serialNumber: 'TEST-SEAL-01' },
    publicKeyHex: key.publicKeyHex,
    issuer: { certPem: issuer.certPem, privateKeyHex: issuer.key.privateKeyHex },
    notBefore: new Date(o.notBefore ?? '2010-01-01'),
    notAfter: new Date(o.notAfter ?? '2035-01-01'),
    keyUsage: ['digitalSignature', 'nonRepudiation'],
  })
  return { key, certPem, serial: parseSm2Certificate(certPem).serialHex }
}

const trusted = ca('测试电子印章根 CA')
const untrusted = ca('冒充的电子印章根 CA')
const seal = sealCert(trusted)
const oldSeal = sealCert(trusted, { notBefore: '2012-01-01', notAfter: '2015-12-31', cn: '过期印章' })
const revokedSeal = sealCert(trusted, { cn: '被吊销的印章' })
const rogueSeal = sealCert(untrusted)
// The node trusts the dev seal CA (the library's own licences) and the test's trusted CA.
const anchors = join(dir, 'seal-cas.pem')
writeFileSync(anchors, readFileSync(join(ROOT, 'certs/seals/seal-ca.crt.pem'), 'utf8') + trusted.certPem)

const h = await startNode({ tag: 'licences', env: { TONGBAN_LICENCE_SEAL_CA_FILE: anchors } })
t.teardown(() => h.close())
const library = h.licences.library
const token = await h.token('jn-civil-affairs')

const holder = person(42)
const other = person(43)
let serial = 0
function licence(o: Partial<UnsealedLicence> = {}): UnsealedLicence {
  serial++
  return {
    format: LICENCE_FORMAT,
    typeCode: 'JMSFZ',
    typeName: '居民身份证电子证照',
    number: `TEST-${process.pid}-${serial}`,
    holder: { name: holder.name, idType: 'GB11643', id: holder.idNumber },
    issuer: { name: '测试市场监督管理局', creditCode: '11320000MB00001306', region: '320000' },
    issuedOn: '2020-06-01',
    validFrom: '2020-06-01',
    validUntil: '2040-05-31',
    surface: { 姓名: holder.name, 签发机关: '测试公安局' },
    ...o,
  }
}
const sealWith = (doc: UnsealedLicence, s: { key: Sm2KeyPair; certPem: string }) =>
  sealLicence(doc, { sealId: 'TEST-SEAL-01', privateKeyHex: s.key.privateKeyHex, certPem: s.certPem })
/** Made, sealed and registered at the library. */
const issued = (o: Partial<UnsealedLicence> = {}, s = seal) => {
  const doc = sealWith(licence(o), s)
  library.add(doc)
  return doc
}

const verify = (payload: unknown, headers: Record<string, string> = context(), bearer = token) =>
  h.app.inject({
    method: 'POST',
    url: '/v1/licences/verify',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', ...headers },
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
  })
const present = (doc: unknown, holderId = holder.idNumber, extra: object = {}) => verify({ licence: doc, holderId, ...extra })
const clone = (d: LicenceDocument): LicenceDocument => JSON.parse(JSON.stringify(d))
const failed = (body: { checks: { check: string; result: string; code?: string }[] }) =>
  body.checks.filter((c) => c.result === 'fail').map((c) => `${c.check}:${c.code}`)

t.test('a licence the test sealed verifies: every check passes; the answer is sealed and audited', async (t) => {
  const doc = issued()
  const res = await present(doc, holder.idNumber, { holderName: holder.name })
  t.equal(res.statusCode, 200, res.body)
  const body = res.json()
  t.equal(body.valid, true)
  t.notOk(body.code)
  t.equal(body.licenceNumber, doc.number)
  t.same(body.checks.map((c: { result: string }) => c.result), Array(9).fill('pass'), JSON.stringify(body.checks))
  const header = res.headers['tongban-evidence'] as string
  t.ok(verifyEvidence({ header, body: res.body, certificates: [h.app.identity.certPem], caCertificate: h.app.identity.caPem }).ok, 'the evidence verifies')
  const ev = decodeEvidence(header)
  t.equal(ev.record.resource, '110001/00001')
  t.equal(ev.record.operation, 'verify')
  t.equal(ev.record.decision, 'allowed')
  t.equal(ev.record.responseDigest, digest(res.body))
  t.match(ev.record.subject, /^hmac-sha256:[0-9a-f]{64}$/)
  const rows = await h.query('SELECT reason, record::text AS text FROM audit_records WHERE request_id = $1', [ev.record.requestId])
  t.equal(rows.length, 1)
  t.equal(rows[0].reason, null)
  t.notMatch(rows[0].text, holder.idNumber, 'no raw id number in the audit record')
  t.notMatch(rows[0].text, holder.name, 'no name in the audit record')
})

t.test('the library\'s own licences verify, by document and by number', async (t) => {
  const p0 = person(0)
  const list = await h.licences.inject({ method: 'POST', url: '/v1/licences/list', payload: { holderId: p0.idNumber } })
  const current = list.json().licences.find((l: { status: string; licence: LicenceDocument }) => l.status === 'current' && l.licence.typeCode === 'JMSFZ')
  t.ok(current)
  const byDoc = await present(current.licence, p0.idNumber)
  t.equal(byDoc.json().valid, true, byDoc.body)
  const byNumber = await verify({ licenceNumber: current.licence.number, holderId: p0.idNumber })
  t.equal(byNumber.statusCode, 200)
  t.equal(byNumber.json().valid, true, byNumber.body)
  t.equal(byNumber.json().checks.find((c: { check: string }) => c.check === 'content').result, 'skipped', 'content: the library holds it')
  const old = list.json().licences.find((l: { status: string }) => l.status === 'superseded')
  t.ok(old, 'person 0 renewed the card')
  const superseded = await verify({ licenceNumber: old.licence.number, holderId: p0.idNumber })
  t.equal(superseded.json().code, 'LICENCE_SUPERSEDED')
  t.match(superseded.json().checks.find((c: { check: string }) => c.check === 'status').detail, current.licence.number)
})

t.test('a forged seal: LICENCE_SEAL_INVALID', async (t) => {
  const doc = issued()
  const forged = clone(doc)
  // signed with another key, carrying the genuine certificate
  forged.seal.signature = sm2SignatureToDer(sm2SignHex(tbsBytes(forged.seal.tbs), generateSm2KeyPair().privateKeyHex)).toString('base64')
  const res = await present(forged)
  t.equal(res.statusCode, 200)
  t.equal(res.json().valid, false)
  t.equal(res.json().code, 'LICENCE_SEAL_INVALID')
  const [row] = await h.query('SELECT reason, decision FROM audit_records WHERE request_id = $1', [res.headers['tongban-request-id']])
  // A verification that ran is an allowed answer; its verdict is in the sealed body (responseDigest).
  t.same(row, { reason: null, decision: 'allowed' }, 'audited as an answer')
  t.equal(decodeEvidence(res.headers['tongban-evidence'] as string).record.responseDigest, digest(res.body))
  // an edited TBS (the digest re-computed by the forger) fails the same way
  const edited = clone(doc)
  edited.holder.name = '李四'
  edited.seal.tbs.dataHash = 'ab'.repeat(32)
  t.equal((await present(edited)).json().code, 'LICENCE_SEAL_INVALID')
})

t.test('content edited after sealing: LICENCE_CONTENT_ALTERED, the seal itself intact', async (t) => {
  const doc = issued()
  for (const edit of [
    (d: LicenceDocument) => { d.surface['签发机关'] = '别的公安局' },
    (d: LicenceDocument) => { d.validUntil = null },
    (d: LicenceDocument) => { d.holder.name = '张三' },
  ]) {
    const edited = clone(doc)
    edit(edited)
    const body = (await present(edited)).json()
    t.equal(body.code, 'LICENCE_CONTENT_ALTERED', JSON.stringify(failed(body)))
    t.equal(body.checks[0].result, 'pass', 'the seal signature verifies')
  }
  // a genuine seal moved onto another licence
  const other = clone(issued())
  other.seal = doc.seal
  t.equal((await present(other)).json().code, 'LICENCE_CONTENT_ALTERED')
})

t.test('revoked and superseded at the library', async (t) => {
  const doc = issued()
  library.revoke(doc.number, '2025-10-01')
  const revoked = (await present(doc)).json()
  t.equal(revoked.code, 'LICENCE_REVOKED')
  t.same(failed(revoked), ['status:LICENCE_REVOKED'])
  const byNumber = await verify({ licenceNumber: doc.number, holderId: holder.idNumber })
  t.equal(byNumber.json().code, 'LICENCE_REVOKED')
  const older = issued()
  const newer = issued()
  library.supersede(older.number, newer.number, '2025-11-01')
  t.equal((await present(older)).json().code, 'LICENCE_SUPERSEDED')
  t.equal((await present(newer)).json().valid, true)
})

t.test('an expired licence: LICENCE_EXPIRED', async (t) => {
  const doc = issued({ issuedOn: '2012-03-01', validFrom: '2012-03-01', validUntil: '2022-02-28' })
  const body = (await present(doc)).json()
  t.equal(body.code, 'LICENCE_EXPIRED')
  t.same(failed(body), ['validity:LICENCE_EXPIRED'])
})

t.test('a seal certificate not valid on the issue date: LICENCE_SEAL_CERT_EXPIRED', async (t) => {
  // sealed in 2020 with a certificate that ended in 2015
  const late = issued({ issuedOn: '2020-06-01' }, oldSeal)
  t.equal((await present(late)).json().code, 'LICENCE_SEAL_CERT_EXPIRED')
  // issued while it was valid: still good after it expired
  const inTime = issued({ issuedOn: '2014-06-01', validFrom: '2014-06-01', validUntil: '2034-05-31' }, oldSeal)
  const ok = (await present(inTime)).json()
  t.equal(ok.valid, true, JSON.stringify(failed(ok)))
})

t.test('a revoked seal certificate: LICENCE_SEAL_CERT_REVOKED', async (t) => {
  const doc = issued({}, revokedSeal)
  t.equal((await present(doc)).json().valid, true, 'before the revocation')
  library.revokeSealCertificate(revokedSeal.serial, '2025-12-01')
  const body = (await present(doc)).json()
  t.equal(body.code, 'LICENCE_SEAL_CERT_REVOKED')
  t.match(body.checks.find((c: { check: string }) => c.check === 'sealCertificateRevocation').detail, /2025-12-01/)
  t.equal((await verify({ licenceNumber: doc.number, holderId: holder.idNumber })).json().code, 'LICENCE_SEAL_CERT_REVOKED', 'by number too')
})

t.test('a seal from an untrusted CA: LICENCE_SEAL_UNTRUSTED', async (t) => {
  const doc = issued({}, rogueSeal)
  const body = (await present(doc)).json()
  t.equal(body.code, 'LICENCE_SEAL_UNTRUSTED')
  t.equal(body.checks[0].result, 'pass', 'the signature matches its own (untrusted) certificate')
  // a self-signed seal certificate is no better
  const selfSigned = clone(doc)
  const key = generateSm2KeyPair()
  const own = issueSm2Certificate({ subject: { CN: '测试电子印章根 CA', O: '测试电子印章机构', C: 'CN' }, publicKeyHex: key.publicKeyHex, signerPrivateKeyHex: key.privateKeyHex, notBefore: new Date('2000-01-01'), notAfter: new Date('2040-01-01') })
  const resealed = sealLicence(licence({ number: doc.number }), { sealId: 'X', privateKeyHex: key.privateKeyHex, certPem: own })
  selfSigned.seal = resealed.seal
  t.equal((await present(resealed)).json().code, 'LICENCE_SEAL_UNTRUSTED', 'issuer name of the trusted CA, signed by another key')
})

t.test('the holder must match: LICENCE_HOLDER_MISMATCH', async (t) => {
  const doc = issued()
  const body = (await present(doc, other.idNumber)).json()
  t.equal(body.code, 'LICENCE_HOLDER_MISMATCH')
  t.same(failed(body), ['holder:LICENCE_HOLDER_MISMATCH'])
  t.equal((await present(doc, holder.idNumber, { holderName: '王五' })).json().code, 'LICENCE_HOLDER_MISMATCH', 'the name too')
  t.equal((await verify({ licenceNumber: doc.number, holderId: other.idNumber })).json().code, 'LICENCE_HOLDER_MISMATCH', 'by number: the library compares')
})

t.test('unknown to the library: 404 by number, a failed check for a document', async (t) => {
  const byNumber = await verify({ licenceNumber: 'NO-SUCH-LICENCE-1', holderId: holder.idNumber })
  t.equal(byNumber.statusCode, 404)
  t.equal(byNumber.json().code, 'LICENCE_NOT_FOUND')
  t.ok(byNumber.headers['tongban-evidence'], 'the refusal is sealed too')
  const unregistered = sealWith(licence(), seal) // sealed with a genuine key but never registered
  const body = (await present(unregistered)).json()
  t.equal(body.code, 'LICENCE_NOT_FOUND')
})

t.test('hostile input is refused with a problem, never a 500', async (t) => {
  const doc = issued()
  const cases: Array<[string, unknown, number, string | RegExp, Record<string, string>?]> = [
    ['malformed JSON', '{"licence": {', 400, 'INPUT_MALFORMED_JSON'],
    ['both forms', { licence: doc, licenceNumber: doc.number, holderId: holder.idNumber }, 400, 'INPUT_INVALID'],
    ['neither form', { holderId: holder.idNumber }, 400, 'INPUT_INVALID'],
    ['no holder', { licence: doc }, 400, 'INPUT_INVALID'],
    ['holder id with a wrong check character', { licenceNumber: doc.number, holderId: holder.idNumber.slice(0, 17) + (holder.idNumber.endsWith('0') ? '1' : '0') }, 400, 'INPUT_INVALID_ID_NUMBER'],
    ['an unknown field', { licence: doc, holderId: holder.idNumber, extra: 1 }, 400, 'INPUT_INVALID'],
    ['a wrong type', { licence: { ...doc, issuedOn: 20200601 }, holderId: holder.idNumber }, 400, 'INPUT_INVALID'],
    ['a number as string of 10 kB', { licenceNumber: 'x'.repeat(10_000), holderId: holder.idNumber }, 400, 'INPUT_INVALID'],
    ['no purpose', { licenceNumber: doc.number, holderId: holder.idNumber }, 400, 'INPUT_PURPOSE_MISSING', { 'tongban-case-id': 'JN-1' }],
    ['an id number in the case id', { licenceNumber: doc.number, holderId: holder.idNumber }, 400, 'INPUT_CASE_ID_PERSONAL_DATA', context({ 'tongban-case-id': holder.idNumber })],
  ]
  for (const [what, payload, status, code, headers] of cases) {
    const res = await verify(payload, headers ?? context())
    t.equal(res.statusCode, status, `${what}: ${res.body.slice(0, 200)}`)
    t.match(res.json().code, code, what)
  }
  const huge = await verify({ licence: { ...doc, surface: { 备注: 'x'.repeat(2_000_000) } }, holderId: holder.idNumber })
  t.equal(huge.statusCode, 413, 'a huge body')
  // Garbage in the seal's fields: a failed check, not a crash.
  for (const [field, value] of [['signature', 'AAAA'], ['certificate', 'AAAA'], ['signature', 'MAA=']] as const) {
    const bad = clone(doc)
    bad.seal[field] = value
    const res = await present(bad)
    t.equal(res.statusCode, 200, `${field}=${value}`)
    t.equal(res.json().code, 'LICENCE_SEAL_INVALID', `${field}=${value}`)
  }
  // An SM2 signature out of range (s = n) and a seal certificate of the trusted CA whose key
  // is not a point on the curve: false from the SM2 code, a failed seal check here.
  const sig = sm2SignHex(tbsBytes(doc.seal.tbs), seal.key.privateKeyHex)
  const outOfRange = clone(doc)
  outOfRange.seal.signature = sm2SignatureToDer(sig.slice(0, 64) + 'fffffffeffffffffffffffffffffffff7203df6b21c6052b53bbf40939d54123').toString('base64')
  const offCurve = issueSm2Certificate({
    subject: { C: 'CN', O: '测试市场监督管理局', CN: '曲线外的印章', serialNumber: 'TEST-SEAL-01' },
    publicKeyHex: `04${'11'.repeat(64)}`,
    issuer: { certPem: trusted.certPem, privateKeyHex: trusted.key.privateKeyHex },
    notBefore: new Date('2010-01-01'),
    notAfter: new Date('2035-01-01'),
  })
  const offCurveSeal = clone(doc)
  offCurveSeal.seal.certificate = Buffer.from(offCurve.replace(/-----[A-Z ]+-----|\s+/g, ''), 'base64').toString('base64')
  for (const [what, bad] of [['s = n', outOfRange], ['a key off the curve', offCurveSeal], ['a key off the curve, again', offCurveSeal]] as const) {
    const res = await present(bad)
    t.equal(res.statusCode, 200, what)
    t.equal(res.json().code, 'LICENCE_SEAL_INVALID', what)
  }
  const noToken = await h.app.inject({ method: 'POST', url: '/v1/licences/verify', headers: context(), payload: { licenceNumber: doc.number, holderId: holder.idNumber } })
  t.equal(noToken.statusCode, 401)
  const provider = await verify({ licenceNumber: doc.number, holderId: holder.idNumber }, context(), await h.token('js-public-security'))
  t.equal(provider.statusCode, 403, 'a provider system is not a consumer')
  const forgedToken = await verify({ licenceNumber: doc.number, holderId: holder.idNumber }, context(), token.slice(0, -4) + 'AAAA')
  t.equal(forgedToken.statusCode, 401, 'a token with a broken signature')
})
