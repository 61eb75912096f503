/* The credential provider: resolves the chain once (first aws_credentials_get),
 * keeps the winning source, caches its credentials and refreshes temporary
 * ones within 5 minutes of expiry, judged on the skew-corrected clock
 * (clock.h). One thread refreshes; the others keep using the still-valid
 * credentials, or wait when they have expired, each until its own deadline
 * or cancellation. */
#include "aws/credentials.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/clock.h"
#include "aws/credentials_internal.h"
#include "aws/http.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/secrets.h"

#define LOG_MODULE "aws.credentials"

struct aws_credentials_provider {
    pthread_mutex_t lock;
    pthread_cond_t refreshed;

    char *access_key_id;
    char *secret_access_key;
    char *region;
    char *sts_endpoint;
    bool use_fips_endpoint;
    int process_timeout_ms;
    aws_http *http;
    bool owns_http;
    aws_cred_hooks hooks;

    aws_cred_plan *plan; /* NULL until the chain has been resolved */
    bool have_cached;
    aws_credentials cached;
    bool refreshing;
    bool refresh_requested;  /* aws_credentials_peek handed a refresh to its caller */
    unsigned long attempts;  /* refresh attempts finished */
    int last_rc;             /* result of the last attempt */
    aws_error last_err;      /* its error */
    bool last_gave_up;       /* it ended because its caller's deadline or cancel came */
    int64_t next_attempt_at; /* after a failed refresh of still-valid credentials */
};

aws_cred_freshness aws_cred_freshness_at(int64_t expiration, int64_t now)
{
    if (expiration == 0 || expiration - now > AWS_CRED_REFRESH_WINDOW_S)
        return AWS_CRED_FRESH;
    return expiration > now ? AWS_CRED_STALE : AWS_CRED_EXPIRED;
}

void aws_credentials_clear(aws_credentials *credentials)
{
    if (credentials != NULL)
        OPENSSL_cleanse(credentials, sizeof *credentials);
}

static char *dup_or_null(const char *text)
{
    return (text != NULL && text[0] != '\0') ? strdup(text) : NULL;
}

aws_credentials_provider *
aws_credentials_provider_new_with_hooks(const aws_credentials_options *options,
                                        const aws_cred_hooks *hooks)
{
    aws_credentials_provider *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL;
    pthread_mutex_init(&p->lock, NULL);
    clock_cond_init(&p->refreshed); /* deadlines are monotonic */
    p->access_key_id = dup_or_null(options->access_key_id);
    p->secret_access_key = dup_or_null(options->secret_access_key);
    p->region = dup_or_null(options->region);
    p->sts_endpoint = dup_or_null(options->sts_endpoint);
    p->use_fips_endpoint = options->use_fips_endpoint;
    p->process_timeout_ms = options->process_timeout_ms;
    p->http = options->http;
    if (hooks != NULL)
        p->hooks = *hooks;
    if (p->http == NULL && p->hooks.fetch == NULL) {
        p->http = aws_http_new(&(aws_http_options){0});
        p->owns_http = true;
        if (p->http == NULL) {
            aws_credentials_provider_free(p);
            return NULL;
        }
    }
    return p;
}

aws_credentials_provider *aws_credentials_provider_new(const aws_credentials_options *options)
{
    return aws_credentials_provider_new_with_hooks(options, NULL);
}

void aws_credentials_provider_free(aws_credentials_provider *p)
{
    if (p == NULL)
        return;
    if (p->owns_http)
        aws_http_free(p->http);
    if (p->plan != NULL) {
        aws_cred_plan_clear(p->plan);
        free(p->plan);
    }
    aws_credentials_clear(&p->cached);
    free(p->access_key_id);
    secret_free(p->secret_access_key);
    free(p->region);
    free(p->sts_endpoint);
    pthread_cond_destroy(&p->refreshed);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static int64_t now_s(const aws_credentials_provider *p)
{
    return p->hooks.now != NULL ? p->hooks.now(p->hooks.now_ctx) : aws_clock_now();
}

static aws_credentials_options options_of(const aws_credentials_provider *p)
{
    return (aws_credentials_options){.access_key_id = p->access_key_id,
                                     .secret_access_key = p->secret_access_key,
                                     .region = p->region,
                                     .sts_endpoint = p->sts_endpoint,
                                     .use_fips_endpoint = p->use_fips_endpoint,
                                     .http = p->http};
}

static int fetch(const aws_credentials_provider *p, const aws_call_ctx *call,
                 const aws_cred_plan *plan, aws_credentials *out, aws_error *err)
{
    if (p->hooks.fetch != NULL)
        return p->hooks.fetch(p->hooks.fetch_ctx, plan, out, err);
    aws_cred_fetch_ctx ctx = {.http = p->http,
                              .call = call,
                              .sts_endpoint = p->sts_endpoint,
                              .use_fips_endpoint = p->use_fips_endpoint,
                              .now = now_s(p),
                              .process_timeout_ms = p->process_timeout_ms};
    return aws_cred_plan_fetch(plan, &ctx, out, err);
}

static void log_source(const aws_cred_plan *plan, const aws_credentials *creds)
{
    char expiration[32] = "never";
    if (creds->expiration != 0)
        aws_cred_format_iso8601(creds->expiration, expiration, sizeof expiration);
    /* role_arn and profile only when there is one: a NULL key ends the fields. */
    const char *role = aws_cred_plan_role_arn(plan);
    const char *profile = plan->profile;
    const char *first_key = role[0] ? "role_arn" : profile[0] ? "profile" : NULL;
    const char *first_value = role[0] ? role : profile;
    const char *second_key = role[0] && profile[0] ? "profile" : NULL;
    log_write(LOG_INFO, LOG_MODULE, "AWS credentials loaded", "source", plan->source, "expiration",
              expiration, first_key, first_value, second_key, profile, LOG_END);
}

/* The whole chain, for the first get (or until it first succeeds). */
static int resolve_and_fetch(aws_credentials_provider *p, const aws_call_ctx *call,
                             aws_credentials *out, aws_error *err)
{
    aws_cred_plan *plan = calloc(1, sizeof *plan);
    if (plan == NULL) {
        aws_error_set(err, AWS_ERR_INTERNAL, "out of memory");
        return -1;
    }
    aws_credentials_options options = options_of(p);
    int rc = aws_cred_plan_resolve(&options, &p->hooks.env, plan, err);
    if (rc == 0 && plan->kind == AWS_CRED_PLAN_NONE) {
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "no AWS credentials found: set access_key_id/secret_access_key, "
                      "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a web identity token, a shared "
                      "profile, a container endpoint or run on EC2 with an instance role (tried: "
                      "%s)",
                      plan->tried);
        rc = -1;
    }
    if (rc == 0 && (rc = fetch(p, call, plan, out, err)) != 0 && plan->kind == AWS_CRED_PLAN_IMDS) {
        char cause[sizeof err->message];
        snprintf(cause, sizeof cause, "%s", err->message);
        aws_error_set(err, AWS_ERR_CREDENTIALS,
                      "no AWS credentials found: set access_key_id/secret_access_key, "
                      "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a web identity token, a shared "
                      "profile, a container endpoint or run on EC2 with an instance role (tried: "
                      "%s; %s)",
                      plan->tried, cause);
    }
    if (rc != 0) {
        aws_cred_plan_clear(plan);
        free(plan);
        return -1;
    }
    log_source(plan, out);
    p->plan = plan; /* read only by the single refreshing thread */
    return 0;
}

static void log_refreshed(const aws_cred_plan *plan, const aws_credentials *creds)
{
    if (!log_enabled(LOG_DEBUG))
        return;
    char expiration[32] = "never";
    if (creds->expiration != 0)
        aws_cred_format_iso8601(creds->expiration, expiration, sizeof expiration);
    log_write(LOG_DEBUG, LOG_MODULE, "AWS credentials refreshed", "source", plan->source,
              "expiration", expiration, LOG_END);
}

/* Called without the lock by the one refreshing thread. */
static int refresh(aws_credentials_provider *p, const aws_call_ctx *call, aws_credentials *out,
                   aws_error *err)
{
    bool first = p->plan == NULL;
    int rc = first ? resolve_and_fetch(p, call, out, err) : fetch(p, call, p->plan, out, err);
    if (rc != 0)
        return -1;
    if (aws_cred_freshness_at(out->expiration, now_s(p)) == AWS_CRED_EXPIRED) {
        aws_credentials_clear(out);
        aws_error_set(err, AWS_ERR_CREDENTIALS, "%s: the credentials returned have expired",
                      p->plan->source);
        return -1;
    }
    if (!first)
        log_refreshed(p->plan, out);
    return 0;
}

static bool usable_now(const aws_credentials_provider *p, int64_t now, bool *needs_refresh)
{
    if (!p->have_cached)
        return false;
    aws_cred_freshness freshness = aws_cred_freshness_at(p->cached.expiration, now);
    *needs_refresh = freshness == AWS_CRED_STALE && !p->refreshing && now >= p->next_attempt_at;
    return freshness != AWS_CRED_EXPIRED;
}

/* True once the call's deadline has passed or its caller cancelled it. */
static bool call_over(const aws_call_ctx *call)
{
    if (call == NULL)
        return false;
    if (call->cancelled != NULL && atomic_load(call->cancelled))
        return true;
    return call->deadline_ms > 0 && clock_monotonic_ms() >= call->deadline_ms;
}

/* Runs one refresh as the refresher and records its outcome. Lock held on
 * entry and exit. Returns true when out holds credentials. */
static bool refresh_as_leader(aws_credentials_provider *p, const aws_call_ctx *call,
                              aws_credentials *out)
{
    p->refreshing = true;
    pthread_mutex_unlock(&p->lock);
    aws_credentials fresh;
    aws_error err;
    aws_error_clear(&err);
    int rc = refresh(p, call, &fresh, &err);
    pthread_mutex_lock(&p->lock);
    p->refreshing = false;
    p->attempts++;
    p->last_rc = rc;
    p->last_err = err;
    /* Cut short by this caller's deadline or cancel: no verdict on the
     * source, so a waiter with time left tries again at once. */
    p->last_gave_up = rc != 0 && call_over(call);
    if (rc == 0) {
        p->cached = fresh;
        p->have_cached = true;
        p->next_attempt_at = 0;
    } else if (p->have_cached && !p->last_gave_up) {
        p->next_attempt_at = now_s(p) + AWS_CRED_RETRY_AFTER_FAILURE_S;
    }
    aws_credentials_clear(&fresh);
    pthread_cond_broadcast(&p->refreshed);
    int64_t now = now_s(p);
    if (rc != 0 && !p->last_gave_up && p->have_cached &&
        aws_cred_freshness_at(p->cached.expiration, now) != AWS_CRED_EXPIRED)
        log_write(LOG_WARN, LOG_MODULE,
                  "AWS credentials refresh failed; using the cached ones until they expire",
                  "source", p->plan != NULL ? p->plan->source : "", "error", err.message, LOG_END);
    bool dummy;
    if (!usable_now(p, now, &dummy))
        return false;
    *out = p->cached;
    return true;
}

enum { CANCEL_POLL_MS = 50 };

/* Waits for the refresher's broadcast, at most until the call's deadline
 * (and in short slices when the call can be cancelled). Lock held. */
static void wait_for_refresh(aws_credentials_provider *p, const aws_call_ctx *call)
{
    bool cancellable = call != NULL && call->cancelled != NULL;
    int64_t deadline = call != NULL ? call->deadline_ms : 0;
    if (!cancellable && deadline <= 0) {
        pthread_cond_wait(&p->refreshed, &p->lock);
        return;
    }
    int64_t wake = clock_monotonic_ms() + CANCEL_POLL_MS;
    if (!cancellable || (deadline > 0 && deadline < wake))
        wake = deadline;
    struct timespec until = clock_monotonic_timespec(wake);
    pthread_cond_timedwait(&p->refreshed, &p->lock, &until);
}

static void set_call_over(const aws_call_ctx *call, aws_error *err)
{
    if (call->cancelled != NULL && atomic_load(call->cancelled))
        aws_error_set(err, AWS_ERR_CANCELLED,
                      "the call was cancelled while waiting for AWS credentials");
    else
        aws_error_set(err, AWS_ERR_TIMEOUT,
                      "the call's deadline passed while waiting for AWS credentials to be "
                      "refreshed");
}

int aws_credentials_get(aws_credentials_provider *p, const aws_call_ctx *call, aws_credentials *out,
                        aws_error *err)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&p->lock);
    unsigned long seen = p->attempts;
    for (;;) {
        bool needs_refresh = false;
        if (usable_now(p, now_s(p), &needs_refresh) && !needs_refresh) {
            *out = p->cached;
            pthread_mutex_unlock(&p->lock);
            return 0;
        }
        if (p->attempts != seen && p->last_rc != 0 && !p->last_gave_up)
            break; /* the refresh we waited for failed: report its error */
        if (call_over(call)) {
            aws_error_clear(err);
            set_call_over(call, err);
            pthread_mutex_unlock(&p->lock);
            return -1;
        }
        if (!p->refreshing) {
            if (refresh_as_leader(p, call, out)) {
                pthread_mutex_unlock(&p->lock);
                return 0;
            }
            break;
        }
        wait_for_refresh(p, call);
    }
    if (err != NULL)
        *err = p->last_err;
    pthread_mutex_unlock(&p->lock);
    return -1;
}

int aws_credentials_peek(aws_credentials_provider *p, aws_credentials *out, bool *refresh_due)
{
    *refresh_due = false;
    pthread_mutex_lock(&p->lock);
    bool needs_refresh = false;
    int rc = -1;
    if (usable_now(p, now_s(p), &needs_refresh)) {
        *out = p->cached;
        *refresh_due = needs_refresh && !p->refresh_requested;
        if (*refresh_due)
            p->refresh_requested = true;
        rc = 0;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void aws_credentials_refresh_due(aws_credentials_provider *p, const aws_call_ctx *call)
{
    pthread_mutex_lock(&p->lock);
    p->refresh_requested = false;
    pthread_mutex_unlock(&p->lock);
    aws_credentials fresh;
    aws_error err;
    aws_error_clear(&err);
    aws_credentials_get(p, call, &fresh, &err); /* a failure is logged by the refresh */
    aws_credentials_clear(&fresh);
}
