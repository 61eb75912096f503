/* Unit tests for the hclog JSON line logger: the format go-plugin parses
 * (string @level/@message, six-digit UTC @timestamp), levels and escaping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static json_t *parse_line(const char *line)
{
    json_error_t error;
    json_t *value = json_loads(line, 0, &error);
    assert_non_null(value);
    return value;
}

static void test_line_has_hclog_keys(void **state)
{
    (void)state;
    const char *fields[] = {"key_id", "x509-CA-A", NULL};
    char *line = log_format_line(LOG_WARN, "kms", "key rotated", fields);
    assert_non_null(line);
    assert_int_equal(line[strlen(line) - 1], '\n');
    json_t *object = parse_line(line);
    assert_string_equal(json_string_value(json_object_get(object, "@level")), "warn");
    assert_string_equal(json_string_value(json_object_get(object, "@message")), "key rotated");
    assert_string_equal(json_string_value(json_object_get(object, "@module")), "kms");
    assert_string_equal(json_string_value(json_object_get(object, "key_id")), "x509-CA-A");

    regex_t layout;
    assert_int_equal(regcomp(&layout,
                             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    const char *timestamp = json_string_value(json_object_get(object, "@timestamp"));
    assert_non_null(timestamp);
    assert_int_equal(regexec(&layout, timestamp, 0, NULL, 0), 0);
    regfree(&layout);
    json_decref(object);
    free(line);
}

static void test_invalid_utf8_still_gives_string_message(void **state)
{
    (void)state;
    const char *fields[] = {NULL};
    char *line = log_format_line(LOG_ERROR, NULL, "bad \xff byte \"quoted\"\n", fields);
    json_t *object = parse_line(line);
    const char *message = json_string_value(json_object_get(object, "@message"));
    assert_non_null(message);
    assert_non_null(strstr(message, "\"quoted\""));
    assert_null(strchr(message, '\xff'));
    json_decref(object);
    free(line);
}

static void test_fields_cannot_override_reserved_keys(void **state)
{
    (void)state;
    const char *fields[] = {"@level", "error", "@message", "spoof", NULL};
    char *line = log_format_line(LOG_INFO, "x", "real", fields);
    json_t *object = parse_line(line);
    assert_string_equal(json_string_value(json_object_get(object, "@level")), "info");
    assert_string_equal(json_string_value(json_object_get(object, "@message")), "real");
    json_decref(object);
    free(line);
}

static void test_levels_parse_and_filter(void **state)
{
    (void)state;
    log_level level;
    assert_true(log_parse_level("DEBUG", &level));
    assert_int_equal(level, LOG_DEBUG);
    assert_true(log_parse_level("warning", &level));
    assert_int_equal(level, LOG_WARN);
    assert_false(log_parse_level("verbose", &level));
    assert_false(log_parse_level(NULL, &level));

    log_set_level(LOG_WARN);
    assert_false(log_enabled(LOG_INFO));
    assert_true(log_enabled(LOG_ERROR));
    log_set_level(LOG_INFO);
}

static void test_write_respects_level_and_writes_one_line(void **state)
{
    (void)state;
    int pipe_fds[2];
    assert_int_equal(pipe(pipe_fds), 0);
    log_set_fd(pipe_fds[1]);
    log_set_level(LOG_INFO);
    log_write(LOG_DEBUG, "t", "hidden", LOG_END);
    log_write(LOG_INFO, "t", "shown", "n", "1", LOG_END);
    log_writef(LOG_ERROR, "t", "count=%d", 7);
    log_set_fd(-1);
    close(pipe_fds[1]);

    char buffer[4096] = {0};
    ssize_t total = 0, got;
    while ((got = read(pipe_fds[0], buffer + total, sizeof buffer - 1 - (size_t)total)) > 0)
        total += got;
    close(pipe_fds[0]);
    assert_null(strstr(buffer, "hidden"));
    char *second = strchr(buffer, '\n');
    assert_non_null(second);
    char *first_line = strndup(buffer, (size_t)(second - buffer));
    json_t *first = parse_line(first_line);
    assert_string_equal(json_string_value(json_object_get(first, "n")), "1");
    json_decref(first);
    free(first_line);
    assert_non_null(strstr(second + 1, "\"count=7\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_has_hclog_keys),
        cmocka_unit_test(test_invalid_utf8_still_gives_string_message),
        cmocka_unit_test(test_fields_cannot_override_reserved_keys),
        cmocka_unit_test(test_levels_parse_and_filter),
        cmocka_unit_test(test_write_respects_level_and_writes_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
