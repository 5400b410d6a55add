// The tiers plugin as composed (src/tiers/plugin.ts): what app.tiers offers on a stand-alone
// node and on a node in a tree, and the shutdown order of a child (the last checkpoints go
// up at close, before the jobs and the clients end).
import t from 'tap'
import { join } from 'node:path'
import { Queue } from 'bullmq'
import { startNode, ROOT } from '../helpers/harness.js'
import { waitFor } from '../helpers/tiers.js'
import { freePort } from '../helpers/gateway-process.js'
import { ensureNodeCertificates } from '../../dev/pki.js'
import { sealSynthetic, syntheticRecord } from '../../dev/synthetic-audit.js'
import { createSigner } from '../../src/pki/suites.js'
import { CHECKPOINTS_QUEUE } from '../../src/tiers/checkpoint-push.js'

const JS = '320000'
const NJ = '320100'

t.test('a stand-alone node: read-only routes, no node channel, the requests are no-ops', async (t) => {
  const node = await startNode({ tag: 'tp_one' })
  t.teardown(() => node.close())
  const { tiers } = node.app
  t.equal(tiers.router, null, 'no route step: everything is local')
  t.equal(tiers.link, null, 'no node channel')
  t.equal(tiers.nodePort(), null, 'no node listener')
  t.equal(await tiers.parentHeads(), null, 'no parent')
  await tiers.publish('test')
  await tiers.pushCheckpoints('test')

  const auth = { authorization: `Bearer ${await node.token('js-audit')}` }
  const topo = await node.app.inject({ method: 'GET', url: '/v1/tiers/topology', headers: auth })
  t.equal(topo.statusCode, 200, topo.body)
  t.match(topo.json(), { parent: null, children: [], nodePort: null, hops: [] })
  const catalog = await node.app.inject({ method: 'GET', url: '/v1/tiers/catalog/resources?status=all', headers: auth })
  t.equal(catalog.statusCode, 200, catalog.body)
  t.ok(catalog.json().resources.every((r: { via: unknown }) => r.via === null), 'own resources only')

  for (const url of ['/v1/tiers/relay/applications', '/v1/tiers/catalog/sync', '/v1/tiers/checkpoints']) {
    const res = await node.app.inject({ method: 'POST', url, payload: {} })
    t.equal(res.statusCode, 404, `${url} is not registered`)
    t.match(res.headers['content-type'], /application\/problem\+json/)
  }
})

t.test('a child: the node channel is up, and the checkpoints sealed last go up at close', async (t) => {
  await ensureNodeCertificates({ dir: join(ROOT, 'certs'), nodes: [JS, NJ].map((id) => ({ id, name: `node ${id}` })) })
  const ports: Record<string, number> = { [JS]: await freePort(), [NJ]: await freePort() }
  const tree = [
    { id: JS, tier: 'province', region: JS, parent: null, nodeUrl: `https://127.0.0.1:${ports[JS]}` },
    { id: NJ, tier: 'city', region: NJ, parent: JS, nodeUrl: `https://127.0.0.1:${ports[NJ]}` },
  ]
  const env = (id: string, tier: string, parent: string) => ({
    TONGBAN_NODE_ID: id, TONGBAN_NODE_REGION: id, TONGBAN_NODE_TIER: tier, TONGBAN_NODE_NAME: `tiers plugin test ${id}`,
    TONGBAN_NODE_PARENT: parent, TONGBAN_TOPOLOGY: JSON.stringify(tree), TONGBAN_NODE_PORT: String(ports[id]),
    // No periodic push during the test: only the one at start and the one at close.
    TONGBAN_CHECKPOINT_PUSH_INTERVAL_MS: '3600000',
  })
  const parent = await startNode({ tag: 'tp_js', env: env(JS, 'province', '') })
  t.teardown(() => parent.close())
  const child = await startNode({ tag: 'tp_nj', env: env(NJ, 'city', JS) })
  let childOpen = true
  t.teardown(() => (childOpen ? child.close() : undefined))

  const { tiers } = child.app
  t.ok(tiers.link, 'the node channel')
  t.equal(tiers.router, tiers.link!.relay, 'the relay is the route step')
  t.equal(tiers.nodePort(), ports[NJ], 'the listener is up once ready')
  t.same(await tiers.parentHeads(), { parent: JS, heads: [] }, 'the parent holds nothing yet')

  // The push queued at start is done before the chain is sealed: only the close can send it.
  const queue = new Queue(CHECKPOINTS_QUEUE, { connection: { url: child.config.redis.url }, prefix: `${child.config.redis.prefix}bull` })
  t.teardown(() => queue.close())
  await waitFor('the push at start done', async () => (await queue.getJob('checkpoints-push')) == null)
  const signer = { ...createSigner('RS256', child.app.identity.keyPem), kid: child.app.identity.kid }
  for (let b = 0; b < 3; b++) {
    const records = [syntheticRecord(NJ, { time: new Date(Date.now() - 10_000 + b), caseId: `TP-last-${b}` })]
    await sealSynthetic(child.app.db, { chain: 'last', node: NJ, signer, records })
  }
  const sealed = (await child.query("SELECT seq, hash FROM audit_checkpoints WHERE chain = 'last' ORDER BY seq")).map((r) => ({ seq: Number(r.seq), hash: r.hash }))
  t.equal(sealed.length, 3)
  const held = async () => (await parent.query("SELECT seq, hash FROM tiers_child_checkpoints WHERE node = $1 AND chain = 'last' ORDER BY seq", [NJ])).map((r) => ({ seq: Number(r.seq), hash: r.hash }))
  t.same(await held(), [], 'not pushed before the close')

  childOpen = false
  await child.close()
  t.same(await held(), sealed, 'pushed at close')
})
