/* What KMS itself shows about aliases and a key's tags, read right before a
 * decision that deletes something or gives a key up (the rule at the top of
 * deletion_queue.h): never a cache or an earlier listing. Listings are
 * bounded (listing.h). */
#ifndef KM_KMS_TRUTH_H
#define KM_KMS_TRUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "aws/kms.h"

/* Every alias that targets key_id (a key id or ARN): ListAliases with KeyId,
 * all pages. Returns 0 with a malloc'd array (free()) of *count aliases, or
 * -1 with err set (AWS_ERR_NOT_FOUND: KMS does not know the key). *calls
 * (may be NULL) receives the number of KMS calls made. */
int kms_truth_aliases_of_key(kms_client *kms, const aws_call_ctx *ctx, const char *key_id,
                             kms_alias **aliases, size_t *count, unsigned *calls, aws_error *err);

typedef enum {
    ALIAS_TARGETS_KEY,   /* KMS shows the alias targets the key */
    ALIAS_TARGETS_OTHER, /* KMS shows the alias targets another key, or does not exist */
    ALIAS_UNREADABLE,    /* KMS could not be read: err says why */
} alias_verdict;

/* Where alias_name points (DescribeKey on the alias), compared with the key
 * whose id is key_id; other_key (may be NULL, 64 bytes) receives the key id
 * the alias targets when it targets another. */
alias_verdict kms_truth_alias_targets(kms_client *kms, const aws_call_ctx *ctx,
                                      const char *alias_name, const char *key_id,
                                      char other_key[64], aws_error *err);

/* Every tag of key_id (a key id or ARN): ListResourceTags, all pages; it works
 * in every key state. Returns 0 with tags filled (aws_tag_set_clear), or -1
 * with err. *calls (may be NULL) receives the number of KMS calls made. */
int kms_truth_key_tags(kms_client *kms, const aws_call_ctx *ctx, const char *key_id,
                       aws_tag_set *tags, unsigned *calls, aws_error *err);

/* Whose tags may keep a key alive, and since when they count as stale. */
typedef struct {
    const char *trust_domain;
    const char *server_id;
    double now_s;         /* wall clock, epoch seconds */
    int64_t stale_age_ms; /* stale_alias_age */
} tag_judge;

typedef enum {
    TAG_LIVENESS_NONE,       /* not spire-active = "true": its tags keep nobody alive */
    TAG_LIVENESS_RETIRE,     /* spire-active = "true", but ours (this server does not use
                                it) or not refreshed for stale_alias_age (or, undated,
                                created that long ago): mark it inactive before deleting */
    TAG_LIVENESS_LIVE,       /* another server refreshed it within stale_alias_age (or,
                                undated, created it within) */
    TAG_LIVENESS_MALFORMED,  /* spire-last-update unreadable: never judged, kept */
    TAG_LIVENESS_UNREADABLE, /* err says why; AWS_ERR_NOT_FOUND: the key is gone */
} tag_liveness;

/* What key_id's tags (ListResourceTags, and DescribeKey for the creation date
 * of an undated active key) say about whether a live server uses it. */
tag_liveness kms_truth_tag_liveness(kms_client *kms, const aws_call_ctx *ctx, const char *key_id,
                                    const tag_judge *judge, unsigned *calls, aws_error *err);

/* True when a failed write may still have been applied: no answer, a
 * timeout, a cancellation, a 5xx, an answer we could not read, or a failure
 * after more than one attempt (an earlier attempt's answer may have been lost). */
bool kms_truth_outcome_unknown(const aws_error *err);

#endif
