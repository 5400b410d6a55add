// `npm run bench:sm2 [-- --rounds 5 --ms 400 --before REV]`: what SM2 costs, in one process.
//
// 1. Per operation: sm-crypto 0.3 (jsbn, the gateway's library before; the baseline) against
//    sm-crypto-v2 (@noble/curves, native BigInt) verifying with the public key as hex (plain)
//    and precomputed (window 4, as src/pki/sm2.ts holds keys; window 8, the library's
//    default), and signing; then src/pki/sm2.ts itself (sm2Verify with its key cache).
// 2. What the gateway pays on its request thread, in process: verifying an SM2SM3 client
//    assertion (src/auth/sm2-jws.ts, as the token endpoint calls it) and a sealed licence
//    (src/licences/verifier.ts, as POST /v1/licences/verify calls it), both in steady state
//    (the same client key and seal certificate again and again). With --before REV the same
//    two run with the code of REV too (e.g. the commit before the move to sm-crypto-v2),
//    extracted with `git archive` into a temporary directory: a before/after in the same run.
// 3. With --gateway, end to end through Fastify (app.inject; PostgreSQL and Redis real, as
//    scripts/services.mjs starts them): POST /v1/oauth/token with an SM2SM3 assertion at an
//    SM2 node against an RS256 one at an RSA node (the baseline), and POST /v1/licences/verify
//    (a presented licence of the dev library) against POST /v1/verify/identity (a
//    verification without a seal, the baseline), both at the RSA node. Assertions are signed
//    before the clock runs, each with its own jti.
//
// Targets alternate within each round; a figure is the median over rounds of the mean time
// per operation (ms). Ratios are against the baseline's figure of the same run.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { randomBytes, randomUUID } from 'node:crypto'
import { parseArgs } from 'node:util'
import { sm2 as v2 } from 'sm-crypto-v2'
import { ROOT, median } from './lib.js'
import { sm2KeyPair, sm2Sign, sm2Verify } from '../src/pki/sm2.js'

const { values: opt } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    ms: { type: 'string', default: '400' },
    before: { type: 'string' },
    gateway: { type: 'boolean', default: false },
    requests: { type: 'string', default: '100' },
  },
})
const ROUNDS = Number(opt.rounds)
const MS = Number(opt.ms)

interface OldSm2 {
  doSignature(msg: number[], key: string, o: { hash: true; publicKey: string }): string
  doVerifySignature(msg: number[], sig: string, key: string, o: { hash: true }): boolean
}
const old = (createRequire(import.meta.url)('sm-crypto') as { sm2: OldSm2 }).sm2

type Op = () => unknown
/** ms per call: as many calls as fit in MS, after one warm-up call. */
function timeOp(op: Op): number {
  op()
  let n = 0
  const t0 = performance.now()
  let t = t0
  while (t - t0 < MS) {
    op()
    n++
    t = performance.now()
  }
  return (t - t0) / n
}

/** Median ms per call of each target, alternating targets within each round. */
function race(targets: Record<string, Op>): Record<string, number> {
  const per: Record<string, number[]> = Object.fromEntries(Object.keys(targets).map((k) => [k, []]))
  for (let r = 0; r < ROUNDS; r++) for (const [k, op] of Object.entries(targets)) per[k].push(timeOp(op))
  return Object.fromEntries(Object.entries(per).map(([k, xs]) => [k, median(xs)]))
}

const rows: { operation: string; implementation: string; 'ms/op': number; 'ops/s': number; 'speed vs baseline': string }[] = []
function report(operation: string, figures: Record<string, number>, baseline: string) {
  for (const [implementation, ms] of Object.entries(figures)) {
    const ratio = figures[baseline] / ms
    rows.push({
      operation,
      implementation,
      'ms/op': Number(ms.toFixed(3)),
      'ops/s': Math.round(1000 / ms),
      'speed vs baseline': implementation === baseline ? 'baseline' : `${ratio.toFixed(ratio < 10 ? 2 : 1)}×`,
    })
  }
}

// --- 1. per operation
const { privateKey, publicKey } = sm2KeyPair()
const msg = randomBytes(300) // about a JWS signing input or a seal's TBS
const msgArray = Array.from(msg)
const sig = sm2Sign(msg, privateKey, publicKey)
const w4 = v2.precomputePublicKey(publicKey, 4)
const w8 = v2.precomputePublicKey(publicKey, 8)
sm2Verify(msg, sig, publicKey) // twice: src/pki/sm2.ts precomputes on the second sight
for (const ok of [old.doVerifySignature(msgArray, sig, publicKey, { hash: true }), v2.doVerifySignature(msg, sig, w4, { hash: true }), sm2Verify(msg, sig, publicKey)]) {
  if (!ok) throw new Error('bench: a signature did not verify')
}

console.log(`[bench:sm2] ${ROUNDS} rounds, ${MS} ms per target and round`)
report('verify', race({
  'sm-crypto 0.3': () => old.doVerifySignature(msgArray, sig, publicKey, { hash: true }),
  'sm-crypto-v2, key as hex': () => v2.doVerifySignature(msg, sig, publicKey, { hash: true }),
  'sm-crypto-v2, precomputed w4': () => v2.doVerifySignature(msg, sig, w4, { hash: true }),
  'sm-crypto-v2, precomputed w8': () => v2.doVerifySignature(msg, sig, w8, { hash: true }),
  'src/pki/sm2.ts sm2Verify': () => sm2Verify(msg, sig, publicKey),
}), 'sm-crypto 0.3')
report('sign', race({
  'sm-crypto 0.3 (its own nonce)': () => old.doSignature(msgArray, privateKey, { hash: true, publicKey }),
  'src/pki/sm2.ts sm2Sign': () => sm2Sign(msg, privateKey, publicKey),
}), 'sm-crypto 0.3 (its own nonce)')
report('precompute a key', race({
  'sm-crypto-v2, key as hex (one verify)': () => v2.doVerifySignature(msg, sig, publicKey, { hash: true }),
  'precompute w4': () => v2.precomputePublicKey(publicKey, 4),
  'precompute w8': () => v2.precomputePublicKey(publicKey, 8),
}), 'sm-crypto-v2, key as hex (one verify)')

// --- 2. what the gateway pays: the code of this checkout, and of --before REV.
async function gatewayOps(src: string): Promise<{ assertion: Op; licence: Op }> {
  const { sm2JwtVerifier } = await import(join(src, 'auth/sm2-jws.ts'))
  const { verifyLicence, parseTrustAnchors } = await import(join(src, 'licences/verifier.ts'))
  const { sealLicence, LICENCE_FORMAT } = await import(join(src, 'licences/document.ts'))
  const x509 = await import(join(src, 'pki/sm2-x509.ts'))

  const now = Date.now()
  const header = Buffer.from(JSON.stringify({ alg: 'SM2SM3', typ: 'JWT' })).toString('base64url')
  const claims = { iss: 'jn-civil-affairs', sub: 'jn-civil-affairs', aud: 'https://gateway/v1/oauth/token', iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + 60, jti: 'bench' }
  const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`
  const token = `${input}.${Buffer.from(sm2Sign(Buffer.from(input), privateKey, publicKey), 'hex').toString('base64url')}`
  const verifyAssertion = sm2JwtVerifier({ publicKeyHex: publicKey, allowedIss: claims.iss, allowedSub: claims.sub, allowedAud: [claims.aud], clockTolerance: 30_000, now: () => now })

  const caKey = x509.generateSm2KeyPair()
  const caPem = x509.issueSm2Certificate({ subject: { C: 'CN', CN: 'bench seal CA' }, publicKeyHex: caKey.publicKeyHex, signerPrivateKeyHex: caKey.privateKeyHex, notBefore: new Date('2000-01-01'), notAfter: new Date('2040-01-01'), isCA: true })
  const sealKey = x509.generateSm2KeyPair()
  const sealPem = x509.issueSm2Certificate({ subject: { C: 'CN', CN: 'bench seal' }, publicKeyHex: sealKey.publicKeyHex, issuer: { certPem: caPem, privateKeyHex: caKey.privateKeyHex }, notBefore: new Date('2010-01-01'), notAfter: new Date('2035-01-01'), keyUsage: ['digitalSignature', 'nonRepudiation'] })
  const anchors = parseTrustAnchors(caPem)
  const doc = sealLicence({
    format: LICENCE_FORMAT, typeCode: 'YYZZ', typeName: '营业执照', number: 'BENCH-1',
    holder: { name: '测试企业', idType: 'GB32100', id: '91320000MA0000000X' },
    issuer: { name: '测试市场监督管理局', creditCode: '11320000MB00001306', region: '320000' },
    issuedOn: '2020-06-01', validFrom: '2020-06-01', validUntil: null, surface: { 名称: '测试企业' },
  }, { sealId: 'BENCH-SEAL', privateKeyHex: sealKey.privateKeyHex, certPem: sealPem })
  const library = { found: true, status: 'current', holderMatches: true, sealCertificate: { serial: '', status: 'good', revokedOn: null } }
  const licence = () => verifyLicence({ document: doc, licenceNumber: doc.number, holderId: doc.holder.id, library, anchors, today: '2026-12-01' })
  verifyAssertion(token)
  if (!licence().checks.find((c: { check: string; result: string }) => c.check === 'seal' && c.result === 'pass')) throw new Error('bench: the licence seal did not verify')
  return { assertion: () => verifyAssertion(token), licence }
}

const here = await gatewayOps(join(ROOT, 'src'))
let before: Awaited<ReturnType<typeof gatewayOps>> | undefined
let scratch: string | undefined
if (opt.before) {
  scratch = mkdtempSync(join(tmpdir(), 'bench-sm2-'))
  execFileSync('sh', ['-c', `git -C "${ROOT}" archive "${opt.before}" src | tar -x -C "${scratch}"`])
  symlinkSync(join(ROOT, 'node_modules'), join(scratch, 'node_modules'))
  before = await gatewayOps(join(scratch, 'src'))
}
try {
  for (const op of ['assertion', 'licence'] as const) {
    const name = op === 'assertion' ? 'SM2SM3 client assertion (sm2-jws.ts)' : 'licence verification (verifier.ts)'
    const targets: Record<string, Op> = before ? { [`before (${opt.before})`]: before[op] } : {}
    targets['this checkout'] = here[op]
    report(name, race(targets), before ? `before (${opt.before})` : 'this checkout')
  }
} finally {
  if (scratch) rmSync(scratch, { recursive: true, force: true })
}

// --- 3. end to end (--gateway)
if (opt.gateway) {
  const services = spawnSync(process.execPath, [join(ROOT, 'scripts/services.mjs')], { stdio: 'inherit' })
  if (services.status !== 0) process.exit(1)
  const { startNode, context } = await import('../test/helpers/harness.js')
  const { signJwt, CLIENT_ASSERTION_TYPE } = await import('../packages/client/src/assertion.js')
  const { person } = await import('../dev/providers/population.js')
  const { suiteEnv } = await import('../scripts/gateway-flags.mjs')
  const REQUESTS = Number(opt.requests)
  const env = { TONGBAN_RATE_LIMIT: '0' }
  const rsa = await startNode({ tag: 'benchsm2rsa', env })
  const gm = await startNode({ tag: 'benchsm2gm', env: { ...env, ...suiteEnv('sm2') } })
  try {
    const client = 'jn-civil-affairs'
    const keyOf = (dir: string) => readFileSync(join(ROOT, 'certs', dir, `${client}.key.pem`), 'utf8')
    const assertions = (h: typeof rsa, keyPem: string, n: number) => {
      const aud = `${h.config.node.publicUrl}/v1/oauth/token`
      const iat = Math.floor(Date.now() / 1000)
      return Array.from({ length: n }, () => signJwt({ iss: client, sub: client, aud, jti: randomUUID(), iat, exp: iat + 300 }, keyPem))
    }
    const tokenOnce = (h: typeof rsa, list: string[]) => async () => {
      const res = await h.app.inject({ method: 'POST', url: '/v1/oauth/token', payload: { grant_type: 'client_credentials', client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: list.pop() } })
      if (res.statusCode !== 200) throw new Error(`bench: token ${res.statusCode} ${res.body}`)
    }
    const token = await rsa.token(client)
    const p0 = person(0)
    const list = await rsa.licences.inject({ method: 'POST', url: '/v1/licences/list', payload: { holderId: p0.idNumber } })
    const licence = list.json().licences.find((l: { status: string }) => l.status === 'current').licence
    const post = (url: string, payload: object) => async () => {
      const res = await rsa.app.inject({ method: 'POST', url, headers: { authorization: `Bearer ${token}`, ...context() }, payload })
      if (res.statusCode !== 200 || (url.includes('licences') && !res.json().valid)) throw new Error(`bench: ${url} ${res.statusCode} ${res.body}`)
    }
    const targets: Record<string, () => Promise<unknown>> = {
      'token, RS256 assertion (RSA node)': tokenOnce(rsa, assertions(rsa, keyOf('clients'), REQUESTS * ROUNDS + 1)),
      'token, SM2SM3 assertion (SM2 node)': tokenOnce(gm, assertions(gm, keyOf('sm2/clients'), REQUESTS * ROUNDS + 1)),
      'POST /v1/verify/identity': post('/v1/verify/identity', { idNumber: p0.idNumber, name: p0.name }),
      'POST /v1/licences/verify': post('/v1/licences/verify', { licence, holderId: p0.idNumber }),
    }
    for (const op of Object.values(targets)) await op() // warm: keys seen, chains remembered
    const per: Record<string, number[]> = Object.fromEntries(Object.keys(targets).map((k) => [k, []]))
    for (let r = 0; r < ROUNDS; r++) {
      for (const [k, op] of Object.entries(targets)) {
        const t0 = performance.now()
        for (let i = 0; i < REQUESTS; i++) await op()
        per[k].push((performance.now() - t0) / REQUESTS)
      }
    }
    const m = Object.fromEntries(Object.entries(per).map(([k, xs]) => [k, median(xs)]))
    const pick = (...keys: string[]) => Object.fromEntries(keys.map((k) => [k, m[k]]))
    report('end to end: token', pick('token, RS256 assertion (RSA node)', 'token, SM2SM3 assertion (SM2 node)'), 'token, RS256 assertion (RSA node)')
    report('end to end: verification', pick('POST /v1/verify/identity', 'POST /v1/licences/verify'), 'POST /v1/verify/identity')
  } finally {
    await gm.close()
    await rsa.close()
  }
}
console.table(rows)
