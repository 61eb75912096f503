/* The clock we sign with and judge credential expiry by: the host clock plus
 * an offset learned from AWS's answers, as the AWS SDKs correct clock skew.
 *
 * AWS refuses a SigV4 signature more than 5 minutes away from its own clock
 * (InvalidSignatureException "Signature expired" / "Signature not yet
 * current", SignatureDoesNotMatch from STS, RequestTimeTooSkewed,
 * RequestExpired). Every KMS and STS answer carries a Date header; when it
 * shows our corrected clock more than 4 minutes away from AWS's, the offset
 * becomes AWS's time minus the host's, for every client of the process (the
 * skew belongs to the host clock, not to one client), and a warning names
 * the offset and the endpoint once per change. A call refused for skew is
 * re-signed with the new offset and sent once more (kms.c, STS in
 * credentials_sources.c). Only AWS service answers teach the clock: the
 * container endpoint and IMDS may run on the skewed host itself. */
#ifndef KM_AWS_CLOCK_H
#define KM_AWS_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

/* A corrected clock further than this from AWS's Date is re-learned
 * (aws-sdk-go-v2 and the Java SDK use 4 minutes; AWS allows 5). */
#define AWS_CLOCK_SKEW_THRESHOLD_S 240

/* Seconds to add to the host clock (0 until an answer showed skew). */
int64_t aws_clock_offset(void);
/* Epoch seconds on the corrected clock: time(NULL) + aws_clock_offset(). */
int64_t aws_clock_now(void);
/* Sets the offset (tests; 0 restores the host clock). */
void aws_clock_set_offset(int64_t offset);

/* An HTTP Date header value (RFC 7231: IMF-fixdate, RFC 850 or asctime) to
 * epoch seconds. Returns 0, or -1 when it is not a date. */
int aws_clock_parse_http_date(const char *text, int64_t *out);

/* Whether an AWS error says the request's time was refused: the codes
 * RequestTimeTooSkewed, RequestExpired, RequestInTheFuture, or
 * InvalidSignatureException / SignatureDoesNotMatch / AuthFailure whose
 * message begins "Signature expired" or "Signature not yet current". */
bool aws_clock_is_skew_error(const char *code, const char *message);

/* The offset that server_date (an answer's Date) implies for host_time (the
 * host clock when the answer arrived), when the clock corrected by
 * current_offset is more than AWS_CLOCK_SKEW_THRESHOLD_S away from it.
 * Returns false (and leaves *new_offset alone) otherwise. */
bool aws_clock_adjustment(int64_t current_offset, int64_t server_date, int64_t host_time,
                          int64_t *new_offset);

/* Learns from one AWS answer (server_date 0: no Date header, nothing to
 * learn). Adopts aws_clock_adjustment's offset process-wide and logs it at
 * warn with the endpoint. Returns true when this call changed the offset. */
bool aws_clock_observe(int64_t server_date, int64_t host_time, const char *endpoint);

/* Whether a request signed with signed_offset and refused for skew
 * (aws_clock_is_skew_error) is worth signing again: the offset has moved
 * since it was signed. */
bool aws_clock_worth_resigning(int64_t signed_offset);

#endif
