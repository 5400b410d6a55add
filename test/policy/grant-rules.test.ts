// Grant rules that the hostile review found wrong (real PostgreSQL, Redis, BullMQ): why a
// query is refused when several grants have ended, who may revoke a grant bound to one system,
// and deadline jobs run at the wrong moment on purpose (early, late, twice, after the decision).
import t, { type Test } from 'tap'
import { startNode, context } from '../helpers/harness.js'
import { samplePersons } from '../../dev/providers/population.js'
import {
  JOB_ESCALATION,
  JOB_GRANT_EXPIRY,
  JOB_REMINDER,
  escalationJobId,
  scheduleApplicationDeadline,
} from '../../src/policy/deadlines.js'

const h = await startNode({ tag: 'grantrules' })
t.teardown(() => h.close())

const tokens = {
  jn: await h.token('jn-civil-affairs'),
  jnMobile: await h.token('jn-civil-affairs-mobile'),
  nj: await h.token('nj-housing'),
  nr: await h.token('js-natural-resources'),
}
const person = samplePersons(1)[0]
const subject = { idNumber: person.idNumber, name: person.name }

const call = (token: string, code: string, op: string) =>
  h.app.inject({
    method: 'POST',
    url: `/v1/resources/${encodeURIComponent(code)}/${op}`,
    headers: { authorization: `Bearer ${token}`, ...context({ 'tongban-purpose': 'SA-01' }) },
    payload: subject,
  })
const api = (token: string, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) =>
  h.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) })
const inDays = (d: number) => new Date(Date.now() + d * 86400_000).toISOString()

async function apply(o: { token: string; resource: string; items: string[]; systemOnly?: boolean }) {
  const applied = await api(o.token, 'POST', '/v1/applications', {
    resource: o.resource, items: o.items, purposes: ['SA-01'], basis: '《社会救助暂行办法》第十一条：核对申请人家庭财产状况',
    validTo: inDays(180), dailyQuota: 100, ...(o.systemOnly ? { systemOnly: true } : {}),
  })
  if (applied.statusCode !== 201) throw new Error(`apply: ${applied.statusCode} ${applied.body}`)
  return applied.json() as { id: string }
}
async function applyAndApprove(o: { token: string; resource: string; items: string[]; systemOnly?: boolean; approve?: object }) {
  const a = await apply(o)
  const decided = await api(tokens.nr, 'POST', `/v1/applications/${a.id}/decision`, { decision: 'approve', reason: '符合条件', ...o.approve })
  if (decided.statusCode !== 200) throw new Error(`approve: ${decided.statusCode} ${decided.body}`)
  return decided.json() as { id: string; grantId: string }
}

async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}
const stateOf = async (jobId: string) => (await h.app.jobs.deadlines.getJob(jobId))?.getState() ?? 'absent'
/** Waits until the job has run to its end; it must have completed, not failed. */
async function ran(t: Test, jobId: string) {
  await until(`job ${jobId} ends`, async () => ['completed', 'failed'].includes(await stateOf(jobId)))
  t.equal(await stateOf(jobId), 'completed', `${jobId} completed`)
}
let seq = 0
const manual = async (name: string, data: object) => {
  const jobId = `manual-${++seq}`
  await h.app.jobs.deadlines.add(name as typeof JOB_REMINDER, data as { applicationId: string; at: string }, { jobId })
  return jobId
}
const application = async (id: string) =>
  (await h.query('SELECT status, reminded_at, escalated_at FROM applications WHERE id = $1', [id]))[0]
const events = async (id: string) =>
  (await h.query('SELECT action FROM application_events WHERE application_id = $1 ORDER BY id', [id])).map((r) => r.action)

t.test('an expired grant is refused as expired even when an older grant of the same department, resource and purpose was revoked', async (t) => {
  const older = await applyAndApprove({ token: tokens.nj, resource: '103002/00002', items: ['properties'] })
  t.equal((await api(tokens.nr, 'DELETE', `/v1/grants/${older.grantId}`)).statusCode, 200)
  t.equal((await call(tokens.nj, '103002/00002', 'query')).json().code, 'POLICY_GRANT_REVOKED', 'only the revoked grant: revoked')

  const validTo = new Date(Date.now() + 5000)
  await applyAndApprove({ token: tokens.nj, resource: '103002/00002', items: ['properties'], approve: { validTo: validTo.toISOString() } })
  await until('the newer grant has expired', () => Date.now() > validTo.getTime() + 50)
  const res = await call(tokens.nj, '103002/00002', 'query')
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'POLICY_GRANT_EXPIRED', 'the latest grant expired: that is the reason')

  // And the other way round: the latest one revoked, an older one expired.
  const latest = await applyAndApprove({ token: tokens.nj, resource: '103002/00002', items: ['properties'] })
  t.equal((await call(tokens.nj, '103002/00002', 'query')).statusCode, 200)
  t.equal((await api(tokens.nj, 'DELETE', `/v1/grants/${latest.grantId}`)).statusCode, 200, 'the holder gives it up')
  t.equal((await call(tokens.nj, '103002/00002', 'query')).json().code, 'POLICY_GRANT_REVOKED')
})

t.test('revoking a grant bound to one system: that system or the provider may, a sibling system may not', async (t) => {
  const bound = await applyAndApprove({ token: tokens.jnMobile, resource: '103002/00001', items: ['propertyCount'], systemOnly: true })
  const sibling = await api(tokens.jn, 'DELETE', `/v1/grants/${bound.grantId}`)
  t.equal(sibling.statusCode, 403, 'a sibling system of the department is refused')
  t.match(sibling.headers['content-type'], /^application\/problem\+json/)
  t.equal(sibling.json().code, 'GRANT_BOUND_TO_OTHER_SYSTEM')
  t.equal((await h.query('SELECT status FROM grants WHERE id = $1', [bound.grantId]))[0].status, 'active', 'nothing changed')
  const served = await call(tokens.jnMobile, '103002/00001', 'verify')
  t.ok('propertyCount' in served.json(), 'the bound system is still served')
  const audited = await h.query("SELECT reason FROM audit_records WHERE operation = 'grant.revoke' AND reason = 'GRANT_BOUND_TO_OTHER_SYSTEM'")
  t.equal(audited.length, 1, 'the refusal is audited')

  const own = await api(tokens.jnMobile, 'DELETE', `/v1/grants/${bound.grantId}`)
  t.equal(own.statusCode, 200, 'the bound system gives it up')
  t.equal(own.json().status, 'revoked')

  const again = await applyAndApprove({ token: tokens.jnMobile, resource: '103002/00001', items: ['propertyCount'], systemOnly: true })
  t.equal((await api(tokens.nr, 'DELETE', `/v1/grants/${again.grantId}`)).statusCode, 200, 'the provider revokes it')

  // A department grant belongs to the department: any of its consumer systems may give it up.
  const dept = await applyAndApprove({ token: tokens.jnMobile, resource: '103002/00001', items: ['propertyCount'] })
  const given = await api(tokens.jn, 'DELETE', `/v1/grants/${dept.grantId}`)
  t.equal(given.statusCode, 200, 'a department grant: a sibling system may give it up')
  t.equal((await api(tokens.nj, 'DELETE', `/v1/grants/${dept.grantId}`)).statusCode, 404, 'another department sees no such grant')
})

t.test('deadline jobs at the wrong moment do only what is right at that moment', async (t) => {
  const q = h.app.jobs.deadlines
  await until('the worker runs', () => h.app.jobs.worker.isRunning())

  t.test('an escalation that runs before the application is due escalates nothing', async (t) => {
    const a = await apply({ token: tokens.jn, resource: '103002/00002', items: ['properties'] })
    // The application is due in ten working days; its escalation job fires now.
    await scheduleApplicationDeadline(q, { applicationId: a.id, dueAt: new Date() })
    await ran(t, escalationJobId(a.id))
    t.equal((await application(a.id)).escalated_at, null, 'not escalated')
    t.notOk((await events(a.id)).includes('escalated'))
  })

  t.test('a reminder that runs before its time goes back to wait and reminds nothing', async (t) => {
    const a = await apply({ token: tokens.jn, resource: '103002/00002', items: ['properties'] })
    const jobId = await manual(JOB_REMINDER, { applicationId: a.id, at: new Date(Date.now() + 3_600_000).toISOString() })
    await until('the reminder is back in the delayed set', async () => (await stateOf(jobId)) === 'delayed')
    t.equal((await application(a.id)).reminded_at, null, 'not reminded')
    const job = await q.getJob(jobId)
    t.ok(job && job.timestamp + job.delay >= Date.now() + 3_500_000, 'delayed until its due time')
  })

  t.test('late, twice, after the decision: a reminder past the due time is skipped, an escalation happens once', async (t) => {
    const a = await apply({ token: tokens.jn, resource: '103002/00002', items: ['properties'] })
    await h.query("UPDATE applications SET due_at = now() - interval '1 minute' WHERE id = $1", [a.id])
    const past = new Date(Date.now() - 120_000).toISOString()
    await ran(t, await manual(JOB_REMINDER, { applicationId: a.id, at: past }))
    t.equal((await application(a.id)).reminded_at, null, 'a reminder after the due time reminds nothing (the escalation covers it)')
    await ran(t, await manual(JOB_ESCALATION, { applicationId: a.id, at: past }))
    await ran(t, await manual(JOB_ESCALATION, { applicationId: a.id, at: past }))
    t.same((await events(a.id)).filter((e) => e === 'escalated'), ['escalated'], 'escalated once')
    t.equal((await application(a.id)).status, 'pending', 'escalation does not decide')

    const b = await apply({ token: tokens.jn, resource: '103002/00002', items: ['properties'] })
    t.equal((await api(tokens.nr, 'POST', `/v1/applications/${b.id}/decision`, { decision: 'reject', reason: '材料不全' })).statusCode, 200)
    await h.query("UPDATE applications SET due_at = now() - interval '1 minute' WHERE id = $1", [b.id])
    await ran(t, await manual(JOB_ESCALATION, { applicationId: b.id, at: past }))
    t.equal((await application(b.id)).escalated_at, null, 'a decided application is not escalated')
  })

  t.test('grant expiry: early does nothing, after a revocation does nothing', async (t) => {
    const g = await applyAndApprove({ token: tokens.jnMobile, resource: '103002/00002', items: ['properties'], systemOnly: true })
    const early = await manual(JOB_GRANT_EXPIRY, { grantId: g.grantId, at: new Date(Date.now() + 3_600_000).toISOString() })
    await until('the early expiry is back in the delayed set', async () => (await stateOf(early)) === 'delayed')
    await ran(t, await manual(JOB_GRANT_EXPIRY, { grantId: g.grantId, at: new Date().toISOString() }))
    t.equal((await h.query('SELECT status FROM grants WHERE id = $1', [g.grantId]))[0].status, 'active', 'a grant still valid is not expired')
    t.equal((await call(tokens.jnMobile, '103002/00002', 'query')).statusCode, 200, 'and still serves')
    t.equal((await api(tokens.nr, 'DELETE', `/v1/grants/${g.grantId}`)).statusCode, 200)
    await h.query("UPDATE grants SET valid_to = now() - interval '1 minute' WHERE id = $1", [g.grantId])
    await ran(t, await manual(JOB_GRANT_EXPIRY, { grantId: g.grantId, at: new Date(Date.now() - 60_000).toISOString() }))
    t.equal((await h.query('SELECT status FROM grants WHERE id = $1', [g.grantId]))[0].status, 'revoked', 'a revoked grant stays revoked')
  })
})
