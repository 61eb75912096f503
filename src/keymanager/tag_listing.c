/* GetResources over every page for tag-based key discovery (tag_listing.h). */
#include "keymanager/tag_listing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/tagging.h"
#include "keymanager/listing.h"
#include "keymanager/tag_mode.h"

static const char *const KMS_KEY_TYPE[] = {"kms:key"};

void tagged_keys_clear(tagged_keys *keys)
{
    for (size_t i = 0; keys->items != NULL && i < keys->count; i++) {
        free(keys->items[i].arn);
        aws_tag_set_clear(&keys->items[i].tags);
    }
    free(keys->items);
    keys->items = NULL;
    keys->count = 0;
}

static bool tag_is(const aws_tag_set *tags, const char *key, const char *value)
{
    const char *found = aws_tag_set_get(tags, key);
    return found != NULL && strcmp(found, value) == 0;
}

/* The filters matched exactly (AWS does; an answer that does not is left out). */
static bool matches(const tag_query *query, const aws_tag_set *tags)
{
    return tag_is(tags, TAG_SERVER_TD, query->trust_domain) &&
           tag_is(tags, TAG_ACTIVE, query->active) &&
           (query->server_id == NULL || tag_is(tags, TAG_SERVER_ID, query->server_id));
}

/* Moves the page's matching resources into out. */
static int take_page(const tag_query *query, tagging_resource_page *page, tagged_keys *out,
                     aws_error *err)
{
    if (page->count == 0)
        return 0;
    tagged_key *grown = realloc(out->items, (out->count + page->count) * sizeof *grown);
    if (grown == NULL) {
        aws_error_set(err, AWS_ERR_INTERNAL, "out of memory listing tagged keys");
        return -1;
    }
    out->items = grown;
    for (size_t i = 0; i < page->count; i++) {
        tagging_resource *resource = &page->resources[i];
        if (!matches(query, &resource->tags))
            continue;
        char *arn = strdup(resource->arn);
        if (arn == NULL) {
            aws_error_set(err, AWS_ERR_INTERNAL, "out of memory listing tagged keys");
            return -1;
        }
        out->items[out->count].arn = arn;
        out->items[out->count].tags = resource->tags; /* moved */
        resource->tags = (aws_tag_set){0};
        out->count++;
    }
    return 0;
}

static bool token_expired(const aws_error *err)
{
    return strcmp(err->code, "PaginationTokenExpiredException") == 0;
}

typedef struct {
    kms_client *kms;
    const aws_call_ctx *ctx;
    const tag_query *query;
    const tagging_tag_filter *filters;
    size_t filter_count;
    tagged_keys *out;
    unsigned *calls;
} resource_listing;

static int resource_page(void *user, const char *marker, listing_page_end *end, aws_error *err)
{
    resource_listing *listing = user;
    tagging_get_resources_input input = {.resource_types = KMS_KEY_TYPE,
                                         .resource_type_count = 1,
                                         .tag_filters = listing->filters,
                                         .tag_filter_count = listing->filter_count,
                                         .pagination_token = marker,
                                         .resources_per_page = TAGGING_MAX_RESOURCES_PER_PAGE};
    tagging_resource_page page;
    memset(&page, 0, sizeof page);
    int rc = tagging_get_resources(listing->kms, listing->ctx, &input, &page, err);
    if (listing->calls != NULL)
        (*listing->calls)++;
    if (rc == 0)
        rc = take_page(listing->query, &page, listing->out, err);
    listing_page_end_set(end, page.next_token[0] != '\0', page.next_token);
    tagging_resource_page_clear(&page);
    return rc;
}

static int list_once(kms_client *kms, const aws_call_ctx *ctx, const tag_query *query,
                     tagged_keys *out, unsigned *calls, aws_error *err)
{
    const char *const td[] = {query->trust_domain};
    const char *const id[] = {query->server_id};
    const char *const active[] = {query->active};
    tagging_tag_filter filters[3] = {{TAG_SERVER_TD, td, 1}, {TAG_ACTIVE, active, 1}};
    size_t filter_count = 2;
    if (query->server_id != NULL)
        filters[filter_count++] = (tagging_tag_filter){TAG_SERVER_ID, id, 1};
    resource_listing listing = {.kms = kms,
                                .ctx = ctx,
                                .query = query,
                                .filters = filters,
                                .filter_count = filter_count,
                                .out = out,
                                .calls = calls};
    return listing_walk("GetResources", resource_page, &listing, err) == LISTING_DONE ? 0 : -1;
}

int tag_listing_find(kms_client *kms, const aws_call_ctx *ctx, const tag_query *query,
                     tagged_keys *out, unsigned *calls, aws_error *err)
{
    memset(out, 0, sizeof *out);
    if (calls != NULL)
        *calls = 0;
    int rc = list_once(kms, ctx, query, out, calls, err);
    if (rc != 0 && token_expired(err)) {
        tagged_keys_clear(out);
        rc = list_once(kms, ctx, query, out, calls, err);
    }
    if (rc != 0)
        tagged_keys_clear(out);
    return rc;
}

void tag_listing_denied_text(const aws_error *err, char *out, size_t size)
{
    snprintf(out, size,
             "tag-based key discovery requires the \"tag:GetResources\" permission in an "
             "identity-based IAM policy (it cannot be granted through the KMS key policy); grant "
             "the permission or disable enable_tag_based_key_discovery: %s: %s",
             aws_error_name(err), err->message);
}
