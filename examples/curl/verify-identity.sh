#!/usr/bin/env bash
# Tongban with bash, curl and openssl only (no jq): a private_key_jwt token
# (docs/integration.md §1), POST /v1/verify/identity with the context headers (§2), the answer
# saved (body.bin, evidence.txt, node.crt.pem) and checked (docs/evidence.md): the body digest,
# the kid naming the node certificate, the checkpoint signature (RS256/PS256), and the node
# certificate's chain to the CA. The inclusion proof needs a Merkle fold: see the Python or
# Java example for that.
#
#   BASE_URL=http://127.0.0.1:8443 CLIENT_ID=jn-civil-affairs KEY=certs/clients/jn-civil-affairs.key.pem \
#   ID_NUMBER=... NAME=... PURPOSE='SA-01' CASE_ID=JN-2026-1000 CA=certs/ca.crt.pem OUT=answer \
#     examples/curl/verify-identity.sh query
#   CA=certs/ca.crt.pem examples/curl/verify-identity.sh verify answer
# Optional: AUDIENCE (default $BASE_URL/v1/oauth/token), OPERATOR. Exit 0 OK, 1 not valid.
set -euo pipefail

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
b64url_decode() {
  local s; s=$(tr '_-' '/+' <<<"$1"); while (( ${#s} % 4 )); do s+='='; done
  openssl base64 -d -A <<<"$s"
}
# The string or integer value of "key" in a flat JSON object text (the checkpoint has no nesting).
field() { grep -o "\"$1\":\(\"[^\"]*\"\|[0-9]*\)" <<<"$2" | head -1 | cut -d: -f2-; }

query() {
  local aud=${AUDIENCE:-$BASE_URL/v1/oauth/token} now jti header claims input sig token
  now=$(date +%s); jti=$(openssl rand -hex 16)
  header=$(printf '{"alg":"RS256","typ":"JWT"}' | b64url)
  claims=$(printf '{"iss":"%s","sub":"%s","aud":"%s","iat":%d,"exp":%d,"jti":"%s"}' \
    "$CLIENT_ID" "$CLIENT_ID" "$aud" "$now" $((now + 120)) "$jti" | b64url)
  input="$header.$claims"
  sig=$(printf '%s' "$input" | openssl dgst -sha256 -sign "$KEY" -binary | b64url)
  token=$(curl -sS --fail-with-body -X POST "$BASE_URL/v1/oauth/token" \
    --data-urlencode grant_type=client_credentials \
    --data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
    --data-urlencode "client_assertion=$input.$sig" | grep -o '"access_token":"[^"]*"' | cut -d'"' -f4)
  mkdir -p "$OUT"
  local extra=(); [[ -n ${OPERATOR:-} ]] && extra=(-H "tongban-operator: $OPERATOR")
  local status
  status=$(curl -sS -o "$OUT/body.bin" -D "$OUT/headers.txt" -w '%{http_code}' -X POST "$BASE_URL/v1/verify/identity" \
    -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -H "tongban-purpose: $PURPOSE" -H "tongban-case-id: $CASE_ID" "${extra[@]}" \
    --data-binary "{\"idNumber\":\"$ID_NUMBER\",\"name\":\"$NAME\"}")
  grep -i '^tongban-evidence:' "$OUT/headers.txt" | cut -d' ' -f2 | tr -d '\r\n' >"$OUT/evidence.txt"
  # The node's signing certificate; trusted only through the CA below.
  curl -sS "$BASE_URL/v1/node" | grep -o '"certificate":"[^"]*"' | cut -d'"' -f4 | sed 's/\\r//g; s/\\n/\n/g' >"$OUT/node.crt.pem"
  echo "$status $(cat "$OUT/body.bin")"
  [[ $status == 200 ]]
}

fail() { echo "FAILED: $1"; exit 1; }

verify() {
  local dir=$1 evidence cp alg kid digest tmp
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' RETURN
  evidence=$(b64url_decode "$(cat "$dir/evidence.txt")") || fail malformed
  digest=$(grep -o '"responseDigest":"sha256:[0-9a-f]*"' <<<"$evidence" | cut -d'"' -f4)
  [[ -n $digest ]] || fail malformed
  [[ "sha256:$(openssl dgst -sha256 -r "$dir/body.bin" | cut -d' ' -f1)" == "$digest" ]] || fail body-digest-mismatch

  cp=$(grep -o '"checkpoint":{[^}]*}' <<<"$evidence" | cut -d: -f2-)
  # JCS(checkpoint): its keys sorted, no white space (values need no escaping here).
  printf '{"alg":%s,"chain":%s,"kid":%s,"node":%s,"prev":%s,"root":%s,"seq":%s,"size":%s,"time":%s}' \
    "$(field alg "$cp")" "$(field chain "$cp")" "$(field kid "$cp")" "$(field node "$cp")" "$(field prev "$cp")" \
    "$(field root "$cp")" "$(field seq "$cp")" "$(field size "$cp")" "$(field time "$cp")" >"$tmp/checkpoint.json"
  alg=$(field alg "$cp" | tr -d '"'); kid=$(field kid "$cp" | tr -d '"')

  [[ "$(openssl x509 -in "$dir/node.crt.pem" -outform DER | openssl dgst -sha256 -binary | b64url)" == "$kid" ]] || fail unknown-kid
  openssl x509 -in "$dir/node.crt.pem" -pubkey -noout >"$tmp/node.pub.pem"
  b64url_decode "$(grep -o '"sig":"[^"]*"' <<<"$evidence" | cut -d'"' -f4)" >"$tmp/sig.bin"
  local opts=()
  case $alg in
    RS256) ;;
    PS256) opts=(-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32) ;;
    *) fail unsupported-alg ;;
  esac
  openssl dgst -sha256 -verify "$tmp/node.pub.pem" "${opts[@]}" -signature "$tmp/sig.bin" "$tmp/checkpoint.json" >/dev/null 2>&1 || fail bad-signature
  # Checked now, not at the checkpoint's time (openssl verify -attime could do that).
  openssl verify -CAfile "$CA" "$dir/node.crt.pem" >/dev/null 2>&1 || fail untrusted-certificate
  echo "OK: body digest, checkpoint signature ($alg, kid $kid) and certificate chain"
}

case ${1:-} in
  query) query && verify "$OUT" ;;
  verify) verify "$2" ;;
  *) echo "usage: $0 query | verify <dir>" >&2; exit 2 ;;
esac
