/* Reading a file we were pointed at (token files, AWS shared files, the SSO
 * token cache, the server id file, a key policy file, a configuration file)
 * without letting it hang or flood the process.
 *
 * - file_read_regular: the path is opened non-blocking (a FIFO cannot block
 *   the open or the reads), must be a regular file (a directory, FIFO,
 *   socket or device is refused by name), and may hold at most max_bytes.
 * - file_check_regular: the same checks, nothing read (a CA bundle that
 *   libcurl reads later).
 * - file_read_stream: an open descriptor (stdin, a pipe the operator named)
 *   read to its end, at most max_bytes.
 *
 * The whole content comes back in one buffer that the caller wipes and frees
 * with file_contents_wipe. A failure is described by a file_problem: its
 * message names the path and the cause, and its fields let a caller word the
 * cause its own way. */
#ifndef KM_COMMON_FILE_READ_H
#define KM_COMMON_FILE_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct {
    char *data; /* malloc'd, NUL-terminated (the file may hold NULs too) */
    size_t len; /* bytes read, without the terminating NUL */
} file_contents;

typedef enum {
    FILE_READ_OK = 0,
    FILE_READ_MISSING, /* ENOENT or ENOTDIR: nothing there */
    FILE_READ_FAILED,  /* anything else; the problem says what */
} file_read_result;

typedef struct {
    int error_number;        /* errno of the open, fstat or read that failed; 0 otherwise */
    const char *not_regular; /* "a directory", "a FIFO", "a socket", "a character device",
                                "a block device", "not a plain file"; NULL for a regular file */
    mode_t mode;             /* st_mode of what the path names; 0 when it could not be opened */
    bool too_large;          /* more than max_bytes */
    size_t max_bytes;        /* the bound that was applied */
    /* "/x is a directory, not a file", "/x is not a regular file (a FIFO)",
     * "/x is larger than 65536 bytes", "cannot read /x: Permission denied";
     * "" without a problem */
    char message[1024];
} file_problem;

/* Reads path into *out. On failure *out is empty and problem (may be NULL)
 * says why. */
file_read_result file_read_regular(const char *path, size_t max_bytes, file_contents *out,
                                   file_problem *problem);

/* Opens path as file_read_regular does and checks it is a regular file,
 * reading nothing. */
file_read_result file_check_regular(const char *path, file_problem *problem);

/* Reads the open descriptor fd to its end (blocking as fd blocks), at most
 * max_bytes; fd stays open. name stands for it in the problem's message. */
file_read_result file_read_stream(int fd, const char *name, size_t max_bytes, file_contents *out,
                                  file_problem *problem);

/* Wipes the whole buffer (explicit_bzero) and frees it; *contents is emptied. */
void file_contents_wipe(file_contents *contents);

#endif
