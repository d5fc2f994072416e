/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A short-lived cache of successful responses of the hottest read routes
 * (latest readings, statistics, anomalies), keyed by path and raw query.
 * Dashboards poll these with the same few queries, so one store query and
 * one JSON rendering serve every request of the next SL_API_CACHE_TTL_MS.
 * Only the service thread uses it, so it needs no lock.
 */
#include "api/api_int.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_key(const char *key)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a 64-bit offset basis */

    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
        h = (h ^ *p) * 1099511628211ULL; /* FNV-1a 64-bit prime */
    return h;
}

static void entry_clear(sl_api_cache_entry_t *e)
{
    free(e->key);
    free(e->body);
    memset(e, 0, sizeof(*e));
}

bool sl_api__cache_route(sl_api_route_t route)
{
    return route == SL_API_ROUTE_LATEST || route == SL_API_ROUTE_STATS ||
           route == SL_API_ROUTE_ANOMALIES;
}

bool sl_api__cache_get(sl_api_cache_t *cache, const char *key, int64_t now_ns,
                       sl_api_response_t *resp, sl_api_route_t *route)
{
    sl_api_cache_entry_t *e =
        &cache->entries[hash_key(key) % SL_API_CACHE_SLOTS];
    char *body;

    if (e->key == NULL || now_ns >= e->expires_ns || strcmp(e->key, key) != 0)
        return false;
    body = malloc(e->body_len + 1);
    if (body == NULL)
        return false;
    memcpy(body, e->body, e->body_len + 1);
    resp->status = e->status;
    resp->content_type = e->content_type;
    resp->body = body;
    resp->body_len = e->body_len;
    *route = e->route;
    return true;
}

void sl_api__cache_put(sl_api_cache_t *cache, const char *key, int64_t now_ns,
                       const sl_api_response_t *resp, sl_api_route_t route)
{
    sl_api_cache_entry_t *e =
        &cache->entries[hash_key(key) % SL_API_CACHE_SLOTS];

    /* A colliding key takes the slot over: the cache is a speed-up, and a
     * miss costs one query. */
    entry_clear(e);
    e->key = strdup(key);
    e->body = malloc(resp->body_len + 1);
    if (e->key == NULL || e->body == NULL) {
        entry_clear(e);
        return;
    }
    memcpy(e->body, resp->body, resp->body_len);
    e->body[resp->body_len] = '\0';
    e->body_len = resp->body_len;
    e->status = resp->status;
    e->content_type = resp->content_type;
    e->route = route;
    e->expires_ns = now_ns + (int64_t)SL_API_CACHE_TTL_MS * 1000000;
}

void sl_api__cache_clear(sl_api_cache_t *cache)
{
    for (size_t i = 0; i < SL_API_CACHE_SLOTS; i++)
        entry_clear(&cache->entries[i]);
}
