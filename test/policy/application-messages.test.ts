// The pieces of an application message every part of the workflow shares
// (src/policy/application-messages/message.ts, routing.ts): ids the receiving schema takes,
// the consumer's claims read back from a stored chain. The workflow across nodes is
// test/tiers/applications.test.ts.
import t from 'tap'
import { Ajv } from 'ajv'
import { firstLinkClaim, messageSchema, newMessage, operationOf, threadOf, towardOwner, undeliverableOf, type Row } from '../../src/policy/application-messages/message.js'
import { consumerRegionOf } from '../../src/policy/application-messages/routing.js'

const APP = '01J9ZK3R8Q6YV2W4X5T7N8M9PA'
const idPattern = new RegExp(messageSchema.properties.id.pattern)
const link = (claims: object) => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.c2ln`

t.test('message ids name the application and the kind, as the receiving hop requires', async (t) => {
  const m = newMessage('320115', APP, 'submit', '320100/00001', '320115', { request: { items: ['a'] } })
  t.equal(m.id, `${APP}.submit`)
  t.match(m, { v: 1, kind: 'submit', application: APP, from: '320115', origin: '320115', request: { items: ['a'] } })
  t.ok(idPattern.test(m.id))
  t.ok(Number.isFinite(Date.parse(m.at)), 'stamped')
  const notice = newMessage('320100', APP, 'undeliverable', '320100/00001', '320115', { to: '320115' }, Date.now().toString(36))
  t.ok(notice.id.startsWith(`${APP}.undeliverable.`) && idPattern.test(notice.id), 'a repeated notice has its own suffix')
  t.notOk(idPattern.test(`${APP}.forward`), 'an unknown kind is refused by the schema')
})

t.test('dispute messages name their thread as `dispute`, take their own kinds and operations', async (t) => {
  const m = newMessage('320100', APP, 'dispute', '101001/00001', '320100', { filing: { requestId: APP, items: ['match'], reason: 'OTHER', description: 'x' } })
  t.equal(m.id, `${APP}.dispute`)
  t.equal(m.dispute, APP)
  t.equal(m.application, undefined, 'not an application')
  t.equal(threadOf(m), APP)
  t.ok(idPattern.test(m.id) && idPattern.test(`${APP}.dispute-resolved`) && idPattern.test(`${APP}.dispute-undeliverable.k3x`))
  t.ok(towardOwner('dispute') && towardOwner('submit') && !towardOwner('dispute-accepted'))
  t.equal(undeliverableOf('dispute'), 'dispute-undeliverable')
  t.equal(undeliverableOf('submit'), 'undeliverable')
  t.equal(undeliverableOf('dispute-resolved'), null, 'answers travel back only')
  t.same(['submit', 'dispute', 'dispute-accepted', 'dispute-resolved'].map((k) => operationOf(k as never)), ['application.submit', 'dispute.message.filed', 'dispute.message.accepted', 'dispute.message.resolved'])

  const valid = new Ajv({ strict: false }).compile(messageSchema)
  t.ok(valid(JSON.parse(JSON.stringify(m))), 'the receiving schema takes it')
  t.ok(valid(JSON.parse(JSON.stringify(newMessage('320115', APP, 'submit', '320100/00001', '320115', {})))), 'and still takes an application message')
  t.notOk(valid({ ...m, application: APP }), 'two threads: refused')
  t.notOk(valid({ ...m, dispute: undefined, application: APP }), "a dispute kind with an application's thread: refused")
  t.notOk(valid({ ...m, dispute: undefined }), 'no thread: refused')
})

t.test("the consumer's claims come from link 0 of a stored chain", async (t) => {
  const chain = `${link({ region: '320115', dept: '320115-HOUSING' })}, ${link({ region: '320100', dept: 'node' })}`
  t.equal(firstLinkClaim(chain, 'region'), '320115')
  t.equal(firstLinkClaim(chain, 'dept'), '320115-HOUSING')
  t.equal(firstLinkClaim(null, 'dept'), undefined, 'no chain')
  t.equal(firstLinkClaim('not-a-jws', 'dept'), undefined, 'unreadable')
  t.equal(firstLinkClaim(link({ region: 320115 }), 'region'), undefined, 'not a string')

  const m = newMessage('320115', APP, 'submit', '320100/00001', '320115', {})
  const row = (r: Partial<Row>) => ({ claims: null, chain: null, ...r }) as Pick<Row, 'claims' | 'chain'>
  t.equal(consumerRegionOf(row({ claims: { sub: 's', dept: 'd', region: '320116', purpose: null, case: null }, chain }), m), '320116', 'written here: its own claims')
  t.equal(consumerRegionOf(row({ chain }), m), '320115', 'forwarded: link 0')
  t.equal(consumerRegionOf(row({}), m), '320115', 'else the origin node')
})
