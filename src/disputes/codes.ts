// The dispute's code lists (docs/disputes.md): why an answer is disputed, and how the
// provider resolved it. Stable codes on the wire; words in Chinese first, English second.
import type { Text } from '../notify/texts.js'

export const REASONS = {
  FACT_MISMATCH: { zh: '与事实不符', en: 'does not match the facts' },
  OUTDATED: { zh: '数据过期', en: 'out of date' },
  MISSING: { zh: '记录缺失', en: 'record missing' },
  OTHER: { zh: '其他', en: 'other' },
} as const satisfies Record<string, Text>
export type Reason = keyof typeof REASONS

export const RESOLUTIONS = {
  CONFIRMED: { zh: '核实无误', en: 'confirmed correct' },
  CORRECTED: { zh: '已更正', en: 'corrected' },
  REJECTED: { zh: '不予受理', en: 'not accepted' },
} as const satisfies Record<string, Text>
export type Resolution = keyof typeof RESOLUTIONS

export const REASON_CODES = Object.keys(REASONS) as Reason[]
export const RESOLUTION_CODES = Object.keys(RESOLUTIONS) as Resolution[]
