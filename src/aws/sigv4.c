/* AWS Signature Version 4 (see sigv4.h): canonical request, string to sign,
 * signature, with OpenSSL's SHA-256. The SHA-256 implementation is fetched
 * once, and the HMAC with the day's signing key starts from SHA-256 states
 * that already absorbed the key's pads: OpenSSL's HMAC() fetches the MAC and
 * the digest by name on every call, which cost more than the rest of SigV4. */
#include "aws/sigv4.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/hex.h"

#define ALGORITHM       "AWS4-HMAC-SHA256"
#define TERMINATOR      "aws4_request"
#define MAX_HEADERS     32
#define SHA256_BLOCK    64
#define STACK_CANONICAL 4096 /* canonical requests up to this size are built on the stack */

typedef struct {
    const char *start;
    size_t len;
} span;

typedef struct {
    char name[64]; /* lower case */
    span value;    /* trimmed; inner runs of blanks are folded when written */
} signed_header;

typedef struct {
    span host, path, query;
} url_parts;

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *fetched_sha256;

/* Fetched once: the implicit fetch behind EVP_sha256() is repeated per use. */
static void fetch_sha256(void) { fetched_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); }

static const EVP_MD *sha256_md(void)
{
    pthread_once(&md_once, fetch_sha256);
    return fetched_sha256 != NULL ? fetched_sha256 : EVP_sha256();
}

int aws_sigv4_scope_init(aws_sigv4_scope *scope, const char *region, const char *service)
{
    memset(scope, 0, sizeof *scope);
    if (region == NULL || service == NULL || region[0] == '\0' || service[0] == '\0' ||
        strlen(region) >= sizeof scope->region || strlen(service) >= sizeof scope->service)
        return -1;
    strcpy(scope->region, region);
    strcpy(scope->service, service);
    return 0;
}

static bool same_scope(const aws_sigv4_scope *a, const aws_sigv4_scope *b)
{
    return strcmp(a->region, b->region) == 0 && strcmp(a->service, b->service) == 0;
}

/* Hex SHA-256 of data, computed in the caller's context. */
static int sha256_hex(EVP_MD_CTX *md, const void *data, size_t len, char out[65])
{
    uint8_t digest[32];
    unsigned int digest_len = 0;
    if (EVP_DigestInit_ex2(md, sha256_md(), NULL) != 1 || EVP_DigestUpdate(md, data, len) != 1 ||
        EVP_DigestFinal_ex(md, digest, &digest_len) != 1)
        return -1;
    hex_encode(digest, sizeof digest, out);
    return 0;
}

static int hmac(const uint8_t *key, size_t key_len, const char *data, size_t len, uint8_t out[32])
{
    unsigned int out_len = 0;
    return HMAC(sha256_md(), key, (int)key_len, (const unsigned char *)data, len, out, &out_len) ==
                   NULL
               ? -1
               : 0;
}

/* Host (with port, as in the URL), path ("/" when empty) and query. */
static int split_url(const char *url, url_parts *out)
{
    const char *p = strstr(url, "://");
    if (p == NULL)
        return -1;
    p += 3;
    size_t authority = strcspn(p, "/?#");
    const char *at = memchr(p, '@', authority);
    if (at != NULL) {
        authority -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    if (authority == 0)
        return -1;
    out->host = (span){p, authority};
    p += authority;
    size_t path_len = strcspn(p, "?#");
    out->path = path_len > 0 ? (span){p, path_len} : (span){"/", 1};
    p += path_len;
    if (*p == '?')
        out->query = (span){p + 1, strcspn(p + 1, "#")};
    else
        out->query = (span){"", 0};
    return 0;
}

static span trimmed(const char *start, size_t len)
{
    while (len > 0 && isblank((unsigned char)*start)) {
        start++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)start[len - 1]))
        len--;
    return (span){start, len};
}

bool aws_sigv4_signs_header(const char *name, size_t name_len)
{
    /* botocore's SIGNED_HEADERS_BLACKLIST: proxies and load balancers may
     * rewrite these, and a rewritten signed header breaks the signature. */
    static const char *const unsigned_names[] = {"user-agent", "expect", "x-amzn-trace-id"};
    for (size_t i = 0; i < sizeof unsigned_names / sizeof unsigned_names[0]; i++) {
        if (strlen(unsigned_names[i]) == name_len &&
            strncasecmp(name, unsigned_names[i], name_len) == 0)
            return false;
    }
    return true;
}

static int add_header(signed_header *list, size_t *count, const char *name, size_t name_len,
                      span value)
{
    if (*count >= MAX_HEADERS || name_len == 0 || name_len >= sizeof list->name)
        return -1;
    signed_header *h = &list[(*count)++];
    for (size_t i = 0; i < name_len; i++)
        h->name[i] = (char)tolower((unsigned char)name[i]);
    h->name[name_len] = '\0';
    h->value = value;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const signed_header *)a)->name, ((const signed_header *)b)->name);
}

/* Host, X-Amz-Date and the caller's signed lines, sorted by lower-case name. */
static int collect_headers(const aws_sigv4_input *input, span host, const char *amz_date,
                           signed_header *list, size_t *count)
{
    *count = 0;
    if (add_header(list, count, "host", 4, host) != 0 ||
        add_header(list, count, "x-amz-date", 10, (span){amz_date, strlen(amz_date)}) != 0)
        return -1;
    for (const char *const *line = input->headers; line != NULL && *line != NULL; line++) {
        const char *colon = strchr(*line, ':');
        if (colon == NULL)
            return -1;
        span name = trimmed(*line, (size_t)(colon - *line));
        if (!aws_sigv4_signs_header(name.start, name.len))
            continue;
        if (add_header(list, count, name.start, name.len, trimmed(colon + 1, strlen(colon + 1))) !=
            0)
            return -1;
    }
    qsort(list, *count, sizeof *list, by_name);
    return 0;
}

/* A fixed-capacity text buffer; overflow is reported by its flag. */
typedef struct {
    char *data;
    size_t len, cap;
    bool overflow;
} text;

static void put(text *t, const char *data, size_t len)
{
    if (t->len + len >= t->cap) {
        t->overflow = true;
        return;
    }
    memcpy(t->data + t->len, data, len);
    t->len += len;
    t->data[t->len] = '\0';
}

static void put_str(text *t, const char *s) { put(t, s, strlen(s)); }

/* A header value with each run of blanks folded to one space. */
static void put_folded(text *t, span value)
{
    size_t i = 0;
    while (i < value.len) {
        size_t run = 0;
        while (i + run < value.len && !isblank((unsigned char)value.start[i + run]))
            run++;
        put(t, value.start + i, run);
        i += run;
        if (i < value.len) {
            put(t, " ", 1);
            while (i < value.len && isblank((unsigned char)value.start[i]))
                i++;
        }
    }
}

static void put_signed_names(text *t, const signed_header *list, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (i > 0)
            put(t, ";", 1);
        put_str(t, list[i].name);
    }
}

static size_t canonical_size(const aws_sigv4_input *input, const url_parts *url,
                             const signed_header *list, size_t count)
{
    size_t size = strlen(input->method) + url->path.len + url->query.len + 128;
    for (size_t i = 0; i < count; i++)
        size += 2 * strlen(list[i].name) + list[i].value.len + 3;
    return size;
}

/* Hex SHA-256 of the canonical request. The request holds the session
 * token, so its buffer is wiped. */
static int canonical_request_hash(EVP_MD_CTX *md, const aws_sigv4_input *input,
                                  const url_parts *url, const signed_header *list, size_t count,
                                  char out[65])
{
    char payload_hash[65];
    if (sha256_hex(md, input->body ? input->body : "", input->body ? input->body_len : 0,
                   payload_hash) != 0)
        return -1;
    char on_stack[STACK_CANONICAL];
    size_t cap = canonical_size(input, url, list, count);
    text t = {.data = cap <= sizeof on_stack ? on_stack : malloc(cap), .cap = cap};
    if (t.data == NULL)
        return -1;
    put_str(&t, input->method);
    put(&t, "\n", 1);
    put(&t, url->path.start, url->path.len);
    put(&t, "\n", 1);
    put(&t, url->query.start, url->query.len);
    put(&t, "\n", 1);
    for (size_t i = 0; i < count; i++) {
        put_str(&t, list[i].name);
        put(&t, ":", 1);
        put_folded(&t, list[i].value);
        put(&t, "\n", 1);
    }
    put(&t, "\n", 1);
    put_signed_names(&t, list, count);
    put(&t, "\n", 1);
    put_str(&t, payload_hash);
    int rc = t.overflow ? -1 : sha256_hex(md, t.data, t.len, out);
    OPENSSL_cleanse(t.data, t.len);
    if (t.data != on_stack)
        free(t.data);
    return rc;
}

static int derive_key(const char *secret, const char *day, const aws_sigv4_scope *scope,
                      uint8_t out[32])
{
    char first[sizeof "AWS4" + 256];
    int n = snprintf(first, sizeof first, "AWS4%s", secret);
    uint8_t k[32];
    int rc = (n < 0 || (size_t)n >= sizeof first ||
              hmac((const uint8_t *)first, (size_t)n, day, strlen(day), k) != 0 ||
              hmac(k, sizeof k, scope->region, strlen(scope->region), k) != 0 ||
              hmac(k, sizeof k, scope->service, strlen(scope->service), k) != 0 ||
              hmac(k, sizeof k, TERMINATOR, strlen(TERMINATOR), out) != 0)
                 ? -1
                 : 0;
    OPENSSL_cleanse(first, sizeof first);
    OPENSSL_cleanse(k, sizeof k);
    return rc;
}

/* A SHA-256 state that absorbed the 64-byte block key XOR pad. */
static EVP_MD_CTX *absorbed_pad(const uint8_t key[32], uint8_t pad)
{
    uint8_t block[SHA256_BLOCK];
    memset(block, pad, sizeof block);
    for (size_t i = 0; i < 32; i++)
        block[i] ^= key[i];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md != NULL && (EVP_DigestInit_ex2(md, sha256_md(), NULL) != 1 ||
                       EVP_DigestUpdate(md, block, sizeof block) != 1)) {
        EVP_MD_CTX_free(md);
        md = NULL;
    }
    OPENSSL_cleanse(block, sizeof block);
    return md;
}

/* EVP_MD_CTX_free cleanses the state (OpenSSL clears a freed digest context). */
static void wipe_entry(aws_sigv4_cache *cache)
{
    OPENSSL_cleanse(cache->secret, sizeof cache->secret);
    EVP_MD_CTX_free(cache->inner);
    EVP_MD_CTX_free(cache->outer);
    cache->inner = cache->outer = NULL;
    memset(cache->day, 0, sizeof cache->day);
    memset(&cache->scope, 0, sizeof cache->scope);
}

/* Caches the HMAC states of the key for secret, day and scope. */
static int fill_entry(aws_sigv4_cache *cache, const char *secret, const char *day,
                      const aws_sigv4_scope *scope)
{
    wipe_entry(cache);
    uint8_t key[32];
    if (derive_key(secret, day, scope, key) != 0)
        return -1;
    cache->inner = absorbed_pad(key, 0x36);
    cache->outer = absorbed_pad(key, 0x5c);
    OPENSSL_cleanse(key, sizeof key);
    if (cache->inner == NULL || cache->outer == NULL) {
        wipe_entry(cache);
        return -1;
    }
    strcpy(cache->secret, secret);
    strcpy(cache->day, day);
    cache->scope = *scope;
    return 0;
}

/* HMAC-SHA256 from the absorbed pads, in md (left holding the outer state). */
static int finish_hmac(EVP_MD_CTX *md, const EVP_MD_CTX *inner, const EVP_MD_CTX *outer,
                       const char *data, size_t len, uint8_t out[32])
{
    uint8_t inner_digest[32];
    unsigned int n = 0;
    int rc = EVP_MD_CTX_copy_ex(md, inner) == 1 && EVP_DigestUpdate(md, data, len) == 1 &&
                     EVP_DigestFinal_ex(md, inner_digest, &n) == 1 &&
                     EVP_MD_CTX_copy_ex(md, outer) == 1 &&
                     EVP_DigestUpdate(md, inner_digest, sizeof inner_digest) == 1 &&
                     EVP_DigestFinal_ex(md, out, &n) == 1
                 ? 0
                 : -1;
    OPENSSL_cleanse(inner_digest, sizeof inner_digest);
    return rc;
}

/* The signature over to_sign with the key for this secret, day and scope:
 * from the cache, or derived (and cached when the secret fits the cache). */
static int sign_string(aws_sigv4_cache *cache, EVP_MD_CTX *md, const aws_sigv4_input *input,
                       const char *day, const char *to_sign, size_t len, uint8_t out[32])
{
    const char *secret = input->secret_access_key;
    if (strlen(secret) >= sizeof cache->secret) {
        uint8_t key[32];
        int rc = derive_key(secret, day, input->scope, key);
        if (rc == 0)
            rc = hmac(key, sizeof key, to_sign, len, out);
        OPENSSL_cleanse(key, sizeof key);
        return rc;
    }
    pthread_mutex_lock(&cache->lock);
    int rc = 0;
    if (cache->inner == NULL || strcmp(cache->secret, secret) != 0 ||
        strcmp(cache->day, day) != 0 || !same_scope(&cache->scope, input->scope))
        rc = fill_entry(cache, secret, day, input->scope);
    if (rc == 0)
        rc = finish_hmac(md, cache->inner, cache->outer, to_sign, len, out);
    pthread_mutex_unlock(&cache->lock);
    return rc;
}

void aws_sigv4_cache_init(aws_sigv4_cache *cache)
{
    memset(cache, 0, sizeof *cache);
    pthread_mutex_init(&cache->lock, NULL);
}

void aws_sigv4_cache_destroy(aws_sigv4_cache *cache)
{
    wipe_entry(cache);
    pthread_mutex_destroy(&cache->lock);
}

/* "DAY/REGION/SERVICE/aws4_request", the credential scope. */
static void put_scope(text *t, const char *day, const aws_sigv4_scope *scope)
{
    put(t, day, 8);
    put(t, "/", 1);
    put_str(t, scope->region);
    put(t, "/", 1);
    put_str(t, scope->service);
    put(t, "/" TERMINATOR, sizeof TERMINATOR);
}

static int signature_hex(aws_sigv4_cache *cache, EVP_MD_CTX *md, const aws_sigv4_input *input,
                         const char *amz_date, const char *canonical_hash, char out[65])
{
    char day[9];
    memcpy(day, amz_date, 8);
    day[8] = '\0';
    char to_sign[512];
    text t = {.data = to_sign, .cap = sizeof to_sign};
    put(&t, ALGORITHM "\n", sizeof ALGORITHM);
    put_str(&t, amz_date);
    put(&t, "\n", 1);
    put_scope(&t, day, input->scope);
    put(&t, "\n", 1);
    put_str(&t, canonical_hash);
    uint8_t mac[32];
    if (t.overflow || sign_string(cache, md, input, day, to_sign, t.len, mac) != 0)
        return -1;
    hex_encode(mac, sizeof mac, out);
    return 0;
}

static int format_authorization(const aws_sigv4_input *input, const char *amz_date,
                                const signed_header *list, size_t count, const char *signature,
                                aws_sigv4_headers *out)
{
    text t = {.data = out->authorization, .cap = sizeof out->authorization};
    put_str(&t, "Authorization: " ALGORITHM " Credential=");
    put_str(&t, input->access_key_id);
    put(&t, "/", 1);
    put_scope(&t, amz_date, input->scope);
    put_str(&t, ", SignedHeaders=");
    put_signed_names(&t, list, count);
    put_str(&t, ", Signature=");
    put_str(&t, signature);
    return t.overflow ? -1 : 0;
}

/* "YYYYMMDDTHHMMSSZ" for now; -1 when the time cannot be written. */
static int format_amz_date(time_t now, char out[20])
{
    struct tm utc;
    if (gmtime_r(&now, &utc) == NULL || strftime(out, 20, "%Y%m%dT%H%M%SZ", &utc) != 16)
        return -1;
    return 0;
}

int aws_sigv4_sign(aws_sigv4_cache *cache, const aws_sigv4_input *input, aws_sigv4_headers *out)
{
    url_parts url;
    char amz_date[20];
    if (input->scope == NULL || input->scope->region[0] == '\0' ||
        input->scope->service[0] == '\0' || split_url(input->url, &url) != 0 ||
        url.host.len + sizeof "Host: " > sizeof out->host ||
        format_amz_date(input->now, amz_date) != 0)
        return -1;
    signed_header list[MAX_HEADERS];
    size_t count;
    char canonical_hash[65], signature[65];
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = md != NULL && collect_headers(input, url.host, amz_date, list, &count) == 0 &&
                     canonical_request_hash(md, input, &url, list, count, canonical_hash) == 0 &&
                     signature_hex(cache, md, input, amz_date, canonical_hash, signature) == 0 &&
                     format_authorization(input, amz_date, list, count, signature, out) == 0
                 ? 0
                 : -1;
    EVP_MD_CTX_free(md);
    if (rc != 0)
        return -1;
    text host = {.data = out->host, .cap = sizeof out->host};
    put_str(&host, "Host: ");
    put(&host, url.host.start, url.host.len);
    text date = {.data = out->date, .cap = sizeof out->date};
    put_str(&date, "X-Amz-Date: ");
    put_str(&date, amz_date);
    return host.overflow || date.overflow ? -1 : 0;
}
