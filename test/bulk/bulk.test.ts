// Bulk verification end to end on real PostgreSQL, Redis, BullMQ and simulated providers:
// JSON and NDJSON submissions, limits, per-item audit records and evidence, sharing rules
// and quotas, ownership, cancellation — and a 10,000-item batch that completes with exactly
// 10,000 audited results after its worker process is killed (SIGKILL) mid-way.
import t from 'tap'
import { request } from 'undici'
import { startNode, context } from '../helpers/harness.js'
import { spawnGateway, type GatewayProcess } from '../helpers/gateway-process.js'
import { samplePersons } from '../../dev/providers/population.js'
import { verifyEvidence, decodeEvidence } from '../../src/evidence/evidence.js'
import { jcs } from '../../src/evidence/jcs.js'

// Waits for real time (token expiry) or real work (10,000 items): more than tap's default.
t.setTimeout(300_000)

// The in-process app only takes submissions; workers run in spawned gateway processes, so
// the test can kill one.
const h = await startNode({ tag: 'batches', env: { TONGBAN_BATCH_WORKER: '0' } })
t.teardown(() => h.close())

const workerEnv = {
  TONGBAN_BATCH_WORKER: '1',
  TONGBAN_BATCH_LOCK_MS: '2000',
  TONGBAN_BATCH_UPSTREAM_RATE: '1500',
  TONGBAN_BATCH_UPSTREAM_CONCURRENCY: '32',
}
let worker: GatewayProcess = await spawnGateway(h, 'w1', workerEnv)
t.teardown(() => worker.stop())

const tokens = {
  jn: await h.token('jn-civil-affairs'),
  jnMobile: await h.token('jn-civil-affairs-mobile'),
  nr: await h.token('js-natural-resources'),
}
const certificates = [h.app.identity.certPem]
const caCertificate = h.app.identity.caPem
const people = samplePersons(2000)

type Line = { index: number; status: number; requestId: string; body?: any; problem?: any; evidence: string }

const submit = (payload: object | string, o: { token?: string; query?: string; contentType?: string; headers?: Record<string, string> } = {}) =>
  h.app.inject({
    method: 'POST',
    url: `/v1/batches${o.query ?? ''}`,
    headers: {
      authorization: `Bearer ${o.token ?? tokens.jn}`,
      ...context({ 'tongban-case-id': 'JN-BATCH-1' }),
      ...(o.contentType ? { 'content-type': o.contentType } : {}),
      ...o.headers,
    },
    payload,
  })
const get = (url: string, token = tokens.jn) => h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } })

async function waitFor(id: string, until: (b: any) => boolean, timeoutMs = 120_000): Promise<any> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const b = (await get(`/v1/batches/${id}`)).json()
    if (until(b)) return b
    if (Date.now() > end) throw new Error(`batch ${id} did not get there: ${JSON.stringify(b)}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
const finished = (b: any) => b.status === 'completed' || b.status === 'cancelled'

async function results(id: string, from = 0): Promise<Line[]> {
  const res = await get(`/v1/batches/${id}/results${from ? `?from=${from}` : ''}`)
  if (res.statusCode !== 200) throw new Error(`results: ${res.statusCode} ${res.body}`)
  return res.body.split('\n').filter(Boolean).map((l) => JSON.parse(l))
}

const verifyLine = (l: Line) => verifyEvidence({ header: l.evidence, body: jcs(l.body ?? l.problem), certificates, caCertificate })

t.test('JSON batch: every item answered, audited and provable on its own', async (t) => {
  const items = [
    ...people.slice(0, 30).map((p) => ({ idNumber: p.idNumber, name: p.name })),
    { idNumber: people[30].idNumber, name: '不是本人' },
    { idNumber: '110105194912310021', name: '张三' }, // wrong check character
  ]
  const res = await submit({ service: 'identity', items })
  t.equal(res.statusCode, 202, res.body)
  const accepted = res.json()
  t.equal(accepted.total, 32)
  t.equal(res.headers.location, `/v1/batches/${accepted.id}`)
  t.ok(res.headers['tongban-evidence'], 'the submission itself is audited, with evidence')

  const done = await waitFor(accepted.id, finished)
  t.equal(done.status, 'completed')
  t.same({ done: done.done, succeeded: done.succeeded, failed: done.failed, pending: done.pending }, { done: 32, succeeded: 31, failed: 1, pending: 0 })
  t.equal(done.etaSeconds, 0)

  const lines = await results(accepted.id)
  t.same(lines.map((l) => l.index), [...Array(32).keys()], 'one line per item, in order')
  t.ok(lines.slice(0, 30).every((l) => l.status === 200 && l.body.match === true), 'matches')
  t.same(lines[30].body, { match: false }, 'a wrong name is a no-match answer, not an error')
  t.equal(lines[31].status, 400)
  t.equal(lines[31].problem.code, 'INPUT_INVALID_ID_NUMBER', 'an invalid item fails alone with its input code')
  for (const l of lines) {
    const v = verifyLine(l)
    if (!v.ok) t.fail(`evidence of item ${l.index}: ${v.reason}`)
  }
  const rec = decodeEvidence(lines[0].evidence).record
  t.equal(rec.requestId, `${accepted.id}.0`)
  t.equal(rec.purpose, 'SA-01')
  t.equal(rec.caseId, 'JN-BATCH-1')
  t.equal(rec.consumer?.system, 'jn-civil-affairs', 'run as the submitting system')
  t.equal(decodeEvidence(lines[31].evidence).record.decision, 'denied')
  t.equal(decodeEvidence(lines[31].evidence).record.reason, 'INPUT_INVALID_ID_NUMBER')
  const tampered = { ...lines[0], body: { match: false } }
  t.equal(verifyLine(tampered).ok, false, 'a changed answer no longer matches its evidence')

  const audited = await h.query('SELECT decision, count(*)::int AS n FROM audit_records WHERE request_id LIKE $1 GROUP BY decision', [`${accepted.id}.%`])
  t.same(Object.fromEntries(audited.map((r) => [r.decision, r.n])), { allowed: 31, denied: 1 }, 'one audit record per item')
  const raw = await h.query('SELECT count(*)::int AS n FROM audit_records WHERE request_id LIKE $1 AND (subject = $2 OR subject IS NULL)', [`${accepted.id}.%`, people[0].idNumber])
  t.equal(raw[0].n, 0, 'subjects are keyed hashes, never the id number')
  const left = await h.query('SELECT count(*)::int AS n FROM batch_items WHERE batch_id = $1', [accepted.id])
  t.equal(left[0].n, 0, 'the raw items are deleted once the batch has ended')

  const resumed = await results(accepted.id, 30)
  t.same(resumed.map((l) => l.index), [30, 31], '?from= resumes a download')
})

t.test('NDJSON upload with the service in the query string', async (t) => {
  const ndjson = people.slice(100, 150).map((p) => JSON.stringify({ idNumber: p.idNumber, name: p.name })).join('\n') + '\n\n'
  const res = await submit(ndjson, { query: '?service=identity', contentType: 'application/x-ndjson' })
  t.equal(res.statusCode, 202, res.body)
  const b = await waitFor(res.json().id, finished)
  t.equal(b.succeeded, 50)
  const lines = await results(b.id)
  t.equal(lines.length, 50)
  t.ok(lines.every((l) => verifyLine(l).ok))
})

t.test('limits and malformed submissions', async (t) => {
  const tooMany = Array.from({ length: 100_001 }, () => '{}').join('\n')
  const many = await submit(tooMany, { query: '?service=identity', contentType: 'application/x-ndjson' })
  t.equal(many.statusCode, 413)
  t.equal(many.json().code, 'BATCH_TOO_MANY_ITEMS')

  const bad = await submit('{"idNumber":"x"}\nnot json\n', { query: '?service=identity', contentType: 'application/x-ndjson' })
  t.equal(bad.statusCode, 400)
  t.equal(bad.json().code, 'INPUT_MALFORMED_NDJSON')
  t.match(bad.json().detail, /line 2/)

  const empty = await submit({ service: 'identity', items: [] })
  t.equal(empty.statusCode, 400)
  const neither = await submit({ items: [{}] })
  t.equal(neither.json().code, 'INPUT_INVALID')
  const unknown = await submit({ service: 'horoscope', items: [{}] })
  t.equal(unknown.json().code, 'SERVICE_UNKNOWN')
  const noPurpose = await h.app.inject({ method: 'POST', url: '/v1/batches', headers: { authorization: `Bearer ${tokens.jn}` }, payload: { service: 'identity', items: [{}] } })
  t.equal(noPurpose.json().code, 'INPUT_PURPOSE_MISSING')
  const provider = await submit({ service: 'identity', items: [{}] }, { token: tokens.nr })
  t.equal(provider.statusCode, 403, 'consumers only')
  const text = await submit('hello', { contentType: 'text/plain' })
  t.equal(text.statusCode, 415)
})

t.test('sharing rules and quotas apply to every item', async (t) => {
  const none = await submit({ resource: '301002/00001', operation: 'query', items: [{ idNumber: people[0].idNumber }] })
  t.equal(none.statusCode, 403)
  t.equal(none.json().code, 'POLICY_SHARE_NONE')
  const noGrant = await submit({ resource: '103002/00002', operation: 'query', items: [{ idNumber: people[0].idNumber, name: people[0].name }] })
  t.equal(noGrant.json().code, 'POLICY_NO_GRANT')

  const applied = await h.app.inject({
    method: 'POST', url: '/v1/applications', headers: { authorization: `Bearer ${tokens.jn}` },
    payload: { resource: '103002/00002', items: ['properties'], purposes: ['SA-01'], basis: '《社会救助暂行办法》家庭财产核对', validTo: new Date(Date.now() + 30 * 86400_000).toISOString(), dailyQuota: 5 },
  })
  t.equal(applied.statusCode, 201, applied.body)
  const decided = await h.app.inject({
    method: 'POST', url: `/v1/applications/${applied.json().id}/decision`, headers: { authorization: `Bearer ${tokens.nr}` },
    payload: { decision: 'approve', reason: '同意' },
  })
  t.equal(decided.statusCode, 200, decided.body)
  // The spawned worker learns of the grant through the invalidation bus.
  await new Promise((r) => setTimeout(r, 300))

  const items = people.slice(200, 208).map((p) => ({ idNumber: p.idNumber, name: p.name }))
  const res = await submit({ resource: '103002/00002', operation: 'query', items })
  t.equal(res.statusCode, 202, res.body)
  const b = await waitFor(res.json().id, finished)
  t.same({ succeeded: b.succeeded, failed: b.failed }, { succeeded: 5, failed: 3 }, 'a daily quota of 5: the rest is refused')
  const lines = await results(b.id)
  t.equal(lines.filter((l) => l.problem?.code === 'QUOTA_EXCEEDED').length, 3)
  t.ok(lines.filter((l) => l.status === 200).every((l) => Array.isArray(l.body.properties)), 'granted items are released')
  t.ok(lines.every((l) => verifyLine(l).ok), 'refusals carry evidence too')
  const grant = decodeEvidence(lines.find((l) => l.status === 200)!.evidence).record.grant
  t.equal(grant, decided.json().grantId, 'the audit record names the grant used')
})

t.test('batches belong to the submitting system', async (t) => {
  const res = await submit({ service: 'identity', items: [{ idNumber: people[0].idNumber, name: people[0].name }] })
  const id = res.json().id
  const other = await get(`/v1/batches/${id}`, tokens.jnMobile)
  t.equal(other.statusCode, 404)
  t.equal(other.json().code, 'BATCH_NOT_FOUND')
  t.equal((await get(`/v1/batches/${id}/results`, tokens.jnMobile)).statusCode, 404)
  const del = await h.app.inject({ method: 'DELETE', url: `/v1/batches/${id}`, headers: { authorization: `Bearer ${tokens.jnMobile}` } })
  t.equal(del.statusCode, 404)
  const list = (await get('/v1/batches')).json()
  t.ok(list.batches.some((b: any) => b.id === id), 'listed for its owner')
  t.notOk((await get('/v1/batches', tokens.jnMobile)).json().batches.some((b: any) => b.id === id), 'not for others')
  await waitFor(id, finished)
})

t.test('a cancelled batch stops', async (t) => {
  const items = Array.from({ length: 3000 }, (_, i) => ({ idNumber: people[i % people.length].idNumber, name: people[i % people.length].name }))
  const res = await submit({ service: 'identity', items })
  const id = res.json().id
  await waitFor(id, (b) => b.done >= 100)
  const del = await h.app.inject({ method: 'DELETE', url: `/v1/batches/${id}`, headers: { authorization: `Bearer ${tokens.jn}` } })
  t.equal(del.statusCode, 200)
  t.equal(del.json().status, 'cancelled')
  await new Promise((r) => setTimeout(r, 1500))
  const settled = (await get(`/v1/batches/${id}`)).json()
  await new Promise((r) => setTimeout(r, 1000))
  const later = (await get(`/v1/batches/${id}`)).json()
  t.equal(later.status, 'cancelled')
  t.ok(later.done < 3000, `stopped early (${later.done} of 3000 done)`)
  t.equal(later.done, settled.done, 'no item finishes a while after the cancellation')
  const again = await h.app.inject({ method: 'DELETE', url: `/v1/batches/${id}`, headers: { authorization: `Bearer ${tokens.jn}` } })
  t.equal(again.statusCode, 200, 'cancelling twice is harmless')
  t.equal((await h.query('SELECT count(*)::int AS n FROM batch_items WHERE batch_id = $1', [id]))[0].n, 0, 'its items are deleted')
})

t.test('10,000 items survive a worker killed mid-way: exactly 10,000 audited results', async (t) => {
  const items = Array.from({ length: 10_000 }, (_, i) => ({ idNumber: people[i % people.length].idNumber, name: people[i % people.length].name }))
  const ndjson = items.map((i) => JSON.stringify(i)).join('\n')
  const res = await request(`${worker.base}/v1/batches?service=identity`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokens.jn}`, 'content-type': 'application/x-ndjson', ...context({ 'tongban-case-id': 'JN-BULK-10K' }) },
    body: ndjson,
  })
  const accepted = (await res.body.json()) as any
  t.equal(res.statusCode, 202, JSON.stringify(accepted))
  const id = accepted.id

  const before = await waitFor(id, (b) => b.done >= 2500)
  t.ok(before.done < 10_000, `mid-way when killed (${before.done} done)`)
  worker.child.kill('SIGKILL')
  await new Promise((r) => worker.child.once('exit', r))
  const atKill = (await get(`/v1/batches/${id}`)).json()
  t.equal(atKill.status, 'running')

  worker = await spawnGateway(h, 'w2', workerEnv)
  const done = await waitFor(id, finished, 180_000)
  t.equal(done.status, 'completed')
  t.equal(done.done, 10_000)
  t.equal(done.succeeded, 10_000)

  const rows = await h.query('SELECT count(*)::int AS n, count(DISTINCT idx)::int AS d, min(idx) AS lo, max(idx) AS hi FROM batch_results WHERE batch_id = $1', [id])
  t.same(rows[0], { n: 10_000, d: 10_000, lo: 0, hi: 9999 }, 'one result per item, none twice, none missing')
  const audited = await h.query(
    `SELECT count(DISTINCT r.request_id)::int AS items, count(*)::int AS records
     FROM audit_records r WHERE r.request_id LIKE $1`,
    [`${id}.%`],
  )
  t.equal(audited[0].items, 10_000, 'every item has an audit record')
  t.ok(audited[0].records - 10_000 < 1000, `re-queried after the kill: ${audited[0].records - 10_000} items (sealed, not yet written), each still one result`)
  t.comment(`audit records: ${audited[0].records} for 10,000 items; ${atKill.done} were done when the worker was killed`)

  const lines = await results(id)
  t.equal(lines.length, 10_000)
  let bad = 0
  for (const l of lines) if (!verifyLine(l).ok) bad++
  t.equal(bad, 0, 'every line verifies against its evidence')
  const missing = await h.query(
    `SELECT count(*)::int AS n FROM batch_results b WHERE b.batch_id = $1 AND NOT EXISTS (SELECT 1 FROM audit_records r WHERE r.request_id = b.request_id)`,
    [id],
  )
  t.equal(missing[0].n, 0, 'no result without its audit record')
})
