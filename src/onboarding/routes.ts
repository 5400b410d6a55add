// Registering departmental systems from a certificate request (PKCS#10): the department
// keeps its key, the node's CA signs the request. Every change is committed, then announced
// on the bus topic `systems` so every replica's registry (src/auth/plugin.ts) reloads at once.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { X509Certificate } from 'node:crypto'
import { join } from 'node:path'
import { Problem } from '../problems/problem.js'
import { problemResponses } from '../problems/schema.js'
import { checkCreditCode } from '../gb/credit-code.js'
import { isCurrentRegion } from '../gb/region.js'
import { certThumbprint } from '../pki/thumbprint.js'
import { conflictingRoles, ROLES } from '../auth/principal.js'
import { revokeCertificate } from '../auth/systems.js'
import { claimDepartmentName } from './departments.js'
import { issueFromCsr, loadSigningCa, verifyCsr, type SignedCertificate } from './csr-signer.js'

const CLIENT_ID = '^[a-z0-9][a-z0-9-]{1,62}$'
const PEM_MAX = 16_384

const csrField = { type: 'string', minLength: 1, maxLength: PEM_MAX, description: 'PEM PKCS#10 request (RSA ≥ 2048 bits or EC P-256/P-384, subject CN = clientId)' }
const certified = {
  type: 'object',
  required: ['clientId', 'certificate', 'caCertificate', 'notAfter', 'serial'],
  properties: {
    clientId: { type: 'string' },
    certificate: { type: 'string', description: 'the issued client certificate (PEM)' },
    caCertificate: { type: 'string', description: 'the issuing CA chain (PEM)' },
    notAfter: { type: 'string', format: 'date-time' },
    serial: { type: 'string' },
  },
}
const systemView = {
  type: 'object',
  properties: {
    clientId: { type: 'string' },
    name: { type: 'string' },
    department: { type: 'object', properties: { code: { type: 'string' }, name: { type: 'string' } } },
    region: { type: 'string' },
    roles: { type: 'array', items: { type: 'string' } },
    status: { type: 'string', enum: ['active', 'suspended'] },
    certificate: {
      type: 'object',
      properties: {
        serial: { type: 'string' }, thumbprint: { type: 'string' }, notBefore: { type: 'string' }, notAfter: { type: 'string' },
        revoked: { type: 'boolean' },
      },
    },
  },
}
const params = { type: 'object', required: ['clientId'], properties: { clientId: { type: 'string', pattern: CLIENT_ID } } }

interface RegisterBody {
  clientId: string
  name: string
  department: { code: string; name: string }
  region: string
  roles: string[]
  csr: string
}

export default async function onboardingRoutes(app: FastifyInstance) {
  const { pki } = app.config
  const caKeyFile = join(pki.dir, 'ca.key.pem')
  const errors = (...statuses: number[]) => problemResponses(401, 403, ...statuses, 413, 415)
  const operator = [app.authenticate, app.requireRole('operator')]
  const announce = (clientId: string) => app.bus.publish('systems', clientId)

  const sign = (request: FastifyRequest, csr: string, subject: { clientId: string; department: { code: string; name: string } }): SignedCertificate => {
    const ca = loadSigningCa(pki.caFile, caKeyFile)
    const key = verifyCsr(csr, subject.clientId)
    const issued = issueFromCsr(ca, key, subject)
    request.log.info({ clientId: subject.clientId, serial: issued.serial }, 'client certificate issued from a request')
    return issued
  }

  app.post('/v1/systems', {
    onRequest: operator,
    config: { audit: { operation: 'systems.register' } },
    bodyLimit: 64 * 1024,
    schema: {
      tags: ['systems'],
      summary: 'Register a departmental system from its certificate request (operator)',
      description: 'The CA of this node signs the request; the department keeps its private key. The system can get a token on every replica at once.',
      security: [{ bearer: [] }],
      body: {
        type: 'object',
        additionalProperties: false,
        required: ['clientId', 'name', 'department', 'region', 'roles', 'csr'],
        properties: {
          clientId: { type: 'string', pattern: CLIENT_ID },
          name: { type: 'string', minLength: 1, maxLength: 100 },
          department: {
            type: 'object', additionalProperties: false, required: ['code', 'name'],
            properties: { code: { type: 'string', pattern: '^[0-9A-HJ-NPQRTUWXY]{18}$' }, name: { type: 'string', minLength: 1, maxLength: 100 } },
          },
          region: { type: 'string', pattern: '^[0-9]{6}$' },
          roles: { type: 'array', minItems: 1, maxItems: ROLES.length, uniqueItems: true, items: { type: 'string', enum: [...ROLES] } },
          csr: csrField,
        },
      },
      response: { 201: certified, ...errors(400, 409, 503) },
    },
  }, async (request, reply) => {
    const body = request.body as RegisterBody
    request.audit.resource = body.clientId
    const credit = checkCreditCode(body.department.code)
    if (!credit.ok) throw new Problem(400, 'INPUT_INVALID_CREDIT_CODE', `department.code: ${credit.reason}`, { errors: [{ pointer: '/department/code', detail: credit.reason }] })
    if (!isCurrentRegion(body.region)) throw new Problem(400, 'ONBOARD_REGION_UNKNOWN', `region ${body.region} is not a current GB/T 2260 code`, { errors: [{ pointer: '/region', detail: 'unknown division' }] })
    const conflict = conflictingRoles(body.roles)
    if (conflict) throw new Problem(400, 'ONBOARD_ROLES_CONFLICT', conflict, { errors: [{ pointer: '/roles', detail: conflict }] })
    const issued = sign(request, body.csr, body)
    const client = await app.db.connect()
    try {
      await client.query('BEGIN')
      await claimDepartmentName(client, body.department.code, body.department.name)
      const res = await client.query(
        `INSERT INTO systems (client_id, name, department_code, department_name, region, roles, cert_pem, cert_thumbprint)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (client_id) DO NOTHING`,
        [body.clientId, body.name, body.department.code, body.department.name, body.region, body.roles, issued.certificate, certThumbprint(issued.certificate)],
      )
      if (res.rowCount === 0) throw new Problem(409, 'ONBOARD_SYSTEM_EXISTS', `system ${body.clientId} is already registered`)
      await client.query('COMMIT')
    } catch (e) {
      await client.query('ROLLBACK')
      throw e
    } finally {
      client.release()
    }
    await app.systems.load()
    await announce(body.clientId)
    reply.code(201).header('location', `/v1/systems/${body.clientId}`)
    return { clientId: body.clientId, ...issued }
  })

  // Renewal replaces the registered certificate: the token endpoint checks a client
  // assertion against the registered certificate, so the old key stops working as soon as
  // the new certificate is returned. The department installs the new certificate with the
  // key it already generated for the request.
  app.post('/v1/systems/:clientId/certificate', {
    onRequest: operator,
    config: { audit: { operation: 'systems.renew' } },
    bodyLimit: 64 * 1024,
    schema: {
      tags: ['systems'],
      summary: 'Renew a system certificate from a new certificate request (operator)',
      security: [{ bearer: [] }],
      params,
      body: { type: 'object', additionalProperties: false, required: ['csr'], properties: { csr: csrField } },
      response: { 200: certified, ...errors(400, 404, 503) },
    },
  }, async (request) => {
    const { clientId } = request.params as { clientId: string }
    request.audit.resource = clientId
    const system = await findSystem(clientId)
    const issued = sign(request, (request.body as { csr: string }).csr, { clientId, department: system.department })
    await app.db.query('UPDATE systems SET cert_pem = $2, cert_thumbprint = $3, updated_at = now() WHERE client_id = $1', [clientId, issued.certificate, certThumbprint(issued.certificate)])
    await app.systems.load()
    await announce(clientId)
    return { clientId, ...issued }
  })

  app.delete('/v1/systems/:clientId/certificate', {
    onRequest: operator,
    config: { audit: { operation: 'systems.revoke' } },
    schema: {
      tags: ['systems'],
      summary: 'Revoke the registered certificate of a system (operator): no more tokens, on every replica',
      security: [{ bearer: [] }],
      params,
      response: { 204: { type: 'null' }, ...errors(400, 404) },
    },
  }, async (request, reply) => {
    const { clientId } = request.params as { clientId: string }
    request.audit.resource = clientId
    const done = await revokeCertificate(app.db, clientId, `revoked by ${request.principal!.system}`)
    if (!done) throw new Problem(404, 'ONBOARD_SYSTEM_UNKNOWN', `no system ${clientId} is registered`)
    await app.systems.load()
    await announce(clientId)
    reply.code(204).send()
  })

  // Suspension keeps the certificate: a suspended system gets no token (AUTH_CLIENT_SUSPENDED)
  // until it is made active again.
  app.put('/v1/systems/:clientId/status', {
    onRequest: operator,
    config: { audit: { operation: 'systems.status' } },
    schema: {
      tags: ['systems'],
      summary: 'Suspend or reactivate a system (operator)',
      security: [{ bearer: [] }],
      params,
      body: { type: 'object', additionalProperties: false, required: ['status'], properties: { status: { type: 'string', enum: ['active', 'suspended'] } } },
      response: { 200: systemView, ...errors(400, 404) },
    },
  }, async (request) => {
    const { clientId } = request.params as { clientId: string }
    request.audit.resource = clientId
    const { status } = request.body as { status: 'active' | 'suspended' }
    const res = await app.db.query('UPDATE systems SET status = $2, updated_at = now() WHERE client_id = $1', [clientId, status])
    if (res.rowCount === 0) throw new Problem(404, 'ONBOARD_SYSTEM_UNKNOWN', `no system ${clientId} is registered`)
    await app.systems.load()
    await announce(clientId)
    return findSystem(clientId)
  })

  app.get('/v1/systems', {
    onRequest: operator,
    config: { audit: { operation: 'systems.list' } },
    schema: {
      tags: ['systems'],
      summary: 'Registered systems with certificate metadata (operator; no keys)',
      security: [{ bearer: [] }],
      response: { 200: { type: 'object', properties: { systems: { type: 'array', items: systemView } } }, ...errors() },
    },
  }, async () => {
    const { rows } = await app.db.query(`${SELECT} ORDER BY s.client_id`)
    return { systems: rows.map(view) }
  })

  app.get('/v1/systems/:clientId', {
    onRequest: operator,
    config: { audit: { operation: 'systems.read' } },
    schema: {
      tags: ['systems'],
      summary: 'One registered system with certificate metadata (operator; no keys)',
      security: [{ bearer: [] }],
      params,
      response: { 200: systemView, ...errors(400, 404) },
    },
  }, async (request) => {
    const { clientId } = request.params as { clientId: string }
    request.audit.resource = clientId
    return findSystem(clientId)
  })

  async function findSystem(clientId: string) {
    const { rows } = await app.db.query(`${SELECT} WHERE s.client_id = $1`, [clientId])
    if (!rows[0]) throw new Problem(404, 'ONBOARD_SYSTEM_UNKNOWN', `no system ${clientId} is registered`)
    return view(rows[0])
  }
}

const SELECT = `SELECT s.*, EXISTS (SELECT 1 FROM revoked_certs r WHERE r.cert_thumbprint = s.cert_thumbprint) AS cert_revoked FROM systems s`

function view(r: Record<string, any>) {
  const x509 = new X509Certificate(r.cert_pem)
  return {
    clientId: r.client_id,
    name: r.name,
    department: { code: r.department_code, name: r.department_name },
    region: r.region,
    roles: r.roles,
    status: r.status,
    certificate: {
      serial: x509.serialNumber,
      thumbprint: r.cert_thumbprint,
      notBefore: new Date(x509.validFrom).toISOString(),
      notAfter: new Date(x509.validTo).toISOString(),
      revoked: r.cert_revoked === true,
    },
  }
}
