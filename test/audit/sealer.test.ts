// The sealer and the record builder: no string can make a group-commit batch undurable
// (issue: a NUL in one audited field made PostgreSQL refuse the whole batch, and every
// answer sealed with it became a 503).
// - Property: arbitrary strings (every code unit, control characters, lone surrogates) in
//   every field of a record, through buildAuditRecord and a real Sealer into PostgreSQL:
//   every batch becomes durable and every record read back hashes to its leaf.
// - Isolation: records that reach the sealer unescaped (not built by buildAuditRecord) fail
//   alone; the rest of their batch is sealed, the chain verifies.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import { startNode } from '../helpers/harness.js'
import { createSigner } from '../../src/pki/suites.js'
import { Sealer, AuditUnavailableError } from '../../src/audit/sealer.js'
import { buildAuditRecord, type AuditContext } from '../../src/audit/plugin.js'
import { hasUnrepresentable } from '../../src/audit/representable.js'
import { checkpointHash, type AuditRecord, type Evidence } from '../../src/evidence/evidence.js'
import { leafHash, rootFromPath } from '../../src/evidence/merkle.js'
import { jcs } from '../../src/evidence/jcs.js'
import { verifyDatabase } from '../../src/auditor/integrity.js'
import { syntheticRecord } from '../../dev/synthetic-audit.js'

t.setTimeout(300_000)
const SEED = Number(process.env.POISON_SEED ?? 20261202)

const h = await startNode({ tag: 'poison' })
t.teardown(() => h.close())
const { identity } = h.app
const node = h.config.node.id
let chains = 0

function sealer(batchMaxSize: number, batchWindowMs = 5) {
  return new Sealer({
    db: h.app.db, node, chain: `poison-${++chains}`, kid: identity.kid,
    signer: createSigner('RS256', identity.keyPem), batchMaxSize, batchWindowMs,
  })
}

/** The record as stored: same JCS text as the evidence's record, leaf and place as sealed. */
async function checkStored(t: Test, e: Evidence) {
  const rows = await h.query('SELECT chain, seq, idx, leaf, record FROM audit_records WHERE chain = $1 AND seq = $2 AND idx = $3', [e.checkpoint.chain, e.checkpoint.seq, e.index])
  if (rows.length !== 1) { t.fail(`no row for ${e.checkpoint.chain}#${e.checkpoint.seq}/${e.index}`); return false }
  const leaf = leafHash(jcs(e.record))
  const ok = jcs(rows[0].record) === jcs(e.record) && rows[0].leaf === leaf.toString('hex') &&
    rootFromPath(leaf, e.index, e.size, e.path.map((p) => Buffer.from(p, 'hex')))?.toString('hex') === e.checkpoint.root
  if (!ok) t.fail(`record ${e.record.requestId} does not read back to its leaf`, { stored: rows[0].record, sealed: e.record })
  return ok
}

// Strings of arbitrary UTF-16 code units (lone surrogates included), full Unicode, and the
// explicit troublemakers.
const CONTROL = [...Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)), '\u007f', '\ud800', '\udbff', '\udc00', '\udfff', '\\', '\\u0000', '"']
const anyString = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 24 }),
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.array(fc.oneof(fc.constantFrom(...CONTROL), fc.string({ maxLength: 3 })), { maxLength: 8 }).map((a) => a.join('')),
)
const context: fc.Arbitrary<AuditContext> = fc.record({
  resource: anyString, operation: anyString, purpose: anyString, caseId: anyString, operator: anyString,
  // reason too: codes relayed from other nodes are strings of their own (cast on purpose).
  subject: anyString, reason: anyString as fc.Arbitrary<any>, grant: anyString,
  consumer: fc.record({ department: anyString, system: anyString, region: anyString }),
}, { requiredKeys: [] })
const input = fc.record({
  requestId: anyString,
  audit: context,
  status: fc.constantFrom(200, 400, 403, 404, 503),
  principal: fc.option(fc.record({ department: anyString, system: anyString, region: anyString }), { nil: null }),
})

t.test('property: arbitrary strings in every field; every batch becomes durable and reads back to its leaves', async (t) => {
  const s = sealer(16, 2)
  let sealed = 0
  await fc.assert(
    fc.asyncProperty(fc.array(input, { minLength: 1, maxLength: 40 }), async (inputs) => {
      const records = inputs.map((i) => buildAuditRecord({
        node,
        requestId: i.requestId,
        principal: i.principal && { ...i.principal, tier: 'county', roles: ['consumer'] },
        audit: i.audit,
        status: i.status,
        responseBody: '{}',
      }))
      if (hasUnrepresentable(records)) return false
      const evidence = await Promise.all(records.map((r) => s.seal(r)))
      for (const e of evidence) if (!(await checkStored(t, e))) return false
      sealed += evidence.length
      return true
    }),
    { seed: SEED, numRuns: 60 },
  )
  await s.close()
  t.ok(sealed > 0)
  const report = await verifyDatabase(h.app.db, { chain: `poison-${chains}`, caPem: identity.caPem, certificates: [identity.certPem] })
  t.equal(report.ok, true, JSON.stringify(report.firstFailure))
  t.equal(report.records, sealed, 'every record sealed is in the verified chain')
})

t.test('unescaped bad records reaching the sealer fail alone; the rest of each batch is sealed', async (t) => {
  const s = sealer(32, 20)
  const good = Array.from({ length: 120 }, (_, i) => syntheticRecord(node, { time: new Date(), caseId: `GOOD-${i}` }))
  const bad: AuditRecord[] = [
    { ...syntheticRecord(node, { time: new Date() }), operation: 'ver\u0000ify' },
    { ...syntheticRecord(node, { time: new Date() }), caseId: 'C-\ud800' },
    { ...syntheticRecord(node, { time: new Date() }), resource: '\udfff' },
    { ...syntheticRecord(node, { time: new Date() }), weight: Number.NaN },
  ]
  const all = [...good]
  bad.forEach((b, k) => all.splice(7 + k * 31, 0, b))
  const outcomes = await Promise.allSettled(all.map((r) => s.seal(r)))
  await s.close()
  for (let i = 0; i < all.length; i++) {
    const o = outcomes[i]
    if (bad.includes(all[i])) {
      t.equal(o.status, 'rejected', `bad record ${i} fails`)
      if (o.status === 'rejected') t.type(o.reason, AuditUnavailableError)
    } else if (o.status !== 'fulfilled') {
      t.fail(`good record ${i} was not sealed: ${(o.reason as Error).message}`)
    } else await checkStored(t, o.value)
  }
  const fulfilled = outcomes.filter((o) => o.status === 'fulfilled') as PromiseFulfilledResult<Evidence>[]
  t.equal(fulfilled.length, good.length, 'every good record is durable')
  // One signed checkpoint per seq, chained: no seq was released twice.
  const cps = new Map<number, string>()
  for (const o of fulfilled) {
    const prev = cps.get(o.value.checkpoint.seq)
    t.ok(prev === undefined || prev === checkpointHash(o.value.checkpoint))
    cps.set(o.value.checkpoint.seq, checkpointHash(o.value.checkpoint))
  }
  const report = await verifyDatabase(h.app.db, { chain: `poison-${chains}`, caPem: identity.caPem, certificates: [identity.certPem] })
  t.equal(report.ok, true, JSON.stringify(report.firstFailure))
  t.equal(report.records, good.length)
})
