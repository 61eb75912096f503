/* AWS Signature Version 4 for the HTTP layer (replaces CURLOPT_AWS_SIGV4,
 * whose per-request cost was over half the plugin's CPU per SignData). It
 * signs host, x-amz-date and every caller header except the ones the AWS SDKs
 * leave out because intermediaries may rewrite them (User-Agent, Expect,
 * X-Amzn-Trace-Id), with the URL's path and query as sent. The scope (region,
 * service) is parsed once, by whoever owns it (the KMS client). The derived
 * signing key is cached per secret, day and scope as SHA-256 states with the
 * HMAC pads already absorbed (wiped when replaced and when the cache is
 * freed), so a signature costs two SHA-256 passes and two short HMAC ends. */
#ifndef KM_AWS_SIGV4_H
#define KM_AWS_SIGV4_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Region and service of a credential scope, e.g. us-east-2 and kms. */
typedef struct {
    char region[40];
    char service[40];
} aws_sigv4_scope;

/* Fills scope; -1 when region or service is empty or too long. */
int aws_sigv4_scope_init(aws_sigv4_scope *scope, const char *region, const char *service);

typedef struct evp_md_ctx_st aws_sigv4_md_ctx; /* OpenSSL's EVP_MD_CTX */

typedef struct {
    pthread_mutex_t lock;
    char secret[160];        /* the secret the key was derived from ("" when none) */
    char day[9];             /* YYYYMMDD */
    aws_sigv4_scope scope;   /* the scope it was derived for */
    aws_sigv4_md_ctx *inner; /* SHA-256 after (kSigning XOR ipad); NULL when empty */
    aws_sigv4_md_ctx *outer; /* SHA-256 after (kSigning XOR opad) */
} aws_sigv4_cache;

typedef struct {
    const char *method;
    const char *url;
    const char *const *headers; /* "Name: value" lines (token line included), NULL-terminated */
    const char *body;
    size_t body_len;
    const aws_sigv4_scope *scope;
    const char *access_key_id;
    const char *secret_access_key;
    time_t now;
} aws_sigv4_input;

/* Header lines to send with the request: Host, X-Amz-Date, Authorization. */
typedef struct {
    char host[300];
    char date[48];
    char authorization[1024];
} aws_sigv4_headers;

void aws_sigv4_cache_init(aws_sigv4_cache *cache);
void aws_sigv4_cache_destroy(aws_sigv4_cache *cache);

/* Whether a header (its name, any case) is signed. */
bool aws_sigv4_signs_header(const char *name, size_t name_len);

/* Returns 0, or -1 when the URL or headers cannot be signed (too long,
 * malformed) or out of memory. */
int aws_sigv4_sign(aws_sigv4_cache *cache, const aws_sigv4_input *input, aws_sigv4_headers *out);

#endif
