/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The translation of the detector settings that `sluice run` and
 * `sluice detect` (distributed.c) share.
 */
#include "roles/roles.h"

#include <stdio.h>
#include <string.h>

#include "util/err.h"

/* Derives the model folder from the store location: the SQLite file name
 * plus ".models". An in-memory database and a server store such as
 * PostgreSQL keep no models unless detect-model-dir names a folder. */
static void default_model_dir(const char *db, char *out, size_t out_size)
{
    size_t len;

    if (strncmp(db, "sqlite:", 7) == 0)
        db += 7;
    if (strncmp(db, "file:", 5) == 0)
        db += 5;
    if (strstr(db, "://") != NULL) {
        out[0] = '\0';
        return;
    }
    len = strcspn(db, "?");
    if (len == 0 || strncmp(db, ":memory:", len) == 0 ||
        len + sizeof(".models") > out_size) {
        out[0] = '\0';
        return;
    }
    snprintf(out, out_size, "%.*s.models", (int)len, db);
}

void sl_role__detector_config(const sl_config_t *cfg, sl_bus_t *bus,
                              sl_registry_t *registry,
                              sl_detector_config_t *det, char *model_dir,
                              size_t model_dir_size)
{
    sl_detector_config_init(det);
    det->bus = bus;
    det->registry = registry;
    det->store_location = cfg->db;
    det->batch_size = cfg->batch_size;
    det->poll_timeout_ms = cfg->batch_timeout_ms;
    if (cfg->detect_retrain_every > 0)
        det->model.retrain_every = (uint32_t)cfg->detect_retrain_every;
    if (cfg->detect_window > 0)
        det->model.window_size = (uint32_t)cfg->detect_window;
    if (cfg->detect_min_samples > 0)
        det->model.min_samples = (uint32_t)cfg->detect_min_samples;
    else if (det->model.min_samples > det->model.window_size)
        det->model.min_samples = det->model.window_size;
    det->critical_score = cfg->detect_critical_score;
    det->cooldown_ms = (int64_t)(cfg->alert_cooldown_seconds * 1000.0);
    det->rules.enabled = cfg->alert_rules;
    det->rules.temperature_high = cfg->rule_temperature_high;
    det->rules.temperature_low = cfg->rule_temperature_low;
    det->rules.humidity_high = cfg->rule_humidity_high;

    if (cfg->detect_model_dir[0] != '\0')
        snprintf(model_dir, model_dir_size, "%s", cfg->detect_model_dir);
    else
        default_model_dir(cfg->db, model_dir, model_dir_size);
    det->model_dir = model_dir[0] != '\0' ? model_dir : NULL;
}
