/* Checks doc/configuration.md against the schema table: every key has one
 * reference row with the table's type, required and default columns, advanced
 * keys sit under "### Advanced" and the others above it, and no row names a
 * key the table does not have. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/schema.h"

#define DOC_PATH TEST_DATA_DIR "/../../../doc/configuration.md"

enum { MAX_COLUMNS = 6 };

/* Splits "| a | b |" into trimmed cells (in place); returns the count. */
static int split_row(char *line, char *cells[MAX_COLUMNS])
{
    int count = 0;
    char *at = strchr(line, '|');
    while (at != NULL && count < MAX_COLUMNS) {
        char *start = at + 1, *end = strchr(start, '|');
        if (end == NULL)
            break;
        *end = '\0';
        while (*start == ' ')
            start++;
        for (char *back = end - 1; back >= start && *back == ' '; back--)
            *back = '\0';
        cells[count++] = start;
        at = end;
    }
    return count;
}

static void test_doc_matches_table(void **state)
{
    (void)state;
    FILE *doc = fopen(DOC_PATH, "r");
    assert_non_null(doc);
    size_t count;
    const schema_key *keys = schema_keys(&count);
    int *rows = calloc(count, sizeof *rows);
    bool advanced_section = false;
    char line[4096];
    while (fgets(line, sizeof line, doc) != NULL) {
        if (strncmp(line, "### ", 4) == 0 || strncmp(line, "## ", 3) == 0)
            advanced_section = strncmp(line, "### Advanced", 12) == 0;
        if (strncmp(line, "| `", 3) != 0)
            continue;
        char *cells[MAX_COLUMNS];
        assert_int_equal(split_row(line, cells), 5);
        char name[128];
        assert_int_equal(sscanf(cells[0], "`%127[^`]`", name), 1);
        const schema_key *key = schema_find(name);
        if (key == NULL)
            fail_msg("doc row for \"%s\", which the schema does not have", name);
        rows[key - keys]++;
        assert_string_equal(cells[1], schema_type_name(key->type));
        assert_string_equal(cells[2], key->required);
        assert_string_equal(cells[3], key->default_text ? key->default_text : "");
        if (advanced_section != ((key->flags & SCHEMA_ADVANCED) != 0))
            fail_msg("%s is documented in the wrong section", name);
    }
    fclose(doc);
    for (size_t i = 0; i < count; i++)
        if (rows[i] != 1)
            fail_msg("%s has %d reference rows, want 1", keys[i].name, rows[i]);
    free(rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doc_matches_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
