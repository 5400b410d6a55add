// The in-app inbox (docs/notifications.md): one real node. A county consumer applies for the
// province's conditional real-estate resource; the provider is told; its decision reaches
// the applicant's inbox, Chinese first, the resource by name; read marks and the unread
// filter; a revocation is told too; no department reads another's notices.
import t from 'tap'
import { startNode } from '../helpers/harness.js'

const h = await startNode({ tag: 'notify' })
t.teardown(() => h.close())

const tokens = {
  jn: await h.token('jn-civil-affairs'),
  nj: await h.token('nj-housing'),
  nr: await h.token('js-natural-resources'),
}
const api = (token: string, method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) =>
  h.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) })
const inbox = async (token: string, q = '') => {
  const res = await api(token, 'GET', `/v1/notifications${q}`)
  if (res.statusCode !== 200) throw new Error(res.body)
  return res.json().notifications as Array<{ id: string; kind: string; title: { zh: string; en: string }; body: { zh: string; en: string }; link?: string; readAt: string | null }>
}
const NAME = h.app.catalog.get('103002/00002')!.name

t.test('submission, decision, read marks and revocation', async (t) => {
  const applied = await api(tokens.jn, 'POST', '/v1/applications', {
    resource: '103002/00002', items: ['properties'], purposes: ['SA-01'], basis: '《社会救助暂行办法》第十一条：核对申请人家庭财产状况',
    validTo: new Date(Date.now() + 90 * 86_400_000).toISOString(), dailyQuota: 10,
  })
  t.equal(applied.statusCode, 201, applied.body)
  const id = applied.json().id

  const [asked] = await inbox(tokens.nr)
  t.match(asked, { kind: 'application', link: `/v1/applications/${id}`, readAt: null }, 'the providing department is asked to decide')
  t.ok(asked.title.zh.includes(NAME) && asked.body.en.includes(NAME), 'the resource by its name, in both languages')
  t.notOk(asked.title.zh.includes('103002'), 'not by its code')
  t.same(await inbox(tokens.jn), [], 'the applicant has nothing yet')
  t.same(await inbox(tokens.nj), [], 'another department sees nothing')

  const decided = await api(tokens.nr, 'POST', `/v1/applications/${id}/decision`, { decision: 'approve', reason: '符合条件' })
  t.equal(decided.statusCode, 200, decided.body)
  const [told] = await inbox(tokens.jn)
  t.match(told, { kind: 'decision', title: { zh: `申请已批准：${NAME}`, en: `Application approved: ${NAME}` }, readAt: null })
  t.ok(told.body.zh.includes('符合条件'), 'with the reason')

  const foreign = await api(tokens.nj, 'POST', `/v1/notifications/${told.id}/read`)
  t.equal(foreign.statusCode, 404, 'another department cannot mark it')
  t.equal(foreign.json().code, 'NOTIFICATION_NOT_FOUND')
  const read = await api(tokens.jn, 'POST', `/v1/notifications/${told.id}/read`)
  t.equal(read.statusCode, 200, read.body)
  t.ok(read.json().readAt, 'read')
  const again = await api(tokens.jn, 'POST', `/v1/notifications/${told.id}/read`)
  t.equal(again.json().readAt, read.json().readAt, 'the first read time stays')
  t.same(await inbox(tokens.jn, '?unread=true'), [], 'nothing unread')

  const grant = decided.json().grantId
  const revoked = await api(tokens.nr, 'DELETE', `/v1/grants/${grant}`)
  t.equal(revoked.statusCode, 200, revoked.body)
  const list = await inbox(tokens.jn)
  t.same(list.map((n) => n.kind), ['revocation', 'decision'], 'newest first')
  t.same((await inbox(tokens.jn, '?unread=true')).map((n) => n.kind), ['revocation'])
  const page = await inbox(tokens.jn, `?limit=1&before=${list[0].id}`)
  t.same(page.map((n) => n.id), [list[1].id], 'paging with before')

  const bad = await api(tokens.jn, 'GET', '/v1/notifications?before=x')
  t.equal(bad.statusCode, 400, 'a malformed id is a problem, not a 500')
  t.equal(bad.json().code, 'INPUT_INVALID')
  const unknown = await api(tokens.jn, 'POST', '/v1/notifications/01M8VDZ04T50RKQP02VCPC57E0/read')
  t.equal(unknown.statusCode, 404)
})

t.test('a job that runs twice tells nobody twice', async (t) => {
  const { Notifier } = await import('../../src/notify/events.js')
  const n = new Notifier(h.app.db, h.app.log, (c) => c)
  const facts = { id: '01M8VDZ04T50RKQP02VCPC57E1', resource: '103002/00002', consumerDepartment: '11320100MB00000342', providerDepartment: '11320000MB0000091R', status: 'pending', dueAt: null, decisionReason: null }
  await n.reminder(facts)
  await n.reminder(facts)
  const rows = await h.query("SELECT count(*)::int AS n FROM notifications WHERE ref = $1", [`reminder:${facts.id}`])
  t.equal(rows[0].n, 1)
})
