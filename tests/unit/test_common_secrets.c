/* Unit tests for common/secrets.h: secret_realloc keeps the data, the
 * wiping free is what jansson uses after secrets_protect_process, and core
 * dumps are off (RLIMIT_CORE 0 with the hard limit kept, not dumpable) until
 * secrets_allow_core_dumps(true) restores the limits found at start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "common/secrets.h"

static void realloc_keeps_the_data(void **state)
{
    (void)state;
    char *text = secret_realloc(NULL, 8);
    assert_non_null(text);
    memcpy(text, "1234567", 8);
    text = secret_realloc(text, 4096);
    assert_non_null(text);
    assert_string_equal(text, "1234567");
    text = secret_realloc(text, 4);
    assert_non_null(text);
    assert_memory_equal(text, "1234", 4);
    assert_null(secret_realloc(text, 0)); /* freed */
    secret_free(NULL);
    secret_free_string(NULL);
    secret_free_string(strdup("a secret"));
    secret_wipe(NULL, 10);
}

static void core_dumps_off_then_back(void **state)
{
    (void)state;
    struct rlimit before;
    assert_int_equal(getrlimit(RLIMIT_CORE, &before), 0);
    /* A soft limit to come back to, below the hard one (raising is allowed). */
    struct rlimit start = {before.rlim_max == RLIM_INFINITY ? 4096 : before.rlim_max,
                           before.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_CORE, &start), 0);

    secrets_protect_process();
    json_malloc_t malloc_fn;
    json_free_t free_fn;
    json_get_alloc_funcs(&malloc_fn, &free_fn);
    assert_ptr_equal(free_fn, secret_free);
    json_t *value = json_string("a secret in a jansson string");
    json_decref(value);

    struct rlimit now;
    assert_int_equal(getrlimit(RLIMIT_CORE, &now), 0);
    assert_int_equal(now.rlim_cur, 0);
    assert_int_equal(now.rlim_max, start.rlim_max);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);

    assert_int_equal(secrets_allow_core_dumps(true), 0);
    assert_int_equal(getrlimit(RLIMIT_CORE, &now), 0);
    assert_int_equal(now.rlim_cur, start.rlim_cur);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);

    assert_int_equal(secrets_allow_core_dumps(false), 0);
    assert_int_equal(getrlimit(RLIMIT_CORE, &now), 0);
    assert_int_equal(now.rlim_cur, 0);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);

    assert_int_equal(secrets_allow_core_dumps(true), 0); /* as the test found it */
    json_set_alloc_funcs(malloc, free);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(realloc_keeps_the_data),
        cmocka_unit_test(core_dumps_off_then_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
