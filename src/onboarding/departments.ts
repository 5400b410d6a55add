// The one owner of department credit code → name. Registering a known code under another
// name is refused: a quiet relabel would rename the department in every past record.
import type { Db } from '../stores/postgres.js'
import { Problem } from '../problems/problem.js'

/** Records `code → name`, or checks it against the name already recorded. */
export async function claimDepartmentName(db: Pick<Db, 'query'>, code: string, name: string, pointer = '/department/name'): Promise<void> {
  await db.query('INSERT INTO departments (code, name) VALUES ($1, $2) ON CONFLICT (code) DO NOTHING', [code, name])
  const { rows } = await db.query('SELECT name FROM departments WHERE code = $1', [code])
  const known = rows[0]?.name as string | undefined
  if (known !== undefined && known !== name) {
    throw new Problem(409, 'DEPARTMENT_NAME_CONFLICT', `credit code ${code} is registered under the name ${JSON.stringify(known)}`, {
      errors: [{ pointer, detail: `must be ${JSON.stringify(known)}, the name registered for ${code}` }],
      registeredName: known,
    })
  }
}
