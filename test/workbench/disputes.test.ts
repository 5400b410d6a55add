// 疑义 in the workbench end to end (headless Chromium, a real node, the development OpenID
// Connect provider): the 江宁区民政局 system verifies a person and keeps the answer (request
// id, evidence, exact body); its person 刘洋 is refused a malformed request id (errors at the
// fields), an edited body and an id number in the description (the problems in words), then
// files from the saved file; 公安厅's person 李娜 finds it in the inbox and
// (reminded, escalated, overdue on a short deadline) corrects it with an effective date (the other department that received the subject is
// told); 刘洋 sees the resolution; the auditor 陈静 sees the statistics row. Screenshots:
// test/artifacts/workbench/disputes-*.png.
import t from 'tap'
import { context } from '../helpers/harness.js'
import { startWorkbench, workbenchMissing } from '../helpers/workbench-browser.js'
import { waitFor } from '../helpers/tiers.js'

// Four sign-ins through the provider in a real browser on a shared machine.
t.setTimeout(300_000)

const missing = workbenchMissing()
if (missing) {
  t.fail(missing)
  process.exit(1)
}

const RESOURCE = '101001/00001'
const PERSON = { idNumber: '321081196204019768', name: '周洁红' }
// A 3-second deadline (reminder at half of it): the provider meets the dispute reminded,
// escalated and overdue in the inbox, without waiting for working days.
const w = await startWorkbench('wbdisputes', { TONGBAN_DISPUTE_DEADLINE_SECONDS: '3' })
const { h } = w
t.teardown(() => w.close())

// Two departments' systems verify the same person: 江宁 disputes its answer; 南京住建 is then
// among the consumers told of the correction.
const verify = async (client: string) => h.app.inject({
  method: 'POST', url: '/v1/verify/identity',
  headers: { authorization: `Bearer ${await h.token(client)}`, ...context() },
  payload: PERSON,
})
const other = await verify('nj-housing')
const answer = await verify('jn-civil-affairs')
const saved = {
  requestId: String(answer.headers['tongban-request-id']),
  evidence: String(answer.headers['tongban-evidence']),
  answer: answer.body,
}

t.test('the systems got answers to dispute', async (t) => {
  t.equal(other.statusCode, 200)
  t.equal(answer.statusCode, 200)
  t.match(saved.requestId, /^[0-9A-HJKMNP-TV-Z]{26}$/)
})

t.test('consumer files, provider corrects, consumer sees it, auditor counts it', async (t) => {
  // (1) the consumer's person: an edited body is refused, the problem shown in words.
  const consumer = await w.signIn('applicant', '刘洋', '/workbench/disputes')
  t.ok(await consumer.isVisible('nav a[data-screen="disputes"]:has-text("疑义")'), 'the nav entry 疑义')
  await consumer.waitForSelector('#dispute-file')
  // Nothing filled but a malformed request id: the schema's errors at their fields.
  await consumer.fill('#dispute-request-id', 'not-a-request-id')
  await consumer.click('#dispute-submit')
  await consumer.waitForSelector('#dispute-problem:has-text("请求内容不符合规范")')
  await consumer.waitForSelector('.el-form-item:has(#dispute-request-id) .el-form-item__error')
  t.match(await consumer.textContent('.el-form-item:has(#dispute-request-id) .el-form-item__error'), /pattern/, "the request id is marked at its field (the schema's detail)")
  await w.shot(consumer, 'disputes-file-errors')
  await consumer.fill('#dispute-request-id', saved.requestId)
  await consumer.waitForSelector('#dispute-problem', { state: 'detached' })
  await consumer.waitForSelector('.el-form-item__error', { state: 'detached' })
  t.equal(await consumer.locator('.el-form-item__error').count(), 0, 'editing clears the problem and the field errors')
  await consumer.fill('#dispute-evidence', saved.evidence)
  await consumer.fill('#dispute-answer', `${saved.answer} `)
  // The items come from the catalogue entry of the resource the evidence names.
  await consumer.waitForSelector('#dispute-items .el-checkbox:has-text("match")')
  await consumer.click('#dispute-items .el-checkbox:has-text("match")')
  await consumer.click('#dispute-reason .el-radio:has-text("数据过期")')
  await consumer.fill('#dispute-description', '申请人已于上月更正姓名，核验结果应为一致。')
  await consumer.click('#dispute-submit')
  await consumer.waitForSelector('#dispute-problem')
  t.equal((await consumer.textContent('#dispute-problem'))?.trim(), '答复凭证校验未通过', 'DISPUTE_EVIDENCE_INVALID in words')
  t.notMatch(await consumer.textContent('#dispute-file'), /DISPUTE_EVIDENCE_INVALID/, 'not the code')
  await w.shot(consumer, 'disputes-file-refused')
  // An id number in the description is refused in words too (the answer is right this time).
  await consumer.fill('#dispute-answer', saved.answer)
  await consumer.fill('#dispute-description', `身份证号 ${PERSON.idNumber} 的核验结果有误`)
  await consumer.click('#dispute-submit')
  await consumer.waitForSelector('#dispute-problem:has-text("疑义说明中含有身份证号码")')
  await consumer.fill('#dispute-description', '申请人已于上月更正姓名，核验结果应为一致。')
  t.equal((await h.query('SELECT count(*)::int AS n FROM disputes'))[0].n, 0, 'nothing filed')

  // The answer as the department's system saved it, loaded from the file: filed.
  await consumer.setInputFiles('#dispute-file-input', { name: 'answer.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(saved)) })
  await consumer.waitForFunction((body) => (document.querySelector('#dispute-answer') as HTMLTextAreaElement)?.value === body, saved.answer)
  await w.shot(consumer, 'disputes-file')
  await consumer.click('#dispute-submit')
  await consumer.waitForSelector('#dispute')
  const [row] = await h.query('SELECT id, reason, items, status FROM disputes')
  t.match(row, { reason: 'OUTDATED', items: ['match'], status: 'open' }, 'filed with the reason and item chosen')
  t.equal(new URL(consumer.url()).pathname, `/workbench/disputes/${row.id}`, 'the dispute page opens')
  t.match(await consumer.textContent('#dispute-status'), /待处理/)
  t.match(await consumer.textContent('#dispute-history'), /提出疑义/)
  t.match(await consumer.textContent('#dispute'), /每一步均已单独签名存证/)
  t.match(await consumer.textContent('#dispute-delivery'), /本节点/, 'a local dispute')
  t.notOk(await consumer.locator('#resolve').count(), 'the consumer cannot resolve')
  await w.shot(consumer, 'disputes-filed')
  await consumer.click('#dispute-back')
  await consumer.waitForSelector('#dispute-mine .el-table__row:has-text("待处理")')
  await w.signOut(consumer)

  // (2) the provider's person: the inbox by deadline (overdue and escalated by now), the
  // dispute page, 已更正 with a date.
  await waitFor('the escalation', async () => (await h.query('SELECT escalated_at FROM disputes'))[0].escalated_at !== null)
  const provider = await w.signIn('police', '李娜', '/workbench/disputes')
  await provider.waitForSelector(`#dispute-inbox .el-table__row:has-text("${RESOURCE}")`)
  t.match(await provider.textContent('#dispute-inbox .el-table__row'), /南京市江宁区民政局/, 'the filing department, by name')
  t.match(await provider.textContent('#dispute-inbox .el-table__row'), /数据过期/, 'the reason in words')
  t.match(await provider.textContent('#dispute-inbox .el-table__row'), /已超期/, 'overdue marked')
  t.match(await provider.textContent('#dispute-inbox .el-table__row'), /已督办/, 'escalated marked')
  t.notOk(await provider.locator('#dispute-file').count(), 'the provider files nothing here')
  await w.shot(provider, 'disputes-inbox')
  await provider.click(`#dispute-inbox .el-table__row:has-text("${RESOURCE}")`)
  await provider.waitForSelector('#resolve')
  t.equal(await provider.locator('#dispute-told').count(), 0, 'nobody told before a correction')
  await provider.click('#resolve-resolution .el-radio:has-text("已更正")')
  t.ok(await provider.isDisabled('#resolve-submit'), 'no note, no date: not yet')
  await provider.fill('#resolve-note', '已核实户籍信息并更正姓名记录')
  t.ok(await provider.isDisabled('#resolve-submit'), 'a correction needs its effective date')
  await provider.fill('#resolve-effective-from', '2026-11-01')
  await provider.keyboard.press('Enter')
  await provider.waitForSelector('#resolve-submit:not([disabled])')
  await w.shot(provider, 'disputes-resolve')
  await provider.click('#resolve-submit')
  await provider.waitForSelector('#dispute-resolution:has-text("已更正")')
  t.match(await provider.textContent('#dispute-history'), /到期提醒[\s\S]*超期督办[\s\S]*处理完毕/, 'every step in order')
  t.match(await provider.textContent('#dispute-history'), /告知其他使用部门 · 操作方: 通办（自动）/, 'the automatic steps in words')
  await provider.waitForSelector('#dispute-told .el-table__row')
  t.match(await provider.textContent('#dispute-told'), /南京市住房保障和房产局/, 'the other department that received the subject is told, by name')
  t.notOk(await provider.locator('#resolve').count(), 'resolved: no form')
  await w.shot(provider, 'disputes-resolved')
  const [done] = await h.query("SELECT status, resolution, to_char(effective_from, 'YYYY-MM-DD') AS effective_from, resolved_by FROM disputes")
  t.match(done, { status: 'resolved', resolution: 'CORRECTED', effective_from: '2026-11-01' })
  t.match(done.resolved_by, /^person:/, "resolved under the person's session")
  await w.signOut(provider)

  // (3) the consumer's person sees the resolution.
  const back = await w.signIn('applicant', '刘洋', '/workbench/disputes')
  await back.waitForSelector('#dispute-mine .el-table__row:has-text("已更正")')
  t.match(await back.textContent('#dispute-mine .el-table__row'), /2026-11-01/, 'with its effective date')
  await w.shot(back, 'disputes-mine')
  await w.signOut(back)

  // (4) the auditor: the statistics row (in Chinese, then in English).
  const auditor = await w.signIn('auditor', '陈静', '/workbench/disputes')
  await auditor.waitForSelector(`#dispute-stats .el-table__row:has-text("${RESOURCE}")`)
  const stats = await auditor.textContent(`#dispute-stats .el-table__row:has-text("${RESOURCE}")`)
  t.match(stats, /0%/, 'resolved late: none in time')
  t.notMatch(stats, /100%/)
  t.notOk(await auditor.locator('#dispute-file, #dispute-inbox').count(), 'the auditor neither files nor resolves')
  await w.shot(auditor, 'disputes-stats')
  await auditor.click('#lang')
  await auditor.waitForSelector('#dispute-stats h2:has-text("Statistics")')
  await auditor.waitForSelector('nav a[data-screen="disputes"]:has-text("Disputes")')
  await w.shot(auditor, 'disputes-stats-en')
  await auditor.click('#lang')
  await auditor.waitForSelector('nav a[data-screen="disputes"]:has-text("疑义")')
  await w.signOut(auditor)

  t.notOk(w.requests.some((u) => u.includes(PERSON.idNumber)), 'the raw id number never appears in a URL')
  t.same(w.errors, [], 'no script errors')
})

t.test('a person without a disputes role has no 疑义 entry', async (t) => {
  const admin = await w.signIn('admin', '张伟', '/workbench/catalogue')
  await admin.waitForSelector('nav a[data-screen="catalogue"]')
  t.equal(await admin.locator('nav a[data-screen="disputes"]').count(), 0)
  await w.signOut(admin)
})
