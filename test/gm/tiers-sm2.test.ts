// Tiers and SM2 (docs/gm.md): a parent keeps an SM2 child's v2 checkpoints (SM2-signed,
// SM3-chained) after checking them as it checks RSA ones (acceptCheckpoints, on a real
// PostgreSQL schema): the certificate names the child and chains to the SM2 CA, the
// signature verifies, each prev is the SM3 hash of the one before. Forged signatures, a
// certificate of another tree and a broken SM3 chain are refused with their codes; an SM2
// node's relay legs carry evidence v2 the relay's digest check understands.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createHash } from 'node:crypto'
import { startNode, ROOT } from '../helpers/harness.js'
import { acceptCheckpoints, type PushedCheckpoint } from '../../src/tiers/checkpoint-parent.js'
import { createSigner } from '../../src/pki/suites.js'
import { certThumbprint } from '../../src/pki/thumbprint.js'
import { jcs } from '../../src/evidence/jcs.js'
import { checkpointHash, digest, type Checkpoint } from '../../src/evidence/evidence.js'
import { generateSm2KeyPair, issueSm2Certificate, sm2PrivateKeyPem } from '../../src/pki/sm2-x509.js'
import { sm2PrivateKeyHexOf } from '../../src/pki/suites.js'
import { GENESIS } from '../../src/audit/store.js'
import { Problem } from '../../src/problems/problem.js'

const NJ = '320100'
const SM2 = join(ROOT, 'certs/sm2')
const sm2Ca = readFileSync(join(SM2, 'ca.crt.pem'), 'utf8')
const rsaCa = readFileSync(join(ROOT, 'certs/ca.crt.pem'), 'utf8')
const caKey = sm2PrivateKeyHexOf(readFileSync(join(SM2, 'ca.key.pem'), 'utf8'))

// An SM2 signing certificate of the child, issued here by the dev SM2 CA.
function childCert(cn = `tongban-node-${NJ}`, issuer = { certPem: sm2Ca, privateKeyHex: caKey }) {
  const k = generateSm2KeyPair()
  const certPem = issueSm2Certificate({
    subject: { CN: cn, serialNumber: NJ }, publicKeyHex: k.publicKeyHex, issuer,
    notBefore: new Date(Date.now() - 3600_000), notAfter: new Date(Date.now() + 86400_000), keyUsage: ['digitalSignature'],
  })
  return { certPem, keyPem: sm2PrivateKeyPem(k.privateKeyHex, k.publicKeyHex) }
}

function chain(name: string, n: number, who = childCert()): { certPem: string; list: PushedCheckpoint[] } {
  const signer = createSigner('SM2-SM3', who.keyPem)
  const kid = certThumbprint(who.certPem)
  const list: PushedCheckpoint[] = []
  let prev = GENESIS
  for (let seq = 1; seq <= n; seq++) {
    const checkpoint: Checkpoint = { v: 2, node: NJ, chain: name, seq, root: createHash('sm3').update(`root ${seq}`).digest('hex'), size: 1, prev, time: new Date().toISOString(), alg: 'SM2-SM3', kid }
    list.push({ checkpoint, sig: signer.sign(Buffer.from(jcs(checkpoint))).toString('base64url') })
    prev = checkpointHash(checkpoint)
  }
  return { certPem: who.certPem, list }
}

const parent = await startNode({ tag: 'gm_parent' })
t.teardown(() => parent.close())
const log = { error: () => {} }
const accept = (certificates: string[], checkpoints: PushedCheckpoint[], caPem = `${rsaCa}\n${sm2Ca}`) =>
  acceptCheckpoints(parent.app.db, { child: NJ, push: { v: 1, node: NJ, certificates, checkpoints }, caPem, log })
const code = async (p: Promise<unknown>) => {
  try {
    await p
    return 'accepted'
  } catch (e) {
    if (e instanceof Problem) return e.code
    throw e
  }
}

t.test('v2 checkpoints of an SM2 child: kept, with their SM3 hashes', async (t) => {
  const c = chain('nj-sm2-r1', 3)
  const r = await accept([c.certPem], c.list)
  t.equal(r.accepted, 3)
  const held = await parent.query('SELECT seq, hash FROM tiers_child_checkpoints WHERE node = $1 AND chain = $2 ORDER BY seq', [NJ, 'nj-sm2-r1'])
  t.same(held.map((h) => h.hash), c.list.map((p) => createHash('sm3').update(jcs(p.checkpoint)).digest('hex')), 'SM3 of JCS(checkpoint)')
  t.equal((await accept([c.certPem], c.list)).duplicates, 3, 'the same again: duplicates')
})

t.test('refused: forged SM2 signature, another tree, broken SM3 chain, foreign CA', async (t) => {
  const c = chain('nj-sm2-r2', 2)
  const forged = c.list.map((p, i) => (i === 1 ? { ...p, sig: Buffer.from(Buffer.from(p.sig, 'base64url').map((b, j) => (j === 5 ? b ^ 1 : b))).toString('base64url') } : p))
  t.equal(await code(accept([c.certPem], forged)), 'CHECKPOINT_BAD_SIGNATURE')
  // The parent trusts only the RSA CA: the SM2 certificate does not chain.
  t.equal(await code(accept([c.certPem], c.list, rsaCa)), 'CHECKPOINT_UNTRUSTED')
  // Issued by an SM2 CA the parent does not know.
  const rogue = generateSm2KeyPair()
  const rogueCa = issueSm2Certificate({ subject: { CN: 'rogue SM2 CA' }, publicKeyHex: rogue.publicKeyHex, signerPrivateKeyHex: rogue.privateKeyHex, notBefore: new Date(Date.now() - 3600_000), notAfter: new Date(Date.now() + 86400_000), isCA: true })
  const r = chain('nj-sm2-r3', 1, childCert(`tongban-node-${NJ}`, { certPem: rogueCa, privateKeyHex: rogue.privateKeyHex }))
  t.equal(await code(accept([r.certPem], r.list)), 'CHECKPOINT_UNTRUSTED')
  // A certificate of another node.
  const other = chain('nj-sm2-r4', 1, childCert('tongban-node-320115'))
  t.equal(await code(accept([other.certPem], other.list)), 'CHECKPOINT_NODE_MISMATCH')
  // prev as SHA-256 would have it: not the SM3 chain.
  const who = childCert()
  const c2 = chain('nj-sm2-r5', 1, who)
  const signer = createSigner('SM2-SM3', who.keyPem)
  const second: Checkpoint = { ...c2.list[0].checkpoint, seq: 2, prev: createHash('sha256').update(jcs(c2.list[0].checkpoint)).digest('hex') }
  const broken = [...c2.list, { checkpoint: second, sig: signer.sign(Buffer.from(jcs(second))).toString('base64url') }]
  t.equal(await code(accept([who.certPem], broken)), 'CHECKPOINT_CHAIN_BROKEN')
})

t.test('the digest a relay compares with a hop answer is of the evidence version', async (t) => {
  const body = '{"match":true}'
  t.equal(digest(body, 2), `sm3:${createHash('sm3').update(body).digest('hex')}`)
  t.equal(digest(body, 1), `sha256:${createHash('sha256').update(body).digest('hex')}`)
  t.not(digest(body, 2).slice(4), digest(body, 1).slice(7))
})
