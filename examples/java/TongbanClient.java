// Tongban department client example, JDK 17 only: `java TongbanClient.java <command> ...`.
//   query  <baseUrl> <audience> <clientId> <keyPem (PKCS#8)> <idNumber> <name> <purpose> <caseId> <out.json>
//          private_key_jwt token (docs/integration.md §1), POST /v1/verify/identity with the
//          context headers (§2); saves status, exact body (base64), Tongban-Evidence and the
//          node certificate, the same layout as examples/python/tongban_client.py.
//   verify <answer.json> <caPem>
//          offline (docs/evidence.md): body digest, inclusion proof to the signed root,
//          checkpoint signature (RS256/PS256) by the certificate named by kid, its chain to the
//          CA. Prints OK or FAILED: <check>; exit 0 / 1.
import java.io.ByteArrayInputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.PSSParameterSpec;
import java.time.Instant;
import java.util.*;

public class TongbanClient {
  static final Base64.Encoder B64URL = Base64.getUrlEncoder().withoutPadding();
  static final Base64.Decoder B64URL_D = Base64.getUrlDecoder();

  static class Failed extends Exception {
    Failed(String reason) { super(reason); }
  }

  public static void main(String[] a) throws Exception {
    if (a.length == 10 && a[0].equals("query")) System.exit(query(a));
    if (a.length == 3 && a[0].equals("verify")) System.exit(verify(Path.of(a[1]), Path.of(a[2])));
    System.err.println("usage: query <baseUrl> <audience> <clientId> <keyPem> <idNumber> <name> <purpose> <caseId> <out.json> | verify <answer.json> <caPem>");
    System.exit(2);
  }

  // --- query ---------------------------------------------------------------------------

  static int query(String[] a) throws Exception {
    String base = a[1].replaceAll("/$", ""), audience = a[2], clientId = a[3];
    String pem = Files.readString(Path.of(a[4])).replaceAll("-----[A-Z ]+-----|\\s", "");
    PrivateKey key = KeyFactory.getInstance("RSA").generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(pem)));
    long now = Instant.now().getEpochSecond();
    Map<String, Object> claims = new TreeMap<>(Map.of("iss", clientId, "sub", clientId, "aud", audience, "iat", now, "exp", now + 120, "jti", UUID.randomUUID().toString()));
    String input = b64url(jcs(Map.of("alg", "RS256", "typ", "JWT"))) + "." + b64url(jcs(claims));
    Signature s = Signature.getInstance("SHA256withRSA");
    s.initSign(key);
    s.update(input.getBytes(StandardCharsets.US_ASCII));
    String assertion = input + "." + B64URL.encodeToString(s.sign());

    HttpClient http = HttpClient.newHttpClient();
    String form = "grant_type=client_credentials&client_assertion_type=" + enc("urn:ietf:params:oauth:client-assertion-type:jwt-bearer") + "&client_assertion=" + enc(assertion);
    HttpResponse<String> tok = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded").POST(HttpRequest.BodyPublishers.ofString(form)).build(), HttpResponse.BodyHandlers.ofString());
    if (tok.statusCode() != 200) {
      System.err.println("token: " + tok.statusCode() + " " + tok.body());
      return 1;
    }
    String token = (String) ((Map<?, ?>) new Json(tok.body()).value()).get("access_token");
    String body = new String(jcs(new TreeMap<>(Map.of("idNumber", a[5], "name", a[6]))), StandardCharsets.UTF_8);
    HttpResponse<byte[]> res = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/verify/identity"))
        .header("authorization", "Bearer " + token).header("content-type", "application/json")
        .header("tongban-purpose", a[7]).header("tongban-case-id", a[8])
        .POST(HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8)).build(), HttpResponse.BodyHandlers.ofByteArray());
    // The node's signing certificate, kept with the answer; verify trusts it only through the CA.
    HttpResponse<String> node = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/node")).build(), HttpResponse.BodyHandlers.ofString());
    Map<String, Object> answer = new TreeMap<>();
    answer.put("status", (long) res.statusCode());
    answer.put("evidence", res.headers().firstValue("tongban-evidence").orElse(""));
    answer.put("body", Base64.getEncoder().encodeToString(res.body()));
    answer.put("nodeCertificate", ((Map<?, ?>) new Json(node.body()).value()).get("certificate"));
    Files.write(Path.of(a[9]), jcs(answer));
    System.out.println(res.statusCode() + " " + new String(res.body(), StandardCharsets.UTF_8));
    return res.statusCode() == 200 ? 0 : 1;
  }

  static String enc(String s) { return URLEncoder.encode(s, StandardCharsets.UTF_8); }

  static String b64url(byte[] b) { return B64URL.encodeToString(b); }

  // --- verify --------------------------------------------------------------------------

  static int verify(Path answerFile, Path caFile) throws Exception {
    Map<?, ?> answer = (Map<?, ?>) new Json(Files.readString(answerFile)).value();
    try {
      Map<?, ?> e = check(answer, Files.readAllBytes(caFile));
      Map<?, ?> cp = (Map<?, ?>) e.get("checkpoint");
      System.out.println("OK: leaf " + e.get("index") + " of " + e.get("size") + " in checkpoint " + cp.get("chain") + "#" + cp.get("seq") + ", signed " + cp.get("alg") + " by " + cp.get("kid"));
      return 0;
    } catch (Failed f) {
      System.out.println("FAILED: " + f.getMessage());
      return 1;
    }
  }

  static Map<?, ?> check(Map<?, ?> answer, byte[] caPem) throws Exception {
    Map<?, ?> e, record, cp;
    List<?> path;
    byte[] sig;
    long index, size;
    try {
      e = (Map<?, ?>) new Json(new String(B64URL_D.decode((String) answer.get("evidence")), StandardCharsets.UTF_8)).value();
      record = (Map<?, ?>) e.get("record");
      cp = (Map<?, ?>) e.get("checkpoint");
      path = (List<?>) e.get("path");
      sig = B64URL_D.decode((String) e.get("sig"));
      index = (Long) e.get("index");
      size = (Long) e.get("size");
      if (!Long.valueOf(1).equals(e.get("v")) || record == null || cp == null || path == null) throw new IllegalArgumentException("shape");
    } catch (RuntimeException x) {
      throw new Failed("malformed");
    }
    byte[] body = Base64.getDecoder().decode((String) answer.get("body"));
    if (!("sha256:" + HexFormat.of().formatHex(sha256(body))).equals(record.get("responseDigest"))) throw new Failed("body-digest-mismatch");
    if (size != (Long) cp.get("size")) throw new Failed("size-mismatch");
    byte[] root = rootFromPath(sha256(new byte[] {0}, jcs(record)), index, size, path);
    if (!HexFormat.of().formatHex(root).equals(cp.get("root"))) throw new Failed("bad-inclusion-proof");

    CertificateFactory cf = CertificateFactory.getInstance("X.509");
    X509Certificate cert = (X509Certificate) cf.generateCertificate(new ByteArrayInputStream(((String) answer.get("nodeCertificate")).getBytes(StandardCharsets.US_ASCII)));
    if (!b64url(sha256(cert.getEncoded())).equals(cp.get("kid"))) throw new Failed("unknown-kid");
    Signature s;
    if ("RS256".equals(cp.get("alg"))) {
      s = Signature.getInstance("SHA256withRSA");
    } else if ("PS256".equals(cp.get("alg"))) {
      s = Signature.getInstance("RSASSA-PSS");
      s.setParameter(new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1));
    } else {
      throw new Failed("unsupported-alg"); // SM2-SM3 needs a GM/T provider
    }
    s.initVerify(cert.getPublicKey());
    s.update(jcs(cp));
    if (!s.verify(sig)) throw new Failed("bad-signature");

    X509Certificate ca = (X509Certificate) cf.generateCertificate(new ByteArrayInputStream(caPem));
    try {
      if (ca.getBasicConstraints() < 0 || !cert.getIssuerX500Principal().equals(ca.getSubjectX500Principal())) throw new Failed("untrusted-certificate");
      cert.verify(ca.getPublicKey());
    } catch (java.security.GeneralSecurityException x) {
      throw new Failed("untrusted-certificate");
    }
    Date at = Date.from(Instant.parse((String) cp.get("time")));
    if (at.before(cert.getNotBefore())) throw new Failed("certificate-not-yet-valid");
    if (at.after(cert.getNotAfter())) throw new Failed("certificate-expired");
    return e;
  }

  /** RFC 9162 §2.1.3.2; the path is bottom-up. */
  static byte[] rootFromPath(byte[] leaf, long index, long size, List<?> path) throws Exception {
    if (index < 0 || index >= size) throw new Failed("index-out-of-range");
    long fn = index, sn = size - 1;
    byte[] r = leaf;
    for (Object h : path) {
      byte[] p = HexFormat.of().parseHex((String) h);
      if (sn == 0) throw new Failed("bad-inclusion-proof");
      if ((fn & 1) == 1 || fn == sn) {
        r = sha256(new byte[] {1}, p, r);
        while ((fn & 1) == 0 && fn != 0) { fn >>= 1; sn >>= 1; }
      } else {
        r = sha256(new byte[] {1}, r, p);
      }
      fn >>= 1;
      sn >>= 1;
    }
    if (sn != 0) throw new Failed("bad-inclusion-proof");
    return r;
  }

  static byte[] sha256(byte[]... parts) throws Exception {
    MessageDigest md = MessageDigest.getInstance("SHA-256");
    for (byte[] p : parts) md.update(p);
    return md.digest();
  }

  // --- JSON: a small parser, and RFC 8785 output for objects, strings, integers, null ---

  static byte[] jcs(Object v) {
    StringBuilder sb = new StringBuilder();
    write(sb, v);
    return sb.toString().getBytes(StandardCharsets.UTF_8);
  }

  static void write(StringBuilder sb, Object v) {
    if (v == null) sb.append("null");
    else if (v instanceof String str) quote(sb, str);
    else if (v instanceof Map<?, ?> m) {
      // TreeMap of String orders by UTF-16 code units, as RFC 8785 does.
      TreeMap<String, Object> sorted = new TreeMap<>();
      m.forEach((k, x) -> sorted.put((String) k, x));
      sb.append('{');
      boolean first = true;
      for (Map.Entry<String, Object> en : sorted.entrySet()) {
        if (!first) sb.append(',');
        first = false;
        quote(sb, en.getKey());
        sb.append(':');
        write(sb, en.getValue());
      }
      sb.append('}');
    } else if (v instanceof List<?> l) {
      sb.append('[');
      for (int i = 0; i < l.size(); i++) { if (i > 0) sb.append(','); write(sb, l.get(i)); }
      sb.append(']');
    } else sb.append(v); // Long, Boolean
  }

  static void quote(StringBuilder sb, String s) {
    sb.append('"');
    for (char c : s.toCharArray()) {
      switch (c) {
        case '"' -> sb.append("\\\"");
        case '\\' -> sb.append("\\\\");
        case '\b' -> sb.append("\\b");
        case '\f' -> sb.append("\\f");
        case '\n' -> sb.append("\\n");
        case '\r' -> sb.append("\\r");
        case '\t' -> sb.append("\\t");
        default -> { if (c < 0x20) sb.append(String.format("\\u%04x", (int) c)); else sb.append(c); }
      }
    }
    sb.append('"');
  }

  static class Json {
    final String s;
    int i;
    Json(String s) { this.s = s; }

    Object value() {
      ws();
      char c = s.charAt(i);
      if (c == '{') {
        Map<String, Object> m = new LinkedHashMap<>();
        i++; ws();
        if (s.charAt(i) == '}') { i++; return m; }
        while (true) {
          ws(); String k = string(); ws(); expect(':'); m.put(k, value()); ws();
          if (s.charAt(i++) == '}') return m;
        }
      }
      if (c == '[') {
        List<Object> l = new ArrayList<>();
        i++; ws();
        if (s.charAt(i) == ']') { i++; return l; }
        while (true) { l.add(value()); ws(); if (s.charAt(i++) == ']') return l; }
      }
      if (c == '"') return string();
      if (s.startsWith("null", i)) { i += 4; return null; }
      if (s.startsWith("true", i)) { i += 4; return Boolean.TRUE; }
      if (s.startsWith("false", i)) { i += 5; return Boolean.FALSE; }
      int start = i;
      while (i < s.length() && "-0123456789".indexOf(s.charAt(i)) >= 0) i++;
      if (i < s.length() && ".eE".indexOf(s.charAt(i)) >= 0) throw new IllegalArgumentException("only integers");
      return Long.parseLong(s.substring(start, i));
    }

    String string() {
      expect('"');
      StringBuilder sb = new StringBuilder();
      for (char c; (c = s.charAt(i++)) != '"'; ) {
        if (c != '\\') { sb.append(c); continue; }
        char x = s.charAt(i++);
        switch (x) {
          case 'b' -> sb.append('\b');
          case 'f' -> sb.append('\f');
          case 'n' -> sb.append('\n');
          case 'r' -> sb.append('\r');
          case 't' -> sb.append('\t');
          case 'u' -> { sb.append((char) Integer.parseInt(s.substring(i, i + 4), 16)); i += 4; }
          default -> sb.append(x);
        }
      }
      return sb.toString();
    }

    void ws() { while (i < s.length() && Character.isWhitespace(s.charAt(i))) i++; }

    void expect(char c) { if (s.charAt(i++) != c) throw new IllegalArgumentException("expected " + c); }
  }
}
