// docs/evidence.md walks through one real answer (test/vectors/evidence-walkthrough.json,
// made by scripts/gen-evidence-walkthrough.ts). Every intermediate value the document shows is
// recomputed here twice, with the gateway's own functions and independently with node:crypto,
// and must appear in the document: the document cannot drift from the code.
import t, { type Test } from 'tap'
import { X509Certificate, createHash, verify as cryptoVerify } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { jcs } from '../../src/evidence/jcs.js'
import { leafHash, nodeHash, rootFromPath } from '../../src/evidence/merkle.js'
import { checkpointHash, decodeEvidence, digest, verifyEvidence } from '../../src/evidence/evidence.js'
import { certThumbprint } from '../../src/pki/thumbprint.js'

const V = JSON.parse(readFileSync(new URL('../vectors/evidence-walkthrough.json', import.meta.url), 'utf8'))
const DOC = readFileSync(new URL('../../docs/evidence.md', import.meta.url), 'utf8')
const header: string = V.response.evidence
const body = Buffer.from(V.response.body, 'utf8')

// Independent of src/: RFC 8785 for what evidence holds (objects, strings, integers, null).
const canon = (v: unknown): string =>
  v === null || typeof v !== 'object'
    ? JSON.stringify(v)
    : Array.isArray(v)
      ? `[${v.map(canon).join(',')}]`
      : `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon((v as Record<string, unknown>)[k])}`).join(',')}}`
const sha = (...parts: (Buffer | string)[]) => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}

const e = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'))
const inDoc = (t: Test, value: string, what: string) => t.ok(DOC.includes(value), `docs/evidence.md shows ${what}`)

t.test('step 1: the header decodes to the evidence JSON', async (t) => {
  t.same(decodeEvidence(header), e)
  t.equal(e.v, 1)
  t.same(Object.keys(e), ['v', 'record', 'index', 'size', 'path', 'checkpoint', 'sig'])
  inDoc(t, header.slice(0, 60), 'the header')
  inDoc(t, JSON.stringify(e.record.requestId), 'the record')
})

t.test('step 2: the body digest', async (t) => {
  const d = `sha256:${sha(body).toString('hex')}`
  t.equal(digest(body), d)
  t.equal(e.record.responseDigest, d)
  t.equal(e.record.requestDigest, `sha256:${sha(V.request.body).toString('hex')}`, 'requestDigest: the request body bytes')
  inDoc(t, V.response.body, 'the body')
  inDoc(t, d, 'the body digest')
})

const recordJcs = canon(e.record)
const leaf = sha(Buffer.from([0]), recordJcs)

t.test('step 3: the leaf is SHA-256(0x00 ‖ JCS(record))', async (t) => {
  t.equal(jcs(e.record), recordJcs)
  t.equal(leafHash(recordJcs).toString('hex'), leaf.toString('hex'))
  inDoc(t, recordJcs, 'JCS(record)')
  inDoc(t, leaf.toString('hex'), 'the leaf hash')
})

t.test('step 4: the inclusion path folds to the signed root', async (t) => {
  t.equal(e.index, 4)
  t.equal(e.size, 5)
  t.equal(e.path.length, 1)
  // Index 4 of 5 has no sibling on levels 0 and 1 (carried up); its one path entry is the
  // hash of leaves 0–3, on the left.
  const root = sha(Buffer.from([1]), Buffer.from(e.path[0], 'hex'), leaf)
  t.equal(nodeHash(Buffer.from(e.path[0], 'hex'), leaf).toString('hex'), root.toString('hex'))
  t.equal(rootFromPath(leafHash(recordJcs), e.index, e.size, e.path.map((h: string) => Buffer.from(h, 'hex')))!.toString('hex'), root.toString('hex'))
  t.equal(e.checkpoint.root, root.toString('hex'))
  t.equal(e.checkpoint.size, e.size)
  inDoc(t, e.path[0], 'the path entry')
  inDoc(t, root.toString('hex'), 'the root')
})

t.test('step 5: the checkpoint signature (RS256 over JCS(checkpoint))', async (t) => {
  const cpJcs = canon(e.checkpoint)
  t.equal(jcs(e.checkpoint), cpJcs)
  t.equal(e.checkpoint.alg, 'RS256')
  t.ok(cryptoVerify('sha256', Buffer.from(cpJcs), V.nodeCertificate, Buffer.from(e.sig, 'base64url')), 'RSASSA-PKCS1-v1_5 SHA-256')
  const cpHash = sha(cpJcs).toString('hex')
  t.equal(checkpointHash(e.checkpoint), cpHash)
  inDoc(t, cpJcs, 'JCS(checkpoint)')
  inDoc(t, e.sig, 'the signature')
  inDoc(t, cpHash, 'the checkpoint hash')
})

t.test('step 6: kid names the node certificate, which the CA issued', async (t) => {
  const node = new X509Certificate(V.nodeCertificate)
  const ca = new X509Certificate(V.caCertificate)
  const kid = sha(node.raw).toString('base64url')
  t.equal(certThumbprint(V.nodeCertificate), kid)
  t.equal(e.checkpoint.kid, kid)
  t.equal(V.kid, kid, 'GET /v1/node says the same kid')
  t.ok(ca.ca)
  t.ok(node.checkIssued(ca))
  t.ok(node.verify(ca.publicKey))
  const at = Date.parse(e.checkpoint.time)
  t.ok(at >= Date.parse(node.validFrom) && at <= Date.parse(node.validTo), 'valid when it signed')
  inDoc(t, kid, 'the kid')
  const cn = (name: string) => name.split('\n').find((l) => l.startsWith('CN='))!
  t.equal(cn(node.issuer), cn(ca.subject))
  inDoc(t, cn(node.subject), 'the node certificate subject')
  inDoc(t, cn(ca.subject), 'the CA subject')
})

t.test("the gateway's verifier agrees, and a changed body byte fails it", async (t) => {
  const trusted = { certificates: [V.nodeCertificate], caCertificate: V.caCertificate, now: Date.parse(e.checkpoint.time) }
  t.ok(verifyEvidence({ header, body, ...trusted }).ok)
  const tampered = Buffer.from(body)
  tampered[tampered.length - 2] ^= 1
  t.same(verifyEvidence({ header, body: tampered, ...trusted }), { ok: false, reason: 'body-digest-mismatch' })
})
