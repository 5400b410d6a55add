// Checkpoints to the parent node (docs/audit.md): Nanjing (320100, the child) sends its
// signed checkpoints to Jiangsu (320000, the parent) over mTLS on loopback, each node with
// its own PostgreSQL schema and Redis prefix. Between them a TCP proxy the test can cut (a
// parent that is down). The parent verifies and keeps them; forged, foreign and forked ones
// are refused; a tail cut out of the child's own database is reported by the child's
// integrity check against the heads the parent holds.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { Agent, request } from 'undici'
import { startNode, ROOT } from '../helpers/harness.js'
import { waitFor } from '../helpers/tiers.js'
import { freePort } from '../helpers/gateway-process.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { person } from '../../dev/providers/population.js'
import { createSigner, verifySignature } from '../../src/pki/suites.js'
import { certThumbprint } from '../../src/pki/thumbprint.js'
import { jcs } from '../../src/evidence/jcs.js'
import { checkpointHash } from '../../src/evidence/evidence.js'
import { ensureNodeCertificates } from '../../dev/pki.js'
import { makeBatch, sealSynthetic, syntheticRecord } from '../../dev/synthetic-audit.js'
import { Queue } from 'bullmq'
import { CHECKPOINTS_QUEUE } from '../../src/tiers/checkpoint-push.js'

const JS = '320000'
const NJ = '320100'
const JN = '320115'

await ensureNodeCertificates({ dir: join(ROOT, 'certs'), nodes: [JS, NJ, JN].map((id) => ({ id, name: `node ${id}` })) })
const pem = (rel: string) => readFileSync(join(ROOT, 'certs', rel), 'utf8')
const caPem = pem('ca.crt.pem')

const ports: Record<string, number> = { [JS]: await freePort(), [NJ]: await freePort() }
const proxy = await startTcpProxy(ports[JS])
const at = (port: number) => `https://127.0.0.1:${port}`
const tree = [
  { id: JS, tier: 'province', region: JS, parent: null, nodeUrl: at(ports[JS]) },
  { id: NJ, tier: 'city', region: NJ, parent: JS, nodeUrl: at(ports[NJ]) },
]
const nodeEnv = (id: string, tier: string, parent: string | null, topology: object[]) => ({
  TONGBAN_NODE_ID: id,
  TONGBAN_NODE_REGION: id,
  TONGBAN_NODE_TIER: tier,
  TONGBAN_NODE_NAME: `checkpoints test ${id}`,
  TONGBAN_NODE_PARENT: parent ?? '',
  TONGBAN_TOPOLOGY: JSON.stringify(topology),
  TONGBAN_NODE_PORT: String(ports[id]),
  TONGBAN_SYNC_BACKOFF_MS: '100',
  TONGBAN_CHECKPOINT_PUSH_INTERVAL_MS: '1000',
  TONGBAN_CHECKPOINT_PUSH_BATCH: '7',
})
const parent = await startNode({ tag: 'cp_js', env: nodeEnv(JS, 'province', null, tree) })
// The child reaches its parent through the proxy.
const child = await startNode({ tag: 'cp_nj', env: nodeEnv(NJ, 'city', JS, tree.map((n) => (n.id === JS ? { ...n, nodeUrl: at(proxy.port) } : n))) })
t.teardown(async () => {
  await child.close()
  await parent.close()
  await proxy.close()
})

const signer = { ...createSigner('RS256', child.app.identity.keyPem), kid: child.app.identity.kid }
const auditorAtChild = await child.token('js-audit')
const auditorAtParent = await parent.token('js-audit')
const consumerAtParent = await parent.token('js-natural-resources')


/** A chain of `batches` sealed batches at the child (signed with its key), as the sealer writes them. */
async function chain(name: string, batches: number, from = 0) {
  for (let b = from; b < from + batches; b++) {
    const records = Array.from({ length: 2 }, (_, i) => syntheticRecord(NJ, { time: new Date(Date.now() - 30_000 + b * 10 + i), caseId: `CP-${name}-${b}-${i}` }))
    await sealSynthetic(child.app.db, { chain: name, node: NJ, signer, records })
  }
}
const heldAtParent = async (chainName: string) =>
  (await parent.query('SELECT seq, hash FROM tiers_child_checkpoints WHERE node = $1 AND chain = $2 ORDER BY seq', [NJ, chainName])).map((r) => ({ seq: Number(r.seq), hash: r.hash as string }))
const childHashes = async (chainName: string) =>
  (await child.query('SELECT seq, hash FROM audit_checkpoints WHERE chain = $1 ORDER BY seq', [chainName])).map((r) => ({ seq: Number(r.seq), hash: r.hash as string }))
const integrity = async (qs: string) => {
  const res = await child.app.inject({ method: 'GET', url: `/v1/audit/integrity?all=true&${qs}`, headers: { authorization: `Bearer ${auditorAtChild}` } })
  if (res.statusCode !== 200) throw new Error(`integrity: ${res.statusCode} ${res.body}`)
  return res.json()
}
/** As a DBA would: the append-only triggers switched off for this transaction only. */
const tamper = (sql: string) => child.query(`BEGIN; SET LOCAL session_replication_role = replica; ${sql}; COMMIT;`)

// A hand-made push over mTLS, as a node with `id`'s certificate.
const agents = new Map<string, Agent>()
t.teardown(() => Promise.all([...agents.values()].map((a) => a.close())).then(() => {}))
async function push(as: string, body: object) {
  let agent = agents.get(as)
  if (!agent) agents.set(as, (agent = new Agent({ connect: { ca: caPem, cert: pem(`node/${as}.crt.pem`), key: pem(`node/${as}.key.pem`) } })))
  const res = await request(`${at(ports[JS])}/v1/tiers/checkpoints`, { method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const text = await res.body.text()
  return { status: res.statusCode, json: JSON.parse(text) }
}
const pushOf = (batches: Array<{ checkpoint: object; sig: string }>, extra: object = {}) => ({
  v: 1, node: NJ, certificates: [child.app.identity.certPem], checkpoints: batches.map((b) => ({ checkpoint: b.checkpoint, sig: b.sig })), ...extra,
})

t.test('the child\'s checkpoints arrive at the parent, verified, and are acknowledged', async (t) => {
  // Real traffic on the child's own chain, and a chain of 20 batches (three pushes of ≤ 7).
  const consumer = await child.token('nj-housing')
  const p = person(1)
  const res = await child.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${consumer}`, 'tongban-purpose': 'SA-01', 'tongban-case-id': 'NJ-2026-1' }, payload: { idNumber: p.idNumber, name: p.name } })
  t.ok(res.statusCode < 500, `a sealed answer at the child (${res.statusCode})`)
  await chain('long', 20)
  await child.app.tiers.pushCheckpoints('test')
  await waitFor('all 20 at the parent', async () => (await heldAtParent('long')).length === 20)
  t.same(await heldAtParent('long'), await childHashes('long'), 'the parent holds the chain exactly as the child sealed it')
  await waitFor('the replica chain at the parent', async () => (await heldAtParent(child.config.replicaId)).length > 0)

  // Every stored checkpoint verifies with the certificate the parent keeps for its kid.
  const rows = await parent.query('SELECT c.checkpoint, c.sig, c.hash, k.cert_pem FROM tiers_child_checkpoints c JOIN tiers_child_certificates k ON k.kid = c.kid WHERE c.node = $1', [NJ])
  t.ok(rows.length >= 21)
  t.ok(rows.every((r) => verifySignature('RS256', r.cert_pem, Buffer.from(jcs(r.checkpoint)), Buffer.from(r.sig, 'base64url')) && checkpointHash(r.checkpoint) === r.hash), 'signatures and hashes verify')
  t.equal(certThumbprint(rows[0].cert_pem), child.app.identity.kid)

  const [ack] = await child.query('SELECT seq FROM tiers_checkpoint_acks WHERE chain = $1', ['long'])
  t.equal(Number(ack.seq), 20, 'the child records what the parent acknowledged')

  // The heads: an auditor at the parent (public API), not a consumer; and the child itself.
  const heads = await parent.app.inject({ method: 'GET', url: `/v1/tiers/checkpoints/heads?node=${NJ}`, headers: { authorization: `Bearer ${auditorAtParent}` } })
  t.equal(heads.statusCode, 200)
  t.match(heads.json().heads.find((h: any) => h.chain === 'long'), { seq: 20, hash: (await childHashes('long'))[19].hash })
  t.ok(heads.headers['tongban-evidence'], 'an auditor\'s call is sealed at the parent')
  const consumerCall = await parent.app.inject({ method: 'GET', url: `/v1/tiers/checkpoints/heads?node=${NJ}`, headers: { authorization: `Bearer ${consumerAtParent}` } })
  t.equal(consumerCall.statusCode, 403)
  t.equal(consumerCall.json().code, 'AUTH_ROLE_REQUIRED')
  const unknown = await parent.app.inject({ method: 'GET', url: `/v1/tiers/checkpoints/heads?node=${JN}`, headers: { authorization: `Bearer ${auditorAtParent}` } })
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.json().code, 'TIERS_NODE_UNKNOWN')
  const own = await child.app.tiers.parentHeads()
  t.equal(own?.parent, JS)
  t.ok(own?.heads.some((h) => h.chain === 'long' && h.seq === 20), 'the child reads its own heads over mTLS')

  const onPublicPort = await parent.app.inject({ method: 'POST', url: '/v1/tiers/checkpoints', payload: pushOf([]) })
  t.equal(onPublicPort.statusCode, 400, 'the push route validates before anything (an empty push)')
  const onPublicPort2 = await parent.app.inject({ method: 'POST', url: '/v1/tiers/checkpoints', payload: pushOf([makeBatch({ chain: 'x', node: NJ, signer, records: [syntheticRecord(NJ, { time: new Date() })], seq: 1, prev: '0'.repeat(64) })]) })
  t.equal(onPublicPort2.statusCode, 403)
  t.equal(onPublicPort2.json().code, 'NODE_AUTH_REQUIRED', 'pushes are taken on the node listener only')
})

t.test('forged, foreign and misaddressed checkpoints are refused', async (t) => {
  const rec = () => [syntheticRecord(NJ, { time: new Date(Date.now() - 1000) })]
  const genesis = '0'.repeat(64)
  const good = makeBatch({ chain: 'forged', node: NJ, signer, records: rec(), seq: 1, prev: genesis })

  const altered = { ...good, checkpoint: { ...good.checkpoint, root: 'f'.repeat(64) } }
  const r1 = await push(NJ, pushOf([altered]))
  t.equal(r1.status, 400)
  t.equal(r1.json.code, 'CHECKPOINT_BAD_SIGNATURE', 'a checkpoint changed after signing')

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } })
  const forger = { ...createSigner('RS256', privateKey), kid: child.app.identity.kid }
  const r2 = await push(NJ, pushOf([makeBatch({ chain: 'forged', node: NJ, signer: forger, records: rec(), seq: 1, prev: genesis })]))
  t.equal(r2.status, 400)
  t.equal(r2.json.code, 'CHECKPOINT_BAD_SIGNATURE', 'signed with a key the named certificate does not certify')

  const jnSigner = { ...createSigner('RS256', pem(`node/${JN}.key.pem`)), kid: certThumbprint(pem(`node/${JN}.crt.pem`)) }
  const r3 = await push(NJ, { ...pushOf([makeBatch({ chain: 'forged', node: NJ, signer: jnSigner, records: rec(), seq: 1, prev: genesis })]), certificates: [pem(`node/${JN}.crt.pem`)] })
  t.equal(r3.status, 403)
  t.equal(r3.json.code, 'CHECKPOINT_NODE_MISMATCH', 'signed by another node\'s certificate')

  const r4 = await push(NJ, pushOf([makeBatch({ chain: 'forged', node: JN, signer, records: rec(), seq: 1, prev: genesis })]))
  t.equal(r4.status, 403)
  t.equal(r4.json.code, 'CHECKPOINT_NODE_MISMATCH', 'a checkpoint naming another node')

  const r5 = await push(JN, { ...pushOf([makeBatch({ chain: 'forged', node: JN, signer: jnSigner, records: rec(), seq: 1, prev: genesis })]), node: JN })
  t.equal(r5.status, 403)
  t.equal(r5.json.code, 'NODE_NOT_CHILD', 'a node that is not a child of the parent')

  const r6 = await push(NJ, pushOf([makeBatch({ chain: 'forged', node: NJ, signer, records: rec(), seq: 3, prev: 'a'.repeat(64) })]))
  t.equal(r6.status, 409)
  t.equal(r6.json.code, 'CHECKPOINT_GAP', 'a chain must start at #1 (or follow what is held)')
  t.same(r6.json.heads, [])

  t.same(await heldAtParent('forged'), [], 'nothing was stored')
  const sealed = await parent.query(`SELECT reason, operator FROM audit_records WHERE resource = 'tiers/checkpoints' AND decision = 'denied' ORDER BY time`)
  t.ok(sealed.some((r) => r.reason === 'CHECKPOINT_BAD_SIGNATURE' && r.operator === `tongban-node-${NJ}`), 'refusals are sealed in the parent\'s audit log, naming the sender')
})

t.test('a rewritten chain (fork) is refused, recorded with both hashes, and reported by the child\'s integrity check', async (t) => {
  await chain('fork', 5)
  await child.app.tiers.pushCheckpoints('test')
  await waitFor('the fork chain at the parent', async () => (await heldAtParent('fork')).length === 5)
  const original = await childHashes('fork')

  // A DBA rewrites the last two batches and re-signs them (the node's key is on the node).
  await tamper(`DELETE FROM audit_records WHERE chain = 'fork' AND seq >= 4; DELETE FROM audit_checkpoints WHERE chain = 'fork' AND seq >= 4`)
  await chain('fork', 2, 100)
  const rewritten = await childHashes('fork')
  t.not(rewritten[3].hash, original[3].hash)
  const rows = await child.query(`SELECT checkpoint, sig FROM audit_checkpoints WHERE chain = 'fork' AND seq >= 4 ORDER BY seq`)
  const offered = rows.map((r) => {
    const { sig: _s, ...checkpoint } = r.checkpoint
    return { checkpoint, sig: r.sig }
  })
  const r = await push(NJ, pushOf(offered))
  t.equal(r.status, 409)
  t.match(r.json, { code: 'CHECKPOINT_FORK', chain: 'fork', seq: 4, heldHash: original[3].hash, offeredHash: rewritten[3].hash })
  const conflicts = await parent.query('SELECT seq, held_hash, offered_hash, offered_checkpoint FROM tiers_checkpoint_conflicts WHERE node = $1 AND chain = $2 ORDER BY id', [NJ, 'fork'])
  t.match(conflicts[0], { held_hash: original[3].hash, offered_hash: rewritten[3].hash })
  t.equal(conflicts[0].offered_checkpoint.seq, 4, 'the child\'s signed contradicting checkpoint is kept')
  t.same(await heldAtParent('fork'), original, 'the parent keeps what it had')

  const forks = async () => (await parent.query(`SELECT 1 FROM audit_records WHERE resource = 'tiers/checkpoints' AND reason = 'CHECKPOINT_FORK'`)).length
  t.equal(await forks(), 1, 'the fork is sealed in the parent\'s audit log')

  // The chain grows on: the job's next push names the rewritten #5 as prev: refused too.
  await chain('fork', 1, 200)
  await child.app.tiers.pushCheckpoints('test')
  await waitFor('the job\'s push refused', async () => (await forks()) >= 2)
  t.same(await heldAtParent('fork'), original)
  t.equal((await parent.query('SELECT 1 FROM tiers_checkpoint_conflicts WHERE node = $1 AND chain = $2', [NJ, 'fork'])).length, 2, 'each contradiction recorded once (#4 and #5), however often offered')
  const denied = await parent.query('UPDATE tiers_checkpoint_conflicts SET offered_hash = held_hash WHERE node = $1 RETURNING id', [NJ]).catch((e: Error) => e)
  t.match(String(denied), /append-only/, 'the conflicts are append-only at the parent too')

  const rep = await integrity('chain=fork')
  t.equal(rep.ok, false)
  t.equal(rep.firstFailure.kind, 'anchor-mismatch', JSON.stringify(rep.firstFailure))
  t.match(rep.firstFailure.detail, /parent node 320000/)
  t.equal(rep.parentHeads.node, JS)
})

t.test('a truncated tail at the child is reported from the heads the parent holds', async (t) => {
  await chain('cut', 6)
  await child.app.tiers.pushCheckpoints('test')
  await waitFor('the cut chain at the parent', async () => (await heldAtParent('cut')).length === 6)
  const before = await integrity('chain=cut')
  t.equal(before.ok, true, JSON.stringify(before.firstFailure))
  t.equal(before.anchorsChecked, 1, 'the parent\'s head is checked like an anchor')
  t.notOk(before.warnings.some((w: string) => /no anchor covers chain cut/.test(w)), 'no warning: the parent covers the chain')

  await tamper(`DELETE FROM audit_records WHERE chain = 'cut' AND seq >= 4; DELETE FROM audit_checkpoints WHERE chain = 'cut' AND seq >= 4`)
  const after = await integrity('chain=cut')
  t.equal(after.ok, false, 'the shorter chain is consistent in itself, but the parent holds #6')
  t.equal(after.firstFailure.kind, 'truncated')
  t.match(after.firstFailure.detail, /cut#6 held by the parent node 320000 is not in the log/)

  // The command line does the same, with the node's own certificate.
  // Not spawnSync: the parent answering it runs in this very process.
  const cli = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'audit', 'integrity', '--chain', 'cut', '--json'], {
      cwd: ROOT, env: { ...process.env, ...child.env }, encoding: 'utf8', timeout: 60_000,
    }, (err, stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }))
  })
  t.equal(cli.status, 1, cli.stderr)
  t.equal(JSON.parse(cli.stdout).firstFailure?.kind, 'truncated', cli.stdout.slice(0, 2000))
})

t.test('parent down: the push is retried and arrives when the parent is back', async (t) => {
  await proxy.cut()
  await chain('outage', 3)
  await child.app.tiers.pushCheckpoints('test')
  const down = await integrity('chain=outage')
  t.ok(down.warnings.some((w: string) => /could not be read/.test(w)), 'integrity says the parent\'s heads are out of reach')
  // The push waits in Redis (BullMQ: retried with backoff, kept across restarts), one job.
  const queue = new Queue(CHECKPOINTS_QUEUE, { connection: { url: child.config.redis.url }, prefix: `${child.config.redis.prefix}bull` })
  t.teardown(() => queue.close())
  let retried = false
  await waitFor('a retried push job', async () => {
    const job = await queue.getJob('checkpoints-push')
    retried ||= !!job && job.attemptsMade >= 1
    return retried
  }, 5000)
  t.ok(retried, 'the job failed and is being retried')
  t.same(await heldAtParent('outage'), [], 'nothing arrives while the parent is unreachable')
  await proxy.restore()
  await waitFor('the outage chain at the parent', async () => (await heldAtParent('outage')).length === 3)
  t.same(await heldAtParent('outage'), await childHashes('outage'))
})
