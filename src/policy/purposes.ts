// The node's purpose list (事由): every query names one of these codes in Tongban-Purpose.
import { readFileSync } from 'node:fs'

export interface Purpose {
  code: string
  name: string
  description?: string
}

export const PURPOSE_CODE = /^[A-Za-z0-9.-]{1,32}$/

export function loadPurposes(file: string): Map<string, Purpose> {
  const list: Purpose[] = JSON.parse(readFileSync(file, 'utf8')).purposes
  const bad = list.find((p) => !PURPOSE_CODE.test(p.code))
  if (bad) throw new Error(`${file}: purpose code ${JSON.stringify(bad.code)} is not letters, digits, '-' or '.'`)
  return new Map(list.map((p) => [p.code, p]))
}
