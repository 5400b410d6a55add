// HAProxy in front of replicas (scripts/haproxy.mjs), with the real haproxy and real HTTP
// and TLS servers on loopback: the configurations are valid, requests go round robin with no
// stickiness, a replica whose /readyz answers 503 gets nothing until it is ready again, and
// the node-to-node port is passed through so the replica sees the client certificate.
import t from 'tap'
import http from 'node:http'
import https from 'node:https'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { Agent, request } from 'undici'
import { parse } from 'yaml'
import { ROOT } from '../helpers/harness.js'
import { freePort } from '../helpers/gateway-process.js'
import { checkConfig, findHaproxy, haproxyConfig, startHaproxy } from '../../scripts/haproxy.mjs'

const bin = findHaproxy()
if (!bin) {
  // .ci/run and npm start install it (apt-get install haproxy); say so rather than pass quietly.
  t.fail('haproxy is not installed (apt-get install haproxy): these tests need the real one')
  process.exit(1)
}

const listen = (server: http.Server | https.Server) =>
  new Promise<number>((done) => server.listen(0, '127.0.0.1', () => done((server.address() as AddressInfo).port)))
const closeServer = (server: http.Server | https.Server) => new Promise<void>((done) => (server.closeAllConnections?.(), server.close(() => done())))

/** A stand-in replica: answers its name; /readyz 200 or 503 as told. */
async function replica(name: string) {
  const state = { ready: true, hits: 0 }
  const server = http.createServer((req, res) => {
    if (req.url === '/readyz') {
      res.writeHead(state.ready ? 200 : 503).end(state.ready ? 'ready' : 'draining')
      return
    }
    state.hits++
    res.writeHead(200, { 'content-type': 'text/plain' }).end(name)
  })
  const port = await listen(server)
  return { name, port, state, server }
}

t.test('configurations: generated and deploy/haproxy.cfg pass haproxy -c', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tongban-haproxy-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const cfg = haproxyConfig({
    port: 18443, nodePort: 19443, statsPort: 18404, socket: join(dir, 's.sock'),
    servers: [1, 2, 3].map((i) => ({ name: `r${i}`, host: '127.0.0.1', port: 19000 + i, nodePort: 19100 + i })),
  })
  t.match(cfg, /balance roundrobin/)
  t.notMatch(cfg, /\bcookie\b|stick-table|\bstick\b|balance source/, 'no stickiness of any kind')
  t.match(cfg, /http-check send meth GET uri \/readyz/)
  t.match(cfg, /frontend tongban-node\n    mode tcp/, 'the node port is TCP passthrough')
  t.notMatch(cfg, /\bssl\b/, 'HAProxy terminates no TLS of the node port')
  t.match(cfg, /server r2 127\.0\.0\.1:19102 check port 19002/, 'node listener checked through the public /readyz')
  writeFileSync(join(dir, 'h.cfg'), cfg)
  t.equal(checkConfig(join(dir, 'h.cfg')), null, 'generated configuration is valid')
  t.equal(checkConfig(join(ROOT, 'deploy/haproxy.cfg')), null, 'deploy/haproxy.cfg is valid')
  t.throws(() => haproxyConfig({ port: 1, servers: [] }), /at least one server/)
})

t.test('deploy: three replicas in compose, each its own chain and state, all in haproxy.cfg', async (t) => {
  const compose = parse(readFileSync(join(ROOT, 'deploy/docker-compose.replicas.yml'), 'utf8'), { merge: true }) as { services: Record<string, { environment?: Record<string, string> }> }
  const cfg = readFileSync(join(ROOT, 'deploy/haproxy.cfg'), 'utf8')
  const replicas = Object.entries(compose.services).filter(([, s]) => s.environment?.TONGBAN_REPLICA_ID)
  t.equal(replicas.length, 3)
  t.same(replicas.map(([, s]) => s.environment!.TONGBAN_REPLICA_ID), ['gw-1', 'gw-2', 'gw-3'], 'a distinct replica id each')
  for (const [name, s] of replicas) {
    t.match(cfg, new RegExp(`server ${name} ${name}:8443 check`), `${name} is a server of the public backend`)
    t.ok(Number(s.environment!.TONGBAN_DRAIN_MS) > 2000, `${name} drains longer than fall × inter (2 s)`)
    t.equal(s.environment!.TONGBAN_PUBLIC_URL, 'http://localhost:8443', `${name}: the public URL is HAProxy's`)
  }
  t.ok(compose.services.haproxy, 'an haproxy service')
})

t.test('round robin without stickiness; /readyz 503 takes a replica out, 200 brings it back', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tongban-haproxy-'))
  const a = await replica('a')
  const b = await replica('b')
  let lb: Awaited<ReturnType<typeof startHaproxy>> | undefined
  t.teardown(async () => {
    await lb?.stop()
    await Promise.all([closeServer(a.server), closeServer(b.server)])
    rmSync(dir, { recursive: true, force: true })
  })
  lb = await startHaproxy({ dir, port: await freePort(), servers: [{ name: 'a', host: '127.0.0.1', port: a.port }, { name: 'b', host: '127.0.0.1', port: b.port }], check: { interMs: 200, fall: 1, rise: 1 } })
  // One keep-alive connection from the client: still spread over both (no stickiness).
  const agent = new Agent({ connections: 1 })
  t.teardown(() => agent.close())
  const ask = async (n: number) => {
    const seen: Record<string, number> = {}
    for (let i = 0; i < n; i++) {
      const r = await request(lb.url, { dispatcher: agent })
      const who = await r.body.text()
      seen[who] = (seen[who] ?? 0) + 1
    }
    return seen
  }
  t.same(await ask(20), { a: 10, b: 10 }, 'round robin over one client connection')

  b.state.ready = false
  await lb.waitFor('b', 'DOWN')
  t.same(await ask(10), { a: 10 }, 'a not-ready replica gets nothing')
  const st = (await lb.stats()).find((s) => s.server === 'b')!
  t.ok(st.downs >= 1, `HAProxy counted the check failure (chkdown ${st.downs})`)

  b.state.ready = true
  await lb.waitFor('b', 'UP')
  const back = await ask(10)
  t.ok(back.b >= 4 && back.a >= 4, `b rejoins (${JSON.stringify(back)})`)
})

t.test('node port: TLS passed through, the replica sees the client certificate', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tongban-haproxy-'))
  const pki = join(ROOT, 'certs')
  const ca = readFileSync(join(pki, 'ca.crt.pem'))
  // The stand-in node listener: mutual TLS, as src/tiers/listener.ts asks (a CA-issued client certificate).
  const tls = https.createServer({ key: readFileSync(join(pki, 'node/320000.key.pem')), cert: readFileSync(join(pki, 'node/320000.crt.pem')), ca, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate()
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ cn: peer.subject?.CN ?? null }))
  })
  const pub = await replica('pub')
  const tlsPort = await listen(tls)
  let lb: Awaited<ReturnType<typeof startHaproxy>> | undefined
  t.teardown(async () => {
    await lb?.stop()
    await Promise.all([closeServer(tls), closeServer(pub.server)])
    rmSync(dir, { recursive: true, force: true })
  })
  lb = await startHaproxy({ dir, port: await freePort(), nodePort: await freePort(), servers: [{ name: 'r1', host: '127.0.0.1', port: pub.port, nodePort: tlsPort }], check: { interMs: 200, fall: 1, rise: 1 } })
  await lb.waitFor('r1', 'UP')
  const get = (withCert: boolean) =>
    new Promise<{ status: number; body: string }>((done, fail) => {
      const req = https.request({
        host: '127.0.0.1', port: lb.nodePort!, path: '/', ca, servername: 'localhost', checkServerIdentity: () => undefined,
        ...(withCert ? { key: readFileSync(join(pki, 'clients/jn-civil-affairs.key.pem')), cert: readFileSync(join(pki, 'clients/jn-civil-affairs.crt.pem')) } : {}),
      }, (res) => {
        let body = ''
        res.on('data', (d) => (body += d))
        res.on('end', () => done({ status: res.statusCode!, body }))
      })
      req.on('error', fail)
      req.end()
    })
  const r = await get(true)
  t.equal(r.status, 200)
  t.same(JSON.parse(r.body), { cn: 'jn-civil-affairs' }, "the replica read the client certificate's CN through HAProxy")
  await t.rejects(get(false), 'without a client certificate the replica itself refuses the handshake')
})
