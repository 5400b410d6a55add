import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import forge from 'node-forge'
import { jcs } from '../../src/evidence/jcs.js'
import { buildTree, leafHash } from '../../src/evidence/merkle.js'
import {
  checkpointHash,
  decodeEvidence,
  digest,
  encodeEvidence,
  verifyEvidence,
  type AuditRecord,
  type Checkpoint,
  type Evidence,
} from '../../src/evidence/evidence.js'
import { certThumbprint, pemToDer, x5c } from '../../src/pki/thumbprint.js'
import { createSigner, type SuiteName } from '../../src/pki/suites.js'
import { run } from '../../src/cli/evidence.js'

interface Vectors {
  caCertificate: string
  nodeCertificate: string
  kid: string
  checkpoint: Checkpoint
  checkpointHash: string
  root: string
  positives: { body: string; header: string; evidence: Evidence; leaf: string; jcs: string }[]
  negatives: { why: string; body: string; header: string }[]
}

const V: Vectors = JSON.parse(readFileSync(new URL('../vectors/evidence-v1.json', import.meta.url), 'utf8'))
// Inside both vector certificates' validity.
const NOW = Date.parse('2027-01-01T00:00:00Z')
const trusted = { certificates: [V.nodeCertificate], caCertificate: V.caCertificate, now: NOW }

const verify = (header: string, body: Buffer | string) => verifyEvidence({ header, body, ...trusted })
const reasonOf = (header: string, body: Buffer | string) => {
  const r = verify(header, body)
  return r.ok ? 'ok' : r.reason
}
const b64 = (e: unknown) => Buffer.from(JSON.stringify(e)).toString('base64url')
const clone = <T>(v: T): T => structuredClone(v)

// --- Keys and certificates for evidence sealed here (forge for RSA, OpenSSL for SM2).

function issue(subjectKeyPem: string, cn: string, issuer?: { cert: forge.pki.Certificate; key: string }) {
  const cert = forge.pki.createCertificate()
  const key = forge.pki.privateKeyFromPem(subjectKeyPem) as forge.pki.rsa.PrivateKey
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e)
  cert.serialNumber = cn === 'ca' ? '01' : '02'
  cert.validity.notBefore = new Date('2026-01-01T00:00:00Z')
  cert.validity.notAfter = new Date('2036-01-01T00:00:00Z')
  const name = [{ name: 'commonName', value: cn }]
  cert.setSubject(name)
  cert.setIssuer(issuer ? issuer.cert.subject.attributes : name)
  cert.setExtensions([{ name: 'basicConstraints', cA: !issuer }])
  cert.sign(forge.pki.privateKeyFromPem(issuer?.key ?? subjectKeyPem), forge.md.sha256.create())
  return cert
}

const rsaKey = () =>
  generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string

// A CA that issued nothing here.
const OTHER_CA = forge.pki.certificateToPem(issue(rsaKey(), 'ca'))

function pki() {
  const caKey = rsaKey()
  const caCert = issue(caKey, 'ca')
  const nodeKey = rsaKey()
  const nodeCert = issue(nodeKey, 'node', { cert: caCert, key: caKey })
  return { ca: forge.pki.certificateToPem(caCert), node: forge.pki.certificateToPem(nodeCert), nodeKey }
}

const SM2_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqBHM9VAYItBG0wawIBAQQg0AJSl7fWbP0/2nKr
qfckrbC7VJnXnRtM5iUsht7rH2yhRANCAATeLJGb2O29XGAKST4+A29r27b8VT/r
IHbkU/zssdmQKAowIqPMCkviTS/4ucZO4nw1sPUbhDpzedW7EShp5H5s
-----END PRIVATE KEY-----
`
// Self-signed SM2-with-SM3 CA certificate for SM2_KEY, made with OpenSSL 3.0.
const SM2_CERT = `-----BEGIN CERTIFICATE-----
MIIBizCCATGgAwIBAgIUXeisQdeSkZECPjcNhBPulpRz3yswCgYIKoEcz1UBg3Uw
GzEZMBcGA1UEAwwQdG9uZ2Jhbi1zbTItdGVzdDAeFw0yNjExMjYxODQ5MDhaFw0z
NjExMjMxODQ5MDhaMBsxGTAXBgNVBAMMEHRvbmdiYW4tc20yLXRlc3QwWTATBgcq
hkjOPQIBBggqgRzPVQGCLQNCAATeLJGb2O29XGAKST4+A29r27b8VT/rIHbkU/zs
sdmQKAowIqPMCkviTS/4ucZO4nw1sPUbhDpzedW7EShp5H5so1MwUTAdBgNVHQ4E
FgQU+OuFp1IWmjHg19Pnt5I7WyXstoEwHwYDVR0jBBgwFoAU+OuFp1IWmjHg19Pn
t5I7WyXstoEwDwYDVR0TAQH/BAUwAwEB/zAKBggqgRzPVQGDdQNIADBFAiEAvUDU
Xm7rJ1YU6WB3a75/MzmZ2XMpJBJvNk/v+H/9fucCIBjXk6oP8woZnpWehcFtUBTt
O8OCSAAwJLZc0XO+O0ru
-----END CERTIFICATE-----
`

function seal(alg: SuiteName, keyPem: string, certPem: string, bodies: string[]): Evidence[] {
  const records: AuditRecord[] = bodies.map((body, i) => ({
    requestId: `01JDSEAL${String(i).padStart(18, '0')}`,
    time: new Date(NOW + i).toISOString(),
    node: '320000',
    consumer: { department: '11320115MB1234567X', system: 'jn-civil-affairs', region: '320115' },
    resource: '101001/00001',
    operation: 'verify',
    purpose: 'SA-01',
    caseId: `JN-2027-${i}`,
    decision: 'allowed',
    requestDigest: digest(`{"id":${i}}`),
    responseDigest: digest(body),
  }))
  // A request refused before its consumer and purpose were known.
  Object.assign(records[3], {
    ...{ consumer: null, resource: null, operation: null, purpose: null, caseId: null },
    ...{ decision: 'denied', reason: 'UNAUTHENTICATED' },
  })
  const tree = buildTree(records.map((r) => leafHash(jcs(r))))
  const checkpoint: Checkpoint = {
    node: '320000',
    chain: 'replica-a',
    seq: 1,
    root: tree.root.toString('hex'),
    size: records.length,
    prev: '0'.repeat(64),
    time: new Date(NOW).toISOString(),
    alg,
    kid: certThumbprint(certPem),
  }
  const sig = createSigner(alg, keyPem).sign(Buffer.from(jcs(checkpoint))).toString('base64url')
  return records.map((record, index) => ({
    v: 1,
    record,
    index,
    size: records.length,
    path: tree.path(index).map((h) => h.toString('hex')),
    checkpoint,
    sig,
  }))
}

t.test('every positive vector verifies', async (t) => {
  for (const p of V.positives) {
    const r = verify(p.header, p.body)
    t.ok(r.ok, `index ${p.evidence.index}`)
    if (r.ok) t.same(r.evidence, p.evidence)
    t.ok(verifyEvidence({ header: p.header, body: Buffer.from(p.body), certificates: [V.nodeCertificate] }).ok, 'pinned, no CA')
  }
})

t.test('every negative vector fails', async (t) => {
  // What each negative breaks, where the vectors say so; any other negative must just fail.
  const expected: Record<string, string> = {
    'body changed': 'body-digest-mismatch',
    'record field edited': 'bad-inclusion-proof',
    'wrong leaf index': 'bad-inclusion-proof',
    'path element changed': 'bad-inclusion-proof',
    'checkpoint time changed (signature no longer covers it)': 'bad-signature',
    'signature from another checkpoint': 'bad-signature',
  }
  t.ok(V.negatives.length > 0)
  for (const n of V.negatives) {
    const reason = reasonOf(n.header, n.body)
    t.not(reason, 'ok', n.why)
    if (expected[n.why]) t.equal(reason, expected[n.why], n.why)
  }
})

t.test('the sealing side reproduces the vectors', async (t) => {
  for (const p of V.positives) {
    t.equal(jcs(p.evidence.record), p.jcs, `JCS of record ${p.evidence.index}`)
    t.equal(leafHash(jcs(p.evidence.record)).toString('hex'), p.leaf, `leaf ${p.evidence.index}`)
    t.equal(encodeEvidence(p.evidence), p.header, `header ${p.evidence.index}`)
    t.same(decodeEvidence(p.header), p.evidence)
  }
  const ordered = [...V.positives].sort((a, b) => a.evidence.index - b.evidence.index)
  t.same(ordered.map((p) => p.evidence.index), [0, 1, 2, 3, 4], 'one positive per leaf')
  const tree = buildTree(ordered.map((p) => leafHash(jcs(p.evidence.record))))
  t.equal(tree.root.toString('hex'), V.root)
  t.equal(V.checkpoint.root, V.root)
  for (const p of ordered) t.same(tree.path(p.evidence.index).map((h) => h.toString('hex')), p.evidence.path)
  t.equal(checkpointHash(V.checkpoint), V.checkpointHash)
  t.equal(certThumbprint(V.nodeCertificate), V.kid)
  t.equal(x5c(V.nodeCertificate), pemToDer(V.nodeCertificate).toString('base64'))
  t.equal(digest(V.positives[0].body), V.positives[0].evidence.record.responseDigest)
})

t.test('changing any single byte makes verification fail', async (t) => {
  for (const p of V.positives) {
    const body = Buffer.from(p.body)
    for (let i = 0; i < body.length; i++) {
      const b = Buffer.from(body)
      b[i] ^= 0x01
      if (verify(p.header, b).ok) t.fail(`index ${p.evidence.index}: body byte ${i}`)
    }

    // Every string in the record (nested too), one character at a time.
    const edits: [string[], string][] = []
    const walk = (o: Record<string, unknown>, at: string[]) => {
      for (const [k, v] of Object.entries(o)) {
        if (typeof v === 'string') edits.push([[...at, k], v])
        else if (v && typeof v === 'object') walk(v as Record<string, unknown>, [...at, k])
      }
    }
    walk(p.evidence.record, [])
    for (const [keys, value] of edits) {
      for (let i = 0; i < value.length; i++) {
        const e = clone(p.evidence)
        let o = e.record as Record<string, unknown>
        for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>
        const c = value.charCodeAt(i)
        o[keys[keys.length - 1]] = value.slice(0, i) + String.fromCharCode(c ^ (c === 0x31 ? 0x02 : 0x01)) + value.slice(i + 1)
        if (verify(b64(e), p.body).ok) t.fail(`index ${p.evidence.index}: record.${keys.join('.')}[${i}]`)
      }
    }

    for (let j = 0; j < p.evidence.path.length; j++) {
      for (let i = 0; i < 64; i++) {
        const e = clone(p.evidence)
        const h = e.path[j]
        e.path[j] = h.slice(0, i) + (h[i] === '0' ? '1' : '0') + h.slice(i + 1)
        if (verify(b64(e), p.body).ok) t.fail(`index ${p.evidence.index}: path[${j}] digit ${i}`)
      }
    }

    for (const k of Object.keys(p.evidence.checkpoint) as (keyof Checkpoint)[]) {
      const e = clone(p.evidence)
      const v = e.checkpoint[k]
      ;(e.checkpoint as unknown as Record<string, unknown>)[k] =
        typeof v === 'number' ? v + 1 : String(v).replace(/^./, (ch) => (ch === 'a' ? 'b' : 'a'))
      if (verify(b64(e), p.body).ok) t.fail(`index ${p.evidence.index}: checkpoint.${k}`)
    }
  }

  const p = V.positives[2]
  const sig = Buffer.from(p.evidence.sig, 'base64url')
  for (let i = 0; i < sig.length; i++) {
    const s = Buffer.from(sig)
    s[i] ^= 0x80
    const e = clone(p.evidence)
    e.sig = s.toString('base64url')
    if (reasonOf(b64(e), p.body) !== 'bad-signature') t.fail(`sig byte ${i}`)
  }
  t.pass('no single-byte change verified')
})

t.test('certificates: kid selection and trust', async (t) => {
  const p = V.positives[0]
  const base = { header: p.header, body: p.body }
  const check = (o: Partial<Parameters<typeof verifyEvidence>[0]>) => {
    const r = verifyEvidence({ ...base, ...trusted, ...o })
    return r.ok ? 'ok' : r.reason
  }
  t.equal(check({ certificates: [V.caCertificate, 'not a pem', V.nodeCertificate] }), 'ok', 'picks the cert named by kid')
  t.equal(check({ certificates: [V.caCertificate] }), 'unknown-kid')
  t.equal(check({ certificates: [] }), 'unknown-kid')
  t.equal(check({ caCertificate: V.nodeCertificate }), 'untrusted-certificate', 'not issued by that CA')
  t.equal(check({ caCertificate: OTHER_CA }), 'untrusted-certificate', 'another CA')
  t.equal(check({ caCertificate: 'garbage' }), 'untrusted-certificate')
  t.equal(check({ now: Date.parse('2020-01-01T00:00:00Z') }), 'certificate-not-yet-valid')
  t.equal(check({ now: new Date('2040-01-01T00:00:00Z') }), 'certificate-expired')
})

t.test('malformed headers: a plain Error from decode, "malformed" from verify', async (t) => {
  const good = V.positives[0].evidence
  const bad: [string, string][] = [
    ['empty', ''],
    ['not base64url', 'eyJ2Ijox+/'],
    ['padded', `${V.positives[0].header}==`],
    ['not JSON', Buffer.from('{"v":1').toString('base64url')],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url')],
    ['JSON null', b64(null)],
    ['array', b64([good])],
  ]
  const mutations: [string, (e: any) => void][] = [
    ['v 2', (e) => (e.v = 2)],
    ['v "1"', (e) => (e.v = '1')],
    ['no record', (e) => delete e.record],
    ['record.requestId number', (e) => (e.record.requestId = 7)],
    ['no record.caseId', (e) => delete e.record.caseId],
    ['record.consumer string', (e) => (e.record.consumer = 'x')],
    ['record.consumer list', (e) => (e.record.consumer = [])],
    ['no record.consumer', (e) => delete e.record.consumer],
    ['record.purpose number', (e) => (e.record.purpose = 1)],
    ['no record.consumer.region', (e) => delete e.record.consumer.region],
    ['record.subject number', (e) => (e.record.subject = 1)],
    ['responseDigest plain hex', (e) => (e.record.responseDigest = e.record.responseDigest.slice(7))],
    ['responseDigest in an array', (e) => (e.record.responseDigest = [e.record.responseDigest])],
    ['index negative', (e) => (e.index = -1)],
    ['index fractional', (e) => (e.index = 0.5)],
    ['index string', (e) => (e.index = '0')],
    ['size 0', (e) => (e.size = 0)],
    ['path not a list', (e) => (e.path = e.path[0])],
    ['path upper-case hex', (e) => (e.path[0] = e.path[0].toUpperCase())],
    ['path short hash', (e) => (e.path[0] = e.path[0].slice(2))],
    ['path nested', (e) => (e.path[0] = [e.path[0]])],
    ['no checkpoint', (e) => delete e.checkpoint],
    ['checkpoint.seq string', (e) => (e.checkpoint.seq = '42')],
    ['checkpoint.root short', (e) => (e.checkpoint.root = 'abcd')],
    ['checkpoint.prev missing', (e) => delete e.checkpoint.prev],
    ['checkpoint.alg number', (e) => (e.checkpoint.alg = 256)],
    ['sig standard base64', (e) => (e.sig = 'ab+/')],
    ['sig missing', (e) => delete e.sig],
  ]
  for (const [why, mutate] of mutations) {
    const e = clone(good)
    mutate(e)
    bad.push([why, b64(e)])
  }
  for (const [why, header] of bad) {
    try {
      decodeEvidence(header)
      t.fail(`${why}: decoded`)
    } catch (err) {
      t.equal((err as Error).constructor, Error, `${why}: plain Error`)
      t.match((err as Error).message, /^evidence: /, why)
    }
    t.equal(reasonOf(header, V.positives[0].body), 'malformed', why)
  }
  t.throws(() => decodeEvidence(undefined as unknown as string), Error)

  const unknown = clone(good) as any
  Object.assign(unknown.record, { consumer: null, resource: null, operation: null, purpose: null, caseId: null })
  t.same(decodeEvidence(b64(unknown)).record.consumer, null, 'what a refusal did not learn may be null')
})

t.test('index, size and alg consistency', async (t) => {
  const p = V.positives[4]
  const e = clone(p.evidence)
  e.index = 5
  t.equal(reasonOf(b64(e), p.body), 'index-out-of-range')
  const s = clone(p.evidence)
  s.size = 6
  t.equal(reasonOf(b64(s), p.body), 'size-mismatch')
  const a = clone(p.evidence)
  a.checkpoint.alg = 'HS256'
  t.equal(reasonOf(b64(a), p.body), 'unsupported-alg')
})

t.test('sealed here, verified here: RS256, PS256, SM2-SM3', async (t) => {
  const { ca, node, nodeKey } = pki()
  const bodies = Array.from({ length: 7 }, (_, i) => `{"n":${i},"名":"张三"}`)
  const suites: [SuiteName, string, string, string][] = [
    ['RS256', nodeKey, node, ca],
    ['PS256', nodeKey, node, ca],
    ['SM2-SM3', SM2_KEY, SM2_CERT, SM2_CERT],
  ]
  for (const [alg, key, cert, caCert] of suites) {
    const sealed = seal(alg, key, cert, bodies)
    const check = (e: Evidence, body: string) => {
      const r = verifyEvidence({ header: encodeEvidence(e), body, certificates: [cert], caCertificate: caCert, now: NOW })
      return r.ok ? 'ok' : r.reason
    }
    for (const e of sealed) {
      t.equal(check(e, bodies[e.index]), 'ok', `${alg} leaf ${e.index}`)
      t.equal(check(e, bodies[(e.index + 1) % bodies.length]), 'body-digest-mismatch', `${alg} leaf ${e.index}, another body`)
    }
    const forged = clone(sealed[0])
    forged.checkpoint.seq = 2
    t.equal(check(forged, bodies[0]), 'bad-signature', `${alg}: a changed checkpoint`)
  }
})

t.test('CLI: tongban evidence verify', async (t) => {
  const dir = t.testdir()
  const p = V.positives[2]
  const file = (name: string, content: string) => {
    const path = join(dir, name)
    writeFileSync(path, content)
    return path
  }
  const header = file('header.txt', `${p.header}\n`)
  const body = file('body.json', p.body)
  const other = file('other.json', '{"match":"no"}')
  const cert = file('node.pem', V.nodeCertificate)
  const ca = file('ca.pem', V.caCertificate)

  // Swapped only while run() works: tap itself reports on stdout.
  const cli = async (...args: string[]) => {
    const seen = { out: '', err: '' }
    const { write: stdout } = process.stdout
    const { write: stderr } = process.stderr
    process.stdout.write = ((s: string) => ((seen.out += s), true)) as typeof stdout
    process.stderr.write = ((s: string) => ((seen.err += s), true)) as typeof stderr
    try {
      return { code: await run(args), ...seen }
    } finally {
      process.stdout.write = stdout
      process.stderr.write = stderr
    }
  }

  // The vector certificates are valid from 2026-11-26 to 2036-11-23, so --ca checks pass now.
  let r = await cli('verify', '--header', `@${header}`, '--body', body, '--cert', cert, '--ca', ca)
  t.equal(r.code, 0)
  t.match(r.out, /^valid: request 01JDTEST000000000000000002 is leaf 2 of 5/)
  r = await cli('verify', '--header', p.header, '--body', body, '--cert', ca, '--cert', cert, '--json')
  t.equal(r.code, 0)
  t.same(JSON.parse(r.out), { ok: true, record: p.evidence.record })
  r = await cli('verify', '--header', p.header, '--body', other, '--cert', cert, '--json')
  t.equal(r.code, 1)
  t.same(JSON.parse(r.out), { ok: false, reason: 'body-digest-mismatch' })
  r = await cli('verify', '--header', 'garbage!', '--body', body, '--cert', cert)
  t.equal(r.code, 1)
  t.match(r.out, /^invalid: malformed \(evidence: not base64url\)/)

  r = await cli('--help')
  t.equal(r.code, 0)
  t.match(r.out, /^Usage: tongban evidence verify/)
  const usage: [string, string[]][] = [
    ['no --header', ['verify', '--body', body, '--cert', cert]],
    ['no subcommand', ['--header', p.header, '--body', body, '--cert', cert]],
    ['unknown subcommand', ['check', '--header', p.header, '--body', body, '--cert', cert]],
    ['unknown option', ['verify', '--header', p.header, '--body', body, '--cert', cert, '--bogus']],
    ['unreadable file', ['verify', '--header', p.header, '--body', join(dir, 'missing'), '--cert', cert]],
  ]
  for (const [why, args] of usage) {
    r = await cli(...args)
    t.equal(r.code, 2, why)
    t.match(r.err, /^tongban evidence: .*Usage:/s, why)
  }
})
