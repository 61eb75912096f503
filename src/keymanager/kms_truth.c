/* Reads of what KMS shows about aliases (see kms_truth.h). */
#include "keymanager/kms_truth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keymanager/fleet_internal.h"
#include "keymanager/listing.h"

enum { ALIASES_PAGE_LIMIT = 100 }; /* ListAliases maximum */

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

int kms_truth_aliases_of_key(kms_client *kms, const aws_call_ctx *ctx, const char *key_id,
                             kms_alias **aliases, size_t *count, unsigned *calls, aws_error *err)
{
    *aliases = NULL;
    *count = 0;
    if (calls != NULL)
        *calls = 0;
    listing_cursor cursor;
    listing_start(&cursor, "ListAliases");
    int rc = 0;
    listing_step step = LISTING_MORE;
    while (rc == 0 && step == LISTING_MORE) {
        kms_alias_page page;
        memset(&page, 0, sizeof page);
        aws_error_clear(err);
        rc = kms_list_aliases(kms, ctx, key_id, listing_marker(&cursor), ALIASES_PAGE_LIMIT, &page,
                              err);
        if (calls != NULL)
            (*calls)++;
        if (rc == 0)
            rc = append_aliases(aliases, count, &page, err);
        if (rc == 0) {
            step = listing_advance(&cursor, page.truncated, page.next_marker, err);
            rc = step == LISTING_BROKEN ? -1 : 0;
        }
        kms_alias_page_clear(&page);
    }
    listing_end(&cursor);
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
