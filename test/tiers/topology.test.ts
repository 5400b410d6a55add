// Four tiers, configuration: the topology each node is given is checked at start, and an
// impossible tree (a county under another city, a cycle, a wrong region prefix, a tier that
// does not match its code) is refused with a configuration error naming the node.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigError, loadConfig } from '../../src/config/index.js'
import { Topology, checkTopology, parentRegionsOf, regionTier, regionWithin } from '../../src/tiers/topology.js'
import { HopGuard, type GuardedAnswer } from '../../src/tiers/breaker.js'
import { Problem } from '../../src/problems/problem.js'
import { nodeIdOfCert } from '../../src/tiers/assertion.js'
import { ensureNodeCertificates } from '../../dev/pki.js'
import { ROOT } from '../helpers/harness.js'

const url = (port: number) => `https://127.0.0.1:${port}`
const jiangsu = [
  { id: '100000', tier: 'national', region: '100000', parent: null, nodeUrl: url(9400) },
  { id: '320000', tier: 'province', region: '320000', parent: '100000', nodeUrl: url(9401) },
  { id: '320100', tier: 'city', region: '320100', parent: '320000', nodeUrl: url(9402) },
  { id: '320115', tier: 'county', region: '320115', parent: '320100', nodeUrl: url(9403) },
]

// The configuration as the start-up path takes it: loaded, then the tree checked.
const as = (id: string, tier: string, parent: string | null, nodes: object[], extra: Record<string, string> = {}) => {
  const config = loadConfig(
    {
      TONGBAN_NODE_ID: id,
      TONGBAN_NODE_REGION: id,
      TONGBAN_NODE_TIER: tier,
      TONGBAN_NODE_PARENT: parent ?? '',
      TONGBAN_TOPOLOGY: JSON.stringify(nodes),
      TONGBAN_NODE_PORT: '0',
      ...extra,
    },
    ROOT,
  )
  checkTopology(config)
  return config
}

const refused = (t: Test, f: () => unknown, pattern: RegExp, msg: string) => {
  try {
    f()
    t.fail(`${msg}: accepted`)
  } catch (e) {
    t.type(e, ConfigError, msg)
    t.match((e as Error).message, pattern, msg)
  }
}

t.test('GB/T 2260 codes: tier, parents, containment', async (t) => {
  t.equal(regionTier('100000'), 'national')
  t.equal(regionTier('320000'), 'province')
  t.equal(regionTier('320100'), 'city')
  t.equal(regionTier('320115'), 'county')
  t.same(parentRegionsOf('320115'), ['320100'], 'a county belongs to its city')
  t.same(parentRegionsOf('110105'), ['110100', '110000'], 'a district of a municipality may belong to the municipality')
  t.same(parentRegionsOf('429004'), ['429000', '420000'], 'a county-level city directly under a province (省直辖) may belong to the province')
  t.same(parentRegionsOf('320100'), ['320000'])
  t.same(parentRegionsOf('320000'), ['100000'])
  t.ok(regionWithin('320115', '320100'))
  t.notOk(regionWithin('320205', '320100'))
  t.ok(regionWithin('320115', '100000'))
})

t.test('the Jiangsu tree is accepted, and each node sees its neighbours', async (t) => {
  const county = as('320115', 'county', '320100', jiangsu)
  t.equal(county.node.parent, '320100')
  t.equal(county.tiers.listen?.port, 0)
  const top = new Topology(county.node, county.tiers.nodes)
  t.equal(top.parent?.id, '320100')
  t.same(top.children, [])

  const province = as('320000', 'province', '100000', jiangsu)
  const p = new Topology(province.node, province.tiers.nodes)
  t.same(p.children.map((c) => c.id), ['320100'])
  t.equal(p.childToward('320115')?.id, '320100', 'a county is reached through its city')
  t.equal(p.childToward('320106')?.id, '320100', 'an unlisted county of Nanjing too, by its code')
  t.equal(p.childToward('320205'), undefined, 'a Wuxi county is not below Nanjing')
  t.ok(p.isNeighbour('100000') && p.isNeighbour('320100') && !p.isNeighbour('320115'))

  const national = as('100000', 'national', null, jiangsu)
  t.equal(national.node.parent, null)

  // A topology need not list the whole country: a county knowing only its parent is enough.
  as('320115', 'county', '320100', [jiangsu[2], jiangsu[3]].map((n) => (n.id === '320100' ? { ...n, parent: null } : n)))

  const alone = loadConfig({}, ROOT)
  t.equal(alone.node.parent, null, 'a stand-alone node keeps the one-node defaults')
  t.same(alone.tiers.nodes, [])
  t.equal(alone.tiers.listen, null)
})

t.test('impossible topologies are refused with a clear configuration error', async (t) => {
  const swap = (id: string, patch: object) => jiangsu.map((n) => (n.id === id ? { ...n, ...patch } : n))

  refused(t, () => as('320115', 'county', '320200', [...jiangsu, { id: '320200', tier: 'city', region: '320200', parent: '320000', nodeUrl: url(9404) }].map((n) => (n.id === '320115' ? { ...n, parent: '320200' } : n))),
    /node 320115 \(county\): parent 320200 \(city, region 320200\) is not its city; expected 320100/, 'a county under another city')
  refused(t, () => as('320115', 'county', '320000', swap('320115', { parent: '320000' })),
    /node 320115 \(county\): parent 320000 \(province, region 320000\) is not its city; expected 320100/, 'a county directly under its province')
  refused(t, () => as('320100', 'city', '330000', [...swap('320100', { parent: '330000' }), { id: '330000', tier: 'province', region: '330000', parent: '100000', nodeUrl: url(9405) }]),
    /node 320100 \(city\): parent 330000 .* is not its province; expected 320000/, 'a Jiangsu city under Zhejiang')
  refused(t, () => as('320100', 'city', '320115', swap('320100', { parent: '320115' })),
    /the parents form a cycle: (320100 → 320115 → 320100|320115 → 320100 → 320115)/, 'a cycle')
  refused(t, () => as('320115', 'county', '320115', swap('320115', { parent: '320115' })),
    /cycle: 320115 → 320115/, 'a node its own parent')
  refused(t, () => as('320100', 'province', '100000', swap('320100', { tier: 'province', parent: '100000' })),
    /node 320100 \(province\): region 320100 is a city code, not a province one/, 'a tier that does not match the region code')
  refused(t, () => as('100000', 'national', '320000', swap('100000', { parent: '320000' })),
    /national node has no parent|cycle/, 'a national node with a parent')
  refused(t, () => as('320115', 'county', '320100', jiangsu.filter((n) => n.id !== '320100')),
    /node 320115 \(county\): its parent 320100 is not in the topology/, 'a parent nobody configured')
  refused(t, () => as('320115', 'county', '320100', swap('320100', { nodeUrl: undefined })),
    /node 320100 \(city\): nodeUrl .* is required, it is a neighbour of this node/, 'a neighbour without an address')
  refused(t, () => as('320115', 'county', '320100', jiangsu, { TONGBAN_NODE_PORT: '' }),
    /tiers\.listen \(TONGBAN_NODE_PORT\) is required/, 'a node in a tree without a node listener')
  refused(t, () => as('320115', 'city', '320100', jiangsu),
    /the topology says tier "county", this node's configuration "city"/, 'the node disagrees with the topology')
  refused(t, () => as('320115', 'county', '320100', [...jiangsu, jiangsu[1]]), /node 320000 is listed twice/, 'a node listed twice')
  refused(t, () => as('320115', 'county', '320100', jiangsu, { TONGBAN_TOPOLOGY: '[{' }), /TONGBAN_TOPOLOGY: expected JSON/, 'a topology that is not JSON')
  refused(t, () => as('320115', 'county', '320100', swap('320100', { nodeUrl: 'http://127.0.0.1:9402' })), /nodeUrl/, 'node traffic is https only')
  refused(t, () => as('320115', 'county', '320100', jiangsu, { TONGBAN_HOP_TIMEOUT_MS: 'soon' }), /TONGBAN_HOP_TIMEOUT_MS: expected an integer/, 'a timeout that is not a number')

  // Municipalities: a district may hang directly under Beijing.
  as('110105', 'county', '110000', [
    { id: '110000', tier: 'province', region: '110000', parent: null, nodeUrl: url(9406) },
    { id: '110105', tier: 'county', region: '110105', parent: '110000', nodeUrl: url(9407) },
  ])
})

t.test('a gateway process with an impossible topology does not start (exit 2, the reason on stderr)', async (t) => {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      TONGBAN_NODE_ID: '320115', TONGBAN_NODE_REGION: '320115', TONGBAN_NODE_TIER: 'county', TONGBAN_NODE_PARENT: '320000',
      TONGBAN_TOPOLOGY: JSON.stringify(jiangsu.map((n) => (n.id === '320115' ? { ...n, parent: '320000' } : n))),
      TONGBAN_NODE_PORT: '0', TONGBAN_PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let err = ''
  child.stderr!.on('data', (d) => (err += d))
  const [code] = await once(child, 'exit')
  t.equal(code, 2)
  t.match(err, /invalid topology:\n\s+node 320115 \(county\): parent 320000 .* is not its city; expected 320100/)
})

t.test('a hop guard (cockatiel): bounded concurrency, breaker opens after K failures, one probe after the pause, half-open recovery', async (t) => {
  const OPEN_MS = 500
  const states: string[] = []
  const g = new HopGuard('320100', { maxConcurrent: 2, failures: 2, openMs: OPEN_MS, onState: (hop, s) => states.push(`${hop}:${s}`) })
  let calls = 0
  /** A call the test ends by hand: ok (200), an error thrown, or a given answer. */
  const held = () => {
    let end!: (how: 'ok' | 'fail' | GuardedAnswer) => void
    const answer = new Promise<GuardedAnswer>((resolve, reject) => {
      end = (how) => {
        if (how === 'fail') reject(new Problem(502, 'HOP_UNAVAILABLE', 'down', { hop: '320100' }))
        else resolve(how === 'ok' ? { status: 200, headers: {}, body: '{}' } : how)
      }
    })
    const done = g.run(() => (calls++, answer))
    done.catch(() => {})
    return { done, end }
  }
  const afterPause = () => new Promise((r) => setTimeout(r, OPEN_MS + 50))

  // A 5xx naming another hop (further down, or an upstream) is passed on: this hop carried it.
  const other = held()
  other.end({ status: 502, headers: { 'content-type': 'application/problem+json' }, body: '{"code":"UPSTREAM_ERROR","hop":"mps-identity"}' })
  t.equal((await other.done).status, 502)
  t.match(g.snapshot(), { state: 'closed', consecutiveFailures: 0 }, "another hop's failure does not count against this one")

  const a = held()
  const b = held()
  await t.rejects(g.run(async () => ({ status: 200, headers: {}, body: '' })), { code: 'HOP_SATURATED', status: 503, extra: { hop: '320100', retryAfter: 1 } }, 'a third call in flight is refused at once')
  t.equal(g.snapshot().inFlight, 2)
  a.end('fail')
  await t.rejects(a.done, { code: 'HOP_UNAVAILABLE' })
  t.match(g.snapshot(), { state: 'closed', consecutiveFailures: 1 }, 'one failure is not enough')
  b.end({ status: 500, headers: {}, body: 'boom' })
  t.equal((await b.done).status, 500, 'a 5xx of its own counts, and is still handed back')
  t.match(g.snapshot(), { state: 'open', inFlight: 0 }, 'two consecutive failures open it')

  const before = calls
  const refused = await g.run(async () => ({ status: 200, headers: {}, body: '' })).catch((e) => e)
  t.match(refused, { code: 'HOP_CIRCUIT_OPEN', status: 503, extra: { hop: '320100' } })
  t.ok(refused.extra.retryAfter >= 1, 'with Retry-After')
  t.equal(calls, before, 'the hop is not called while open')

  await afterPause()
  const probe = held()
  t.equal(g.snapshot().state, 'half-open', 'after the pause one call probes')
  await t.rejects(g.run(async () => ({ status: 200, headers: {}, body: '' })), { code: 'HOP_CIRCUIT_OPEN' }, 'the others fail fast during the probe, they do not wait for it')
  t.equal(calls, before + 1, 'only the probe reached the hop')
  probe.end('fail')
  await t.rejects(probe.done, { code: 'HOP_UNAVAILABLE' })
  t.equal(g.snapshot().state, 'open', 'a failed probe opens it again')

  await afterPause()
  const recovery = held()
  t.equal(g.snapshot().state, 'half-open')
  recovery.end('ok')
  t.equal((await recovery.done).status, 200)
  t.match(g.snapshot(), { state: 'closed', consecutiveFailures: 0, inFlight: 0 }, 'a successful probe closes it')
  t.equal((await g.run(async () => ({ status: 200, headers: {}, body: '' }))).status, 200, 'and calls go through again')
  t.same(states, ['320100:open', '320100:half-open', '320100:open', '320100:half-open', '320100:closed'], 'every change is told (metrics)')
})

t.test('dev PKI: certificates for the four tiers under one CA, each naming its node', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tongban-tiers-pki-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const nodes = jiangsu.map((n) => ({ id: n.id, name: `node ${n.id}` }))
  const files = await ensureNodeCertificates({ dir, nodes })
  const ca = new X509Certificate(readFileSync(join(dir, 'ca.crt.pem')))
  for (const n of nodes) {
    const cert = new X509Certificate(readFileSync(files[n.id].cert))
    t.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), `${n.id}: issued by the one CA`)
    t.equal(nodeIdOfCert(cert), n.id, `${n.id}: CN names the node`)
    t.ok(cert.checkIP('127.0.0.1'), `${n.id}: valid on loopback`)
    t.match(cert.keyUsage ?? [], ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], `${n.id}: server and client authentication (mutual TLS)`)
  }
  const before = readFileSync(files['320115'].cert, 'utf8')
  await ensureNodeCertificates({ dir, nodes })
  t.equal(readFileSync(files['320115'].cert, 'utf8'), before, 'usable certificates are kept')
})
