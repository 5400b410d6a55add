// The registry of departmental systems (PostgreSQL), seeded from config/systems.json and the
// certificates under certs/clients. Lookups on the token endpoint hit an in-memory copy.
import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { X509Certificate } from 'node:crypto'
import type { Db } from '../stores/postgres.js'
import { certThumbprint } from '../pki/thumbprint.js'
import { claimDepartmentName } from '../onboarding/departments.js'
import { conflictingRoles, ROLES, type Role } from './principal.js'

export interface RegisteredSystem {
  clientId: string
  name: string
  departmentCode: string
  departmentName: string
  region: string
  roles: Role[]
  cert: X509Certificate
  certPem: string
  status: 'active' | 'suspended'
  /** The registered certificate is on the revocation list (revoked_certs). */
  certRevoked: boolean
}

interface SystemFileEntry {
  clientId: string
  name: string
  department: { code: string; name: string }
  region: string
  roles: string[]
}

export function readSystemsFile(file: string): SystemFileEntry[] {
  return JSON.parse(readFileSync(file, 'utf8')).systems
}

/** Upserts the systems of the file whose certificate exists under `clientsDir`. */
export async function seedSystems(db: Db, file: string, clientsDir: string): Promise<number> {
  let n = 0
  for (const s of readSystemsFile(file)) {
    const bad = s.roles.find((r) => !(ROLES as readonly string[]).includes(r)) ?? conflictingRoles(s.roles)
    if (bad) throw new Error(`${file}: system ${s.clientId}: ${bad.includes(' ') ? bad : `unknown role ${bad}`}`)
    const certFile = join(clientsDir, `${s.clientId}.crt.pem`)
    if (!existsSync(certFile)) continue
    const pem = readFileSync(certFile, 'utf8')
    await claimDepartmentName(db, s.department.code, s.department.name)
    await db.query(
      `INSERT INTO systems (client_id, name, department_code, department_name, region, roles, cert_pem, cert_thumbprint)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (client_id) DO UPDATE SET name = $2, department_code = $3, department_name = $4,
         region = $5, roles = $6, cert_pem = $7, cert_thumbprint = $8, updated_at = now()`,
      [s.clientId, s.name, s.department.code, s.department.name, s.region, s.roles, pem, certThumbprint(pem)],
    )
    n++
  }
  return n
}

export class SystemRegistry {
  private byId = new Map<string, RegisteredSystem>()

  constructor(private readonly db: Db) {}

  async load(): Promise<void> {
    const { rows } = await this.db.query(
      `SELECT s.*, EXISTS (SELECT 1 FROM revoked_certs r WHERE r.cert_thumbprint = s.cert_thumbprint) AS cert_revoked
       FROM systems s`,
    )
    const next = new Map<string, RegisteredSystem>()
    for (const r of rows) {
      next.set(r.client_id, {
        clientId: r.client_id,
        name: r.name,
        departmentCode: r.department_code,
        departmentName: r.department_name,
        region: r.region,
        roles: r.roles,
        certPem: r.cert_pem,
        cert: new X509Certificate(r.cert_pem),
        status: r.status,
        certRevoked: r.cert_revoked === true,
      })
    }
    this.byId = next
  }

  get(clientId: string): RegisteredSystem | undefined {
    return this.byId.get(clientId)
  }

  /** The systems a department has registered (the ceiling of its people's roles: src/people/claims.ts). */
  ofDepartment(departmentCode: string): RegisteredSystem[] {
    return [...this.byId.values()].filter((s) => s.departmentCode === departmentCode)
  }
}

/** Puts a system's registered certificate on the revocation list; false if no such system. */
export async function revokeCertificate(db: Db, clientId: string, reason?: string): Promise<{ thumbprint: string; already: boolean } | null> {
  const { rows } = await db.query('SELECT cert_thumbprint FROM systems WHERE client_id = $1', [clientId])
  if (!rows[0]) return null
  const thumbprint = rows[0].cert_thumbprint as string
  const res = await db.query(
    'INSERT INTO revoked_certs (cert_thumbprint, client_id, reason) VALUES ($1, $2, $3) ON CONFLICT (cert_thumbprint) DO NOTHING',
    [thumbprint, clientId, reason ?? null],
  )
  return { thumbprint, already: res.rowCount === 0 }
}
