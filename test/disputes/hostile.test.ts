// Hostile disputes (docs/disputes.md): another department disputing an answer it did not
// receive, forged and mismatched evidence, an unknown request id, wrong types, huge
// descriptions and bodies, malformed JSON, personal data in the description, duplicates,
// refusals disputed, and resolutions by the wrong party or twice. Each is a problem+json
// with its code, never a 500, and nothing is stored.
import t from 'tap'
import type { Test } from 'tap'
import { context, startNode } from '../helpers/harness.js'
import { plausibleEffectiveDate } from '../../src/disputes/routes.js'

const PERSON = { idNumber: '321081196204019768', name: '周洁红' }
const h = await startNode({ tag: 'disputehostile' })
t.teardown(() => h.close())

const tokens = {
  jn: await h.token('jn-civil-affairs'),
  jnMobile: await h.token('jn-civil-affairs-mobile'),
  nj: await h.token('nj-housing'),
  police: await h.token('js-public-security'),
  land: await h.token('js-natural-resources'),
}
const auth = (tok: string) => ({ authorization: `Bearer ${tok}` })
const verify = (tok: string, body: object, extra: Record<string, string> = {}) =>
  h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { ...auth(tok), ...context(extra) }, payload: body })
const file = (tok: string, payload: unknown, headers: Record<string, string> = {}) =>
  h.app.inject({ method: 'POST', url: '/v1/disputes', headers: { ...auth(tok), ...headers }, payload: payload as object })

const mine = await verify(tokens.jn, PERSON)
const second = await verify(tokens.jn, { ...PERSON, name: '周洁' })
const base = {
  requestId: String(mine.headers['tongban-request-id']),
  evidence: String(mine.headers['tongban-evidence']),
  answer: mine.body,
  items: ['match'],
  reason: 'OUTDATED',
  description: '数据未及时更新',
}
const disputes = async () => (await h.query('SELECT count(*)::int AS n FROM disputes'))[0].n

const problem = (t: Test, res: { statusCode: number; headers: Record<string, unknown>; json(): any }, status: number, code: string) => {
  t.equal(res.statusCode, status, `${code}: status ${status}`)
  t.match(String(res.headers['content-type']), /application\/problem\+json/)
  t.equal(res.json().code, code)
}

t.test('another department cannot dispute an answer it did not receive', async (t) => {
  problem(t, await file(tokens.nj, base), 403, 'DISPUTE_NOT_YOUR_ANSWER')
  // A provider-only system has no consumer role at all.
  problem(t, await file(tokens.police, base), 403, 'AUTH_ROLE_REQUIRED')
  t.equal(await disputes(), 0)
})

t.test('forged and mismatched evidence are refused', async (t) => {
  const raw = JSON.parse(Buffer.from(base.evidence, 'base64url').toString('utf8'))
  const reencode = (o: unknown) => Buffer.from(JSON.stringify(o), 'utf8').toString('base64url')
  // The answer edited after the fact: the body digest does not match.
  const edited = await file(tokens.jn, { ...base, answer: `${mine.body} ` })
  problem(t, edited, 400, 'DISPUTE_EVIDENCE_INVALID')
  t.match(edited.json().detail, /body-digest-mismatch/)
  // A record edited inside the evidence: the inclusion proof fails.
  const forged = await file(tokens.jn, { ...base, evidence: reencode({ ...raw, record: { ...raw.record, caseId: 'FORGED-1' } }) })
  problem(t, forged, 400, 'DISPUTE_EVIDENCE_INVALID')
  t.match(forged.json().detail, /bad-inclusion-proof/)
  // A signature from elsewhere.
  const sig = await file(tokens.jn, { ...base, evidence: reencode({ ...raw, sig: raw.sig.slice(0, -4) + 'AAAA' }) })
  problem(t, sig, 400, 'DISPUTE_EVIDENCE_INVALID')
  problem(t, await file(tokens.jn, { ...base, evidence: 'not*base64' }), 400, 'DISPUTE_EVIDENCE_INVALID')
  // Valid evidence of another answer, offered for this request id.
  const other = await file(tokens.jn, { ...base, evidence: String(second.headers['tongban-evidence']), answer: second.body })
  problem(t, other, 422, 'DISPUTE_EVIDENCE_MISMATCH')
  t.equal(await disputes(), 0)
})

t.test('an unknown request id', async (t) => {
  problem(t, await file(tokens.jn, { ...base, requestId: '01J0000000000000000000000A' }), 404, 'DISPUTE_ANSWER_NOT_FOUND')
})

t.test('wrong types, unknown codes and items, huge and malformed bodies', async (t) => {
  problem(t, await file(tokens.jn, { ...base, items: 'match' }), 400, 'INPUT_INVALID')
  problem(t, await file(tokens.jn, { ...base, items: [] }), 400, 'INPUT_INVALID')
  problem(t, await file(tokens.jn, { ...base, reason: 'WRONG' }), 400, 'INPUT_INVALID')
  problem(t, await file(tokens.jn, { ...base, requestId: 42 }), 400, 'INPUT_INVALID')
  problem(t, await file(tokens.jn, { ...base, extra: true }), 400, 'INPUT_INVALID')
  problem(t, await file(tokens.jn, { ...base, description: '' }), 400, 'INPUT_INVALID')
  problem(t, await file(tokens.jn, { ...base, description: '错'.repeat(2001) }), 400, 'INPUT_INVALID')
  problem(t, await file(tokens.jn, { ...base, description: 'x'.repeat(70_000) }), 413, 'INPUT_TOO_LARGE')
  problem(t, await file(tokens.jn, { ...base, items: ['name'] }), 400, 'DISPUTE_UNKNOWN_ITEM')
  problem(t, await h.app.inject({ method: 'POST', url: '/v1/disputes', headers: { ...auth(tokens.jn), 'content-type': 'application/json' }, payload: '{"requestId":' }), 400, 'INPUT_MALFORMED_JSON')
  problem(t, await file(tokens.jn, { ...base, description: '申请人 321081196204019768 的姓名有误' }), 400, 'DISPUTE_DESCRIPTION_PERSONAL_DATA')
  problem(t, await file(tokens.jn, { ...base, description: 'nul\u0000here' }), 400, 'INPUT_UNREPRESENTABLE')
  problem(t, await h.app.inject({ method: 'POST', url: '/v1/disputes', payload: base }), 401, 'AUTH_TOKEN_MISSING')
  t.equal(await disputes(), 0)
})

t.test('a refusal is not data', async (t) => {
  const refused = await verify(tokens.jn, { idNumber: '321081196204019760', name: '周洁红' })
  t.equal(refused.statusCode, 400)
  t.ok(refused.headers['tongban-evidence'], 'the refusal has evidence')
  problem(t, await file(tokens.jn, { ...base, requestId: String(refused.headers['tongban-request-id']), evidence: String(refused.headers['tongban-evidence']), answer: refused.body }), 422, 'DISPUTE_NOT_DATA')
})

t.test('duplicates, and resolutions by the wrong party or twice', async (t) => {
  const first = await file(tokens.jn, base)
  t.equal(first.statusCode, 201, first.body)
  const id = first.json().id
  // The same answer again, also from another system of the same department.
  problem(t, await file(tokens.jn, base), 409, 'DISPUTE_DUPLICATE')
  problem(t, await file(tokens.jnMobile, base), 409, 'DISPUTE_DUPLICATE')
  const twice = await Promise.all([file(tokens.jn, base), file(tokens.jnMobile, base)])
  t.same(twice.map((r) => r.statusCode), [409, 409])
  t.equal(await disputes(), 1)

  const resolve = (tok: string, payload: object) => h.app.inject({ method: 'POST', url: `/v1/disputes/${id}/resolution`, headers: auth(tok), payload })
  problem(t, await resolve(tokens.jn, { resolution: 'CONFIRMED', note: '无误' }), 403, 'AUTH_ROLE_REQUIRED')
  problem(t, await resolve(tokens.land, { resolution: 'CONFIRMED', note: '无误' }), 404, 'DISPUTE_NOT_FOUND')
  problem(t, await h.app.inject({ method: 'GET', url: `/v1/disputes/${id}`, headers: auth(tokens.nj) }), 404, 'DISPUTE_NOT_FOUND')
  problem(t, await resolve(tokens.police, { resolution: 'CORRECTED', note: '已更正' }), 400, 'DISPUTE_EFFECTIVE_DATE_REQUIRED')
  problem(t, await resolve(tokens.police, { resolution: 'REJECTED', note: '不属于本部门', effectiveFrom: '2026-12-01' }), 400, 'DISPUTE_EFFECTIVE_DATE_REQUIRED')
  problem(t, await resolve(tokens.police, { resolution: 'CORRECTED', note: '已更正', effectiveFrom: 'yesterday' }), 400, 'INPUT_INVALID')
  problem(t, await resolve(tokens.police, { resolution: 'CORRECTED', note: '已更正', effectiveFrom: '9999-12-31' }), 400, 'DISPUTE_EFFECTIVE_DATE_OUT_OF_RANGE')
  problem(t, await resolve(tokens.police, { resolution: 'CORRECTED', note: '已更正', effectiveFrom: '1899-12-31' }), 400, 'DISPUTE_EFFECTIVE_DATE_OUT_OF_RANGE')
  problem(t, await resolve(tokens.police, { resolution: 'MAYBE', note: 'x' }), 400, 'INPUT_INVALID')
  problem(t, await resolve(tokens.police, { resolution: 'REJECTED' }), 400, 'INPUT_INVALID')
  const both = await Promise.all([
    resolve(tokens.police, { resolution: 'REJECTED', note: '依据不足，不予受理' }),
    resolve(tokens.police, { resolution: 'CONFIRMED', note: '经核实无误' }),
  ])
  t.same(both.map((r) => r.statusCode).sort(), [200, 409], 'one resolution wins, the other is told it came too late')
  t.equal(both.find((r) => r.statusCode === 409)!.json().code, 'DISPUTE_ALREADY_RESOLVED')
  const d = (await h.app.inject({ method: 'GET', url: `/v1/disputes/${id}`, headers: auth(tokens.jn) })).json()
  t.same(d.history.map((e: { action: string }) => e.action), ['filed', 'resolved'], 'one resolution in the history')
  t.equal((await h.query("SELECT count(*)::int AS n FROM dispute_recipients"))[0].n, 0, 'no correction, nobody else told')
  problem(t, await h.app.inject({ method: 'GET', url: '/v1/disputes/not-an-id', headers: auth(tokens.jn) }), 400, 'INPUT_INVALID')
  problem(t, await h.app.inject({ method: 'GET', url: '/v1/disputes?limit=0', headers: auth(tokens.jn) }), 400, 'INPUT_INVALID')
  problem(t, await h.app.inject({ method: 'GET', url: '/v1/disputes?as=provider', headers: auth(tokens.jn) }), 403, 'AUTH_ROLE_REQUIRED')
  problem(t, await h.app.inject({ method: 'GET', url: '/v1/disputes/stats?from=2026-12-02T00:00:00Z&to=2026-01-01T00:00:00Z', headers: auth(tokens.police) }), 400, 'DISPUTE_INVALID_PERIOD')
})

t.test('a correction is effective from a plausible date: the past since 1900, or up to a year ahead', async (t) => {
  const now = Date.parse('2026-12-02T20:00:00Z') // 2026-12-03 04:00 in China
  t.ok(plausibleEffectiveDate('1900-01-01', now))
  t.ok(plausibleEffectiveDate('2026-12-03', now))
  t.ok(plausibleEffectiveDate('2027-12-04', now), 'a year and a day ahead, counted from the China date')
  t.notOk(plausibleEffectiveDate('2027-12-05', now))
  t.notOk(plausibleEffectiveDate('1899-12-31', now))
})
