// The connection-error listener every queue/worker pair shares (src/queues/lifecycle.ts): a
// Redis outage is one warning per role every ten seconds, not one per reconnect attempt.
import t from 'tap'
import { connectionErrorLog } from '../../src/queues/lifecycle.js'

t.test('one warning per role every ten seconds', async (t) => {
  const lines: { obj: any; msg?: string }[] = []
  const log = { info() {}, error() {}, warn: (obj: object, msg?: string) => void lines.push({ obj, msg }) }
  t.capture(Date, 'now', () => now)
  let now = 1_000_000
  const onError = connectionErrorLog(log, 'tiers sync')
  const queue = onError('queue')
  const worker = onError('worker')
  for (let i = 0; i < 50; i++) queue(new Error('ECONNREFUSED'))
  worker(new Error('ECONNREFUSED'))
  t.equal(lines.length, 2, 'the first error of each role')
  t.same(lines.map((l) => [l.obj.role, l.msg]), [['queue', 'tiers sync: Redis connection error'], ['worker', 'tiers sync: Redis connection error']])
  now += 9_999
  queue(new Error('ECONNREFUSED'))
  t.equal(lines.length, 2, 'nothing more within ten seconds')
  now += 1
  queue(new Error('ECONNREFUSED'))
  t.equal(lines.length, 3, 'again after ten seconds')
  t.equal(lines[2].obj.err.message, 'ECONNREFUSED', 'the error goes with the line')
})
