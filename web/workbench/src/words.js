// Codes as words: share types, statuses, decisions, problem codes.
import { i18n, codeWords } from './i18n.js'
const t = (k) => i18n.global.t(k)
const has = (k) => i18n.global.te(k)
export const shareWord = (s) => (has(`share.${s}`) ? t(`share.${s}`) : s)
export const statusWord = (s) => (has(`status.${s}`) ? t(`status.${s}`) : s)
export const decisionWord = (s) => (has(`decision.${s}`) ? t(`decision.${s}`) : s)
export const problemWord = (c) => (c ? codeWords(c) : '')
export const fmtTime = (x) => (x ? new Date(x).toLocaleString(i18n.global.locale.value === 'en' ? 'en-GB' : 'zh-CN', { hour12: false }) : '')
