/* Files read safely (see file_read.h). Every buffer that held file content is
 * wiped before it is freed: the files are mostly secrets. */
#include "common/file_read.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { FIRST_CHUNK = 4096 };

static void say(file_problem *problem, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
static void say(file_problem *problem, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(problem->message, sizeof problem->message, format, args);
    va_end(args);
}

static const char *kind_of(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
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

/* The problem to report into (the caller's, or scratch when it passed NULL),
 * cleared for a read of at most max_bytes. */
static file_problem *start(file_problem *problem, file_problem *scratch, size_t max_bytes)
{
    if (problem == NULL)
        problem = scratch;
    memset(problem, 0, sizeof *problem);
    problem->max_bytes = max_bytes;
    return problem;
}

static void cannot_read(file_problem *problem, const char *name, int error)
{
    problem->error_number = error;
    say(problem, "cannot read %s: %s", name, strerror(error));
}

static void too_large(file_problem *problem, const char *name)
{
    problem->too_large = true;
    say(problem, "%s is larger than %zu bytes", name, problem->max_bytes);
}

/* Reads fd (size_hint: its size when known) into out; FILE_READ_OK or FAILED. */
static file_read_result read_bounded(int fd, const char *name, size_t size_hint, file_contents *out,
                                     file_problem *problem)
{
    size_t cap = 0;
    int error = read_all(fd, problem->max_bytes, size_hint, out, &cap);
    if (error != 0)
        cannot_read(problem, name, error);
    else if (out->len > problem->max_bytes)
        too_large(problem, name);
    else
        return FILE_READ_OK;
    return fail(out, cap, FILE_READ_FAILED);
}

/* Opens path non-blocking and checks it is a regular file: the descriptor,
 * or -1 with *result and the problem set. */
static int open_regular(const char *path, struct stat *info, file_read_result *result,
                        file_problem *problem)
{
    *result = FILE_READ_FAILED;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int error = errno;
        cannot_read(problem, path, error);
        if (error == ENOENT || error == ENOTDIR)
            *result = FILE_READ_MISSING;
        return -1;
    }
    if (fstat(fd, info) != 0) {
        cannot_read(problem, path, errno);
        close(fd);
        return -1;
    }
    problem->mode = info->st_mode;
    if (!S_ISREG(info->st_mode)) {
        problem->not_regular = kind_of(info->st_mode);
        if (S_ISDIR(info->st_mode))
            say(problem, "%s is a directory, not a file", path);
        else
            say(problem, "%s is not a regular file (%s)", path, problem->not_regular);
    } else if ((unsigned long long)info->st_size > problem->max_bytes) {
        too_large(problem, path);
    } else {
        *result = FILE_READ_OK;
        return fd;
    }
    close(fd);
    return -1;
}

file_read_result file_read_regular(const char *path, size_t max_bytes, file_contents *out,
                                   file_problem *problem)
{
    file_problem scratch;
    problem = start(problem, &scratch, max_bytes);
    memset(out, 0, sizeof *out);
    struct stat info;
    file_read_result result;
    int fd = open_regular(path, &info, &result, problem);
    if (fd < 0)
        return result;
    result = read_bounded(fd, path, (size_t)info.st_size, out, problem);
    close(fd);
    return result;
}

file_read_result file_check_regular(const char *path, file_problem *problem)
{
    file_problem scratch;
    problem = start(problem, &scratch, (size_t)-1);
    struct stat info;
    file_read_result result;
    int fd = open_regular(path, &info, &result, problem);
    if (fd >= 0)
        close(fd);
    return result;
}

file_read_result file_read_stream(int fd, const char *name, size_t max_bytes, file_contents *out,
                                  file_problem *problem)
{
    file_problem scratch;
    problem = start(problem, &scratch, max_bytes);
    memset(out, 0, sizeof *out);
    return read_bounded(fd, name, 0, out, problem);
}
