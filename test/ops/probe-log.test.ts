// HAProxy probes every replica's /readyz once a second: those 200s must not fill the access
// log at info. A probe that fails (503) and ordinary routes still log at info.
import t from 'tap'
import { Writable } from 'node:stream'
import { startNode } from '../helpers/harness.js'

const lines: Array<{ level: number; msg: string; url?: string; status?: number }> = []
const stream = new Writable({
  write(chunk, _enc, done) {
    for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l))
    done()
  },
})
const h = await startNode({ tag: 'probelog', logger: { level: 'info', stream } })
t.teardown(() => h.close())

const answered = (url: string) => lines.filter((l) => l.msg === 'answered' && l.url === url)

t.test('probe 200s are not logged at info; other routes are', async (t) => {
  for (const url of ['/readyz', '/healthz', '/v1/node']) {
    const res = await h.app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 200, url)
  }
  t.same(answered('/readyz'), [], '/readyz 200: no info line')
  t.same(answered('/healthz'), [], '/healthz 200: no info line')
  t.equal(answered('/v1/node').length, 1, '/v1/node: one info line')
  t.equal(answered('/v1/node')[0].level, 30)
})
