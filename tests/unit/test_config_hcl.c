/* Unit tests for the HCL v1 / JSON parser: tables of inputs and the tree they
 * give (dumped as compact text with key positions), and of bad inputs and the
 * exact line:column error they give. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/hcl.h"

typedef struct {
    char *text;
    size_t used;
    size_t size;
} dump_buffer;

static void put(dump_buffer *b, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void put(dump_buffer *b, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    int n = vsnprintf(NULL, 0, format, args);
    va_end(args);
    if (b->used + (size_t)n + 1 > b->size) {
        b->size = (b->used + (size_t)n + 1) * 2;
        b->text = realloc(b->text, b->size);
    }
    va_start(args, format);
    vsnprintf(b->text + b->used, b->size - b->used, format, args);
    va_end(args);
    b->used += (size_t)n;
}

static void dump_string(dump_buffer *b, const char *s)
{
    put(b, "\"");
    for (; *s; s++) {
        if (*s == '\n')
            put(b, "\\n");
        else if (*s == '\t')
            put(b, "\\t");
        else if (*s == '"' || *s == '\\')
            put(b, "\\%c", *s);
        else
            put(b, "%c", *s);
    }
    put(b, "\"");
}

/* {key@line:col=value,...}; lists [a,b]; strings quoted; floats %g. */
static void dump_value(dump_buffer *b, const hcl_value *v)
{
    switch (v->kind) {
    case HCL_STRING:
        dump_string(b, v->as.string);
        break;
    case HCL_INT:
        put(b, "%lld", (long long)v->as.integer);
        break;
    case HCL_FLOAT:
        put(b, "%gf", v->as.number);
        break;
    case HCL_BOOL:
        put(b, v->as.boolean ? "true" : "false");
        break;
    case HCL_LIST:
        put(b, "[");
        for (size_t i = 0; i < v->as.list.count; i++) {
            put(b, i ? "," : "");
            dump_value(b, v->as.list.values[i]);
        }
        put(b, "]");
        break;
    case HCL_OBJECT:
        put(b, "{");
        for (size_t i = 0; i < v->as.object.count; i++) {
            const hcl_item *item = &v->as.object.items[i];
            put(b, "%s%s@%d:%d=", i ? "," : "", item->key, item->line, item->column);
            dump_value(b, item->value);
        }
        put(b, "}");
        break;
    }
}

static char *parse_and_dump(const char *input, hcl_error *error)
{
    hcl_value *tree = hcl_parse(input, strlen(input), error);
    if (tree == NULL)
        return NULL;
    dump_buffer b = {0};
    dump_value(&b, tree);
    hcl_free(tree);
    return b.text;
}

typedef struct {
    const char *input;
    const char *tree;
} good_case;

static const good_case good_cases[] = {
    /* wire.md section 4, printer output verbatim */
    {"region = \"us-east-2\"\n\nkey_metadata_file = \"./key_metadata\"",
     "{region@1:1=\"us-east-2\",key_metadata_file@3:1=\"./key_metadata\"}"},
    {"region = \"us-east-2\"\n\nkey_metadata_file = \"./key_metadata\"\n\nkey_tags {\n  team = "
     "\"x\"\n}\n\nallowed_regions = [\"us-east-1\", \"us-east-2\"]",
     "{region@1:1=\"us-east-2\",key_metadata_file@3:1=\"./key_metadata\",key_tags@5:1={team@6:3="
     "\"x\"},allowed_regions@9:1=[\"us-east-1\",\"us-east-2\"]}"},
    {"key_tags = {\n  team = \"x\"\n}", "{key_tags@1:1={team@2:3=\"x\"}}"},
    /* one line, as operators write plugin_data { ... } */
    {"region = \"us-east-2\"  key_metadata_file = \"./key_metadata\"",
     "{region@1:1=\"us-east-2\",key_metadata_file@1:23=\"./key_metadata\"}"},
    /* surrounding braces */
    {"{ region = \"a\" }", "{region@1:3=\"a\"}"},
    {"  {\n}\n", "{}"},
    {"", "{}"},
    {"# only a comment\n", "{}"},
    /* quoted keys, commas between items */
    {"\"region\" = \"a\", b = 1,", "{region@1:1=\"a\",b@1:17=1}"},
    /* escapes */
    {"s = \"a\\nb\\t\\\"q\\\" \\\\ \\u00e9 \\U0001F600 \\/\"",
     "{s@1:1=\"a\\nb\\t\\\"q\\\" \\\\ \xC3\xA9 \xF0\x9F\x98\x80 /\"}"},
    {"s = \"${var.x}\"", "{s@1:1=\"${var.x}\"}"},
    {"s = \"\"", "{s@1:1=\"\"}"},
    /* numbers */
    {"a = 42\nb = -7\nc = 1.5\nd = -0.25\ne = 1e3\nf = 0x1F\ng = 010",
     "{a@1:1=42,b@2:1=-7,c@3:1=1.5f,d@4:1=-0.25f,e@5:1=1000f,f@6:1=31,g@7:1=8}"},
    {"big = 9223372036854775807", "{big@1:1=9223372036854775807}"},
    /* booleans */
    {"t = true\nf = false", "{t@1:1=true,f@2:1=false}"},
    /* lists */
    {"l = [1, \"two\", true, [3], { x = 1 },]", "{l@1:1=[1,\"two\",true,[3],{x@1:29=1}]}"},
    {"l = []", "{l@1:1=[]}"},
    {"l = [\n  \"a\",\n  \"b\"\n]", "{l@1:1=[\"a\",\"b\"]}"},
    /* comments of each kind */
    {"# hash\na = 1 // slashes\n/* block\n comment */ b = 2", "{a@2:1=1,b@4:13=2}"},
    {"a /* inside */ = /* here */ 1", "{a@1:1=1}"},
    /* nested blocks and labelled blocks */
    {"outer {\n  inner {\n    x = 1\n  }\n}", "{outer@1:1={inner@2:3={x@3:5=1}}}"},
    {"block \"label\" { x = 1 }", "{block@1:1={label@1:7={x@1:17=1}}}"},
    {"block a \"b\" { }", "{block@1:1={a@1:7={b@1:9={}}}}"},
    /* duplicates are all kept (the schema decides) */
    {"a = 1\na = 2", "{a@1:1=1,a@2:1=2}"},
    /* heredocs */
    {"p = <<EOF\n{\n  \"a\": 1\n}\nEOF\n", "{p@1:1=\"{\\n  \\\"a\\\": 1\\n}\\n\"}"},
    {"p = <<-EOT\n    line one\n      two\n    EOT\nq = 1",
     "{p@1:1=\"line one\\n  two\\n\",q@5:1=1}"},
    {"p = <<-EOT\n    a\n\n    b\n    EOT", "{p@1:1=\"a\\n\\nb\\n\"}"},
    {"p = <<-EOT\n  a\n b\n  EOT", "{p@1:1=\"  a\\n b\\n\"}"},
    {"p = <<EOF\r\nx\r\nEOF\r\n", "{p@1:1=\"x\\n\"}"},
    {"p = <<EOF\nEOF", "{p@1:1=\"\"}"},
    /* CRLF line ends */
    {"a = 1\r\nb = \"x\"\r\n", "{a@1:1=1,b@2:1=\"x\"}"},
    /* UTF-8 keys and values; columns count characters */
    {"\"t\xC3\xA9\" = \"\xC3\xA9\" x = 1", "{t\xC3\xA9@1:1=\"\xC3\xA9\",x@1:12=1}"},
    /* JSON */
    {"{\"region\": \"us-east-2\", \"key_tags\": {\"team\": \"a\"}, \"n\": 3, \"l\": [1, 2.5], "
     "\"b\": false}",
     "{region@1:2=\"us-east-2\",key_tags@1:25={team@1:38=\"a\"},n@1:52=3,l@1:60=[1,2.5f],b@1:"
     "75=false}"},
    {"{}", "{}"},
    {"\n  {\n    \"a\": \"b\"\n  }\n", "{a@3:5=\"b\"}"},
    {"{\"s\": \"\\u00e9\\ud83d\\ude00\"}", "{s@1:2=\"\xC3\xA9\xF0\x9F\x98\x80\"}"},
};

static void test_good_inputs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
        hcl_error error;
        char *tree = parse_and_dump(good_cases[i].input, &error);
        if (tree == NULL)
            fail_msg("case %zu: %s", i, error.message);
        if (strcmp(tree, good_cases[i].tree) != 0)
            fail_msg("case %zu:\n got  %s\n want %s", i, tree, good_cases[i].tree);
        free(tree);
    }
}

typedef struct {
    const char *input;
    const char *message;
} bad_case;

static const bad_case bad_cases[] = {
    {"region = \"a\"\n\n  region \"us-east-2\"",
     "3:10: expected '=' or '{' after key \"region\", found string"},
    {"a = ", "1:5: expected a value for key \"a\", found end of input"},
    {"a = b", "1:5: expected a value for key \"a\" (quote strings), found identifier"},
    {"a = \"x", "1:5: string not terminated (missing '\"' on this line)"},
    {"a = \"x\ny\"", "1:5: string not terminated (missing '\"' on this line)"},
    {"a = \"\\q\"", "1:6: unknown escape sequence in string"},
    {"a = \"\\u12\"", "1:6: invalid unicode escape (expected hex digits)"},
    {"a = \"\\ud800\"", "1:6: invalid unicode escape (not a character)"},
    {"a = \"\\u0000\"", "1:6: NUL character not allowed in strings"},
    {"a = 6h", "1:5: invalid number (a duration such as 6h must be quoted: \"6h\")"},
    {"a = 1e", "1:5: invalid number: exponent has no digits"},
    {"a = 99999999999999999999", "1:5: number out of range"},
    {"a = 08", "1:5: invalid number"},
    {"a = [1 2]", "1:8: expected ',' or ']' in list, found number"},
    {"a = [1,", "1:8: expected a value for key \"a\", found end of input"},
    {"a { b = 1", "1:10: expected a key or '}', found end of input"},
    {"a = 1 }", "1:7: expected a key, found '}'"},
    {"{ a = 1", "1:8: expected a key or '}', found end of input"},
    {"{ a = 1 } b = 2", "1:11: expected end of input, found identifier"},
    {"= 1", "1:1: expected a key, found '='"},
    {"a = 1 /* open", "1:7: comment not terminated (missing \"*/\")"},
    {"a = 1 / 2", "1:7: unexpected character '/'"},
    {"a = @", "1:5: unexpected character '@'"},
    {"a = <<EOF\nx\n", "1:5: heredoc not terminated (no line holding only its anchor)"},
    {"a = <<EOF x\nEOF", "1:5: heredoc anchor must be followed by a newline"},
    {"a = <<\nEOF", "1:5: heredoc needs an anchor, as in <<EOF"},
    {"a = \"\xC3\"", "1:6: invalid UTF-8 in configuration"},
    {"a = \"\xED\xA0\x80\"", "1:6: invalid UTF-8 in configuration"},
    {"a b = 1", "1:3: expected '=' or '{' after key \"a\", found identifier"},
    {"a = 1 = 2", "1:7: expected a key, found '='"},
    /* JSON */
    {"{\"a\": 1,}", "1:9: expected a quoted key, found '}'"},
    {"{\"a\": 1 \"b\": 2}", "1:9: expected ',' or '}' in object, found string"},
    {"{\"a\": null}", "1:7: null is not supported (key \"a\"): leave the key out instead"},
    {"{\"a\": [1 2]}", "1:10: expected ',' or ']' in array, found number"},
    {"{\"a\": 1}\n{}", "2:1: expected end of input, found '{'"},
    {"{\"a\": b}", "1:7: expected a JSON value for key \"a\", found identifier"},
    {"{\"a\" 1}", "1:6: expected '=' or '{' after key \"a\", found number"},
};

static void test_bad_inputs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        hcl_error error;
        char *tree = parse_and_dump(bad_cases[i].input, &error);
        if (tree != NULL)
            fail_msg("case %zu: parsed as %s", i, tree);
        if (strcmp(error.message, bad_cases[i].message) != 0)
            fail_msg("case %zu:\n got  %s\n want %s", i, error.message, bad_cases[i].message);
    }
}

static void test_nul_byte_is_an_error(void **state)
{
    (void)state;
    hcl_error error;
    assert_null(hcl_parse("a = 1\n\0b", 9, &error));
    assert_string_equal(error.message, "2:1: NUL byte in configuration");
}

static char *repeat(const char *piece, size_t times, const char *tail)
{
    size_t piece_length = strlen(piece), tail_length = strlen(tail);
    char *text = malloc(piece_length * times + tail_length + 1);
    for (size_t i = 0; i < times; i++)
        memcpy(text + i * piece_length, piece, piece_length);
    memcpy(text + piece_length * times, tail, tail_length + 1);
    return text;
}

static void test_depth_limit(void **state)
{
    (void)state;
    hcl_error error;
    /* 64 nested lists are fine, 65 are not */
    char *fine = repeat("[", HCL_MAX_DEPTH, "");
    char *text = malloc(strlen(fine) * 2 + 8);
    sprintf(text, "a = %s", fine);
    for (int i = 0; i < HCL_MAX_DEPTH; i++)
        strcat(text, "]");
    hcl_value *tree = hcl_parse(text, strlen(text), &error);
    assert_non_null(tree);
    hcl_free(tree);
    free(text);
    free(fine);

    char *deep = repeat("a {", 100000, "");
    assert_null(hcl_parse(deep, strlen(deep), &error));
    assert_string_equal(error.message, "1:195: nesting deeper than 64 levels");
    free(deep);

    char *deep_json = repeat("{\"a\":", 100000, "");
    assert_null(hcl_parse(deep_json, strlen(deep_json), &error));
    assert_string_equal(error.message, "1:326: nesting deeper than 64 levels");
    free(deep_json);

    char *labels = repeat(" a", 1000, " {}");
    char *labelled = malloc(strlen(labels) + 2);
    sprintf(labelled, "k%s", labels);
    assert_null(hcl_parse(labelled, strlen(labelled), &error));
    assert_string_equal(error.message, "1:131: nesting deeper than 64 levels");
    free(labelled);
    free(labels);
}

static void test_size_limit(void **state)
{
    (void)state;
    hcl_error error;
    char *big = repeat(" ", HCL_MAX_INPUT + 1, "");
    assert_null(hcl_parse(big, strlen(big), &error));
    assert_string_equal(error.message, "configuration is larger than 1048576 bytes");
    big[HCL_MAX_INPUT] = '\0';
    hcl_value *tree = hcl_parse(big, strlen(big), &error);
    assert_non_null(tree);
    hcl_free(tree);
    free(big);
}

static void test_errors_never_echo_values(void **state)
{
    (void)state;
    const char *inputs[] = {
        "secret_access_key = wJalrXUtnFEMI",      "secret_access_key \"wJalrXUtnFEMI\"",
        "secret_access_key = \"wJalrXUtnFEMI",    "secret_access_key = [\"wJalrXUtnFEMI\" 1]",
        "{\"secret_access_key\": wJalrXUtnFEMI}",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        hcl_error error;
        assert_null(hcl_parse(inputs[i], strlen(inputs[i]), &error));
        if (strstr(error.message, "wJalr") != NULL)
            fail_msg("case %zu echoes the value: %s", i, error.message);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_inputs),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_nul_byte_is_an_error),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_errors_never_echo_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
