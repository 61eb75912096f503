/* The server id file (key_metadata_file / key_identifier_file): one UUID as
 * text, the {SERVER_ID} in our alias names (a canonical UUID holds only
 * hexadecimal digits and '-': always one alias path component). It is opened
 * without blocking and must be a regular file (a symbolic link to one is
 * followed): a directory, FIFO or device there is an error, never a hang. A
 * missing file is created with a new random UUIDv4, mode 0600, exclusively:
 * a temp file, fsynced, linked to the name only if the name is still free,
 * then the directory fsynced; of two racing creators the loser reads the
 * winner's id. An unreadable or corrupt file is an error naming the path (and
 * the first character that does not belong) and is never replaced. */
#ifndef KM_SERVERID_H
#define KM_SERVERID_H

#include <stdbool.h>
#include <stddef.h>

#include "keymanager/keymanager.h"

#define SERVERID_LEN 36 /* canonical 8-4-4-4-12 form */

/* Parses a UUID (canonical form, optionally in braces or with "urn:uuid:",
 * or 32 bare hex digits; surrounding whitespace ignored) into lowercase
 * canonical form. */
bool serverid_parse(const char *text, char out[SERVERID_LEN + 1]);
/* A new random (version 4) UUID in canonical form; false if no randomness. */
bool serverid_generate(char out[SERVERID_LEN + 1]);
/* Reads the id from path, creating the file when it does not exist. Returns
 * 0, or -1 with status INTERNAL and a message naming the path. */
int serverid_load_or_create(const char *path, char out[SERVERID_LEN + 1], km_status *status);

#endif
