// Signed assertions between nodes (docs/tiers.md: "the originating node's signed assertion
// carries the consumer's identity across hops").
//
// Header `Tongban-Assertion` holds a chain of compact JWS (RS256), separated by ", ":
//   [0] the consumer assertion, signed by the originating node: who the consumer is (system,
//       department, region), purpose, case id, operator, request id, the target of the call
//       and the digest of the exact request body; aud = the next hop.
//   [i] a hop assertion, signed by the i-th forwarding node: aud = its next hop, and
//       prev = SHA-256 of the compact JWS before it, so the chain cannot be cut or reordered.
// Every JWS carries its signer's certificate (x5c), which must chain to a trusted CA and name
// the signing node (CN tongban-node-<id>). The receiver checks every link, that the last aud
// is itself and the last iss is the mTLS peer, and that no node appears twice (no loops).
//
// Link keys (ES256). An RSA-2048 signature per link and request was the largest single cost
// of a relaying node (docs/performance.md, "Cross-tier"). So a node signs its links with an
// ECDSA P-256 key of its own (ES256, ~20 µs instead of ~250 µs), which its node key certifies:
// the JWS header carries, beside x5c, `lk: { key, iat, exp, sig }` — the P-256 public key
// (base64url SPKI DER), the statement's validity, and the RS256 signature of the node key
// over `tongban-link-key/1 <node id> <key> <iat> <exp>`. A hop verifies the statement with
// the x5c certificate (once per link key: the protected header is cached by its exact
// bytes), then each link with the link key; the link's iat must lie within the statement's
// validity. The key is generated in memory at start, replaced every hour (statement valid
// two hours) and never leaves the process. Links of the previous format (RS256 by the node
// key itself, x5c only) are still accepted.
import { X509Certificate, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, verify, type KeyObject } from 'node:crypto'
import { Problem } from '../problems/problem.js'
import { regionWithin } from './topology.js'

export const ASSERTION_HEADER = 'tongban-assertion'
export const MAX_HOPS = 8
const LIFETIME_S = 60
const SKEW_S = 30
const MAX_JWS_LENGTH = 8192
/** A link key is replaced after this long (s); its statement is valid for twice that. */
const LINK_KEY_ROTATE_S = 3600
/** The longest statement validity a verifier accepts (s). */
const LINK_KEY_MAX_LIFETIME_S = 86_400

export interface ConsumerClaims {
  /** The consumer's system (client id), department (统一社会信用代码) and region. */
  sub: string
  dept: string
  region: string
  purpose: string | null
  case: string | null
  opr?: string
  /** What is asked, as the relay path names it: `resources/<code>/<operation>`, `verify/<service>`, `applications`. */
  tgt: string
  /** `sha256:<hex>` of the exact request body. */
  bd: string
}

interface Common {
  iss: string
  aud: string
  iat: number
  exp: number
  jti: string
  rid: string
}

export type OriginPayload = Common & ConsumerClaims
export type HopPayload = Common & { prev: string }

const b64 = (v: object | Buffer) => (Buffer.isBuffer(v) ? v : Buffer.from(JSON.stringify(v))).toString('base64url')
export const jwsHash = (jws: string) => createHash('sha256').update(jws).digest('hex')

const certsOf = (pem: string) => (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((b) => new X509Certificate(b))

/** The node id a node certificate names (subject CN tongban-node-<id>), or null. */
export function nodeIdOfCert(cert: X509Certificate | { subject?: Record<string, string | string[]> }): string | null {
  let cn: string | undefined
  if (cert instanceof X509Certificate) {
    cn = cert.subject.split('\n').find((l) => l.startsWith('CN='))?.slice(3)
  } else {
    const v = cert.subject?.CN
    cn = Array.isArray(v) ? v[0] : v
  }
  const m = cn ? /^tongban-node-([1-9][0-9]{5})$/.exec(cn) : null
  return m ? m[1] : null
}

/** The statement a node key signs for a link key (the `lk` header member). */
export interface LinkKeyStatement {
  /** base64url of the P-256 public key (SPKI DER). */
  key: string
  iat: number
  exp: number
  /** base64url RS256 signature of the node key over linkKeyInput(node, …). */
  sig: string
}
export const linkKeyInput = (node: string, lk: Pick<LinkKeyStatement, 'key' | 'iat' | 'exp'>) => Buffer.from(`tongban-link-key/1 ${node} ${lk.key} ${lk.iat} ${lk.exp}`)

interface LinkKey {
  key: KeyObject
  lk: LinkKeyStatement
  /** The encoded protected header per typ (constant while the key lives). */
  headers: Map<string, string>
}

export class AssertionSigner {
  private readonly key: KeyObject
  private readonly x5c: string[]
  private readonly linkKeys: boolean
  private link: LinkKey | null = null
  private readonly rsHeaders = new Map<string, string>()

  /**
   * opts.linkKeys false: every link signed RS256 by the node key itself (the previous
   * format, ~10× the CPU; kept for tests of compatibility).
   */
  constructor(readonly nodeId: string, keyPem: string, certPem: string, opts: { linkKeys?: boolean } = {}) {
    this.key = createPrivateKey(keyPem)
    this.x5c = certsOf(certPem).map((c) => c.raw.toString('base64'))
    this.linkKeys = opts.linkKeys ?? true
  }

  /** The current link key, certified by the node key; a new one every LINK_KEY_ROTATE_S. */
  private currentLink(now: number): LinkKey {
    if (this.link && now < this.link.lk.iat + LINK_KEY_ROTATE_S) return this.link
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const key = publicKey.export({ format: 'der', type: 'spki' }).toString('base64url')
    const st = { key, iat: now, exp: now + 2 * LINK_KEY_ROTATE_S }
    const lk: LinkKeyStatement = { ...st, sig: sign('sha256', linkKeyInput(this.nodeId, st), this.key).toString('base64url') }
    this.link = { key: privateKey, lk, headers: new Map() }
    return this.link
  }

  private sign(typ: string, payload: { iat: number; [k: string]: unknown }): string {
    if (!this.linkKeys) {
      let h = this.rsHeaders.get(typ)
      if (!h) this.rsHeaders.set(typ, (h = b64({ alg: 'RS256', typ, x5c: this.x5c })))
      const input = `${h}.${b64(payload)}`
      return `${input}.${sign('sha256', Buffer.from(input), this.key).toString('base64url')}`
    }
    const link = this.currentLink(payload.iat)
    let h = link.headers.get(typ)
    if (!h) link.headers.set(typ, (h = b64({ alg: 'ES256', typ, x5c: this.x5c, lk: link.lk })))
    const input = `${h}.${b64(payload)}`
    return `${input}.${sign('sha256', Buffer.from(input), { key: link.key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
  }

  /** The consumer assertion of the originating node. */
  origin(aud: string, rid: string, claims: ConsumerClaims): string {
    const iat = Math.floor(Date.now() / 1000)
    return this.sign('tongban-consumer+jwt', { iss: this.nodeId, aud, iat, exp: iat + LIFETIME_S, jti: randomUUID(), rid, ...claims })
  }

  /** This node's link, appended when it forwards a chain to `aud`. */
  hop(aud: string, rid: string, previous: string): string {
    const iat = Math.floor(Date.now() / 1000)
    return this.sign('tongban-hop+jwt', { iss: this.nodeId, aud, iat, exp: iat + LIFETIME_S, jti: randomUUID(), rid, prev: jwsHash(previous) })
  }
}

export interface VerifiedChain {
  consumer: OriginPayload
  /** The nodes the call passed, origin first. */
  path: string[]
  /** jti of the last link: what the replay check remembers. */
  jti: string
  exp: number
  /** iat of the last link (s): the replay check refuses links older than its epoch. */
  iat: number
}

export interface ChainCheck {
  self: string
  /** The node the mTLS peer certificate names. */
  peer: string
  rid: string
  tgt: string
  bodyDigest: string
  now?: number
  /**
   * Queued messages (application-messages.ts): a hop stores what it received and forwards it
   * later, so the links before the last may have expired by then, up to this age (s). Each
   * was checked fresh by the hop that took it, which vouches for it by chaining its own link
   * over it; the last link, the sender's, must always be fresh.
   */
  storedLinksMaxAgeS?: number
}

const invalid = (detail: string) => new Problem(401, 'NODE_ASSERTION_INVALID', `node assertion: ${detail}`)

/** A protected header checked once: its certificate (chained, naming a node) and the key its links verify with. */
interface CheckedHeader {
  typ: string
  alg: 'RS256' | 'ES256'
  cert: X509Certificate
  node: string
  notBefore: number
  notAfter: number
  /** RS256: the certificate's key; ES256: the link key the certificate's key certified. */
  key: KeyObject
  /** ES256: the statement's validity (s), which the link's iat must lie within. */
  lk?: { iat: number; exp: number }
}

export class AssertionVerifier {
  private readonly anchors: X509Certificate[]
  private readonly certCache = new Map<string, { cert: X509Certificate; node: string }>()
  /** Protected headers already checked, by their exact base64url text (constant per signer and link key). */
  private readonly headerCache = new Map<string, CheckedHeader>()

  constructor(caPem: string) {
    this.anchors = certsOf(caPem)
  }

  /** Verifies the header value; throws 401 NODE_ASSERTION_INVALID saying which check failed. */
  verify(header: string | undefined, c: ChainCheck): VerifiedChain {
    if (!header) throw invalid('header Tongban-Assertion is missing')
    const parts = header.split(',').map((s) => s.trim())
    if (parts.length > MAX_HOPS) throw invalid(`more than ${MAX_HOPS} links`)
    const now = c.now ?? Math.floor(Date.now() / 1000)
    const payloads: Array<Record<string, unknown>> = []
    parts.forEach((jws, i) => {
      const { payload, node, lk } = this.verifyOne(jws, i === 0 ? 'tongban-consumer+jwt' : 'tongban-hop+jwt', i)
      if (payload.iss !== node) throw invalid(`link ${i}: iss ${String(payload.iss)} is not the node its certificate names (${node})`)
      const { iat, exp } = payload as { iat: number; exp: number }
      if (!Number.isInteger(iat) || !Number.isInteger(exp) || exp - iat > 300) throw invalid(`link ${i}: bad iat/exp`)
      if (lk && (iat < lk.iat - SKEW_S || iat > lk.exp)) throw invalid(`link ${i} is signed outside the validity of its link key`)
      const stored = c.storedLinksMaxAgeS !== undefined && i < parts.length - 1
      if (exp < now - (stored ? c.storedLinksMaxAgeS! : SKEW_S)) throw invalid(`link ${i} expired`)
      if (iat > now + SKEW_S) throw invalid(`link ${i} is issued in the future`)
      if (payload.rid !== c.rid) throw invalid(`link ${i} is for another request id`)
      if (typeof payload.jti !== 'string' || payload.jti.length < 8) throw invalid(`link ${i}: jti`)
      if (i > 0) {
        if (payload.prev !== jwsHash(parts[i - 1])) throw invalid(`link ${i} does not follow link ${i - 1}`)
        if (payload.iss !== payloads[i - 1].aud) throw invalid(`link ${i} is signed by ${String(payload.iss)}, but link ${i - 1} was addressed to ${String(payloads[i - 1].aud)}`)
      }
      payloads.push(payload)
    })
    const first = payloads[0] as unknown as OriginPayload
    const last = payloads[payloads.length - 1]
    if (last.aud !== c.self) throw invalid(`addressed to ${String(last.aud)}, not to this node (${c.self})`)
    if (last.iss !== c.peer) throw invalid(`last link signed by ${String(last.iss)}, but the TLS peer is ${c.peer}`)
    const path = payloads.map((p) => p.iss as string)
    if (new Set([...path, c.self]).size !== path.length + 1) throw invalid(`the call passes a node twice (${[...path, c.self].join(' → ')})`)
    for (const f of ['sub', 'dept', 'region', 'tgt', 'bd'] as const) {
      if (typeof first[f] !== 'string' || first[f].length === 0 || first[f].length > 256) throw invalid(`consumer claim ${f} is missing`)
    }
    if (!/^[1-9][0-9]{5}$/.test(first.region)) throw invalid('consumer claim region is not a GB/T 2260 code')
    // A node vouches for the consumers of its own division only (node id = region code).
    if (!regionWithin(first.region, first.iss)) throw invalid(`node ${first.iss} cannot vouch for a consumer of region ${first.region}`)
    if (first.tgt !== c.tgt) throw invalid('the assertion is for another target')
    if (first.bd !== c.bodyDigest) throw invalid('the request body is not the one the originating node signed')
    return { consumer: first, path, jti: last.jti as string, exp: last.exp as number, iat: last.iat as number }
  }

  private verifyOne(jws: string, typ: string, i: number): { payload: Record<string, unknown>; node: string; lk?: { iat: number; exp: number } } {
    if (jws.length > MAX_JWS_LENGTH) throw invalid(`link ${i} is too long`)
    const [h, p, s, extra] = jws.split('.')
    if (!h || !p || !s || extra !== undefined) throw invalid(`link ${i} is not a compact JWS`)
    const hdr = this.headerCache.get(h) ?? this.checkHeader(h, i)
    if (hdr.typ !== typ) throw invalid(`link ${i}: typ must be ${typ}`)
    const now = Date.now()
    if (now < hdr.notBefore || now > hdr.notAfter) throw invalid(`link ${i}: the certificate is not valid now`)
    const sig = Buffer.from(s, 'base64url')
    const ok = hdr.alg === 'ES256'
      ? sig.length === 64 && verify('sha256', Buffer.from(`${h}.${p}`), { key: hdr.key, dsaEncoding: 'ieee-p1363' }, sig)
      : verify('sha256', Buffer.from(`${h}.${p}`), hdr.key, sig)
    if (!ok) throw invalid(`link ${i}: bad signature`)
    let payload: Record<string, unknown>
    try {
      payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'))
    } catch {
      throw invalid(`link ${i} is not JSON`)
    }
    if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw invalid(`link ${i}: payload`)
    return { payload, node: hdr.node, lk: hdr.lk }
  }

  /**
   * The protected header, checked: alg, x5c chained to a trust anchor and naming a node, and
   * for ES256 the link key statement signed by that certificate's key. Kept by its exact
   * text; what depends on the time (certificate validity, the link's iat) is checked per call.
   */
  private checkHeader(h: string, i: number): CheckedHeader {
    let header: { alg?: unknown; typ?: unknown; x5c?: unknown; lk?: unknown }
    try {
      header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'))
    } catch {
      throw invalid(`link ${i} is not JSON`)
    }
    if (typeof header !== 'object' || header === null) throw invalid(`link ${i} is not JSON`)
    if (header.alg !== 'RS256' && header.alg !== 'ES256') throw invalid(`link ${i}: alg must be ES256 (with a link key) or RS256`)
    if (typeof header.typ !== 'string') throw invalid(`link ${i}: typ is missing`)
    if (!Array.isArray(header.x5c) || header.x5c.length === 0 || header.x5c.length > 4 || !header.x5c.every((x) => typeof x === 'string')) {
      throw invalid(`link ${i}: x5c is missing`)
    }
    const { cert, node } = this.trusted(header.x5c as string[], i)
    const checked: CheckedHeader = {
      typ: header.typ,
      alg: header.alg,
      cert,
      node,
      notBefore: Date.parse(cert.validFrom),
      notAfter: Date.parse(cert.validTo),
      key: cert.publicKey,
    }
    if (header.alg === 'ES256') {
      const lk = header.lk as Partial<LinkKeyStatement> | undefined
      if (typeof lk !== 'object' || lk === null || typeof lk.key !== 'string' || lk.key.length > 200 || typeof lk.sig !== 'string' || lk.sig.length > 700 ||
        !Number.isInteger(lk.iat) || !Number.isInteger(lk.exp) || lk.exp! <= lk.iat! || lk.exp! - lk.iat! > LINK_KEY_MAX_LIFETIME_S) {
        throw invalid(`link ${i}: lk (the link key statement) is missing or malformed`)
      }
      const st = { key: lk.key, iat: lk.iat!, exp: lk.exp! }
      if (!verify('sha256', linkKeyInput(node, st), cert.publicKey, Buffer.from(lk.sig, 'base64url'))) {
        throw invalid(`link ${i}: bad signature of the link key statement (not certified by the key of node ${node})`)
      }
      let key: KeyObject
      try {
        key = createPublicKey({ key: Buffer.from(lk.key, 'base64url'), format: 'der', type: 'spki' })
      } catch {
        throw invalid(`link ${i}: the link key is not a public key`)
      }
      if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') throw invalid(`link ${i}: the link key is not a P-256 key`)
      checked.key = key
      checked.lk = { iat: st.iat, exp: st.exp }
    }
    if (this.headerCache.size > 1000) this.headerCache.clear()
    this.headerCache.set(h, checked)
    return checked
  }

  /** The leaf certificate of x5c if it chains to a trust anchor and names a node (its validity now: verifyOne). */
  private trusted(x5c: string[], i: number): { cert: X509Certificate; node: string } {
    const key = x5c.join('.')
    let hit = this.certCache.get(key)
    if (!hit) {
      let chain: X509Certificate[]
      try {
        chain = x5c.map((d) => new X509Certificate(Buffer.from(d, 'base64')))
      } catch {
        throw invalid(`link ${i}: x5c is not a certificate`)
      }
      if (!this.chains(chain)) throw invalid(`link ${i}: the certificate is not issued by a trusted CA`)
      const node = nodeIdOfCert(chain[0])
      if (!node) throw invalid(`link ${i}: the certificate is not a node certificate`)
      hit = { cert: chain[0], node }
      if (this.certCache.size > 1000) this.certCache.clear()
      this.certCache.set(key, hit)
    }
    return hit
  }

  private chains(chain: X509Certificate[]): boolean {
    const issuedBy = (child: X509Certificate, parent: X509Certificate) => child.checkIssued(parent) && child.verify(parent.publicKey)
    let cur = chain[0]
    for (let depth = 0; depth < 4; depth++) {
      if (this.anchors.some((a) => issuedBy(cur, a))) return true
      const next = chain.find((c) => c !== cur && c.ca && issuedBy(cur, c))
      if (!next) return false
      cur = next
    }
    return false
  }
}
