/* The fleet tasks' decisions as pure functions of KMS records and a clock:
 * which aliases are stale, which keys are orphans, whether one of our aliases
 * still targets the key our cache says. Trust domain and server matching is by
 * whole path component (naming.h), never by string prefix. */
#include "keymanager/fleet_internal.h"

#include <stdlib.h>
#include <string.h>

#include "keymanager/naming.h"

bool fleet_is_older_than(double date_s, double now_s, int64_t age_ms)
{
    if (date_s <= 0) {
        return false;
    }
    double elapsed_ms = (now_s - date_s) * 1000.0;
    return elapsed_ms >= (double)age_ms;
}

static bool is_other_server_alias(const char *alias_name, const char *trust_domain,
                                  const char *server_id)
{
    char *alias_server = NULL;
    char *alias_key = NULL;
    if (!naming_parse_alias(alias_name, trust_domain, &alias_server, &alias_key)) {
        return false;
    }
    bool other = strcmp(alias_server, server_id) != 0;
    free(alias_server);
    free(alias_key);
    return other;
}

bool fleet_alias_is_stale(const char *alias_name, const char *target_key_id, double last_updated_s,
                          const char *trust_domain, const char *server_id, double now_s,
                          int64_t stale_alias_age_ms)
{
    if (target_key_id == NULL || target_key_id[0] == '\0') {
        return false;
    }
    if (!fleet_is_older_than(last_updated_s, now_s, stale_alias_age_ms)) {
        return false;
    }
    return is_other_server_alias(alias_name, trust_domain, server_id);
}

bool fleet_key_is_orphan(const kms_key_metadata *key, bool aliased, const char *trust_domain,
                         double now_s, int64_t orphan_key_age_ms)
{
    return !aliased && key->enabled && strcmp(key->key_manager, "CUSTOMER") == 0 &&
           naming_description_in_trust_domain(key->description, trust_domain) &&
           fleet_is_older_than(key->creation_date, now_s, orphan_key_age_ms);
}

/* "arn:...:key/{key_id}" */
static bool arn_names_key(const char *arn, const char *key_id)
{
    size_t arn_len = strlen(arn);
    size_t id_len = strlen(key_id);
    static const char marker[] = ":key/";
    size_t marker_len = sizeof marker - 1;
    if (id_len == 0 || strncmp(arn, "arn:", 4) != 0 || arn_len < id_len + marker_len) {
        return false;
    }
    const char *tail = arn + arn_len - id_len - marker_len;
    return strncmp(tail, marker, marker_len) == 0 && strcmp(tail + marker_len, key_id) == 0;
}

bool fleet_key_ref_matches(const char *ref, const char *key_id, const char *key_arn)
{
    if (ref == NULL || ref[0] == '\0') {
        return false;
    }
    if (key_id != NULL && key_id[0] != '\0' && strcmp(ref, key_id) == 0) {
        return true;
    }
    if (key_arn != NULL && key_arn[0] != '\0' && strcmp(ref, key_arn) == 0) {
        return true;
    }
    return key_id != NULL && arn_names_key(ref, key_id);
}
