// The subject report as a signed statement (关于个人/企业信息被查询情况的说明): an HTML
// document in Chinese that can be handed to the citizen or enterprise, with a detached
// signature by the node's key over its exact bytes (header Tongban-Statement-Signature),
// verifiable with the node certificate (docs/audit.md, "Signed statements").
import { createHash } from 'node:crypto'
import type { Signer } from '../pki/suites.js'
import type { SubjectReport } from './subject-report.js'

export const STATEMENT_SIGNATURE_HEADER = 'tongban-statement-signature'

const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

const DECISION_ZH: Record<string, string> = { allowed: '已提供', denied: '已拒绝', failed: '未完成' }

/** The statement's HTML, in Chinese first (English in the headings), self-contained (no external resources). */
export function statementHtml(r: SubjectReport): string {
  const period = `${r.from ?? '（最早记录）'} 至 ${r.to ?? r.generatedAt}`
  const summary = r.departments.map((d) => `<tr><td>${esc(d.name ?? d.department ?? '（未知）')}</td><td>${esc(d.department)}</td><td>${d.accesses}</td><td>${d.allowed}</td><td>${d.refused}</td><td>${esc(d.first)}</td><td>${esc(d.last)}</td></tr>`).join('\n')
  const rows = r.accesses.map((a) => `<tr><td>${esc(a.time)}</td><td>${esc(a.departmentName ?? a.department)}</td><td>${esc(a.resourceName ?? a.resource)}</td><td>${esc(a.purposeName ?? a.purpose)}</td><td>${esc(a.caseId)}</td><td>${esc(DECISION_ZH[a.decision] ?? a.decision)}</td><td><code>${esc(a.requestId)}</code></td></tr>`).join('\n')
  return `<!DOCTYPE html>
<html lang="zh-CN">
<head><meta charset="utf-8"><title>信息查询情况说明 Statement of access</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px;font-size:90%}</style></head>
<body>
<h1>关于信息被查询情况的说明<br><small>Statement of access to data about a subject</small></h1>
<p>数据主体（Subject）：${esc(r.subject.masked ?? '（已脱敏）')}　标识摘要：<code>${esc(r.subject.hash)}</code></p>
<p>出具节点（Node）：${esc(r.node.name)}（${esc(r.node.id)}）　出具时间（Generated）：${esc(r.generatedAt)}</p>
<p>统计期间（Period）：${esc(period)}　查询总次数（Total）：${r.total}${r.truncated ? '（仅列出部分明细 truncated）' : ''}</p>
<h2>按部门汇总 By department</h2>
<table><tr><th>部门</th><th>统一社会信用代码</th><th>次数</th><th>已提供</th><th>已拒绝/未完成</th><th>首次</th><th>最近</th></tr>
${summary}
</table>
<h2>查询明细 Accesses</h2>
<table><tr><th>时间</th><th>部门</th><th>资源</th><th>事由</th><th>办件编号</th><th>结果</th><th>请求标识</th></tr>
${rows}
</table>
<p>说明：本文件列出经本节点对上述数据主体信息的全部查询（含被拒绝的查询；被拒绝的查询未提供任何数据）。每条明细的请求标识可用于调取完整的签名审计记录。本文件由节点密钥签名（见响应头 Tongban-Statement-Signature），任何改动都会使签名失效。</p>
<p lang="en">${esc(r.note)} This document is signed by the node's key (response header Tongban-Statement-Signature); any change invalidates the signature.</p>
</body>
</html>
`
}

/** The detached signature over the document's bytes: `alg=…; kid=…; sha256=…; sig=…` (base64url). */
export function signStatement(bytes: Buffer, signer: Signer, kid: string): string {
  const sha256 = createHash('sha256').update(bytes).digest('base64url')
  return `alg=${signer.alg}; kid=${kid}; sha256=${sha256}; sig=${signer.sign(bytes).toString('base64url')}`
}

/** Parses the header (for verifiers and tests). */
export function parseStatementSignature(header: string): { alg: string; kid: string; sha256: string; sig: Buffer } | null {
  const parts = Object.fromEntries(header.split(';').map((p) => p.trim().split('=', 2)).filter((kv) => kv.length === 2))
  if (!parts.alg || !parts.kid || !parts.sig || !parts.sha256) return null
  return { alg: parts.alg, kid: parts.kid, sha256: parts.sha256, sig: Buffer.from(parts.sig, 'base64url') }
}
