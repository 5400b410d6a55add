// What a person reads of each event: Chinese first, English second; resources by name,
// never by code alone. No data subject is ever named (notices concern applications and grants).
export type NotificationKind = 'reminder' | 'escalation' | 'decision' | 'revocation' | 'expiry' | 'application'
export interface Text {
  zh: string
  en: string
}

const STATUS: Record<string, Text> = {
  approved: { zh: '已批准', en: 'approved' },
  rejected: { zh: '未获批准', en: 'rejected' },
}

export function texts(kind: NotificationKind, resource: string, o: { status?: string; dueAt?: string | null; reason?: string | null } = {}): { title: Text; body: Text } {
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
