#!/usr/bin/env python3
"""Tongban department client example (Python 3, standard library + `cryptography`).

  query:  gets an access token with a private_key_jwt assertion (docs/integration.md §1),
          calls POST /v1/verify/identity with the context headers (§2) and saves the answer
          (status, exact body bytes, Tongban-Evidence header, node certificate) as JSON.
  verify: checks a saved answer offline (docs/evidence.md): body digest, inclusion proof to
          the signed root, checkpoint signature by the node certificate named by kid, that
          certificate's chain to the CA. Prints OK, or names the check that failed; exit 0/1.

  python3 tongban_client.py query --base-url http://127.0.0.1:8443 --client-id jn-civil-affairs \
      --key certs/clients/jn-civil-affairs.key.pem --id-number ... --name ... \
      --purpose 'SA-01' --case-id JN-2026-1000 --out answer.json
  python3 tongban_client.py verify --answer answer.json --ca certs/ca.crt.pem
"""
import argparse
import base64
import datetime
import hashlib
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jcs(value) -> bytes:
    """RFC 8785 for what evidence holds (objects, ASCII keys, strings, integers, null)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --- query -------------------------------------------------------------------------------

def client_assertion(client_id: str, key_pem: bytes, audience: str) -> str:
    key = serialization.load_pem_private_key(key_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SystemExit("this example signs RS256: an RSA key is needed")
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT"}
    claims = {"iss": client_id, "sub": client_id, "aud": audience, "iat": now, "exp": now + 120, "jti": uuid.uuid4().hex}
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    sig = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64url(sig)


def http(method: str, url: str, body: bytes = None, headers: dict = None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, res.headers, res.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def query(args) -> int:
    base = args.base_url.rstrip("/")
    audience = args.audience or base + "/v1/oauth/token"
    with open(args.key, "rb") as f:
        assertion = client_assertion(args.client_id, f.read(), audience)
    form = urllib.parse.urlencode({
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion,
    }).encode()
    status, _, body = http("POST", base + "/v1/oauth/token", form, {"content-type": "application/x-www-form-urlencoded"})
    if status != 200:
        print(f"token: {status} {body.decode('utf-8', 'replace')}", file=sys.stderr)
        return 1
    token = json.loads(body)["access_token"]

    purpose = args.purpose if args.purpose_text is None else args.purpose + ";" + urllib.parse.quote(args.purpose_text, safe="")
    headers = {
        "authorization": "Bearer " + token,
        "content-type": "application/json",
        "tongban-purpose": purpose,
        "tongban-case-id": args.case_id,
    }
    if args.operator:
        headers["tongban-operator"] = args.operator
    payload = json.dumps({"idNumber": args.id_number, "name": args.name}, ensure_ascii=False).encode("utf-8")
    status, res_headers, body = http("POST", base + "/v1/verify/identity", payload, headers)
    # The node's signing certificate, kept with the answer; verify trusts it only through the CA.
    _, _, node = http("GET", base + "/v1/node")
    answer = {
        "status": status,
        "contentType": res_headers.get("content-type"),
        "evidence": res_headers.get("tongban-evidence"),
        "evidenceChain": res_headers.get("tongban-evidence-chain"),
        "body": base64.b64encode(body).decode("ascii"),
        "nodeCertificate": json.loads(node)["certificate"],
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(answer, f, indent=2)
    print(status, body.decode("utf-8", "replace"))
    return 0 if status == 200 else 1


# --- verify ------------------------------------------------------------------------------

class Failed(Exception):
    pass


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_path(leaf: bytes, index: int, size: int, path: list) -> bytes:
    """RFC 9162 §2.1.3.2; the path is bottom-up."""
    if not 0 <= index < size:
        raise Failed("index-out-of-range")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise Failed("bad-inclusion-proof")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Failed("bad-inclusion-proof")
    return r


def verify_signature(alg: str, cert: x509.Certificate, data: bytes, sig: bytes) -> None:
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or alg not in ("RS256", "PS256"):
        raise Failed("unsupported-alg")  # SM2-SM3 needs a GM/T library
    pad = padding.PKCS1v15() if alg == "RS256" else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    try:
        key.verify(sig, data, pad, hashes.SHA256())
    except InvalidSignature:
        raise Failed("bad-signature")


def check_chain(cert: x509.Certificate, ca: x509.Certificate, at: datetime.datetime) -> None:
    try:
        is_ca = ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca or cert.issuer != ca.subject:
        raise Failed("untrusted-certificate")
    key = ca.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        else:
            raise Failed("untrusted-certificate")
    except InvalidSignature:
        raise Failed("untrusted-certificate")
    if at < cert.not_valid_before:
        raise Failed("certificate-not-yet-valid")
    if at > cert.not_valid_after:
        raise Failed("certificate-expired")


def verify_answer(answer: dict, ca_pem: bytes) -> dict:
    try:
        e = json.loads(b64url_decode(answer["evidence"]).decode("utf-8"))
        record, cp = e["record"], e["checkpoint"]
        path = [bytes.fromhex(h) for h in e["path"]]
        sig = b64url_decode(e["sig"])
        if e["v"] != 1:
            raise ValueError("v")
    except (KeyError, TypeError, ValueError) as err:
        raise Failed(f"malformed ({err})")
    body = base64.b64decode(answer["body"])
    if "sha256:" + hashlib.sha256(body).hexdigest() != record["responseDigest"]:
        raise Failed("body-digest-mismatch")
    if e["size"] != cp["size"]:
        raise Failed("size-mismatch")
    if root_from_path(leaf_hash(jcs(record)), e["index"], e["size"], path).hex() != cp["root"]:
        raise Failed("bad-inclusion-proof")
    cert = x509.load_pem_x509_certificate(answer["nodeCertificate"].encode("ascii"))
    if b64url(hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()) != cp["kid"]:
        raise Failed("unknown-kid")
    verify_signature(cp["alg"], cert, jcs(cp), sig)
    at = datetime.datetime.strptime(cp["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    check_chain(cert, x509.load_pem_x509_certificate(ca_pem), at)
    return e


def verify(args) -> int:
    with open(args.answer, encoding="utf-8") as f:
        answer = json.load(f)
    with open(args.ca, "rb") as f:
        ca_pem = f.read()
    try:
        e = verify_answer(answer, ca_pem)
    except Failed as failure:
        print(f"FAILED: {failure}")
        return 1
    cp = e["checkpoint"]
    print(f"OK: record {e['record']['requestId']} is leaf {e['index']} of {e['size']} in checkpoint {cp['chain']}#{cp['seq']}, signed {cp['alg']} by {cp['kid']}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description="Tongban client example")
    sub = ap.add_subparsers(dest="command", required=True)
    q = sub.add_parser("query", help="token + POST /v1/verify/identity, answer saved")
    q.add_argument("--base-url", required=True)
    q.add_argument("--audience", help="token endpoint URL as the node names it (default <base-url>/v1/oauth/token)")
    q.add_argument("--client-id", required=True)
    q.add_argument("--key", required=True, help="the system's RSA private key (PEM)")
    q.add_argument("--id-number", required=True)
    q.add_argument("--name", required=True)
    q.add_argument("--purpose", required=True, help="purpose code, e.g. SA-01")
    q.add_argument("--purpose-text", help="description, sent percent-encoded after ';'")
    q.add_argument("--case-id", required=True)
    q.add_argument("--operator")
    q.add_argument("--out", required=True)
    v = sub.add_parser("verify", help="offline check of a saved answer")
    v.add_argument("--answer", required=True)
    v.add_argument("--ca", required=True, help="the province CA certificate (PEM), obtained out of band")
    args = ap.parse_args()
    return query(args) if args.command == "query" else verify(args)


if __name__ == "__main__":
    sys.exit(main())
