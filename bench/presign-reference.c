/*
 * The presign route done the straightforward way in C: what any implementation of
 * GET /s3/get-upload-url can reach behind the same nginx (issue 20; bench/presign.sh runs
 * it beside bench/floor.c and assetd). Per request, the work assetd does:
 *
 *   - the FastCGI parameters (method, path, query, Authorization, X-Request-Id);
 *   - the query: workspaceId, assetId, UploadId (or uploadId), PartNumber (or partNumber),
 *     contentMD5 (optional), percent-decoded;
 *   - the HS256 JWT bearer token: its characters, HMAC-SHA256 over its first two parts
 *     (on every request: no cache of verified tokens, which assetd has), its header (alg,
 *     typ, crit) and claims (exp, nbf, sub, workspaces), and the workspace against them;
 *   - the upload in an in-memory table (assetd's UploadCache): its asset, workspace, key
 *     and status; a contentMD5 is recorded for the part under a lock;
 *   - SigV4: the signing key derived once a day and kept (as ipad/opad SHA-256 states, as
 *     assetd's HMACKey), the canonical request of an UploadPart PUT, its SHA-256, the
 *     string to sign and the HMAC: the URL assetd gives, byte for byte, in the same second;
 *   - the JSON body and headers assetd writes (Status, Content-Type, Content-Length), one
 *     FCGX_PutStr;
 *   - a request counter and a latency histogram (atomics), and an access-log line in
 *     assetd's layout, one write(2) a line, to LOG_PATH.
 *
 *   cc -O2 -o presign-reference bench/presign-reference.c -lfcgi -lcrypto -lpthread
 *   ./presign-reference SOCKET_PATH THREADS ASSETD_ENV UPLOADS_FILE LOG_PATH
 *
 * ASSETD_ENV is the stack's settings file (KEY=VALUE lines: ASSETD_JWT_SECRET, AWS_*,
 * ASSETD_S3_PUBLIC_ENDPOINT, ASSETD_PRESIGN_EXPIRES); UPLOADS_FILE has one line an upload:
 * `UPLOAD_ID ASSET_ID WORKSPACE_ID KEY`. Errors answer {"error": "..."} with assetd's
 * statuses (400, 401, 403, 404, 405), not always its exact words.
 */
#define _GNU_SOURCE
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <fcgiapp.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- settings ---- */
static char jwt_secret[512];
static size_t jwt_secret_len;
static char access_key[256], secret_key[256], region[64] = "us-east-1", bucket[256];
static char scheme[16], host[256];
static long presign_expires = 3600;
static int listen_fd, log_fd;

/* ---- HMAC-SHA256 with prepared pads ---- */
typedef struct {
    SHA256_CTX inner, outer;
} hmac_key;

/* Not SHA256(): in OpenSSL 3 that one-shot fetches the algorithm through EVP every call. */
static void sha256(const void *data, size_t len, unsigned char out[32]) {
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, data, len);
    SHA256_Final(out, &c);
}

static void hmac_prepare(hmac_key *k, const void *key, size_t len) {
    unsigned char block[64] = {0}, pad[64];
    if (len > 64) {
        sha256(key, len, block);
    } else {
        memcpy(block, key, len);
    }
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x36;
    SHA256_Init(&k->inner);
    SHA256_Update(&k->inner, pad, 64);
    for (int i = 0; i < 64; i++) pad[i] = block[i] ^ 0x5c;
    SHA256_Init(&k->outer);
    SHA256_Update(&k->outer, pad, 64);
}

static void hmac(const hmac_key *k, const void *msg, size_t len, unsigned char out[32]) {
    SHA256_CTX c = k->inner;
    SHA256_Update(&c, msg, len);
    SHA256_Final(out, &c);
    c = k->outer;
    SHA256_Update(&c, out, 32);
    SHA256_Final(out, &c);
}

static void hmac_once(const void *key, size_t key_len, const char *msg, unsigned char out[32]) {
    hmac_key k;
    hmac_prepare(&k, key, key_len);
    hmac(&k, msg, strlen(msg), out);
}

static hmac_key jwt_key;

/* ---- the upload table ---- */
enum { TABLE_SIZE = 1024 };
typedef struct {
    char *upload_id;
    long long asset_id, workspace_id;
    char *key;
    int pending;
    unsigned char md5_signed[10001]; /* parts presigned with a contentMD5 */
} upload;
static struct slot {
    upload *u;
} table[TABLE_SIZE];
static pthread_mutex_t md5_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_long md5_recorded;

static unsigned hash(const char *s, size_t n) {
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static upload *lookup(const char *id, size_t n) {
    for (unsigned i = hash(id, n) % TABLE_SIZE, tries = 0; tries < TABLE_SIZE; i = (i + 1) % TABLE_SIZE, tries++) {
        if (!table[i].u) return NULL;
        if (strlen(table[i].u->upload_id) == n && memcmp(table[i].u->upload_id, id, n) == 0) return table[i].u;
    }
    return NULL;
}

/* ---- metrics: a counter and a latency histogram, as assetd's per route ---- */
static const double bounds_ms[] = {0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};
enum { BUCKETS = sizeof bounds_ms / sizeof bounds_ms[0] + 1 };
static atomic_long requests_by_status[6], histogram[BUCKETS], duration_us_sum;

/* ---- small helpers ---- */
static int b64url_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* base64url without padding into out (cap bytes); returns the length or -1. */
static int b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap) {
    if (n % 4 == 1) return -1;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0) return -1;
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap) return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (bits && (acc & ((1u << bits) - 1))) return -1; /* non-canonical trailing bits */
    return (int)o;
}

/* Standard base64 with padding (contentMD5); returns the length or -1. */
static int b64_decode(const char *in, size_t n, unsigned char *out, size_t cap) {
    if (n % 4 != 0) return -1;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;
        if (c == '=') {
            if (i < n - 2) return -1;
            pad++;
            continue;
        }
        if (pad) return -1;
        if (c == '+') v = 62;
        else if (c == '/') v = 63;
        else if (c == '-' || c == '_') return -1;
        else v = b64url_value(c);
        if (v < 0) return -1;
        acc = acc << 6 | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap) return -1;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return (int)o;
}

static const char hexdigits[] = "0123456789abcdef";
static char *put_hex(char *p, const unsigned char *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        *p++ = hexdigits[b[i] >> 4];
        *p++ = hexdigits[b[i] & 15];
    }
    return p;
}

/* SigV4's URI encoding: unreserved bytes as they are, '/' too when keep_slash. */
static char *put_uri_encoded(char *p, const char *s, size_t n, int keep_slash) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~' || (keep_slash && c == '/')) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = "0123456789ABCDEF"[c >> 4];
            *p++ = "0123456789ABCDEF"[c & 15];
        }
    }
    return p;
}

static char *put(char *p, const char *s) {
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decoding with '+' as space, into out (as long as in at most). */
static size_t url_decode(const char *in, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '+') {
            out[o++] = ' ';
        } else if (in[i] == '%' && i + 2 < n + 0 && hexval((unsigned char)in[i + 1]) >= 0 && hexval((unsigned char)in[i + 2]) >= 0) {
            out[o++] = (char)(hexval((unsigned char)in[i + 1]) << 4 | hexval((unsigned char)in[i + 2]));
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    return o;
}

/* A positive decimal id within int64 (no sign, no leading zero); -1 otherwise. */
static long long parse_id(const char *s, size_t n) {
    if (n == 0 || n > 19 || s[0] == '0') return -1;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        if (v > (INT64_MAX - (s[i] - '0')) / 10) return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* ---- a small JSON reader for the token's two flat objects ---- */
typedef struct {
    const char *p, *end;
} cursor;

static void ws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

/* A string: sets [*s, *s + *n) to its raw contents (escapes kept), or returns 0. */
static int json_string(cursor *c, const char **s, size_t *n) {
    ws(c);
    if (c->p >= c->end || *c->p != '"') return 0;
    const char *start = ++c->p;
    while (c->p < c->end && *c->p != '"') {
        if ((unsigned char)*c->p < 0x20) return 0;
        if (*c->p == '\\') c->p++;
        c->p++;
    }
    if (c->p >= c->end) return 0;
    *s = start;
    *n = (size_t)(c->p - start);
    c->p++;
    return 1;
}

static int json_number(cursor *c, const char **s, size_t *n) {
    ws(c);
    const char *start = c->p;
    while (c->p < c->end && (*c->p == '-' || *c->p == '+' || *c->p == '.' || *c->p == 'e' || *c->p == 'E' ||
                             (*c->p >= '0' && *c->p <= '9')))
        c->p++;
    *s = start;
    *n = (size_t)(c->p - start);
    return *n > 0;
}

static int json_skip(cursor *c, int depth);

static int json_skip_container(cursor *c, char close, int depth) {
    c->p++;
    ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 1;
    }
    for (;;) {
        if (close == '}') {
            const char *k;
            size_t kn;
            if (!json_string(c, &k, &kn)) return 0;
            ws(c);
            if (c->p >= c->end || *c->p++ != ':') return 0;
        }
        if (!json_skip(c, depth + 1)) return 0;
        ws(c);
        if (c->p >= c->end) return 0;
        if (*c->p == ',') {
            c->p++;
            continue;
        }
        if (*c->p == close) {
            c->p++;
            return 1;
        }
        return 0;
    }
}

static int json_skip(cursor *c, int depth) {
    const char *s;
    size_t n;
    if (depth > 32) return 0;
    ws(c);
    if (c->p >= c->end) return 0;
    switch (*c->p) {
    case '"': return json_string(c, &s, &n);
    case '{': return json_skip_container(c, '}', depth);
    case '[': return json_skip_container(c, ']', depth);
    case 't': if (c->end - c->p >= 4 && !memcmp(c->p, "true", 4)) { c->p += 4; return 1; } return 0;
    case 'f': if (c->end - c->p >= 5 && !memcmp(c->p, "false", 5)) { c->p += 5; return 1; } return 0;
    case 'n': if (c->end - c->p >= 4 && !memcmp(c->p, "null", 4)) { c->p += 4; return 1; } return 0;
    default: return json_number(c, &s, &n);
    }
}

/* An integer NumericDate: digits with an optional minus. */
static int numeric_date(const char *s, size_t n, long long *out) {
    size_t i = (n > 0 && s[0] == '-') ? 1 : 0;
    if (i == n || n > 19) return 0;
    long long v = 0;
    for (size_t j = i; j < n; j++) {
        if (s[j] < '0' || s[j] > '9') return 0;
        v = v * 10 + (s[j] - '0');
    }
    *out = i ? -v : v;
    return 1;
}

/* An object's members, one at a time: object_open says whether it has any (-1: not an
   object), member_key reads a key and its colon, member_next steps past a comma (1) or
   the closing brace (0), -1 otherwise. */
static int object_open(cursor *c) {
    ws(c);
    if (c->p >= c->end || *c->p != '{') return -1;
    c->p++;
    ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return 0;
    }
    return 1;
}

static int member_key(cursor *c, const char **k, size_t *kn) {
    if (!json_string(c, k, kn)) return 0;
    ws(c);
    if (c->p >= c->end || *c->p++ != ':') return 0;
    ws(c);
    return 1;
}

static int member_next(cursor *c) {
    ws(c);
    if (c->p < c->end && *c->p == ',') { c->p++; return 1; }
    if (c->p < c->end && *c->p == '}') { c->p++; return 0; }
    return -1;
}

#define KEY_IS(k, kn, lit) ((kn) == sizeof(lit) - 1 && memcmp((k), (lit), sizeof(lit) - 1) == 0)

typedef struct {
    long long workspaces[64];
    int count;
} principal;

/* NULL when the token is good, else the 401 message. */
static const char *verify_token(const char *auth, principal *who, time_t now) {
    if (!auth || !*auth) return "The Authorization header with a Bearer token is missing.";
    while (*auth == ' ') auth++;
    if (strncasecmp(auth, "bearer ", 7) != 0) return "The Authorization header must be 'Bearer <token>'.";
    const char *token = auth + 7;
    while (*token == ' ') token++;
    size_t n = 0;
    while (token[n] && token[n] != ' ') n++;
    for (size_t i = n; token[i]; i++)
        if (token[i] != ' ') return "The Authorization header must be 'Bearer <token>'.";
    if (n == 0) return "The Authorization header must be 'Bearer <token>'.";
    if (n > 8192) return "The token is too long.";
    const char *dot1 = NULL, *dot2 = NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)token[i];
        if (c == '.') {
            if (!dot1) dot1 = token + i;
            else if (!dot2) dot2 = token + i;
            else return "The token is malformed.";
        } else if (b64url_value(c) < 0) {
            return "The token is malformed.";
        }
    }
    if (!dot2) return "The token is malformed.";
    unsigned char signature[48], mac[32];
    if (b64url_decode(dot2 + 1, (size_t)(token + n - dot2 - 1), signature, sizeof signature) != 32)
        return "The token is malformed.";
    hmac(&jwt_key, token, (size_t)(dot2 - token), mac);
    if (CRYPTO_memcmp(mac, signature, 32) != 0) return "The token's signature is not valid.";

    unsigned char header[1024], payload[6144];
    int hn = b64url_decode(token, (size_t)(dot1 - token), header, sizeof header);
    int pn = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload, sizeof payload);
    if (hn < 0 || pn < 0) return "The token is malformed.";

    /* The header: alg HS256, typ JWT if given, no crit. */
    cursor c = {(const char *)header, (const char *)header + hn};
    int alg_ok = 0, more = object_open(&c);
    while (more > 0) {
        const char *k, *v;
        size_t kn, vn;
        if (!member_key(&c, &k, &kn)) return "The token is malformed.";
        if (KEY_IS(k, kn, "alg")) {
            if (!json_string(&c, &v, &vn)) return "The token's algorithm is not HS256.";
            alg_ok = KEY_IS(v, vn, "HS256");
        } else if (KEY_IS(k, kn, "typ")) {
            if (!json_string(&c, &v, &vn) || !KEY_IS(v, vn, "JWT")) return "The token's type is not JWT.";
        } else if (KEY_IS(k, kn, "crit")) {
            return "The token has critical extensions assetd does not know.";
        } else if (!json_skip(&c, 0)) {
            return "The token is malformed.";
        }
        more = member_next(&c);
    }
    if (more < 0) return "The token is malformed.";
    if (!alg_ok) return "The token's algorithm is not HS256.";

    /* The claims: exp, nbf, sub, workspaces. */
    long long exp = 0, nbf = 0;
    int has_exp = 0, has_nbf = 0, has_sub = 0, has_workspaces = 0;
    who->count = 0;
    c = (cursor){(const char *)payload, (const char *)payload + pn};
    more = object_open(&c);
    while (more > 0) {
        const char *k, *v;
        size_t kn, vn;
        if (!member_key(&c, &k, &kn)) return "The token is malformed.";
        if (KEY_IS(k, kn, "exp") || KEY_IS(k, kn, "nbf")) {
            int is_exp = k[0] == 'e';
            long long value;
            if (!json_number(&c, &v, &vn) || !numeric_date(v, vn, &value))
                return is_exp ? "The token's exp claim is not an integer NumericDate."
                              : "The token's nbf claim is not an integer NumericDate.";
            if (is_exp) { exp = value; has_exp = 1; } else { nbf = value; has_nbf = 1; }
        } else if (KEY_IS(k, kn, "sub")) {
            if (!json_string(&c, &v, &vn) || vn == 0) return "The token has no sub claim.";
            has_sub = 1;
        } else if (KEY_IS(k, kn, "workspaces")) {
            if (c.p >= c.end || *c.p != '[') return "The token has no workspaces claim.";
            c.p++;
            ws(&c);
            has_workspaces = 1;
            if (c.p < c.end && *c.p == ']') c.p++;
            else for (;;) {
                long long id;
                if (!json_number(&c, &v, &vn) || (id = parse_id(v, vn)) < 0)
                    return "The token's workspaces claim must list positive integers.";
                if (who->count < 64) who->workspaces[who->count++] = id;
                ws(&c);
                if (c.p < c.end && *c.p == ',') { c.p++; continue; }
                if (c.p < c.end && *c.p == ']') { c.p++; break; }
                return "The token is malformed.";
            }
        } else if (!json_skip(&c, 0)) {
            return "The token is malformed.";
        }
        more = member_next(&c);
    }
    if (more < 0) return "The token is malformed.";
    if (!has_exp) return "The token has no exp claim.";
    if (now >= exp) return "The token has expired.";
    if (has_nbf && now < nbf) return "The token is not valid yet (nbf).";
    if (!has_sub) return "The token has no sub claim.";
    if (!has_workspaces) return "The token has no workspaces claim.";
    return NULL;
}

/* ---- SigV4: the day's scope and signing key ---- */
typedef struct {
    char day[9];
    char scope[128];      /* 20261201/us-east-1/s3/aws4_request */
    char credential[512]; /* AKID/scope, URI-encoded */
    hmac_key key;
} day_scope;
static day_scope *current_day; /* replaced once a day; the old one is leaked (one a day) */
static pthread_mutex_t day_lock = PTHREAD_MUTEX_INITIALIZER;

static const day_scope *scope_for(const char *day) {
    day_scope *d = __atomic_load_n(&current_day, __ATOMIC_ACQUIRE);
    if (d && memcmp(d->day, day, 8) == 0) return d;
    pthread_mutex_lock(&day_lock);
    d = current_day;
    if (!d || memcmp(d->day, day, 8) != 0) {
        day_scope *fresh = calloc(1, sizeof *fresh);
        memcpy(fresh->day, day, 8);
        char secret[300];
        snprintf(secret, sizeof secret, "AWS4%s", secret_key);
        unsigned char k1[32], k2[32], k3[32], k4[32];
        hmac_once(secret, strlen(secret), fresh->day, k1);
        hmac_once(k1, 32, region, k2);
        hmac_once(k2, 32, "s3", k3);
        hmac_once(k3, 32, "aws4_request", k4);
        hmac_prepare(&fresh->key, k4, 32);
        snprintf(fresh->scope, sizeof fresh->scope, "%s/%s/s3/aws4_request", fresh->day, region);
        char plain[400];
        snprintf(plain, sizeof plain, "%s/%s", access_key, fresh->scope);
        *put_uri_encoded(fresh->credential, plain, strlen(plain), 0) = 0;
        __atomic_store_n(&current_day, fresh, __ATOMIC_RELEASE);
        d = fresh;
    }
    pthread_mutex_unlock(&day_lock);
    return d;
}

/* ---- the access log's timestamp, formatted once a second a thread ---- */
static __thread time_t stamp_second = -1;
static __thread char stamp[40];
static __thread size_t stamp_len;

/* ---- one request ---- */
typedef struct {
    int status;
    const char *reason;
    char *body;
    size_t body_len;
    const char *extra_header; /* e.g. "WWW-Authenticate: Bearer\r\n" */
} answer;

static void error_answer(answer *a, int status, const char *reason, const char *message) {
    /* The messages above hold no character JSON must escape. */
    a->status = status;
    a->reason = reason;
    a->body_len = (size_t)sprintf(a->body, "{\"error\":\"%s\"}", message);
}

typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} field;

static const field *query_get(const field *fields, int count, const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < count; i++)
        if (fields[i].name_len == n && memcmp(fields[i].name, name, n) == 0) return &fields[i];
    return NULL;
}

static void presign(FCGX_Request *r, answer *a, long long *log_workspace, long long *log_asset) {
    const char *method = FCGX_GetParam("REQUEST_METHOD", r->envp);
    const char *path = FCGX_GetParam("DOCUMENT_URI", r->envp);
    const char *query = FCGX_GetParam("QUERY_STRING", r->envp);
    const char *auth = FCGX_GetParam("HTTP_AUTHORIZATION", r->envp);
    if (!path || strcmp(path, "/s3/get-upload-url") != 0) {
        error_answer(a, 404, "Not Found", "No route for this path.");
        return;
    }
    if (!method || strcmp(method, "GET") != 0) {
        error_answer(a, 405, "Method Not Allowed", "This method is not allowed here; use GET.");
        return;
    }

    /* The query, split and decoded into one buffer. */
    if (!query) query = "";
    size_t qn = strlen(query);
    char *decoded = malloc(qn + 1);
    field fields[64];
    int count = 0;
    size_t used = 0;
    for (const char *p = query; *p && count < 64;) {
        const char *end = strchr(p, '&');
        if (!end) end = query + qn;
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (end > p) {
            const char *name_end = eq ? eq : end;
            fields[count].name = decoded + used;
            fields[count].name_len = url_decode(p, (size_t)(name_end - p), decoded + used);
            used += fields[count].name_len;
            fields[count].value = decoded + used;
            fields[count].value_len = eq ? url_decode(eq + 1, (size_t)(end - eq - 1), decoded + used) : 0;
            used += fields[count].value_len;
            count++;
        }
        p = *end ? end + 1 : end;
    }

    const field *part = query_get(fields, count, "PartNumber");
    if (!part) part = query_get(fields, count, "partNumber");
    const field *ws_field = query_get(fields, count, "workspaceId");
    const field *asset_field = query_get(fields, count, "assetId");
    const field *upload_field = query_get(fields, count, "UploadId");
    if (!upload_field) upload_field = query_get(fields, count, "uploadId");
    if (ws_field) *log_workspace = parse_id(ws_field->value, ws_field->value_len);
    if (asset_field) *log_asset = parse_id(asset_field->value, asset_field->value_len);

    /* The token first, as assetd's router does. */
    principal who;
    time_t now = time(NULL);
    const char *refused = verify_token(auth, &who, now);
    if (refused) {
        error_answer(a, 401, "Unauthorized", refused);
        a->extra_header = "WWW-Authenticate: Bearer\r\n";
        goto done;
    }
    if (!part) { error_answer(a, 400, "Bad Request", "PartNumber is required."); goto done; }
    long long part_number = parse_id(part->value, part->value_len);
    if (part_number < 1 || part_number > 10000) {
        error_answer(a, 400, "Bad Request", "PartNumber must be an integer from 1 to 10000.");
        goto done;
    }
    unsigned char md5[16];
    int has_md5 = 0;
    int md5_count = 0;
    const field *md5_field = NULL;
    for (int i = 0; i < count; i++)
        if (fields[i].name_len == 10 && memcmp(fields[i].name, "contentMD5", 10) == 0) { md5_field = &fields[i]; md5_count++; }
    if (md5_count > 1) { error_answer(a, 400, "Bad Request", "contentMD5 must be given once."); goto done; }
    if (md5_field) {
        if (b64_decode(md5_field->value, md5_field->value_len, md5, sizeof md5) != 16) {
            error_answer(a, 400, "Bad Request", "contentMD5 must be the base64 of a 16-byte MD5.");
            goto done;
        }
        has_md5 = 1;
    }
    long long workspace = ws_field ? parse_id(ws_field->value, ws_field->value_len) : -1;
    if (workspace < 0) { error_answer(a, 400, "Bad Request", "workspaceId must be a positive integer."); goto done; }
    int allowed = 0;
    for (int i = 0; i < who.count; i++) allowed |= who.workspaces[i] == workspace;
    if (!allowed) { error_answer(a, 403, "Forbidden", "This token does not grant access to this workspace."); goto done; }
    long long asset = asset_field ? parse_id(asset_field->value, asset_field->value_len) : -1;
    if (asset < 0) { error_answer(a, 400, "Bad Request", "assetId must be a positive integer."); goto done; }
    if (!upload_field || upload_field->value_len == 0 || upload_field->value_len > 1024) {
        error_answer(a, 400, "Bad Request", "UploadId is required.");
        goto done;
    }
    upload *u = lookup(upload_field->value, upload_field->value_len);
    if (!u || u->asset_id != asset || u->workspace_id != workspace) {
        error_answer(a, 404, "Not Found", "The upload was not found for this asset in this workspace.");
        goto done;
    }
    if (!u->pending) { error_answer(a, 409, "Conflict", "The upload no longer takes parts."); goto done; }
    if (has_md5) {
        /* Recorded before the URL leaves, as assetd records it in its database. */
        pthread_mutex_lock(&md5_lock);
        u->md5_signed[part_number] = 1;
        atomic_fetch_add(&md5_recorded, 1);
        pthread_mutex_unlock(&md5_lock);
    }

    /* SigV4: the date, the scope, the canonical request. */
    struct tm t;
    gmtime_r(&now, &t);
    char date_time[17];
    strftime(date_time, sizeof date_time, "%Y%m%dT%H%M%SZ", &t);
    const day_scope *day = scope_for(date_time);

    char canonical[16384]; /* a key and an upload id of 1,099 bytes each, every byte escaped */
    char *p = canonical;
    p = put(p, "PUT\n");
    char *path_start = p;
    p = put(p, "/");
    p = put_uri_encoded(p, bucket, strlen(bucket), 1);
    p = put(p, "/");
    p = put_uri_encoded(p, u->key, strlen(u->key), 1);
    char *path_end = p;
    *p++ = '\n';
    char *query_start = p;
    /* The canonical query, in byte order of the names: X-Amz-* (upper case first), then
       partNumber, uploadId. */
    p = put(p, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
    p = put(p, day->credential);
    p = put(p, "&X-Amz-Date=");
    p = put(p, date_time);
    p += sprintf(p, "&X-Amz-Expires=%ld&X-Amz-SignedHeaders=", presign_expires);
    p = put(p, has_md5 ? "content-md5%3Bhost" : "host");
    p += sprintf(p, "&partNumber=%lld&uploadId=", part_number);
    p = put_uri_encoded(p, u->upload_id, strlen(u->upload_id), 0);
    char *query_end = p;
    *p++ = '\n';
    char md5_b64[32] = "";
    if (has_md5) {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        char *m = md5_b64;
        for (int i = 0; i < 15; i += 3) {
            unsigned v = (unsigned)md5[i] << 16 | (unsigned)md5[i + 1] << 8 | md5[i + 2];
            *m++ = alphabet[v >> 18]; *m++ = alphabet[v >> 12 & 63]; *m++ = alphabet[v >> 6 & 63]; *m++ = alphabet[v & 63];
        }
        unsigned v = (unsigned)md5[15] << 16;
        *m++ = alphabet[v >> 18]; *m++ = alphabet[v >> 12 & 63]; *m++ = '='; *m++ = '='; *m = 0;
        p = put(p, "content-md5:");
        p = put(p, md5_b64);
        *p++ = '\n';
    }
    p = put(p, "host:");
    p = put(p, host);
    p = put(p, has_md5 ? "\n\ncontent-md5;host\nUNSIGNED-PAYLOAD" : "\n\nhost\nUNSIGNED-PAYLOAD");

    unsigned char digest[32], signature[32];
    sha256(canonical, (size_t)(p - canonical), digest);
    char to_sign[256];
    char *s = to_sign;
    s = put(s, "AWS4-HMAC-SHA256\n");
    s = put(s, date_time);
    *s++ = '\n';
    s = put(s, day->scope);
    *s++ = '\n';
    s = put_hex(s, digest, 32);
    hmac(&day->key, to_sign, (size_t)(s - to_sign), signature);

    /* The body: {"url":"...","expiresIn":N}; the URL holds nothing JSON escapes. */
    char *b = a->body;
    b = put(b, "{\"url\":\"");
    b = put(b, scheme);
    b = put(b, "://");
    b = put(b, host);
    memcpy(b, path_start, (size_t)(path_end - path_start));
    b += path_end - path_start;
    *b++ = '?';
    memcpy(b, query_start, (size_t)(query_end - query_start));
    b += query_end - query_start;
    b = put(b, "&X-Amz-Signature=");
    b = put_hex(b, signature, 32);
    b += sprintf(b, "\",\"expiresIn\":%ld}", presign_expires);
    a->status = 200;
    a->reason = "OK";
    a->body_len = (size_t)(b - a->body);
done:
    free(decoded);
}

static void record(int status, long micros) {
    int i = status / 100;
    atomic_fetch_add_explicit(&requests_by_status[i < 6 ? i : 0], 1, memory_order_relaxed);
    int bucket = 0;
    while (bucket < BUCKETS - 1 && micros > bounds_ms[bucket] * 1000) bucket++;
    atomic_fetch_add_explicit(&histogram[bucket], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&duration_us_sum, micros, memory_order_relaxed);
}

/* One request, from its parameters to its response and access line: what callgrind counts
   (bench/callgrind-presign.sh, TARGET=reference), as FastCGIServer.serve in assetd. */
__attribute__((noinline)) static void serve(FCGX_Request *r) {
    char body[16384], head[512], line[1024];
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    answer a = {.body = body};
    long long workspace = -1, asset = -1;
    presign(r, &a, &workspace, &asset);
    int n = snprintf(head, sizeof head, "Status: %d %s\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n\r\n",
                     a.status, a.reason, a.extra_header ? a.extra_header : "", a.body_len);
    FCGX_PutStr(head, n, r->out);
    FCGX_PutStr(body, (int)a.body_len, r->out);
    clock_gettime(CLOCK_MONOTONIC, &end);
    long micros = (end.tv_sec - start.tv_sec) * 1000000L + (end.tv_nsec - start.tv_nsec) / 1000;
    record(a.status, micros);

    /* The access line, in assetd's layout and key order. */
    time_t second = time(NULL);
    if (second != stamp_second) {
        struct tm local;
        localtime_r(&second, &local);
        stamp_len = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S%z", &local);
        stamp_second = second;
    }
    char *l = line;
    memcpy(l, stamp, stamp_len);
    l += stamp_len;
    l = put(l, " info assetd:");
    if (asset > 0) l += sprintf(l, " asset=%lld", asset);
    l += sprintf(l, " duration_ms=%ld.%03ld method=", micros / 1000, micros % 1000);
    const char *method = FCGX_GetParam("REQUEST_METHOD", r->envp);
    const char *id = FCGX_GetParam("HTTP_X_REQUEST_ID", r->envp);
    l = put(l, method && strlen(method) < 32 ? method : "other");
    l = put(l, " request_id=");
    if (id) {
        for (int i = 0; id[i] && i < 64; i++)
            if ((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '-')
                *l++ = id[i];
    } else {
        *l++ = '-';
    }
    l += sprintf(l, " route=%s status=%d", a.status == 404 ? "unmatched" : "/s3/get-upload-url", a.status);
    if (workspace > 0) l += sprintf(l, " workspace=%lld", workspace);
    l = put(l, " [AssetdApp] request\n");
    if (write(log_fd, line, (size_t)(l - line)) < 0) { /* a log is not a reason to fail a request */ }
}

static void *worker(void *arg) {
    (void)arg;
    FCGX_Request r;
    FCGX_InitRequest(&r, listen_fd, 0);
    while (FCGX_Accept_r(&r) >= 0) {
        serve(&r);
        FCGX_Finish_r(&r);
    }
    return NULL;
}

static void load_settings(const char *file) {
    FILE *f = fopen(file, "r");
    if (!f) { perror(file); exit(1); }
    char line[2048], endpoint[512] = "", public_endpoint[512] = "";
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *eq = strchr(line, '=');
        if (!eq || line[0] == '#') continue;
        *eq = 0;
        const char *k = line, *v = eq + 1;
#define SET(name, dest) if (!strcmp(k, name)) snprintf(dest, sizeof dest, "%s", v)
        SET("ASSETD_JWT_SECRET", jwt_secret);
        SET("AWS_ACCESS_KEY_ID", access_key);
        SET("AWS_SECRET_ACCESS_KEY", secret_key);
        SET("AWS_DEFAULT_REGION", region);
        SET("AWS_BUCKET", bucket);
        SET("AWS_ENDPOINT_URL_S3", endpoint);
        SET("ASSETD_S3_PUBLIC_ENDPOINT", public_endpoint);
        if (!strcmp(k, "ASSETD_PRESIGN_EXPIRES")) presign_expires = atol(v);
    }
    fclose(f);
    const char *url = public_endpoint[0] ? public_endpoint : endpoint;
    const char *sep = strstr(url, "://");
    if (!sep || !jwt_secret[0] || !bucket[0]) { fprintf(stderr, "%s: missing settings\n", file); exit(1); }
    snprintf(scheme, sizeof scheme, "%.*s", (int)(sep - url), url);
    snprintf(host, sizeof host, "%s", sep + 3);
    host[strcspn(host, "/")] = 0;
    jwt_secret_len = strlen(jwt_secret);
    hmac_prepare(&jwt_key, jwt_secret, jwt_secret_len);
}

static void load_uploads(const char *file) {
    FILE *f = fopen(file, "r");
    if (!f) { perror(file); exit(1); }
    char id[1100], key[1100];
    long long asset, workspace;
    while (fscanf(f, "%1099s %lld %lld %1099s", id, &asset, &workspace, key) == 4) {
        upload *u = calloc(1, sizeof *u);
        u->upload_id = strdup(id);
        u->asset_id = asset;
        u->workspace_id = workspace;
        u->key = strdup(key);
        u->pending = 1;
        unsigned i = hash(id, strlen(id)) % TABLE_SIZE;
        while (table[i].u) i = (i + 1) % TABLE_SIZE;
        table[i].u = u;
    }
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s SOCKET_PATH THREADS ASSETD_ENV UPLOADS_FILE LOG_PATH\n", argv[0]);
        return 2;
    }
    load_settings(argv[3]);
    load_uploads(argv[4]);
    log_fd = open(argv[5], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (log_fd < 0) { perror(argv[5]); return 1; }
    int threads = atoi(argv[2]);
    if (threads < 1) threads = 1;
    if (threads > 512) threads = 512;
    FCGX_Init();
    unlink(argv[1]);
    listen_fd = FCGX_OpenSocket(argv[1], 1024);
    if (listen_fd < 0) { perror("FCGX_OpenSocket"); return 1; }
    chmod(argv[1], 0666);
    pthread_t ids[512];
    for (int i = 0; i < threads; i++) pthread_create(&ids[i], NULL, worker, NULL);
    for (int i = 0; i < threads; i++) pthread_join(ids[i], NULL);
    return 0;
}
