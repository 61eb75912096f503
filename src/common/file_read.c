/* Small regular files, read safely (see file_read.h). Every buffer that held
 * file content is wiped before it is freed: the files are mostly secrets. */
#include "common/file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { FIRST_CHUNK = 4096 };

static void say(char *message, size_t size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
static void say(char *message, size_t size, const char *format, ...)
{
    if (message == NULL || size == 0)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(message, size, format, args);
    va_end(args);
}

static const char *kind_of(mode_t mode)
{
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    return "not a plain file";
}

void file_contents_wipe(file_contents *contents)
{
    if (contents == NULL)
        return;
    if (contents->data != NULL)
        explicit_bzero(contents->data, contents->len + 1);
    free(contents->data);
    contents->data = NULL;
    contents->len = 0;
}

/* Makes room for at least `wanted` bytes plus the NUL; the old buffer is
 * wiped before it is freed. */
static bool grow(file_contents *buffer, size_t *cap, size_t wanted)
{
    if (wanted + 1 <= *cap)
        return true;
    size_t bigger = *cap ? *cap : FIRST_CHUNK;
    while (bigger < wanted + 1)
        bigger *= 2;
    char *fresh = malloc(bigger);
    if (fresh == NULL)
        return false;
    if (buffer->data != NULL) {
        memcpy(fresh, buffer->data, buffer->len);
        explicit_bzero(buffer->data, *cap);
        free(buffer->data);
    }
    buffer->data = fresh;
    *cap = bigger;
    return true;
}

/* Reads fd to its end, at most max_bytes + 1 bytes (one more tells "too large"). */
static int read_all(int fd, size_t max_bytes, size_t size_hint, file_contents *out, size_t *cap)
{
    size_t first = size_hint > 0 && size_hint <= max_bytes ? size_hint + 1 : FIRST_CHUNK;
    if (!grow(out, cap, first < max_bytes + 1 ? first : max_bytes + 1))
        return ENOMEM;
    for (;;) {
        if (out->len + 1 >= *cap) {
            size_t wanted = out->len + FIRST_CHUNK;
            if (!grow(out, cap, wanted < max_bytes + 1 ? wanted : max_bytes + 1))
                return ENOMEM;
        }
        size_t room = *cap - 1 - out->len;
        ssize_t n = read(fd, out->data + out->len, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        out->len += (size_t)n;
        out->data[out->len] = '\0';
        if (n == 0 || out->len > max_bytes)
            return 0;
    }
}

static file_read_result fail(file_contents *out, size_t cap, file_read_result result)
{
    if (out->data != NULL)
        explicit_bzero(out->data, cap);
    free(out->data);
    out->data = NULL;
    out->len = 0;
    return result;
}

file_read_result file_read_regular(const char *path, size_t max_bytes, file_contents *out,
                                   char *message, size_t message_size)
{
    memset(out, 0, sizeof *out);
    say(message, message_size, "%s", "");
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int error = errno;
        say(message, message_size, "cannot read %s: %s", path, strerror(error));
        return error == ENOENT || error == ENOTDIR ? FILE_READ_MISSING : FILE_READ_FAILED;
    }
    struct stat info;
    size_t cap = 0;
    file_read_result result = FILE_READ_FAILED;
    if (fstat(fd, &info) != 0) {
        say(message, message_size, "cannot read %s: %s", path, strerror(errno));
    } else if (S_ISDIR(info.st_mode)) {
        say(message, message_size, "%s is a directory, not a file", path);
    } else if (!S_ISREG(info.st_mode)) {
        say(message, message_size, "%s is not a regular file (%s)", path, kind_of(info.st_mode));
    } else if ((unsigned long long)info.st_size > max_bytes) {
        say(message, message_size, "%s is larger than %zu bytes", path, max_bytes);
    } else {
        int error = read_all(fd, max_bytes, (size_t)info.st_size, out, &cap);
        if (error != 0)
            say(message, message_size, "cannot read %s: %s", path, strerror(error));
        else if (out->len > max_bytes)
            say(message, message_size, "%s is larger than %zu bytes", path, max_bytes);
        else
            result = FILE_READ_OK;
    }
    close(fd);
    return result == FILE_READ_OK ? FILE_READ_OK : fail(out, cap, result);
}
