// Personal data never reaches the logs: the node logs at trace level into a buffer while it
// verifies, refuses and fails queries carrying id numbers and names.
import t from 'tap'
import { Writable } from 'node:stream'
import { startNode, context } from '../helpers/harness.js'
import { redactPaths } from '../../src/app.js'
import { person } from '../../dev/providers/population.js'

let logged = ''
const stream = new Writable({
  write(chunk, _enc, done) {
    logged += chunk.toString()
    done()
  },
})
const h = await startNode({ tag: 'logging', logger: { level: 'trace', stream, redact: { paths: redactPaths, censor: '[redacted]' } } })
t.teardown(() => h.close())

t.test('no id number, name or token in any log line', async (t) => {
  const token = await h.token('jn-civil-affairs')
  const p = person(3)
  const bodies = [
    { idNumber: p.idNumber, name: p.name },
    { idNumber: '110105194912310020', name: '张三丰' },
    { idNumber: '990115199003070128', name: '李四光' },
    { idNumber: p.idNumber, name: p.name, extra: '王五' },
  ]
  for (const payload of bodies) {
    await h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${token}`, ...context() }, payload })
  }
  await h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...context() }, payload: `{"idNumber":"${p.idNumber}","name":` })
  t.ok(logged.length > 0, 'the node did log')
  t.match(logged, /"reqId"/, 'log lines carry the request id')
  for (const secret of [p.idNumber, p.name, '110105194912310020', '张三丰', '990115199003070128', '李四光', '王五', token]) {
    t.notOk(logged.includes(secret), `log does not contain ${secret.slice(0, 4)}…`)
  }
})
