/* The account's SPIRE keys seen as a whole (the "estate"): every KMS key that
 * SPIRE's aws_kms plugins made, found by alias, by description or by the
 * spire-* tags of tag-based key discovery, each with a verdict taken from the
 * fleet tasks' own decisions (fleet_policy.c, tag_mode.c), the plan that
 * pruning one trust domain carries out, and what the keys cost.
 *   estate.c        pure: verdicts, the prune plan, the cost summary
 *   estate_scan.c   reading KMS: ListKeys and ListAliases pages, GetResources
 *                   pages (the keys tagged spire-server-td), DescribeKey for
 *                   each key no alias targets
 *   estate_prune.c  carrying out a plan: every step re-reads KMS first, and an
 *                   unknown outcome is read back, never guessed
 * Used by the operator commands (`keys list`, `keys prune`). */
#ifndef KM_ESTATE_H
#define KM_ESTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/kms.h"
#include "config/config.h"

#define ESTATE_HOUR_MS 3600000LL
#define ESTATE_DAY_MS  (24 * ESTATE_HOUR_MS)
/* The plugin's defaults (stale_alias_age 336h, orphan_key_age 48h); the
 * bounds below which one server could prune live peers are the plugin's own
 * (CONFIG_MIN_STALE_ALIAS_AGE_MS, CONFIG_MIN_ORPHAN_KEY_AGE_MS in config.h). */
#define ESTATE_DEFAULT_STALE_ALIAS_AGE_MS (14 * ESTATE_DAY_MS)
#define ESTATE_DEFAULT_ORPHAN_KEY_AGE_MS  (48 * ESTATE_HOUR_MS)
/* KMS's price of a customer managed key (not pending deletion), per month. */
#define ESTATE_DEFAULT_PRICE_USD 1.0

typedef enum {
    ESTATE_LIVE,             /* an alias refreshed within the stale age targets it, or its
                                tags show a server keeping it alive (spire-active = "true",
                                spire-last-update within the stale age) */
    ESTATE_STALE_ALIAS,      /* only aliases older than the stale age, and no tags keeping
                                it alive: prunable */
    ESTATE_ORPHAN,           /* no alias, and: older than the orphan age (SPIRE's
                                description); or tagged active with a stale
                                spire-last-update (undated: created the stale age ago); or
                                tagged inactive and older than the orphan age: prunable */
    ESTATE_YOUNG_ORPHAN,     /* no alias, younger than the orphan age */
    ESTATE_PENDING_DELETION, /* already scheduled for deletion */
    ESTATE_DISABLED,         /* no alias, not enabled (Disabled or another state) */
    ESTATE_MALFORMED_TAGS,   /* SPIRE's tags in a form no fleet task judges (spire-last-update
                                not Unix seconds; or spire-active neither "true" nor "false"
                                with no SPIRE alias or description): kept for ever */
    ESTATE_VERDICT_COUNT,
} estate_verdict;

/* "live", "stale-alias", "orphan", "young-orphan", "pending-deletion", "disabled",
 * "malformed-tags". */
const char *estate_verdict_name(estate_verdict verdict);
bool estate_verdict_is_prunable(estate_verdict verdict);

typedef struct {
    int64_t stale_alias_age_ms;
    int64_t orphan_key_age_ms;
} estate_ages;

/* What a key's spire-* tags say, for an operator (no server of its own, so
 * every server's tags count): the deletion queue's tag check
 * (kms_truth_tag_liveness) on tags already read. */
typedef enum {
    ESTATE_TAGS_NONE,      /* neither spire-server-td nor spire-active (or not read) */
    ESTATE_TAGS_SILENT,    /* SPIRE's tags, but not spire-active = "true": they keep
                              nobody alive */
    ESTATE_TAGS_LIVE,      /* active, refreshed (undated: created) within the stale age */
    ESTATE_TAGS_STALE,     /* active, not refreshed (undated: created) for the stale age */
    ESTATE_TAGS_MALFORMED, /* active, spire-last-update not Unix seconds: never judged */
} estate_tags_say;

/* Pure: tag_mode_judge, and for an undated active key
 * tag_mode_undated_is_stale on created_s (0: unknown, never stale). tags may
 * be NULL. */
estate_tags_say estate_judge_tags(const aws_tag_set *tags, double created_s, double now_s,
                                  int64_t stale_alias_age_ms);

/* The verdict of a key no alias targets, from its description, state and
 * spire-* tags (NULL: none, or not read), the fleet's rules in one place:
 * tags that keep it alive (estate_judge_tags) make it live; the tag sweep's
 * rule (tagged active, stale) and its healing pass's (tagged spire-active =
 * "false", older than the orphan age) and the orphan sweep's
 * (fleet_key_is_orphan) make it an orphan. False when the key carries none of
 * SPIRE's marks (a customer managed key's SPIRE description, a spire-* tag). */
bool estate_judge_unaliased(const kms_key_metadata *metadata, const aws_tag_set *tags, double now_s,
                            const estate_ages *ages, estate_verdict *out);

/* Whether a key carries SPIRE's marks of trust_domain: its description
 * (naming_description_in_trust_domain) or its spire-server-td tag (exactly). */
bool estate_marked_for(const char *description, const aws_tag_set *tags, const char *trust_domain);

/* One alias of the account, as ListAliases gave it. */
typedef struct {
    char *name;
    char *target; /* key id; "" for an alias without a target */
    double last_updated;
} estate_alias;

/* One key of the account as the scan saw it. */
typedef struct {
    const char *key_id;
    const char *arn;
    const kms_key_metadata *metadata; /* NULL: not described (aliased, or DescribeKey failed) */
    const aws_tag_set *tags;          /* its tags when GetResources listed it, else NULL */
} estate_listed_key;

/* The spire-* tags of a key, as KMS holds them (NULL when absent). */
typedef struct {
    char *server_td;
    char *server_id;
    char *active;
    char *key_id;
    char *last_update;
} estate_spire_tags;

/* One SPIRE key and its verdict. */
typedef struct {
    char key_id[64];
    char arn[256];
    char *trust_domain; /* as written in the alias or description ('.' as '_'); for a key
                           known only by its tags, spire-server-td as written ('.' kept) */
    char *server_id;    /* from the alias, else spire-server-id; NULL when unknown */
    char *spire_key_id; /* from the alias, description or spire-key-id; NULL when unknown */
    char *alias;        /* the most recently updated SPIRE alias targeting it, or NULL */
    double alias_last_updated;
    char *description; /* NULL when not described */
    bool described;    /* key_spec, state and created are known (DescribeKey answered) */
    kms_key_spec key_spec;
    char state[32];
    double created;
    estate_spire_tags tags; /* all NULL when untagged or the tags were not read */
    estate_tags_say tags_say;
    estate_verdict verdict;
} estate_key;

typedef struct {
    unsigned list_keys;     /* ListKeys pages */
    unsigned list_aliases;  /* ListAliases pages */
    unsigned get_resources; /* GetResources pages */
    unsigned describe_key;  /* DescribeKey calls */
} estate_calls;

typedef struct {
    estate_key *keys; /* sorted by trust domain, server id, SPIRE key id, key id */
    size_t key_count;
    estate_alias *aliases; /* every alias of the account */
    size_t alias_count;
    size_t account_keys;       /* keys ListKeys listed */
    size_t undescribed;        /* keys no alias targets whose DescribeKey failed: not judged */
    char undescribed_why[512]; /* the first such failure */
    bool tags_read;            /* GetResources listed the tagged keys */
    bool tags_denied;          /* ... or was refused: tag:GetResources is missing */
    char tags_why[1024];       /* why the tags were not read */
    size_t tagged_keys;        /* keys of the account GetResources listed */
    estate_calls calls;
    double now_s; /* KMS's time the verdicts were taken at */
} estate;

void estate_clear(estate *account);

/* The verdicts, from what the scan saw: aliases (all of the account) and keys.
 * Keys of trust_domain only when it is not NULL. Pure. Returns 0, or -1 when
 * out of memory. The listed keys and aliases are copied. */
int estate_build(const estate_listed_key *keys, size_t key_count, const estate_alias *aliases,
                 size_t alias_count, const char *trust_domain, double now_s,
                 const estate_ages *ages, estate *out);

/* ---- cost ------------------------------------------------------------------ */

typedef struct {
    size_t keys;
    size_t prunable;
    size_t by_verdict[ESTATE_VERDICT_COUNT];
    double monthly_cost_usd;          /* price per key not pending deletion (by verdict or,
                                         when described, by state) */
    double prunable_monthly_cost_usd; /* price per prunable key */
} estate_summary;

void estate_summarize(const estate *account, double price_usd, estate_summary *out);

/* ---- the prune plan and its outcome ----------------------------------------- */

typedef enum {
    ESTATE_DELETE_ALIAS,
    ESTATE_SCHEDULE_KEY_DELETION,
} estate_action_kind;

typedef enum {
    ESTATE_PLANNED,      /* not carried out (dry run) */
    ESTATE_DONE,         /* KMS shows it done (after a lost answer too: read back) */
    ESTATE_ALREADY_DONE, /* KMS showed it done before we acted */
    ESTATE_SKIPPED,      /* a re-read showed it must not be done now; nothing changed */
    ESTATE_FAILED,       /* KMS refused, and shows nothing changed */
    ESTATE_UNKNOWN,      /* the answer was lost and KMS could not be read back */
} estate_result;

const char *estate_action_name(estate_action_kind kind); /* "delete-alias", ... */
const char *estate_result_name(estate_result result);    /* "planned", "done", ... */

typedef struct {
    estate_action_kind kind;
    char *alias;     /* DELETE_ALIAS: the alias; SCHEDULE: the stale alias it had, or NULL */
    char key_id[64]; /* the key (DELETE_ALIAS: its target) */
    char *reason;    /* why the plan has it */
    estate_result result;
    char *detail; /* what happened (NULL while planned) */
} estate_action;

typedef struct {
    estate_action *items;
    size_t count;
} estate_plan;

void estate_plan_clear(estate_plan *plan);

/* What the fleet tasks would do in trust_domain (alias mode's sweeps and tag
 * mode's tag sweep): delete each stale alias of another server unless its
 * key's tags keep the key alive (as the dispose-aliases task leaves it), then
 * schedule its key's deletion when no other alias targets it; schedule each
 * orphan key's deletion (by description or by tags). A key tagged
 * spire-active = "true" is tagged "false" before it is scheduled (the
 * deletion queue's order; the reason says so). Never a key of another trust
 * domain, one a live alias or live tags keep, or one without SPIRE's marks.
 * Pure. Returns 0, or -1 when out of memory. */
int estate_plan_prune(const estate *account, const char *trust_domain, const estate_ages *ages,
                      estate_plan *out);

/* ---- reading KMS (estate_scan.c) ----------------------------------------------- */

typedef struct {
    size_t keys_listed;
    size_t aliases_listed;
    size_t tagged_listed; /* resources GetResources gave so far */
    size_t to_describe;   /* keys no alias targets */
    size_t described;
    bool done;
} estate_progress;

typedef void (*estate_progress_fn)(void *ctx, const estate_progress *progress);

typedef struct {
    kms_client *kms;
    const aws_call_ctx *call;
    const char *trust_domain; /* NULL: every trust domain */
    const estate_ages *ages;
    double now_s;          /* KMS's time; 0: the skew-corrected clock once the listings are done */
    bool describe_aliased; /* also DescribeKey each key a SPIRE alias or spire-* tags mark */
    estate_progress_fn progress; /* may be NULL */
    void *progress_ctx;
} estate_scan_options;

/* Lists every key and alias (ListKeys pages of 1000, ListAliases pages of
 * 100), the keys tagged spire-server-td (GetResources pages of 100: with a
 * trust domain, spire-server-td = it; else any value), and describes each key
 * no alias targets, each aliased key tagged spire-active = "true" without
 * spire-last-update (its creation date judges it) and, with describe_aliased,
 * each aliased key a SPIRE alias or tag marks; then estate_build. A failed
 * ListKeys or ListAliases fails the scan (err); a failed GetResources does
 * not: the keys are judged by aliases and descriptions alone, and tags_why
 * says why (tags_denied when tag:GetResources was refused). A failed
 * DescribeKey of an unaliased key leaves that key out, counted in
 * undescribed. */
int estate_scan(const estate_scan_options *options, estate *out, aws_error *err);

/* ---- carrying out a plan (estate_prune.c) --------------------------------------- */

typedef struct {
    kms_client *kms;
    const aws_call_ctx *call;
    const char *trust_domain;
    const estate_ages *ages;
    int pending_window_days; /* 7..30 */
    double (*now_s)(void);   /* KMS's time; NULL: the skew-corrected clock (fleet_kms_now_s) */
    void (*progress)(void *ctx, size_t done, size_t total); /* may be NULL */
    void *progress_ctx;
} estate_prune_options;

/* Carries out each planned action in order, filling result and detail:
 *   delete-alias            re-lists the target's aliases; the alias must still
 *                           target it and still be stale; the key's tags must
 *                           not keep it alive (kms_truth_tag_liveness, as the
 *                           dispose-aliases task checks); then DeleteAlias
 *   schedule-key-deletion   re-lists the key's aliases (there must be none),
 *                           describes it and reads its tags: customer managed,
 *                           SPIRE's marks of this trust domain (description or
 *                           spire-server-td), no tags keeping it alive, and for
 *                           an orphan still one (estate_judge_unaliased); then,
 *                           as the deletion queue: tagged spire-active = "true",
 *                           it is tagged "false" first; ScheduleKeyDeletion
 * When a call fails, KMS is read back: the result is what KMS shows, or
 * unknown when it cannot be read. A step whose checks cannot be read is
 * skipped: nothing is changed on a guess. */
void estate_prune_run(const estate_prune_options *options, estate_plan *plan);

#endif
