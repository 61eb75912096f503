/* Tag-based key discovery (enable_tag_based_key_discovery, SPIRE 1.15's
 * option): the spire-* tags a key carries, with the same names and values as
 * SPIRE's built-in plugin, and the pure decisions on them. A key's tags say
 * it is live when spire-active is "true" and spire-last-update (Unix seconds)
 * is younger than stale_alias_age; a key without spire-last-update is judged
 * by its creation date; a value that does not parse is never judged. The
 * trust domain and server id are compared exactly (example.org is never
 * example.org2 nor example.org.uk). What may be deleted: deletion_queue.h. */
#ifndef KM_TAG_MODE_H
#define KM_TAG_MODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/kms.h"
#include "config/config.h"

#define TAG_SERVER_TD   "spire-server-td"   /* the trust domain as written */
#define TAG_SERVER_ID   "spire-server-id"   /* the server id */
#define TAG_ACTIVE      "spire-active"      /* "true" while a server uses the key */
#define TAG_KEY_ID      "spire-key-id"      /* SPIRE's key id, as SPIRE gives it */
#define TAG_LAST_UPDATE "spire-last-update" /* Unix seconds, decimal */

enum {
    TAG_MODE_SPIRE_TAGS = CONFIG_TAG_MODE_SPIRE_TAGS,
    TAG_MODE_TIME_SIZE = 24, /* "-9223372036854775808" and a NUL */
};

/* now_s as upstream writes it: whole Unix seconds in decimal. */
void tag_mode_format_time(double now_s, char out[TAG_MODE_TIME_SIZE]);

/* Parses a spire-last-update value as Go's strconv.ParseInt(text, 10, 64)
 * does (an optional sign, then decimal digits, within 64 bits). */
bool tag_mode_parse_time(const char *text, int64_t *out);

/* The tags of a key in tag mode, in upstream's order: spire-server-td,
 * spire-server-id, spire-active = active, the operator's tags, spire-key-id,
 * spire-last-update = now_text. out has room for TAG_MODE_SPIRE_TAGS +
 * operator_count tags; returns how many were written. The strings are
 * borrowed. */
size_t tag_mode_key_tags(const char *trust_domain, const char *server_id, const char *spire_id,
                         const char *active, const char *now_text, const kms_tag *operator_tags,
                         size_t operator_count, kms_tag *out);

/* What a key's tags say about it, for this server. */
typedef enum {
    TAGS_SAY_NOTHING,   /* not spire-active = "true": its tags show no live server */
    TAGS_SAY_OURS,      /* active, our trust domain and server id */
    TAGS_SAY_LIVE,      /* active, another server's, refreshed within stale_alias_age */
    TAGS_SAY_STALE,     /* active, another server's, not refreshed for stale_alias_age */
    TAGS_SAY_UNDATED,   /* active, another server's, no spire-last-update: see its creation date */
    TAGS_SAY_MALFORMED, /* active, another server's, spire-last-update unreadable: never judged */
} tags_verdict;

tags_verdict tag_mode_judge(const aws_tag_set *tags, const char *trust_domain,
                            const char *server_id, double now_s, int64_t stale_age_ms);

/* An undated active key (TAGS_SAY_UNDATED) is stale once it was created
 * stale_age_ms or longer ago. */
bool tag_mode_undated_is_stale(double creation_date_s, double now_s, int64_t stale_age_ms);

/* Whether spire-active is "true". */
bool tag_mode_is_active(const aws_tag_set *tags);

/* Whether the key carries any spire-* tag of the discovery (spire-last-update
 * or spire-active): an alias-mode server refreshes spire-last-update on such
 * keys of its own so that tag-mode peers see them live. */
bool tag_mode_carries_spire_tags(const aws_tag_set *tags);

#endif
