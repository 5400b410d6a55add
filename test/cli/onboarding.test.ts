// The onboarding commands end to end against a running gateway: the department makes its
// key and request (`pki request`), the operator registers, lists, renews and revokes
// (`systems …`), and the key the department kept gets tokens.
import t from 'tap'
import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startNode, uniqueName } from '../helpers/harness.js'
import { run as pki } from '../../src/cli/pki.js'
import { run as systems } from '../../src/cli/systems.js'
import { CLIENT_ASSERTION_TYPE } from '../../packages/client/src/index.js'

const h = await startNode({ tag: 'clionb' })
await h.app.listen({ port: 0, host: '127.0.0.1' })
const url = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`
t.teardown(() => h.close())
Object.assign(process.env, h.env)

const capture = () => {
  const out: string[] = []
  const err: string[] = []
  return { out, err, io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) } }
}
const tokenStatus = async (clientId: string, keyPem: string) =>
  (await h.app.inject({ method: 'POST', url: '/v1/oauth/token', payload: { grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: h.assertion(clientId, { keyPem }) } })).json()

t.test('pki request → systems register → token; list, renew, revoke', async (t) => {
  const dept = mkdtempSync(join(tmpdir(), 'tongban-dept-'))
  const clientId = uniqueName('cli').replace(/_/g, '-').slice(0, 40)
  const req = capture()
  t.equal(await pki(['request', '--client-id', clientId, '--out', dept], req.io), 0, req.err.join('\n'))
  const keyFile = join(dept, `${clientId}.key.pem`)
  t.equal(statSync(keyFile).mode & 0o777, 0o600, 'key readable by its owner only')
  t.match(req.out.join('\n'), /tongban systems register/, 'prints the next step')
  t.equal(await pki(['request', '--client-id', clientId, '--out', dept], capture().io), 1, 'an existing key is never overwritten')

  const reg = capture()
  const args = ['--url', url, '--client-id', clientId, '--name', '江宁区测试系统', '--department-code', '11320115MB0000012H',
    '--department-name', '南京市江宁区民政局', '--region', '320115', '--roles', 'consumer', '--csr', join(dept, `${clientId}.csr.pem`), '--out', dept]
  t.equal(await systems(['register', ...args], reg.io), 0, reg.err.join('\n'))
  t.match(readFileSync(join(dept, `${clientId}.crt.pem`), 'utf8'), /BEGIN CERTIFICATE/)
  t.ok((await tokenStatus(clientId, readFileSync(keyFile, 'utf8'))).access_token, 'the kept key gets a token')

  const again = capture()
  t.equal(await systems(['register', ...args], again.io), 1, 'registered twice fails')
  t.match(again.err.join('\n'), /ONBOARD_SYSTEM_EXISTS/)

  const list = capture()
  t.equal(await systems(['list', '--url', url], list.io), 0, list.err.join('\n'))
  t.match(list.out.join('\n'), new RegExp(clientId))

  const dept2 = mkdtempSync(join(tmpdir(), 'tongban-dept-'))
  t.equal(await pki(['request', '--client-id', clientId, '--out', dept2], capture().io), 0)
  const renew = capture()
  t.equal(await systems(['renew', '--url', url, '--client-id', clientId, '--csr', join(dept2, `${clientId}.csr.pem`), '--out', dept2], renew.io), 0, renew.err.join('\n'))
  t.ok((await tokenStatus(clientId, readFileSync(join(dept2, `${clientId}.key.pem`), 'utf8'))).access_token, 'the new key gets a token')

  const revoke = capture()
  t.equal(await systems(['revoke', '--url', url, '--client-id', clientId], revoke.io), 0, revoke.err.join('\n'))
  t.equal((await tokenStatus(clientId, readFileSync(join(dept2, `${clientId}.key.pem`), 'utf8'))).code, 'AUTH_CLIENT_CERT_REVOKED')
})

t.test('usage errors exit 2 with the help', async (t) => {
  const a = capture()
  t.equal(await pki(['request'], a.io), 2)
  t.match(a.err.join('\n'), /openssl req -new/)
  const b = capture()
  t.equal(await pki(['request', '--client-id', 'x-y', '--algorithm', 'dsa'], b.io), 2)
  const c = capture()
  t.equal(await systems(['register', '--url', url], c.io), 2)
  t.match(c.err.join('\n'), /--client-id is required/)
})
