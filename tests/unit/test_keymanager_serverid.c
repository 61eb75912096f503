/* Unit tests for the server id file (serverid.c): UUID parsing, creation
 * (0600, a v4 UUID, no temp files left), errors that name the path (and the
 * character that does not belong) and leave a corrupt file unchanged; a FIFO,
 * directory or device at the path is an error, never a hang; racing creators
 * agree on one id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "keymanager/serverid.h"

typedef struct {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/km-serverid-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof f->path, "%s/key_metadata", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    DIR *dir = opendir(f->dir);
    struct dirent *entry;
    while (dir != NULL && (entry = readdir(dir)) != NULL) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", f->dir, entry->d_name);
        if (entry->d_name[0] != '.' || strlen(entry->d_name) > 2)
            unlink(path);
    }
    if (dir != NULL)
        closedir(dir);
    chmod(f->dir, 0700);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_text(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    fclose(file);
}

static char *read_text(const char *path)
{
    static char buffer[512];
    FILE *file = fopen(path, "r");
    assert_non_null(file);
    size_t n = fread(buffer, 1, sizeof buffer - 1, file);
    buffer[n] = '\0';
    fclose(file);
    return buffer;
}

static int count_entries(const char *dir_path)
{
    DIR *dir = opendir(dir_path);
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        n += strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0;
    closedir(dir);
    return n;
}

static void test_parse_forms(void **state)
{
    (void)state;
    char out[SERVERID_LEN + 1];
    const char *canonical = "0f8fad5b-d9cb-469f-a165-70867728950e";
    const char *forms[] = {
        "0f8fad5b-d9cb-469f-a165-70867728950e",   "0F8FAD5B-D9CB-469F-A165-70867728950E",
        "{0f8fad5b-d9cb-469f-a165-70867728950e}", "urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e",
        "0f8fad5bd9cb469fa16570867728950e",       "  0f8fad5b-d9cb-469f-a165-70867728950e\n"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        assert_true(serverid_parse(forms[i], out));
        assert_string_equal(out, canonical);
    }
    const char *bad[] = {"",
                         "not-a-uuid",
                         "0f8fad5b-d9cb-469f-a165-70867728950",
                         "0f8fad5b-d9cb-469f-a165-70867728950e0",
                         "0f8fad5bd9cb-469f-a165-70867728950e-",
                         "0f8fad5b-d9cb-469f-a165-70867728950g",
                         "0f8fad5b-d9cb-469f-a165-70867728950e\nextra"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(serverid_parse(bad[i], out));
}

static void test_generate_is_v4(void **state)
{
    (void)state;
    char a[SERVERID_LEN + 1];
    char b[SERVERID_LEN + 1];
    assert_true(serverid_generate(a));
    assert_true(serverid_generate(b));
    assert_string_not_equal(a, b);
    assert_int_equal(strlen(a), SERVERID_LEN);
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));
    char parsed[SERVERID_LEN + 1];
    assert_true(serverid_parse(a, parsed));
    assert_string_equal(parsed, a);
}

static void test_creates_missing_file(void **state)
{
    fixture *f = *state;
    char id[SERVERID_LEN + 1];
    km_status status = {0};
    assert_int_equal(serverid_load_or_create(f->path, id, &status), 0);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_string_equal(read_text(f->path), id);
    assert_int_equal(count_entries(f->dir), 1); /* no temp file left behind */
    char again[SERVERID_LEN + 1];
    assert_int_equal(serverid_load_or_create(f->path, again, &status), 0);
    assert_string_equal(again, id);
}

static void test_reads_existing_file(void **state)
{
    fixture *f = *state;
    write_text(f->path, "6BA7B810-9DAD-11D1-80B4-00C04FD430C8\n");
    char id[SERVERID_LEN + 1];
    km_status status = {0};
    assert_int_equal(serverid_load_or_create(f->path, id, &status), 0);
    assert_string_equal(id, "6ba7b810-9dad-11d1-80b4-00c04fd430c8");
}

static void test_corrupt_file_is_an_error_and_kept(void **state)
{
    fixture *f = *state;
    write_text(f->path, "garbage\n");
    char id[SERVERID_LEN + 1];
    km_status status = {0};
    assert_int_equal(serverid_load_or_create(f->path, id, &status), -1);
    assert_non_null(strstr(status.message, f->path));
    assert_non_null(strstr(status.message, "UUID"));
    assert_int_equal(status.code, GRPC_STATUS_INTERNAL);
    assert_string_equal(read_text(f->path), "garbage\n");
    write_text(f->path, "");
    assert_int_equal(serverid_load_or_create(f->path, id, &status), -1);
    assert_string_equal(read_text(f->path), "");
}

static void test_corrupt_file_names_the_character(void **state)
{
    fixture *f = *state;
    char id[SERVERID_LEN + 1];
    km_status status = {0};
    char want[512];
    const struct {
        const char *content;
        const char *what;
    } cases[] = {
        {"prod/server-1\n", "character 'p' at position 1 is not a hexadecimal digit or '-'"},
        {"0f8fad5b-d9cb/469f-a165-70867728950e", "character '/' at position 14 is not a "
                                                 "hexadecimal digit or '-'"},
        {"  0f8fad5b-d9cb-469f-a165-7086772895\x01"
         "e",
         "byte 0x01 at position 37 is not a hexadecimal digit or '-'"},
        {"0f8fad5b-d9cb-469f-a165-70867728950", "it has 35 characters where a UUID has 36 "
                                                "(8-4-4-4-12) or 32"},
        {"\n\n", "it is empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(f->path, cases[i].content);
        assert_int_equal(serverid_load_or_create(f->path, id, &status), -1);
        snprintf(want, sizeof want,
                 "server id file %s does not hold a UUID: %s (fix or remove it; removing it "
                 "gives this server a new id and new keys)",
                 f->path, cases[i].what);
        assert_string_equal(status.message, want);
        assert_string_equal(read_text(f->path), cases[i].content);
    }
}

static void test_unreadable_paths_are_errors(void **state)
{
    fixture *f = *state;
    char id[SERVERID_LEN + 1];
    km_status status = {0};
    char want[512];
    /* A directory where the file should be. */
    assert_int_equal(mkdir(f->path, 0700), 0);
    assert_int_equal(serverid_load_or_create(f->path, id, &status), -1);
    snprintf(want, sizeof want, "server id file %s is a directory, not a regular file", f->path);
    assert_string_equal(status.message, want);
    rmdir(f->path);
    /* A FIFO nobody writes to: an error at once, not a hang. */
    assert_int_equal(mkfifo(f->path, 0600), 0);
    assert_int_equal(serverid_load_or_create(f->path, id, &status), -1);
    snprintf(want, sizeof want, "server id file %s is a FIFO, not a regular file", f->path);
    assert_string_equal(status.message, want);
    unlink(f->path);
    /* A device that never ends. */
    assert_int_equal(serverid_load_or_create("/dev/zero", id, &status), -1);
    assert_string_equal(status.message,
                        "server id file /dev/zero is a device or special file, not a "
                        "regular file");
    /* A symbolic link to a regular file is followed. */
    char target[256];
    snprintf(target, sizeof target, "%s/real", f->dir);
    write_text(target, "6ba7b810-9dad-11d1-80b4-00c04fd430c8");
    assert_int_equal(symlink(target, f->path), 0);
    assert_int_equal(serverid_load_or_create(f->path, id, &status), 0);
    assert_string_equal(id, "6ba7b810-9dad-11d1-80b4-00c04fd430c8");
    unlink(f->path);
    /* A missing parent directory: cannot create. */
    char missing[256];
    snprintf(missing, sizeof missing, "%s/nope/key_metadata", f->dir);
    assert_int_equal(serverid_load_or_create(missing, id, &status), -1);
    assert_non_null(strstr(status.message, missing));
}

enum { CREATORS = 8 };

typedef struct {
    const char *path;
    pthread_barrier_t *start;
    char id[SERVERID_LEN + 1];
    int rc;
} creator;

static void *create_racing(void *arg)
{
    creator *c = arg;
    km_status status = {0};
    pthread_barrier_wait(c->start);
    c->rc = serverid_load_or_create(c->path, c->id, &status);
    return NULL;
}

/* Servers started together on one new id file: one creates it, the others
 * read its id; the file holds that id and no temp file is left. */
static void test_racing_creators_agree_on_one_id(void **state)
{
    fixture *f = *state;
    for (int round = 0; round < 20; round++) {
        unlink(f->path);
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, CREATORS);
        creator creators[CREATORS];
        pthread_t threads[CREATORS];
        for (int i = 0; i < CREATORS; i++) {
            creators[i] = (creator){.path = f->path, .start = &start, .rc = -2};
            assert_int_equal(pthread_create(&threads[i], NULL, create_racing, &creators[i]), 0);
        }
        for (int i = 0; i < CREATORS; i++)
            pthread_join(threads[i], NULL);
        pthread_barrier_destroy(&start);
        for (int i = 0; i < CREATORS; i++) {
            assert_int_equal(creators[i].rc, 0);
            assert_string_equal(creators[i].id, creators[0].id);
        }
        assert_string_equal(read_text(f->path), creators[0].id);
        assert_int_equal(count_entries(f->dir), 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_forms),
        cmocka_unit_test(test_generate_is_v4),
        cmocka_unit_test_setup_teardown(test_creates_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_existing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_file_is_an_error_and_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_file_names_the_character, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_paths_are_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_racing_creators_agree_on_one_id, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
