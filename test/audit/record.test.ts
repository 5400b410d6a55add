// The audit record builder: strings jsonb cannot hold exactly (NUL, lone surrogates) are
// escaped reversibly and named; everything else is left as it is.
import t from 'tap'
import { buildAuditRecord } from '../../src/audit/record.js'
import { escapeUnrepresentable, hasUnrepresentable, isRepresentable } from '../../src/audit/representable.js'

const node = '320000'

t.test('the escaped form: reversible, the escaped fields named, clean records unchanged', async (t) => {
  const r = buildAuditRecord({
    node, requestId: 'rid-\u0000', principal: null, status: 404, responseBody: '',
    audit: { operation: 'ver\u0000ify\\', caseId: 'C-\ud800', consumer: { department: 'd', system: 's\udfff', region: '3' }, resource: '101001/00001 😀' },
  })
  t.equal(r.operation, 'ver\\u0000ify\\\\')
  t.equal(r.caseId, 'C-\\ud800')
  t.equal(r.requestId, 'rid-\\u0000')
  t.equal(r.resource, '101001/00001 😀', 'a surrogate pair is not escaped')
  t.same(r.escaped, ['caseId', 'consumer.system', 'operation', 'requestId'])
  const clean = buildAuditRecord({ node, requestId: 'rid-1', principal: null, status: 200, responseBody: '', audit: { caseId: 'a\\b' } })
  t.equal(clean.caseId, 'a\\b', 'a backslash alone is representable: left as it is')
  t.notOk('escaped' in clean)
})

t.test('representable: NUL and unpaired surrogates only', async (t) => {
  for (const s of ['', 'abc', '张三', '😀', '\u0001\u001f\u007f', '\ufffe\uffff', '\\u0000']) t.ok(isRepresentable(s), JSON.stringify(s))
  for (const s of ['\u0000', 'a\ud800', '\udc00b', '\udfff\ud800', '😀'.slice(0, 1), '😀'.slice(1)]) t.notOk(isRepresentable(s), JSON.stringify(s))
  t.equal(escapeUnrepresentable('\u0000\\u0000'), '\\u0000\\\\u0000', 'a literal backslash-u is told apart from an escaped NUL')
  t.ok(hasUnrepresentable({ a: [{ ['k\u0000']: 1 }] }), 'keys are looked at too')
  t.notOk(hasUnrepresentable({ a: [1, null, 'x'] }))
})
