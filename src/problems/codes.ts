// Every problem code the gateway can answer (and every audit reason it records), in one
// typed list: the Problem constructor takes a ProblemCode, so a code not listed here fails
// the typecheck. docs/problems.md is generated from this file (npm run gen:problem-docs);
// test/problems/codes.test.ts checks that src/ uses no other code and every code here is used.

export interface CodeInfo {
  /** The HTTP statuses this code is answered with (200: an audit reason on an answer that succeeded). */
  readonly status: readonly number[]
  /** What it means, in English (also the OpenAPI example's summary). */
  readonly en: string
  /** What it means, in words a civil servant at the counter understands. */
  readonly zh: string
  /** What the client (or its operator) should do. */
  readonly action: string
  /** Listed although no literal in src/ raises it: why (built from another value, or forwarded). */
  readonly reserved?: string
}

const RETRY = 'retry later (with backoff); nothing was released'
const FIX_REQUEST = 'correct the request and send it again'
const NEW_TOKEN = 'get a new access token (POST /v1/oauth/token)'
const CALL_OPERATOR = 'report it to the operator of this node with the request id'
const NODE_PEER = 'a node-to-node call: check the topology and node certificates of both nodes'
const LICENCE_REFUSE = 'do not accept the licence; the answer lists every check'
const INTEGRITY = 'audit reason of GET /v1/audit/integrity, derived from the first failure kind; report it to the audit officer'

export const PROBLEM_CODES = {
  // ---- input: the request itself -------------------------------------------------
  INPUT_INVALID: { status: [400], en: 'the body, query or a header does not match the schema; `errors` lists JSON pointers', zh: '请求内容不符合规范', action: `${FIX_REQUEST} (see \`errors\`)` },
  INPUT_MALFORMED_JSON: { status: [400], en: 'the body is not valid JSON', zh: '请求内容不是有效的 JSON', action: FIX_REQUEST },
  INPUT_MALFORMED_NDJSON: { status: [400], en: 'a line of an NDJSON upload is not valid JSON', zh: '批量上传文件中有一行格式错误', action: 'fix the line named in `detail` and upload again' },
  INPUT_EMPTY_BODY: { status: [400], en: 'the request body is empty', zh: '请求内容为空', action: 'send a JSON body' },
  INPUT_TOO_LARGE: { status: [413], en: 'the body is larger than the limit', zh: '请求内容过大', action: 'send less (split a batch into several)' },
  INPUT_CASE_ID_PERSONAL_DATA: { status: [400], en: 'Tongban-Case-Id holds a GB 11643 id number or a GB 32100 credit code: personal data never enters the append-only audit log', zh: '办件编号中含有身份证号码或统一社会信用代码（个人信息不得写入审计日志）', action: "use the case's own number, not the person's" },
  INPUT_OPERATOR_PERSONAL_DATA: { status: [400], en: 'Tongban-Operator holds a GB 11643 id number or a GB 32100 credit code: personal data never enters the audit log', zh: '经办人标识中含有身份证号码或统一社会信用代码', action: "use the civil servant's staff id, not an id number" },
  INPUT_PURPOSE_PERSONAL_DATA: { status: [400], en: 'the purpose description holds a GB 11643 id number or a GB 32100 credit code: personal data never enters the audit log', zh: '事由说明中含有身份证号码或统一社会信用代码', action: 'describe the purpose without naming the person' },
  INPUT_REQUEST_ID_PERSONAL_DATA: { status: [400], en: 'Tongban-Request-Id holds a GB 11643 id number or a GB 32100 credit code: personal data never enters the audit log', zh: '请求标识中含有身份证号码或统一社会信用代码', action: 'use a random or sequential id of your own' },
  INPUT_UNREPRESENTABLE: { status: [400], en: 'a value of the request (NUL, an unpaired UTF-16 surrogate) cannot be recorded in the audit log', zh: '请求中含有无法记入审计日志的字符（空字符或不成对的代理项）', action: FIX_REQUEST },
  INPUT_UNSUPPORTED_MEDIA_TYPE: { status: [415], en: 'send application/json (or NDJSON where accepted)', zh: '请求内容类型不受支持', action: 'send Content-Type: application/json (or application/x-ndjson for batches)' },
  INPUT_BAD_URL: { status: [400], en: 'the URL is not validly percent-encoded', zh: '请求地址编码错误', action: 'percent-encode the URL correctly' },
  INPUT_URL_TOO_LONG: { status: [414], en: 'a segment of the URL is too long', zh: '请求地址过长', action: 'shorten the URL segment' },
  INPUT_INVALID_ID_NUMBER: { status: [400], en: 'a GB 11643 id number fails its check character, date or province prefix', zh: '身份证号码校验未通过', action: 'check the id number with the applicant (check character, date of birth, region)' },
  INPUT_INVALID_CREDIT_CODE: { status: [400], en: 'a GB 32100 unified social credit code fails its check character or structure', zh: '统一社会信用代码校验未通过', action: 'check the credit code against the business licence' },
  INPUT_UNKNOWN_REGION: { status: [400], en: 'an id number or credit code names a province that does not exist', zh: '证件号码中的行政区划代码不存在', action: 'check the first digits of the number with the applicant' },
  INPUT_PERIOD_REVERSED: { status: [400], en: 'a period (from, to) starts after it ends: refused before anything leaves the gateway', zh: '查询期间的开始日期晚于结束日期', action: 'swap or correct the dates' },
  INPUT_PURPOSE_MISSING: { status: [400], en: 'header Tongban-Purpose is required', zh: '未填写查询事由', action: 'send the Tongban-Purpose header (a code from GET /v1/purposes)' },
  INPUT_PURPOSE_INVALID: { status: [400], en: 'Tongban-Purpose must start with a purpose code', zh: '查询事由格式不正确', action: 'start Tongban-Purpose with a purpose code from GET /v1/purposes' },
  INPUT_PURPOSE_UNKNOWN: { status: [400], en: 'the purpose code is not in GET /v1/purposes', zh: '查询事由不在本节点的事由目录中', action: 'use a purpose code listed by GET /v1/purposes' },
  INPUT_CASE_ID_MISSING: { status: [400], en: 'header Tongban-Case-Id is required', zh: '未填写办件编号', action: 'send the Tongban-Case-Id header (the case being handled)' },
  INPUT_CASE_ID_INVALID: { status: [400], en: 'Tongban-Case-Id: 1–64 of A-Z a-z 0-9 - _ . : /', zh: '办件编号格式不正确', action: 'use 1–64 of A-Z a-z 0-9 - _ . : /' },
  INPUT_OPERATOR_INVALID: { status: [400], en: 'Tongban-Operator: 1–64 of A-Z a-z 0-9 - _ . : @', zh: '经办人标识格式不正确', action: 'use 1–64 of A-Z a-z 0-9 - _ . : @ (an account id, never a name)' },
  NOT_FOUND: { status: [404], en: 'no such route', zh: '请求的接口不存在', action: 'check the method and path against /openapi.json' },

  // ---- onboarding: registering systems from a certificate request (POST /v1/systems) ----
  ONBOARD_CSR_MALFORMED: { status: [400], en: 'csr is not a PEM PKCS#10 certificate request', zh: '证书申请文件（CSR）格式不正确', action: 'send the PEM file made by `tongban pki request` (or openssl req -new)' },
  ONBOARD_CSR_SIGNATURE_INVALID: { status: [400], en: 'the self-signature of the certificate request does not verify', zh: '证书申请文件的签名校验未通过', action: 'make the request again with the system\'s own key' },
  ONBOARD_CSR_CN_MISMATCH: { status: [400], en: 'the subject CN of the certificate request is not the clientId', zh: '证书申请中的系统标识（CN）与登记的系统标识不一致', action: 'make the request with --client-id equal to the clientId being registered' },
  ONBOARD_CSR_KEY_WEAK: { status: [400], en: 'the RSA key in the request has fewer than 2048 bits', zh: '证书申请中的RSA密钥长度不足2048位', action: 'generate an RSA key of 2048 bits or more, or an EC P-256 key (`tongban pki request [--ec]`)' },
  ONBOARD_CSR_KEY_UNSUPPORTED: { status: [400], en: 'the key in the request is neither RSA nor EC', zh: '证书申请中的密钥类型不受支持（须为RSA或EC）', action: 'generate an RSA (≥ 2048 bits) or EC P-256/P-384 key (`tongban pki request [--ec]`)' },
  ONBOARD_CSR_CURVE_UNSUPPORTED: { status: [400], en: 'the EC key in the request is not on P-256 or P-384', zh: '证书申请中的EC密钥曲线不受支持（须为P-256或P-384）', action: 'generate the key on P-256 (prime256v1) or P-384 (secp384r1); named curves only' },
  ONBOARD_CA_OFFLINE: { status: [503], en: 'this node holds no CA key: certificates are issued offline by the provincial CA', zh: '本节点未配置签发机构密钥，不能在线签发证书', action: 'have the certificate issued by the provincial CA, then register it with `tongban pki issue`/`tongban prepare`' },
  ONBOARD_SYSTEM_EXISTS: { status: [409], en: 'a system with this clientId is already registered', zh: '该系统标识已登记', action: 'choose another clientId, or renew the certificate (POST /v1/systems/{clientId}/certificate)' },
  ONBOARD_SYSTEM_UNKNOWN: { status: [404], en: 'no system is registered under this clientId', zh: '系统未登记', action: 'check the clientId (GET /v1/systems)' },
  ONBOARD_ROLES_CONFLICT: { status: [400], en: 'catalog-admin and auditor cannot be held by one system', zh: '目录管理员与审计员角色不能授予同一系统', action: 'register two systems, one per role' },
  ONBOARD_REGION_UNKNOWN: { status: [400], en: 'region is not a current GB/T 2260 division code', zh: '行政区划代码不存在', action: 'use a current six-digit GB/T 2260 code' },
  DEPARTMENT_NAME_CONFLICT: { status: [409], en: 'the credit code is already registered under a different department name', zh: '该统一社会信用代码已以其他部门名称登记', action: 'use the registered name (`registeredName`), or ask the node operator to correct it' },

  // ---- authentication and roles ---------------------------------------------------
  AUTH_TOKEN_MISSING: { status: [401], en: 'no access token (Authorization: Bearer …)', zh: '未提供访问令牌', action: 'send Authorization: Bearer <token>' },
  AUTH_TOKEN_EXPIRED: { status: [401], en: 'the access token has expired: get a new one', zh: '访问令牌已过期', action: NEW_TOKEN },
  AUTH_TOKEN_NOT_YET_VALID: { status: [401], en: 'the access token is not valid yet', zh: '访问令牌尚未生效', action: 'check the client clock, then get a new token' },
  AUTH_TOKEN_INVALID: { status: [401], en: 'the access token is not valid for this node', zh: '访问令牌无效', action: NEW_TOKEN },
  AUTH_ROLE_REQUIRED: { status: [403], en: 'the caller lacks the role this operation needs', zh: '无权执行此操作（缺少所需角色）', action: 'ask the node operator for the role, or use a system that has it' },
  AUTH_ROLE_CONFLICT: { status: [403], en: 'the system holds roles that may not be combined in one token', zh: '系统角色互相冲突，不能同时授予', action: 'ask the node operator to correct the system registration' },
  AUTH_NOT_PROVIDER: { status: [403], en: 'only the providing department decides this application', zh: '仅数据提供部门可审批此申请', action: 'let the providing department decide' },
  AUTH_SESSION_MISSING: { status: [401], en: 'no session: sign in at the workbench (GET /workbench/auth/login)', zh: '尚未登录或登录已失效，请重新登录', action: 'sign in again (GET /workbench/auth/login)' },
  AUTH_SESSION_EXPIRED: { status: [401], en: 'the session has ended: idle too long, or past its absolute limit', zh: '登录已超时，请重新登录', action: 'sign in again (GET /workbench/auth/login)' },
  AUTH_CSRF: { status: [403], en: 'a state-changing request made with the session cookie lacks the session\'s x-csrf-token header (or sends a wrong one)', zh: '请求缺少有效的防伪令牌（x-csrf-token），已拒绝', action: 'send header x-csrf-token with the csrfToken of GET /v1/session' },
  AUTH_NO_ROLE: { status: [403], en: 'the person signed in at the identity provider, but holds no role here that their department may exercise', zh: '您的账号在本系统没有可用的角色，请联系本单位管理员', action: "ask your department's administrator to grant a role at the identity provider (and the node operator whether the department may hold it)" },
  AUTH_SIGNIN_STATE: { status: [400], en: 'the sign-in answer does not belong to a sign-in started in this browser, or was already used', zh: '登录请求已失效或已被使用，请重新登录', action: 'start the sign-in again from the workbench' },
  AUTH_SIGNIN_FAILED: { status: [401], en: 'the identity provider refused the sign-in, or its answer (code, ID token) failed the checks', zh: '统一身份认证未通过，请重新登录', action: 'sign in again; if it keeps failing, report it to the operator of this node with the request id' },
  AUTH_SIGNIN_CLAIMS: { status: [403], en: "the identity provider's answer lacks the department (a valid GB 32100 credit code) or the region of the person", zh: '身份认证信息中缺少所属单位或行政区划，无法登录', action: "ask the identity provider's administrator to record the person's department and region" },
  AUTH_SIGNIN_UNAVAILABLE: { status: [503], en: 'the identity provider cannot be reached (discovery, token or userinfo endpoint)', zh: '统一身份认证服务暂不可用', action: 'retry later; the operator checks people.issuer and the provider' },
  AUTH_CLIENT_CERT_REVOKED: { status: [401], en: 'the certificate of the calling system has been revoked', zh: '系统证书已被吊销', action: 'have a new certificate issued and registered' },
  AUTH_CLIENT_CERT_EXPIRED: { status: [401], en: 'the registered certificate of the system is not valid now', zh: '系统证书不在有效期内', action: 'have the certificate renewed and registered' },
  AUTH_CLIENT_CERT_UNTRUSTED: { status: [401], en: 'the registered certificate is not issued by the trusted CA', zh: '系统证书不是受信任机构签发的', action: 'register a certificate issued by the provincial CA' },
  AUTH_UNKNOWN_CLIENT: { status: [401], en: 'no system is registered under this client id', zh: '系统未登记', action: 'check the client id, or have the system registered' },
  AUTH_CLIENT_SUSPENDED: { status: [401], en: 'the calling system is suspended', zh: '系统已被停用', action: 'ask the node operator why the system was suspended' },
  AUTH_UNSUPPORTED_GRANT_TYPE: { status: [400], en: 'grant_type must be client_credentials', zh: '令牌申请方式不受支持', action: 'send grant_type=client_credentials' },
  AUTH_ASSERTION_TYPE: { status: [400], en: 'client_assertion_type must be the JWT bearer type (RFC 7523)', zh: '客户端凭证类型不正确', action: 'send client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer' },
  AUTH_ASSERTION_MALFORMED: { status: [401], en: 'client_assertion is not a readable JWT', zh: '客户端凭证格式错误', action: 'send a signed JWT as client_assertion' },
  AUTH_ASSERTION_INVALID: { status: [401], en: 'client_assertion lacks a claim or has a wrong one (iss, sub, aud, exp, jti)', zh: '客户端凭证内容不正确', action: 'build the assertion as the SDK does (iss = sub = client id, aud, exp, jti)' },
  AUTH_ASSERTION_EXPIRED: { status: [401], en: 'client_assertion has expired', zh: '客户端凭证已过期', action: 'sign a fresh assertion (check the client clock)' },
  AUTH_ASSERTION_LIFETIME: { status: [401], en: 'client_assertion is valid for longer than allowed', zh: '客户端凭证有效期过长', action: 'let the assertion expire within the allowed lifetime' },
  AUTH_ASSERTION_BAD_SIGNATURE: { status: [401], en: 'client_assertion is not signed by the registered key', zh: '客户端凭证签名验证未通过', action: 'sign with the key of the registered certificate' },
  AUTH_ASSERTION_WRONG_AUDIENCE: { status: [401], en: 'client_assertion aud must be the token endpoint URL', zh: '客户端凭证的接收方不正确', action: "set aud to this node's token endpoint URL" },
  AUTH_ASSERTION_BEFORE_REPLAY_WINDOW: { status: [401], en: 'the client_assertion was issued before the replay store (Redis) last lost its memory: it cannot be told apart from a replay', zh: '客户端凭证签发时间早于防重放记录的起始时间，请重新签发', action: 'sign a new assertion (with iat now) and ask again' },
  AUTH_ASSERTION_REPLAYED: { status: [401], en: 'this client_assertion (jti) was already used', zh: '客户端凭证已被使用过', action: 'sign a new assertion with a new jti for every token' },
  REPLAY_CHECK_UNAVAILABLE: { status: [503], en: 'the replay store (Redis) is unavailable: no token or node call can be admitted', zh: '系统暂时无法核验请求（防重放服务不可用）', action: RETRY },
  REVOCATION_UNAVAILABLE: { status: [503], en: 'Redis is unavailable: a revocation could not be made binding on every replica', zh: '吊销暂时无法生效（消息服务不可用）', action: 'retry the revocation later; nothing was changed' },
  METRICS_LOOPBACK_ONLY: { status: [403], en: '/metrics is served to loopback clients unless a metrics token is configured', zh: '监控数据仅限本机读取', action: 'scrape from loopback, or configure TONGBAN_METRICS_TOKEN' },

  // ---- sharing policy, grants, quotas -----------------------------------------------
  POLICY_NO_GRANT: { status: [403], en: 'a conditional resource needs an approved grant (POST /v1/applications)', zh: '未获授权（无有效共享授权）', action: 'apply for a grant (POST /v1/applications) and wait for the decision' },
  POLICY_SHARE_NONE: { status: [403], en: 'the resource is not shared through the gateway (不予共享)', zh: '该数据不予共享', action: 'obtain the data another way; the gateway will not release it' },
  POLICY_PURPOSE_NOT_GRANTED: { status: [403], en: 'the grant does not cover the stated purpose', zh: '授权不包含本次查询事由', action: 'query under a granted purpose, or apply for this one' },
  POLICY_GRANT_REVOKED: { status: [403], en: 'the grant has been revoked', zh: '共享授权已被撤销', action: 'apply for a new grant' },
  POLICY_GRANT_EXPIRED: { status: [403], en: 'the grant has expired', zh: '共享授权已过期', action: 'apply for a new grant' },
  POLICY_GRANT_NOT_YET_VALID: { status: [403], en: 'the grant is not valid yet', zh: '共享授权尚未生效', action: 'wait until the grant starts' },
  QUOTA_EXCEEDED: { status: [429], en: "the grant's daily quota is used up", zh: '今日查询次数已用完', action: 'wait until tomorrow, or apply for a larger quota' },
  QUOTA_UNAVAILABLE: { status: [503], en: 'the quota store is unavailable: conditional data cannot be released', zh: '系统暂时无法核验配额', action: RETRY },
  RATE_LIMITED: { status: [429], en: 'too many queries per second from this system: retry shortly', zh: '查询过于频繁，请稍后再试', action: 'slow down and retry after a second' },
  GRANT_NOT_FOUND: { status: [404], en: 'no such grant', zh: '共享授权不存在', action: 'check the grant id' },
  GRANT_BOUND_TO_OTHER_SYSTEM: { status: [403], en: 'the grant is bound to another system of the department: only that system (or the provider) may give it up', zh: '该共享授权绑定于本部门的其他系统，仅该系统或数源部门可撤销', action: 'ask the system the grant is bound to, or the providing department' },
  GRANT_NOT_ACTIVE: { status: [409], en: 'the grant is no longer active (revoked or expired)', zh: '共享授权已失效', action: 'nothing to revoke; apply for a new grant if needed' },

  // ---- applications (共享申请) --------------------------------------------------------
  APPLICATION_NOT_FOUND: { status: [404], en: 'no such application', zh: '共享申请不存在', action: 'check the application id' },
  APPLICATION_ID_TAKEN: { status: [409], en: 'another application has this id', zh: '申请编号已被占用', action: 'send the application with a new id' },
  APPLICATION_ALREADY_DECIDED: { status: [409], en: 'the application has already been decided', zh: '该申请已审批', action: 'reload the application to see the decision' },
  APPLICATION_HELD_ELSEWHERE: { status: [409], en: 'the application is decided at the node that owns the resource', zh: '该申请由数据所在节点审批', action: 'decide it at the owning node' },
  APPLICATION_INVALID_PERIOD: { status: [400], en: 'validTo must be after validFrom, in the future, and at most 3 years later', zh: '授权期限不正确', action: 'correct the period (at most 3 years, ending in the future)' },
  APPLICATION_UNKNOWN_ITEM: { status: [400], en: 'the resource has no such item', zh: '申请的数据项不存在', action: 'apply only for items listed in the catalogue' },
  // ---- disputes (疑义数据校核, docs/disputes.md) -------------------------------------
  DISPUTE_ANSWER_NOT_FOUND: { status: [404], en: 'no answer with this request id is recorded at this node', zh: '本节点没有该请求编号的答复记录', action: "check the answer's Tongban-Request-Id (a dispute is filed at the node that answered)" },
  DISPUTE_NOT_YOUR_ANSWER: { status: [403], en: 'only the department that received the answer may dispute it', zh: '仅收到该答复的部门可提出疑义', action: 'let the department that received the answer file the dispute' },
  DISPUTE_EVIDENCE_INVALID: { status: [400], en: 'the Tongban-Evidence given does not verify with the answer bytes given (the detail names the check that failed)', zh: '答复凭证校验未通过', action: "send the answer's Tongban-Evidence header and its exact body, unchanged" },
  DISPUTE_EVIDENCE_MISMATCH: { status: [422], en: 'the evidence is valid but names another request, or not the audit record of this request id', zh: '答复凭证与所指请求不一致', action: 'send the evidence that came with the disputed answer' },
  DISPUTE_NOT_DATA: { status: [422], en: 'only an answer that released data can be disputed (not a refusal, not a workflow step)', zh: '仅可对返回数据的答复提出疑义', action: 'dispute an answer that returned data' },
  DISPUTE_HELD_ELSEWHERE: { status: [409], en: 'the dispute is held at another node: this is the consumer\'s node\'s copy, or no node can be reached that holds the resource', zh: '该疑义由数据所在节点处理', action: 'resolve it at the node that holds the resource; a node outside any tier tree cannot send a dispute on' },
  DISPUTE_NOT_OWNER: { status: [403], en: 'a message about a dispute came from a node that does not hold the resource', zh: '来源节点并非数据所在节点', action: NODE_PEER },
  DISPUTE_UNKNOWN_ITEM: { status: [400], en: 'the resource has no such item', zh: '所指数据项不存在', action: "name items of the resource's catalogue entry" },
  DISPUTE_DUPLICATE: { status: [409], en: 'your department already disputed this answer', zh: '已对该答复提出过疑义', action: 'follow the existing dispute (GET /v1/disputes/{id})' },
  DISPUTE_DESCRIPTION_PERSONAL_DATA: { status: [400], en: 'the description or note holds a resident id number or a credit code', zh: '疑义说明中含有身份证号码或统一社会信用代码', action: 'describe the error without naming the person: the subject is known from the answer' },
  DISPUTE_NOT_FOUND: { status: [404], en: 'no such dispute', zh: '疑义不存在', action: 'check the dispute id' },
  DISPUTE_NOT_PROVIDER: { status: [403], en: 'only the department providing the resource resolves the dispute', zh: '仅数据提供部门可处理此疑义', action: 'let the providing department resolve it' },
  DISPUTE_ALREADY_RESOLVED: { status: [409], en: 'the dispute has already been resolved', zh: '该疑义已处理', action: 'reload the dispute to see the resolution' },
  DISPUTE_EFFECTIVE_DATE_REQUIRED: { status: [400], en: 'a correction needs effectiveFrom, and only a correction takes it', zh: '更正须注明生效日期（仅更正可注明）', action: 'send effectiveFrom with CORRECTED only' },
  DISPUTE_EFFECTIVE_DATE_OUT_OF_RANGE: { status: [400], en: 'effectiveFrom lies more than a year ahead or before 1900', zh: '更正生效日期超出合理范围（不得早于1900年或晚于一年后）', action: 'give the date the corrected data holds from' },
  DISPUTE_INVALID_PERIOD: { status: [400], en: 'from must be before to', zh: '统计期间不正确', action: FIX_REQUEST },
  APPLICATION_NOT_NEEDED: { status: [400], en: 'the items are shared unconditionally: no grant is needed', zh: '这些数据项无条件共享，无需申请', action: 'query directly' },
  APPLICATION_REASON_REQUIRED: { status: [400], en: 'a rejection needs a reason', zh: '驳回申请须填写理由', action: 'give a reason' },
  APPLICATION_WIDENED: { status: [400], en: 'an approval may not grant more than was applied for (items, period, quota)', zh: '批准范围不得超出申请范围', action: 'approve within the items, period and quota applied for' },
  APPLICATION_NOT_OWNER: { status: [403], en: 'a message about an application came from a node that does not hold the resource', zh: '来源节点并非数据所在节点', action: NODE_PEER },

  // ---- catalogue (目录) ----------------------------------------------------------------
  RESOURCE_NOT_FOUND: { status: [404], en: 'no such resource in the catalogue', zh: '目录中无此数据资源', action: 'check the resource code against GET /v1/catalog' },
  RESOURCE_OPERATION_UNKNOWN: { status: [404], en: 'the resource has no such operation', zh: '该数据资源不提供此项操作', action: "use an operation listed in the resource's catalogue entry" },
  RESOURCE_RETIRED: { status: [410], en: 'the resource has been retired', zh: '该数据资源已停止提供', action: 'use the successor named in the catalogue, if any' },
  SERVICE_UNKNOWN: { status: [404], en: 'no such verification service', zh: '无此核验服务', action: 'check the service name (GET /v1/catalog)' },
  CATALOG_ENTRY_INVALID: { status: [400], en: 'the entry does not match the catalogue schema', zh: '目录条目内容不符合规范', action: 'fix the entry (see `errors`) and send it again' },
  CATALOG_CODE_MISMATCH: { status: [400], en: 'the code in the entry differs from the code in the URL', zh: '目录条目编码与地址不一致', action: 'make the codes agree' },
  CATALOG_CODE_EXISTS: { status: [409], en: 'a resource with this code already exists', zh: '该目录编码已存在', action: 'update the existing resource (PUT with If-Match) instead' },
  CATALOG_ALREADY_RETIRED: { status: [409], en: 'the resource has been retired and cannot be changed', zh: '该数据资源已停止提供，不能再修改', action: 'create a new resource instead' },
  CATALOG_VERIFY_SERVICE_BOUND: { status: [409], en: 'another resource already answers this verify service for the region', zh: '该核验服务已由其他数据资源提供', action: 'retire the other resource first, or choose another service' },
  CATALOG_VERSION_CONFLICT: { status: [412], en: 'the resource has changed since the version named in If-Match', zh: '目录条目已被他人修改', action: 'reload the entry, reapply the change, send it with the new version' },
  CATALOG_PRECONDITION_REQUIRED: { status: [428], en: 'a change to a catalogue entry must name the version it is based on (If-Match)', zh: '修改目录条目须注明所依据的版本（If-Match）', action: 'read the entry, then send the change with If-Match set to its ETag (or * to overwrite whatever is there)' },
  CATALOG_VERSION_NOT_FOUND: { status: [404], en: 'the resource has no such version', zh: '目录条目无此版本', action: 'check the version number' },
  CATALOG_WRITE_CONFLICT: { status: [409], en: 'the resource is being changed by another writer', zh: '目录条目正被他人修改', action: 'try again shortly' },

  // ---- batches (批量核验) ---------------------------------------------------------------
  BATCH_NOT_FOUND: { status: [404], en: 'no such batch (or it belongs to another system)', zh: '批量任务不存在', action: 'check the batch id (and the system it was submitted by)' },
  BATCH_FINISHED: { status: [409], en: 'the batch has already completed', zh: '批量任务已完成，无法取消', action: 'read the results' },
  BATCH_TOO_MANY_ITEMS: { status: [413], en: 'a batch holds at most 100,000 items', zh: '批量任务条数超过上限', action: 'split the upload into several batches' },
  BATCH_STORE_UNAVAILABLE: { status: [503], en: 'the batch could not be stored; nothing was queued', zh: '批量任务暂时无法提交', action: RETRY },

  // ---- providers (上游) --------------------------------------------------------------
  UPSTREAM_UNAVAILABLE: { status: [502], en: 'the provider (hop) is unreachable', zh: '数据提供方系统暂时无法连接', action: RETRY },
  UPSTREAM_ERROR: { status: [502], en: 'the provider failed', zh: '数据提供方系统出错', action: RETRY },
  UPSTREAM_REJECTED: { status: [502], en: 'the provider refused the query', zh: '数据提供方拒绝了本次查询', action: CALL_OPERATOR },
  UPSTREAM_BAD_RESPONSE: { status: [502], en: 'the provider answered outside its schema', zh: '数据提供方返回的数据格式错误', action: CALL_OPERATOR },
  UPSTREAM_NOT_CONFIGURED: { status: [502], en: 'the provider has no address on this node', zh: '本节点未配置该数据提供方地址', action: CALL_OPERATOR },
  UPSTREAM_TIMEOUT: { status: [504], en: 'the provider did not answer in time', zh: '数据提供方响应超时', action: RETRY },
  UPSTREAM_CIRCUIT_OPEN: { status: [503], en: 'the provider failed repeatedly; calls to it are suspended for a while', zh: '数据提供方系统多次出错，暂停调用', action: 'retry after the Retry-After seconds' },

  // ---- electronic licences (电子证照, POST /v1/licences/verify): a failed check is a 200 verdict ----
  LICENCE_SEAL_INVALID: { status: [200], en: 'licence verification: the electronic seal does not verify under its seal certificate (forged or damaged seal)', zh: '电子证照核验：电子印章签名无效（印章伪造或损坏）', action: LICENCE_REFUSE },
  LICENCE_CONTENT_ALTERED: { status: [200], en: 'licence verification: the content was changed after sealing (its SM3 digest or the sealed fields differ), or differs from the library\'s record', zh: '电子证照核验：证照内容在盖章后被改动，或与证照库记录不一致', action: LICENCE_REFUSE },
  LICENCE_SEAL_UNTRUSTED: { status: [200], en: 'licence verification: the seal certificate does not chain to a trusted seal CA', zh: '电子证照核验：印章证书不是受信任的电子印章机构签发', action: LICENCE_REFUSE },
  LICENCE_SEAL_CERT_EXPIRED: { status: [200], en: 'licence verification: the seal certificate was not valid on the issue date', zh: '电子证照核验：颁证日期时印章证书不在有效期内', action: LICENCE_REFUSE },
  LICENCE_SEAL_CERT_REVOKED: { status: [200], en: 'licence verification: the seal certificate is revoked (or unknown to the library)', zh: '电子证照核验：印章证书已被吊销（或证照库不掌握该印章证书）', action: LICENCE_REFUSE },
  LICENCE_NOT_FOUND: { status: [200, 404], en: 'the licence library holds no licence with this number (404 when verified by number: nothing to check)', zh: '证照库中没有该编号的电子证照', action: 'check the licence number with the applicant; a presented licence unknown to the library is not accepted' },
  LICENCE_REVOKED: { status: [200], en: 'licence verification: the licence was revoked (注销/吊销) at the library', zh: '电子证照核验：证照已注销或吊销', action: LICENCE_REFUSE },
  LICENCE_SUPERSEDED: { status: [200], en: 'licence verification: the licence was superseded by a newer one (换发); `detail` names it', zh: '电子证照核验：证照已换发，请使用新证照', action: 'ask the applicant for the current licence' },
  LICENCE_EXPIRED: { status: [200], en: 'licence verification: today lies outside the licence\'s validity', zh: '电子证照核验：证照已过有效期', action: 'ask the applicant to renew the licence' },
  LICENCE_HOLDER_MISMATCH: { status: [200], en: 'licence verification: the holder id (or name) given is not the licence\'s holder', zh: '电子证照核验：持证主体与申请人不一致', action: LICENCE_REFUSE },

  // ---- the gateway itself ---------------------------------------------------------------
  ANSWER_INTERRUPTED: { status: [500], en: 'audit reason of a streamed answer cut short: its record covers the bytes that were sent', zh: '流式应答中途中断：审计记录覆盖已发送的部分', action: RETRY },
  AUDIT_UNAVAILABLE: { status: [503], en: 'the audit record could not be made durable: nothing was released; retry', zh: '审计记录暂时无法保存，本次未返回数据', action: RETRY },
  NODE_SHUTTING_DOWN: { status: [503], en: 'this node (replica) is shutting down', zh: '本节点正在停机', action: 'retry; the next request goes to another replica' },
  INTERNAL: { status: [500], en: 'unexpected; logged with the request id', zh: '系统内部错误', action: CALL_OPERATOR },

  // ---- the audit log (审计) -------------------------------------------------------------
  AUDIT_RANGE_INVALID: { status: [400], en: 'the time range is reversed or malformed', zh: '查询时间范围不正确', action: 'make `from` earlier than `to`' },
  AUDIT_RANGE_TOO_LARGE: { status: [400], en: 'at most 400 days per call', zh: '查询时间范围过长', action: 'query at most 400 days at a time' },
  AUDIT_PAGE_TOO_LARGE: { status: [400], en: 'the page size is above the limit', zh: '每页条数超过上限', action: 'ask for a smaller limit and follow the cursor' },
  AUDIT_CURSOR_INVALID: { status: [400], en: 'the cursor is not one this endpoint issued', zh: '翻页标记无效', action: 'start again without a cursor' },
  AUDIT_SUBJECT_MISSING: { status: [400], en: 'give the subject in the Tongban-Subject header (or subjectHash)', zh: '未提供查询对象', action: 'send the subject in the Tongban-Subject header' },
  AUDIT_SUBJECT_INVALID: { status: [400], en: 'the subject is neither a valid id number nor a valid credit code', zh: '查询对象不是有效的身份证号码或统一社会信用代码', action: 'check the number' },
  AUDIT_SUBJECT_IN_URL: { status: [400], en: 'a subject may not travel in the URL (it would be logged)', zh: '查询对象不得放在地址中', action: 'send it in the Tongban-Subject header' },
  AUDIT_RECORD_NOT_FOUND: { status: [404], en: 'no audit record with this request id', zh: '无此请求的审计记录', action: 'check the request id (and the node it was answered by)' },
  AUDIT_EXPORT_TOO_LARGE: { status: [413], en: 'the export is too large for one answer', zh: '导出内容过大', action: 'narrow the range, or use tongban audit export' },
  AUDIT_INTEGRITY_LEAF_MISMATCH: { status: [200], en: 'integrity: a record no longer hashes to its stored leaf', zh: '完整性核查：审计记录被改动', action: INTEGRITY },
  AUDIT_INTEGRITY_COLUMN_MISMATCH: { status: [200], en: 'integrity: a search column disagrees with the hashed record', zh: '完整性核查：检索字段与记录不一致', action: INTEGRITY },
  AUDIT_INTEGRITY_ROOT_MISMATCH: { status: [200], en: 'integrity: the leaves do not fold to the signed root', zh: '完整性核查：批次根值不一致', action: INTEGRITY },
  AUDIT_INTEGRITY_RECORD_MISSING: { status: [200], en: 'integrity: fewer records than the checkpoint signs', zh: '完整性核查：审计记录缺失', action: INTEGRITY },
  AUDIT_INTEGRITY_RECORD_EXTRA: { status: [200], en: 'integrity: more records than the checkpoint signs', zh: '完整性核查：出现多余的审计记录', action: INTEGRITY },
  AUDIT_INTEGRITY_ORPHAN_RECORD: { status: [200], en: 'integrity: a record whose batch has no checkpoint', zh: '完整性核查：审计记录无对应检查点', action: INTEGRITY },
  AUDIT_INTEGRITY_CHECKPOINT_HASH: { status: [200], en: 'integrity: the stored hash is not the hash of the checkpoint', zh: '完整性核查：检查点摘要不一致', action: INTEGRITY },
  AUDIT_INTEGRITY_CHECKPOINT_FIELDS: { status: [200], en: "integrity: a checkpoint's columns disagree with the signed checkpoint", zh: '完整性核查：检查点字段不一致', action: INTEGRITY },
  AUDIT_INTEGRITY_UNKNOWN_KID: { status: [200], en: "integrity: no certificate for a checkpoint's kid", zh: '完整性核查：找不到签名证书', action: INTEGRITY },
  AUDIT_INTEGRITY_UNTRUSTED_CERTIFICATE: { status: [200], en: 'integrity: a signing certificate does not chain to the trusted CA', zh: '完整性核查：签名证书不受信任', action: INTEGRITY },
  AUDIT_INTEGRITY_UNSUPPORTED_ALG: { status: [200], en: 'integrity: a checkpoint uses an unsupported signature suite', zh: '完整性核查：签名算法不受支持', action: INTEGRITY },
  AUDIT_INTEGRITY_BAD_SIGNATURE: { status: [200], en: 'integrity: a checkpoint signature does not verify', zh: '完整性核查：检查点签名验证未通过', action: INTEGRITY },
  AUDIT_INTEGRITY_CHAIN_GAP: { status: [200], en: 'integrity: a checkpoint (a whole batch) is missing', zh: '完整性核查：检查点链缺失', action: INTEGRITY },
  AUDIT_INTEGRITY_CHAIN_BROKEN: { status: [200], en: 'integrity: a checkpoint does not name the hash of the previous one', zh: '完整性核查：检查点链断裂', action: INTEGRITY },
  AUDIT_INTEGRITY_TRUNCATED: { status: [200], en: 'integrity: an anchored checkpoint is gone (the tail was cut)', zh: '完整性核查：检查点链尾部被截断', action: INTEGRITY },
  AUDIT_INTEGRITY_ANCHOR_MISMATCH: { status: [200], en: 'integrity: the checkpoint at an anchored position is not the anchored one', zh: '完整性核查：检查点与锚定值不一致', action: INTEGRITY },
  AUDIT_INTEGRITY_CUT: { status: [200], en: 'integrity: an acknowledged cut of the chain (records signed and then deleted; who acknowledged it, when and why is recorded)', zh: '完整性核查：审计链曾被截断（已由运维确认）', action: INTEGRITY },
  AUDIT_INTEGRITY_BUNDLE_MALFORMED: { status: [200], en: 'integrity: an offline bundle is unreadable or cut short', zh: '完整性核查：离线审计包损坏', action: INTEGRITY },

  // ---- tiers: calls between nodes (省、市、县、乡) --------------------------------------------
  HOP_UNAVAILABLE: { status: [502], en: 'the next node on the way is unreachable', zh: '上级或下级节点暂时无法连接', action: RETRY },
  HOP_TIMEOUT: { status: [504], en: 'the next node did not answer in time', zh: '上级或下级节点响应超时', action: RETRY },
  HOP_BAD_RESPONSE: { status: [502], en: 'the next node sent a broken answer', zh: '上级或下级节点返回的内容无法识别', action: CALL_OPERATOR },
  HOP_BAD_EVIDENCE: { status: [502], en: "the next node's evidence is not for this request and answer", zh: '上级或下级节点的存证不符', action: CALL_OPERATOR },
  HOP_REFUSED: { status: [502], en: "the next node refused this node's call (a NODE_ code there)", zh: '上级或下级节点拒绝了本节点的调用', action: CALL_OPERATOR },
  HOP_NOT_CONFIGURED: { status: [502], en: 'the next node has no nodeUrl in the topology', zh: '未配置上级或下级节点地址', action: CALL_OPERATOR },
  HOP_CIRCUIT_OPEN: { status: [503], en: 'the next node failed repeatedly; calls to it are suspended for a while', zh: '上级或下级节点多次出错，暂停调用', action: 'retry after the Retry-After seconds' },
  HOP_SATURATED: { status: [503], en: 'all call slots towards the next node are in use', zh: '通往上级或下级节点的通道繁忙', action: 'retry shortly' },
  NODE_AUTH_REQUIRED: { status: [403], en: 'node routes are served on the node listener only, to peers with a node certificate', zh: '节点间接口仅对持节点证书的节点开放', action: NODE_PEER },
  NOTIFICATION_NOT_FOUND: { status: [404], en: "no notice of this id for the caller's department", zh: '未找到该消息', action: 'list the notices (GET /v1/notifications) and use an id from there' },
  NODE_NOT_PARENT: { status: [403], en: 'the calling node is not the parent of this node', zh: '调用方不是本节点的上级节点', action: NODE_PEER },
  NODE_NOT_CHILD: { status: [403], en: 'the calling node is not a child of this node', zh: '调用方不是本节点的下级节点', action: NODE_PEER },
  NODE_NOT_NEIGHBOUR: { status: [403], en: 'the calling node is neither the parent nor a child of this node', zh: '调用方不是本节点的相邻节点', action: NODE_PEER },
  NODE_ASSERTION_INVALID: { status: [401], en: 'the node assertion (signed chain of hops) does not verify', zh: '节点身份凭证验证未通过', action: NODE_PEER },
  NODE_ASSERTION_BEFORE_REPLAY_WINDOW: { status: [401], en: 'the node assertion was issued before the replay store (Redis) last lost its memory', zh: '节点身份凭证签发时间早于防重放记录的起始时间', action: NODE_PEER },
  NODE_ASSERTION_REPLAYED: { status: [401], en: 'this node assertion was already used', zh: '节点身份凭证已被使用过', action: NODE_PEER },
  NODE_ROUTE_UNKNOWN: { status: [404], en: 'the node listener serves /v1/tiers/… only', zh: '节点间接口不存在', action: NODE_PEER },
  TIERS_NODE_UNKNOWN: { status: [404], en: 'no such child node', zh: '无此下级节点', action: 'check the node id against the topology' },
  TIERS_NODE_UNREACHABLE: { status: [404], en: 'the target node is not reachable from this node', zh: '无法从本节点到达目标节点', action: 'check the topology' },
  TIERS_CONSUMER_OUTSIDE_NODE: { status: [403], en: "this node forwards applications of its own region's consumers only", zh: '申请方不属于本节点辖区', action: "send the application through the consumer's own node" },
  TIERS_MESSAGE_INVALID: { status: [400], en: 'a message between nodes does not match its schema', zh: '节点间消息格式错误', action: NODE_PEER },
  TIERS_NOTHING_TO_REQUEUE: { status: [409], en: 'no message of this application or dispute has failed at this node', zh: '该申请或疑义没有需要重发的消息', action: 'nothing to do' },
  TIERS_OWNER_UNAVAILABLE: { status: [503], en: 'the owning node could not record the application now', zh: '数据所在节点暂时无法受理申请', action: RETRY },
  TIERS_SNAPSHOT_INVALID: { status: [400], en: 'a catalogue snapshot from a child does not match its schema or signature', zh: '下级节点目录快照无效', action: NODE_PEER },
  TIERS_SNAPSHOT_NOT_YOURS: { status: [403], en: 'the catalogue snapshot names another node than the TLS peer', zh: '目录快照并非由发送节点生成', action: NODE_PEER },
  CHECKPOINT_NODE_MISMATCH: { status: [403], en: 'a checkpoint push names another node than the sender', zh: '检查点推送的节点与发送方不一致', action: NODE_PEER },
  CHECKPOINT_UNTRUSTED: { status: [400], en: 'a certificate of a checkpoint push cannot be read or is not trusted', zh: '检查点推送的证书不受信任', action: NODE_PEER },
  CHECKPOINT_BAD_SIGNATURE: { status: [400], en: 'a pushed checkpoint signature does not verify', zh: '检查点签名验证未通过', action: NODE_PEER },
  CHECKPOINT_CHAIN_BROKEN: { status: [400], en: 'a checkpoint push is not one contiguous chain', zh: '推送的检查点链不连续', action: NODE_PEER },
  CHECKPOINT_GAP: { status: [409], en: 'a pushed checkpoint does not follow the last one held', zh: '推送的检查点与已有记录之间有缺口', action: 'the child pushes again from the last held checkpoint (automatic)' },
  CHECKPOINT_FORK: { status: [409], en: 'a child now shows another checkpoint at a position already held (history rewritten)', zh: '下级节点审计链出现分叉（历史记录被改写）', action: 'report it to the audit officers of both nodes' },
  // ---- the workbench (the people's UI) ---------------------------------------------
  WORKBENCH_NOT_BUILT: { status: [503], en: 'the workbench front end has not been built on this node', zh: '工作台页面尚未构建', action: 'the operator runs node scripts/build-workbench.mjs (npm start does it) and reloads' },
} as const satisfies Record<string, CodeInfo>

/** A code listed above. */
export type ListedCode = keyof typeof PROBLEM_CODES

/**
 * The code of an answer that came without one: `HTTP_<status>` (a hop's answer that was no
 * problem+json, a code this node does not know, an audit record of a refusal without a reason).
 */
export type StatusFallbackCode = `HTTP_${number}`

export type ProblemCode = ListedCode | StatusFallbackCode

export const STATUS_FALLBACK = {
  code: 'HTTP_<status>',
  en: 'an answer without a code of its own (a node answered without problem+json, or with a code this node does not know): its status',
  zh: '其他节点返回的未分类错误（以 HTTP 状态码表示）',
  action: 'see the status; report it to the operator with the request id',
} as const

export const statusFallback = (status: number): StatusFallbackCode => `HTTP_${status}`

const FALLBACK = /^HTTP_[1-5][0-9]{2}$/

/** For codes that come from another node or store as strings: is this one of ours? */
export function isProblemCode(s: unknown): s is ProblemCode {
  return typeof s === 'string' && (Object.prototype.hasOwnProperty.call(PROBLEM_CODES, s) || FALLBACK.test(s))
}

/** A code from another node, as a code of this node: unknown ones become HTTP_<status>. */
export const codeFrom = (s: unknown, status: number): ProblemCode => (isProblemCode(s) ? s : statusFallback(status))
