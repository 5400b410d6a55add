// The node assertion chain (src/tiers/assertion.ts) on its own: links signed with a link key
// (ES256) that the node key certifies, links of the previous format (RS256 by the node key),
// and the forgeries each must refuse. A dev CA and three node certificates of its own, in a
// temporary directory.
import t, { type Test } from 'tap'
import { generateKeyPairSync, sign } from 'node:crypto'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureNodeCertificates } from '../../dev/pki.js'
import { AssertionSigner, AssertionVerifier, linkKeyInput, type ConsumerClaims } from '../../src/tiers/assertion.js'
import { digest } from '../../src/evidence/evidence.js'

const JN = '320115'
const NJ = '320100'
const JS = '320000'
const dir = mkdtempSync(join(tmpdir(), 'tongban-assertion-'))
await ensureNodeCertificates({ dir, nodes: [JN, NJ, JS].map((id) => ({ id, name: `node ${id}` })) })
const pem = (rel: string) => readFileSync(join(dir, rel), 'utf8')
const keyOf = (id: string) => pem(`node/${id}.key.pem`)
const certOf = (id: string) => pem(`node/${id}.crt.pem`)
const signer = (id: string, opts?: { linkKeys?: boolean }) => new AssertionSigner(id, keyOf(id), certOf(id), opts)

const body = JSON.stringify({ idNumber: '320115199001011234', name: '张三' })
const tgt = 'verify/identity'
const claims: ConsumerClaims = { sub: 'jn-civil-affairs', dept: '11320115MB0000012H', region: JN, purpose: 'SA-01', case: 'C-1', tgt, bd: digest(body) }
const verifier = new AssertionVerifier(pem('ca.crt.pem'))
let n = 0
const rid = () => `rid-${++n}-${Date.now()}`
const check = (header: string, r: string, self: string, peer: string) => verifier.verify(header, { self, peer, rid: r, tgt, bodyDigest: digest(body) })
const parts = (jws: string) => jws.split('.')
const header = (jws: string) => JSON.parse(Buffer.from(parts(jws)[0], 'base64url').toString())
const payload = (jws: string) => JSON.parse(Buffer.from(parts(jws)[1], 'base64url').toString())
const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url')
/** An ES256 JWS over (header, payload) with a given P-256 key. */
const es256 = (h: object, p: object, key: Parameters<typeof sign>[2]) => {
  const input = `${enc(h)}.${enc(p)}`
  return `${input}.${sign('sha256', Buffer.from(input), { key: key as any, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
}
const refused = (t: Test, f: () => unknown, detail: RegExp, msg: string) => {
  try {
    f()
    t.fail(`${msg}: accepted`)
  } catch (e: any) {
    t.equal(e.code, 'NODE_ASSERTION_INVALID', msg)
    t.match(e.detail ?? e.message, detail, msg)
  }
}

t.test('link keys: a three-link chain verifies; every link is ES256 with a statement of its node key', async (t) => {
  const r = rid()
  const l0 = signer(JN).origin(NJ, r, claims)
  const l1 = signer(NJ).hop(JS, r, l0)
  const v = check(`${l0}, ${l1}`, r, JS, NJ)
  t.same(v.path, [JN, NJ])
  t.equal(v.consumer.dept, claims.dept)
  for (const l of [l0, l1]) {
    const h = header(l)
    t.equal(h.alg, 'ES256')
    t.ok(Array.isArray(h.x5c) && h.x5c.length >= 1, 'x5c: the node certificate, so any hop can check the statement')
    t.match(h.lk, { key: String, iat: Number, exp: Number, sig: String })
  }
  t.ok(l0.length < 4096, `a link stays small (${l0.length} characters)`)
  // Cached headers: the same signer's next link verifies too (and is checked in full).
  const r2 = rid()
  const again = signer(JN)
  t.same(check(again.origin(NJ, r2, claims), r2, NJ, JN).path, [JN])
})

t.test('previous format: RS256 links by the node key itself are still accepted, and mixed chains', async (t) => {
  const r = rid()
  const l0 = signer(JN, { linkKeys: false }).origin(NJ, r, claims)
  t.equal(header(l0).alg, 'RS256')
  t.notOk(header(l0).lk)
  const l1 = signer(NJ).hop(JS, r, l0)
  t.same(check(`${l0}, ${l1}`, r, JS, NJ).path, [JN, NJ])
})

t.test('forged links are refused', async (t) => {
  const other = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } })
  let r = rid()
  refused(t, () => check(new AssertionSigner(JN, other.privateKey, certOf(JN)).origin(NJ, r, claims), r, NJ, JN), /bad signature of the link key statement/, 'a link key certified by a key that is not the certificate\'s')
  r = rid()
  refused(t, () => check(new AssertionSigner(JN, other.privateKey, certOf(JN), { linkKeys: false }).origin(NJ, r, claims), r, NJ, JN), /bad signature/, 'RS256 with a key that is not the certificate\'s')

  // The genuine header (x5c and statement) with a link signed by another P-256 key.
  r = rid()
  const genuine = signer(JN).origin(NJ, r, claims)
  const mine = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  refused(t, () => check(es256(header(genuine), payload(genuine), mine.privateKey), r, NJ, JN), /bad signature/, 'a link not signed by the certified link key')

  // The attacker's key put into the genuine statement: the statement's signature no longer covers it.
  r = rid()
  const swapped = { ...header(genuine), lk: { ...header(genuine).lk, key: mine.publicKey.export({ format: 'der', type: 'spki' }).toString('base64url') } }
  refused(t, () => check(es256(swapped, { ...payload(genuine), rid: r }, mine.privateKey), r, NJ, JN), /bad signature of the link key statement/, 'a link key swapped into a genuine statement')

  // A statement the attacker made for its own key, signed by its own RSA key, under the county's certificate.
  r = rid()
  const key = mine.publicKey.export({ format: 'der', type: 'spki' }).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  const st = { key, iat: now, exp: now + 3600 }
  const fake = { ...header(genuine), lk: { ...st, sig: sign('sha256', linkKeyInput(JN, st), other.privateKey).toString('base64url') } }
  refused(t, () => check(es256(fake, { ...payload(genuine), rid: r }, mine.privateKey), r, NJ, JN), /bad signature of the link key statement/, 'a self-made statement under a genuine certificate')

  // Nanjing's genuine statement and key, presented under the county's certificate: the statement names Nanjing.
  r = rid()
  const nj = signer(NJ).origin(JS, r, claims)
  refused(t, () => check(es256({ ...header(nj), x5c: header(genuine).x5c }, payload(genuine), mine.privateKey), r, NJ, JN), /bad signature of the link key statement/, 'another node\'s statement')

  // A payload changed after signing.
  r = rid()
  const l = signer(JN).origin(NJ, r, claims)
  const [h, , s] = parts(l)
  refused(t, () => check(`${h}.${enc({ ...payload(l), dept: '11320000MB0000091R' })}.${s}`, r, NJ, JN), /bad signature/, 'a consumer claim changed after signing')

  // A hop link used as a consumer assertion: typ is part of the (cached) header.
  r = rid()
  const l0 = signer(JN).origin(NJ, r, claims)
  const hopLink = signer(NJ).hop(JS, r, l0)
  refused(t, () => check(hopLink, r, JS, NJ), /typ must be tongban-consumer\+jwt/, 'a hop link in place of the consumer assertion')

  // The chain cut: link 1 without its link 0.
  refused(t, () => check(`${signer(NJ).origin(JS, r, claims)}, ${hopLink}`, r, JS, NJ), /does not follow/, 'a hop link after another link 0')
})

t.test('a link signed outside its statement\'s validity is refused; an over-long statement too', async (t) => {
  const mine = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const key = mine.publicKey.export({ format: 'der', type: 'spki' }).toString('base64url')
  const now = Math.floor(Date.now() / 1000)
  const base = header(signer(JN).origin(NJ, rid(), claims))
  const stmt = (iat: number, exp: number) => {
    const st = { key, iat, exp }
    return { ...base, lk: { ...st, sig: sign('sha256', linkKeyInput(JN, st), keyOf(JN)).toString('base64url') } }
  }
  const link = (h: object, r: string) => es256(h, { iss: JN, aud: NJ, iat: now, exp: now + 60, jti: `jti-${r}`, rid: r, ...claims }, mine.privateKey)

  let r = rid()
  t.same(check(link(stmt(now - 60, now + 3600), r), r, NJ, JN).path, [JN], 'a statement of the genuine node key for a key of its choosing is what a link key is')
  r = rid()
  refused(t, () => check(link(stmt(now - 7200, now - 3600), r), r, NJ, JN), /outside the validity of its link key/, 'an expired statement')
  r = rid()
  refused(t, () => check(link(stmt(now + 600, now + 3600), r), r, NJ, JN), /outside the validity of its link key/, 'a statement from the future')
  r = rid()
  refused(t, () => check(link(stmt(now - 60, now + 2 * 86_400), r), r, NJ, JN), /lk \(the link key statement\) is missing or malformed/, 'a statement valid for more than a day')
  r = rid()
  refused(t, () => check(link({ ...base, lk: undefined }, r), r, NJ, JN), /lk \(the link key statement\) is missing/, 'ES256 without a statement')
})
