/* Unit tests for common/hex.h: lowercase digits, every byte value, the NUL
 * after them, nothing written for no bytes but the NUL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "common/hex.h"

static void lowercase_digits_of_each_byte(void **state)
{
    (void)state;
    const uint8_t bytes[] = {0x00, 0x0f, 0x10, 0xa5, 0xff};
    char out[2 * sizeof bytes + 1];
    memset(out, 'x', sizeof out);
    hex_encode(bytes, sizeof bytes, out);
    assert_string_equal(out, "000f10a5ff");
    for (int value = 0; value < 256; value++) {
        uint8_t byte = (uint8_t)value;
        char one[3], expected[3];
        hex_encode(&byte, 1, one);
        snprintf(expected, sizeof expected, "%02x", value);
        assert_string_equal(one, expected);
    }
}

static void no_bytes_is_the_empty_string(void **state)
{
    (void)state;
    char out[1] = {'x'};
    hex_encode(NULL, 0, out);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lowercase_digits_of_each_byte),
        cmocka_unit_test(no_bytes_is_the_empty_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
