/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store-backed registry checks of registry_route_cases.h, driven
 * through sl_registry__route as the server calls it, so that two route
 * states on one database stand for two registry servers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry_route_cases.h"
#include "util/err.h"

static const char int_body[] = "{\"schema\":\"\\\"int\\\"\"}";
static const char int_spaced_body[] = "{\"schema\":\" \\\"int\\\" \"}";
static const char record_body[] =
    "{\"schema\":\"{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"r\\\","
    "\\\"fields\\\":[{\\\"name\\\":\\\"a\\\",\\\"type\\\":\\\"int\\\"}]}\"}";
/* The record with a required field: BACKWARD rejects it, NONE does not. */
static const char record_required_body[] =
    "{\"schema\":\"{\\\"type\\\":\\\"record\\\",\\\"name\\\":\\\"r\\\","
    "\\\"fields\\\":[{\\\"name\\\":\\\"a\\\",\\\"type\\\":\\\"int\\\"},"
    "{\\\"name\\\":\\\"b\\\",\\\"type\\\":\\\"int\\\"}]}\"}";

/* Sends one request and checks its status and body. */
static void expect(sl_registry_routes_t *routes, const char *method,
                   const char *path, const char *body, int status,
                   const char *reply_body)
{
    sl_registry_reply_t reply;

    assert_int_equal(sl_registry__route(routes, method, path, body, &reply),
                     SL_OK);
    if (reply.status != status || strcmp(reply.body, reply_body) != 0) {
        char got[512];

        snprintf(got, sizeof(got), "%d %s", reply.status, reply.body);
        free(reply.body);
        fail_msg("%s %s: expected %d %s, got %s", method, path, status,
                 reply_body, got);
    }
    free(reply.body);
}

/* Sends one request and checks its status only. */
static void expect_status(sl_registry_routes_t *routes, const char *method,
                          const char *path, const char *body, int status)
{
    sl_registry_reply_t reply;

    assert_int_equal(sl_registry__route(routes, method, path, body, &reply),
                     SL_OK);
    free(reply.body);
    assert_int_equal(reply.status, status);
}

void route_cases_levels(sl_registry_routes_t *routes)
{
    const char *subject = "/config/sensor-readings-value";

    /* Nothing stored: BACKWARD everywhere. */
    expect(routes, "GET", "/config", NULL, 200,
           "{\"compatibilityLevel\":\"BACKWARD\"}");
    expect(routes, "GET", subject, NULL, 200,
           "{\"compatibilityLevel\":\"BACKWARD\"}");

    expect(routes, "PUT", "/config", "{\"compatibility\":\"FULL\"}", 200,
           "{\"compatibility\":\"FULL\"}");
    expect(routes, "GET", subject, NULL, 200,
           "{\"compatibilityLevel\":\"FULL\"}");
    expect(routes, "PUT", subject, "{\"compatibility\":\"NONE\"}", 200,
           "{\"compatibility\":\"NONE\"}");
    expect(routes, "GET", subject, NULL, 200,
           "{\"compatibilityLevel\":\"NONE\"}");
    expect(routes, "GET", "/config", NULL, 200,
           "{\"compatibilityLevel\":\"FULL\"}");
    expect(routes, "PUT", subject, "{\"compatibility\":\"SIDEWAYS\"}", 422,
           "{\"error_code\":42203,\"message\":\"Invalid compatibility "
           "level\"}");

    /* DELETE returns the deleted level; the subject follows the global
     * level again, and a second DELETE finds nothing. */
    expect(routes, "DELETE", subject, NULL, 200,
           "{\"compatibilityLevel\":\"NONE\"}");
    expect(routes, "GET", subject, NULL, 200,
           "{\"compatibilityLevel\":\"FULL\"}");
    expect(routes, "DELETE", subject, NULL, 404,
           "{\"error_code\":40401,\"message\":\"Subject not found: it has no "
           "compatibility level of its own\"}");

    expect(routes, "DELETE", "/config", NULL, 200,
           "{\"compatibilityLevel\":\"FULL\"}");
    expect(routes, "GET", subject, NULL, 200,
           "{\"compatibilityLevel\":\"BACKWARD\"}");
    expect(routes, "DELETE", "/config", NULL, 200,
           "{\"compatibilityLevel\":\"BACKWARD\"}");
    expect(routes, "POST", "/config", NULL, 405,
           "{\"error_code\":405,\"message\":\"Method not allowed\"}");
}

void route_cases_two_registries_agree(sl_registry_routes_t *a,
                                      sl_registry_routes_t *b)
{
    const char *versions = "/subjects/s-value/versions";

    expect(a, "POST", versions, record_body, 200, "{\"id\":1}");
    expect_status(b, "POST", versions, record_required_body, 409);

    /* a lowers the level; b applies it at its next registration. */
    expect(a, "PUT", "/config/s-value", "{\"compatibility\":\"NONE\"}", 200,
           "{\"compatibility\":\"NONE\"}");
    expect(b, "GET", "/config/s-value", NULL, 200,
           "{\"compatibilityLevel\":\"NONE\"}");
    expect(b, "POST", versions, record_required_body, 200, "{\"id\":2}");

    expect(b, "DELETE", "/config/s-value", NULL, 200,
           "{\"compatibilityLevel\":\"NONE\"}");
    expect(a, "GET", "/config/s-value", NULL, 200,
           "{\"compatibilityLevel\":\"BACKWARD\"}");
}

void route_cases_shared_id(sl_registry_routes_t *routes)
{
    expect(routes, "POST", "/subjects/a-value/versions", record_body, 200,
           "{\"id\":1}");
    expect(routes, "POST", "/subjects/x-value/versions", int_body, 200,
           "{\"id\":2}");
    /* Other subjects, another spelling of the same schema: the same id. */
    expect(routes, "POST", "/subjects/b-value/versions", int_spaced_body, 200,
           "{\"id\":2}");
    expect(routes, "POST", "/subjects/c-value/versions", int_body, 200,
           "{\"id\":2}");
    expect(routes, "GET", "/subjects/b-value/versions/1", NULL, 200,
           "{\"subject\":\"b-value\",\"version\":1,\"id\":2,\"schema\":\" "
           "\\\"int\\\" \"}");
    /* The text of the first subject by name. */
    expect(routes, "GET", "/schemas/ids/2", NULL, 200,
           "{\"schema\":\" \\\"int\\\" \"}");
    /* A new schema still gets the next id. */
    expect(routes, "POST", "/subjects/b-value/versions",
           "{\"schema\":\"\\\"long\\\"\"}", 200, "{\"id\":3}");
}

void route_cases_old_row_shares_id(sl_registry_routes_t *routes,
                                   route_cases_exec_fn exec)
{
    exec(routes->st, "INSERT INTO schemas (subject, version, id, schema,"
                     " created_at_ms) VALUES ('a-value', 1, 4, ' \"int\"', 1)");
    expect(routes, "POST", "/subjects/b-value/versions", int_body, 200,
           "{\"id\":4}");
    expect(routes, "POST", "/subjects/b-value/versions",
           "{\"schema\":\"\\\"long\\\"\"}", 200, "{\"id\":5}");
}
