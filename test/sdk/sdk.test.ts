// The client SDK against a running gateway (app.listen on a loopback port, real PostgreSQL,
// Redis and simulated providers): PKCS#12 and PEM credentials, typed verifications and
// resource queries, typed errors, retries with the same request id, evidence verified and
// tampering rejected, token refresh across expiry, bulk verification, and types that match
// the JSON Schemas.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { join } from 'node:path'
import { request } from 'undici'
import { startNode, ROOT } from '../helpers/harness.js'
import { samplePersons } from '../../dev/providers/population.js'
import { DEV_P12_PASSWORD } from '../../dev/pki.js'
import { TongbanClient, TongbanError, EvidenceVerifier, type ClientOptions } from '../../packages/client/src/index.js'
import { verifyEvidence } from '../../src/evidence/evidence.js'
import { generateClientTypes, TYPES_FILE } from '../../scripts/gen-client-types.js'

// Waits for real time (token expiry) or real work (10,000 items): more than tap's default.
t.setTimeout(300_000)

const h = await startNode({ tag: 'sdk', env: { TONGBAN_TOKEN_TTL: '30' } })
await h.app.listen({ port: 0, host: '127.0.0.1' })
const base = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`
t.teardown(() => h.close())

const p12 = readFileSync(join(ROOT, 'certs/clients/jn-civil-affairs.p12'))
const people = samplePersons(50)
const [p] = people
const clients: TongbanClient[] = []
const make = (o: Partial<ClientOptions> = {}) => {
  const c = new TongbanClient({
    baseUrl: base,
    credential: { p12, password: DEV_P12_PASSWORD },
    context: { purpose: 'SA-01', purposeText: '低保审核', caseId: 'JN-SDK-1' },
    backoffMs: 20,
    ...o,
  })
  clients.push(c)
  return c
}
t.teardown(() => Promise.all(clients.map((c) => c.close())))

// A man in the middle, to break answers on purpose. Modes per request id prefix are not
// needed: one mode at a time.
type Mode = 'pass' | 'flip-body' | 'edit-record' | 'fail-first' | 'always-503'
let mode: Mode = 'pass'
const seen: string[] = []
const failedOnce = new Set<string>()
const proxy: Server = createServer(async (req, res) => {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  const rid = String(req.headers['tongban-request-id'] ?? '')
  seen.push(rid)
  if (mode === 'always-503' || (mode === 'fail-first' && !failedOnce.has(rid))) {
    failedOnce.add(rid)
    res.writeHead(503, { 'content-type': 'application/problem+json' })
    res.end(JSON.stringify({ type: 'urn:tongban:problem:AUDIT_UNAVAILABLE', title: 'Service Unavailable', status: 503, code: 'AUDIT_UNAVAILABLE', requestId: rid }))
    return
  }
  const headers = { ...req.headers }
  delete headers.host
  const up = await request(`${base}${req.url}`, { method: req.method as 'GET', headers, body: chunks.length ? Buffer.concat(chunks) : undefined })
  let body = Buffer.from(await up.body.arrayBuffer())
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(up.headers)) if (typeof v === 'string' && k !== 'content-length' && k !== 'transfer-encoding' && k !== 'connection') out[k] = v
  if (mode === 'flip-body') body = Buffer.from(body.toString('utf8').replace('"match":true', '"match":false'))
  if (mode === 'edit-record' && out['tongban-evidence']) {
    const e = JSON.parse(Buffer.from(out['tongban-evidence'], 'base64url').toString('utf8'))
    e.record.caseId = 'SOMETHING-ELSE'
    out['tongban-evidence'] = Buffer.from(JSON.stringify(e)).toString('base64url')
  }
  res.writeHead(up.statusCode, out)
  res.end(body)
})
await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r))
const proxied = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`
t.teardown(() => new Promise((r) => proxy.close(r)))

t.test('PKCS#12 credential: the client id and the CA come from the file', async (t) => {
  const c = make()
  t.equal(c.credential.clientId, 'jn-civil-affairs')
  t.equal(c.credential.caPems.length, 1)
  t.throws(() => make({ credential: { p12, password: 'wrong' } }), /PKCS#12/)
})

t.test('typed verification with its evidence verified', async (t) => {
  const c = make()
  const answer = await c.verify.identity({ idNumber: p.idNumber, name: p.name }, { operator: 'clerk-01' })
  t.equal(answer.data.match, true)
  t.equal(answer.status, 200)
  t.ok(answer.evidence, 'evidence checked and decoded')
  t.equal(answer.evidence!.record.requestId, answer.requestId)
  t.equal(answer.evidence!.record.caseId, 'JN-SDK-1')
  t.equal(answer.evidence!.record.purpose, 'SA-01')
  t.equal(answer.evidence!.record.operator, 'clerk-01')
  t.type(answer.evidenceHeader, 'string')

  const no = await c.verify.identity({ idNumber: p.idNumber, name: '不是本人' })
  t.equal(no.data.match, false)
  const prop = await c.verify.property({ idNumber: p.idNumber, name: p.name })
  t.type(prop.data.hasProperty, 'boolean')
  const viaResource = await c.query('103002/00001', 'verify', { idNumber: p.idNumber, name: p.name }, { idempotent: true })
  t.type(viaResource.data.hasProperty, 'boolean', 'resource queries are typed by code and operation')
  const node = await c.node()
  t.equal(node.id, h.config.node.id)
})

t.test('PEM credential works the same', async (t) => {
  const c = make({
    credential: { keyFile: join(ROOT, 'certs/clients/jn-civil-affairs.key.pem'), certFile: join(ROOT, 'certs/clients/jn-civil-affairs.crt.pem') },
    ca: readFileSync(join(ROOT, 'certs/ca.crt.pem'), 'utf8'),
  })
  t.equal((await c.verify.identity({ idNumber: p.idNumber, name: p.name })).data.match, true)
  t.throws(() => make({ credential: { keyFile: join(ROOT, 'certs/clients/jn-civil-affairs.key.pem') } }), /client id/, 'a bare key needs its client id')
  t.throws(
    () => make({ credential: { keyFile: join(ROOT, 'certs/clients/jn-civil-affairs.key.pem'), clientId: 'jn-civil-affairs' } }),
    /trusted CA/,
    'verification without a trust anchor is refused up front',
  )
})

t.test('problems become TongbanError with code, status and request id', async (t) => {
  const c = make()
  const expectError = async (p: Promise<unknown>, code: string, status: number) => {
    try {
      await p
      t.fail(`expected ${code}`)
    } catch (e) {
      t.type(e, TongbanError)
      const err = e as TongbanError
      t.equal(err.code, code)
      t.equal(err.status, status)
      t.match(err.requestId, /^[A-Za-z0-9._:-]{8,64}$/)
      t.match(err.message, code)
      return err
    }
  }
  const bad = await expectError(c.verify.identity({ idNumber: '110105194912310021', name: 'x' }), 'INPUT_INVALID_ID_NUMBER', 400)
  t.equal(bad!.problem?.status, 400)
  await expectError(c.query('103002/00002', 'query', { idNumber: p.idNumber, name: p.name }), 'POLICY_NO_GRANT', 403)
  await expectError(c.query('301002/00001', 'query', { idNumber: p.idNumber, name: p.name }), 'POLICY_SHARE_NONE', 403)
  await expectError(c.verify.identity({ idNumber: p.idNumber, name: p.name }, { purpose: 'NOPE-99' }), 'INPUT_PURPOSE_UNKNOWN', 400)
  await expectError(c.query('999999/00001', 'query', {}), 'RESOURCE_NOT_FOUND', 404)
  const mine = await expectError(c.verify.identity({ idNumber: '110105194912310021', name: 'x' }, { requestId: 'my-own-request-0001' }), 'INPUT_INVALID_ID_NUMBER', 400)
  t.equal(mine!.clientRequestId, 'my-own-request-0001', 'a caller-chosen request id comes back')
  t.match(mine!.requestId, /^[0-9A-Z]{26}$/, 'beside the node\'s own')
  const down = make({ baseUrl: 'http://127.0.0.1:1', retries: 0 })
  await expectError(down.node(), 'NETWORK_ERROR', 0).catch(() => {})
})

t.test('idempotent calls are retried with the same request id; others are not', async (t) => {
  const c = make({ baseUrl: proxied })
  await c.node()
  await c.token()
  mode = 'fail-first'
  seen.length = 0
  const answer = await c.verify.identity({ idNumber: p.idNumber, name: p.name })
  t.equal(answer.data.match, true, 'the second attempt succeeds')
  const attempts = seen.filter((id) => id === answer.clientRequestId)
  t.equal(attempts.length, 2, 'two attempts')
  t.equal(answer.evidence!.record.clientRequestId, answer.clientRequestId, 'both under one client request id')
  t.equal(answer.evidence!.record.requestId, answer.requestId, 'the answer under the node\'s own')

  seen.length = 0
  const err = await c.query('103002/00001', 'verify', { idNumber: p.idNumber, name: p.name }).catch((e) => e)
  t.equal(err.code, 'AUDIT_UNAVAILABLE', 'not retried unless declared idempotent')
  t.equal(seen.length, 1)

  mode = 'always-503'
  seen.length = 0
  const gaveUp = await c.verify.identity({ idNumber: p.idNumber, name: p.name }).catch((e) => e)
  t.equal(gaveUp.code, 'AUDIT_UNAVAILABLE')
  t.equal(gaveUp.retryable, true)
  t.equal(seen.length, 3, '1 + 2 retries, then the error')
  mode = 'pass'
})

t.test('tampered answers and untrusted keys are rejected', async (t) => {
  const c = make({ baseUrl: proxied })
  await c.node()
  mode = 'flip-body'
  const flipped = await c.verify.identity({ idNumber: p.idNumber, name: p.name }).catch((e) => e)
  t.type(flipped, TongbanError)
  t.equal(flipped.code, 'EVIDENCE_INVALID')
  t.match(flipped.detail, /body-digest-mismatch/)

  mode = 'edit-record'
  const edited = await c.verify.identity({ idNumber: p.idNumber, name: p.name }).catch((e) => e)
  t.equal(edited.code, 'EVIDENCE_INVALID')
  t.match(edited.detail, /bad-inclusion-proof/)
  mode = 'pass'

  // Trusting another anchor (here: a certificate that is no CA at all).
  const stranger = make({ ca: readFileSync(join(ROOT, 'certs/clients/nj-housing.crt.pem'), 'utf8') })
  const untrusted = await stranger.verify.identity({ idNumber: p.idNumber, name: p.name }).catch((e) => e)
  t.equal(untrusted.code, 'EVIDENCE_INVALID')
  t.match(untrusted.detail, /untrusted-certificate/)

  const unchecked = make({ baseUrl: proxied, verifyEvidence: false })
  mode = 'flip-body'
  const taken = await unchecked.verify.identity({ idNumber: p.idNumber, name: p.name })
  t.equal(taken.data.match, false, 'with verifyEvidence: false the caller takes the risk')
  mode = 'pass'
})

t.test('concurrent calls share one token', async (t) => {
  const c = make()
  const answers = await Promise.all(people.slice(0, 20).map((q) => c.verify.identity({ idNumber: q.idNumber, name: q.name })))
  t.ok(answers.every((a) => a.data.match))
  t.equal(c.tokensFetched, 1)
})

t.test('bulk verification through the SDK, every line verified', async (t) => {
  const c = make()
  const submitted = await c.batches.submit({ service: 'identity' }, people.slice(0, 25).map((q) => ({ idNumber: q.idNumber, name: q.name })))
  t.equal(submitted.total, 25)
  const polls: number[] = []
  const done = await c.batches.wait(submitted.id, { intervalMs: 100, onProgress: (pr) => polls.push(pr.done) })
  t.equal(done.status, 'completed')
  t.equal(done.succeeded, 25)
  const lines = []
  for await (const r of c.batches.results<{ match: boolean }>(done.id)) lines.push(r)
  t.equal(lines.length, 25)
  t.ok(lines.every((r) => r.body?.match === true))
})

t.test("the SDK's cached verifier agrees with the reference verifier on the shared vectors", async (t) => {
  const V = JSON.parse(readFileSync(join(ROOT, 'test/vectors/evidence-v1.json'), 'utf8'))
  const now = Date.parse('2027-01-01T00:00:00Z') // inside both vector certificates' validity
  const reference = (header: string, body: string, ca?: string) => {
    const r = verifyEvidence({ header, body, certificates: [V.nodeCertificate], caCertificate: ca, now })
    return r.ok ? 'ok' : r.reason
  }
  const sdkSide = (v: EvidenceVerifier, header: string, body: string, at = now) => {
    const r = v.verify(header, body, at)
    return r.ok ? 'ok' : r.reason
  }
  const pinned = new EvidenceVerifier([V.caCertificate])
  t.equal(pinned.addCertificate(V.nodeCertificate), V.kid)
  const bare = new EvidenceVerifier([])
  bare.addCertificate(V.nodeCertificate)
  const other = new EvidenceVerifier([readFileSync(join(ROOT, 'certs/ca.crt.pem'), 'utf8')])
  other.addCertificate(V.nodeCertificate)
  // Twice: the second pass goes through the caches.
  for (let pass = 0; pass < 2; pass++) {
    for (const p of V.positives) {
      t.equal(sdkSide(pinned, p.header, p.body), 'ok', `positive ${p.evidence.index}`)
      t.equal(sdkSide(bare, p.header, p.body), 'ok')
      t.equal(sdkSide(other, p.header, p.body), 'untrusted-certificate', 'another CA is not trusted')
    }
    for (const n of V.negatives) {
      t.equal(sdkSide(pinned, n.header, n.body), reference(n.header, n.body, V.caCertificate), n.why)
      t.not(sdkSide(pinned, n.header, n.body), 'ok')
    }
  }
  const late = new EvidenceVerifier([V.caCertificate])
  late.addCertificate(V.nodeCertificate)
  const p0 = V.positives[0]
  t.equal(sdkSide(late, p0.header, p0.body, Date.parse('2100-01-01T00:00:00Z')), 'certificate-expired')
  t.equal(sdkSide(new EvidenceVerifier([V.caCertificate]), p0.header, p0.body), 'unknown-kid')
})

t.test('types match the JSON Schemas (regenerating changes nothing)', async (t) => {
  t.equal(await generateClientTypes(), readFileSync(TYPES_FILE, 'utf8'), 'packages/client/src/types.ts is current: run npm run gen:client-types')
})

t.test('tokens are refreshed before they expire, and once more if the gateway says expired', async (t) => {
  t.equal(h.config.token.ttlSeconds, 30)
  const early = make() // refreshes ahead: 30 s lifetime → a fifth of it (6 s) early
  const late = make() // made to hold on to its token past expiry: the gateway's 401 makes it refresh
  await early.verify.identity({ idNumber: p.idNumber, name: p.name })
  await late.verify.identity({ idNumber: p.idNumber, name: p.name })
  const first = await early.token()
  ;(late as unknown as { tokenState: { refreshAt: number } }).tokenState.refreshAt = Number.POSITIVE_INFINITY
  await new Promise((r) => setTimeout(r, 31_000))

  const a = await early.verify.identity({ idNumber: p.idNumber, name: p.name })
  t.equal(a.data.match, true)
  t.equal(early.tokensFetched, 2, 'a fresh token before the old one ran out')
  t.not(await early.token(), first)

  const b = await late.verify.identity({ idNumber: p.idNumber, name: p.name })
  t.equal(b.data.match, true, 'AUTH_TOKEN_EXPIRED → new token → same call again, transparently')
  t.equal(late.tokensFetched, 2)
})
