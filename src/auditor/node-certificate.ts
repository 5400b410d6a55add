// The certificate that signs this node's checkpoints is kept (by kid) so that old
// checkpoints stay verifiable after a rotation; the first time a certificate signs here is
// a sealed admin event (node.certificate).
import type { FastifyInstance } from 'fastify'
import { buildAuditRecord } from '../audit/plugin.js'
import { certThumbprint } from '../pki/thumbprint.js'

export async function recordNodeCertificate(app: FastifyInstance): Promise<void> {
  const { config } = app
  // The certificate whose kid the checkpoints name (an SM2 node's signing certificate).
  const identity = app.identity.signing
  try {
    const kid = certThumbprint(identity.certPem)
    const { rows } = await app.db.query(
      'INSERT INTO audit_certificates (kid, cert_pem) VALUES ($1, $2) ON CONFLICT (kid) DO NOTHING RETURNING kid',
      [kid, identity.certPem],
    )
    if (rows.length) {
      const record = buildAuditRecord({
        node: config.node.id,
        requestId: `node-certificate-${kid.slice(0, 16)}-${Date.now()}`,
        principal: null,
        audit: { resource: `certificate:${kid}`, consumer: { department: config.node.id, system: config.replicaId, region: config.node.region } },
        status: 200,
        requestBytes: identity.certPem,
        responseBody: JSON.stringify({ kid, subject: identity.cert.subject, validFrom: identity.cert.validFrom, validTo: identity.cert.validTo }),
        defaults: { operation: 'node.certificate' },
        version: app.sealer.version,
      })
      app.sealer.seal(record).catch((err) => app.log.error({ err }, 'certificate event not sealed'))
    }
  } catch (err) {
    app.log.warn({ err }, 'node certificate not recorded in audit_certificates (the database may be away); retried at the next start')
  }
}
