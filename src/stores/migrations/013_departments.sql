-- The one owner of department code → name (统一社会信用代码 → 名称). A credit code registered
-- again under a different name is refused (DEPARTMENT_NAME_CONFLICT) instead of silently
-- relabelling every past record. Filled from the systems and catalogue providers known so far.
CREATE TABLE departments (
  code        text PRIMARY KEY,
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO departments (code, name)
  SELECT DISTINCT ON (department_code) department_code, department_name FROM systems
  ORDER BY department_code, updated_at DESC
ON CONFLICT (code) DO NOTHING;
INSERT INTO departments (code, name)
  SELECT DISTINCT ON (entry->'provider'->>'code') entry->'provider'->>'code', entry->'provider'->>'name'
  FROM catalog_resources WHERE entry->'provider'->>'code' IS NOT NULL
  ORDER BY entry->'provider'->>'code', created_at DESC
ON CONFLICT (code) DO NOTHING;
