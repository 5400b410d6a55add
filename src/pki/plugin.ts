// The node's identity: its certificate and key (checkpoint and token signatures), the
// trust anchor, and the public routes that let anyone verify what the node signs.
import fp from 'fastify-plugin'
import { X509Certificate, type KeyObject } from 'node:crypto'
import { loadNodeIdentity, loadSigningIdentity, type SigningIdentity } from './node-identity.js'
import { splitPem } from './certificate-set.js'
import { certThumbprint, x5c } from './thumbprint.js'

export interface Identity {
  certPem: string
  keyPem: string
  caPem: string
  cert: X509Certificate
  ca: X509Certificate
  publicKey: KeyObject
  kid: string
  /** What signs checkpoints, statements and evidence: this identity, or an SM2 one (docs/gm.md). */
  signing: SigningIdentity
  /** CA certificates trusted for clients and children: the CA, and the signing CA when it is another. */
  cas: X509Certificate[]
  /** The same as PEM, one after the other. */
  casPem: string
}

declare module 'fastify' {
  interface FastifyInstance {
    identity: Identity
  }
}

/** The evidence format of this node: as configured, else 2 for SM2-SM3 and 1 otherwise. */
export const evidenceVersionOf = (config: { audit: { alg: string; evidenceVersion: 1 | 2 | null } }): 1 | 2 =>
  config.audit.evidenceVersion ?? (config.audit.alg === 'SM2-SM3' ? 2 : 1)

export default fp(
  async function nodeIdentity(app) {
    const { pki, node } = app.config
    const loaded = loadNodeIdentity({ certFile: pki.certFile, keyFile: pki.keyFile, caFile: pki.caFile })
    const signing = loadSigningIdentity(app.config.audit.alg, loaded, { certFile: pki.signCertFile, keyFile: pki.signKeyFile, caFile: pki.signCaFile })
    const caPems = [...new Set([...splitPem(loaded.caPem), ...splitPem(signing.caPem)].map((p) => p.trim()))]
    const identity: Identity = {
      certPem: loaded.certPem,
      keyPem: loaded.keyPem,
      caPem: loaded.caPem,
      cert: loaded.cert,
      ca: new X509Certificate(loaded.caPem),
      publicKey: loaded.publicKey,
      kid: certThumbprint(loaded.certPem),
      signing,
      cas: caPems.map((p) => new X509Certificate(p)),
      casPem: caPems.join('\n'),
    }
    app.decorate('identity', identity)

    const jwk = { ...identity.publicKey.export({ format: 'jwk' }), kid: identity.kid, use: 'sig', alg: 'RS256', x5c: [x5c(identity.certPem), x5c(identity.caPem)], 'x5t#S256': identity.kid }

    app.get('/v1/node', {
      schema: {
        tags: ['node'],
        summary: 'This node: identity, tier, region and the certificate that signs its evidence',
        response: {
          200: {
            type: 'object',
            properties: {
              id: { type: 'string' }, name: { type: 'string' }, region: { type: 'string' }, tier: { type: 'string' },
              publicUrl: { type: 'string' }, replica: { type: 'string' }, kid: { type: 'string' },
              auditAlg: { type: 'string' }, evidenceVersion: { type: 'integer' },
              certificate: { type: 'string', description: 'the certificate that signs the evidence (its thumbprint is checkpoint.kid)' },
              caCertificate: { type: 'string', description: 'the CA that issued it' },
              tlsCertificate: { type: 'string', description: 'only where evidence is signed apart (an SM2 node): the node certificate of TLS, tokens and node links' },
            },
          },
        },
      },
    }, async () => ({
      ...node,
      replica: app.config.replicaId,
      kid: signing.kid,
      auditAlg: app.config.audit.alg,
      evidenceVersion: evidenceVersionOf(app.config),
      certificate: signing.certPem,
      caCertificate: signing.caPem,
      ...(signing.certPem !== identity.certPem ? { tlsCertificate: identity.certPem } : {}),
    }))

    app.get('/.well-known/jwks.json', {
      schema: { tags: ['node'], summary: 'The node signing key as a JWK set (with x5c chain)' },
    }, async () => ({ keys: [jwk] }))
  },
  { name: 'node-identity' },
)
