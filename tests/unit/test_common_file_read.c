/* Unit tests for common/file_read.h: file_read_regular's content and length
 * (NUL bytes included), missing files, a directory, a FIFO nobody writes to
 * (refused at once; a watchdog unblocks a reader that would hang, so that
 * the test fails instead), the size bound, and files whose stat size is 0
 * (/proc); the problem's fields; file_check_regular (the same checks, nothing
 * read) and file_read_stream (a pipe, bounded). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/file_read.h"

enum { WATCHDOG_S = 10 };

typedef struct {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/km-file-read-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/file", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_bytes(const char *path, const char *data, size_t len)
{
    FILE *file = fopen(path, "wb");
    assert_non_null(file);
    assert_int_equal(fwrite(data, 1, len, file), len);
    fclose(file);
}

static void reads_content_and_length(void **state)
{
    fixture *f = *state;
    static const char data[] = "line one\nsecret\0after a NUL\n";
    write_bytes(f->path, data, sizeof data - 1);
    file_contents got;
    file_problem problem;
    assert_int_equal(file_read_regular(f->path, 1024, &got, &problem), FILE_READ_OK);
    assert_int_equal(got.len, sizeof data - 1);
    assert_memory_equal(got.data, data, sizeof data - 1);
    assert_int_equal(got.data[got.len], '\0');
    file_contents_wipe(&got);
    assert_null(got.data);
    assert_int_equal(got.len, 0);

    write_bytes(f->path, "", 0);
    assert_int_equal(file_read_regular(f->path, 1024, &got, &problem), FILE_READ_OK);
    assert_int_equal(got.len, 0);
    assert_string_equal(got.data, "");
    file_contents_wipe(&got);
}

static void missing_and_unreadable(void **state)
{
    fixture *f = *state;
    file_contents got;
    file_problem problem;
    assert_int_equal(file_read_regular(f->path, 1024, &got, &problem), FILE_READ_MISSING);
    assert_null(got.data);
    char expected[300];
    snprintf(expected, sizeof expected, "cannot read %s: No such file or directory", f->path);
    assert_string_equal(problem.message, expected);
    assert_int_equal(problem.error_number, ENOENT);
    assert_null(problem.not_regular);
    assert_false(problem.too_large);

    char below_a_file[160];
    write_bytes(f->path, "x", 1);
    snprintf(below_a_file, sizeof below_a_file, "%s/child", f->path);
    assert_int_equal(file_read_regular(below_a_file, 1024, &got, NULL), FILE_READ_MISSING);
}

static void directory_is_named(void **state)
{
    fixture *f = *state;
    file_contents got;
    file_problem problem;
    char expected[300];
    assert_int_equal(file_read_regular(f->dir, 1024, &got, &problem), FILE_READ_FAILED);
    assert_null(got.data);
    snprintf(expected, sizeof expected, "%s is a directory, not a file", f->dir);
    assert_string_equal(problem.message, expected);
    assert_string_equal(problem.not_regular, "a directory");
    assert_true(S_ISDIR(problem.mode));
    assert_int_equal(problem.error_number, 0);
}

/* --- FIFO: refused at once; a watchdog turns a hang into a failure --------- */

typedef struct {
    const char *path;
    pthread_mutex_t lock;
    pthread_cond_t done_changed;
    bool done;
    bool unblocked; /* the watchdog had to open the FIFO for writing */
} watchdog;

static void *watch(void *arg)
{
    watchdog *w = arg;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += WATCHDOG_S;
    pthread_mutex_lock(&w->lock);
    int rc = 0;
    while (!w->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&w->done_changed, &w->lock, &until);
    bool hung = !w->done;
    pthread_mutex_unlock(&w->lock);
    if (hung) {
        w->unblocked = true;
        int fd = open(w->path, O_WRONLY); /* releases a blocked open() for reading */
        if (fd >= 0)
            close(fd);
    }
    return NULL;
}

static void fifo_is_refused_without_waiting(void **state)
{
    fixture *f = *state;
    assert_int_equal(mkfifo(f->path, 0600), 0);
    watchdog w = {.path = f->path};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.done_changed, NULL);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, watch, &w), 0);

    file_contents got;
    file_problem problem;
    file_read_result result = file_read_regular(f->path, 1024, &got, &problem);

    pthread_mutex_lock(&w.lock);
    w.done = true;
    pthread_cond_signal(&w.done_changed);
    pthread_mutex_unlock(&w.lock);
    pthread_join(thread, NULL);
    pthread_cond_destroy(&w.done_changed);
    pthread_mutex_destroy(&w.lock);

    assert_false(w.unblocked);
    assert_int_equal(result, FILE_READ_FAILED);
    char expected[300];
    snprintf(expected, sizeof expected, "%s is not a regular file (a FIFO)", f->path);
    assert_string_equal(problem.message, expected);
    file_contents_wipe(&got);
}

static void size_is_bounded(void **state)
{
    fixture *f = *state;
    char data[100];
    memset(data, 'x', sizeof data);
    write_bytes(f->path, data, sizeof data);
    file_contents got;
    file_problem problem;
    char expected[300];
    assert_int_equal(file_read_regular(f->path, 100, &got, &problem), FILE_READ_OK);
    assert_int_equal(got.len, 100);
    file_contents_wipe(&got);
    assert_int_equal(file_read_regular(f->path, 99, &got, &problem), FILE_READ_FAILED);
    assert_null(got.data);
    snprintf(expected, sizeof expected, "%s is larger than 99 bytes", f->path);
    assert_string_equal(problem.message, expected);
    assert_true(problem.too_large);
    assert_int_equal(problem.max_bytes, 99);
}

/* /proc files say size 0 and still have content: read to the end, bounded. */
static void size_zero_files_are_read_to_the_end(void **state)
{
    (void)state;
    file_contents got;
    file_problem problem;
    assert_int_equal(file_read_regular("/proc/self/status", 1 << 20, &got, &problem), FILE_READ_OK);
    assert_true(got.len > 100);
    assert_non_null(strstr(got.data, "Name:"));
    assert_int_equal(strlen(got.data), got.len);
    file_contents_wipe(&got);
    assert_int_equal(file_read_regular("/proc/self/status", 10, &got, &problem), FILE_READ_FAILED);
    assert_non_null(strstr(problem.message, "is larger than 10 bytes"));
}

static void check_opens_and_reads_nothing(void **state)
{
    fixture *f = *state;
    file_problem problem;
    assert_int_equal(file_check_regular(f->path, &problem), FILE_READ_MISSING);
    assert_int_equal(problem.error_number, ENOENT);
    write_bytes(f->path, "pem", 3);
    assert_int_equal(file_check_regular(f->path, &problem), FILE_READ_OK);
    assert_string_equal(problem.message, "");
    assert_int_equal(file_check_regular(f->dir, &problem), FILE_READ_FAILED);
    assert_string_equal(problem.not_regular, "a directory");
    unlink(f->path);
    assert_int_equal(mkfifo(f->path, 0600), 0);
    assert_int_equal(file_check_regular(f->path, &problem), FILE_READ_FAILED); /* no wait */
    assert_string_equal(problem.not_regular, "a FIFO");
}

static void stream_is_read_to_its_end_bounded(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "plugin_data {}\n", 15), 15);
    close(fds[1]);
    file_contents got;
    file_problem problem;
    assert_int_equal(file_read_stream(fds[0], "-", 100, &got, &problem), FILE_READ_OK);
    assert_int_equal(got.len, 15);
    assert_string_equal(got.data, "plugin_data {}\n");
    file_contents_wipe(&got);
    close(fds[0]);

    assert_int_equal(pipe(fds), 0);
    assert_int_equal(write(fds[1], "0123456789", 10), 10);
    close(fds[1]);
    assert_int_equal(file_read_stream(fds[0], "-", 9, &got, &problem), FILE_READ_FAILED);
    assert_null(got.data);
    assert_true(problem.too_large);
    assert_string_equal(problem.message, "- is larger than 9 bytes");
    close(fds[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(reads_content_and_length, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_and_unreadable, setup, teardown),
        cmocka_unit_test_setup_teardown(directory_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(fifo_is_refused_without_waiting, setup, teardown),
        cmocka_unit_test_setup_teardown(size_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(size_zero_files_are_read_to_the_end, setup, teardown),
        cmocka_unit_test_setup_teardown(check_opens_and_reads_nothing, setup, teardown),
        cmocka_unit_test(stream_is_read_to_its_end_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
