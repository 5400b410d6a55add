// Sharing rules end to end (real PostgreSQL, Redis, BullMQ and upstreams): share types,
// applications and decisions, grants bound to department/system/purpose/period, item
// filtering, revocation across replicas, expiry, quota store outage, role separation.
import t from 'tap'
import { startNode, context, type Harness } from '../helpers/harness.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { samplePersons } from '../../dev/providers/population.js'
import { decodeEvidence, digest } from '../../src/evidence/evidence.js'
import { scheduleApplicationDeadline } from '../../src/policy/deadlines.js'

const h = await startNode({ tag: 'sharing' })
t.teardown(() => h.close())

// A person who owns property (the registry answers hasProperty: true).
const owner = await (async () => {
  for (const p of samplePersons(200)) {
    const res = await fetch(`${h.env.TONGBAN_UPSTREAM_NR_PROPERTY}/v1/property/verify`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ idNumber: p.idNumber, name: p.name }),
    })
    if ((await res.json()).hasProperty) return p
  }
  throw new Error('no owner in the sample')
})()
const subject = { idNumber: owner.idNumber, name: owner.name }

const tokens = {
  jn: await h.token('jn-civil-affairs'),
  jnMobile: await h.token('jn-civil-affairs-mobile'),
  nj: await h.token('nj-housing'),
  nr: await h.token('js-natural-resources'),
  ps: await h.token('js-public-security'),
}

const call = (node: Harness, token: string, code: string, op: string, payload: object = subject, purpose = 'SA-01') =>
  node.app.inject({
    method: 'POST',
    url: `/v1/resources/${encodeURIComponent(code)}/${op}`,
    headers: { authorization: `Bearer ${token}`, ...context({ 'tongban-purpose': purpose }) },
    payload,
  })
const api = (node: Harness, token: string, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) =>
  node.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) })

const inDays = (d: number) => new Date(Date.now() + d * 86400_000).toISOString()

async function applyAndApprove(o: { token: string; resource: string; items: string[]; quota?: number; validTo?: string; systemOnly?: boolean; approve?: object }) {
  const applied = await api(h, o.token, 'POST', '/v1/applications', {
    resource: o.resource, items: o.items, purposes: ['SA-01'], basis: '《社会救助暂行办法》第十一条：核对申请人家庭财产状况',
    validTo: o.validTo ?? inDays(180), dailyQuota: o.quota ?? 100, ...(o.systemOnly ? { systemOnly: true } : {}),
  })
  if (applied.statusCode !== 201) throw new Error(`apply: ${applied.statusCode} ${applied.body}`)
  const decided = await api(h, tokens.nr, 'POST', `/v1/applications/${applied.json().id}/decision`, { decision: 'approve', reason: '符合条件', ...o.approve })
  if (decided.statusCode !== 200) throw new Error(`approve: ${decided.statusCode} ${decided.body}`)
  return decided.json()
}

t.test('share types without any grant', async (t) => {
  const identity = await call(h, tokens.jn, '101001/00001', 'verify', subject)
  t.equal(identity.statusCode, 200, 'unconditional: any registered department')
  const none = await call(h, tokens.jn, '301002/00001', 'query')
  t.equal(none.statusCode, 403)
  t.equal(none.json().code, 'POLICY_SHARE_NONE')
  t.match(none.json().detail, /刑事诉讼法/, 'the refusal names the legal basis')
  const conditional = await call(h, tokens.jn, '103002/00002', 'query')
  t.equal(conditional.statusCode, 403)
  t.equal(conditional.json().code, 'POLICY_NO_GRANT')
  const partly = await call(h, tokens.jn, '103002/00001', 'verify')
  t.equal(partly.statusCode, 200)
  t.same(Object.keys(partly.json()), ['hasProperty'], 'conditional items of an unconditional resource need a grant')
})

t.test('applications are validated', async (t) => {
  const apply = (body: object, token = tokens.jn) => api(h, token, 'POST', '/v1/applications', {
    resource: '103002/00002', items: ['properties'], purposes: ['SA-01'], basis: '依据《社会救助暂行办法》', validTo: inDays(30), dailyQuota: 10, ...body,
  })
  const cases: Array<[object, number, string]> = [
    [{ resource: '999999/00001' }, 404, 'RESOURCE_NOT_FOUND'],
    [{ resource: '301002/00001', items: ['hasRecord'] }, 403, 'POLICY_SHARE_NONE'],
    [{ items: ['salary'] }, 400, 'APPLICATION_UNKNOWN_ITEM'],
    [{ resource: '101001/00001', items: ['match'] }, 400, 'APPLICATION_NOT_NEEDED'],
    [{ purposes: ['XX-99'] }, 400, 'INPUT_PURPOSE_UNKNOWN'],
    [{ validTo: new Date(Date.now() - 1000).toISOString() }, 400, 'APPLICATION_INVALID_PERIOD'],
    [{ validTo: inDays(4000) }, 400, 'APPLICATION_INVALID_PERIOD'],
    [{ dailyQuota: 0 }, 400, 'INPUT_INVALID'],
    [{ dailyQuota: '10' }, 400, 'INPUT_INVALID'],
  ]
  for (const [body, status, code] of cases) {
    const res = await apply(body)
    t.equal(res.statusCode, status, code)
    t.equal(res.json().code, code)
  }
  const byProvider = await apply({}, tokens.nr)
  t.equal(byProvider.statusCode, 403, 'a provider system cannot apply')
})

t.test('apply → approve → call → revoke, across two replicas', async (t) => {
  const applied = await api(h, tokens.jn, 'POST', '/v1/applications', {
    resource: '103002/00002', items: ['properties'], purposes: ['SA-01'], basis: '《社会救助暂行办法》第十一条', validTo: inDays(90), dailyQuota: 100,
  })
  t.equal(applied.statusCode, 201)
  const a = applied.json()
  t.equal(a.status, 'pending')
  t.equal(a.providerDepartment, '11320000MB0000091R')
  t.ok(new Date(a.dueAt).getTime() > Date.now() + 10 * 86400_000, 'due in 10 working days (more than 10 calendar days)')

  const pending = (await api(h, tokens.nr, 'GET', '/v1/applications?status=pending')).json().applications
  t.ok(pending.some((x: { id: string }) => x.id === a.id), 'the provider sees it pending')
  const otherProvider = (await api(h, tokens.ps, 'GET', '/v1/applications?status=pending')).json().applications
  t.notOk(otherProvider.some((x: { id: string }) => x.id === a.id), 'another provider does not')
  const wrongDecider = await api(h, tokens.ps, 'POST', `/v1/applications/${a.id}/decision`, { decision: 'approve' })
  t.equal(wrongDecider.statusCode, 404, 'another department cannot see or decide it')
  const consumerDecides = await api(h, tokens.jn, 'POST', `/v1/applications/${a.id}/decision`, { decision: 'approve' })
  t.equal(consumerDecides.statusCode, 403)

  const widened = await api(h, tokens.nr, 'POST', `/v1/applications/${a.id}/decision`, { decision: 'approve', dailyQuota: 1000 })
  t.equal(widened.json().code, 'APPLICATION_WIDENED')
  const approved = await api(h, tokens.nr, 'POST', `/v1/applications/${a.id}/decision`, { decision: 'approve', reason: '符合条件' })
  t.equal(approved.statusCode, 200)
  t.equal(approved.json().status, 'approved')
  const grantId = approved.json().grantId
  t.ok(grantId)
  const again = await api(h, tokens.nr, 'POST', `/v1/applications/${a.id}/decision`, { decision: 'reject', reason: 'x' })
  t.equal(again.statusCode, 409)

  // The second replica: same database and Redis, its own process state.
  const h2 = await startNode({ tag: 'sharing2', schema: h.schema, env: { TONGBAN_REDIS_PREFIX: h.config.redis.prefix, TONGBAN_REPLICA_ID: `${h.schema}-r2` }, keepSchema: true })
  t.teardown(() => h2.close())

  for (const node of [h, h2]) {
    const res = await call(node, tokens.jn, '103002/00002', 'query')
    t.equal(res.statusCode, 200, `granted on ${node.config.replicaId}`)
    t.ok(Array.isArray(res.json().properties))
    const ev = decodeEvidence(res.headers['tongban-evidence'] as string)
    t.equal(ev.record.grant, grantId, 'the record names the grant used')
    t.equal(ev.record.responseDigest, digest(res.body), 'the evidence covers exactly what was returned')
  }
  t.equal((await call(h, tokens.jnMobile, '103002/00002', 'query')).statusCode, 200, 'a department grant serves its other systems')
  const otherDept = await call(h, tokens.nj, '103002/00002', 'query')
  t.equal(otherDept.json().code, 'POLICY_NO_GRANT', 'a grant for department A does not serve department B')
  const otherPurpose = await call(h, tokens.jn, '103002/00002', 'query', subject, 'HS-01')
  t.equal(otherPurpose.json().code, 'POLICY_PURPOSE_NOT_GRANTED')

  const listed = (await api(h, tokens.jn, 'GET', '/v1/grants')).json().grants
  t.ok(listed.some((g: { id: string }) => g.id === grantId))
  t.notOk((await api(h, tokens.nj, 'GET', '/v1/grants')).json().grants.some((g: { id: string }) => g.id === grantId))
  t.equal((await api(h, tokens.nj, 'DELETE', `/v1/grants/${grantId}`)).statusCode, 404, 'nobody else may revoke it')

  const revoked = await api(h, tokens.nr, 'DELETE', `/v1/grants/${grantId}?reason=${encodeURIComponent('审核已完成')}`)
  t.equal(revoked.statusCode, 200)
  t.equal(revoked.json().status, 'revoked')
  // At once, on both replicas: the very next call is refused.
  for (const node of [h2, h]) {
    const res = await call(node, tokens.jn, '103002/00002', 'query')
    t.equal(res.statusCode, 403, `refused on ${node.config.replicaId}`)
    t.equal(res.json().code, 'POLICY_GRANT_REVOKED')
  }
  const history = (await api(h, tokens.jn, 'GET', `/v1/applications/${a.id}`)).json().history
  t.same(history.map((e: { action: string }) => e.action), ['submitted', 'approved', 'grant-revoked'])
  t.same(history.map((e: { actor: string }) => e.actor), ['jn-civil-affairs', 'js-natural-resources', 'js-natural-resources'])
})

t.test('apply → reject needs a reason and is recorded', async (t) => {
  const a = (await api(h, tokens.nj, 'POST', '/v1/applications', {
    resource: '103002/00002', items: ['properties'], purposes: ['HS-01'], basis: '住房保障资格审核', validTo: inDays(30), dailyQuota: 10,
  })).json()
  const noReason = await api(h, tokens.nr, 'POST', `/v1/applications/${a.id}/decision`, { decision: 'reject' })
  t.equal(noReason.json().code, 'APPLICATION_REASON_REQUIRED')
  const rejected = await api(h, tokens.nr, 'POST', `/v1/applications/${a.id}/decision`, { decision: 'reject', reason: '申请事项不属于法定职责范围' })
  t.equal(rejected.json().status, 'rejected')
  t.equal(rejected.json().decisionReason, '申请事项不属于法定职责范围')
  t.equal((await call(h, tokens.nj, '103002/00002', 'query', subject, 'HS-01')).json().code, 'POLICY_NO_GRANT')
})

t.test('items outside the grant never appear; a system-bound grant serves that system only', async (t) => {
  await applyAndApprove({ token: tokens.jnMobile, resource: '103002/00001', items: ['propertyCount', 'totalArea'], systemOnly: true, approve: { items: ['propertyCount'] } })
  const granted = await call(h, tokens.jnMobile, '103002/00001', 'verify')
  t.equal(granted.statusCode, 200)
  t.same(Object.keys(granted.json()).sort(), ['hasProperty', 'propertyCount'], 'narrowed to propertyCount: totalArea is filtered out')
  const sibling = await call(h, tokens.jn, '103002/00001', 'verify')
  t.same(Object.keys(sibling.json()), ['hasProperty'], 'the sibling system gets only the unconditional item')
})

t.test('expiry takes effect at the boundary', async (t) => {
  const validTo = new Date(Date.now() + 2500)
  await applyAndApprove({ token: tokens.nj, resource: '103002/00002', items: ['properties'], approve: { validTo: validTo.toISOString() } })
  const before = await call(h, tokens.nj, '103002/00002', 'query')
  t.equal(before.statusCode, 200)
  await new Promise((r) => setTimeout(r, validTo.getTime() - Date.now() + 50))
  const after = await call(h, tokens.nj, '103002/00002', 'query')
  t.equal(after.statusCode, 403)
  t.equal(after.json().code, 'POLICY_GRANT_EXPIRED')
})

t.test('the decision deadline fires: reminder and escalation are recorded once', async (t) => {
  const a = (await api(h, tokens.nj, 'POST', '/v1/applications', {
    resource: '103002/00002', items: ['properties'], purposes: ['HS-01'], basis: '住房保障资格审核', validTo: inDays(30), dailyQuota: 10,
  })).json()
  // The real 10-working-day deadline, replaced by one a moment away (shortened clock): in
  // the application too, since the escalation checks that it is due.
  const now = Date.now()
  await h.query('UPDATE applications SET due_at = $2 WHERE id = $1', [a.id, new Date(now + 700)])
  await scheduleApplicationDeadline(h.app.jobs.deadlines, { applicationId: `${a.id}`, remindAt: new Date(now + 300), dueAt: new Date(now + 700) })
  let history: Array<{ action: string }> = []
  for (let i = 0; i < 100 && !history.some((e) => e.action === 'escalated'); i++) {
    await new Promise((r) => setTimeout(r, 100))
    history = (await api(h, tokens.nj, 'GET', `/v1/applications/${a.id}`)).json().history
  }
  t.same(history.map((e) => e.action), ['submitted', 'reminder-sent', 'escalated'])
  const app = (await api(h, tokens.nr, 'GET', `/v1/applications/${a.id}`)).json()
  t.ok(app.escalatedAt)
  t.equal(app.status, 'pending', 'escalation does not decide for the provider')
})

t.test('quota store down: conditional queries fail closed, unconditional ones go on', async (t) => {
  const proxy = await startTcpProxy(6379)
  const node = await startNode({ tag: 'sharingredis', schema: h.schema, keepSchema: true, env: { TONGBAN_REDIS_URL: `redis://127.0.0.1:${proxy.port}`, TONGBAN_REDIS_PREFIX: h.config.redis.prefix, TONGBAN_REPLICA_ID: `${h.schema}-r3` } })
  t.teardown(async () => {
    await node.close()
    await proxy.close()
  })
  await applyAndApprove({ token: tokens.jn, resource: '103002/00002', items: ['properties'] })
  await node.app.grants.load()
  t.equal((await call(node, tokens.jn, '103002/00002', 'query')).statusCode, 200)
  await proxy.cut()
  const res = await call(node, tokens.jn, '103002/00002', 'query')
  t.equal(res.statusCode, 503)
  t.equal(res.json().code, 'QUOTA_UNAVAILABLE')
  t.notMatch(res.body, /properties/)
  t.equal((await call(node, tokens.jn, '101001/00001', 'verify')).statusCode, 200, 'identity verification does not need Redis')
  await proxy.restore()
})

t.test('separation of duties: catalogue admin and auditor never in one principal', async (t) => {
  const [cert] = await h.query("SELECT cert_pem FROM systems WHERE client_id = 'jn-civil-affairs'")
  await h.query(
    `INSERT INTO systems (client_id, name, department_code, department_name, region, roles, cert_pem, cert_thumbprint)
     SELECT 'jn-civil-affairs', name, department_code, department_name, region, $1, cert_pem, cert_thumbprint FROM systems WHERE client_id = 'jn-civil-affairs'
     ON CONFLICT (client_id) DO UPDATE SET roles = $1`,
    [['catalog-admin', 'auditor']],
  )
  t.ok(cert)
  await h.app.systems.load()
  const res = await h.app.inject({
    method: 'POST', url: '/v1/oauth/token',
    payload: { grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: h.assertion('jn-civil-affairs') },
  })
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'AUTH_ROLE_CONFLICT')
  await h.query("UPDATE systems SET roles = '{consumer}' WHERE client_id = 'jn-civil-affairs'")
  await h.app.systems.load()
})

t.test('every denial is audited with its reason', async (t) => {
  const rows = await h.query("SELECT reason, count(*)::int AS n FROM audit_records WHERE decision = 'denied' GROUP BY reason")
  const reasons = new Set(rows.map((r) => r.reason))
  for (const code of ['POLICY_SHARE_NONE', 'POLICY_NO_GRANT', 'POLICY_PURPOSE_NOT_GRANTED', 'POLICY_GRANT_EXPIRED', 'POLICY_GRANT_REVOKED', 'APPLICATION_WIDENED', 'AUTH_ROLE_CONFLICT']) {
    t.ok(reasons.has(code), code)
  }
  const ops = await h.query("SELECT DISTINCT operation FROM audit_records WHERE operation LIKE 'application.%' OR operation LIKE 'grant.%'")
  t.same(ops.map((r) => r.operation).sort(), ['application.decide', 'application.submit', 'grant.revoke'])
})

