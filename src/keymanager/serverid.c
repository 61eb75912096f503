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

#include "common/file_read.h"
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

/* The directory part of path ("." when none; malloc'd). */
static char *directory_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* "<dir>/.<name>.tmp-XXXXXX" beside path, for mkstemp (malloc'd). */
static char *temp_path_beside(const char *path)
{
    char *dir = directory_of(path);
    const char *slash = strrchr(path, '/');
    const char *name = slash == NULL ? path : slash + 1;
    char *tmp = NULL;
    if (dir == NULL || asprintf(&tmp, "%s/.%s.tmp-XXXXXX", dir, name) < 0)
        tmp = NULL;
    free(dir);
    return tmp;
}

/* fsync of path's directory, so that a new name in it survives a crash.
 * EINVAL: the file system cannot sync directories; nothing more to do. */
static int sync_directory(const char *path, char *error, size_t error_size)
{
    char *dir = directory_of(path);
    if (dir == NULL) {
        snprintf(error, error_size, "out of memory");
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && (fsync(fd) == 0 || errno == EINVAL) ? 0 : -1;
    if (rc != 0)
        snprintf(error, error_size, "cannot sync directory %s of server id file %s: %s", dir, path,
                 strerror(errno));
    if (fd >= 0)
        close(fd);
    free(dir);
    return rc;
}

/* Writes text to fd (0600) and fsyncs it. */
static bool write_synced(int fd, const char *text)
{
    size_t len = strlen(text);
    return fchmod(fd, 0600) == 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
}

typedef enum { CREATED, EXISTS, FAILED } create_result;

/* File systems without hard links: O_EXCL on the name itself (a reader
 * racing with us may then see it empty for a moment, and says so). */
static create_result create_exclusive_in_place(const char *path, const char *text, char *error,
                                               size_t error_size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST)
        return EXISTS;
    bool ok = fd >= 0 && write_synced(fd, text);
    int saved = errno;
    if (fd >= 0)
        ok = (close(fd) == 0) && ok;
    if (!ok) {
        snprintf(error, error_size, "cannot write server id file %s: %s", path, strerror(saved));
        return FAILED;
    }
    return CREATED;
}

/* Creates path holding text, only if the name is free: the text goes to a
 * 0600 temp file beside it (mkstemp, O_EXCL), is fsynced, and is linked to
 * the name, which fails when the name exists. Readers never see a partial
 * file, and of two racing creators the loser (EXISTS) reads the winner's. */
static create_result create_exclusive(const char *path, const char *text, char *error,
                                      size_t error_size)
{
    char *tmp = temp_path_beside(path);
    if (tmp == NULL) {
        snprintf(error, error_size, "out of memory");
        return FAILED;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(error, error_size, "cannot create server id file %s: %s", path, strerror(errno));
        free(tmp);
        return FAILED;
    }
    bool ok = write_synced(fd, text);
    int saved = errno;
    ok = (close(fd) == 0) && ok;
    create_result result = CREATED;
    if (!ok) {
        snprintf(error, error_size, "cannot write server id file %s: %s", path, strerror(saved));
        result = FAILED;
    } else if (link(tmp, path) != 0) {
        saved = errno;
        if (saved == EEXIST) {
            result = EXISTS;
        } else if (saved == EPERM || saved == ENOTSUP || saved == EOPNOTSUPP || saved == ENOSYS) {
            result = create_exclusive_in_place(path, text, error, error_size);
        } else {
            snprintf(error, error_size, "cannot create server id file %s: %s", path,
                     strerror(saved));
            result = FAILED;
        }
    }
    unlink(tmp);
    free(tmp);
    return result;
}

/* What the file holds instead of a UUID: the first character that does not
 * belong, and where (1-based, in the file), or its length. */
static void describe_non_uuid(const char *text, size_t len, char *out, size_t size)
{
    size_t start = 0;
    while (start < len && isspace((unsigned char)text[start]))
        start++;
    size_t end = len;
    while (end > start && isspace((unsigned char)text[end - 1]))
        end--;
    if (start == end) {
        snprintf(out, size, "it is empty");
        return;
    }
    if (end - start > 9 && strncasecmp(text + start, "urn:uuid:", 9) == 0)
        start += 9;
    else if (text[start] == '{' && text[end - 1] == '}')
        start++, end--;
    for (size_t i = start; i < end; i++) {
        unsigned char c = (unsigned char)text[i];
        if (hex_value((char)c) >= 0 || c == '-')
            continue;
        if (c > 0x20 && c < 0x7F)
            snprintf(out, size, "character '%c' at position %zu is not a hexadecimal digit or '-'",
                     c, i + 1);
        else
            snprintf(out, size, "byte 0x%02X at position %zu is not a hexadecimal digit or '-'", c,
                     i + 1);
        return;
    }
    snprintf(out, size, "it has %zu characters where a UUID has 36 (8-4-4-4-12) or 32",
             end - start);
}

/* Reads path (regular, non-blocking, bounded: file_read.h) and parses the id
 * it holds. Returns 0, or -1 with error set; *missing tells that there is no
 * such file (ENOENT). */
static int read_server_id_file(const char *path, char out[SERVERID_LEN + 1], bool *missing,
                               char *error, size_t error_size)
{
    file_contents file;
    file_problem problem;
    file_read_result result = file_read_regular(path, MAX_FILE_BYTES, &file, &problem);
    *missing = result == FILE_READ_MISSING && problem.error_number == ENOENT;
    if (result != FILE_READ_OK) {
        if (problem.not_regular != NULL)
            snprintf(error, error_size, "server id file %s is %s, not a regular file", path,
                     S_ISDIR(problem.mode)    ? "a directory"
                     : S_ISFIFO(problem.mode) ? "a FIFO"
                     : S_ISSOCK(problem.mode) ? "a socket"
                                              : "a device or special file");
        else if (problem.too_large)
            snprintf(error, error_size,
                     "server id file %s does not hold a UUID: it is larger than %d bytes", path,
                     MAX_FILE_BYTES);
        else
            snprintf(error, error_size, "cannot read server id file %s: %s", path,
                     strerror(problem.error_number));
        return -1;
    }
    int rc = 0;
    if (memchr(file.data, '\0', file.len) != NULL || !serverid_parse(file.data, out)) {
        char what[128];
        describe_non_uuid(file.data, file.len, what, sizeof what);
        snprintf(error, error_size,
                 "server id file %s does not hold a UUID: %s (fix or remove it; removing it gives "
                 "this server a new id and new keys)",
                 path, what);
        rc = -1;
    }
    file_contents_wipe(&file);
    return rc;
}

static int load_or_create(const char *path, char out[SERVERID_LEN + 1], char *error,
                          size_t error_size)
{
    bool missing = false;
    if (read_server_id_file(path, out, &missing, error, error_size) == 0)
        return 0;
    if (!missing)
        return -1;
    if (!serverid_generate(out)) {
        snprintf(error, error_size, "cannot generate a server id: no randomness");
        return -1;
    }
    switch (create_exclusive(path, out, error, error_size)) {
    case CREATED:
        if (sync_directory(path, error, error_size) != 0)
            return -1;
        log_write(LOG_INFO, "keymanager", "Created server id file", "path", path, "server_id", out,
                  LOG_END);
        return 0;
    case EXISTS: /* another creator won the race: its id is ours */
        return read_server_id_file(path, out, &missing, error, error_size);
    default:
        return -1;
    }
}

int serverid_load_or_create(const char *path, char out[SERVERID_LEN + 1], km_status *status)
{
    char error[1000];
    if (load_or_create(path, out, error, sizeof error) == 0)
        return 0;
    km_status_set(status, GRPC_STATUS_INTERNAL, "%s", error);
    return -1;
}
