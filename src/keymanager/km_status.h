/* km_status from AWS errors: the one bridge from the AWS layer's error type
 * (aws_error) to the KeyManager's (km_status): one mapping of AWS failures to
 * gRPC codes and one message form ("kms Sign failed: ThrottlingException:
 * Rate exceeded (request id ...)") for every KeyManager file. The plugin's
 * fail_with_status (services.c) is the one bridge on from km_status to the
 * gRPC status a client sees. */
#ifndef KM_KM_STATUS_H
#define KM_KM_STATUS_H

#include "aws/aws_error.h"
#include "keymanager/keymanager.h"

/* status = OK, no message. */
void km_status_ok(km_status *status);
/* The gRPC code for an AWS failure. */
grpc_status_code km_code_for_aws(aws_status status);
/* Fills status from err for the named KMS operation; returns -1. */
int km_fail_aws(km_status *status, const char *operation, const aws_error *err);

#endif
