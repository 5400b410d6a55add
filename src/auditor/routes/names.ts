// Names for reports: departments and systems from the registry (re-read at most once a
// minute), resources and purposes from the catalogue.
import type { FastifyInstance } from 'fastify'
import type { ReportNames } from '../subject-report.js'

export type Names = () => Promise<ReportNames>

export function reportNames(app: FastifyInstance): Names {
  let directory: { at: number; departments: Map<string, string>; systems: Map<string, string> } | null = null
  return async () => {
    if (!directory || Date.now() - directory.at > 60_000) {
      const { rows } = await app.readDb.query('SELECT client_id, name, department_code, department_name FROM systems')
      directory = {
        at: Date.now(),
        departments: new Map(rows.map((r) => [r.department_code, r.department_name])),
        systems: new Map(rows.map((r) => [r.client_id, r.name])),
      }
    }
    const d = directory
    return {
      resource: (code) => app.catalog.get(code)?.name,
      department: (code) => d.departments.get(code),
      system: (id) => d.systems.get(id),
      purpose: (code) => app.purposes.get(code)?.name,
    }
  }
}
