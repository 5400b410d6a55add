// zh-CN first, English second; the choice is remembered in localStorage. Problem codes are not
// copied here: their words come from the gateway (GET /v1/problems/codes, src/problems/codes.ts).
import { createI18n } from 'vue-i18n'
import { ref } from 'vue'

const zh = {
  app: { title: '通办工作台', lang: 'English', signIn: '统一身份认证登录', signOut: '退出登录', signedOut: '请通过统一身份认证登录工作台。', loading: '加载中…' },
  nav: { catalogue: '资源目录', applications: '共享申请', notifications: '消息', audit: '审计', overview: '概览' },
  share: { unconditional: '无条件共享', conditional: '有条件共享', none: '不予共享' },
  status: { pending: '待审核', approved: '已批准', rejected: '已驳回', withdrawn: '已撤回', expired: '已过期', revoked: '已撤销', active: '有效', retired: '已停用', sent: '已发送', delivered: '已送达' },
  decision: { allow: '允许', deny: '拒绝', approve: '批准', reject: '驳回' },
  cat: { search: '搜索名称或代码', provider: '提供方', shareType: '共享类型', tier: '层级', openType: '开放类型', code: '资源代码', name: '资源名称', items: '信息项', legalBasis: '依据', updateCycle: '更新周期', versions: '版本', heldBy: '所在节点', register: '登记资源', edit: '编辑', retire: '停用', compare: '对比', save: '保存', cancel: '取消', conflict: '该资源已被他人修改。', reload: '重新加载并对比', mine: '我的修改', theirs: '当前版本', summary: '摘要', format: '格式', condition: '共享条件', back: '返回目录', add: '添加', remove: '删除' },
  app_: { apply: '申请共享', resource: '资源', items: '信息项', purposes: '查询事由', validTo: '有效期至', validFrom: '有效期起', quota: '每日限额', basis: '依据或案例说明', submit: '提交申请', inbox: '待审核', mine: '我的申请', received: '本单位收到的申请', grants: '授权', workingDaysLeft: '剩余工作日', overdue: '已超期', deadline: '截止', approve: '批准', reject: '驳回', reason: '理由', usedToday: '今日已用', revoke: '撤销', history: '历程', applicant: '申请方', provider: '提供方', status: '状态' },
  note: { inbox: '消息', markRead: '标为已读', unread: '未读', kind: { reminder: '提醒', escalation: '督办', decision: '审核结果', revocation: '撤销', expiry: '到期', application: '新申请' } },
  audit: { search: '检索', caseId: '案件号', kind: '类别', resource: '资源', subject: '数据主体身份证号', from: '起', to: '止', results: '检索结果', records: '条记录', detail: '记录详情', integrity: '完整性校验', check: '校验', report: '数据主体报告', print: '打印签名报告', exportCsv: '导出 CSV', exportXlsx: '导出 XLSX', includeOwn: '显示审计员本人的操作', caller: '调用方', time: '时间', outcome: '结果', reason: '原因', operator: '操作人', accesses: '次访问', departments: '个部门' },
  ov: { title: '概览', queriesToday: '今日查询', refusals: '拒绝原因', nearDeadline: '临近截止的申请', department: '部门' },
  err: { network: '网络错误', unknown: '未知错误' },
}
const en = {
  app: { title: 'Tongban workbench', lang: '中文', signIn: 'Sign in (unified identity)', signOut: 'Sign out', signedOut: 'Sign in to the workbench through the unified identity service.', loading: 'Loading…' },
  nav: { catalogue: 'Catalogue', applications: 'Applications', notifications: 'Notifications', audit: 'Audit', overview: 'Overview' },
  share: { unconditional: 'Unconditional', conditional: 'Conditional', none: 'Not shared' },
  status: { pending: 'Pending', approved: 'Approved', rejected: 'Rejected', withdrawn: 'Withdrawn', expired: 'Expired', revoked: 'Revoked', active: 'Active', retired: 'Retired', sent: 'Sent', delivered: 'Delivered' },
  decision: { allow: 'Allowed', deny: 'Refused', approve: 'Approve', reject: 'Reject' },
  cat: { search: 'Search name or code', provider: 'Provider', shareType: 'Share type', tier: 'Tier', openType: 'Open type', code: 'Code', name: 'Name', items: 'Items', legalBasis: 'Basis', updateCycle: 'Update cycle', versions: 'Versions', heldBy: 'Held by node', register: 'Register resource', edit: 'Edit', retire: 'Retire', compare: 'Compare', save: 'Save', cancel: 'Cancel', conflict: 'Someone else changed this resource.', reload: 'Reload and compare', mine: 'My changes', theirs: 'Current version', summary: 'Summary', format: 'Format', condition: 'Condition', back: 'Back to catalogue', add: 'Add', remove: 'Remove' },
  app_: { apply: 'Apply', resource: 'Resource', items: 'Items', purposes: 'Purposes', validTo: 'Valid to', validFrom: 'Valid from', quota: 'Daily quota', basis: 'Legal basis or case', submit: 'Submit application', inbox: 'To review', mine: 'My applications', received: 'Applications to my department', grants: 'Grants', workingDaysLeft: 'Working days left', overdue: 'Overdue', deadline: 'Deadline', approve: 'Approve', reject: 'Reject', reason: 'Reason', usedToday: 'Used today', revoke: 'Revoke', history: 'History', applicant: 'Applicant', provider: 'Provider', status: 'Status' },
  note: { inbox: 'Notifications', markRead: 'Mark read', unread: 'Unread', kind: { reminder: 'Reminder', escalation: 'Escalation', decision: 'Decision', revocation: 'Revocation', expiry: 'Expiry', application: 'New application' } },
  audit: { search: 'Search', caseId: 'Case id', kind: 'Kind', resource: 'Resource', subject: 'Subject id number', from: 'From', to: 'To', results: 'Results', records: 'records', detail: 'Record detail', integrity: 'Integrity', check: 'Check', report: 'Subject report', print: 'Print signed statement', exportCsv: 'Export CSV', exportXlsx: 'Export XLSX', includeOwn: "Show the auditor's own calls", caller: 'Caller', time: 'Time', outcome: 'Outcome', reason: 'Reason', operator: 'Operator', accesses: 'access(es)', departments: 'department(s)' },
  ov: { title: 'Overview', queriesToday: 'Queries today', refusals: 'Refusals by reason', nearDeadline: 'Applications near their deadline', department: 'Department' },
  err: { network: 'Network error', unknown: 'Unknown error' },
}

const saved = typeof localStorage !== 'undefined' ? localStorage.getItem('tongban.workbench.locale') : null
export const i18n = createI18n({ legacy: false, locale: saved === 'en' ? 'en' : 'zh-CN', fallbackLocale: 'zh-CN', messages: { 'zh-CN': zh, en } })

export function setLocale(l) {
  i18n.global.locale.value = l
  localStorage.setItem('tongban.workbench.locale', l)
  document.documentElement.lang = l
}

// Problem codes in words, from the gateway.
export const problemCodes = ref({})
export async function loadProblemCodes() {
  const res = await fetch('/v1/problems/codes')
  if (!res.ok) return
  const { codes } = await res.json()
  problemCodes.value = Array.isArray(codes) ? Object.fromEntries(codes.map((c) => [c.code, c])) : codes
}
export function codeWords(code) {
  const c = problemCodes.value[code]
  if (!c) return code
  return i18n.global.locale.value === 'en' ? c.en : c.zh
}
