-- The caller's own Tongban-Request-Id (record.clientRequestId): the request id is always the
-- node's own, so a client cannot make its records collide with another's; the client's
-- value stays searchable, shared by the retries of one call. A generated column, like the
-- other search columns (004): nobody sets it apart from the hashed record.
ALTER TABLE audit_records
  ADD COLUMN client_request_id text GENERATED ALWAYS AS (record ->> 'clientRequestId') STORED;
CREATE INDEX audit_records_client_request ON audit_records (client_request_id, time) WHERE client_request_id IS NOT NULL;
