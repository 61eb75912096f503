/* The Resource Groups Tagging API client (tagging.h): GetResources requests
 * encoded as JSON 1.1 and sent through the KMS client's call path
 * (kms_client_json_call), answers decoded into tagging_resource_page. */
#include "aws/tagging.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/aws_json.h"
#include "aws/kms_internal.h"

static const char OPERATION[] = "GetResources";

static int check_input(const tagging_get_resources_input *input, aws_error *err)
{
    const char *problem = NULL;
    if (input->resources_per_page < 0 || input->resources_per_page > TAGGING_MAX_RESOURCES_PER_PAGE)
        problem = "resources_per_page must be 1 to 100 (0: the default)";
    else if (input->tag_filter_count > TAGGING_MAX_TAG_FILTERS)
        problem = "at most 50 tag filters";
    else if (input->pagination_token != NULL && strlen(input->pagination_token) > TAGGING_MAX_TOKEN)
        problem = "the pagination token is longer than 2048 characters";
    for (size_t i = 0; problem == NULL && i < input->tag_filter_count; i++) {
        const tagging_tag_filter *filter = &input->tag_filters[i];
        if (filter->key == NULL || filter->key[0] == '\0')
            problem = "a tag filter needs a key";
        else if (filter->value_count > TAGGING_MAX_FILTER_VALUES)
            problem = "at most 20 values per tag filter";
    }
    if (problem == NULL)
        return 0;
    aws_error_set(err, AWS_ERR_VALIDATION, "%s: %s", OPERATION, problem);
    return -1;
}

/* NULL when an item is not valid UTF-8 (json_string refuses it) or memory ran out. */
static json_t *string_array(const char *const *items, size_t count)
{
    json_t *array = json_array();
    for (size_t i = 0; array != NULL && i < count; i++) {
        if (json_array_append_new(array, json_string(items[i])) != 0) {
            json_decref(array);
            array = NULL;
        }
    }
    return array;
}

/* [{"Key": k, "Values": [...]}, ...], or NULL (invalid UTF-8, out of memory). */
static json_t *filters_json(const tagging_tag_filter *filters, size_t count)
{
    json_t *array = json_array();
    for (size_t i = 0; array != NULL && i < count; i++) {
        json_t *item = json_pack("{s:s}", "Key", filters[i].key);
        if (item != NULL && filters[i].value_count > 0 &&
            json_object_set_new(item, "Values",
                                string_array(filters[i].values, filters[i].value_count)) != 0) {
            json_decref(item);
            item = NULL;
        }
        if (json_array_append_new(array, item) != 0) {
            json_decref(array);
            array = NULL;
        }
    }
    return array;
}

/* object[name] = value; value is stolen, also when NULL; false on failure. */
static bool put(json_t *object, const char *name, json_t *value)
{
    return json_object_set_new(object, name, value) == 0;
}

/* The request body, or NULL when a string is not valid UTF-8 or memory ran out. */
static char *request_body(const tagging_get_resources_input *input)
{
    json_t *request = json_object();
    bool ok = request != NULL;
    if (ok && input->resource_type_count > 0)
        ok = put(request, "ResourceTypeFilters",
                 string_array(input->resource_types, input->resource_type_count));
    if (ok && input->tag_filter_count > 0)
        ok = put(request, "TagFilters", filters_json(input->tag_filters, input->tag_filter_count));
    if (ok && input->resources_per_page > 0)
        ok = put(request, "ResourcesPerPage", json_integer(input->resources_per_page));
    if (ok && input->pagination_token != NULL && input->pagination_token[0] != '\0')
        ok = put(request, "PaginationToken", json_string(input->pagination_token));
    char *body = ok ? json_dumps(request, JSON_COMPACT) : NULL;
    json_decref(request);
    return body;
}

void tagging_resource_page_clear(tagging_resource_page *page)
{
    if (page == NULL)
        return;
    for (size_t i = 0; i < page->count; i++)
        aws_tag_set_clear(&page->resources[i].tags);
    free(page->resources);
    memset(page, 0, sizeof *page);
}

static int decode_resource(const json_t *item, tagging_resource *out)
{
    if (!json_is_object(item) ||
        aws_json_copy_string(item, "ResourceARN", true, out->arn, sizeof out->arn) != 0 ||
        out->arn[0] == '\0')
        return -1;
    return aws_tag_set_decode(json_object_get(item, "Tags"), "Key", "Value", &out->tags);
}

static int decode_page(const json_t *answer, tagging_resource_page *out)
{
    const json_t *items = json_object_get(answer, "ResourceTagMappingList");
    if (items != NULL && !json_is_array(items))
        return -1;
    size_t count = json_array_size(items);
    out->resources = calloc(count ? count : 1, sizeof *out->resources);
    if (out->resources == NULL)
        return -1;
    for (size_t i = 0; i < count; i++) {
        if (decode_resource(json_array_get(items, i), &out->resources[i]) != 0)
            return -1;
        out->count = i + 1;
    }
    /* AWS ends a listing with "PaginationToken": ""; null or absent mean the same. */
    const json_t *token = json_object_get(answer, "PaginationToken");
    if (token == NULL || json_is_null(token))
        return 0;
    return aws_json_copy_string(answer, "PaginationToken", true, out->next_token,
                                sizeof out->next_token);
}

int tagging_get_resources(kms_client *client, const aws_call_ctx *ctx,
                          const tagging_get_resources_input *input, tagging_resource_page *out,
                          aws_error *err)
{
    aws_error scratch;
    if (err == NULL)
        err = &scratch;
    aws_error_clear(err);
    memset(out, 0, sizeof *out);
    if (check_input(input, err) != 0)
        return -1;
    json_t *answer = NULL;
    if (kms_client_json_call(client, ctx, AWS_JSON_SERVICE_TAGGING, OPERATION, request_body(input),
                             &answer, err) != 0)
        return -1;
    int rc = decode_page(answer, out);
    json_decref(answer);
    if (rc != 0) {
        tagging_resource_page_clear(out);
        err->status = AWS_ERR_BAD_RESPONSE;
        snprintf(err->message, sizeof err->message,
                 "%s returned an unexpected answer: malformed ResourceTagMappingList page",
                 OPERATION);
    }
    return rc;
}
