// Catalogue administration end to end on real PostgreSQL and Redis: register, update
// (every version kept), retire (queries refused with RESOURCE_RETIRED on every replica),
// validation with precise pointers, roles, optimistic concurrency, and the audit trail.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { LightMyRequestResponse } from 'fastify'
import { startNode, context, ROOT, type Harness } from '../helpers/harness.js'
import { person } from '../../dev/providers/population.js'
import type { CatalogEntry } from '../../src/catalog/types.js'

const h = await startNode({ tag: 'catadmin' })
// A second replica of the same node: same schema, same Redis prefix, its own audit chain.
const h2 = await startNode({
  schema: h.schema,
  keepSchema: true,
  env: { TONGBAN_REDIS_PREFIX: h.config.redis.prefix, TONGBAN_REPLICA_ID: `${h.schema}-r2` },
})
t.teardown(async () => {
  await h2.close()
  await h.close()
})

const admin = await h.token('js-catalog-admin')
const consumer = await h.token('jn-civil-affairs')
const auditor = await h.token('js-audit')
const p0 = person(0)

const IDENTITY = '101001/00001'
const NEW = '101001/00002'
const enc = encodeURIComponent

const identityEntry: CatalogEntry = JSON.parse(readFileSync(join(ROOT, 'catalog/101001-00001.json'), 'utf8'))
// A second identity check: same upstream and schemas, no verify/{service} binding of its own.
const newEntry = (): CatalogEntry => {
  const e = structuredClone(identityEntry)
  delete e.version
  delete e.service!.verifyService
  return { ...e, code: NEW, name: '居民身份信息核验（窗口版）', related: [IDENTITY] }
}

type Call = { method: 'GET' | 'POST' | 'PUT' | 'DELETE'; url: string; token?: string; payload?: unknown; headers?: Record<string, string>; node?: Harness }
const call = ({ method, url, token, payload, headers = {}, node = h }: Call) =>
  node.app.inject({
    method,
    url,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    ...(payload !== undefined ? { payload: payload as object } : {}),
  })

// Request ids of admin calls, with what the audit log must say about each.
const expected: Array<{ id: string; operation: string; system: string | null; decision: string; reason?: string; resource?: string }> = []
const track = (res: LightMyRequestResponse, operation: string, system: string | null, resource?: string) => {
  const decision = res.statusCode < 400 ? 'allowed' : res.statusCode < 500 ? 'denied' : 'failed'
  expected.push({ id: res.headers['tongban-request-id'] as string, operation, system, decision, reason: decision === 'allowed' ? undefined : res.json().code, resource })
  return res
}

const verifyIdentity = (node: Harness) =>
  node.app.inject({
    method: 'POST',
    url: '/v1/verify/identity',
    headers: { authorization: `Bearer ${consumer}`, ...context() },
    payload: { idNumber: p0.idNumber, name: p0.name },
  })

t.test('register: 201 with version 1, readable at once, queryable without a restart', async (t) => {
  const res = track(await call({ method: 'POST', url: '/v1/catalog/resources', token: admin, payload: { ...newEntry(), version: 7 } }), 'catalog.create', 'js-catalog-admin', NEW)
  t.equal(res.statusCode, 201, res.body)
  const body = res.json()
  t.equal(body.code, NEW)
  t.equal(body.version, 1, 'the gateway numbers versions; the body’s version is ignored')
  t.equal(body.status, 'active')
  t.equal(body.service.upstream.name, 'mps-identity', 'the admin sees the full stored entry')
  t.equal(res.headers.location, `/v1/catalog/resources/${enc(NEW)}`)
  t.equal(res.headers.etag, '"1"')
  t.ok(res.headers['tongban-evidence'], 'the admin action carries its audit evidence')

  const [row] = await h.query('SELECT version, status, created_by, entry FROM catalog_resources WHERE code = $1', [NEW])
  t.match(row, { version: 1, status: 'active', created_by: 'js-catalog-admin' })
  t.equal(row.entry.version, 1)

  // Browsing: the consumer sees the public view, the admin the binding too.
  const asConsumer = await call({ method: 'GET', url: `/v1/catalog/resources/${enc(NEW)}`, token: consumer })
  t.equal(asConsumer.statusCode, 200)
  t.equal(asConsumer.json().name, newEntry().name)
  t.notOk(asConsumer.json().service.upstream)
  t.equal(asConsumer.headers.etag, '"1"')
  t.equal((await call({ method: 'GET', url: '/v1/catalog/resources/101001/00002', token: admin })).json().service.upstream.path, '/v1/identity/verify')

  // The generic resource route serves it at once, on this replica and the other.
  for (const node of [h, h2]) {
    let q: LightMyRequestResponse | undefined
    for (const start = Date.now(); Date.now() - start < 2000; await new Promise((r) => setTimeout(r, 20))) {
      q = await node.app.inject({
        method: 'POST',
        url: `/v1/resources/${enc(NEW)}/verify`,
        headers: { authorization: `Bearer ${consumer}`, ...context() },
        payload: { idNumber: p0.idNumber, name: p0.name },
      })
      if (q.statusCode === 200) break
    }
    t.equal(q!.statusCode, 200, q!.body)
    t.same(q!.json(), { match: true })
  }

  const again = track(await call({ method: 'POST', url: '/v1/catalog/resources', token: admin, payload: newEntry() }), 'catalog.create', 'js-catalog-admin', NEW)
  t.equal(again.statusCode, 409)
  t.equal(again.json().code, 'CATALOG_CODE_EXISTS')
})

t.test('an invalid entry: 400 CATALOG_ENTRY_INVALID listing every problem with its pointer', async (t) => {
  const bad: Record<string, any> = { ...newEntry(), code: '101001/00003', colour: 'blue' }
  delete bad.summary
  bad.provider = { ...bad.provider, region: '12' }
  bad.items = [{ ...bad.items[0], shareType: 'sometimes' }]
  const res = track(await call({ method: 'POST', url: '/v1/catalog/resources', token: admin, payload: bad }), 'catalog.create', 'js-catalog-admin', '101001/00003')
  t.equal(res.statusCode, 400)
  t.match(res.headers['content-type'], /^application\/problem\+json/)
  const problem = res.json()
  t.equal(problem.code, 'CATALOG_ENTRY_INVALID')
  const pointers = problem.errors.map((e: { pointer: string }) => e.pointer).sort()
  t.same(pointers, ['/colour', '/items/0/shareType', '/provider/region', '/summary'])
  for (const e of problem.errors) t.ok(e.detail, `${e.pointer}: ${e.detail}`)
  t.match(problem.errors.find((e: { pointer: string }) => e.pointer === '/items/0/shareType').detail, /unconditional, conditional, none/)

  // Rules the schema cannot express are checked too.
  const noop = newEntry() as Record<string, any>
  noop.code = '101001/00003'
  noop.service.operations.verify.responseSchema = 'verify/nope.response.schema.json'
  const cross = track(await call({ method: 'POST', url: '/v1/catalog/resources', token: admin, payload: noop }), 'catalog.create', 'js-catalog-admin', '101001/00003')
  t.equal(cross.statusCode, 400)
  t.same(cross.json().errors.map((e: { pointer: string }) => e.pointer), ['/service/operations/verify/responseSchema'])

  const notObject = track(await call({ method: 'POST', url: '/v1/catalog/resources', token: admin, payload: [1, 2] }), 'catalog.create', 'js-catalog-admin')
  t.equal(notObject.statusCode, 400)
  t.equal(notObject.json().code, 'CATALOG_ENTRY_INVALID')
  t.same(notObject.json().errors.map((e: { pointer: string }) => e.pointer), ['/'])

  // A second resource may not take a verify service another active resource answers.
  const dup = { ...newEntry(), code: '101001/00003', service: identityEntry.service }
  const bound = track(await call({ method: 'POST', url: '/v1/catalog/resources', token: admin, payload: dup }), 'catalog.create', 'js-catalog-admin', '101001/00003')
  t.equal(bound.statusCode, 409)
  t.equal(bound.json().code, 'CATALOG_VERIFY_SERVICE_BOUND')
  t.same(bound.json().errors[0].pointer, '/service/verifyService')

  // The node's body limit holds for admin routes too.
  const huge = { ...newEntry(), code: '101001/00003', summary: '长'.repeat(40_000) }
  const big = track(await call({ method: 'POST', url: '/v1/catalog/resources', token: admin, payload: huge }), 'catalog.create', 'js-catalog-admin')
  t.equal(big.statusCode, 413)
  t.equal(big.json().code, 'INPUT_TOO_LARGE')
  t.equal((await h.query('SELECT count(*)::int AS n FROM catalog_resources WHERE code = $1', ['101001/00003']))[0].n, 0, 'nothing stored')
})

t.test('only the catalog-admin role writes; anyone authenticated reads the history', async (t) => {
  const cases: Array<[Call, string, string, string | undefined]> = [
    [{ method: 'POST', url: '/v1/catalog/resources', token: consumer, payload: { ...newEntry(), code: '101001/00009' } }, 'catalog.create', 'jn-civil-affairs', undefined],
    [{ method: 'PUT', url: `/v1/catalog/resources/${enc(NEW)}`, token: consumer, payload: newEntry() }, 'catalog.update', 'jn-civil-affairs', NEW],
    [{ method: 'PUT', url: '/v1/catalog/resources/101001/00002', token: auditor, payload: newEntry() }, 'catalog.update', 'js-audit', NEW],
    [{ method: 'DELETE', url: `/v1/catalog/resources/${enc(IDENTITY)}`, token: auditor }, 'catalog.retire', 'js-audit', IDENTITY],
    [{ method: 'DELETE', url: '/v1/catalog/resources/101001/00001', token: consumer }, 'catalog.retire', 'jn-civil-affairs', IDENTITY],
  ]
  for (const [c, operation, system, resource] of cases) {
    const res = track(await call(c), operation, system, resource)
    t.equal(res.statusCode, 403, `${c.method} ${c.url} as ${system}`)
    t.equal(res.json().code, 'AUTH_ROLE_REQUIRED')
  }
  const anonymous = track(await call({ method: 'DELETE', url: `/v1/catalog/resources/${enc(IDENTITY)}` }), 'catalog.retire', null, IDENTITY)
  t.equal(anonymous.statusCode, 401)
  t.equal(anonymous.json().code, 'AUTH_TOKEN_MISSING')

  t.equal((await h.query('SELECT count(*)::int AS n FROM catalog_resources WHERE code = $1', [IDENTITY]))[0].n, 1, 'nothing changed')
  t.equal((await h.query('SELECT count(*)::int AS n FROM catalog_resources WHERE code = $1', ['101001/00009']))[0].n, 0)

  for (const token of [consumer, auditor]) {
    const res = await call({ method: 'GET', url: `/v1/catalog/resources/${enc(IDENTITY)}/versions`, token })
    t.equal(res.statusCode, 200)
    t.equal(res.json().versions.length, 1)
  }
  t.equal((await call({ method: 'GET', url: `/v1/catalog/resources/${enc(IDENTITY)}/versions` })).statusCode, 401)
})

t.test('update: a new version; the previous one stays readable; If-Match guards against lost updates', async (t) => {
  const v2 = { ...newEntry(), summary: newEntry().summary + '（2026年修订：仅限窗口核验）' }
  const res = track(await call({ method: 'PUT', url: `/v1/catalog/resources/${enc(NEW)}`, token: admin, payload: v2, headers: { 'if-match': '"1"' } }), 'catalog.update', 'js-catalog-admin', NEW)
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json().version, 2)
  t.equal(res.json().summary, v2.summary)
  t.equal(res.headers.etag, '"2"')

  // The history, and each version as it was.
  const list = (await call({ method: 'GET', url: `/v1/catalog/resources/${enc(NEW)}/versions`, token: consumer })).json()
  t.same(list.versions.map((v: { version: number; status: string; createdBy: string }) => [v.version, v.status, v.createdBy]), [
    [1, 'active', 'js-catalog-admin'],
    [2, 'active', 'js-catalog-admin'],
  ])
  const v1 = await call({ method: 'GET', url: `/v1/catalog/resources/${enc(NEW)}/versions/1`, token: consumer })
  t.equal(v1.statusCode, 200)
  t.equal(v1.json().summary, newEntry().summary)
  t.equal(v1.json().version, 1)
  t.notOk(v1.json().service.upstream, 'history is shown in the public view to consumers')
  const v2read = await call({ method: 'GET', url: '/v1/catalog/resources/101001/00002/versions/2', token: consumer })
  t.equal(v2read.json().summary, v2.summary)
  t.equal((await call({ method: 'GET', url: `/v1/catalog/resources/${enc(NEW)}`, token: consumer })).json().version, 2, 'the newest version answers')
  let missing = await call({ method: 'GET', url: `/v1/catalog/resources/${enc(NEW)}/versions/9`, token: consumer })
  t.equal(missing.statusCode, 404)
  t.equal(missing.json().code, 'CATALOG_VERSION_NOT_FOUND')
  missing = await call({ method: 'GET', url: `/v1/catalog/resources/${enc('999999/99999')}/versions/1`, token: consumer })
  t.equal(missing.json().code, 'RESOURCE_NOT_FOUND')
  t.equal((await call({ method: 'GET', url: `/v1/catalog/resources/${enc(NEW)}/versions/x1`, token: consumer })).json().code, 'INPUT_INVALID')

  // A stale If-Match: 412, nothing written.
  const stale = track(await call({ method: 'PUT', url: '/v1/catalog/resources/101001/00002', token: admin, payload: { ...v2, name: '过期的修改' }, headers: { 'if-match': '"1"' } }), 'catalog.update', 'js-catalog-admin', NEW)
  t.equal(stale.statusCode, 412)
  t.equal(stale.json().code, 'CATALOG_VERSION_CONFLICT')
  t.match(stale.json().detail, /version 2/)
  const weak = track(await call({ method: 'PUT', url: '/v1/catalog/resources/101001/00002', token: admin, payload: { ...v2, name: '弱标签' }, headers: { 'if-match': 'W/"2"' } }), 'catalog.update', 'js-catalog-admin', NEW)
  t.equal(weak.statusCode, 412, 'a weak tag never matches (strong comparison)')
  const malformed = track(await call({ method: 'PUT', url: '/v1/catalog/resources/101001/00002', token: admin, payload: v2, headers: { 'if-match': '2' } }), 'catalog.update', 'js-catalog-admin', NEW)
  t.equal(malformed.statusCode, 400)
  t.equal(malformed.json().code, 'INPUT_INVALID')

  // The same content again: left alone, no new version.
  const same = track(await call({ method: 'PUT', url: `/v1/catalog/resources/${enc(NEW)}`, token: admin, payload: v2, headers: { 'if-match': '"1", "2"' } }), 'catalog.update', 'js-catalog-admin', NEW)
  t.equal(same.statusCode, 200)
  t.equal(same.json().version, 2)

  // The code is part of the address, not of what may be changed.
  const mismatch = track(await call({ method: 'PUT', url: `/v1/catalog/resources/${enc(NEW)}`, token: admin, payload: { ...v2, code: IDENTITY } }), 'catalog.update', 'js-catalog-admin', NEW)
  t.equal(mismatch.statusCode, 400)
  t.equal(mismatch.json().code, 'CATALOG_CODE_MISMATCH')
  t.same(mismatch.json().errors, [{ pointer: '/code', detail: `must be ${NEW}` }])

  const unknown = track(await call({ method: 'PUT', url: '/v1/catalog/resources/101001/00077', token: admin, payload: { ...v2, code: '101001/00077' }, headers: { 'if-match': '*' } }), 'catalog.update', 'js-catalog-admin', '101001/00077')
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.json().code, 'RESOURCE_NOT_FOUND')

  const invalid = track(await call({ method: 'PUT', url: `/v1/catalog/resources/${enc(NEW)}`, token: admin, payload: { ...v2, format: 'fax' } }), 'catalog.update', 'js-catalog-admin', NEW)
  t.equal(invalid.statusCode, 400)
  t.same(invalid.json().errors.map((e: { pointer: string }) => e.pointer), ['/format'])

  // No If-Match at all: 428, for an update and for a retirement, and nothing is written.
  const bare = track(await call({ method: 'PUT', url: `/v1/catalog/resources/${enc(NEW)}`, token: admin, payload: { ...v2, name: '未注明版本的修改' } }), 'catalog.update', 'js-catalog-admin', NEW)
  t.equal(bare.statusCode, 428)
  t.equal(bare.json().code, 'CATALOG_PRECONDITION_REQUIRED')
  t.equal(bare.json().status, 428)
  t.match(bare.headers['content-type'], /application\/problem\+json/)
  const bareRetire = track(await call({ method: 'DELETE', url: '/v1/catalog/resources/101001/00002', token: admin }), 'catalog.retire', 'js-catalog-admin', NEW)
  t.equal(bareRetire.statusCode, 428)
  t.equal(bareRetire.json().code, 'CATALOG_PRECONDITION_REQUIRED')
  // A stale version on retirement stays 412.
  const staleRetire = track(await call({ method: 'DELETE', url: `/v1/catalog/resources/${enc(NEW)}`, token: admin, headers: { 'if-match': '"1"' } }), 'catalog.retire', 'js-catalog-admin', NEW)
  t.equal(staleRetire.statusCode, 412)
  t.equal(staleRetire.json().code, 'CATALOG_VERSION_CONFLICT')

  const rows = await h.query('SELECT version, status FROM catalog_resources WHERE code = $1 ORDER BY version', [NEW])
  t.same(rows.map((r) => [r.version, r.status]), [[1, 'active'], [2, 'active']])
})

t.test('concurrent writers: versions stay contiguous; with If-Match exactly one wins', async (t) => {
  const base = (await h.query('SELECT max(version)::int AS v FROM catalog_resources WHERE code = $1', [NEW]))[0].v
  const edits = Array.from({ length: 6 }, (_, i) => ({ ...newEntry(), name: `并发修改 ${i}` }))
  // Free-for-all (If-Match: *), across both replicas: every write lands as its own version.
  const free = await Promise.all(edits.map((e, i) => call({ method: 'PUT', url: `/v1/catalog/resources/${enc(NEW)}`, token: admin, payload: e, headers: { 'if-match': '*' }, node: i % 2 ? h2 : h })))
  for (const r of free) track(r, 'catalog.update', 'js-catalog-admin', NEW)
  t.same(free.map((r) => r.statusCode), edits.map(() => 200))
  t.same(free.map((r) => r.json().version).sort((a, b) => a - b), edits.map((_, i) => base + 1 + i))

  // All naming the same version: one wins, the others are told it moved on.
  const current = base + edits.length
  const guarded = await Promise.all(edits.map((e, i) => call({
    method: 'PUT', url: `/v1/catalog/resources/${enc(NEW)}`, token: admin, payload: { ...e, name: `${e.name}（定稿）` }, headers: { 'if-match': `"${current}"` }, node: i % 2 ? h2 : h,
  })))
  for (const r of guarded) track(r, 'catalog.update', 'js-catalog-admin', NEW)
  t.equal(guarded.filter((r) => r.statusCode === 200).length, 1)
  t.equal(guarded.filter((r) => r.statusCode === 412 && r.json().code === 'CATALOG_VERSION_CONFLICT').length, edits.length - 1)
  const versions = (await h.query('SELECT version FROM catalog_resources WHERE code = $1 ORDER BY version', [NEW])).map((r) => r.version)
  t.same(versions, Array.from({ length: current + 1 }, (_, i) => i + 1))
})

t.test('retire on one replica: queries answer 410 RESOURCE_RETIRED on every replica; history stays', async (t) => {
  // Both replicas answer before.
  t.equal((await verifyIdentity(h)).statusCode, 200)
  t.equal((await verifyIdentity(h2)).statusCode, 200)

  const res = track(await call({ method: 'DELETE', url: `/v1/catalog/resources/${enc(IDENTITY)}`, token: admin, headers: { 'if-match': '"1"' } }), 'catalog.retire', 'js-catalog-admin', IDENTITY)
  t.equal(res.statusCode, 200, res.body)
  const retired = res.json()
  t.equal(retired.status, 'retired')
  t.equal(retired.version, 2)
  const { version: _a, status: _b, ...entryNow } = retired
  const { version: _c, ...entryBefore } = identityEntry
  t.same(entryNow, entryBefore, 'the entry itself is unchanged')
  t.ok(res.headers['tongban-evidence'])

  // The replica that wrote answers at once.
  const here = await verifyIdentity(h)
  t.equal(here.statusCode, 410)
  t.equal(here.json().code, 'RESOURCE_RETIRED')

  // The other replica within a second (bus message, then reload).
  const start = Date.now()
  let there = await verifyIdentity(h2)
  while (there.statusCode !== 410 && Date.now() - start < 3000) {
    await new Promise((r) => setTimeout(r, 10))
    there = await verifyIdentity(h2)
  }
  const elapsed = Date.now() - start
  t.equal(there.statusCode, 410)
  t.equal(there.json().code, 'RESOURCE_RETIRED')
  t.ok(elapsed < 1000, `replica 2 refused after ${elapsed} ms`)

  // The generic route and the catalogue say so too.
  const generic = await h2.app.inject({
    method: 'POST', url: '/v1/resources/101001/00001/verify', headers: { authorization: `Bearer ${consumer}`, ...context() }, payload: { idNumber: p0.idNumber, name: p0.name },
  })
  t.equal(generic.json().code, 'RESOURCE_RETIRED')
  t.equal((await call({ method: 'GET', url: `/v1/catalog/resources/${enc(IDENTITY)}`, token: consumer, node: h2 })).json().status, 'retired')
  const v1 = await call({ method: 'GET', url: `/v1/catalog/resources/${enc(IDENTITY)}/versions/1`, token: consumer, node: h2 })
  t.equal(v1.statusCode, 200)
  t.equal(v1.json().status, 'active', 'the version before retirement is readable as it was')

  // Retired is final for writes.
  const twice = track(await call({ method: 'DELETE', url: '/v1/catalog/resources/101001/00001', token: admin, headers: { 'if-match': '*' } }), 'catalog.retire', 'js-catalog-admin', IDENTITY)
  t.equal(twice.statusCode, 409)
  t.equal(twice.json().code, 'CATALOG_ALREADY_RETIRED')
  const { version: _v, ...payload } = identityEntry
  const update = track(await call({ method: 'PUT', url: `/v1/catalog/resources/${enc(IDENTITY)}`, token: admin, payload, headers: { 'if-match': '"2"' } }), 'catalog.update', 'js-catalog-admin', IDENTITY)
  t.equal(update.statusCode, 409)
  t.equal(update.json().code, 'CATALOG_ALREADY_RETIRED')
  const unknown = track(await call({ method: 'DELETE', url: `/v1/catalog/resources/${enc('999999/99999')}`, token: admin, headers: { 'if-match': '*' } }), 'catalog.retire', 'js-catalog-admin', '999999/99999')
  t.equal(unknown.statusCode, 404)

  const rows = await h.query('SELECT version, status, content_hash, created_by FROM catalog_resources WHERE code = $1 ORDER BY version', [IDENTITY])
  t.same(rows.map((r) => [r.version, r.status]), [[1, 'active'], [2, 'retired']])
  t.equal(rows[1].content_hash, rows[0].content_hash)
  t.equal(rows[1].created_by, 'js-catalog-admin')

  // With no active identity resource left, the service is free to bind again.
  const successor = { ...newEntry(), code: '101001/00005', service: identityEntry.service }
  const created = track(await call({ method: 'POST', url: '/v1/catalog/resources', token: admin, payload: successor }), 'catalog.create', 'js-catalog-admin', '101001/00005')
  t.equal(created.statusCode, 201, created.body)
  const served = await verifyIdentity(h)
  t.equal(served.statusCode, 200, 'verify/identity is answered by the successor')
  t.same(served.json(), { match: true })
})

t.test('reloads coalesce: a burst of changes costs at most two loads', async (t) => {
  const repo = h2.app.catalog
  const load = repo.load.bind(repo)
  let loads = 0
  repo.load = async () => {
    loads++
    await new Promise((r) => setTimeout(r, 20))
    return load()
  }
  t.teardown(() => {
    repo.load = load
  })
  await Promise.all(Array.from({ length: 50 }, () => repo.reload()))
  t.ok(loads <= 2, `${loads} loads for 50 reloads`)
  loads = 0
  // And through the bus: 30 messages at once.
  await Promise.all(Array.from({ length: 30 }, () => h.app.bus.publish('catalog')))
  await new Promise((r) => setTimeout(r, 300))
  t.ok(loads >= 1 && loads <= 3, `${loads} loads for 30 bus messages`)
})

t.test('every admin action is in the audit log: operation, admin system, target, outcome', async (t) => {
  const rows = await h.query(
    `SELECT request_id, operation, consumer_system, resource, decision, reason FROM audit_records WHERE operation LIKE 'catalog.%'`,
  )
  const byId = new Map(rows.map((r) => [r.request_id, r]))
  t.ok(expected.length >= 30)
  for (const e of expected) {
    const r = byId.get(e.id)
    t.ok(r, `audited: ${e.operation} ${e.id}`)
    if (!r) continue
    t.equal(r.operation, e.operation)
    t.equal(r.consumer_system, e.system)
    t.equal(r.decision, e.decision)
    t.equal(r.reason, e.reason ?? null)
    if (e.resource) t.equal(r.resource, e.resource)
  }
  const reasons = new Set(rows.map((r) => r.reason))
  for (const code of ['CATALOG_ENTRY_INVALID', 'CATALOG_CODE_EXISTS', 'CATALOG_CODE_MISMATCH', 'CATALOG_VERSION_CONFLICT', 'CATALOG_PRECONDITION_REQUIRED', 'CATALOG_ALREADY_RETIRED', 'AUTH_ROLE_REQUIRED', 'INPUT_TOO_LARGE']) {
    t.ok(reasons.has(code), `a refusal with ${code} is audited`)
  }
  // Both replicas sealed admin records, each on its own chain.
  const chains = await h.query(`SELECT DISTINCT chain FROM audit_records WHERE operation LIKE 'catalog.%'`)
  t.equal(chains.length, 2)
})

t.test('OpenAPI documents the admin routes from their schemas', async (t) => {
  const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json()
  const post = doc.paths['/v1/catalog/resources'].post
  t.same(post.tags, ['catalog'])
  t.ok(post.requestBody.content['application/json'].schema.$ref, 'the body is the catalogue entry schema')
  t.ok(post.responses['201'] && post.responses['409'] && post.responses['400'])
  const put = doc.paths['/v1/catalog/resources/{code}'].put
  t.ok(put.parameters.find((p: { name: string }) => p.name === 'if-match'))
  t.ok(put.responses['428'] && doc.paths['/v1/catalog/resources/{code}'].delete.responses['428'], 'a missing If-Match is documented')
  t.ok(put.responses['412'])
  t.ok(doc.paths['/v1/catalog/resources/{category}/{seq}'].delete)
  t.ok(doc.paths['/v1/catalog/resources/{code}/versions/{n}'].get)
})
