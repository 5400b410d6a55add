// Observability: /metrics counts requests by route, resource, service, outcome and code,
// reports audit sealing, queues, Redis and the PostgreSQL pool; access is loopback-only
// unless a metrics token is configured; and the JSON logs carry the request id and never
// personal data or credentials.
import t from 'tap'
import { Writable } from 'node:stream'
import { startNode, context } from '../helpers/harness.js'
import { samplePersons } from '../../dev/providers/population.js'
import { buildApp, redactPaths } from '../../src/app.js'

const h = await startNode({ tag: 'metrics' })
t.teardown(() => h.close())
const token = await h.token('jn-civil-affairs')
const [p] = samplePersons(1)

const scrape = async (remoteAddress = '127.0.0.1', headers: Record<string, string> = {}) =>
  h.app.inject({ method: 'GET', url: '/metrics', remoteAddress, headers })

/** The value of one sample line, e.g. metric{a="b"} 3 → 3 (all given labels must match). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return undefined
}

const verify = (body: object) =>
  h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${token}`, ...context() }, payload: body })

t.test('requests are counted by route, resource, service, outcome and code', async (t) => {
  for (let i = 0; i < 3; i++) t.equal((await verify({ idNumber: p.idNumber, name: p.name })).statusCode, 200)
  const bad = await verify({ idNumber: '110105194912310021', name: 'x' })
  t.equal(bad.json().code, 'INPUT_INVALID_ID_NUMBER')

  const res = await scrape()
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain/)
  const text = res.body
  const ok = { route: '/v1/verify/identity', resource: '101001/00001', service: 'identity', outcome: 'allowed', status: '200' }
  t.equal(sample(text, 'tongban_requests_total', ok), 3)
  t.equal(sample(text, 'tongban_requests_total', { route: '/v1/verify/identity', outcome: 'denied', code: 'INPUT_INVALID_ID_NUMBER' }), 1)
  t.equal(sample(text, 'tongban_request_duration_seconds_count', { route: '/v1/verify/identity', outcome: 'allowed' }), 3)
  t.ok(sample(text, 'tongban_request_duration_seconds_bucket', { route: '/v1/verify/identity', outcome: 'allowed', le: '+Inf' }) === 3)
  t.match(text, /node="320000"/, 'every series names the node')

  // Counting goes on.
  await verify({ idNumber: p.idNumber, name: p.name })
  t.equal(sample((await scrape()).body, 'tongban_requests_total', ok), 4)
})

t.test('audit sealing, queues, Redis and PostgreSQL are reported', async (t) => {
  const text = (await scrape()).body
  t.ok((sample(text, 'tongban_audit_batches_total', { result: 'ok' }) ?? 0) > 0, 'sealed batches counted (Sealer onBatch)')
  t.ok((sample(text, 'tongban_audit_records_total', { result: 'ok' }) ?? 0) >= 5)
  t.ok((sample(text, 'tongban_audit_batch_size_count') ?? 0) > 0)
  t.ok((sample(text, 'tongban_audit_seal_seconds_count') ?? 0) > 0)
  t.equal(sample(text, 'tongban_redis_up'), 1)
  t.ok((sample(text, 'tongban_pg_pool_connections', { state: 'total' }) ?? 0) >= 1)
  t.equal(sample(text, 'tongban_pg_pool_max'), h.config.postgres.poolSize)
  t.ok(sample(text, 'tongban_queue_jobs', { queue: 'batches', state: 'waiting' }) !== undefined, 'batch queue depth')
  t.ok(sample(text, 'tongban_queue_jobs', { queue: 'deadlines', state: 'delayed' }) !== undefined, 'deadline queue depth')
  t.ok((sample(text, 'tongban_upstream_pool', { stat: 'connected' }) ?? 0) >= 1, 'upstream pool stats')
  t.ok(sample(text, 'process_cpu_user_seconds_total') !== undefined, 'process metrics')
})

t.test('the helpers for other steps record what they are given', async (t) => {
  h.app.metrics.upstreamCircuit('mps-identity', 'open')
  h.app.metrics.auditBatch(7, 3, false)
  h.app.metrics.batchItem({ resource: '101001/00001', operation: 'verify', outcome: 'failed', code: 'UPSTREAM_TIMEOUT' }, 0.5)
  const text = (await scrape()).body
  t.equal(sample(text, 'tongban_upstream_circuit_state', { upstream: 'mps-identity' }), 2)
  t.equal(sample(text, 'tongban_audit_batches_total', { result: 'failed' }), 1)
  t.equal(sample(text, 'tongban_audit_records_total', { result: 'failed' }), 7)
  t.equal(sample(text, 'tongban_batch_items_total', { code: 'UPSTREAM_TIMEOUT' }), 1)
})

t.test('without a metrics token only loopback clients may scrape', async (t) => {
  t.equal((await scrape('::1')).statusCode, 200)
  t.equal((await scrape('::ffff:127.0.0.1')).statusCode, 200)
  const far = await scrape('10.1.2.3')
  t.equal(far.statusCode, 403)
  t.equal(far.json().code, 'METRICS_LOOPBACK_ONLY')
})

t.test('with a metrics token it is required from anywhere', async (t) => {
  const secret = 'scrape-secret-0123456789'
  const app = await buildApp({ ...h.config, metrics: { token: secret } }, { logger: false })
  t.teardown(() => app.close())
  const get = (remoteAddress: string, auth?: string) =>
    app.inject({ method: 'GET', url: '/metrics', remoteAddress, headers: auth ? { authorization: auth } : {} })
  t.equal((await get('10.1.2.3', `Bearer ${secret}`)).statusCode, 200)
  t.equal((await get('127.0.0.1')).statusCode, 401, 'loopback needs it too')
  t.equal((await get('10.1.2.3', 'Bearer wrong')).json().code, 'AUTH_TOKEN_INVALID')
  t.equal((await get('10.1.2.3', `Bearer ${token}`)).statusCode, 401, 'an access token is not the metrics token')
})

t.test('two apps in one process keep separate counts', async (t) => {
  const app = await buildApp(h.config, { logger: false })
  t.teardown(() => app.close())
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body
  t.equal(sample(text, 'tongban_requests_total', { route: '/v1/verify/identity' }), undefined)
})

t.test('JSON logs: request id on every request line; no personal data or credentials', async (t) => {
  const lines: any[] = []
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l))
      done()
    },
  })
  const app = await buildApp(h.config, { logger: { level: 'trace', stream, redact: { paths: redactPaths, censor: '[redacted]' } } })
  t.teardown(() => app.close())
  await app.ready()
  const res = await app.inject({
    method: 'POST',
    url: '/v1/verify/identity',
    headers: { authorization: `Bearer ${token}`, ...context({ 'tongban-request-id': 'log-test-000001' }) },
    payload: { idNumber: p.idNumber, name: p.name },
  })
  t.equal(res.statusCode, 200)
  app.log.info({ req: { headers: { authorization: `Bearer ${token}` }, body: { idNumber: p.idNumber } }, body: { name: p.name } }, 'an over-eager log call')
  app.log.info({ item: { idNumber: p.idNumber, name: p.name }, token: { access_token: token } }, 'nested personal fields')
  const all = lines.map((l) => JSON.stringify(l)).join('\n')
  // The node's own request id (the caller's is kept apart: src/app.ts).
  const rid = res.headers['tongban-request-id']
  t.ok(lines.some((l) => l.reqId === rid), 'request lines carry the request id')
  const requestLines = lines.filter((l) => l.msg === 'incoming request' || l.msg === 'request completed')
  t.ok(requestLines.every((l) => l.reqId === rid))
  t.notOk(all.includes(p.idNumber), 'no id number in any log line')
  t.notOk(all.includes(p.name), 'no name in any log line')
  t.notOk(all.includes(token), 'no access token in any log line')
  t.ok(all.includes('[redacted]'))
})
