// People's sign-in end to end: the development OpenID Connect provider (dev/oidc) on a
// loopback port, a real node (PostgreSQL, Redis), a small browser driving the real flow
// (test/helpers/oidc.ts). Sessions, CSRF, the role ceiling, department boundaries, the
// person as operator in the audit record, and sign-out at the provider.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startNode, ROOT } from '../helpers/harness.js'
import { Browser, DEV_PEOPLE, peopleEnv, signIn, startDevOidc } from '../helpers/oidc.js'
import type { CatalogEntry } from '../../src/catalog/types.js'

const oidc = await startDevOidc()
t.teardown(() => oidc.close())
const h = await startNode({ tag: 'signin', env: peopleEnv(oidc.issuer) })
t.teardown(() => h.close())

const ROLE_OF: Record<string, string> = { 'catalogue-admin': 'catalog-admin', 'provider-reviewer': 'provider', applicant: 'consumer', auditor: 'auditor' }

/** The audit record of one request (written with the response; polled, never slept for). */
async function auditOf(requestId: string): Promise<{ operator: string | null; operation: string; decision: string; record: Record<string, unknown> }> {
  for (let i = 0; i < 200; i++) {
    const [row] = await h.query('SELECT operator, operation, decision, record FROM audit_records WHERE request_id = $1', [requestId])
    if (row) return row
    await new Promise((r) => setImmediate(r))
  }
  throw new Error(`no audit record for ${requestId}`)
}

t.test('each sample person signs in; GET /v1/session shows their role and department', async (t) => {
  for (const p of DEV_PEOPLE) {
    const { session } = await signIn(h.app, p.username)
    t.same(session.person, { sub: p.username, name: p.name }, `${p.username}: the person`)
    t.same(session.department, p.department, `${p.username}: ${p.department.name}`)
    t.equal(session.region, p.region)
    t.same(session.roles, p.roles.map((r) => ROLE_OF[r]), `${p.username}: ${p.roles.join(', ')}`)
    t.ok(session.csrfToken.length >= 32, 'a CSRF token comes with the session')
    t.ok(Date.parse(session.idleExpiresAt) <= Date.parse(session.absoluteExpiresAt))
  }
})

t.test('without a session: 401', async (t) => {
  const res = await new Browser(h.app).gateway('GET', '/v1/session')
  t.equal(res.statusCode, 401)
  t.equal(res.json().code, 'AUTH_SESSION_MISSING')
  const forged = await h.app.inject({ method: 'GET', url: '/v1/session', headers: { cookie: 'tongban_session=not-a-session-of-this-node-at-all' } })
  t.equal(forged.statusCode, 401)
})

t.test('wrong state: the callback is refused and no session opens', async (t) => {
  const b = new Browser(h.app)
  const cb = new URL(await b.authorize('police'), 'http://gw')
  cb.searchParams.set('state', 'x'.repeat(43))
  const res = await b.gateway('GET', cb.pathname + cb.search)
  t.equal(res.statusCode, 400, res.body)
  t.equal(res.json().code, 'AUTH_SIGNIN_STATE')
  t.equal((await b.gateway('GET', '/v1/session')).statusCode, 401)

  // An answer meant for another browser (its state, not this browser's flow cookie).
  const victim = new Browser(h.app)
  const stolen = await victim.authorize('land')
  const attacker = new Browser(h.app)
  await attacker.authorize('police')
  const cross = await attacker.gateway('GET', stolen)
  t.equal(cross.statusCode, 400)
  t.equal(cross.json().code, 'AUTH_SIGNIN_STATE')
  t.equal((await attacker.gateway('GET', '/v1/session')).statusCode, 401)
})

t.test('replayed code: a completed sign-in cannot be completed again', async (t) => {
  const b = new Browser(h.app)
  const cb = await b.authorize('police')
  const flow = b.gatewayCookies.get('tongban_session_signin')
  t.ok(flow, 'the flow cookie binds the sign-in to this browser')
  t.equal((await b.gateway('GET', cb)).statusCode, 303)

  // The same answer again, even with the flow cookie put back: the sign-in was taken once.
  const replay = new Browser(h.app)
  replay.gatewayCookies.set('tongban_session_signin', flow)
  const res = await replay.gateway('GET', cb)
  t.equal(res.statusCode, 400, res.body)
  t.equal(res.json().code, 'AUTH_SIGNIN_STATE')
  t.equal((await replay.gateway('GET', '/v1/session')).statusCode, 401, 'no session for the replay')

  // A browser asks for a page: a Chinese-first page, not JSON.
  const page = await replay.gateway('GET', cb, { headers: { accept: 'text/html' } })
  t.equal(page.statusCode, 400)
  t.match(page.headers['content-type'], /text\/html/)
})

t.test('a person without a role of this gateway: 403 AUTH_NO_ROLE', async (t) => {
  const b = new Browser(h.app)
  const res = await b.gateway('GET', await b.authorize('nobody'))
  t.equal(res.statusCode, 403, res.body)
  t.equal(res.json().code, 'AUTH_NO_ROLE')
  // Claiming a role the department holds no system for is no better (the ceiling rule).
  const over = await new Browser(h.app).signIn('overreach')
  t.same(over.roles, ['consumer'], 'auditor is dropped: 江宁区民政局 has no auditor system')
})

t.test('CSRF: a cookie POST without or with a wrong x-csrf-token is refused; the right one passes', async (t) => {
  const { browser, session } = await signIn(h.app, 'admin')
  const entry: CatalogEntry = JSON.parse(readFileSync(join(ROOT, 'catalog/101001-00001.json'), 'utf8'))
  delete entry.version
  delete entry.service!.verifyService
  const payload = { ...entry, code: '101001/00009', name: '居民身份信息核验（人员登记）', related: ['101001/00001'] }

  const missing = await browser.gateway('POST', '/v1/catalog/resources', { payload })
  t.equal(missing.statusCode, 403)
  t.equal(missing.json().code, 'AUTH_CSRF')
  const wrong = await browser.gateway('POST', '/v1/catalog/resources', { payload, headers: { 'x-csrf-token': session.csrfToken.slice(1) + 'A' } })
  t.equal(wrong.statusCode, 403)
  t.equal(wrong.json().code, 'AUTH_CSRF')
  const noLogout = await browser.gateway('POST', '/workbench/auth/logout')
  t.equal(noLogout.statusCode, 403, 'sign-out needs the token too')
  t.equal(noLogout.json().code, 'AUTH_CSRF')
  t.equal((await browser.gateway('GET', '/v1/session')).statusCode, 200, 'the refused calls ended nothing')

  const ok = await browser.gateway('POST', '/v1/catalog/resources', { payload, headers: { 'x-csrf-token': session.csrfToken } })
  t.equal(ok.statusCode, 201, ok.body)

  // The admin's action is audited with the person (the subject, not the name) as operator.
  const audit = await auditOf(ok.headers['tongban-request-id'] as string)
  t.equal(audit.operation, 'catalog.create')
  t.equal(audit.decision, 'allowed')
  t.equal(audit.operator, 'admin')
  t.notMatch(JSON.stringify(audit.record), /张伟/, 'the name is not in the audit record')
  const refused = await auditOf(missing.headers['tongban-request-id'] as string)
  t.equal(refused.decision, 'denied')
  t.equal(refused.operator, 'admin', 'the refusal too names the person')
  const [row] = await h.query('SELECT created_by FROM catalog_resources WHERE code = $1', ['101001/00009'])
  t.ok(row, 'the entry is registered')
})

t.test('the auditor searches the audit: audited with the auditor as operator', async (t) => {
  const { browser } = await signIn(h.app, 'auditor')
  const res = await browser.gateway('GET', '/v1/audit/records?operation=catalog.create')
  t.equal(res.statusCode, 200, res.body)
  const audit = await auditOf(res.headers['tongban-request-id'] as string)
  t.equal(audit.operation, 'audit.search')
  t.equal(audit.operator, 'auditor')
  t.notMatch(JSON.stringify(audit.record), /陈静/)
})

t.test('a reviewer of one department can neither see nor decide another department’s application', async (t) => {
  const jn = await h.token('jn-civil-affairs')
  const applied = await h.app.inject({
    method: 'POST', url: '/v1/applications', headers: { authorization: `Bearer ${jn}` },
    payload: { resource: '103002/00002', items: ['properties'], purposes: ['SA-01'], basis: '《社会救助暂行办法》第十一条', validTo: new Date(Date.now() + 90 * 86400_000).toISOString(), dailyQuota: 100 },
  })
  t.equal(applied.statusCode, 201, applied.body)
  const a = applied.json()
  t.equal(a.providerDepartment, '11320000MB0000091R', 'an application to 自然资源厅')

  // 李娜 of 公安厅: not in her list, 404 on reading and deciding it.
  const police = await signIn(h.app, 'police')
  const list = await police.browser.gateway('GET', '/v1/applications?status=pending')
  t.equal(list.statusCode, 200, list.body)
  t.notOk(list.json().applications.some((x: { id: string }) => x.id === a.id), '公安厅 does not see it')
  t.equal((await police.browser.gateway('GET', `/v1/applications/${a.id}`)).statusCode, 404)
  const decide = await police.browser.gateway('POST', `/v1/applications/${a.id}/decision`, { headers: { 'x-csrf-token': police.session.csrfToken }, payload: { decision: 'approve', reason: '越权' } })
  t.equal(decide.statusCode, 404, decide.body)

  // 王芳 of 自然资源厅 sees it and decides it.
  const land = await signIn(h.app, 'land')
  const own = await land.browser.gateway('GET', '/v1/applications?status=pending')
  t.ok(own.json().applications.some((x: { id: string }) => x.id === a.id), '自然资源厅 sees it')
  const approved = await land.browser.gateway('POST', `/v1/applications/${a.id}/decision`, { headers: { 'x-csrf-token': land.session.csrfToken }, payload: { decision: 'approve', reason: '符合条件' } })
  t.equal(approved.statusCode, 200, approved.body)
  t.equal(approved.json().status, 'approved')
  t.equal((await auditOf(approved.headers['tongban-request-id'] as string)).operator, 'land')

  // An applicant (consumer role) decides nothing, not even an application of their own department.
  const applied2 = await h.app.inject({
    method: 'POST', url: '/v1/applications', headers: { authorization: `Bearer ${jn}` },
    payload: { resource: '103002/00002', items: ['properties'], purposes: ['SA-01'], basis: '《社会救助暂行办法》第十一条', validTo: new Date(Date.now() + 60 * 86400_000).toISOString(), dailyQuota: 50 },
  })
  t.equal(applied2.statusCode, 201, applied2.body)
  const consumer = await signIn(h.app, 'applicant')
  const self = await consumer.browser.gateway('POST', `/v1/applications/${applied2.json().id}/decision`, { headers: { 'x-csrf-token': consumer.session.csrfToken }, payload: { decision: 'approve' } })
  t.equal(self.statusCode, 403, 'an applicant decides nothing')
})

t.test('sign-out ends the session here and redirects to the provider’s end-session', async (t) => {
  const { browser, session } = await signIn(h.app, 'land')
  const discovery = await (await fetch(`${oidc.issuer}/.well-known/openid-configuration`)).json()
  const out = await browser.gateway('POST', '/workbench/auth/logout', { headers: { 'x-csrf-token': session.csrfToken } })
  t.equal(out.statusCode, 303, out.body)
  const to = new URL(String(out.headers.location))
  t.equal(to.origin + to.pathname, discovery.end_session_endpoint, "to the provider's end-session endpoint")
  t.ok(to.searchParams.get('id_token_hint'), 'with the id token as hint')
  t.ok(to.searchParams.get('post_logout_redirect_uri')?.endsWith('/workbench/'), 'and the way back to the workbench')
  const after = await browser.gateway('GET', '/v1/session')
  t.equal(after.statusCode, 401)

  // The cookie itself, kept by a careless browser, opens nothing either.
  const { browser: b2, session: s2 } = await signIn(h.app, 'police')
  const cookie = b2.gatewayCookies.get('tongban_session')
  const json = await b2.gateway('POST', '/workbench/auth/logout', { headers: { 'x-csrf-token': s2.csrfToken, accept: 'application/json' } })
  t.equal(json.statusCode, 200)
  t.ok(String(json.json().redirectTo).startsWith(discovery.end_session_endpoint))
  const kept = await h.app.inject({ method: 'GET', url: '/v1/session', headers: { cookie: `tongban_session=${cookie}` } })
  t.equal(kept.statusCode, 401)
})

t.test('sessions end: idle and absolute (short limits by env)', async (t) => {
  const short = await startNode({ tag: 'signinexp', env: peopleEnv(oidc.issuer, { TONGBAN_SESSION_IDLE_SECONDS: '2', TONGBAN_SESSION_ABSOLUTE_SECONDS: '4' }) })
  t.teardown(() => short.close())
  const untilPast = async (iso: string) => {
    const at = Date.parse(iso)
    while (Date.now() <= at) await new Promise((r) => setTimeout(r, Math.max(1, at - Date.now() + 1)))
  }

  t.test('idle: untouched past idleExpiresAt', async (t) => {
    const { browser, session } = await signIn(short.app, 'auditor')
    t.ok(Date.parse(session.idleExpiresAt) < Date.parse(session.absoluteExpiresAt))
    await untilPast(session.idleExpiresAt)
    const res = await browser.gateway('GET', '/v1/session')
    t.equal(res.statusCode, 401)
    t.equal(res.json().code, 'AUTH_SESSION_EXPIRED')
  })

  t.test('absolute: used all along, it still ends at absoluteExpiresAt', async (t) => {
    const { browser, session } = await signIn(short.app, 'auditor')
    const firstIdle = Date.parse(session.idleExpiresAt)
    let last = session
    let beyondFirstIdle = false
    for (;;) {
      const res = await browser.gateway('GET', '/v1/session')
      if (res.statusCode !== 200) {
        t.equal(res.statusCode, 401)
        t.equal(res.json().code, 'AUTH_SESSION_EXPIRED')
        break
      }
      last = res.json()
      if (Date.now() > firstIdle) beyondFirstIdle = true
      // Used about every 200 ms: far inside the idle limit.
      await new Promise((r) => setTimeout(r, 200))
    }
    t.ok(beyondFirstIdle, 'use kept it open past its first idle limit (sliding)')
    t.ok(Date.now() >= Date.parse(session.absoluteExpiresAt), 'it ended at its absolute limit')
    t.equal(last.absoluteExpiresAt, session.absoluteExpiresAt, 'the absolute limit never moved')
  })
})
