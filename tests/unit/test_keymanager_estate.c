/* Unit tests of the estate's pure parts (estate.c) and the names they read
 * (naming_split_*): each verdict at its age boundaries, which keys count as
 * SPIRE's, the trust domain filter, the cost summary, and the prune plan
 * (what it deletes, in which order, and what it never touches); with the
 * spire-* tags of tag-based key discovery: what tags say, the verdicts they
 * give (the tag sweep, its healing pass, the deletion queue's tag check), the
 * names read from them, and the plan they change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "keymanager/estate.h"
#include "keymanager/naming.h"
#include "keymanager/tag_mode.h"

#define HOUR_S             3600.0
#define DAY_S              (24 * HOUR_S)
#define NOW_S              1800000000.0
#define DEAD               "aaaaaaaa-0000-4000-8000-000000000001"
#define LIVE               "bbbbbbbb-0000-4000-8000-000000000002"
#define TD                 "example.org"
#define ALIAS(server, key) "alias/SPIRE_SERVER/example_org/" server "/" key

static const estate_ages default_ages = {ESTATE_DEFAULT_STALE_ALIAS_AGE_MS,
                                         ESTATE_DEFAULT_ORPHAN_KEY_AGE_MS};

/* ---- an account, built up by each test --------------------------------------- */

typedef struct {
    kms_key_metadata metadata[32];
    estate_listed_key keys[32];
    char ids[32][64];
    size_t key_count;
    estate_alias aliases[32];
    size_t alias_count;
    aws_tag tag_items[32][5];
    aws_tag_set tags[32];
    char last_update[32][TAG_MODE_TIME_SIZE];
} account;

/* A key; metadata only when described (no alias targets it). Returns its id. */
static const char *add_key(account *a, const char *description, double created, bool described)
{
    size_t i = a->key_count++;
    char id[64];
    snprintf(id, sizeof id, "00000000-0000-4000-8000-%012zu", i + 1);
    memcpy(a->ids[i], id, sizeof id);
    kms_key_metadata *m = &a->metadata[i];
    memset(m, 0, sizeof *m);
    memcpy(m->key_id, id, sizeof id);
    snprintf(m->arn, sizeof m->arn, "arn:aws:kms:us-east-2:111122223333:key/%s", id);
    snprintf(m->key_state, sizeof m->key_state, "Enabled");
    snprintf(m->key_manager, sizeof m->key_manager, "CUSTOMER");
    snprintf(m->description, sizeof m->description, "%s", description);
    m->enabled = true;
    m->creation_date = created;
    m->key_spec = KMS_KEY_SPEC_ECC_NIST_P256;
    a->keys[i] = (estate_listed_key){a->ids[i], m->arn, described ? m : NULL};
    return a->ids[i];
}

/* Tags key_id as upstream's tag mode does. last_update: NULL for none. */
static void tag_key(account *a, const char *key_id, const char *td, const char *server,
                    const char *active, const char *last_update)
{
    size_t i = 0;
    while (strcmp(a->ids[i], key_id) != 0)
        i++;
    aws_tag *t = a->tag_items[i];
    size_t n = 0;
    t[n++] = (aws_tag){(char *)TAG_SERVER_TD, (char *)td};
    t[n++] = (aws_tag){(char *)TAG_SERVER_ID, (char *)server};
    if (active != NULL)
        t[n++] = (aws_tag){(char *)TAG_ACTIVE, (char *)active};
    t[n++] = (aws_tag){(char *)TAG_KEY_ID, (char *)"x509-CA-A"};
    if (last_update != NULL) {
        snprintf(a->last_update[i], sizeof a->last_update[i], "%s", last_update);
        t[n++] = (aws_tag){(char *)TAG_LAST_UPDATE, a->last_update[i]};
    }
    a->tags[i] = (aws_tag_set){t, n};
    a->keys[i].tags = &a->tags[i];
}

/* spire-last-update age_s ago, as upstream writes it. */
static const char *ago(char out[TAG_MODE_TIME_SIZE], double age_s)
{
    tag_mode_format_time(NOW_S - age_s, out);
    return out;
}

static void add_alias(account *a, const char *name, const char *target, double last_updated)
{
    a->aliases[a->alias_count++] = (estate_alias){(char *)name, (char *)target, last_updated};
}

static void build(account *a, const char *trust_domain, const estate_ages *ages, estate *out)
{
    assert_int_equal(estate_build(a->keys, a->key_count, a->aliases, a->alias_count, trust_domain,
                                  NOW_S, ages, out),
                     0);
}

static const estate_key *find(const estate *e, const char *key_id)
{
    for (size_t i = 0; i < e->key_count; i++) {
        if (strcmp(e->keys[i].key_id, key_id) == 0)
            return &e->keys[i];
    }
    return NULL;
}

static estate_verdict verdict_of(const estate *e, const char *key_id)
{
    const estate_key *key = find(e, key_id);
    assert_non_null(key);
    return key->verdict;
}

/* ---- naming across trust domains ----------------------------------------------- */

static void split_alias(void **state)
{
    (void)state;
    char *td, *server, *key;
    assert_true(naming_split_alias(ALIAS(DEAD, "x509-CA-A_2e1"), &td, &server, &key));
    assert_string_equal(td, "example_org");
    assert_string_equal(server, DEAD);
    assert_string_equal(key, "x509-CA-A.1");
    free(td), free(server), free(key);
    assert_true(naming_split_alias("alias/SPIRE_SERVER/td/s/a/b", &td, &server, &key));
    assert_string_equal(key, "a/b");
    free(td), free(server), free(key);
    const char *not_spire[] = {
        "alias/aws/kms",           "alias/SPIRE_SERVER/",          "alias/SPIRE_SERVER/td",
        "alias/SPIRE_SERVER/td/",  "alias/SPIRE_SERVER/td/server", "alias/SPIRE_SERVER/td/server/",
        "alias/SPIRE_SERVER//s/k", "alias/SPIRE_SERVERX/td/s/k"};
    for (size_t i = 0; i < sizeof not_spire / sizeof not_spire[0]; i++) {
        assert_false(naming_split_alias(not_spire[i], &td, &server, &key));
        assert_null(td);
    }
}

static void split_description(void **state)
{
    (void)state;
    char *td, *key;
    assert_true(naming_split_description("SPIRE_SERVER_KEY/example_org/x509-CA-A", &td, &key));
    assert_string_equal(td, "example_org");
    assert_string_equal(key, "x509-CA-A");
    free(td), free(key);
    assert_true(naming_split_description("SPIRE_SERVER/example.org", &td, &key));
    assert_string_equal(td, "example.org");
    assert_null(key);
    free(td);
    const char *not_spire[] = {"",
                               "my app",
                               "SPIRE_SERVER_KEY/",
                               "SPIRE_SERVER_KEY/td/",
                               "SPIRE_SERVER/",
                               "SPIRE_SERVER/td/extra",
                               "SPIRE_SERVER_KEYS/td/k"};
    for (size_t i = 0; i < sizeof not_spire / sizeof not_spire[0]; i++) {
        assert_false(naming_split_description(not_spire[i], &td, &key));
        assert_null(td);
        assert_null(key);
    }
}

/* ---- verdicts --------------------------------------------------------------------- */

static void aliased_keys_live_or_stale(void **state)
{
    (void)state;
    account a = {0};
    const char *fresh = add_key(&a, "", NOW_S - 40 * DAY_S, false);
    const char *edge_live = add_key(&a, "", NOW_S - 40 * DAY_S, false);
    const char *edge_stale = add_key(&a, "", NOW_S - 40 * DAY_S, false);
    const char *old = add_key(&a, "", NOW_S - 40 * DAY_S, false);
    add_alias(&a, ALIAS(LIVE, "x509-CA-A"), fresh, NOW_S - HOUR_S);
    add_alias(&a, ALIAS(LIVE, "x509-CA-B"), edge_live, NOW_S - 14 * DAY_S + 0.01);
    add_alias(&a, ALIAS(DEAD, "x509-CA-A"), edge_stale, NOW_S - 14 * DAY_S);
    add_alias(&a, ALIAS(DEAD, "JWT-Signer-A"), old, NOW_S - 300 * DAY_S);
    estate e;
    build(&a, NULL, &default_ages, &e);
    assert_int_equal(e.key_count, 4);
    assert_int_equal(verdict_of(&e, fresh), ESTATE_LIVE);
    assert_int_equal(verdict_of(&e, edge_live), ESTATE_LIVE);
    assert_int_equal(verdict_of(&e, edge_stale), ESTATE_STALE_ALIAS);
    assert_int_equal(verdict_of(&e, old), ESTATE_STALE_ALIAS);
    const estate_key *k = find(&e, old);
    assert_string_equal(k->trust_domain, "example_org");
    assert_string_equal(k->server_id, DEAD);
    assert_string_equal(k->spire_key_id, "JWT-Signer-A");
    assert_false(k->described); /* aliased keys are not described: the listing's budget */
    estate_clear(&e);

    /* a shorter (allowed) stale age judges the same alias stale */
    estate_ages week = {7 * ESTATE_DAY_MS, ESTATE_DEFAULT_ORPHAN_KEY_AGE_MS};
    a.aliases[0].last_updated = NOW_S - 8 * DAY_S;
    build(&a, NULL, &week, &e);
    assert_int_equal(verdict_of(&e, fresh), ESTATE_STALE_ALIAS);
    estate_clear(&e);
}

static void any_live_alias_keeps_a_key_live(void **state)
{
    (void)state;
    account a = {0};
    const char *shared = add_key(&a, "", NOW_S - 40 * DAY_S, false);
    const char *foreign = add_key(&a, "", NOW_S - 40 * DAY_S, false);
    add_alias(&a, ALIAS(DEAD, "x509-CA-A"), shared, NOW_S - 30 * DAY_S);
    add_alias(&a, ALIAS(LIVE, "x509-CA-A"), shared, NOW_S - HOUR_S);
    add_alias(&a, ALIAS(DEAD, "x509-CA-B"), foreign, NOW_S - 30 * DAY_S);
    add_alias(&a, "alias/my-app/signing", foreign, NOW_S - 300 * DAY_S);
    estate e;
    build(&a, NULL, &default_ages, &e);
    assert_int_equal(verdict_of(&e, shared), ESTATE_LIVE);
    assert_string_equal(find(&e, shared)->server_id, LIVE); /* the freshest alias is shown */
    assert_int_equal(verdict_of(&e, foreign), ESTATE_LIVE); /* someone else names it */
    estate_clear(&e);
}

static void unaliased_keys_by_description(void **state)
{
    (void)state;
    account a = {0};
    const char *orphan =
        add_key(&a, "SPIRE_SERVER_KEY/example_org/JWT-A", NOW_S - 48 * HOUR_S, true);
    const char *young =
        add_key(&a, "SPIRE_SERVER_KEY/example_org/JWT-B", NOW_S - 48 * HOUR_S + 1, true);
    const char *spec_form = add_key(&a, "SPIRE_SERVER/example.org", NOW_S - 5 * DAY_S, true);
    const char *pending = add_key(&a, "SPIRE_SERVER_KEY/example_org/x", NOW_S - 9 * DAY_S, true);
    const char *disabled = add_key(&a, "SPIRE_SERVER_KEY/example_org/y", NOW_S - 9 * DAY_S, true);
    const char *aws_managed =
        add_key(&a, "SPIRE_SERVER_KEY/example_org/z", NOW_S - 9 * DAY_S, true);
    const char *unrelated = add_key(&a, "my app", NOW_S - 9 * DAY_S, true);
    const char *undescribed =
        add_key(&a, "SPIRE_SERVER_KEY/example_org/w", NOW_S - 9 * DAY_S, false);
    const char *app_aliased =
        add_key(&a, "SPIRE_SERVER_KEY/example_org/v", NOW_S - 9 * DAY_S, false);
    add_alias(&a, "alias/my-app", app_aliased, NOW_S - 100 * DAY_S);
    snprintf(a.metadata[3].key_state, 32, "PendingDeletion");
    a.metadata[3].enabled = false;
    snprintf(a.metadata[4].key_state, 32, "Disabled");
    a.metadata[4].enabled = false;
    snprintf(a.metadata[5].key_manager, 16, "AWS");
    estate e;
    build(&a, NULL, &default_ages, &e);
    assert_int_equal(verdict_of(&e, orphan), ESTATE_ORPHAN);
    assert_int_equal(verdict_of(&e, young), ESTATE_YOUNG_ORPHAN);
    assert_int_equal(verdict_of(&e, spec_form), ESTATE_ORPHAN);
    assert_null(find(&e, spec_form)->spire_key_id);
    assert_int_equal(verdict_of(&e, pending), ESTATE_PENDING_DELETION);
    assert_int_equal(verdict_of(&e, disabled), ESTATE_DISABLED);
    assert_null(find(&e, aws_managed));
    assert_null(find(&e, unrelated));
    assert_null(find(&e, undescribed));
    assert_null(find(&e, app_aliased));
    assert_int_equal(e.key_count, 5);
    const estate_key *k = find(&e, orphan);
    assert_true(k->described);
    assert_string_equal(k->state, "Enabled");
    assert_int_equal(k->key_spec, KMS_KEY_SPEC_ECC_NIST_P256);
    assert_null(k->alias);
    estate_clear(&e);
}

static void trust_domain_filter_by_whole_component(void **state)
{
    (void)state;
    account a = {0};
    const char *ours = add_key(&a, "SPIRE_SERVER_KEY/example_org/a", NOW_S - 9 * DAY_S, true);
    const char *longer = add_key(&a, "SPIRE_SERVER_KEY/example_org2/a", NOW_S - 9 * DAY_S, true);
    const char *other = add_key(&a, "SPIRE_SERVER_KEY/other_org/a", NOW_S - 9 * DAY_S, true);
    const char *aliased = add_key(&a, "", NOW_S - 9 * DAY_S, false);
    const char *aliased_other = add_key(&a, "", NOW_S - 9 * DAY_S, false);
    add_alias(&a, ALIAS(LIVE, "k"), aliased, NOW_S - HOUR_S);
    add_alias(&a, "alias/SPIRE_SERVER/example_org2/" LIVE "/k", aliased_other, NOW_S - HOUR_S);
    estate e;
    build(&a, TD, &default_ages, &e);
    assert_int_equal(e.key_count, 2);
    assert_non_null(find(&e, ours));
    assert_non_null(find(&e, aliased));
    assert_null(find(&e, longer));
    assert_null(find(&e, other));
    assert_null(find(&e, aliased_other));
    assert_int_equal(e.account_keys, 5);
    estate_clear(&e);
}

/* ---- cost ----------------------------------------------------------------------------- */

static void summary_counts_and_costs(void **state)
{
    (void)state;
    account a = {0};
    add_key(&a, "SPIRE_SERVER_KEY/example_org/a", NOW_S - 9 * DAY_S, true); /* orphan */
    add_key(&a, "SPIRE_SERVER_KEY/example_org/b", NOW_S - HOUR_S, true);    /* young */
    add_key(&a, "SPIRE_SERVER_KEY/example_org/c", NOW_S - 9 * DAY_S, true); /* pending */
    const char *stale = add_key(&a, "", NOW_S - 90 * DAY_S, false);
    const char *live = add_key(&a, "", NOW_S - 90 * DAY_S, false);
    snprintf(a.metadata[2].key_state, 32, "PendingDeletion");
    a.metadata[2].enabled = false;
    add_alias(&a, ALIAS(DEAD, "x"), stale, NOW_S - 60 * DAY_S);
    add_alias(&a, ALIAS(LIVE, "x"), live, NOW_S - HOUR_S);
    estate e;
    build(&a, NULL, &default_ages, &e);
    estate_summary s;
    estate_summarize(&e, 1.0, &s);
    assert_int_equal(s.keys, 5);
    assert_int_equal(s.prunable, 2);
    assert_int_equal(s.by_verdict[ESTATE_ORPHAN], 1);
    assert_int_equal(s.by_verdict[ESTATE_YOUNG_ORPHAN], 1);
    assert_int_equal(s.by_verdict[ESTATE_PENDING_DELETION], 1);
    assert_int_equal(s.by_verdict[ESTATE_STALE_ALIAS], 1);
    assert_int_equal(s.by_verdict[ESTATE_LIVE], 1);
    assert_true(s.monthly_cost_usd == 4.0); /* a key pending deletion costs nothing */
    assert_true(s.prunable_monthly_cost_usd == 2.0);
    estate_summarize(&e, 0.5, &s);
    assert_true(s.monthly_cost_usd == 2.0);
    assert_true(s.prunable_monthly_cost_usd == 1.0);
    estate_clear(&e);

    /* described (--describe-aliased): a stale alias on a key already pending
     * deletion keeps its verdict, but the key costs nothing */
    a.keys[3].metadata = &a.metadata[3];
    snprintf(a.metadata[3].key_state, 32, "PendingDeletion");
    build(&a, NULL, &default_ages, &e);
    estate_summarize(&e, 1.0, &s);
    assert_int_equal(s.by_verdict[ESTATE_STALE_ALIAS], 1);
    assert_int_equal(s.prunable, 2);
    assert_true(s.monthly_cost_usd == 3.0);
    assert_true(s.prunable_monthly_cost_usd == 1.0);
    assert_true(find(&e, stale)->described);
    estate_clear(&e);
}

/* ---- the prune plan ------------------------------------------------------------------- */

static void expect_action(const estate_plan *plan, size_t i, estate_action_kind kind,
                          const char *alias, const char *key_id)
{
    assert_true(i < plan->count);
    const estate_action *action = &plan->items[i];
    assert_int_equal(action->kind, kind);
    if (alias != NULL)
        assert_string_equal(action->alias, alias);
    else
        assert_null(action->alias);
    assert_string_equal(action->key_id, key_id);
    assert_int_equal(action->result, ESTATE_PLANNED);
    assert_non_null(action->reason);
}

static void plan_of_a_trust_domain(void **state)
{
    (void)state;
    account a = {0};
    const char *dead_key = add_key(&a, "", NOW_S - 90 * DAY_S, false);
    const char *twice = add_key(&a, "", NOW_S - 90 * DAY_S, false);
    const char *shared = add_key(&a, "", NOW_S - 90 * DAY_S, false);
    const char *foreign = add_key(&a, "", NOW_S - 90 * DAY_S, false);
    const char *live_key = add_key(&a, "", NOW_S - 90 * DAY_S, false);
    const char *orphan = add_key(&a, "SPIRE_SERVER_KEY/example_org/o", NOW_S - 9 * DAY_S, true);
    add_key(&a, "SPIRE_SERVER_KEY/example_org/y", NOW_S - HOUR_S, true);     /* young */
    add_key(&a, "SPIRE_SERVER_KEY/example_org2/o", NOW_S - 9 * DAY_S, true); /* other TD */
    add_key(&a, "my app", NOW_S - 9 * DAY_S, true);                          /* unrelated */
    const char *other_td_key = add_key(&a, "", NOW_S - 90 * DAY_S, false);
    add_alias(&a, ALIAS(DEAD, "a"), dead_key, NOW_S - 30 * DAY_S);
    add_alias(&a, ALIAS(DEAD, "b1"), twice, NOW_S - 30 * DAY_S);
    add_alias(&a, ALIAS(DEAD, "b2"), twice, NOW_S - 30 * DAY_S);
    add_alias(&a, ALIAS(DEAD, "c"), shared, NOW_S - 30 * DAY_S);
    add_alias(&a, ALIAS(LIVE, "c"), shared, NOW_S - HOUR_S);
    add_alias(&a, ALIAS(DEAD, "d"), foreign, NOW_S - 30 * DAY_S);
    add_alias(&a, "alias/my-app", foreign, NOW_S - 300 * DAY_S);
    add_alias(&a, ALIAS(LIVE, "e"), live_key, NOW_S - HOUR_S);
    add_alias(&a, "alias/SPIRE_SERVER/example_org2/" DEAD "/a", other_td_key, NOW_S - 90 * DAY_S);
    estate e;
    build(&a, TD, &default_ages, &e);
    estate_plan plan;
    assert_int_equal(estate_plan_prune(&e, TD, &default_ages, &plan), 0);
    /* aliases in name order; a key follows its last stale alias; then orphans */
    assert_int_equal(plan.count, 8);
    expect_action(&plan, 0, ESTATE_DELETE_ALIAS, ALIAS(DEAD, "a"), dead_key);
    expect_action(&plan, 1, ESTATE_SCHEDULE_KEY_DELETION, ALIAS(DEAD, "a"), dead_key);
    expect_action(&plan, 2, ESTATE_DELETE_ALIAS, ALIAS(DEAD, "b1"), twice);
    expect_action(&plan, 3, ESTATE_DELETE_ALIAS, ALIAS(DEAD, "b2"), twice);
    expect_action(&plan, 4, ESTATE_SCHEDULE_KEY_DELETION, ALIAS(DEAD, "b2"), twice);
    expect_action(&plan, 5, ESTATE_DELETE_ALIAS, ALIAS(DEAD, "c"), shared);  /* key stays: live */
    expect_action(&plan, 6, ESTATE_DELETE_ALIAS, ALIAS(DEAD, "d"), foreign); /* key stays */
    expect_action(&plan, 7, ESTATE_SCHEDULE_KEY_DELETION, NULL, orphan);
    for (size_t i = 0; i < plan.count; i++) {
        assert_string_not_equal(plan.items[i].key_id, live_key);
        assert_string_not_equal(plan.items[i].key_id, other_td_key);
    }
    estate_plan_clear(&plan);

    /* no trust domain, no plan */
    assert_int_equal(estate_plan_prune(&e, NULL, &default_ages, &plan), 0);
    assert_int_equal(plan.count, 0);
    estate_clear(&e);
}

/* ---- tags -------------------------------------------------------------------------- */

static void what_tags_say(void **state)
{
    (void)state;
    const int64_t stale = ESTATE_DEFAULT_STALE_ALIAS_AGE_MS;
    char when[TAG_MODE_TIME_SIZE];
    account a = {0};
    const char *k = add_key(&a, "", NOW_S - 40 * DAY_S, true);
    assert_int_equal(estate_judge_tags(NULL, 0, NOW_S, stale), ESTATE_TAGS_NONE);
    tag_key(&a, k, TD, DEAD, "true", ago(when, 14 * DAY_S - 1));
    assert_int_equal(estate_judge_tags(&a.tags[0], 0, NOW_S, stale), ESTATE_TAGS_LIVE);
    tag_key(&a, k, TD, DEAD, "true", ago(when, 14 * DAY_S));
    assert_int_equal(estate_judge_tags(&a.tags[0], 0, NOW_S, stale), ESTATE_TAGS_STALE);
    tag_key(&a, k, TD, DEAD, "false", ago(when, 300 * DAY_S));
    assert_int_equal(estate_judge_tags(&a.tags[0], 0, NOW_S, stale), ESTATE_TAGS_SILENT);
    tag_key(&a, k, TD, DEAD, NULL, ago(when, 300 * DAY_S));
    assert_int_equal(estate_judge_tags(&a.tags[0], 0, NOW_S, stale), ESTATE_TAGS_SILENT);
    tag_key(&a, k, TD, DEAD, "true", "yesterday");
    assert_int_equal(estate_judge_tags(&a.tags[0], 0, NOW_S, stale), ESTATE_TAGS_MALFORMED);
    /* undated: the creation date judges; unknown (0) is never stale */
    tag_key(&a, k, TD, DEAD, "true", NULL);
    assert_int_equal(estate_judge_tags(&a.tags[0], NOW_S - 14 * DAY_S, NOW_S, stale),
                     ESTATE_TAGS_STALE);
    assert_int_equal(estate_judge_tags(&a.tags[0], NOW_S - 13 * DAY_S, NOW_S, stale),
                     ESTATE_TAGS_LIVE);
    assert_int_equal(estate_judge_tags(&a.tags[0], 0, NOW_S, stale), ESTATE_TAGS_LIVE);
    /* the operator is no server: a server's own key is judged as any other */
    tag_key(&a, k, TD, "", "true", ago(when, 20 * DAY_S));
    assert_int_equal(estate_judge_tags(&a.tags[0], 0, NOW_S, stale), ESTATE_TAGS_STALE);
    /* marks: the description of the trust domain, or spire-server-td exactly */
    tag_key(&a, k, "example.org2", DEAD, "true", NULL);
    assert_true(estate_marked_for("", &a.tags[0], "example.org2"));
    assert_false(estate_marked_for("", &a.tags[0], TD));
    assert_true(estate_marked_for("SPIRE_SERVER_KEY/example_org/x", &a.tags[0], TD));
    assert_false(estate_marked_for("", NULL, TD));
}

static void unaliased_keys_by_tags(void **state)
{
    (void)state;
    char t[12][TAG_MODE_TIME_SIZE];
    account a = {0};
    const char *desc = "SPIRE_SERVER_KEY/example_org/x509-CA-A";
    const char *fresh = add_key(&a, desc, NOW_S - 40 * DAY_S, true);
    const char *fresh_disabled = add_key(&a, desc, NOW_S - 40 * DAY_S, true);
    const char *stale = add_key(&a, desc, NOW_S - 40 * DAY_S, true);
    const char *stale_disabled = add_key(&a, "", NOW_S - 40 * DAY_S, true);
    const char *undated_old = add_key(&a, desc, NOW_S - 40 * DAY_S, true);
    const char *undated_young = add_key(&a, desc, NOW_S - DAY_S, true);
    const char *inactive_old = add_key(&a, "", NOW_S - 48 * HOUR_S, true);
    const char *inactive_young = add_key(&a, "", NOW_S - 48 * HOUR_S + 1, true);
    const char *malformed = add_key(&a, desc, NOW_S - 40 * DAY_S, true);
    const char *no_active = add_key(&a, "", NOW_S - 40 * DAY_S, true);
    const char *pending = add_key(&a, "", NOW_S - 40 * DAY_S, true);
    const char *undescribed = add_key(&a, "", NOW_S - 40 * DAY_S, false);
    tag_key(&a, fresh, TD, LIVE, "true", ago(t[0], HOUR_S));
    tag_key(&a, fresh_disabled, TD, LIVE, "true", ago(t[1], HOUR_S));
    tag_key(&a, stale, TD, DEAD, "true", ago(t[2], 20 * DAY_S));
    tag_key(&a, stale_disabled, TD, DEAD, "true", ago(t[3], 20 * DAY_S));
    tag_key(&a, undated_old, TD, DEAD, "true", NULL);
    tag_key(&a, undated_young, TD, DEAD, "true", NULL);
    tag_key(&a, inactive_old, TD, DEAD, "false", ago(t[4], 20 * DAY_S));
    tag_key(&a, inactive_young, TD, DEAD, "false", ago(t[5], 20 * DAY_S));
    tag_key(&a, malformed, TD, DEAD, "true", "1.5e9");
    tag_key(&a, no_active, TD, DEAD, NULL, ago(t[6], 20 * DAY_S));
    tag_key(&a, pending, TD, DEAD, "true", ago(t[7], 20 * DAY_S));
    tag_key(&a, undescribed, TD, DEAD, "true", ago(t[8], 20 * DAY_S));
    a.metadata[1].enabled = false;
    snprintf(a.metadata[1].key_state, 32, "Disabled");
    a.metadata[3].enabled = false;
    snprintf(a.metadata[3].key_state, 32, "Disabled");
    a.metadata[10].enabled = false;
    snprintf(a.metadata[10].key_state, 32, "PendingDeletion");
    estate e;
    build(&a, NULL, &default_ages, &e);
    assert_int_equal(verdict_of(&e, fresh), ESTATE_LIVE); /* old, by description an orphan */
    assert_int_equal(verdict_of(&e, fresh_disabled), ESTATE_DISABLED);
    assert_int_equal(verdict_of(&e, stale), ESTATE_ORPHAN);
    assert_int_equal(verdict_of(&e, stale_disabled), ESTATE_ORPHAN); /* the sweep takes it */
    assert_int_equal(verdict_of(&e, undated_old), ESTATE_ORPHAN);
    assert_int_equal(verdict_of(&e, undated_young), ESTATE_LIVE);
    assert_int_equal(verdict_of(&e, inactive_old), ESTATE_ORPHAN); /* the healing pass */
    assert_int_equal(verdict_of(&e, inactive_young), ESTATE_YOUNG_ORPHAN);
    assert_int_equal(verdict_of(&e, malformed), ESTATE_MALFORMED_TAGS);
    assert_int_equal(verdict_of(&e, no_active), ESTATE_MALFORMED_TAGS); /* no sweep lists it */
    assert_int_equal(verdict_of(&e, pending), ESTATE_PENDING_DELETION);
    assert_null(find(&e, undescribed)); /* not described: not judged */
    /* names: the description's trust domain, else the tag's as written */
    const estate_key *k = find(&e, stale);
    assert_string_equal(k->trust_domain, "example_org");
    assert_string_equal(k->server_id, DEAD);
    assert_string_equal(k->spire_key_id, "x509-CA-A");
    assert_string_equal(k->tags.active, "true");
    assert_string_equal(k->tags.last_update, t[2]);
    k = find(&e, inactive_old);
    assert_string_equal(k->trust_domain, TD);
    assert_string_equal(k->spire_key_id, "x509-CA-A");
    estate_clear(&e);

    /* stale tags without spire-server-td: no tag sweep lists them; the orphan
     * sweep judges the key by its description (enabled only) */
    a.tags[2].items[0].key = (char *)"other-tag";
    a.tags[3].items[0].key = (char *)"other-tag";
    snprintf(a.metadata[3].description, sizeof a.metadata[3].description, "%s", desc);
    build(&a, NULL, &default_ages, &e);
    assert_int_equal(verdict_of(&e, stale), ESTATE_ORPHAN);
    assert_int_equal(verdict_of(&e, stale_disabled), ESTATE_DISABLED);
    estate_clear(&e);
}

static void aliased_keys_with_tags(void **state)
{
    (void)state;
    char t[4][TAG_MODE_TIME_SIZE];
    account a = {0};
    const char *kept = add_key(&a, "", 0, false);
    const char *malformed = add_key(&a, "", 0, false);
    const char *dead = add_key(&a, "", 0, false);
    const char *fresh_alias = add_key(&a, "", 0, false);
    const char *app = add_key(&a, "", 0, false);
    const char *undated = add_key(&a, "", NOW_S - 40 * DAY_S, true); /* the scan describes it */
    add_alias(&a, ALIAS(LIVE, "x509-CA-A"), kept, NOW_S - 20 * DAY_S);
    add_alias(&a, ALIAS(DEAD, "x509-CA-B"), malformed, NOW_S - 20 * DAY_S);
    add_alias(&a, ALIAS(DEAD, "x509-CA-A"), dead, NOW_S - 20 * DAY_S);
    add_alias(&a, ALIAS(LIVE, "JWT-Signer-A"), fresh_alias, NOW_S - HOUR_S);
    add_alias(&a, "alias/my-app", app, NOW_S - 20 * DAY_S);
    add_alias(&a, ALIAS(DEAD, "WIT-Signer-A"), undated, NOW_S - 20 * DAY_S);
    tag_key(&a, kept, TD, LIVE, "true", ago(t[0], HOUR_S));
    tag_key(&a, malformed, TD, DEAD, "true", "");
    tag_key(&a, dead, TD, DEAD, "true", ago(t[1], 20 * DAY_S));
    tag_key(&a, fresh_alias, TD, LIVE, "true", ago(t[2], 20 * DAY_S));
    tag_key(&a, app, "example.org2", LIVE, "true", ago(t[3], HOUR_S));
    tag_key(&a, undated, TD, DEAD, "true", NULL);
    estate e;
    build(&a, NULL, &default_ages, &e);
    assert_int_equal(verdict_of(&e, kept), ESTATE_LIVE);
    assert_int_equal(verdict_of(&e, malformed), ESTATE_MALFORMED_TAGS);
    assert_int_equal(verdict_of(&e, dead), ESTATE_STALE_ALIAS);
    assert_int_equal(verdict_of(&e, fresh_alias), ESTATE_LIVE);
    assert_int_equal(verdict_of(&e, undated), ESTATE_STALE_ALIAS);
    /* SPIRE's by its tags alone (another alias names it): listed, names from the tags */
    assert_int_equal(verdict_of(&e, app), ESTATE_LIVE);
    const estate_key *k = find(&e, app);
    assert_string_equal(k->trust_domain, "example.org2");
    assert_string_equal(k->server_id, LIVE);
    assert_null(k->alias);
    /* the alias names a key: its own names win over the tags' */
    k = find(&e, kept);
    assert_string_equal(k->trust_domain, "example_org");
    assert_string_equal(k->spire_key_id, "x509-CA-A");
    estate_clear(&e);

    /* filtered by trust domain: the tag's, exactly */
    build(&a, "example.org2", &default_ages, &e);
    assert_int_equal(e.key_count, 1);
    assert_non_null(find(&e, app));
    estate_clear(&e);
}

static const estate_action *action_on(const estate_plan *plan, estate_action_kind kind,
                                      const char *key_id)
{
    for (size_t i = 0; i < plan->count; i++) {
        if (plan->items[i].kind == kind && strcmp(plan->items[i].key_id, key_id) == 0)
            return &plan->items[i];
    }
    return NULL;
}

static void plan_with_tags(void **state)
{
    (void)state;
    char t[6][TAG_MODE_TIME_SIZE];
    account a = {0};
    const char *kept = add_key(&a, "", 0, false);
    const char *malformed = add_key(&a, "", 0, false);
    const char *dead = add_key(&a, "", 0, false);
    const char *swept = add_key(&a, "", NOW_S - 30 * DAY_S, true);
    const char *healed = add_key(&a, "", NOW_S - 30 * DAY_S, true);
    const char *live = add_key(&a, "SPIRE_SERVER_KEY/example_org/k", NOW_S - 30 * DAY_S, true);
    const char *other_td = add_key(&a, "", NOW_S - 30 * DAY_S, true);
    const char *untagged = add_key(&a, "SPIRE_SERVER_KEY/example_org/o", NOW_S - 9 * DAY_S, true);
    add_alias(&a, ALIAS(LIVE, "x509-CA-A"), kept, NOW_S - 20 * DAY_S);
    add_alias(&a, ALIAS(DEAD, "x509-CA-B"), malformed, NOW_S - 20 * DAY_S);
    add_alias(&a, ALIAS(DEAD, "x509-CA-A"), dead, NOW_S - 20 * DAY_S);
    tag_key(&a, kept, TD, LIVE, "true", ago(t[0], HOUR_S));
    tag_key(&a, malformed, TD, DEAD, "true", "soon");
    tag_key(&a, dead, TD, DEAD, "true", ago(t[1], 20 * DAY_S));
    tag_key(&a, swept, TD, DEAD, "true", ago(t[2], 20 * DAY_S));
    tag_key(&a, healed, TD, DEAD, "false", ago(t[3], 20 * DAY_S));
    tag_key(&a, live, TD, LIVE, "true", ago(t[4], HOUR_S));
    tag_key(&a, other_td, "example.org2", DEAD, "true", ago(t[5], 20 * DAY_S));
    estate e;
    build(&a, TD, &default_ages, &e);
    estate_plan plan;
    assert_int_equal(estate_plan_prune(&e, TD, &default_ages, &plan), 0);
    assert_int_equal(plan.count, 5);
    /* the stale aliases of keys their tags keep are left alone, as the fleet leaves them */
    expect_action(&plan, 0, ESTATE_DELETE_ALIAS, ALIAS(DEAD, "x509-CA-A"), dead);
    expect_action(&plan, 1, ESTATE_SCHEDULE_KEY_DELETION, ALIAS(DEAD, "x509-CA-A"), dead);
    assert_non_null(strstr(plan.items[1].reason, "tagged spire-active=false first"));
    const estate_action *action = action_on(&plan, ESTATE_SCHEDULE_KEY_DELETION, swept);
    assert_non_null(action);
    assert_null(action->alias);
    assert_non_null(strstr(action->reason, "spire-last-update 20.0 days ago (stale after 14.0)"));
    assert_non_null(strstr(action->reason, "tagged spire-active=false first"));
    action = action_on(&plan, ESTATE_SCHEDULE_KEY_DELETION, healed);
    assert_non_null(action);
    assert_non_null(strstr(action->reason, "tagged spire-active=false but not pending"));
    assert_null(strstr(action->reason, "first"));
    assert_non_null(action_on(&plan, ESTATE_SCHEDULE_KEY_DELETION, untagged));
    for (size_t i = 0; i < plan.count; i++) {
        assert_string_not_equal(plan.items[i].key_id, kept);
        assert_string_not_equal(plan.items[i].key_id, malformed);
        assert_string_not_equal(plan.items[i].key_id, live);
        assert_string_not_equal(plan.items[i].key_id, other_td);
    }
    estate_plan_clear(&plan);
    estate_clear(&e);
}

static void names(void **state)
{
    (void)state;
    assert_string_equal(estate_verdict_name(ESTATE_LIVE), "live");
    assert_string_equal(estate_verdict_name(ESTATE_STALE_ALIAS), "stale-alias");
    assert_string_equal(estate_verdict_name(ESTATE_ORPHAN), "orphan");
    assert_string_equal(estate_verdict_name(ESTATE_YOUNG_ORPHAN), "young-orphan");
    assert_string_equal(estate_verdict_name(ESTATE_PENDING_DELETION), "pending-deletion");
    assert_string_equal(estate_verdict_name(ESTATE_DISABLED), "disabled");
    assert_string_equal(estate_verdict_name(ESTATE_MALFORMED_TAGS), "malformed-tags");
    assert_false(estate_verdict_is_prunable(ESTATE_MALFORMED_TAGS));
    assert_string_equal(estate_action_name(ESTATE_DELETE_ALIAS), "delete-alias");
    assert_string_equal(estate_action_name(ESTATE_SCHEDULE_KEY_DELETION), "schedule-key-deletion");
    assert_string_equal(estate_result_name(ESTATE_ALREADY_DONE), "already-done");
    assert_string_equal(estate_result_name(ESTATE_UNKNOWN), "unknown");
    assert_true(estate_verdict_is_prunable(ESTATE_STALE_ALIAS));
    assert_true(estate_verdict_is_prunable(ESTATE_ORPHAN));
    assert_false(estate_verdict_is_prunable(ESTATE_YOUNG_ORPHAN));
    assert_false(estate_verdict_is_prunable(ESTATE_LIVE));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(split_alias),
        cmocka_unit_test(split_description),
        cmocka_unit_test(aliased_keys_live_or_stale),
        cmocka_unit_test(any_live_alias_keeps_a_key_live),
        cmocka_unit_test(unaliased_keys_by_description),
        cmocka_unit_test(trust_domain_filter_by_whole_component),
        cmocka_unit_test(summary_counts_and_costs),
        cmocka_unit_test(plan_of_a_trust_domain),
        cmocka_unit_test(what_tags_say),
        cmocka_unit_test(unaliased_keys_by_tags),
        cmocka_unit_test(aliased_keys_with_tags),
        cmocka_unit_test(plan_with_tags),
        cmocka_unit_test(names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
