-- The workbench (issue 15): the reviewer's inbox and the overview read the pending
-- applications of a providing department by deadline.
CREATE INDEX IF NOT EXISTS applications_pending_due ON applications (provider_department, due_at) WHERE status = 'pending';
