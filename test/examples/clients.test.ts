// The example clients of examples/ against a live node over loopback HTTP: each gets a token,
// queries POST /v1/verify/identity and saves the answer; its offline verifier must accept the
// saved answer and refuse tampered copies (a body byte, a proof hash, a signature byte).
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { ROOT, startNode } from '../helpers/harness.js'
import { samplePersons } from '../../dev/providers/population.js'

const run = promisify(execFile)
const PYTHON = '/usr/bin/python3'
const CLIENT = join(ROOT, 'examples/python/tongban_client.py')
const CA = join(ROOT, 'certs/ca.crt.pem')
const CURL = join(ROOT, 'examples/curl/verify-identity.sh')
const JAVA = join(ROOT, 'examples/java/TongbanClient.java')

const h = await startNode({ tag: 'clients' })
t.teardown(() => h.close())
await h.app.listen({ port: 0, host: '127.0.0.1' })
const baseUrl = `http://127.0.0.1:${(h.app.server.address() as { port: number }).port}`
const dir = mkdtempSync(join(tmpdir(), 'tongban-clients-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

interface Saved { status: number; evidence: string; body: string; nodeCertificate: string }
type Evidence = { path: string[]; sig: string; [k: string]: unknown }
const decode = (header: string): Evidence => JSON.parse(Buffer.from(header, 'base64url').toString('utf8'))
const encode = (e: Evidence) => Buffer.from(JSON.stringify(e)).toString('base64url')

/** Runs a verifier on an answer file: its exit status and output. */
async function verifyWith(cmd: string, args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout } = await run(cmd, args, { env: { ...process.env, ...env } })
    return { code: 0, out: stdout }
  } catch (err) {
    const e = err as { code: number; stdout: string }
    return { code: e.code, out: e.stdout }
  }
}

const tampered = (saved: Saved) => ({
  'a body byte changed': (() => {
    const body = Buffer.from(saved.body, 'base64')
    body[1] ^= 0x20
    return { answer: { ...saved, body: body.toString('base64') }, reason: 'body-digest-mismatch' }
  })(),
  'a proof hash changed': (() => {
    const e = decode(saved.evidence)
    // An empty path (a batch of one) gets a hash it cannot have.
    e.path = e.path.length ? [`${e.path[0][0] === '0' ? '1' : '0'}${e.path[0].slice(1)}`, ...e.path.slice(1)] : ['00'.repeat(32)]
    return { answer: { ...saved, evidence: encode(e) }, reason: 'bad-inclusion-proof' }
  })(),
  'a signature byte changed': (() => {
    const e = decode(saved.evidence)
    const sig = Buffer.from(e.sig, 'base64url')
    sig[10] ^= 1
    e.sig = sig.toString('base64url')
    return { answer: { ...saved, evidence: encode(e) }, reason: 'bad-signature' }
  })(),
})

// The walkthrough vector's answer has a non-empty inclusion path (leaf 4 of 5).
const W = JSON.parse(readFileSync(join(ROOT, 'test/vectors/evidence-walkthrough.json'), 'utf8'))
const walkthrough: Saved = { status: 200, evidence: W.response.evidence, body: Buffer.from(W.response.body).toString('base64'), nodeCertificate: W.nodeCertificate }
const walkthroughCa = join(dir, 'walkthrough-ca.pem')
writeFileSync(walkthroughCa, W.caCertificate)

/** A client's verifier, given a saved answer: it writes the answer in its own layout. */
type Verifier = (saved: Saved, ca: string) => Promise<{ code: number; out: string }>

async function checkVerifier(t: Test, name: string, verify: Verifier, saved: Saved, opts: { checksProof?: boolean } = {}) {
  for (const [label, answer, ca] of [['the live answer', saved, CA], ['the walkthrough vector', walkthrough, walkthroughCa]] as const) {
    const ok = await verify(answer, ca)
    t.equal(ok.code, 0, `${name} accepts ${label}: ${ok.out}`)
    t.match(ok.out, /^OK/)
    for (const [what, bad] of Object.entries(tampered(answer))) {
      if (bad.reason === 'bad-inclusion-proof' && opts.checksProof === false) continue
      const r = await verify(bad.answer, ca)
      t.not(r.code, 0, `${name} refuses ${label} with ${what}`)
      t.match(r.out, new RegExp(`FAILED: ${bad.reason}`), `and names ${bad.reason}`)
    }
  }
}

const pythonVerify: Verifier = async (saved, ca) => {
  const file = join(dir, 'python-check.json')
  writeFileSync(file, JSON.stringify(saved))
  return verifyWith(PYTHON, [CLIENT, 'verify', '--answer', file, '--ca', ca])
}

/** The curl example's layout: body.bin, evidence.txt, node.crt.pem in one directory. */
function writeCurlDir(saved: Saved): string {
  const d = mkdtempSync(join(dir, 'curl-'))
  writeFileSync(join(d, 'body.bin'), Buffer.from(saved.body, 'base64'))
  writeFileSync(join(d, 'evidence.txt'), saved.evidence)
  writeFileSync(join(d, 'node.crt.pem'), saved.nodeCertificate)
  return d
}
const readCurlDir = (d: string): Saved => ({
  status: 200,
  body: readFileSync(join(d, 'body.bin')).toString('base64'),
  evidence: readFileSync(join(d, 'evidence.txt'), 'utf8'),
  nodeCertificate: readFileSync(join(d, 'node.crt.pem'), 'utf8'),
})
const curlVerify: Verifier = (saved, ca) => verifyWith('bash', [CURL, 'verify', writeCurlDir(saved)], { CA: ca })

t.test('python: query, then verify offline', async (t) => {
  const [p] = samplePersons(1)
  const out = join(dir, 'python-answer.json')
  const q = await run(PYTHON, [CLIENT, 'query', '--base-url', baseUrl, '--audience', `${h.config.node.publicUrl}/v1/oauth/token`,
    '--client-id', 'jn-civil-affairs', '--key', join(ROOT, 'certs/clients/jn-civil-affairs.key.pem'),
    '--id-number', p.idNumber, '--name', p.name, '--purpose', 'SA-01', '--purpose-text', '低保审核', '--case-id', 'JN-2026-1000', '--out', out])
  t.match(q.stdout, /^200 \{"match":true\}/)
  const saved: Saved = JSON.parse(readFileSync(out, 'utf8'))
  t.equal(saved.status, 200)
  t.ok(saved.evidence)
  await checkVerifier(t, 'python', pythonVerify, saved)
})

t.test('curl: query, then body digest, signature and chain', async (t) => {
  const [, p] = samplePersons(2)
  const out = join(dir, 'curl-answer')
  const q = await run('bash', [CURL, 'query'], {
    env: {
      ...process.env, BASE_URL: baseUrl, AUDIENCE: `${h.config.node.publicUrl}/v1/oauth/token`, CLIENT_ID: 'jn-civil-affairs',
      KEY: join(ROOT, 'certs/clients/jn-civil-affairs.key.pem'), ID_NUMBER: p.idNumber, NAME: p.name,
      PURPOSE: 'SA-01;%E4%BD%8E%E4%BF%9D%E5%AE%A1%E6%A0%B8', CASE_ID: 'JN-2026-1001', CA, OUT: out,
    },
  })
  t.match(q.stdout, /^200 \{"match":true\}\nOK/)
  // The curl example does not fold the inclusion path (it says so): that tamper is not its to catch.
  await checkVerifier(t, 'curl', curlVerify, readCurlDir(out), { checksProof: false })
})

t.test('java: query (single-file run), then verify offline', async (t) => {
  const [, , p] = samplePersons(3)
  const out = join(dir, 'java-answer.json')
  const q = await run('java', [JAVA, 'query', baseUrl, `${h.config.node.publicUrl}/v1/oauth/token`, 'jn-civil-affairs',
    join(ROOT, 'certs/clients/jn-civil-affairs.key.pem'), p.idNumber, p.name, 'SA-01;%E4%BD%8E%E4%BF%9D%E5%AE%A1%E6%A0%B8', 'JN-2026-1002', out])
  t.match(q.stdout, /^200 \{"match":true\}/)
  const saved: Saved = JSON.parse(readFileSync(out, 'utf8'))
  t.equal(saved.status, 200)
  // The verifications run the class compiled once: the same source, without a compile per run.
  const classes = mkdtempSync(join(dir, 'java-'))
  await run('javac', ['-d', classes, JAVA])
  const javaVerify: Verifier = async (answer, ca) => {
    const file = join(dir, 'java-check.json')
    writeFileSync(file, JSON.stringify(answer))
    return verifyWith('java', ['-cp', classes, 'TongbanClient', 'verify', file, ca])
  }
  await checkVerifier(t, 'java', javaVerify, saved)
})
