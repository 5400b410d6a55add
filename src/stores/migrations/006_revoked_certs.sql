-- Revoked client certificates (`tongban pki revoke <clientId>`). A system whose registered
-- certificate is listed here gets no access token (AUTH_CLIENT_CERT_REVOKED), and tokens it
-- already holds stop working; every replica reloads its registry on the `systems` message.
-- Keyed by the certificate's thumbprint: a newly issued certificate is not revoked.
CREATE TABLE revoked_certs (
  cert_thumbprint  text PRIMARY KEY,
  client_id        text NOT NULL,
  revoked_at       timestamptz NOT NULL DEFAULT now(),
  reason           text
);
CREATE INDEX revoked_certs_client ON revoked_certs (client_id);
