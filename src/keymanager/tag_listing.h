/* The keys of a trust domain that carry the spire-* tags of tag-based key
 * discovery, found with the tagging API's GetResources: ResourceTypeFilters
 * kms:key, TagFilters spire-server-td = TD, spire-active = ACTIVE and, when
 * given, spire-server-id = ID; every page, bounded like every listing
 * (listing.h: a repeated token or more than LISTING_MAX_PAGES pages is an
 * error, never a complete listing). AWS matches tag filters exactly; each
 * answer is checked again, so a key whose tags are not exactly the query's
 * (example.org2 for example.org) is never returned. An expired pagination
 * token (15 minutes) restarts the listing once. */
#ifndef KM_TAG_LISTING_H
#define KM_TAG_LISTING_H

#include <stddef.h>

#include "aws/kms.h"

typedef struct {
    char *arn;
    aws_tag_set tags;
} tagged_key;

typedef struct {
    tagged_key *items;
    size_t count;
} tagged_keys;

typedef struct {
    const char *trust_domain;
    const char *server_id; /* NULL: every server's */
    const char *active;    /* "true" or "false" */
} tag_query;

/* Returns 0 with every matching key in out (tagged_keys_clear), or -1 with
 * err (AWS_ERR_ACCESS_DENIED: tag:GetResources is missing). *calls (may be
 * NULL) receives the GetResources requests made. */
int tag_listing_find(kms_client *kms, const aws_call_ctx *ctx, const tag_query *query,
                     tagged_keys *out, unsigned *calls, aws_error *err);
void tagged_keys_clear(tagged_keys *keys);

/* What to tell the operator when GetResources is denied (as SPIRE's built-in
 * plugin says it): the permission and where it must be granted. */
void tag_listing_denied_text(const aws_error *err, char *out, size_t size);

#endif
