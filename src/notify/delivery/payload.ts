// What a department's system receives of a notice: the inbox entry as JSON, plus who it is for.
export interface NoticeRow {
  id: string
  department: string
  system: string | null
  kind: string
  title: { zh: string; en: string }
  body: { zh: string; en: string }
  link: string | null
  created_at: string
}

export const noticePayload = (n: NoticeRow, node: string) => ({
  id: n.id,
  node,
  department: n.department,
  system: n.system,
  kind: n.kind,
  title: n.title,
  body: n.body,
  ...(n.link ? { link: n.link } : {}),
  createdAt: new Date(n.created_at).toISOString(),
})
