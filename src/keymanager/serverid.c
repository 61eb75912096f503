/* Server id file: load, validate, or create (see serverid.h). */
#include "keymanager/serverid.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

enum { MAX_FILE_BYTES = 4096 };

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Reads 32 hex digits, with hyphens exactly at the canonical places when
 * hyphenated is set, into 16 bytes. */
static bool parse_hex_uuid(const char *text, size_t len, bool hyphenated, uint8_t bytes[16])
{
    static const size_t hyphens[] = {8, 13, 18, 23};
    size_t expected = hyphenated ? 36 : 32;
    if (len != expected)
        return false;
    size_t digit = 0;
    for (size_t i = 0; i < len; i++) {
        bool at_hyphen = false;
        for (size_t h = 0; hyphenated && h < 4; h++)
            at_hyphen |= (i == hyphens[h]);
        if (at_hyphen) {
            if (text[i] != '-')
                return false;
            continue;
        }
        int v = hex_value(text[i]);
        if (v < 0)
            return false;
        if (digit % 2 == 0)
            bytes[digit / 2] = (uint8_t)(v << 4);
        else
            bytes[digit / 2] |= (uint8_t)v;
        digit++;
    }
    return digit == 32;
}

static void format_uuid(const uint8_t bytes[16], char out[SERVERID_LEN + 1])
{
    snprintf(out, SERVERID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", bytes[0],
             bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8],
             bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]);
}

bool serverid_parse(const char *text, char out[SERVERID_LEN + 1])
{
    if (text == NULL)
        return false;
    while (isspace((unsigned char)*text))
        text++;
    size_t len = strlen(text);
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    if (len >= 9 && strncasecmp(text, "urn:uuid:", 9) == 0) {
        text += 9;
        len -= 9;
    } else if (len >= 2 && text[0] == '{' && text[len - 1] == '}') {
        text++;
        len -= 2;
    }
    uint8_t bytes[16];
    if (!parse_hex_uuid(text, len, true, bytes) && !parse_hex_uuid(text, len, false, bytes))
        return false;
    format_uuid(bytes, out);
    return true;
}

bool serverid_generate(char out[SERVERID_LEN + 1])
{
    uint8_t bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1)
        return false;
    bytes[6] = (uint8_t)((bytes[6] & 0x0f) | 0x40); /* version 4 */
    bytes[8] = (uint8_t)((bytes[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    format_uuid(bytes, out);
    return true;
}

/* "<dir>/.<name>.tmp-XXXXXX" beside path, for mkstemp (malloc'd). */
static char *temp_path_beside(const char *path)
{
    const char *slash = strrchr(path, '/');
    int dir_len = slash == NULL ? 1 : (int)(slash - path);
    const char *dir = slash == NULL ? "." : (slash == path ? "/" : path);
    if (slash == path)
        dir_len = 1;
    const char *name = slash == NULL ? path : slash + 1;
    char *tmp = NULL;
    if (asprintf(&tmp, "%.*s/.%s.tmp-XXXXXX", dir_len, dir, name) < 0)
        return NULL;
    return tmp;
}

/* Writes text to a 0600 temp file beside path, then renames it over path. */
static int write_private_file(const char *path, const char *text, char *error, size_t error_size)
{
    char *tmp = temp_path_beside(path);
    if (tmp == NULL) {
        snprintf(error, error_size, "out of memory");
        return -1;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(error, error_size, "cannot create server id file %s: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    size_t len = strlen(text);
    bool ok = fchmod(fd, 0600) == 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    int saved = errno;
    ok = (close(fd) == 0) && ok;
    if (ok && rename(tmp, path) != 0) {
        saved = errno;
        ok = false;
    }
    if (!ok) {
        unlink(tmp);
        snprintf(error, error_size, "cannot write server id file %s: %s", path, strerror(saved));
    }
    free(tmp);
    return ok ? 0 : -1;
}

static int create_server_id(const char *path, char out[SERVERID_LEN + 1], char *error,
                            size_t error_size)
{
    if (!serverid_generate(out)) {
        snprintf(error, error_size, "cannot generate a server id: no randomness");
        return -1;
    }
    if (write_private_file(path, out, error, error_size) != 0)
        return -1;
    log_write(LOG_INFO, "keymanager", "Created server id file", "path", path, "server_id", out,
              LOG_END);
    return 0;
}

int serverid_load_or_create(const char *path, char out[SERVERID_LEN + 1], char *error,
                            size_t error_size)
{
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        if (errno == ENOENT)
            return create_server_id(path, out, error, error_size);
        snprintf(error, error_size, "cannot read server id file %s: %s", path, strerror(errno));
        return -1;
    }
    char buffer[MAX_FILE_BYTES + 1];
    size_t len = fread(buffer, 1, MAX_FILE_BYTES + 1, file);
    bool read_error = ferror(file) != 0;
    int saved = errno;
    fclose(file);
    if (read_error) {
        snprintf(error, error_size, "cannot read server id file %s: %s", path, strerror(saved));
        return -1;
    }
    if (len > MAX_FILE_BYTES || memchr(buffer, '\0', len) != NULL) {
        snprintf(error, error_size, "server id file %s does not hold a UUID", path);
        return -1;
    }
    buffer[len] = '\0';
    if (!serverid_parse(buffer, out)) {
        snprintf(error, error_size,
                 "server id file %s does not hold a UUID (fix or remove it; removing it gives "
                 "this server a new id and new keys)",
                 path);
        return -1;
    }
    return 0;
}
