// The workbench's view of applications and grants (issue 15): department names, the
// reviewer's inbox (open, by deadline, working days left, overdue, reminder/escalation),
// the history with who acted, a grant's use today; another department sees nothing.
import t from 'tap'
import { startNode, context } from '../helpers/harness.js'
import { samplePersons } from '../../dev/providers/population.js'
import { markDeadlineEvent } from '../../src/policy/applications.js'

const h = await startNode({ tag: 'workbench' })
t.teardown(() => h.close())

const tokens = {
  jn: await h.token('jn-civil-affairs'),
  nr: await h.token('js-natural-resources'),
  ps: await h.token('js-public-security'),
}
const api = (token: string, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) =>
  h.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) })
const inDays = (d: number) => new Date(Date.now() + d * 86400_000).toISOString()

const JN = { code: '11320115MB0000012H', name: '南京市江宁区民政局' }
const NR = { code: '11320000MB0000091R', name: '江苏省自然资源厅' }

async function apply(quota = 5) {
  const res = await api(tokens.jn, 'POST', '/v1/applications', {
    resource: '103002/00002', items: ['properties'], purposes: ['SA-01'], basis: '《社会救助暂行办法》第十一条', validTo: inDays(90), dailyQuota: quota,
  })
  if (res.statusCode !== 201) throw new Error(`apply: ${res.statusCode} ${res.body}`)
  return res.json()
}

t.test('an application names both departments and counts its deadline in working days', async (t) => {
  const a = await apply()
  t.same(a.consumer, JN)
  t.same(a.provider, NR)
  t.equal(a.workingDaysLeft, 10, 'the 10-working-day deadline, just submitted')
  t.equal(a.overdue, false)
  t.equal(a.deadlineState, 'none')
  const one = await api(tokens.nr, 'GET', `/v1/applications/${a.id}`)
  t.equal(one.statusCode, 200)
  t.same(one.json().provider, NR)
  const [submitted] = one.json().history
  t.equal(submitted.action, 'submitted')
  t.equal(submitted.actorKind, 'system')
  t.type(submitted.actorName, 'string', 'the system that acted, by name')
})

t.test("the reviewer's inbox: open ones by deadline, overdue and escalated shown", async (t) => {
  const later = await apply()
  const sooner = await apply()
  // The sooner one is past its deadline and has been escalated (the deadline job's own store call).
  await h.query("UPDATE applications SET due_at = now() - interval '1 day' WHERE id = $1", [sooner.id])
  t.equal(await markDeadlineEvent(h.app.db, sooner.id, 'escalated'), true)
  const decided = await apply()
  t.equal((await api(tokens.nr, 'POST', `/v1/applications/${decided.id}/decision`, { decision: 'reject', reason: '材料不全' })).statusCode, 200)

  const inbox = await api(tokens.nr, 'GET', '/v1/applications?as=provider&status=open&sort=deadline')
  t.equal(inbox.statusCode, 200)
  const list = inbox.json().applications
  const ids = list.map((a: any) => a.id)
  t.notOk(ids.includes(decided.id), 'a decided application is not open')
  t.ok(ids.indexOf(sooner.id) < ids.indexOf(later.id), 'the nearest deadline first')
  const s = list.find((a: any) => a.id === sooner.id)
  t.equal(s.overdue, true)
  t.ok(s.workingDaysLeft <= 0, 'no working days left')
  t.equal(s.deadlineState, 'escalated')
  t.ok(list.every((a: any) => a.status === 'pending' && a.provider.code === NR.code))

  const history = (await api(tokens.jn, 'GET', `/v1/applications/${sooner.id}`)).json().history
  t.same(history.map((e: any) => e.action), ['submitted', 'escalated'])
  t.equal(history[1].actorKind, 'job')
  const rejected = (await api(tokens.jn, 'GET', `/v1/applications/${decided.id}`)).json()
  t.equal(rejected.workingDaysLeft, null, 'decided: no deadline counts')
  t.equal(rejected.history.at(-1).action, 'rejected')
  t.equal(rejected.history.at(-1).actorKind, 'system')
})

t.test("another department's applications are invisible", async (t) => {
  const a = await apply()
  const other = await api(tokens.ps, 'GET', `/v1/applications/${a.id}`)
  t.equal(other.statusCode, 404)
  t.equal(other.json().code, 'APPLICATION_NOT_FOUND')
  const list = (await api(tokens.ps, 'GET', '/v1/applications?as=provider&status=open&sort=deadline')).json().applications
  t.notOk(list.some((x: any) => x.id === a.id))
  const asProvider = await api(tokens.jn, 'GET', '/v1/applications?as=provider')
  t.equal(asProvider.statusCode, 403, 'a consumer is no reviewer')
  t.equal(asProvider.json().code, 'AUTH_ROLE_REQUIRED')
})

t.test('hostile inbox queries are problems', async (t) => {
  for (const q of ['sort=nearest', 'status=OPEN', 'status=open&status=pending', 'limit=0', 'limit=9999', "sort='; DROP TABLE applications; --", 'as=auditor']) {
    const res = await api(tokens.nr, 'GET', `/v1/applications?${q}`)
    t.equal(res.statusCode, 400, q)
    t.match(res.headers['content-type'], /application\/problem\+json/)
    t.equal(res.json().code, 'INPUT_INVALID', q)
  }
})

t.test("a grant shows today's use against its quota, read without consuming", async (t) => {
  const a = await apply(3)
  const approved = await api(tokens.nr, 'POST', `/v1/applications/${a.id}/decision`, { decision: 'approve', dailyQuota: 2 })
  t.equal(approved.statusCode, 200)
  const grantId = approved.json().grantId
  const grantOf = async (token: string) => {
    const res = await api(token, 'GET', '/v1/grants?status=active&limit=200')
    t.equal(res.statusCode, 200, res.body)
    return (res.json().grants as any[]).find((g) => g.id === grantId)
  }
  let g = await grantOf(tokens.jn)
  t.equal(g.usedToday, 0)
  t.equal(g.dailyQuota, 2)
  t.same(g.consumer, JN)
  t.same(g.provider, NR)
  const person = samplePersons(1)[0]
  const q = await h.app.inject({
    method: 'POST', url: `/v1/resources/${encodeURIComponent('103002/00002')}/query`,
    headers: { authorization: `Bearer ${tokens.jn}`, ...context({ 'tongban-purpose': 'SA-01' }) },
    payload: { idNumber: person.idNumber, name: person.name },
  })
  t.not(q.statusCode, 403, 'the grant admits the query')
  g = await grantOf(tokens.nr)
  t.equal(g.usedToday, 1, 'the provider sees the use too')
  t.equal((await grantOf(tokens.nr)).usedToday, 1, 'reading it consumed nothing')
  t.equal(await grantOf(tokens.ps), undefined, 'another department does not see it')
})

t.test('the overview: today per department, the caller\'s own; an auditor sees all', async (t) => {
  const refused = await h.app.inject({
    method: 'POST', url: `/v1/resources/${encodeURIComponent('301002/00001')}/query`,
    headers: { authorization: `Bearer ${tokens.jn}`, ...context({ 'tongban-purpose': 'SA-01' }) },
    payload: { idNumber: samplePersons(1)[0].idNumber, name: samplePersons(1)[0].name },
  })
  t.equal(refused.json().code, 'POLICY_SHARE_NONE')
  const near = await apply()
  await h.query("UPDATE applications SET due_at = now() - interval '1 hour' WHERE id = $1", [near.id])
  // The audit record is sealed by the group commit just after the answer: wait for it.
  const overviewOf = async (token: string) => {
    const res = await api(token, 'GET', '/v1/overview')
    t.equal(res.statusCode, 200, res.body)
    return res.json()
  }
  let mine: any
  for (let i = 0; i < 200; i++) {
    mine = await overviewOf(tokens.jn)
    if (mine.departments[0]?.refusalsToday?.POLICY_SHARE_NONE >= 1) break
    await new Promise((r) => setImmediate(r))
    await h.query('SELECT pg_sleep(0.02)')
  }
  t.equal(mine.scope, 'department')
  t.same(mine.departments.map((d: any) => d.department), [JN], 'only its own department')
  t.ok(mine.departments[0].queriesToday >= 2, 'the admitted and the refused query')
  t.ok(mine.departments[0].refusalsToday.POLICY_SHARE_NONE >= 1)
  const reviewer = await overviewOf(tokens.nr)
  const mineToDecide = reviewer.departments[0].nearDeadline.find((a: any) => a.id === near.id)
  t.equal(mineToDecide?.overdue, true, 'the provider sees its overdue application')
  t.ok(reviewer.departments[0].nearDeadline.every((a: any) => a.workingDaysLeft <= 3))
  const other = await overviewOf(tokens.ps)
  t.notOk(JSON.stringify(other).includes(near.id), 'another department does not')
  const all = await overviewOf(await h.token('js-audit'))
  t.equal(all.scope, 'all')
  const codes = all.departments.map((d: any) => d.department.code)
  t.ok(codes.includes(JN.code) && codes.includes(NR.code), 'an auditor sees every department')
  t.equal((await h.app.inject({ method: 'GET', url: '/v1/overview' })).statusCode, 401)
})
