// Integrity of the audit log, online (GET /v1/audit/integrity) and offline (export bundle +
// verifyBundle / `tongban audit verify`): an untouched log is reported ok, and each kind of
// tampering by someone with DBA rights (append-only triggers switched off) is detected by
// both. Each case tampers with a sealed chain of its own, so the cases do not interfere.
import t, { type Test } from 'tap'
import { createWriteStream, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { startNode, context, ROOT } from '../helpers/harness.js'
import { person } from '../../dev/providers/population.js'
import { createSigner } from '../../src/pki/suites.js'
import { sealSynthetic, syntheticRecord } from '../../dev/synthetic-audit.js'
import { exportBundle, verifyBundle } from '../../src/auditor/bundle.js'

const h = await startNode({ tag: 'audint' })
t.teardown(() => h.close())
const dir = mkdtempSync(join(tmpdir(), 'tongban-audit-'))
const { identity } = h.app
const node = h.config.node.id
const signer = { ...createSigner('RS256', identity.keyPem), kid: identity.kid }
const auditor = await h.token('js-audit')
const consumer = await h.token('jn-civil-affairs')

const audit = (url: string, token = auditor) => h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } })

/** A chain of `batches` sealed batches of `per` records each, through the gateway's writeBatch. */
async function chain(name: string, batches = 5, per = 4) {
  const base = Date.now() - 60_000
  for (let b = 0; b < batches; b++) {
    const records = Array.from({ length: per }, (_, i) => syntheticRecord(node, {
      time: new Date(base + b * 1000 + i),
      caseId: `CASE-${name}-${b}-${i}`,
      subject: h.app.hashSubject(person(b * per + i).idNumber),
      ...(i === 1 ? { decision: 'denied' as const, reason: 'POLICY_NO_GRANT' } : {}),
    }))
    await sealSynthetic(h.app.db, { chain: name, node, signer, records })
  }
  return name
}

/** As a DBA would: the append-only triggers switched off for this transaction only. */
const tamper = (sql: string) => h.query(`BEGIN; SET LOCAL session_replication_role = replica; ${sql}; COMMIT;`)

async function online(chainName: string, extra = '') {
  const res = await audit(`/v1/audit/integrity?all=true&chain=${encodeURIComponent(chainName)}${extra}`)
  if (res.statusCode !== 200) throw new Error(`integrity: ${res.statusCode} ${res.body}`)
  return res.json()
}

async function offline(chainName: string, heads: string[] = []) {
  const file = join(dir, `${chainName}.tongban-audit.jsonl.gz`)
  await exportBundle(h.app.db, createWriteStream(file), { node, chain: chainName, certificates: [identity.certPem], caChain: [identity.caPem] })
  return verifyBundle(file, { caPem: identity.caPem, heads })
}

async function bothDetect(t: Test, chainName: string, kind: string, opts: { heads?: string[]; onlineExtra?: string } = {}) {
  const on = await online(chainName, opts.onlineExtra)
  t.equal(on.ok, false, 'the endpoint reports the log as not intact')
  t.equal(on.firstFailure?.kind, kind, `endpoint: ${JSON.stringify(on.firstFailure)}`)
  t.equal(on.firstFailure?.chain, chainName)
  const off = await offline(chainName, opts.heads)
  t.equal(off.ok, false, 'the offline verifier reports the bundle as not intact')
  t.equal(off.firstFailure?.kind, kind, `offline: ${JSON.stringify(off.firstFailure)}`)
  return { on, off }
}

// Some real traffic on the node's own chain.
for (let i = 0; i < 3; i++) {
  const p = person(i)
  const res = await h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${consumer}`, ...context() }, payload: { idNumber: p.idNumber, name: p.name } })
  if (res.statusCode !== 200) throw new Error(`verify: ${res.statusCode} ${res.body}`)
}

t.test('an untouched log: ok online and offline', async (t) => {
  const clean = await chain('clean')
  const on = await online(clean)
  t.equal(on.ok, true, JSON.stringify(on.firstFailure))
  t.equal(on.records, 20)
  t.equal(on.checkpoints, 5)
  t.same(on.chains.map((c: any) => [c.chain, c.firstSeq, c.lastSeq]), [['clean', 1, 5]])
  const off = await offline(clean)
  t.equal(off.ok, true, JSON.stringify(off.firstFailure))
  t.equal(off.records, 20)
  t.equal(off.header?.chains[0].head, on.chains[0].head, 'the bundle names the same head')

  // The node's own chain, with real traffic, over a time range.
  const own = await audit(`/v1/audit/integrity?from=${new Date(Date.now() - 3600_000).toISOString()}&chain=${h.config.replicaId}`)
  t.equal(own.statusCode, 200)
  t.equal(own.json().ok, true, JSON.stringify(own.json().firstFailure))
  t.ok(own.json().records >= 3)
  // The node's own chain is covered by its high-water mark (src/audit/high-water.ts); a
  // chain nobody holds a head of is named.
  t.notMatch(own.json().warnings.join(' '), new RegExp(`no anchor covers chain ${h.config.replicaId}`), 'the high-water mark covers the own chain')
  t.ok(own.json().anchorsChecked >= 1)
  t.match(on.warnings.join(' '), /no anchor covers chain clean/, 'says that a cut tail is not visible without an anchor')
})

t.test('an edited field (record changed, leaf left)', async (t) => {
  const c = await chain('edit-field')
  await tamper(`UPDATE audit_records SET record = jsonb_set(record, '{purpose}', '"HS-02"'), purpose = 'HS-02' WHERE chain = '${c}' AND seq = 3 AND idx = 2`)
  const { on } = await bothDetect(t, c, 'leaf-mismatch')
  t.equal(on.firstFailure.seq, 3)
  t.equal(on.firstFailure.idx, 2)
})

t.test('an edited field with the leaf recomputed: the signed root no longer matches', async (t) => {
  const c = await chain('edit-leaf')
  const [row] = await h.query(`SELECT record FROM audit_records WHERE chain = $1 AND seq = 2 AND idx = 0`, [c])
  const edited = { ...row.record, decision: 'allowed', caseId: 'CASE-FORGED' }
  const { leafHash } = await import('../../src/evidence/merkle.js')
  const { jcs } = await import('../../src/evidence/jcs.js')
  const leaf = leafHash(jcs(edited)).toString('hex')
  await tamper(`UPDATE audit_records SET record = '${JSON.stringify(edited)}'::jsonb, case_id = 'CASE-FORGED', leaf = '${leaf}' WHERE chain = '${c}' AND seq = 2 AND idx = 0`)
  const { on } = await bothDetect(t, c, 'root-mismatch')
  t.equal(on.firstFailure.seq, 2)
})

t.test('a deleted record', async (t) => {
  const c = await chain('del-record')
  await tamper(`DELETE FROM audit_records WHERE chain = '${c}' AND seq = 4 AND idx = 1`)
  const { on } = await bothDetect(t, c, 'record-missing')
  t.equal(on.firstFailure.seq, 4)
  t.equal(on.firstFailure.idx, 1)
})

t.test('a deleted batch (records and checkpoint)', async (t) => {
  const c = await chain('del-batch')
  await tamper(`DELETE FROM audit_records WHERE chain = '${c}' AND seq = 3; DELETE FROM audit_checkpoints WHERE chain = '${c}' AND seq = 3`)
  const { on } = await bothDetect(t, c, 'chain-gap')
  t.equal(on.firstFailure.seq, 3)
})

t.test('reordered records', async (t) => {
  const c = await chain('reorder')
  await tamper(`UPDATE audit_records SET idx = -1 WHERE chain = '${c}' AND seq = 2 AND idx = 0;
    UPDATE audit_records SET idx = 0 WHERE chain = '${c}' AND seq = 2 AND idx = 3;
    UPDATE audit_records SET idx = 3 WHERE chain = '${c}' AND seq = 2 AND idx = -1`)
  const { on } = await bothDetect(t, c, 'root-mismatch')
  t.equal(on.firstFailure.seq, 2)
})

t.test('a replaced signature', async (t) => {
  const c = await chain('re-sign')
  const [other] = await h.query(`SELECT sig FROM audit_checkpoints WHERE chain = $1 AND seq = 1`, [c])
  await tamper(`UPDATE audit_checkpoints SET sig = '${other.sig}', checkpoint = jsonb_set(checkpoint, '{sig}', '"${other.sig}"') WHERE chain = '${c}' AND seq = 4`)
  const { on } = await bothDetect(t, c, 'bad-signature')
  t.equal(on.firstFailure.seq, 4)
})

t.test('a truncated tail: detected against an anchored or exported head', async (t) => {
  const c = await chain('truncate')
  const heads = await audit('/v1/audit/heads')
  const head = heads.json().heads.find((x: any) => x.chain === c)
  t.equal(head.seq, 5)
  const before = await offline(c, [head.hash])
  t.equal(before.ok, true, 'the exported head is in an untouched bundle')

  const anchored = await h.app.inject({ method: 'POST', url: '/v1/audit/anchors', headers: { authorization: `Bearer ${auditor}` } })
  t.equal(anchored.statusCode, 201)
  t.ok(anchored.json().anchors.some((a: any) => a.chain === c && a.hash === head.hash))

  await tamper(`DELETE FROM audit_records WHERE chain = '${c}' AND seq >= 4; DELETE FROM audit_checkpoints WHERE chain = '${c}' AND seq >= 4`)
  // The stored anchor finds it; so does the head the auditor kept (?head=), and offline.
  const { on } = await bothDetect(t, c, 'truncated', { heads: [head.hash] })
  t.match(on.firstFailure.detail, /not in the log/)
  const byHead = await online(c, `&head=${head.hash}`)
  t.equal(byHead.ok, false)
  t.ok(byHead.failures.some((f: any) => f.kind === 'truncated'))
  // Without any head, a cut tail looks like a shorter log: that is what anchors are for.
  const off = await offline(c)
  t.equal(off.ok, true, 'without a head the remaining prefix verifies (and says so)')
})

t.test('a search column changed to hide a record from a subject search', async (t) => {
  const c = await chain('column')
  await tamper(`UPDATE audit_records SET subject = 'hmac-sha256:${'0'.repeat(64)}' WHERE chain = '${c}' AND seq = 5 AND idx = 0`)
  const on = await online(c)
  t.equal(on.ok, false)
  t.equal(on.firstFailure.kind, 'column-mismatch')
  t.match(on.firstFailure.detail, /subject/)
  // The hashed record itself is intact: the bundle (made from the records) verifies.
  const off = await offline(c)
  t.equal(off.ok, true)
})

t.test('a forged record slipped into the table without a checkpoint', async (t) => {
  const c = await chain('orphan', 2, 2)
  const rec = syntheticRecord(node, { time: new Date(), caseId: 'FORGED' })
  await tamper(`INSERT INTO audit_records (chain, seq, idx, time, request_id, decision, leaf, record)
    VALUES ('${c}', 9, 0, '${rec.time}', '${rec.requestId}', 'allowed', '${'a'.repeat(64)}', '${JSON.stringify(rec)}'::jsonb)`)
  const on = await online(c)
  t.equal(on.ok, false)
  t.equal(on.firstFailure.kind, 'orphan-record')
})

t.test('export → verify round trip with the CLI, and a consumer\'s evidence matched to its record', async (t) => {
  const p = person(7)
  const res = await h.app.inject({ method: 'POST', url: '/v1/verify/identity', headers: { authorization: `Bearer ${consumer}`, ...context() }, payload: { idNumber: p.idNumber, name: p.name } })
  t.equal(res.statusCode, 200)
  writeFileSync(join(dir, 'body.json'), res.body)
  writeFileSync(join(dir, 'evidence.txt'), res.headers['tongban-evidence'] as string)
  writeFileSync(join(dir, 'other-body.json'), '{"match":false}')

  const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'audit', ...args], {
    cwd: ROOT, env: { ...process.env, ...h.env }, encoding: 'utf8', timeout: 60_000,
  })
  const bundle = join(dir, 'cli.tongban-audit.jsonl.gz')
  const from = new Date(Date.now() - 3600_000).toISOString()
  const to = new Date(Date.now() + 60_000).toISOString()
  const exp = cli('export', '--from', from, '--to', to, '--chain', h.config.replicaId, '--out', bundle)
  t.equal(exp.status, 0, exp.stderr)
  t.match(exp.stdout, /wrote .*records/)

  const ca = join(ROOT, 'certs/ca.crt.pem')
  const ok = cli('verify', bundle, '--ca', ca, '--evidence', `@${join(dir, 'evidence.txt')}`, '--body', join(dir, 'body.json'))
  t.equal(ok.status, 0, ok.stdout + ok.stderr)
  t.match(ok.stdout, /^intact: /)
  t.match(ok.stdout, /evidence .*: matches record/)

  const bad = cli('verify', bundle, '--ca', ca, '--evidence', `@${join(dir, 'evidence.txt')}`, '--body', join(dir, 'other-body.json'), '--json')
  t.equal(bad.status, 1)
  const out = JSON.parse(bad.stdout)
  t.equal(out.evidence[0].ok, false)
  t.match(out.evidence[0].reason, /body-digest-mismatch/)

  // Another CA is not a trust anchor for this node's certificate.
  const otherCa = join(dir, 'other-ca.pem')
  const forge = (await import('node-forge')).default
  const keys = forge.pki.rsa.generateKeyPair(1024)
  const cert = forge.pki.createCertificate()
  cert.publicKey = keys.publicKey
  cert.serialNumber = '01'
  cert.validity.notBefore = new Date(Date.now() - 86400_000)
  cert.validity.notAfter = new Date(Date.now() + 86400_000)
  cert.setSubject([{ name: 'commonName', value: 'Other CA' }])
  cert.setIssuer([{ name: 'commonName', value: 'Other CA' }])
  cert.setExtensions([{ name: 'basicConstraints', cA: true }])
  cert.sign(keys.privateKey, forge.md.sha256.create())
  writeFileSync(otherCa, forge.pki.certificateToPem(cert))
  const untrusted = cli('verify', bundle, '--ca', otherCa, '--json')
  t.equal(untrusted.status, 1)
  t.equal(JSON.parse(untrusted.stdout).firstFailure.kind, 'untrusted-certificate')

  // A bundle cut short (the last lines lost) is detected even without a head.
  const { gunzipSync } = await import('node:zlib')
  const { readFileSync } = await import('node:fs')
  const lines = gunzipSync(readFileSync(bundle)).toString('utf8').trimEnd().split('\n')
  const cut = join(dir, 'cut.jsonl')
  writeFileSync(cut, lines.slice(0, -3).join('\n') + '\n')
  const r = await verifyBundle(cut, { caPem: identity.caPem })
  t.equal(r.ok, false)
  t.ok(r.failures.some((f) => f.kind === 'bundle-malformed' || f.kind === 'truncated'))

  // The HTTP export is a bundle too, and verifies.
  const http = await audit(`/v1/audit/export?from=${from}&to=${to}&chain=${h.config.replicaId}`)
  t.equal(http.statusCode, 200)
  t.ok(http.headers['tongban-evidence'], 'the export itself is sealed')
  const httpFile = join(dir, 'http.jsonl')
  writeFileSync(httpFile, http.body)
  const hv = await verifyBundle(httpFile, { caPem: identity.caPem })
  t.equal(hv.ok, true, JSON.stringify(hv.firstFailure))
})

t.test('auditor routes are for auditors only', async (t) => {
  for (const url of ['/v1/audit/integrity', '/v1/audit/heads', '/v1/audit/checkpoints', '/v1/audit/export?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z']) {
    const res = await audit(url, consumer)
    t.equal(res.statusCode, 403, url)
    t.equal(res.json().code, 'AUTH_ROLE_REQUIRED')
    const anon = await h.app.inject({ method: 'GET', url })
    t.equal(anon.statusCode, 401, url)
  }
  const cps = await audit('/v1/audit/checkpoints?chain=clean&limit=2')
  t.equal(cps.statusCode, 200)
  t.equal(cps.json().items.length, 2)
  t.equal(cps.json().more, true)
})
