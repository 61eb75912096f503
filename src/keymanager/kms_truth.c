/* Reads of what KMS shows about aliases (see kms_truth.h). */
#include "keymanager/kms_truth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keymanager/fleet_internal.h"
#include "keymanager/listing.h"
#include "keymanager/tag_mode.h"

enum {
    ALIASES_PAGE_LIMIT = 100, /* ListAliases maximum */
    TAGS_PAGE_LIMIT = 50,     /* ListResourceTags maximum (and AWS's 50 tags per key) */
};

static int append_aliases(kms_alias **aliases, size_t *count, const kms_alias_page *page,
                          aws_error *err)
{
    if (page->count == 0)
        return 0;
    kms_alias *grown = realloc(*aliases, (*count + page->count) * sizeof *grown);
    if (grown == NULL) {
        aws_error_set(err, AWS_ERR_INTERNAL, "out of memory listing aliases");
        return -1;
    }
    memcpy(grown + *count, page->aliases, page->count * sizeof *grown);
    *aliases = grown;
    *count += page->count;
    return 0;
}

/* A listing of one key's aliases or tags, and where its pages go. */
typedef struct {
    kms_client *kms;
    const aws_call_ctx *ctx;
    const char *key_id;
    unsigned *calls;
    kms_alias **aliases;
    size_t *count;
    aws_tag_set *tags;
} key_listing;

static int alias_page(void *user, const char *marker, listing_page_end *end, aws_error *err)
{
    key_listing *listing = user;
    kms_alias_page page;
    memset(&page, 0, sizeof page);
    int rc = kms_list_aliases(listing->kms, listing->ctx, listing->key_id, marker,
                              ALIASES_PAGE_LIMIT, &page, err);
    if (listing->calls != NULL)
        (*listing->calls)++;
    if (rc == 0)
        rc = append_aliases(listing->aliases, listing->count, &page, err);
    listing_page_end_set(end, page.truncated, page.next_marker);
    kms_alias_page_clear(&page);
    return rc;
}

int kms_truth_aliases_of_key(kms_client *kms, const aws_call_ctx *ctx, const char *key_id,
                             kms_alias **aliases, size_t *count, unsigned *calls, aws_error *err)
{
    *aliases = NULL;
    *count = 0;
    if (calls != NULL)
        *calls = 0;
    key_listing listing = {.kms = kms,
                           .ctx = ctx,
                           .key_id = key_id,
                           .calls = calls,
                           .aliases = aliases,
                           .count = count};
    int rc = listing_walk("ListAliases", alias_page, &listing, err) == LISTING_DONE ? 0 : -1;
    if (rc != 0) {
        free(*aliases);
        *aliases = NULL;
        *count = 0;
    }
    return rc;
}

alias_verdict kms_truth_alias_targets(kms_client *kms, const aws_call_ctx *ctx,
                                      const char *alias_name, const char *key_id,
                                      char other_key[64], aws_error *err)
{
    kms_key_metadata target;
    memset(&target, 0, sizeof target);
    aws_error_clear(err);
    if (other_key != NULL)
        other_key[0] = '\0';
    if (kms_describe_key(kms, ctx, alias_name, &target, err) != 0)
        return err->status == AWS_ERR_NOT_FOUND ? ALIAS_TARGETS_OTHER : ALIAS_UNREADABLE;
    if (fleet_key_ref_matches(key_id, target.key_id, target.arn))
        return ALIAS_TARGETS_KEY;
    if (other_key != NULL)
        snprintf(other_key, 64, "%s", target.key_id);
    return ALIAS_TARGETS_OTHER;
}

/* Moves page's tags to the end of tags. */
static int append_tags(aws_tag_set *tags, kms_tag_page *page, aws_error *err)
{
    if (page->tags.count == 0)
        return 0;
    aws_tag *grown = realloc(tags->items, (tags->count + page->tags.count) * sizeof *grown);
    if (grown == NULL) {
        aws_error_set(err, AWS_ERR_INTERNAL, "out of memory listing tags");
        return -1;
    }
    memcpy(grown + tags->count, page->tags.items, page->tags.count * sizeof *grown);
    tags->items = grown;
    tags->count += page->tags.count;
    free(page->tags.items); /* the strings moved */
    page->tags = (aws_tag_set){0};
    return 0;
}

static int tag_page(void *user, const char *marker, listing_page_end *end, aws_error *err)
{
    key_listing *listing = user;
    kms_tag_page page;
    memset(&page, 0, sizeof page);
    int rc = kms_list_resource_tags(listing->kms, listing->ctx, listing->key_id, marker,
                                    TAGS_PAGE_LIMIT, &page, err);
    if (listing->calls != NULL)
        (*listing->calls)++;
    if (rc == 0)
        rc = append_tags(listing->tags, &page, err);
    listing_page_end_set(end, page.truncated, page.next_marker);
    kms_tag_page_clear(&page);
    return rc;
}

int kms_truth_key_tags(kms_client *kms, const aws_call_ctx *ctx, const char *key_id,
                       aws_tag_set *tags, unsigned *calls, aws_error *err)
{
    memset(tags, 0, sizeof *tags);
    key_listing listing = {.kms = kms, .ctx = ctx, .key_id = key_id, .calls = calls, .tags = tags};
    int rc = listing_walk("ListResourceTags", tag_page, &listing, err) == LISTING_DONE ? 0 : -1;
    if (rc != 0)
        aws_tag_set_clear(tags);
    return rc;
}

/* An undated active key of another server: judged by its creation date. */
static tag_liveness undated_liveness(kms_client *kms, const aws_call_ctx *ctx, const char *key_id,
                                     const tag_judge *judge, unsigned *calls, aws_error *err)
{
    kms_key_metadata key;
    memset(&key, 0, sizeof key);
    aws_error_clear(err);
    int rc = kms_describe_key(kms, ctx, key_id, &key, err);
    if (calls != NULL)
        (*calls)++;
    if (rc != 0)
        return TAG_LIVENESS_UNREADABLE;
    return tag_mode_undated_is_stale(key.creation_date, judge->now_s, judge->stale_age_ms)
               ? TAG_LIVENESS_RETIRE
               : TAG_LIVENESS_LIVE;
}

tag_liveness kms_truth_tag_liveness(kms_client *kms, const aws_call_ctx *ctx, const char *key_id,
                                    const tag_judge *judge, unsigned *calls, aws_error *err)
{
    unsigned made = 0;
    aws_tag_set tags;
    tag_liveness verdict = TAG_LIVENESS_UNREADABLE;
    if (kms_truth_key_tags(kms, ctx, key_id, &tags, &made, err) == 0) {
        switch (tag_mode_judge(&tags, judge->trust_domain, judge->server_id, judge->now_s,
                               judge->stale_age_ms)) {
        case TAGS_SAY_NOTHING:
            verdict = TAG_LIVENESS_NONE;
            break;
        case TAGS_SAY_OURS:
        case TAGS_SAY_STALE:
            verdict = TAG_LIVENESS_RETIRE;
            break;
        case TAGS_SAY_LIVE:
            verdict = TAG_LIVENESS_LIVE;
            break;
        case TAGS_SAY_MALFORMED:
            verdict = TAG_LIVENESS_MALFORMED;
            break;
        case TAGS_SAY_UNDATED: {
            unsigned described = 0;
            verdict = undated_liveness(kms, ctx, key_id, judge, &described, err);
            made += described;
            break;
        }
        }
        aws_tag_set_clear(&tags);
    }
    if (calls != NULL)
        *calls = made;
    return verdict;
}

bool kms_truth_outcome_unknown(const aws_error *err)
{
    switch (err->status) {
    case AWS_ERR_TRANSPORT:
    case AWS_ERR_TIMEOUT:
    case AWS_ERR_CANCELLED:
    case AWS_ERR_SERVER:
    case AWS_ERR_BAD_RESPONSE:
    case AWS_ERR_INTERNAL:
        return true;
    default:
        return err->attempts > 1;
    }
}
