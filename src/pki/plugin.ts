// The node's identity: its certificate and key (checkpoint and token signatures), the
// trust anchor, and the public routes that let anyone verify what the node signs.
import fp from 'fastify-plugin'
import { X509Certificate, type KeyObject } from 'node:crypto'
import { loadNodeIdentity } from './node-identity.js'
import { certThumbprint, x5c } from './thumbprint.js'

export interface Identity {
  certPem: string
  keyPem: string
  caPem: string
  cert: X509Certificate
  ca: X509Certificate
  publicKey: KeyObject
  kid: string
}

declare module 'fastify' {
  interface FastifyInstance {
    identity: Identity
  }
}

export default fp(
  async function nodeIdentity(app) {
    const { pki, node } = app.config
    const loaded = loadNodeIdentity({ certFile: pki.certFile, keyFile: pki.keyFile, caFile: pki.caFile })
    const identity: Identity = {
      certPem: loaded.certPem,
      keyPem: loaded.keyPem,
      caPem: loaded.caPem,
      cert: loaded.cert,
      ca: new X509Certificate(loaded.caPem),
      publicKey: loaded.publicKey,
      kid: certThumbprint(loaded.certPem),
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
              auditAlg: { type: 'string' }, certificate: { type: 'string' }, caCertificate: { type: 'string' },
            },
          },
        },
      },
    }, async () => ({
      ...node,
      replica: app.config.replicaId,
      kid: identity.kid,
      auditAlg: app.config.audit.alg,
      certificate: identity.certPem,
      caCertificate: identity.caPem,
    }))

    app.get('/.well-known/jwks.json', {
      schema: { tags: ['node'], summary: 'The node signing key as a JWK set (with x5c chain)' },
    }, async () => ({ keys: [jwk] }))
  },
  { name: 'node-identity' },
)
