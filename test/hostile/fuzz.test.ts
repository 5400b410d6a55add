// Hostile input against a real node (PostgreSQL, Redis, the simulated providers), over
// 10,000 requests: a hand corpus (invalid UTF-8, deep nesting, huge numbers, __proto__ and
// constructor keys, 10 MB bodies, header injection, path traversal in resource codes, SQL
// fragments) and fast-check generated requests. For every answer:
// - no 5xx other than the documented 502/503/504 of an upstream or a store;
// - every error is application/problem+json with its status, a code and the request id;
// - every request that reached an audited route has exactly one audit record;
// - no identifier or name sent ever appears in the logs (captured from pino).
// And the process is still healthy at the end.
import t from 'tap'
import fc from 'fast-check'
import { Writable } from 'node:stream'
import { startNode, context } from '../helpers/harness.js'
import { buildApp, redactPaths } from '../../src/app.js'
import { person, samplePersons } from '../../dev/providers/population.js'
import type { FastifyInstance, InjectOptions } from 'fastify'

const SEED = Number(process.env.FUZZ_SEED ?? 20261126)
const GENERATED = Number(process.env.FUZZ_RUNS ?? 9000)

// Over 10,000 requests on a shared 2-core machine: more than the default two minutes.
t.setTimeout(480_000)

const h = await startNode({ tag: 'fuzz' })
t.teardown(() => h.close())

// A second app on the node's schema (its own audit chain) with a capturing logger, at the
// production redaction settings and at debug level, so that anything logged is seen.
const logLines: string[] = []
const sink = new Writable({
  write(chunk, _enc, done) {
    logLines.push(chunk.toString())
    done()
  },
})
const app: FastifyInstance = await buildApp({ ...h.config, replicaId: `${h.config.replicaId}-fz` }, {
  logger: { level: 'debug', redact: { paths: redactPaths, censor: '[redacted]' }, stream: sink },
})
// Which requests reached an audited route, as the server itself saw it, by the client's
// request id (the node's own differs: src/app.ts).
const routedToAudit = new Map<string, boolean>()
app.addHook('onResponse', async (request) => {
  routedToAudit.set(String(request.headers['tongban-request-id']), !!request.routeOptions.config?.audit)
})
await app.ready()
t.teardown(() => app.close())

const token = await h.token('jn-civil-affairs')
const people = samplePersons(50)
const sentSecrets = new Set<string>()
for (const p of people) {
  sentSecrets.add(p.idNumber)
  sentSecrets.add(p.name)
}

interface Outcome {
  id: string
  status: number
  code?: string
  audited: boolean
}
const outcomes: Outcome[] = []
const labels = new Map<string, string>()
const failures: string[] = []
let n = 0

// Refused by the router before any route matched (no onResponse of a route either).
const UNROUTED = new Set(['INPUT_BAD_URL', 'INPUT_URL_TOO_LONG'])

/** Sends one request and checks what can be checked from the answer alone. */
async function send(o: InjectOptions & { url: string }, label: string): Promise<void> {
  const id = `fuzzreq-${String(n++).padStart(6, '0')}`
  const headers = { ...(o.headers as Record<string, string> | undefined), 'tongban-request-id': id }
  let res
  try {
    res = await app.inject({ ...o, headers })
  } catch (e) {
    // The HTTP layer itself refuses what cannot be sent (a CR/LF in a header value):
    // nothing reached the gateway.
    if (/Invalid character|ERR_INVALID_CHAR|ERR_HTTP_INVALID_HEADER_VALUE|Invalid header/i.test(String(e))) return
    failures.push(`${label}: inject threw ${e}`)
    return
  }
  const status = res.statusCode
  let code: string | undefined
  if (status >= 500 && ![502, 503, 504].includes(status)) failures.push(`${label}: ${status} ${res.body.slice(0, 200)}`)
  if (status >= 400 && o.method !== 'HEAD') {
    if (!/^application\/problem\+json/.test(String(res.headers['content-type']))) failures.push(`${label}: ${status} not problem+json (${res.headers['content-type']})`)
    try {
      const p = JSON.parse(res.body)
      code = p.code
      if (p.status !== status || typeof p.code !== 'string' || p.requestId !== res.headers['tongban-request-id']) failures.push(`${label}: problem body ${res.body.slice(0, 200)}`)
    } catch {
      failures.push(`${label}: ${status} body is not JSON: ${res.body.slice(0, 100)}`)
    }
  }
  if (!/^[0-9A-Z]{26}$/.test(String(res.headers['tongban-request-id']))) failures.push(`${label}: no request id of the node's own`)
  if (res.headers['tongban-client-request-id'] !== id) failures.push(`${label}: the client's request id not echoed`)
  if (res.headers['set-cookie']) failures.push(`${label}: a header was injected`)
  const audited = routedToAudit.get(id)
  if (audited === undefined && !UNROUTED.has(code ?? '')) failures.push(`${label}: the server saw no request ${id}`)
  outcomes.push({ id, status, code, audited: audited === true })
  labels.set(id, label)
}

const auth = { authorization: `Bearer ${token}` }
const json = { 'content-type': 'application/json' }
const verify = (payload: unknown, extra: Record<string, string> = {}): InjectOptions & { url: string } => ({
  method: 'POST', url: '/v1/verify/identity', headers: { ...auth, ...json, ...context(), ...extra },
  payload: typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload),
})
const p0 = person(1)

t.test('hand corpus', async (t) => {
  const deep = (d: number, open: string, close: string, inner = '1') => open.repeat(d) + inner + close.repeat(d)
  const corpus: [string, InjectOptions & { url: string }][] = [
    // Encodings
    ['invalid utf-8', verify(Buffer.from([0x7b, 0x22, 0x69, 0x64, 0x4e, 0x75, 0x6d, 0x62, 0x65, 0x72, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x7d]))],
    ['overlong utf-8', verify(Buffer.concat([Buffer.from('{"idNumber":"'), Buffer.from([0xc0, 0xaf, 0xe0, 0x80, 0xaf]), Buffer.from('","name":"x"}')]))],
    ['lone surrogate escape', verify('{"idNumber":"\\ud800","name":"\\udfff"}')],
    ['nul in strings', verify({ idNumber: `${p0.idNumber}\u0000`, name: `${p0.name}\u0000` })],
    ['bom', verify(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ idNumber: p0.idNumber, name: p0.name }))]))],
    ['utf-16 body', verify(Buffer.from(JSON.stringify({ idNumber: p0.idNumber, name: p0.name }), 'utf16le'))],
    // Structure
    ['deep arrays', verify(deep(100_000, '[', ']'))],
    ['deep objects', verify(deep(50_000, '{"a":', '}'))],
    ['deep in a field', verify(`{"idNumber":${deep(20_000, '[', ']')},"name":"x"}`)],
    ['huge number', verify(`{"idNumber":1e400,"name":-1e400}`)],
    ['huge integer', verify(`{"idNumber":${'9'.repeat(5000)},"name":"x"}`)],
    ['number id', verify({ idNumber: 110101199003070000, name: p0.name })],
    ['__proto__', verify(`{"idNumber":"${p0.idNumber}","name":"${p0.name}","__proto__":{"admin":true}}`)],
    ['constructor.prototype', verify(`{"idNumber":"${p0.idNumber}","name":"x","constructor":{"prototype":{"admin":true}}}`)],
    ['nested __proto__', verify(`{"idNumber":{"__proto__":{"length":1}},"name":"x"}`)],
    ['duplicate keys', verify(`{"idNumber":"${p0.idNumber}","idNumber":"x","name":"${p0.name}"}`)],
    ['empty body', verify('')],
    ['null body', verify('null')],
    ['array body', verify('[]')],
    ['string body', verify('"x"')],
    ['truncated', verify('{"idNumber":"1101')],
    ['trailing garbage', verify(`{"idNumber":"${p0.idNumber}","name":"${p0.name}"}xyz`)],
    ['extra fields', verify({ idNumber: p0.idNumber, name: p0.name, sql: "'; DROP TABLE audit_records; --" })],
    // Size
    ['10 MB body', verify(`{"idNumber":"${'1'.repeat(10 * 1024 * 1024)}","name":"x"}`)],
    ['10 MB of whitespace', verify(' '.repeat(10 * 1024 * 1024) + '{}')],
    ['long name', verify({ idNumber: p0.idNumber, name: '名'.repeat(20_000) })],
    ['content-length lies', { ...verify({ idNumber: p0.idNumber, name: p0.name }), headers: { ...auth, ...json, ...context(), 'content-length': '5' } }],
    // Media types
    ['text/plain', { ...verify('x'), headers: { ...auth, ...context(), 'content-type': 'text/plain' } }],
    ['xml', { ...verify('<a/>'), headers: { ...auth, ...context(), 'content-type': 'application/xml' } }],
    ['json with charset', { ...verify({ idNumber: p0.idNumber, name: p0.name }), headers: { ...auth, ...context(), 'content-type': 'application/json; charset=latin1' } }],
    ['no content-type', { ...verify('{}'), headers: { ...auth, ...context() } }],
    // Headers
    ['header CRLF injection', verify({ idNumber: p0.idNumber, name: p0.name }, { 'tongban-case-id': 'A\r\nSet-Cookie: x=1' })],
    ['request id injection', verify({ idNumber: p0.idNumber, name: p0.name }, { 'tongban-request-id': 'x\r\nSet-Cookie: y' })],
    ['purpose sql', verify({ idNumber: p0.idNumber, name: p0.name }, { 'tongban-purpose': "SA-01' OR '1'='1" })],
    ['purpose unknown', verify({ idNumber: p0.idNumber, name: p0.name }, { 'tongban-purpose': 'DROP-TABLE' })],
    ['purpose huge', verify({ idNumber: p0.idNumber, name: p0.name }, { 'tongban-purpose': 'SA-01;' + '%E4'.repeat(3000) })],
    ['case id sql', verify({ idNumber: p0.idNumber, name: p0.name }, { 'tongban-case-id': "1'; DELETE FROM grants; --" })],
    ['case id traversal', verify({ idNumber: p0.idNumber, name: p0.name }, { 'tongban-case-id': '../../etc/passwd' })],
    ['operator unicode', verify({ idNumber: p0.idNumber, name: p0.name }, { 'tongban-operator': 'Ã©Ã' })],
    ['bearer garbage', { ...verify({ idNumber: p0.idNumber, name: p0.name }), headers: { ...json, ...context(), authorization: 'Bearer ' + 'A'.repeat(9000) } }],
    ['basic auth', { ...verify({ idNumber: p0.idNumber, name: p0.name }), headers: { ...json, ...context(), authorization: 'Basic YWRtaW46YWRtaW4=' } }],
    ['two tokens', { ...verify({ idNumber: p0.idNumber, name: p0.name }), headers: { ...json, ...context(), authorization: `Bearer ${token} Bearer ${token}` } }],
    // Paths
    ...[
      '/v1/resources/..%2F..%2Fetc%2Fpasswd/query',
      '/v1/resources/../../v1/oauth/token/query',
      '/v1/resources/%2e%2e%2f%2e%2e/query',
      '/v1/resources/101001%2F00001%00/verify',
      '/v1/resources/101001/00001%2F..%2F..%2Fadmin/verify',
      "/v1/resources/101001%2F00001'%20OR%201=1--/verify",
      '/v1/resources/101001%2F00001/verify%3Bdrop',
      '/v1/resources/' + 'a'.repeat(5000) + '/verify',
      '/v1/resources/%ff%fe/verify',
      '/v1/resources/%/verify',
      '/v1/resources/101001/00001/verify/../../../x',
      '/v1/verify/..%2Fidentity',
      '/v1/verify/identity%00',
      '/v1/verify/%E8%BA%AB%E4%BB%BD',
      '/v1/verify/identity?__proto__[x]=1',
      '//v1//verify//identity',
      '/V1/VERIFY/IDENTITY',
    ].map((url, i) => [`path ${i}`, { ...verify({ idNumber: p0.idNumber, name: p0.name }), url }] as [string, InjectOptions & { url: string }]),
    // Methods
    ...(['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'] as const).map((method) => [`method ${method}`, { ...verify({}), method }] as [string, InjectOptions & { url: string }]),
    // Token endpoint
    ['token sql', { method: 'POST', url: '/v1/oauth/token', headers: json, payload: JSON.stringify({ grant_type: "client_credentials' --", client_assertion_type: 'x', client_assertion: "' OR 1=1" }) }],
    ['token form proto', { method: 'POST', url: '/v1/oauth/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: '__proto__[x]=1&constructor[prototype][y]=2&grant_type=client_credentials' }],
    ['token huge assertion', { method: 'POST', url: '/v1/oauth/token', headers: json, payload: JSON.stringify({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: 'e'.repeat(60_000) }) }],
    ['token alg none assertion', { method: 'POST', url: '/v1/oauth/token', headers: json, payload: JSON.stringify({ grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"iss":"jn-civil-affairs","sub":"jn-civil-affairs"}').toString('base64url')}.` }) }],
  ]
  // SQL fragments in every string of a valid-looking body.
  for (const [i, frag] of ["' OR '1'='1", "'; DROP TABLE audit_records; --", '" OR ""="', '1); SELECT pg_sleep(10); --', '$1', '\\x00', "E'\\\\'", '%s%s%n', '${jndi:ldap://x}', '{{7*7}}'].entries()) {
    corpus.push([`sql name ${i}`, verify({ idNumber: p0.idNumber, name: frag })])
    corpus.push([`sql id ${i}`, verify({ idNumber: frag, name: p0.name })])
    corpus.push([`sql resource body ${i}`, { ...verify({ idNumber: p0.idNumber, name: frag }), url: `/v1/resources/${encodeURIComponent('103002/00001')}/verify` }])
  }
  for (const [label, req] of corpus) await send(req, label)
  t.same(failures, [], `${corpus.length} corpus requests: no 5xx, every error problem+json`)
})

t.test(`fast-check: ${GENERATED} generated requests`, async (t) => {
  const printable = fc.string({ maxLength: 80 }).filter((s) => /^[\t\x20-\x7e]*$/.test(s))
  const idLike = fc.oneof(
    fc.constantFrom(...people.map((p) => p.idNumber)),
    fc.stringMatching(/^[0-9]{17}[0-9X]$/),
    fc.string({ maxLength: 30 }),
    fc.integer(),
    fc.double(),
    fc.constant(null),
  )
  const nameLike = fc.oneof(
    fc.constantFrom(...people.map((p) => p.name)),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.constantFrom("' OR 1=1 --", '<script>', '../../', '\u0000', '__proto__'),
    fc.jsonValue({ maxDepth: 3 }),
  )
  const body = fc.oneof(
    { weight: 5, arbitrary: fc.record({ idNumber: idLike, name: nameLike }, { requiredKeys: [] }) },
    { weight: 2, arbitrary: fc.dictionary(fc.constantFrom('idNumber', 'name', '__proto__', 'constructor', 'prototype', 'toString', 'extra'), fc.jsonValue({ maxDepth: 4 })) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 6 }) },
  ).map((v) => JSON.stringify(v) ?? 'null')
  const rawBody = fc.oneof(
    { weight: 8, arbitrary: body },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a)) },
  )
  const codeSeg = fc.oneof(
    fc.constantFrom('101001%2F00001', '103002%2F00001', '103002%2F00002', '101001/00001', '999999%2F00001', '..%2F..', '%2e%2e'),
    fc.string({ maxLength: 20 }).map(encodeURIComponent),
  )
  const path = fc.oneof(
    { weight: 6, arbitrary: fc.constant('/v1/verify/identity') },
    { weight: 1, arbitrary: fc.constantFrom('/v1/verify/property', '/v1/verify/tax', '/v1/verify/degree', '/v1/verify/nothing') },
    { weight: 3, arbitrary: fc.tuple(codeSeg, fc.constantFrom('verify', 'query', 'x', '..')).map(([c, op]) => `/v1/resources/${c}/${op}`) },
    { weight: 1, arbitrary: fc.constant('/v1/oauth/token') },
  )
  const headers = fc.record({
    // Mostly well-formed context, so that most bodies travel the whole pipeline.
    purpose: fc.oneof({ weight: 6, arbitrary: fc.constantFrom('SA-01', 'SA-01;%E4%BD%8E%E4%BF%9D', 'HS-01') }, { weight: 1, arbitrary: printable }),
    caseId: fc.oneof({ weight: 6, arbitrary: fc.constant('JN-2026-1000') }, { weight: 1, arbitrary: printable }),
    operator: fc.option(printable, { nil: undefined, freq: 6 }),
    contentType: fc.oneof({ weight: 8, arbitrary: fc.constant('application/json') }, { weight: 1, arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16', 'multipart/form-data') }),
    auth: fc.oneof({ weight: 8, arbitrary: fc.constant(`Bearer ${token}`) }, { weight: 1, arbitrary: printable.map((s) => `Bearer ${s}`) }, { weight: 1, arbitrary: fc.constant(undefined) }),
  })
  const request = fc.record({ path, body: rawBody, headers })
  const runs = fc.sample(request, { numRuns: GENERATED, seed: SEED })
  t.comment(`seed ${SEED} (set FUZZ_SEED to replay)`)
  // Sixteen at a time: group commit works as in production.
  for (let i = 0; i < runs.length; i += 16) {
    await Promise.all(runs.slice(i, i + 16).map((r, j) => {
      const hd: Record<string, string> = { 'tongban-purpose': r.headers.purpose, 'tongban-case-id': r.headers.caseId, 'content-type': r.headers.contentType }
      if (r.headers.operator !== undefined) hd['tongban-operator'] = r.headers.operator
      if (r.headers.auth !== undefined) hd.authorization = r.headers.auth
      return send({ method: 'POST', url: r.path, headers: hd, payload: r.body }, `generated #${i + j} ${JSON.stringify(r).slice(0, 300)}`)
    }))
  }
  t.same(failures.slice(0, 20), [], `${runs.length} generated requests: no 5xx, every error problem+json`)
})

t.test('fast-check property with shrinking: any JSON body to verify/identity', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.jsonValue({ maxDepth: 5 }), async (v) => {
      const before = failures.length
      await send(verify(JSON.stringify(v) ?? 'null'), `property ${JSON.stringify(v).slice(0, 200)}`)
      return failures.length === before
    }),
    { numRuns: 1000, seed: SEED },
  )
  t.pass('1000 JSON bodies')
})

t.test('every request that reached an audited route has exactly one record', async (t) => {
  t.ok(outcomes.length >= 10_000, `${outcomes.length} requests answered`)
  const expected = outcomes.filter((o) => o.audited)
  const rows = await h.query("SELECT client_request_id, count(*)::int AS n FROM audit_records WHERE client_request_id LIKE 'fuzzreq-%' GROUP BY client_request_id")
  const count = new Map(rows.map((r) => [r.client_request_id as string, r.n as number]))
  const missing = expected.filter((o) => count.get(o.id) !== 1)
  t.same(missing.slice(0, 10).map((o) => ({ ...o, records: count.get(o.id) ?? 0, request: labels.get(o.id)?.slice(0, 300) })), [], `${expected.length} audited requests, each with one record`)
  const tally: Record<string, number> = {}
  for (const o of outcomes) tally[`${o.status} ${o.code ?? ''}`.trim()] = (tally[`${o.status} ${o.code ?? ''}`.trim()] ?? 0) + 1
  t.comment(JSON.stringify(tally))
  t.ok(outcomes.some((o) => o.status === 200), 'some requests were valid and answered')
})

t.test('no personal data in the logs', async (t) => {
  t.ok(logLines.length > 1000, `${logLines.length} log lines captured`)
  const text = logLines.join('')
  const leaked = [...sentSecrets].filter((s) => text.includes(s))
  t.same(leaked, [], 'no id number or name that was sent appears in the logs')
  t.notMatch(text, /\b[1-9][0-9]{5}(18|19|20)[0-9]{2}(0[1-9]|1[0-2])[0-9]{2}[0-9]{3}[0-9X]\b/, 'nothing shaped like an id number')
  t.notMatch(text, /Bearer ey/, 'no token')
})

t.test('the node is still healthy', async (t) => {
  const res = await app.inject({ method: 'GET', url: '/readyz' })
  t.equal(res.statusCode, 200)
  const ok = await app.inject(verify({ idNumber: p0.idNumber, name: p0.name }))
  t.equal(ok.statusCode, 200, 'and answers a valid query')
})
