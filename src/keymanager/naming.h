/* Names in KMS, compatible with SPIRE's built-in aws_kms:
 *   alias       alias/SPIRE_SERVER/{TD}/{SERVER_ID}/{KEY_ID}
 *               TD with '.' -> '_'; KEY_ID with '.' -> "_2e", '+' -> "_2b"
 *   description SPIRE_SERVER_KEY/{TD}/{KEY_ID}
 * Matching is by whole path component, never by string prefix. */
#ifndef KM_NAMING_H
#define KM_NAMING_H

#include <stdbool.h>
#include <stddef.h>

#include "keymanager/keymanager.h"

#define NAMING_ALIAS_MAX 256

/* "alias/SPIRE_SERVER/{TD}/" (malloc'd). */
char *naming_trust_domain_prefix(const char *trust_domain);
/* "alias/SPIRE_SERVER/{TD}/{SERVER_ID}/" (malloc'd). */
char *naming_server_prefix(const char *trust_domain, const char *server_id);
/* The full alias for a SPIRE key id; NULL with status INVALID_ARGUMENT and
 * the reason when the id cannot be encoded (empty, bad characters, contains
 * "_2e"/"_2b", too long). */
char *naming_alias_for_key(const char *trust_domain, const char *server_id, const char *key_id,
                           km_status *status);

/* Splits an alias of this trust domain into server id and decoded key id
 * (both malloc'd). False for aliases of other trust domains or other forms. */
bool naming_parse_alias(const char *alias_name, const char *trust_domain, char **server_id,
                        char **key_id);

/* "SPIRE_SERVER_KEY/{TD}/{KEY_ID}" (malloc'd). */
char *naming_key_description(const char *trust_domain, const char *key_id);
/* True when a key description names this trust domain: the upstream form
 * SPIRE_SERVER_KEY/{TD}/... or the spec's SPIRE_SERVER/{TD}. */
bool naming_description_in_trust_domain(const char *description, const char *trust_domain);

/* ---- reading names of any trust domain (the operator's account-wide view) ---- */

/* Splits any SPIRE alias "alias/SPIRE_SERVER/{TD}/{SERVER_ID}/{KEY_ID}" into
 * its trust domain component (as written: '.' already '_'), server id and
 * decoded key id (all malloc'd). False for other aliases. */
bool naming_split_alias(const char *alias_name, char **trust_domain, char **server_id,
                        char **key_id);
/* Splits a SPIRE key description: "SPIRE_SERVER_KEY/{TD}/{KEY_ID}" (key id
 * may be absent: *key_id NULL) or the spec's "SPIRE_SERVER/{TD}" (*key_id
 * NULL). Trust domain as written (malloc'd). False for other descriptions. */
bool naming_split_description(const char *description, char **trust_domain, char **key_id);

#endif
