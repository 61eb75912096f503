/* AWS Signature Version 4 for the HTTP layer (replaces CURLOPT_AWS_SIGV4,
 * whose per-request cost was over half the plugin's CPU per SignData). It
 * signs what curl signed: host, x-amz-date and every caller header, with the
 * URL's path and query as sent. The derived signing key is cached per day,
 * region and service (wiped when replaced and when the cache is freed). */
#ifndef KM_AWS_SIGV4_H
#define KM_AWS_SIGV4_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct {
    pthread_mutex_t lock;
    char secret[160]; /* the secret the key was derived from ("" when none) */
    char day[9];      /* YYYYMMDD */
    char scope[96];   /* "aws:amz:REGION:SERVICE" */
    uint8_t key[32];  /* kSigning */
} aws_sigv4_cache;

typedef struct {
    const char *method;
    const char *url;
    const char *const *headers; /* "Name: value" lines (token line included), NULL-terminated */
    const char *body;
    size_t body_len;
    const char *scope; /* "aws:amz:REGION:SERVICE" */
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

/* Returns 0, or -1 when the scope, URL or headers cannot be signed (too long,
 * malformed) or out of memory. */
int aws_sigv4_sign(aws_sigv4_cache *cache, const aws_sigv4_input *input, aws_sigv4_headers *out);

#endif
