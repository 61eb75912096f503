/* AWS Signature Version 4 (see sigv4.h): canonical request, string to sign,
 * signature, with OpenSSL's SHA-256 and HMAC. */
#include "aws/sigv4.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALGORITHM   "AWS4-HMAC-SHA256"
#define TERMINATOR  "aws4_request"
#define MAX_HEADERS 32

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

typedef struct {
    char region[40];
    char service[40];
} scope_parts;

static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static EVP_MD *fetched_sha256;

/* Fetched once: the implicit fetch behind EVP_sha256() is repeated per use. */
static void fetch_sha256(void) { fetched_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL); }

static const EVP_MD *sha256_md(void)
{
    pthread_once(&md_once, fetch_sha256);
    return fetched_sha256 != NULL ? fetched_sha256 : EVP_sha256();
}

static void to_hex(const uint8_t *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0xf];
    }
    out[2 * len] = '\0';
}

static int sha256_hex(const void *data, size_t len, char out[65])
{
    uint8_t digest[32];
    if (EVP_Digest(data, len, digest, NULL, sha256_md(), NULL) != 1)
        return -1;
    to_hex(digest, sizeof digest, out);
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

/* "aws:amz:REGION:SERVICE", the form CURLOPT_AWS_SIGV4 took. */
static int parse_scope(const char *scope, scope_parts *out)
{
    static const char prefix[] = "aws:amz:";
    if (strncmp(scope, prefix, sizeof prefix - 1) != 0)
        return -1;
    const char *region = scope + sizeof prefix - 1;
    const char *colon = strchr(region, ':');
    if (colon == NULL || colon == region || colon[1] == '\0' ||
        (size_t)(colon - region) >= sizeof out->region || strlen(colon + 1) >= sizeof out->service)
        return -1;
    memcpy(out->region, region, (size_t)(colon - region));
    out->region[colon - region] = '\0';
    strcpy(out->service, colon + 1);
    return 0;
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

/* Host, X-Amz-Date and the caller's lines, sorted by lower-case name. */
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
    for (size_t i = 0; i < value.len; i++) {
        bool blank = isblank((unsigned char)value.start[i]);
        if (blank && i > 0 && isblank((unsigned char)value.start[i - 1]))
            continue;
        put(t, blank ? " " : value.start + i, 1);
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
static int canonical_request_hash(const aws_sigv4_input *input, const url_parts *url,
                                  const signed_header *list, size_t count, char out[65])
{
    char payload_hash[65];
    if (sha256_hex(input->body ? input->body : "", input->body ? input->body_len : 0,
                   payload_hash) != 0)
        return -1;
    size_t cap = canonical_size(input, url, list, count);
    text t = {.data = malloc(cap), .cap = cap};
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
    int rc = t.overflow ? -1 : sha256_hex(t.data, t.len, out);
    OPENSSL_cleanse(t.data, cap);
    free(t.data);
    return rc;
}

static int derive_key(const char *secret, const char *day, const scope_parts *scope,
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

static void wipe_entry(aws_sigv4_cache *cache)
{
    OPENSSL_cleanse(cache->secret, sizeof cache->secret);
    OPENSSL_cleanse(cache->key, sizeof cache->key);
    memset(cache->day, 0, sizeof cache->day);
    memset(cache->scope, 0, sizeof cache->scope);
}

/* kSigning for this secret, day and scope: from the cache, or derived (and
 * cached when the secret fits the cache). */
static int signing_key(aws_sigv4_cache *cache, const aws_sigv4_input *input, const char *day,
                       const scope_parts *scope, uint8_t out[32])
{
    const char *secret = input->secret_access_key;
    bool cacheable =
        strlen(secret) < sizeof cache->secret && strlen(input->scope) < sizeof cache->scope;
    if (!cacheable)
        return derive_key(secret, day, scope, out);
    int rc = 0;
    pthread_mutex_lock(&cache->lock);
    if (strcmp(cache->secret, secret) != 0 || strcmp(cache->day, day) != 0 ||
        strcmp(cache->scope, input->scope) != 0) {
        wipe_entry(cache);
        rc = derive_key(secret, day, scope, cache->key);
        if (rc == 0) {
            strcpy(cache->secret, secret);
            strcpy(cache->day, day);
            strcpy(cache->scope, input->scope);
        }
    }
    if (rc == 0)
        memcpy(out, cache->key, sizeof cache->key);
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

static int signature_hex(aws_sigv4_cache *cache, const aws_sigv4_input *input,
                         const scope_parts *scope, const char *amz_date, const char *canonical_hash,
                         char out[65])
{
    char day[9];
    memcpy(day, amz_date, 8);
    day[8] = '\0';
    char to_sign[512];
    int n = snprintf(to_sign, sizeof to_sign, ALGORITHM "\n%s\n%s/%s/%s/" TERMINATOR "\n%s",
                     amz_date, day, scope->region, scope->service, canonical_hash);
    if (n < 0 || (size_t)n >= sizeof to_sign)
        return -1;
    uint8_t key[32], mac[32];
    int rc = signing_key(cache, input, day, scope, key);
    if (rc == 0)
        rc = hmac(key, sizeof key, to_sign, (size_t)n, mac);
    OPENSSL_cleanse(key, sizeof key);
    if (rc == 0)
        to_hex(mac, sizeof mac, out);
    return rc;
}

static int format_authorization(const aws_sigv4_input *input, const scope_parts *scope,
                                const char *amz_date, const signed_header *list, size_t count,
                                const char *signature, aws_sigv4_headers *out)
{
    char names[512] = "";
    text t = {.data = names, .cap = sizeof names};
    put_signed_names(&t, list, count);
    int n =
        snprintf(out->authorization, sizeof out->authorization,
                 "Authorization: " ALGORITHM " Credential=%s/%.8s/%s/%s/" TERMINATOR
                 ", SignedHeaders=%s, Signature=%s",
                 input->access_key_id, amz_date, scope->region, scope->service, names, signature);
    return t.overflow || n < 0 || (size_t)n >= sizeof out->authorization ? -1 : 0;
}

int aws_sigv4_sign(aws_sigv4_cache *cache, const aws_sigv4_input *input, aws_sigv4_headers *out)
{
    scope_parts scope;
    url_parts url;
    if (parse_scope(input->scope, &scope) != 0 || split_url(input->url, &url) != 0 ||
        url.host.len + sizeof "Host: " > sizeof out->host)
        return -1;
    struct tm utc;
    char amz_date[20];
    if (gmtime_r(&input->now, &utc) == NULL ||
        strftime(amz_date, sizeof amz_date, "%Y%m%dT%H%M%SZ", &utc) == 0)
        return -1;
    signed_header list[MAX_HEADERS];
    size_t count;
    char canonical_hash[65], signature[65];
    if (collect_headers(input, url.host, amz_date, list, &count) != 0 ||
        canonical_request_hash(input, &url, list, count, canonical_hash) != 0 ||
        signature_hex(cache, input, &scope, amz_date, canonical_hash, signature) != 0 ||
        format_authorization(input, &scope, amz_date, list, count, signature, out) != 0)
        return -1;
    snprintf(out->host, sizeof out->host, "Host: %.*s", (int)url.host.len, url.host.start);
    snprintf(out->date, sizeof out->date, "X-Amz-Date: %s", amz_date);
    return 0;
}
