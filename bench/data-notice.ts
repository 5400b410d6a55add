// The cost Tongban-Data-Notice adds to an answer (docs/disputes.md): the lookup each answer
// runs (src/disputes/notices.ts) with 0, 10,000 and 1,000,000 corrections held, against a
// baseline measured in the same run: encoding the answer's Tongban-Evidence, which every
// answer already does. Then a whole answer through the real node (app.inject), without and
// with 10,000 corrections held, median of rounds.
//   node --import tsx bench/data-notice.ts [--n 200000] [--answers 2000]
import { parseArgs } from 'node:util'
import { DataNotices } from '../src/disputes/notices.js'
import { encodeEvidence, decodeEvidence } from '../src/evidence/evidence.js'
import { context, startNode } from '../test/helpers/harness.js'

const { values } = parseArgs({ options: { n: { type: 'string', default: '200000' }, answers: { type: 'string', default: '2000' } } })
const N = Number(values.n)
const ANSWERS = Number(values.answers)

const h = await startNode({ tag: 'benchnotice', env: { TONGBAN_RATE_LIMIT: '0' } })
const token = await h.token('jn-civil-affairs')
const ask = () => h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${token}`, ...context() }, payload: { idNumber: '321081196204019768', name: '周洁红' } })
const first = await ask()
const evidence = decodeEvidence(String(first.headers['tongban-evidence']))
const record = evidence.record

const corrections = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `D${i}`, resource: '101001/00001', subject: `hmac-sha256:${i.toString(16).padStart(64, '0')}`, effectiveFrom: '2026-12-01', items: ['match'] }))
const nsPer = (f: () => unknown) => {
  for (let i = 0; i < 10_000; i++) f()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < N; i++) f()
  return Number(process.hrtime.bigint() - t0) / N
}

const notices = new DataNotices(h.app.db)
const baseline = nsPer(() => encodeEvidence(evidence))
const rows: Array<[string, number]> = [['encodeEvidence (baseline, on every answer)', baseline]]
for (const n of [0, 10_000, 1_000_000]) {
  notices.replace(corrections(n))
  rows.push([`notice lookup, ${n.toLocaleString('en')} corrections, miss`, nsPer(() => notices.note(record))])
}
notices.replace([...corrections(10_000), { id: 'HIT', resource: record.resource!, subject: record.subject!, effectiveFrom: '2026-12-01', items: ['match'] }])
rows.push(['notice lookup, 10,000 corrections, hit', nsPer(() => notices.note(record))])

console.log(`\nper answer (${N.toLocaleString('en')} calls each)`)
for (const [what, ns] of rows) console.log(`  ${what.padEnd(52)} ${ns.toFixed(1).padStart(8)} ns   ${(ns / baseline).toFixed(3)} × baseline`)

// Whole answers through the node: the app's own notes list, empty vs holding 10,000 corrections.
const round = async () => {
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < ANSWERS; i++) await ask()
  return Number(process.hrtime.bigint() - t0) / ANSWERS / 1e6
}
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]
await round() // warm-up
const without: number[] = []
const withNotes: number[] = []
for (let r = 0; r < 3; r++) {
  h.app.dataNotices.replace([])
  without.push(await round())
  h.app.dataNotices.replace(corrections(10_000))
  withNotes.push(await round())
}
console.log(`\nwhole answers (app.inject, ${ANSWERS} per round, median of 3 rounds, alternating)`)
console.log(`  no corrections held        ${median(without).toFixed(3)} ms/answer`)
console.log(`  10,000 corrections held    ${median(withNotes).toFixed(3)} ms/answer   ${(median(withNotes) / median(without)).toFixed(3)} × the former`)
await h.close()
