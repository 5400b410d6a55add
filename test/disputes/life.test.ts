// A dispute's whole life (docs/disputes.md) on one real node: two departments verify the same
// person; one disputes its answer with the real evidence; the provider (公安厅) finds it in
// its inbox and on its webhook (signed); the reminder and the escalation jobs fire on a short
// deadline; the provider corrects; the disputing department is told, the other department
// that received the same subject is found in the audit log and told; its later answer
// carries Tongban-Data-Notice; every step of the history verifies like an answer; the
// statistics count it.
import t from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import { context, startNode } from '../helpers/harness.js'
import { waitFor } from '../helpers/tiers.js'
import { verifyEvidence, decodeEvidence } from '../../src/evidence/evidence.js'
import { verifyWebhook } from '../../src/notify/delivery/signature.js'

const DEPT = { police: '11320000014000120T', jn: '11320115MB0000012H', nj: '11320100MB00000342' }
const PERSON = { idNumber: '321081196204019768', name: '周洁红' }

const hooks: Array<{ body: string; signature: string }> = []
const readBody = async (req: IncomingMessage) => {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}
const hook = createServer(async (req, res) => {
  hooks.push({ body: await readBody(req), signature: String(req.headers['tongban-signature'] ?? '') })
  res.writeHead(204).end()
})
await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve))
const hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`

const h = await startNode({
  tag: 'disputelife',
  env: {
    TONGBAN_DISPUTE_DEADLINE_SECONDS: '3',
    TONGBAN_NOTIFY_WEBHOOKS: JSON.stringify({ [DEPT.police]: hookUrl }),
    TONGBAN_NOTIFY_BACKOFF_MS: '20',
  },
})
t.teardown(async () => {
  await h.close()
  hook.close()
})

const tokens = {
  jn: await h.token('jn-civil-affairs'),
  nj: await h.token('nj-housing'),
  police: await h.token('js-public-security'),
  audit: await h.token('js-audit'),
}
const auth = (tok: string) => ({ authorization: `Bearer ${tok}` })
const verify = (tok: string, body: object) =>
  h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { ...auth(tok), ...context() }, payload: body })
const certificates = [h.app.identity.cert.toString()]
const ca = h.app.identity.caPem

t.test('a dispute from filing to correction, with the consumers told', async (t) => {
  // Two departments receive the same subject's answer; one of them disputes it.
  const other = await verify(tokens.nj, PERSON)
  t.equal(other.statusCode, 200)
  t.notOk(other.headers['tongban-data-notice'], 'no notice before any correction')
  const answer = await verify(tokens.jn, PERSON)
  t.equal(answer.statusCode, 200)
  const requestId = String(answer.headers['tongban-request-id'])
  const evidence = String(answer.headers['tongban-evidence'])

  const filed = await h.app.inject({
    method: 'POST',
    url: '/v1/disputes',
    headers: auth(tokens.jn),
    payload: { requestId, evidence, answer: answer.body, items: ['match'], reason: 'FACT_MISMATCH', description: '申请人已于上月更正姓名，核验结果应为一致。' },
  })
  t.equal(filed.statusCode, 201, filed.body)
  const d = filed.json()
  t.match(d, { requestId, resource: '101001/00001', consumerDepartment: DEPT.jn, providerDepartment: DEPT.police, status: 'open', reason: 'FACT_MISMATCH', reasonText: { zh: '与事实不符' } }, 'filed: open, about the answer named')
  t.match(d.subject, /^hmac-sha256:[0-9a-f]{64}$/, 'the subject as its keyed hash')
  t.same([d.consumer, d.provider], [{ code: DEPT.jn, name: '南京市江宁区民政局' }, { code: DEPT.police, name: '江苏省公安厅' }], 'both departments by name')
  t.ok(Number.isInteger(d.workingDaysLeft) && d.workingDaysLeft >= 0, `the deadline in working days: ${d.workingDaysLeft}`)
  t.notOk(JSON.stringify(d).includes(PERSON.idNumber) || JSON.stringify(d).includes(PERSON.name), 'no personal data in clear')
  t.ok(filed.headers['tongban-evidence'], 'the filing is itself an audited answer')
  const row = await h.query('SELECT * FROM disputes WHERE id = $1', [d.id])
  t.notOk(JSON.stringify(row).includes(PERSON.idNumber), 'nor in the table')

  // The provider's inbox, its notice, its signed webhook.
  const inbox = await h.app.inject({ method: 'GET', url: '/v1/disputes?as=provider&status=open&sort=deadline', headers: auth(tokens.police) })
  t.equal(inbox.statusCode, 200)
  t.same(inbox.json().disputes.map((x: { id: string }) => x.id), [d.id])
  const notes = (await h.app.inject({ method: 'GET', url: '/v1/notifications', headers: auth(tokens.police) })).json().notifications
  t.ok(notes.some((n: { kind: string; link: string }) => n.kind === 'dispute' && n.link === `/v1/disputes/${d.id}`), 'the provider has a notice')
  await waitFor('the webhook of the dispute', async () => hooks.some((x) => JSON.parse(x.body).kind === 'dispute'))
  const w = hooks.find((x) => JSON.parse(x.body).kind === 'dispute')!
  t.ok(verifyWebhook(w.signature, w.body, h.app.identity.certPem), 'the webhook is signed by the node')
  t.match(JSON.parse(w.body).title.zh, /收到数据疑义/)

  // The short deadline (3 s): the reminder at half, then the escalation, both by BullMQ jobs.
  await waitFor('the escalation', async () => {
    const g = (await h.app.inject({ method: 'GET', url: `/v1/disputes/${d.id}`, headers: auth(tokens.police) })).json()
    return g.escalatedAt !== null
  })
  const late = (await h.app.inject({ method: 'GET', url: `/v1/disputes/${d.id}`, headers: auth(tokens.police) })).json()
  t.ok(late.remindedAt && late.remindedAt <= late.escalatedAt, 'reminded before escalated')
  t.equal(late.overdue, true)
  const kinds = (await h.app.inject({ method: 'GET', url: '/v1/notifications', headers: auth(tokens.police) })).json().notifications.map((n: { kind: string }) => n.kind)
  t.ok(kinds.includes('dispute-reminder') && kinds.includes('dispute-escalation'), 'reminder and escalation notices')

  // The correction.
  const today = new Date().toISOString().slice(0, 10)
  const resolved = await h.app.inject({
    method: 'POST',
    url: `/v1/disputes/${d.id}/resolution`,
    headers: auth(tokens.police),
    payload: { resolution: 'CORRECTED', note: '经核查户籍档案，姓名已更正。', effectiveFrom: today },
  })
  t.equal(resolved.statusCode, 200, resolved.body)
  const r = resolved.json()
  t.match(r, { status: 'resolved', resolution: 'CORRECTED', effectiveFrom: today, resolutionText: { zh: '已更正' }, resolvedInTime: false }, 'corrected, after the deadline')
  t.same(r.consumersTold.map((x: { consumerDepartment: string; answers: number }) => [x.consumerDepartment, x.answers]), [[DEPT.nj, 1]], 'the other consumer of the same subject, from the audit log')
  t.same(r.consumersTold[0].department, { code: DEPT.nj, name: '南京市住房保障和房产局' }, 'told: by name')
  t.equal(r.workingDaysLeft, null, 'resolved: no deadline left')

  const jnNotes = (await h.app.inject({ method: 'GET', url: '/v1/notifications', headers: auth(tokens.jn) })).json().notifications
  t.ok(jnNotes.some((n: { kind: string; body: { zh: string } }) => n.kind === 'dispute-resolution' && n.body.zh.includes('已更正')), 'the disputing department is told')
  const njNotes = (await h.app.inject({ method: 'GET', url: '/v1/notifications', headers: auth(tokens.nj) })).json().notifications
  t.ok(njNotes.some((n: { kind: string }) => n.kind === 'data-correction'), 'the other department is told')
  t.notOk(JSON.stringify(njNotes).includes(PERSON.name), 'without naming the subject')
  const consumerView = (await h.app.inject({ method: 'GET', url: `/v1/disputes/${d.id}`, headers: auth(tokens.jn) })).json()
  t.equal(consumerView.consumersTold, undefined, 'the disputing department does not see who else was told')

  // Later answers of that resource about that subject carry the notice; others do not.
  const later = await verify(tokens.nj, PERSON)
  t.equal(later.statusCode, 200)
  t.match(String(later.headers['tongban-data-notice']), new RegExp(`^corrected; dispute="${d.id}"; effective="${today}"; items="match"$`))
  const unrelated = await verify(tokens.nj, { idNumber: '110101199003074477', name: '张三' })
  t.notOk(unrelated.headers['tongban-data-notice'], 'another subject carries no notice')

  // The history: each step sealed, verifiable with the node certificate like an answer.
  const history = consumerView.history as Array<{ action: string; sealed: string; evidence: string; requestId: string }>
  t.same(history.map((e) => e.action), ['filed', 'reminded', 'escalated', 'resolved', 'consumers-told'])
  for (const e of history) {
    const v = verifyEvidence({ header: e.evidence, body: e.sealed, certificates, caCertificate: ca })
    t.ok(v.ok, `${e.action}: ${v.ok ? 'verifies' : v.reason}`)
    const rec = decodeEvidence(e.evidence).record
    t.equal(rec.requestId, e.requestId)
    t.equal(rec.operation, `dispute.${e.action}`)
    t.equal(rec.subject, d.subject, 'searchable by the subject hash')
    t.equal(JSON.parse(e.sealed).dispute, d.id)
    const tampered = verifyEvidence({ header: e.evidence, body: e.sealed.replace(d.id, '0'.repeat(26)), certificates, caCertificate: ca })
    t.equal(tampered.ok, false, 'an edited step does not verify')
  }
  const told = JSON.parse(history[4].sealed)
  t.same(told.departments, [DEPT.nj])

  // Statistics, for the auditor and the provider.
  const stats = await h.app.inject({ method: 'GET', url: '/v1/disputes/stats', headers: auth(tokens.audit) })
  t.equal(stats.statusCode, 200, stats.body)
  const s = stats.json().resources.find((x: { resource: string }) => x.resource === '101001/00001')
  t.match(s, { filed: 1, open: 0, resolved: 1, corrections: 1, resolvedInTimeShare: 0, byReason: { FACT_MISMATCH: 1 }, byResolution: { CORRECTED: 1 } }, 'the statistics of the resource')
  t.ok(s.answers >= 3, `answers counted (${s.answers})`)
  t.equal(s.correctionsPer10000Answers, Math.round((1 / s.answers) * 10000 * 100) / 100)
  t.ok(s.medianSecondsToResolve >= 3, 'median time to resolve, in seconds')
  const own = await h.app.inject({ method: 'GET', url: '/v1/disputes/stats', headers: auth(tokens.police) })
  t.equal(own.json().resources.length, 1, "the provider sees its own resources'")
  const consumerStats = await h.app.inject({ method: 'GET', url: '/v1/disputes/stats', headers: auth(tokens.jn) })
  t.equal(consumerStats.statusCode, 403)
})
