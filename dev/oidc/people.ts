// The five sample people of the development provider (docs/people.md). Departments and
// credit codes are those of config/systems.json, so the ceiling rule (a person never holds a
// role their department has no registered system for) grants each the role shown.
// Every password is `tongban`. Role names are the provider's own; the gateway maps them
// (people.roleMap: catalogue-admin → catalog-admin, provider-reviewer → provider,
// applicant → consumer, auditor → auditor).

export interface DevPerson {
  /** Login name, also the subject (sub) of the person's tokens. */
  username: string
  name: string
  department: { code: string; name: string }
  region: string
  roles: string[]
}

export const DEV_PASSWORD = 'tongban'

export const DEV_PEOPLE: readonly DevPerson[] = [
  { username: 'admin', name: '张伟', department: { code: '11320000MB00000565', name: '江苏省政务服务管理办公室' }, region: '320000', roles: ['catalogue-admin'] },
  { username: 'police', name: '李娜', department: { code: '11320000014000120T', name: '江苏省公安厅' }, region: '320000', roles: ['provider-reviewer'] },
  { username: 'land', name: '王芳', department: { code: '11320000MB0000091R', name: '江苏省自然资源厅' }, region: '320000', roles: ['provider-reviewer'] },
  { username: 'applicant', name: '刘洋', department: { code: '11320115MB0000012H', name: '南京市江宁区民政局' }, region: '320115', roles: ['applicant'] },
  { username: 'auditor', name: '陈静', department: { code: '11320000MB0000078D', name: '江苏省审计厅' }, region: '320000', roles: ['auditor'] },
]

/**
 * People the tests need beyond the five: `nobody` holds no role the gateway knows, `greedy`
 * claims catalogue admin and auditor at once, `overreach` claims a role (auditor) its
 * department (江宁区民政局) holds no system for. Same password.
 */
export const DEV_TEST_PEOPLE: readonly DevPerson[] = [
  { username: 'nobody', name: '赵磊', department: { code: '11320115MB0000012H', name: '南京市江宁区民政局' }, region: '320115', roles: ['visitor'] },
  { username: 'greedy', name: '孙丽', department: { code: '11320000MB00000565', name: '江苏省政务服务管理办公室' }, region: '320000', roles: ['catalogue-admin', 'auditor'] },
  { username: 'overreach', name: '周强', department: { code: '11320115MB0000012H', name: '南京市江宁区民政局' }, region: '320115', roles: ['applicant', 'auditor'] },
]
