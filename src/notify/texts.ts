// What a person reads of each event: Chinese first, English second; resources by name,
// never by code alone. No data subject is ever named (notices concern applications and grants).
export type NotificationKind = 'reminder' | 'escalation' | 'decision' | 'revocation' | 'expiry' | 'application' | DisputeNoticeKind
/** Disputes (src/disputes/, docs/disputes.md). */
export type DisputeNoticeKind = 'dispute' | 'dispute-reminder' | 'dispute-escalation' | 'dispute-resolution' | 'data-correction'
export interface Text {
  zh: string
  en: string
}

const STATUS: Record<string, Text> = {
  approved: { zh: '已批准', en: 'approved' },
  rejected: { zh: '未获批准', en: 'rejected' },
}

export function texts(kind: Exclude<NotificationKind, DisputeNoticeKind>, resource: string, o: { status?: string; dueAt?: string | null; reason?: string | null } = {}): { title: Text; body: Text } {
  const due = o.dueAt ? o.dueAt.slice(0, 10) : null
  switch (kind) {
    case 'application':
      return {
        title: { zh: `新的共享申请：${resource}`, en: `New sharing application: ${resource}` },
        body: { zh: `有部门申请使用“${resource}”，请在${due ?? '期限'}前审核。`, en: `A department applied to use "${resource}"; please decide by ${due ?? 'the deadline'}.` },
      }
    case 'reminder':
      return {
        title: { zh: `申请即将到期：${resource}`, en: `Application due soon: ${resource}` },
        body: { zh: `“${resource}”的共享申请尚未审核，办理期限为${due ?? '近日'}。`, en: `The application for "${resource}" is still undecided; it is due ${due ?? 'soon'}.` },
      }
    case 'escalation':
      return {
        title: { zh: `申请已超期：${resource}`, en: `Application overdue: ${resource}` },
        body: { zh: `“${resource}”的共享申请已超过办理期限（${due ?? ''}），已上报督办。`, en: `The application for "${resource}" passed its deadline (${due ?? ''}) and has been escalated.` },
      }
    case 'decision': {
      const s = STATUS[o.status ?? ''] ?? { zh: '已办结', en: o.status ?? 'decided' }
      return {
        title: { zh: `申请${s.zh}：${resource}`, en: `Application ${s.en}: ${resource}` },
        body: { zh: `您对“${resource}”的共享申请${s.zh}。${o.reason ? `理由：${o.reason}` : ''}`, en: `Your application for "${resource}" was ${s.en}.${o.reason ? ` Reason: ${o.reason}` : ''}` },
      }
    }
    case 'revocation':
      return {
        title: { zh: `授权已撤销：${resource}`, en: `Grant revoked: ${resource}` },
        body: { zh: `“${resource}”的共享授权已撤销，相关查询将被拒绝。`, en: `The grant for "${resource}" was revoked; queries under it are refused.` },
      }
    case 'expiry':
      return {
        title: { zh: `授权已到期：${resource}`, en: `Grant expired: ${resource}` },
        body: { zh: `“${resource}”的共享授权有效期已届满，如需继续使用请重新申请。`, en: `The grant for "${resource}" has expired; apply again to keep using it.` },
      }
  }
}

/** What a dispute's notice says: the reason and resolution in words (zh, en), never the subject. */
export interface DisputeWords {
  reason: Text
  resolution?: Text
  note?: string | null
  effectiveFrom?: string | null
}

export function disputeTexts(kind: DisputeNoticeKind, resource: string, o: DisputeWords & { dueAt?: string | null }): { title: Text; body: Text } {
  const due = o.dueAt ? o.dueAt.slice(0, 10) : null
  switch (kind) {
    case 'dispute':
      return {
        title: { zh: `收到数据疑义：${resource}`, en: `Data disputed: ${resource}` },
        body: { zh: `有部门对“${resource}”的一次答复提出疑义（${o.reason.zh}），请在${due ?? '期限'}前核实处理。`, en: `A department disputed an answer of "${resource}" (${o.reason.en}); please check and resolve it by ${due ?? 'the deadline'}.` },
      }
    case 'dispute-reminder':
      return {
        title: { zh: `疑义即将到期：${resource}`, en: `Dispute due soon: ${resource}` },
        body: { zh: `“${resource}”的数据疑义尚未处理，办理期限为${due ?? '近日'}。`, en: `The dispute about "${resource}" is still open; it is due ${due ?? 'soon'}.` },
      }
    case 'dispute-escalation':
      return {
        title: { zh: `疑义已超期：${resource}`, en: `Dispute overdue: ${resource}` },
        body: { zh: `“${resource}”的数据疑义已超过办理期限（${due ?? ''}），已上报督办。`, en: `The dispute about "${resource}" passed its deadline (${due ?? ''}) and has been escalated.` },
      }
    case 'dispute-resolution': {
      const r = o.resolution ?? { zh: '已办结', en: 'resolved' }
      const eff = o.effectiveFrom ? { zh: `，自${o.effectiveFrom}起生效`, en: `, effective from ${o.effectiveFrom}` } : { zh: '', en: '' }
      return {
        title: { zh: `疑义已处理（${r.zh}）：${resource}`, en: `Dispute resolved (${r.en}): ${resource}` },
        body: { zh: `您对“${resource}”提出的疑义已处理：${r.zh}${eff.zh}。${o.note ? `说明：${o.note}` : ''}`, en: `Your dispute about "${resource}" was resolved: ${r.en}${eff.en}.${o.note ? ` Note: ${o.note}` : ''}` },
      }
    }
    case 'data-correction':
      return {
        title: { zh: `数据已更正：${resource}`, en: `Data corrected: ${resource}` },
        body: {
          zh: `您部门曾收到的“${resource}”中某一数据主体的数据经核实已更正${o.effectiveFrom ? `（自${o.effectiveFrom}起）` : ''}，请复核据此办理的事项。`,
          en: `Data of "${resource}" about a subject your department received has been corrected${o.effectiveFrom ? ` (from ${o.effectiveFrom})` : ''}; please review the cases that relied on it.`,
        },
      }
  }
}
