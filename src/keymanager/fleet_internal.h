/* Private pieces of the fleet tasks (fleet.c schedules them): the pure
 * decisions (fleet_policy.c), the alias/key listings and the three task runs
 * (fleet_tasks.c). Split out so unit tests can drive each run against a fake
 * KMS and check each decision with fixed clocks. */
#ifndef KM_FLEET_INTERNAL_H
#define KM_FLEET_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keymanager/fleet.h"

/* ---- pure decisions (fleet_policy.c) ------------------------------------- */

/* True when age_ms or more has passed between date_s and now_s (epoch
 * seconds). A missing (0) or future date is never old. */
bool fleet_is_older_than(double date_s, double now_s, int64_t age_ms);

/* An alias another server of our trust domain stopped refreshing: the alias
 * parses as ours by trust domain (whole component), its server id is not
 * ours, it has a target, and LastUpdatedDate is stale_alias_age or older. */
bool fleet_alias_is_stale(const char *alias_name, const char *target_key_id, double last_updated_s,
                          const char *trust_domain, const char *server_id, double now_s,
                          int64_t stale_alias_age_ms);

/* A key to prune: no alias targets it, enabled, customer managed, described
 * as a key of our trust domain, created orphan_key_age or longer ago. */
bool fleet_key_is_orphan(const kms_key_metadata *key, bool aliased, const char *trust_domain,
                         double now_s, int64_t orphan_key_age_ms);

/* True when a key reference (a key id or a key ARN, as our cache holds it)
 * names the key with this id/ARN. */
bool fleet_key_ref_matches(const char *ref, const char *key_id, const char *key_arn);

/* ---- one run of a task (fleet_tasks.c) ----------------------------------- */

typedef struct {
    const char *task;
    unsigned calls;           /* KMS calls made */
    unsigned aliases_scanned; /* aliases looked at */
    unsigned keys_scanned;    /* keys looked at */
    unsigned refreshed;       /* aliases bumped */
    unsigned tagged;          /* keys whose spire-last-update was refreshed */
    unsigned disposed;        /* aliases deleted or keys queued for deletion */
    unsigned failures;        /* KMS calls that failed */
} fleet_run_stats;

/* Knowledge about keys kept from one dispose-keys run to the next so that
 * keys whose answer cannot change are not described again: keys that are
 * AWS managed or of another trust domain, and young keys of ours (by
 * CreationDate, which never changes). */
typedef struct fleet_key_memo fleet_key_memo;

fleet_key_memo *fleet_key_memo_new(void);
void fleet_key_memo_free(fleet_key_memo *memo);

/* What the tasks learn about the account across runs. */
typedef struct {
    bool list_tags_denied; /* kms:ListResourceTags answered AccessDenied (logged once) */
} fleet_learnt;

/* KMS's time (epoch seconds), to judge the dates KMS gives (alias
 * LastUpdatedDate, key CreationDate) by: the skew-corrected clock of
 * aws/clock.h, the host clock plus the offset learned from the Date of AWS's
 * answers, so a host clock days off neither ages live peers' aliases nor
 * keeps dead ones young. Once an answer came (Configure's start-up listing
 * precedes every run) it is within AWS_CLOCK_SKEW_THRESHOLD_S (4 minutes) of
 * KMS's clock, far below the ages it judges (>= 24 h). Read at the start
 * of a run, before its listings: an offset learned during a run applies from
 * the next run. */
double fleet_kms_now_s(void);

typedef struct {
    const fleet_options *options;
    const aws_call_ctx *call; /* carries the stop flag */
    double now_s;             /* fleet_kms_now_s() at the start of the run */
    fleet_learnt *learnt;     /* may be NULL */
} fleet_run_env;

void fleet_run_refresh_aliases(const fleet_run_env *env, fleet_run_stats *stats);
void fleet_run_dispose_aliases(const fleet_run_env *env, fleet_run_stats *stats);
/* memo may be NULL (every unaliased key is described). */
void fleet_run_dispose_keys(const fleet_run_env *env, fleet_key_memo *memo, fleet_run_stats *stats);
/* Tag mode's dispose keys (fleet_tag_sweep.c). */
void fleet_run_dispose_keys_via_tags(const fleet_run_env *env, fleet_run_stats *stats);

/* ---- shared by the runs (fleet_tasks.c) ---------------------------------- */

bool fleet_stopping(const fleet_run_env *env);
/* Counts calls KMS calls just made for one step; logs the step when it
 * failed. Returns rc. */
int fleet_counted_calls(fleet_run_stats *stats, unsigned calls, int rc, const char *operation,
                        const char *subject, const aws_error *err);
/* ListResourceTags was denied: remembered, and logged the first time. */
void fleet_note_list_tags_denied(const fleet_run_env *env, const char *task);

/* Logs a run's figures at debug level. */
void fleet_log_run(const fleet_run_stats *stats);

/* Delay before a task's first run. Refresh runs at most 10 minutes after
 * start, not a full period: a server restarted more often than every 6 h
 * would otherwise never refresh its aliases, and other servers would prune
 * its live keys after 14 days. The other tasks wait one period. */
#define FLEET_FIRST_REFRESH_MAX_DELAY_MS (10LL * 60 * 1000)
int64_t fleet_first_delay_ms(bool is_refresh, int64_t interval_ms);

#endif
