/* Reading the account's keys and aliases for the estate: every ListKeys page
 * (1000 keys), every ListAliases page (100 aliases), every GetResources page
 * (100 keys tagged spire-server-td: the spire-* tags of tag-based key
 * discovery), and one DescribeKey for each key no alias targets (its
 * description and tags tell whether it is SPIRE's). Keys that have an alias
 * are judged by their aliases and tags without DescribeKey, except a key
 * tagged spire-active = "true" without spire-last-update, which its creation
 * date judges. An account with K keys, A aliases and T keys tagged
 * spire-server-td costs ceil(K/1000) + ceil(A/100) + ceil(T/100) pages (at
 * least one each) plus one DescribeKey per unaliased key and per aliased
 * undated active key. GetResources refused (tag:GetResources missing) or
 * failing leaves the tags unread, said in the estate; the rest goes on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/tagging.h"
#include "keymanager/estate.h"
#include "keymanager/fleet_internal.h"
#include "keymanager/listing.h"
#include "keymanager/naming.h"
#include "keymanager/tag_mode.h"

#define ALIAS_PAGE_LIMIT 100  /* ListAliases maximum */
#define KEY_PAGE_LIMIT   1000 /* ListKeys maximum */

static const char *const KMS_KEY_TYPE[] = {"kms:key"};

/* A key GetResources listed, by id. */
typedef struct {
    char *key_id;
    aws_tag_set tags;
} tagged_entry;

typedef struct {
    const estate_scan_options *options;
    estate_progress progress;
    estate_calls calls;
    kms_key_entry *keys;
    size_t key_count;
    estate_alias *aliases;
    size_t alias_count;
    size_t alias_capacity;
    tagged_entry *tagged; /* sorted by key id once listed */
    size_t tagged_count;
    bool tags_read;
    bool tags_denied;
    char tags_why[1024];
} scan_state;

static void report(scan_state *scan)
{
    if (scan->options->progress != NULL)
        scan->options->progress(scan->options->progress_ctx, &scan->progress);
}

static void tagged_free(scan_state *scan)
{
    for (size_t i = 0; i < scan->tagged_count; i++) {
        free(scan->tagged[i].key_id);
        aws_tag_set_clear(&scan->tagged[i].tags);
    }
    free(scan->tagged);
    scan->tagged = NULL;
    scan->tagged_count = 0;
}

static void scan_free(scan_state *scan)
{
    tagged_free(scan);
    free(scan->keys);
    for (size_t i = 0; i < scan->alias_count; i++) {
        free(scan->aliases[i].name);
        free(scan->aliases[i].target);
    }
    free(scan->aliases);
}

static void out_of_memory(aws_error *err) { aws_error_set(err, AWS_ERR_INTERNAL, "out of memory"); }

static int add_key_page(scan_state *scan, const kms_key_page *page, aws_error *err)
{
    if (page->count == 0)
        return 0;
    kms_key_entry *keys = realloc(scan->keys, (scan->key_count + page->count) * sizeof *keys);
    if (keys == NULL) {
        out_of_memory(err);
        return -1;
    }
    memcpy(keys + scan->key_count, page->keys, page->count * sizeof *keys);
    scan->keys = keys;
    scan->key_count += page->count;
    return 0;
}

static int key_page(void *user, const char *marker, listing_page_end *end, aws_error *err)
{
    scan_state *scan = user;
    kms_key_page page = {0};
    scan->calls.list_keys++;
    int rc =
        kms_list_keys(scan->options->kms, scan->options->call, marker, KEY_PAGE_LIMIT, &page, err);
    if (rc == 0)
        rc = add_key_page(scan, &page, err);
    if (rc == 0)
        listing_page_end_set(end, page.truncated, page.next_marker);
    kms_key_page_clear(&page);
    scan->progress.keys_listed = scan->key_count;
    report(scan);
    return rc;
}

static int list_keys(scan_state *scan, aws_error *err)
{
    return listing_walk("ListKeys", key_page, scan, err) == LISTING_DONE ? 0 : -1;
}

static int add_alias(scan_state *scan, const kms_alias *alias)
{
    if (scan->alias_count == scan->alias_capacity) {
        size_t capacity = scan->alias_capacity ? scan->alias_capacity * 2 : 256;
        estate_alias *items = realloc(scan->aliases, capacity * sizeof *items);
        if (items == NULL)
            return -1;
        scan->aliases = items;
        scan->alias_capacity = capacity;
    }
    estate_alias entry = {strdup(alias->alias_name), strdup(alias->target_key_id),
                          alias->last_updated_date};
    if (entry.name == NULL || entry.target == NULL) {
        free(entry.name);
        free(entry.target);
        return -1;
    }
    scan->aliases[scan->alias_count++] = entry;
    return 0;
}

static int add_alias_page(scan_state *scan, const kms_alias_page *page, aws_error *err)
{
    for (size_t i = 0; i < page->count; i++) {
        if (add_alias(scan, &page->aliases[i]) != 0) {
            out_of_memory(err);
            return -1;
        }
    }
    return 0;
}

static int alias_page(void *user, const char *marker, listing_page_end *end, aws_error *err)
{
    scan_state *scan = user;
    kms_alias_page page = {0};
    scan->calls.list_aliases++;
    int rc = kms_list_aliases(scan->options->kms, scan->options->call, NULL, marker,
                              ALIAS_PAGE_LIMIT, &page, err);
    if (rc == 0)
        rc = add_alias_page(scan, &page, err);
    if (rc == 0)
        listing_page_end_set(end, page.truncated, page.next_marker);
    kms_alias_page_clear(&page);
    scan->progress.aliases_listed = scan->alias_count;
    report(scan);
    return rc;
}

static int list_aliases(scan_state *scan, aws_error *err)
{
    return listing_walk("ListAliases", alias_page, scan, err) == LISTING_DONE ? 0 : -1;
}

/* ---- the keys tagged spire-server-td (GetResources) ------------------------------ */

/* "arn:aws:kms:REGION:ACCOUNT:key/ID" -> "ID"; NULL for another resource. */
static const char *key_id_of_arn(const char *arn)
{
    const char *marker = strstr(arn, ":key/");
    return marker != NULL && marker[5] != '\0' ? marker + 5 : NULL;
}

/* Moves the page's keys into scan->tagged. AWS matches the filter exactly;
 * an answer that does not (no spire-server-td, another trust domain) is left
 * out. */
static int take_tagged_page(scan_state *scan, tagging_resource_page *page, aws_error *err)
{
    if (page->count == 0)
        return 0;
    tagged_entry *grown = realloc(scan->tagged, (scan->tagged_count + page->count) * sizeof *grown);
    if (grown == NULL) {
        out_of_memory(err);
        return -1;
    }
    scan->tagged = grown;
    const char *trust_domain = scan->options->trust_domain;
    for (size_t i = 0; i < page->count; i++) {
        tagging_resource *resource = &page->resources[i];
        const char *td = aws_tag_set_get(&resource->tags, TAG_SERVER_TD);
        const char *key_id = key_id_of_arn(resource->arn);
        if (td == NULL || key_id == NULL || (trust_domain != NULL && strcmp(td, trust_domain) != 0))
            continue;
        char *id = strdup(key_id);
        if (id == NULL) {
            out_of_memory(err);
            return -1;
        }
        scan->tagged[scan->tagged_count].key_id = id;
        scan->tagged[scan->tagged_count].tags = resource->tags; /* moved */
        resource->tags = (aws_tag_set){0};
        scan->tagged_count++;
    }
    return 0;
}

/* Every page of GetResources: kms:key, spire-server-td = the trust domain (or
 * any value without one). */
static int tagged_page(void *user, const char *marker, listing_page_end *end, aws_error *err)
{
    scan_state *scan = user;
    const char *const td[] = {scan->options->trust_domain};
    const tagging_tag_filter filter = {TAG_SERVER_TD, td, td[0] != NULL ? 1 : 0};
    tagging_get_resources_input input = {.resource_types = KMS_KEY_TYPE,
                                         .resource_type_count = 1,
                                         .tag_filters = &filter,
                                         .tag_filter_count = 1,
                                         .pagination_token = marker,
                                         .resources_per_page = TAGGING_MAX_RESOURCES_PER_PAGE};
    tagging_resource_page page;
    memset(&page, 0, sizeof page);
    scan->calls.get_resources++;
    int rc = tagging_get_resources(scan->options->kms, scan->options->call, &input, &page, err);
    if (rc == 0)
        rc = take_tagged_page(scan, &page, err);
    if (rc == 0)
        listing_page_end_set(end, page.next_token[0] != '\0', page.next_token);
    tagging_resource_page_clear(&page);
    scan->progress.tagged_listed = scan->tagged_count;
    report(scan);
    return rc;
}

static int list_tagged_once(scan_state *scan, aws_error *err)
{
    return listing_walk("GetResources", tagged_page, scan, err) == LISTING_DONE ? 0 : -1;
}

static int compare_tagged(const void *a, const void *b)
{
    return strcmp(((const tagged_entry *)a)->key_id, ((const tagged_entry *)b)->key_id);
}

/* The tags, or why they could not be read: never fatal, the keys are then
 * judged by their aliases and descriptions (and a prune re-reads each key's
 * tags with ListResourceTags before it changes anything). An expired
 * pagination token (15 minutes) restarts the listing once. */
static void list_tagged(scan_state *scan)
{
    aws_error err = {0};
    int rc = list_tagged_once(scan, &err);
    if (rc != 0 && strcmp(err.code, "PaginationTokenExpiredException") == 0) {
        tagged_free(scan);
        rc = list_tagged_once(scan, &err);
    }
    if (rc == 0) {
        scan->tags_read = true;
        if (scan->tagged_count > 1) /* qsort's array may not be NULL, even empty */
            qsort(scan->tagged, scan->tagged_count, sizeof *scan->tagged, compare_tagged);
        return;
    }
    tagged_free(scan);
    scan->tags_denied = err.status == AWS_ERR_ACCESS_DENIED;
    snprintf(scan->tags_why, sizeof scan->tags_why, "%s: %.900s",
             err.code[0] ? err.code : aws_status_name(err.status), err.message);
}

static const aws_tag_set *tags_of(const scan_state *scan, const char *key_id)
{
    if (scan->tagged_count == 0) /* bsearch's array may not be NULL, even empty */
        return NULL;
    tagged_entry probe = {.key_id = (char *)key_id};
    const tagged_entry *found =
        bsearch(&probe, scan->tagged, scan->tagged_count, sizeof *scan->tagged, compare_tagged);
    return found != NULL ? &found->tags : NULL;
}

/* Tagged active without spire-last-update: its creation date judges it. */
static bool undated_active(const aws_tag_set *tags)
{
    return tags != NULL && tag_mode_is_active(tags) &&
           aws_tag_set_get(tags, TAG_LAST_UPDATE) == NULL;
}

/* ---- DescribeKey ------------------------------------------------------------------------ */

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A SPIRE alias (of the trust domain asked for, if any). */
static bool is_spire_alias(const scan_state *scan, const char *name)
{
    char *td = NULL, *server = NULL, *key = NULL;
    const char *trust_domain = scan->options->trust_domain;
    bool spire = trust_domain != NULL ? naming_parse_alias(name, trust_domain, &server, &key)
                                      : naming_split_alias(name, &td, &server, &key);
    free(td);
    free(server);
    free(key);
    return spire;
}

/* Sorted alias targets (pointers into scan->aliases): of every alias, or of
 * SPIRE aliases only. */
static const char **alias_targets(const scan_state *scan, bool spire_only, size_t *count)
{
    const char **targets = calloc(scan->alias_count + 1, sizeof *targets);
    if (targets == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < scan->alias_count; i++) {
        if (scan->aliases[i].target[0] != '\0' &&
            (!spire_only || is_spire_alias(scan, scan->aliases[i].name)))
            targets[n++] = scan->aliases[i].target;
    }
    qsort(targets, n, sizeof *targets, compare_strings);
    *count = n;
    return targets;
}

/* DescribeKey for one key; NULL when it failed (counted for an unaliased
 * key: it cannot be judged; an aliased key is judged by its aliases). */
static kms_key_metadata *describe(scan_state *scan, const kms_key_entry *key, bool aliased,
                                  estate *out)
{
    kms_key_metadata *metadata = calloc(1, sizeof *metadata);
    if (metadata == NULL)
        return NULL;
    aws_error err = {0};
    scan->calls.describe_key++;
    if (kms_describe_key(scan->options->kms, scan->options->call, key->key_id, metadata, &err) == 0)
        return metadata;
    free(metadata);
    if (!aliased && err.status != AWS_ERR_NOT_FOUND) { /* NotFound: deleted since the listing */
        if (out->undescribed++ == 0)
            snprintf(out->undescribed_why, sizeof out->undescribed_why,
                     "DescribeKey %s: %s: %.150s", key->key_id,
                     err.code[0] ? err.code : aws_status_name(err.status), err.message);
    }
    return NULL;
}

static bool listed_in(const char **targets, size_t count, const char *key_id)
{
    return count > 0 && bsearch(&key_id, targets, count, sizeof *targets, compare_strings) != NULL;
}

/* Which keys to describe: every unaliased key, each aliased undated active
 * key, and with describe_aliased the keys a SPIRE alias or tag marks. */
static int choose_keys(scan_state *scan, bool *aliased, bool *wanted)
{
    size_t all_count = 0, spire_count = 0;
    const char **all = alias_targets(scan, false, &all_count);
    const char **spire =
        scan->options->describe_aliased ? alias_targets(scan, true, &spire_count) : NULL;
    if (all == NULL || (scan->options->describe_aliased && spire == NULL)) {
        free(all);
        free(spire);
        return -1;
    }
    for (size_t i = 0; i < scan->key_count; i++) {
        const char *id = scan->keys[i].key_id;
        const aws_tag_set *tags = tags_of(scan, id);
        aliased[i] = listed_in(all, all_count, id);
        wanted[i] = !aliased[i] || undated_active(tags) ||
                    (spire != NULL && (tags != NULL || listed_in(spire, spire_count, id)));
        scan->progress.to_describe += wanted[i] ? 1 : 0;
    }
    free(all);
    free(spire);
    return 0;
}

static int describe_keys(scan_state *scan, kms_key_metadata **metadata, estate *out, aws_error *err)
{
    bool *aliased = calloc(scan->key_count + 1, sizeof *aliased);
    bool *wanted = calloc(scan->key_count + 1, sizeof *wanted);
    if (aliased == NULL || wanted == NULL || choose_keys(scan, aliased, wanted) != 0) {
        free(aliased);
        free(wanted);
        out_of_memory(err);
        return -1;
    }
    report(scan);
    for (size_t i = 0; i < scan->key_count; i++) {
        if (!wanted[i])
            continue;
        metadata[i] = describe(scan, &scan->keys[i], aliased[i], out);
        scan->progress.described++;
        report(scan);
    }
    free(aliased);
    free(wanted);
    return 0;
}

static int build(scan_state *scan, kms_key_metadata **metadata, estate *out)
{
    estate_listed_key *listed = calloc(scan->key_count + 1, sizeof *listed);
    if (listed == NULL)
        return -1;
    size_t tagged_keys = 0;
    for (size_t i = 0; i < scan->key_count; i++) {
        const aws_tag_set *tags = tags_of(scan, scan->keys[i].key_id);
        tagged_keys += tags != NULL ? 1 : 0;
        listed[i] = (estate_listed_key){scan->keys[i].key_id, scan->keys[i].arn, metadata[i], tags};
    }
    size_t undescribed = out->undescribed;
    char why[sizeof out->undescribed_why];
    snprintf(why, sizeof why, "%s", out->undescribed_why);
    const estate_scan_options *o = scan->options;
    /* After the listings: their answers taught the corrected clock KMS's time. */
    double now_s = o->now_s > 0 ? o->now_s : fleet_kms_now_s();
    int rc = estate_build(listed, scan->key_count, scan->aliases, scan->alias_count,
                          o->trust_domain, now_s, o->ages, out);
    out->undescribed = undescribed;
    snprintf(out->undescribed_why, sizeof out->undescribed_why, "%s", why);
    out->tags_read = scan->tags_read;
    out->tags_denied = scan->tags_denied;
    snprintf(out->tags_why, sizeof out->tags_why, "%s", scan->tags_why);
    out->tagged_keys = tagged_keys;
    free(listed);
    return rc;
}

int estate_scan(const estate_scan_options *options, estate *out, aws_error *err)
{
    memset(out, 0, sizeof *out);
    aws_error_clear(err);
    scan_state scan = {.options = options};
    kms_key_metadata **metadata = NULL;
    int rc = list_keys(&scan, err);
    if (rc == 0)
        rc = list_aliases(&scan, err);
    if (rc == 0)
        list_tagged(&scan);
    if (rc == 0 && (metadata = calloc(scan.key_count + 1, sizeof *metadata)) == NULL) {
        out_of_memory(err);
        rc = -1;
    }
    if (rc == 0)
        rc = describe_keys(&scan, metadata, out, err);
    if (rc == 0 && build(&scan, metadata, out) != 0) {
        out_of_memory(err);
        rc = -1;
    }
    out->calls = scan.calls;
    scan.progress.done = true;
    report(&scan);
    for (size_t i = 0; metadata != NULL && i < scan.key_count; i++)
        free(metadata[i]);
    free(metadata);
    scan_free(&scan);
    if (rc != 0) {
        estate_calls calls = out->calls;
        estate_clear(out);
        out->calls = calls;
    }
    return rc;
}
