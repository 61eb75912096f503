/* Reading a small file we were pointed at (token files, AWS shared files, the
 * server id file) without letting it hang or flood the process: the path is
 * opened non-blocking (a FIFO cannot block the open or the reads), must be a
 * regular file (a directory, FIFO, socket or device is refused by name), and
 * may hold at most max_bytes. The whole content comes back in one buffer
 * that the caller wipes and frees with file_contents_wipe. */
#ifndef KM_COMMON_FILE_READ_H
#define KM_COMMON_FILE_READ_H

#include <stddef.h>

typedef struct {
    char *data; /* malloc'd, NUL-terminated (the file may hold NULs too) */
    size_t len; /* bytes read, without the terminating NUL */
} file_contents;

typedef enum {
    FILE_READ_OK = 0,
    FILE_READ_MISSING, /* ENOENT or ENOTDIR: nothing there */
    FILE_READ_FAILED,  /* anything else; the message says what */
} file_read_result;

/* Reads path into *out. On failure *out is empty and message (when not NULL)
 * names the path and the cause: "/x is a directory, not a file",
 * "/x is not a regular file (a FIFO)", "/x is larger than 65536 bytes",
 * "cannot read /x: Permission denied". */
file_read_result file_read_regular(const char *path, size_t max_bytes, file_contents *out,
                                   char *message, size_t message_size);

/* Wipes the whole buffer (explicit_bzero) and frees it; *contents is emptied. */
void file_contents_wipe(file_contents *contents);

#endif
