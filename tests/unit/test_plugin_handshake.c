/* Unit tests for the go-plugin handshake: PLUGIN_PROTOCOL_VERSIONS parsing,
 * the handshake line, the socket directory choice and creation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin/handshake.h"

static void test_versions_unset_or_empty_accept(void **state)
{
    (void)state;
    assert_true(handshake_version_offered(NULL, 1));
    assert_true(handshake_version_offered("", 1));
}

static void test_versions_list(void **state)
{
    (void)state;
    assert_true(handshake_version_offered("1", 1));
    assert_true(handshake_version_offered("2,1", 1));
    assert_true(handshake_version_offered("1,2,3", 1));
    assert_true(handshake_version_offered("x,1", 1));
    assert_true(handshake_version_offered("3, 1", 1));
    assert_false(handshake_version_offered("2", 1));
    assert_false(handshake_version_offered("2,3", 1));
    assert_false(handshake_version_offered("11", 1));
    assert_false(handshake_version_offered("1x", 1));
    assert_false(handshake_version_offered("x", 1));
    assert_false(handshake_version_offered(",", 1));
}

static void test_line_format(void **state)
{
    (void)state;
    char line[256];
    int n = handshake_format_line(line, sizeof line, "/tmp/d/plugin.sock", false);
    assert_string_equal(line, "1|1|unix|/tmp/d/plugin.sock|grpc|\n");
    assert_int_equal(n, (int)strlen(line));
    handshake_format_line(line, sizeof line, "/tmp/d/plugin.sock", true);
    assert_string_equal(line, "1|1|unix|/tmp/d/plugin.sock|grpc||false\n");
}

static void test_line_too_long(void **state)
{
    (void)state;
    char line[16];
    assert_int_equal(handshake_format_line(line, sizeof line, "/tmp/d/plugin.sock", false), -1);
}

static void test_base_dir_order(void **state)
{
    (void)state;
    setenv("PLUGIN_UNIX_SOCKET_DIR", "/run/a", 1);
    setenv("TMPDIR", "/run/b", 1);
    assert_string_equal(handshake_base_dir(), "/run/a");
    setenv("PLUGIN_UNIX_SOCKET_DIR", "", 1);
    assert_string_equal(handshake_base_dir(), "/run/b");
    unsetenv("PLUGIN_UNIX_SOCKET_DIR");
    unsetenv("TMPDIR");
    assert_string_equal(handshake_base_dir(), "/tmp");
}

static void test_make_socket_dir(void **state)
{
    (void)state;
    char base[] = "/tmp/handshake-test-XXXXXX";
    assert_non_null(mkdtemp(base));
    handshake_socket socket;
    char error[256];
    assert_int_equal(handshake_make_socket_dir(base, &socket, error, sizeof error), 0);
    struct stat info;
    assert_int_equal(stat(socket.dir, &info), 0);
    assert_int_equal(info.st_mode & 0777, 0700);
    assert_int_equal(strncmp(socket.dir, base, strlen(base)), 0);
    assert_int_equal(strncmp(socket.path, socket.dir, strlen(socket.dir)), 0);
    assert_string_equal(socket.path + strlen(socket.dir), "/plugin.sock");

    handshake_socket second;
    assert_int_equal(handshake_make_socket_dir(base, &second, error, sizeof error), 0);
    assert_string_not_equal(second.dir, socket.dir);

    handshake_remove_socket_dir(&socket);
    handshake_remove_socket_dir(&second);
    assert_int_not_equal(stat(socket.dir, &info), 0);
    assert_int_equal(rmdir(base), 0);
}

static void test_socket_path_too_long(void **state)
{
    (void)state;
    char base[200];
    memset(base, 'a', sizeof base - 1);
    base[0] = '/';
    base[sizeof base - 1] = '\0';
    handshake_socket socket;
    char error[256];
    assert_int_equal(handshake_make_socket_dir(base, &socket, error, sizeof error), -1);
    assert_non_null(strstr(error, "too long"));
}

static void test_missing_base_dir(void **state)
{
    (void)state;
    handshake_socket socket;
    char error[256];
    assert_int_equal(handshake_make_socket_dir("/nonexistent/dir", &socket, error, sizeof error),
                     -1);
    assert_non_null(strstr(error, "/nonexistent/dir"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_versions_unset_or_empty_accept),
        cmocka_unit_test(test_versions_list),
        cmocka_unit_test(test_line_format),
        cmocka_unit_test(test_line_too_long),
        cmocka_unit_test(test_base_dir_order),
        cmocka_unit_test(test_make_socket_dir),
        cmocka_unit_test(test_socket_path_too_long),
        cmocka_unit_test(test_missing_base_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
