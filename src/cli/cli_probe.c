/* The doctor's endpoint probe: resolves the host (getaddrinfo, unless a proxy
 * from the environment does that), then makes one unsigned GET with libcurl,
 * TLS verified as the plugin verifies it, and reads the answer's Date header
 * for the clock skew. Any HTTP status counts as reachable: KMS answers a bare
 * GET with an error, and that is enough to know the way there works. */
#include <curl/curl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "cli/cli_internal.h"
#include "common/clock.h"

bool cli_clock_skew_ok(double skew_s)
{
    return skew_s < CLI_MAX_CLOCK_SKEW_S && skew_s > -CLI_MAX_CLOCK_SKEW_S;
}

typedef struct {
    bool has_date;
    time_t date;
} header_state;

static size_t on_header(char *line, size_t size, size_t count, void *user)
{
    header_state *state = user;
    size_t n = size * count;
    if (n > 5 && strncasecmp(line, "date:", 5) == 0) {
        char value[128];
        size_t len = n - 5 < sizeof value - 1 ? n - 5 : sizeof value - 1;
        memcpy(value, line + 5, len);
        value[len] = '\0';
        time_t date = curl_getdate(value, NULL);
        if (date > 0) {
            state->has_date = true;
            state->date = date;
        }
    }
    return n;
}

static size_t discard_body(char *data, size_t size, size_t count, void *user)
{
    (void)data, (void)user;
    return size * count;
}

static bool parse_url(const char *url, probe_result *out)
{
    CURLU *parsed = curl_url();
    char *host = NULL, *scheme = NULL;
    bool ok = parsed != NULL && curl_url_set(parsed, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(parsed, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
              curl_url_get(parsed, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK;
    if (ok) {
        snprintf(out->host, sizeof out->host, "%s", host);
        out->https = strcasecmp(scheme, "https") == 0;
    }
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(parsed);
    return ok;
}

static bool proxy_applies(const probe_result *out)
{
    const char *names[] = {out->https ? "HTTPS_PROXY" : "HTTP_PROXY",
                           out->https ? "https_proxy" : "http_proxy", "ALL_PROXY", "all_proxy"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *value = getenv(names[i]);
        if (value != NULL && value[0] != '\0')
            return true; /* NO_PROXY is left to curl; DNS is then reported as not checked */
    }
    return false;
}

static bool resolve(probe_result *out)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *answers = NULL;
    int rc = getaddrinfo(out->host, NULL, &hints, &answers);
    if (rc != 0) {
        snprintf(out->detail, sizeof out->detail, "cannot resolve %s: %s", out->host,
                 gai_strerror(rc));
        return false;
    }
    for (struct addrinfo *a = answers; a != NULL; a = a->ai_next)
        out->addresses++;
    freeaddrinfo(answers);
    return true;
}

static probe_stage stage_of(CURLcode code)
{
    switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return PROBE_DNS;
    case CURLE_COULDNT_CONNECT:
        return PROBE_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        return PROBE_TIMEOUT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
        return PROBE_TLS;
    default:
        return PROBE_TRANSPORT;
    }
}

static void exchange(const char *url, const char *ca_bundle, int timeout_ms, probe_result *out)
{
    CURL *curl = curl_easy_init();
    if (curl == NULL) {
        out->failed_at = PROBE_TRANSPORT;
        snprintf(out->detail, sizeof out->detail, "cannot create a curl handle");
        return;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    header_state headers = {0};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (ca_bundle != NULL && ca_bundle[0] != '\0')
        curl_easy_setopt(curl, CURLOPT_CAINFO, ca_bundle);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
    double before = clock_wall_s();
    CURLcode code = curl_easy_perform(curl);
    double after = clock_wall_s();
    out->elapsed_ms = (long)((after - before) * 1000.0);
    if (code != CURLE_OK) {
        out->failed_at = stage_of(code);
        snprintf(out->detail, sizeof out->detail, "%s",
                 errbuf[0] ? errbuf : curl_easy_strerror(code));
    } else {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->http_status);
        out->has_date = headers.has_date;
        /* Date has whole seconds; compare with the middle of the exchange. */
        if (headers.has_date)
            out->skew_s = (double)headers.date + 0.5 - (before + after) / 2.0;
    }
    curl_easy_cleanup(curl);
}

void cli_probe_endpoint(const char *url, const char *ca_bundle, int timeout_ms, probe_result *out)
{
    memset(out, 0, sizeof *out);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!parse_url(url, out)) {
        out->failed_at = PROBE_BAD_URL;
        snprintf(out->detail, sizeof out->detail, "not a URL: %.400s", url);
    } else {
        out->via_proxy = proxy_applies(out);
        if (!out->via_proxy && !resolve(out))
            out->failed_at = PROBE_DNS;
        else
            exchange(url, ca_bundle, timeout_ms, out);
    }
    curl_global_cleanup();
}
