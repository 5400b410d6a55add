// zh-CN first, English second; the choice is remembered in localStorage. Problem codes are not
// copied here: their words come from the gateway (GET /v1/problems/codes, src/problems/codes.ts).
import { createI18n } from 'vue-i18n'
import { ref } from 'vue'

const zh = {
  app: { title: '通办工作台', lang: 'English', signIn: '统一身份认证登录', signOut: '退出登录', signedOut: '请通过统一身份认证登录工作台。', loading: '加载中…' },
  nav: { catalogue: '资源目录', applications: '共享申请', notifications: '消息', audit: '审计', overview: '概览', disputes: '疑义' },
  share: { unconditional: '无条件共享', conditional: '有条件共享', none: '不予共享' },
  status: { pending: '待审核', approved: '已批准', rejected: '已驳回', withdrawn: '已撤回', expired: '已过期', revoked: '已撤销', active: '有效', retired: '已停用', sent: '已发送', delivered: '已送达' },
  decision: { allow: '允许', deny: '拒绝', approve: '批准', reject: '驳回' },
  cat: { search: '搜索名称或代码', provider: '提供方', shareType: '共享类型', tier: '层级', openType: '开放类型', code: '资源代码', name: '资源名称', items: '信息项', legalBasis: '依据', updateCycle: '更新周期', versions: '版本', heldBy: '所在节点', register: '登记资源', edit: '编辑', retire: '停用', compare: '对比', save: '保存', cancel: '取消', conflict: '该资源已被他人修改。', reload: '重新加载并对比', mine: '我的修改', theirs: '当前版本', summary: '摘要', format: '格式', condition: '共享条件', back: '返回目录', add: '添加', remove: '删除' },
  app_: { apply: '申请共享', resource: '资源', items: '信息项', purposes: '查询事由', validTo: '有效期至', validFrom: '有效期起', quota: '每日限额', basis: '依据或案例说明', submit: '提交申请', inbox: '待审核', mine: '我的申请', received: '本单位收到的申请', grants: '授权', workingDaysLeft: '剩余工作日', overdue: '已超期', deadline: '截止', approve: '批准', reject: '驳回', reason: '理由', usedToday: '今日已用', revoke: '撤销', history: '历程', applicant: '申请方', provider: '提供方', status: '状态' },
  note: { inbox: '消息', markRead: '标为已读', unread: '未读', kind: { reminder: '提醒', escalation: '督办', decision: '审核结果', revocation: '撤销', expiry: '到期', application: '新申请' } },
  audit: { search: '检索', caseId: '案件号', kind: '类别', resource: '资源', subject: '数据主体身份证号', from: '起', to: '止', results: '检索结果', records: '条记录', detail: '记录详情', integrity: '完整性校验', check: '校验', report: '数据主体报告', print: '打印签名报告', exportCsv: '导出 CSV', exportXlsx: '导出 XLSX', includeOwn: '显示审计员本人的操作', caller: '调用方', time: '时间', outcome: '结果', reason: '原因', operator: '操作人', accesses: '次访问', departments: '个部门' },
  ov: { title: '概览', queriesToday: '今日查询', refusals: '拒绝原因', nearDeadline: '临近截止的申请', department: '部门' },
  dsp: {
    file: '发起疑义', requestId: '答复请求编号', evidence: '答复凭证（Tongban-Evidence）', answer: '答复原文', loadFile: '从文件载入', loadHint: '可载入本部门系统保存的答复文件（含 requestId、evidence、answer 的 JSON，或答复原文）',
    items: '有误的数据项', itemsHint: '填入答复凭证后显示该资源的数据项', reason: '疑义原因', description: '疑义说明', descriptionHint: '请描述错误情况，不要填写姓名或身份证号码（数据主体可由答复确定）', submit: '提交疑义', filed: '疑义已提交',
    mine: '本部门提出的疑义', inbox: '疑义待办', received: '本部门收到的疑义', stats: '统计', resource: '资源', consumer: '提出部门', provider: '提供部门', status: '状态', dueAt: '截止', left: '剩余', overdue: '已超期', days: '天', hours: '小时', workingDays: '个工作日', reminded: '已提醒', escalated: '已督办', resolution: '处理结果', createdAt: '提出时间', note: '处理说明', effectiveFrom: '生效日期', resolve: '处理疑义', resolveSubmit: '提交处理结果', resolvedAt: '处理时间', history: '处理历程', sealed: '每一步均已单独签名存证（Tongban-Evidence），可像答复一样校验。', actor: '操作方', told: '已告知的其他使用部门', toldDept: '使用部门', answers: '次答复', notifiedAt: '告知时间', back: '返回疑义列表', detail: '疑义详情', delivery: '转送', ownerNode: '数据所在节点', lastError: '最近错误', local: '本节点', automatic: '通办（自动）',
    filedN: '提出', openN: '未处理', resolvedN: '已处理', inTime: '按期处理率', median: '处理时长中位数', per10k: '每万次答复更正数', none: '暂无疑义',
    reasons: { FACT_MISMATCH: '与事实不符', OUTDATED: '数据过期', MISSING: '记录缺失', OTHER: '其他' },
    resolutions: { CONFIRMED: '核实无误', CORRECTED: '已更正', REJECTED: '不予受理' },
    statuses: { open: '待处理', resolved: '已处理' },
    actions: { filed: '提出疑义', reminded: '到期提醒', escalated: '超期督办', resolved: '处理完毕', 'consumers-told': '告知其他使用部门' },
    deliveries: { forwarding: '转送中', delivered: '已送达', refused: '被拒绝', failed: '转送失败' },
    required: '必填',
  },
  err: { network: '网络错误', unknown: '未知错误' },
}
const en = {
  app: { title: 'Tongban workbench', lang: '中文', signIn: 'Sign in (unified identity)', signOut: 'Sign out', signedOut: 'Sign in to the workbench through the unified identity service.', loading: 'Loading…' },
  nav: { catalogue: 'Catalogue', applications: 'Applications', notifications: 'Notifications', audit: 'Audit', overview: 'Overview', disputes: 'Disputes' },
  share: { unconditional: 'Unconditional', conditional: 'Conditional', none: 'Not shared' },
  status: { pending: 'Pending', approved: 'Approved', rejected: 'Rejected', withdrawn: 'Withdrawn', expired: 'Expired', revoked: 'Revoked', active: 'Active', retired: 'Retired', sent: 'Sent', delivered: 'Delivered' },
  decision: { allow: 'Allowed', deny: 'Refused', approve: 'Approve', reject: 'Reject' },
  cat: { search: 'Search name or code', provider: 'Provider', shareType: 'Share type', tier: 'Tier', openType: 'Open type', code: 'Code', name: 'Name', items: 'Items', legalBasis: 'Basis', updateCycle: 'Update cycle', versions: 'Versions', heldBy: 'Held by node', register: 'Register resource', edit: 'Edit', retire: 'Retire', compare: 'Compare', save: 'Save', cancel: 'Cancel', conflict: 'Someone else changed this resource.', reload: 'Reload and compare', mine: 'My changes', theirs: 'Current version', summary: 'Summary', format: 'Format', condition: 'Condition', back: 'Back to catalogue', add: 'Add', remove: 'Remove' },
  app_: { apply: 'Apply', resource: 'Resource', items: 'Items', purposes: 'Purposes', validTo: 'Valid to', validFrom: 'Valid from', quota: 'Daily quota', basis: 'Legal basis or case', submit: 'Submit application', inbox: 'To review', mine: 'My applications', received: 'Applications to my department', grants: 'Grants', workingDaysLeft: 'Working days left', overdue: 'Overdue', deadline: 'Deadline', approve: 'Approve', reject: 'Reject', reason: 'Reason', usedToday: 'Used today', revoke: 'Revoke', history: 'History', applicant: 'Applicant', provider: 'Provider', status: 'Status' },
  note: { inbox: 'Notifications', markRead: 'Mark read', unread: 'Unread', kind: { reminder: 'Reminder', escalation: 'Escalation', decision: 'Decision', revocation: 'Revocation', expiry: 'Expiry', application: 'New application' } },
  audit: { search: 'Search', caseId: 'Case id', kind: 'Kind', resource: 'Resource', subject: 'Subject id number', from: 'From', to: 'To', results: 'Results', records: 'records', detail: 'Record detail', integrity: 'Integrity', check: 'Check', report: 'Subject report', print: 'Print signed statement', exportCsv: 'Export CSV', exportXlsx: 'Export XLSX', includeOwn: "Show the auditor's own calls", caller: 'Caller', time: 'Time', outcome: 'Outcome', reason: 'Reason', operator: 'Operator', accesses: 'access(es)', departments: 'department(s)' },
  ov: { title: 'Overview', queriesToday: 'Queries today', refusals: 'Refusals by reason', nearDeadline: 'Applications near their deadline', department: 'Department' },
  dsp: {
    file: 'File a dispute', requestId: "Answer's request id", evidence: "Answer's evidence (Tongban-Evidence)", answer: 'Answer body (exact)', loadFile: 'Load from file', loadHint: "Load the answer your department's system saved (JSON with requestId, evidence, answer; or the answer body itself)",
    items: 'Items believed wrong', itemsHint: "The resource's items appear once the evidence is entered", reason: 'Reason', description: 'Description', descriptionHint: 'Describe the error; do not enter names or id numbers (the subject is known from the answer)', submit: 'File dispute', filed: 'Dispute filed',
    mine: "My department's disputes", inbox: 'Disputes to resolve', received: 'Disputes about our resources', stats: 'Statistics', resource: 'Resource', consumer: 'Filed by', provider: 'Provider', status: 'Status', dueAt: 'Due', left: 'Left', overdue: 'Overdue', days: 'd', hours: 'h', workingDays: 'working day(s)', reminded: 'Reminded', escalated: 'Escalated', resolution: 'Resolution', createdAt: 'Filed at', note: 'Note', effectiveFrom: 'Effective from', resolve: 'Resolve', resolveSubmit: 'Submit resolution', resolvedAt: 'Resolved at', history: 'History', sealed: 'Each step is sealed with its own evidence (Tongban-Evidence) and verifies like an answer.', actor: 'Actor', told: 'Other consumers told', toldDept: 'Consumer department', answers: 'answer(s)', notifiedAt: 'Told at', back: 'Back to disputes', detail: 'Dispute', delivery: 'Forwarding', ownerNode: 'Node holding the data', lastError: 'Last error', local: 'this node', automatic: 'Tongban (automatic)',
    filedN: 'Filed', openN: 'Open', resolvedN: 'Resolved', inTime: 'Resolved in time', median: 'Median time to resolve', per10k: 'Corrections per 10,000 answers', none: 'No disputes',
    reasons: { FACT_MISMATCH: 'Does not match the facts', OUTDATED: 'Out of date', MISSING: 'Record missing', OTHER: 'Other' },
    resolutions: { CONFIRMED: 'Confirmed correct', CORRECTED: 'Corrected', REJECTED: 'Not accepted' },
    statuses: { open: 'Open', resolved: 'Resolved' },
    actions: { filed: 'Filed', reminded: 'Reminder', escalated: 'Escalated', resolved: 'Resolved', 'consumers-told': 'Other consumers told' },
    deliveries: { forwarding: 'Forwarding', delivered: 'Delivered', refused: 'Refused', failed: 'Forwarding failed' },
    required: 'Required',
  },
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
