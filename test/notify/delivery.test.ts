// Notices sent on (docs/notifications.md, "Webhooks and e-mail"): one real node, real
// receivers on loopback. A webhook receiver checks the Tongban-Signature against the node
// certificate; one that fails once is retried and succeeds; one that always fails ends as
// `failed` in the delivery log, as does one that refuses (4xx) at once; a real SMTP server
// receives the mail with its Chinese subject. Departments read only their own deliveries,
// operators all.
import t from 'tap'
import { createServer, type IncomingMessage } from 'node:http'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SMTPServer } from 'smtp-server'
import { ROOT, startNode } from '../helpers/harness.js'
import { waitFor } from '../helpers/tiers.js'
import { verifyWebhook } from '../../src/notify/delivery/signature.js'

const DEPT = { nr: '11320000MB0000091R', nj: '11320100MB00000342', sz: '11320500MB0000146K', tax: '11320000MB0000105J' }

// The webhook receiver: /ok takes everything, /flaky fails each delivery's first attempt,
// /down always fails, /gone refuses.
interface Received { path: string; body: string; signature: string; deliveryId: string }
const received: Received[] = []
const readBody = async (req: IncomingMessage) => {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}
const hook = createServer(async (req, res) => {
  const body = await readBody(req)
  const r = { path: req.url ?? '', body, signature: String(req.headers['tongban-signature'] ?? ''), deliveryId: String(req.headers['tongban-delivery-id'] ?? '') }
  received.push(r)
  const seen = received.filter((x) => x.deliveryId === r.deliveryId).length
  const status = r.path === '/ok' ? 204 : r.path === '/flaky' ? (seen === 1 ? 503 : 200) : r.path === '/gone' ? 410 : 500
  res.writeHead(status).end()
})
await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve))
const hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}`

// A real SMTP server (no TLS, no auth: loopback only).
const mails: Array<{ from: string; to: string[]; raw: string }> = []
const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  onData(stream, session, done) {
    const chunks: Buffer[] = []
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => {
      mails.push({ from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8') })
      done()
    })
  },
})
await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve))
const smtpPort = (smtp.server.address() as { port: number }).port

// The registered systems, the catalogue admin also an operator of this node.
const systems = JSON.parse(readFileSync(join(ROOT, 'config/systems.json'), 'utf8'))
for (const s of systems.systems) if (s.clientId === 'js-catalog-admin') s.roles = [...s.roles, 'operator']
const systemsDir = mkdtempSync(join(tmpdir(), 'tongban-notify-'))
const systemsFile = join(systemsDir, 'systems.json')
writeFileSync(systemsFile, JSON.stringify(systems))

const h = await startNode({
  tag: 'notifydel',
  env: {
    TONGBAN_NOTIFY_WEBHOOKS: JSON.stringify({ [DEPT.nr]: `${hookUrl}/ok`, [DEPT.nj]: `${hookUrl}/flaky`, [DEPT.sz]: `${hookUrl}/down`, [DEPT.tax]: `${hookUrl}/gone` }),
    TONGBAN_NOTIFY_EMAILS: JSON.stringify({ [DEPT.nr]: 'shenpi@nr.js.gov.cn' }),
    TONGBAN_SMTP_HOST: '127.0.0.1',
    TONGBAN_SMTP_PORT: String(smtpPort),
    TONGBAN_SMTP_FROM: 'tongban@js.gov.cn',
    TONGBAN_NOTIFY_ATTEMPTS: '3',
    TONGBAN_NOTIFY_BACKOFF_MS: '20',
    TONGBAN_SYSTEMS_FILE: systemsFile,
  },
})
t.teardown(async () => {
  await h.close()
  hook.close()
  await new Promise<void>((resolve) => smtp.close(() => resolve()))
  rmSync(systemsDir, { recursive: true, force: true })
})

const nodeCert = readFileSync(h.config.pki.certFile, 'utf8')
const tokens = { jn: await h.token('jn-civil-affairs'), nr: await h.token('js-natural-resources'), nj: await h.token('nj-housing'), sz: await h.token('sz-civil-affairs'), operator: await h.token('js-catalog-admin') }
const api = (token: string, method: 'GET' | 'POST', url: string, payload?: object) =>
  h.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload ? { payload } : {}) })
type Delivery = { id: string; notificationId: string; channel: string; status: string; attempts: number; lastError: string | null; deliveredAt: string | null }
const deliveries = async (token: string, q = ''): Promise<Delivery[]> => {
  const res = await api(token, 'GET', `/v1/notifications/deliveries${q}`)
  if (res.statusCode !== 200) throw new Error(res.body)
  return res.json().deliveries
}
const facts = (id: string, consumerDepartment: string) => ({ id, resource: '103002/00002', consumerDepartment, providerDepartment: DEPT.nr, status: 'approved', dueAt: null, decisionReason: '符合条件' })

t.test('a submission reaches the provider by signed webhook and by e-mail', async (t) => {
  const applied = await api(tokens.jn, 'POST', '/v1/applications', {
    resource: '103002/00002', items: ['properties'], purposes: ['SA-01'], basis: '《社会救助暂行办法》第十一条：核对申请人家庭财产状况',
    validTo: new Date(Date.now() + 90 * 86_400_000).toISOString(), dailyQuota: 10,
  })
  t.equal(applied.statusCode, 201, applied.body)
  const id = applied.json().id

  await waitFor('both deliveries', async () => (await deliveries(tokens.nr, '?status=delivered')).length === 2)
  const log = await deliveries(tokens.nr)
  t.same(log.map((d) => d.channel).sort(), ['email', 'webhook'])
  for (const d of log) t.match(d, { status: 'delivered', attempts: 1, lastError: null }, `${d.channel} delivered at once`)

  const got = received.filter((r) => r.path === '/ok')
  t.equal(got.length, 1, 'one POST')
  const sig = verifyWebhook(got[0].signature, got[0].body, nodeCert)
  t.ok(sig, 'the signature verifies against the node certificate')
  t.equal(sig!.id, got[0].deliveryId, 'the signed id is the delivery id')
  t.equal(sig!.id, log.find((d) => d.channel === 'webhook')!.id)
  t.notOk(verifyWebhook(got[0].signature, got[0].body.replace('application', 'decision'), nodeCert), 'a changed body does not verify')
  t.notOk(verifyWebhook(got[0].signature, got[0].body, nodeCert, { now: sig!.t + 600_000 }), 'a replay after the tolerance is refused')
  const notice = JSON.parse(got[0].body)
  t.match(notice, { kind: 'application', department: DEPT.nr, node: h.config.node.id, link: `/v1/applications/${id}` })
  const [inbox] = (await api(tokens.nr, 'GET', '/v1/notifications')).json().notifications
  t.equal(notice.id, inbox.id, 'the same notice as in the inbox')
  t.same(notice.title, inbox.title)

  await waitFor('the mail', async () => mails.length === 1)
  t.same(mails[0].to, ['shenpi@nr.js.gov.cn'])
  const subject = /^Subject: (.+(?:\r\n[ \t].+)*)/m.exec(mails[0].raw)![1]
  const decoded = subject.replace(/\r\n[ \t]/g, '').replace(/=\?utf-8\?([BQ])\?([^?]*)\?=\s*/gi, (_, enc: string, s: string) =>
    enc.toUpperCase() === 'B' ? Buffer.from(s, 'base64').toString('utf8') : Buffer.from(s.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, (_m, x: string) => String.fromCharCode(parseInt(x, 16))), 'latin1').toString('utf8'))
  t.ok(decoded.startsWith(`${inbox.title.zh} | `), `the subject is Chinese first: ${decoded}`)

  t.same(await deliveries(tokens.jn), [], 'the applicant sees none of the provider’s deliveries')
})

t.test('a receiver that fails once is retried and succeeds', async (t) => {
  await h.app.notify.decided(facts('01M8VDZ04T50RKQP02VCPC5701', DEPT.nj))
  await waitFor('delivered after a retry', async () => (await deliveries(tokens.nj, '?status=delivered')).length === 1)
  const [d] = await deliveries(tokens.nj)
  t.match(d, { channel: 'webhook', status: 'delivered', attempts: 2, lastError: null })
  const tries = received.filter((r) => r.deliveryId === d.id)
  t.equal(tries.length, 2, 'two POSTs of the same delivery')
  t.ok(tries.every((r) => verifyWebhook(r.signature, r.body, nodeCert)), 'each signed')
})

t.test('a receiver that always fails ends as failed in the log', async (t) => {
  await h.app.notify.decided(facts('01M8VDZ04T50RKQP02VCPC5702', DEPT.sz))
  await waitFor('failed', async () => (await deliveries(tokens.sz, '?status=failed')).length === 1)
  const [d] = await deliveries(tokens.sz)
  t.match(d, { channel: 'webhook', status: 'failed', attempts: 3, lastError: 'HTTP 500', deliveredAt: null }, 'all attempts made, the reason kept')
  t.equal(received.filter((r) => r.deliveryId === d.id).length, 3)
})

t.test('a refusal is not retried', async (t) => {
  await h.app.notify.decided(facts('01M8VDZ04T50RKQP02VCPC5703', DEPT.tax))
  const read = () => h.query("SELECT status, attempts, last_error FROM notification_deliveries WHERE department = $1", [DEPT.tax])
  await waitFor('failed', async () => (await read())[0]?.status === 'failed')
  t.same(await read(), [{ status: 'failed', attempts: 1, last_error: 'HTTP 410' }])
})

t.test('operators see every department\'s deliveries', async (t) => {
  const all = await deliveries(tokens.operator)
  t.same([...new Set(all.map((d: any) => d.department))].sort(), [DEPT.nr, DEPT.nj, DEPT.tax, DEPT.sz].sort())
  t.equal(all.length, 5)
  t.same((await deliveries(tokens.operator, '?status=failed&channel=webhook')).length, 2, 'filtered')
  const page = await deliveries(tokens.operator, `?limit=2&before=${all[1].id}`)
  t.same(page.map((d) => d.id), [all[2].id, all[3].id], 'paging with before')
})

t.test('bad input to the log is a problem', async (t) => {
  const res = await api(tokens.nr, 'GET', '/v1/notifications/deliveries?status=lost')
  t.equal(res.statusCode, 400)
  t.equal(res.json().code, 'INPUT_INVALID')
})
