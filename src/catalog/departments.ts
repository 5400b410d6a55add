// Department names for the workbench: every response that names a consumer or provider
// department carries { code, name }, never a credit code alone. One lookup, one place:
// the names come from the `departments` table (src/onboarding/departments.ts owns it: one
// name per credit code) and, for departments registered only at other nodes, from the
// catalogue's providers.
import type { Db } from '../stores/postgres.js'
import type { CatalogRepository } from './repository.js'

export interface Department {
  code: string
  /** Null when no registered system or catalogue resource names the department. */
  name: string | null
}

export interface DepartmentNames {
  /** The departments of these codes, with their names, in one lookup. */
  resolve(codes: Iterable<string | null | undefined>): Promise<(code: string | null | undefined) => Department | null>
}

async function loadNames(db: Db, catalog: CatalogRepository, codes: string[]): Promise<Map<string, string>> {
  const names = new Map<string, string>()
  for (const r of catalog.list()) if (codes.includes(r.provider.code)) names.set(r.provider.code, r.provider.name)
  const { rows } = await db.query(
    'SELECT code, name FROM departments WHERE code = ANY($1::text[])',
    [codes],
  )
  // The registered name wins over the catalogue's copy.
  for (const r of rows) names.set(r.code, r.name)
  return names
}

export function departmentNames(db: Db, catalog: CatalogRepository): DepartmentNames {
  return {
    async resolve(codes) {
      const wanted = [...new Set([...codes].filter((c): c is string => typeof c === 'string' && c.length > 0))]
      const names = wanted.length ? await loadNames(db, catalog, wanted) : new Map<string, string>()
      return (code) => (code ? { code, name: names.get(code) ?? null } : null)
    },
  }
}

/** The OpenAPI shape of a named department. */
export const departmentSchema = {
  type: 'object',
  properties: { code: { type: 'string', description: '统一社会信用代码 (GB 32100)' }, name: { type: ['string', 'null'], description: 'the department\'s name (null: not registered)' } },
}
