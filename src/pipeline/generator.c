/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Synthetic producers for demos and load tests: a fleet of sensors and a
 * crowd of shoppers, deterministic for a seed.
 *
 * Each sensor has its own normal level, noise and daily cycle, a draining
 * battery and a varying radio signal. Now and then it starts an anomaly
 * (a spike, a drift or a stuck value). Values are clamped to the physical
 * range of the quantity, so every reading passes validation and anomalies
 * reach the detector. The stored `anomaly` field stays false: the ground
 * truth only goes to the debug log, so the detector cannot read it back.
 *
 * Shoppers keep one session id until the session ends (checkout done,
 * 30 minutes idle, or they leave) and move through a funnel: page views
 * and searches, add to cart, sometimes remove, then purchase.
 */
#include "pipeline/generator.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/publish.h"
#include "util/err.h"
#include "util/log.h"
#include "util/rng.h"
#include "util/timeutil.h"

#define GEN_MAX_SENSORS_PER_TYPE 999 /* ids carry a 3-digit number */
#define GEN_MAX_USERS 99999          /* ids carry a 5-digit number */
#define GEN_CART_MAX 8               /* distinct products in one cart */
#define GEN_SESSION_IDLE_MS (30 * 60 * 1000)
#define GEN_DAY_MS (24.0 * 3600 * 1000)

/* The run loop sleeps at most this long between checks of *stop. */
#define GEN_STOP_CHECK_MS 100
/* When publishing falls further behind schedule than this, the backlog
 * is skipped instead of being sent in one burst. */
#define GEN_MAX_LAG_MS 1000
/* Publish failures logged one by one, then one in GEN_LOG_EVERY. */
#define GEN_LOG_LIMIT 10
#define GEN_LOG_EVERY 1000

/* ---- Sensors ----------------------------------------------------------- */

/* Normal behaviour and physical range of one quantity. Noise and the daily
 * amplitude are an absolute part plus a part relative to the level. */
typedef struct type_profile {
    sl_sensor_type_t type;
    const char *unit;
    double level_min, level_max;     /* a sensor's normal level lies here */
    double noise_abs, noise_rel;     /* standard deviation of the noise */
    double daily_abs, daily_rel;     /* amplitude of the daily cycle */
    double anomaly_abs, anomaly_rel; /* size of a spike or drift */
    bool anomaly_upward;             /* spikes only go up (vibration, power) */
    double phys_min, phys_max;       /* the range a sensor can report */
} type_profile_t;

/* Temperature sensors are indoor ones with an industrial -40..125 C range.
 * Pressure stays within about the recorded sea-level extremes,
 * 870..1085 hPa. */
static const type_profile_t profiles[] = {
    {SL_SENSOR_TEMPERATURE, "celsius", 18, 26, 0.3, 0, 1.5, 0, 12, 0, false,
     -40, 125},
    {SL_SENSOR_HUMIDITY, "percent", 30, 60, 1.0, 0, 5, 0, 30, 0, false, 0, 100},
    {SL_SENSOR_PRESSURE, "hPa", 1008, 1018, 0.4, 0, 1.5, 0, 35, 0, false, 870,
     1085},
    {SL_SENSOR_VIBRATION, "mm/s", 0.1, 2.0, 0, 0.05, 0, 0.1, 4, 2, true, 0,
     100},
    {SL_SENSOR_POWER, "W", 100, 2000, 0, 0.03, 0, 0.2, 0, 1.5, true, 0, 10000},
};

#define TYPE_COUNT_MAX ((int)(sizeof(profiles) / sizeof(profiles[0])))

typedef enum anomaly_kind {
    ANOMALY_NONE,
    ANOMALY_SPIKE, /* one reading far off the level */
    ANOMALY_DRIFT, /* an offset growing over many readings */
    ANOMALY_STUCK, /* the same value repeated exactly */
} anomaly_kind_t;

static const char *const anomaly_names[] = {"none", "spike", "drift", "stuck"};

typedef struct sensor {
    char id[SL_ID_MAX + 1];
    char location[SL_TEXT_MAX + 1];
    const type_profile_t *profile;
    sl_rng_t rng; /* one stream per sensor: its readings do not depend on
                     the order sensors are sampled in */
    double level;
    double noise_sd;
    double daily_amp;
    double phase;   /* radians, which sets where the daily peak falls */
    double battery; /* percent */
    double drain;   /* percent per reading */
    double signal_dbm;
    double last_value;
    anomaly_kind_t anomaly;
    int anomaly_left; /* readings until the anomaly ends */
    int anomaly_length;
    double anomaly_size; /* signed */
} sensor_t;

/* ---- Shoppers ---------------------------------------------------------- */

typedef struct product {
    int64_t id;
    const char *name;
    const char *category;
    double price; /* USD */
} product_t;

static const product_t catalog[] = {
    {1001, "Wireless mouse", "electronics.accessories", 24.99},
    {1002, "Mechanical keyboard", "electronics.accessories", 89.00},
    {1003, "27-inch monitor", "electronics.monitors", 279.99},
    {1004, "USB-C hub", "electronics.accessories", 39.50},
    {1005, "Noise-cancelling headphones", "electronics.audio", 199.00},
    {1006, "Smartphone 128 GB", "electronics.smartphone", 649.00},
    {1007, "Phone case", "electronics.smartphone.accessories", 14.99},
    {1008, "Running shoes", "apparel.shoes", 119.95},
    {1009, "Rain jacket", "apparel.outerwear", 149.00},
    {1010, "Cotton T-shirt", "apparel.tops", 19.90},
    {1011, "Espresso machine", "appliances.kitchen", 349.00},
    {1012, "Chef's knife", "kitchen.cutlery", 59.00},
    {1013, "Cast iron pan", "kitchen.cookware", 44.90},
    {1014, "Desk lamp", "furniture.lighting", 34.99},
    {1015, "Office chair", "furniture.office", 229.00},
    {1016, "Paperback novel", "books.fiction", 12.99},
    {1017, "Board game", "toys.games", 39.99},
    {1018, "Yoga mat", "sports.fitness", 27.50},
};

#define CATALOG_SIZE (sizeof(catalog) / sizeof(catalog[0]))

static const char *const search_queries[] = {
    "wireless mouse", "monitor 27", "headphones",   "running shoes",
    "rain jacket",    "espresso",   "office chair", "usb c hub",
    "phone case",     "gift ideas", "yoga",         "board games",
};

static const char *const payment_methods[] = {"credit_card", "debit_card",
                                              "paypal", "apple_pay"};

typedef struct cart_line {
    int product; /* index into catalog */
    int quantity;
} cart_line_t;

typedef struct shopper {
    char user_id[SL_ID_MAX + 1];
    char ip_address[SL_IP_MAX + 1];
    char session_id[SL_ID_MAX + 1];
    sl_device_t device;
    bool in_session;
    bool checkout;   /* purchasing the cart, one line per event */
    int events_left; /* events until the shopper leaves the session */
    int64_t last_ms;
    int viewed; /* catalog index last viewed, or -1 */
    cart_line_t cart[GEN_CART_MAX];
    int cart_len;
} shopper_t;

struct sl_sensor_sim {
    sl_generator_config_t cfg;
    int sensor_count;
    sensor_t *sensors;
    int user_count;
    shopper_t *shoppers;
    sl_rng_t shop_rng;
};

/* ---- Configuration ----------------------------------------------------- */

void sl_generator_config_init(sl_generator_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->sensors_per_type = 10;
    cfg->type_count = 3;
    cfg->interval_s = 1.0;
    cfg->rate = 0;
    cfg->event_interval_s = 2.0;
    cfg->anomaly_rate = 0.01;
    cfg->users = 50;
    cfg->seed = 1;
}

static bool config_valid(const sl_generator_config_t *cfg)
{
    if (cfg == NULL)
        return false;
    if (cfg->sensors_per_type < 1 ||
        cfg->sensors_per_type > GEN_MAX_SENSORS_PER_TYPE)
        return false;
    if (cfg->type_count < 1 || cfg->type_count > TYPE_COUNT_MAX)
        return false;
    if (!(cfg->interval_s > 0) || !(cfg->rate >= 0) ||
        !(cfg->event_interval_s >= 0))
        return false;
    if (!(cfg->anomaly_rate >= 0 && cfg->anomaly_rate <= 1))
        return false;
    return cfg->users >= 1 && cfg->users <= GEN_MAX_USERS;
}

/* ---- Fleet ------------------------------------------------------------- */

static double uniform(sl_rng_t *rng, double lo, double hi)
{
    return lo + (hi - lo) * sl_rng_uniform(rng);
}

static double clamp(double v, double lo, double hi)
{
    if (v < lo)
        return lo;
    if (v > hi)
        return hi;
    return v;
}

static void sensor_init(sensor_t *s, const type_profile_t *p, int number,
                        uint64_t seed, int index)
{
    /* Golden-ratio stride: splitmix64 turns neighbouring seeds into
     * unrelated streams. */
    sl_rng_seed(&s->rng, seed ^ ((uint64_t)(index + 1) * 0x9e3779b97f4a7c15u));
    s->profile = p;
    snprintf(s->id, sizeof(s->id), "sensor-%s-%03d",
             sl_sensor_type_name(p->type), number);
    snprintf(s->location, sizeof(s->location), "building-%c/floor-%d",
             (char)('a' + sl_rng_below(&s->rng, 3)),
             (int)(1 + sl_rng_below(&s->rng, 5)));
    s->level = uniform(&s->rng, p->level_min, p->level_max);
    s->noise_sd = p->noise_abs + p->noise_rel * s->level;
    s->daily_amp = p->daily_abs + p->daily_rel * s->level;
    s->phase = uniform(&s->rng, 0, 2 * M_PI);
    s->battery = uniform(&s->rng, 40, 100);
    s->drain = uniform(&s->rng, 0.0005, 0.005);
    s->signal_dbm = uniform(&s->rng, -80, -50);
    s->last_value = s->level;
}

static void shopper_init(shopper_t *u, int index, sl_rng_t *rng)
{
    /* Documentation address blocks (RFC 5737): never routed anywhere. */
    static const char *const nets[] = {"192.0.2", "198.51.100", "203.0.113"};
    double d = sl_rng_uniform(rng);

    snprintf(u->user_id, sizeof(u->user_id), "user-%05d", index + 1);
    snprintf(u->ip_address, sizeof(u->ip_address), "%s.%d",
             nets[sl_rng_below(rng, 3)], (int)(1 + sl_rng_below(rng, 254)));
    u->device = d < 0.55   ? SL_DEVICE_MOBILE
                : d < 0.90 ? SL_DEVICE_DESKTOP
                           : SL_DEVICE_TABLET;
    u->viewed = -1;
}

sl_sensor_sim_t *sl_sensor_sim_create(const sl_generator_config_t *cfg)
{
    sl_sensor_sim_t *sim;

    if (!config_valid(cfg))
        return NULL;
    sim = calloc(1, sizeof(*sim));
    if (sim == NULL)
        return NULL;
    sim->cfg = *cfg;
    sim->sensor_count = cfg->sensors_per_type * cfg->type_count;
    sim->user_count = cfg->users;
    sim->sensors = calloc((size_t)sim->sensor_count, sizeof(sensor_t));
    sim->shoppers = calloc((size_t)sim->user_count, sizeof(shopper_t));
    if (sim->sensors == NULL || sim->shoppers == NULL) {
        sl_sensor_sim_destroy(sim);
        return NULL;
    }

    for (int i = 0; i < sim->sensor_count; i++)
        sensor_init(&sim->sensors[i], &profiles[i / cfg->sensors_per_type],
                    i % cfg->sensors_per_type + 1, cfg->seed, i);
    sl_rng_seed(&sim->shop_rng, cfg->seed ^ 0x5eed0f5b0bbe75u);
    for (int i = 0; i < sim->user_count; i++)
        shopper_init(&sim->shoppers[i], i, &sim->shop_rng);
    return sim;
}

void sl_sensor_sim_destroy(sl_sensor_sim_t *sim)
{
    if (sim == NULL)
        return;
    free(sim->sensors);
    free(sim->shoppers);
    free(sim);
}

int sl_sensor_sim_sensor_count(const sl_sensor_sim_t *sim)
{
    return sim->sensor_count;
}

/* ---- Readings ---------------------------------------------------------- */

static void anomaly_start(sensor_t *s)
{
    const type_profile_t *p = s->profile;
    double size = (p->anomaly_abs + p->anomaly_rel * s->level) *
                  uniform(&s->rng, 0.6, 1.0);
    uint64_t pick = sl_rng_below(&s->rng, 3);

    if (!p->anomaly_upward && sl_rng_below(&s->rng, 2) == 0)
        size = -size;
    s->anomaly_size = size;
    if (pick == 0) {
        s->anomaly = ANOMALY_SPIKE;
        s->anomaly_length = 1;
    } else if (pick == 1) {
        s->anomaly = ANOMALY_DRIFT;
        s->anomaly_length = 30 + (int)sl_rng_below(&s->rng, 91);
    } else {
        s->anomaly = ANOMALY_STUCK;
        s->anomaly_length = 20 + (int)sl_rng_below(&s->rng, 41);
    }
    s->anomaly_left = s->anomaly_length;
    sl_log_debug("generator",
                 "anomaly injected sensor=%s kind=%s readings=%d size=%g",
                 s->id, anomaly_names[s->anomaly], s->anomaly_length, size);
}

/* Returns the normal value at now_ms: level, daily cycle and noise. */
static double normal_value(sensor_t *s, int64_t now_ms)
{
    double day_frac = fmod((double)now_ms, GEN_DAY_MS) / GEN_DAY_MS;

    return s->level + s->daily_amp * sin(2 * M_PI * day_frac + s->phase) +
           s->noise_sd * sl_rng_normal(&s->rng);
}

void sl_sensor_sim_reading(sl_sensor_sim_t *sim, int i, int64_t now_ms,
                           sl_reading_t *out)
{
    sensor_t *s;
    const type_profile_t *p;
    double v;

    memset(out, 0, sizeof(*out));
    if (sim == NULL || i < 0 || i >= sim->sensor_count)
        return;
    s = &sim->sensors[i];
    p = s->profile;

    if (s->anomaly == ANOMALY_NONE &&
        sl_rng_uniform(&s->rng) < sim->cfg.anomaly_rate)
        anomaly_start(s);
    v = normal_value(s, now_ms);
    switch (s->anomaly) {
    case ANOMALY_SPIKE:
        v += s->anomaly_size;
        break;
    case ANOMALY_DRIFT:
        v += s->anomaly_size * (s->anomaly_length - s->anomaly_left + 1) /
             s->anomaly_length;
        break;
    case ANOMALY_STUCK:
        v = s->last_value;
        break;
    case ANOMALY_NONE:
        break;
    }
    if (s->anomaly != ANOMALY_NONE && --s->anomaly_left == 0)
        s->anomaly = ANOMALY_NONE;
    v = clamp(v, p->phys_min, p->phys_max);
    s->last_value = v;

    /* A drained battery is replaced by a full one. */
    s->battery -= s->drain;
    if (s->battery < 5)
        s->battery = 100;
    s->signal_dbm =
        clamp(s->signal_dbm + 0.5 * sl_rng_normal(&s->rng), -88, -42);

    memcpy(out->sensor_id, s->id, sizeof(out->sensor_id));
    memcpy(out->location, s->location, sizeof(out->location));
    snprintf(out->unit, sizeof(out->unit), "%s", p->unit);
    out->has_unit = true;
    out->sensor_type = p->type;
    out->timestamp_ms = now_ms;
    out->value = v;
    out->battery_level = (int32_t)lround(s->battery);
    out->signal_strength = (int32_t)lround(
        clamp(s->signal_dbm + 2 * sl_rng_normal(&s->rng), -90, -40));
    out->anomaly = false;
}

/* ---- Commerce events --------------------------------------------------- */

/* Writes a random UUID (version 4 layout) into out. */
static void random_uuid(sl_rng_t *rng, char *out, size_t out_size)
{
    uint64_t hi = sl_rng_next(rng), lo = sl_rng_next(rng);

    hi = (hi & ~UINT64_C(0xf000)) | UINT64_C(0x4000);
    lo = (lo & ~(UINT64_C(0xc) << 60)) | (UINT64_C(0x8) << 60);
    snprintf(out, out_size,
             "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64
             "-%012" PRIx64,
             hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff, lo >> 48,
             lo & UINT64_C(0xffffffffffff));
}

static void session_start(sl_rng_t *rng, shopper_t *u)
{
    random_uuid(rng, u->session_id, sizeof(u->session_id));
    u->in_session = true;
    u->checkout = false;
    u->cart_len = 0;
    u->viewed = -1;
    u->events_left = 3 + (int)sl_rng_below(rng, 20);
}

static void set_product(sl_event_t *ev, int index)
{
    const product_t *p = &catalog[index];

    ev->product_id = p->id;
    snprintf(ev->product_name, sizeof(ev->product_name), "%s", p->name);
    snprintf(ev->category, sizeof(ev->category), "%s", p->category);
    ev->price = p->price;
    ev->present |=
        SL_EV_PRODUCT_ID | SL_EV_PRODUCT_NAME | SL_EV_CATEGORY | SL_EV_PRICE;
}

static void set_line(sl_event_t *ev, const cart_line_t *line)
{
    set_product(ev, line->product);
    ev->quantity = line->quantity;
    snprintf(ev->currency, sizeof(ev->currency), "USD");
    ev->present |= SL_EV_QUANTITY | SL_EV_CURRENCY;
}

static void set_page(sl_event_t *ev, const char *page, double duration_s)
{
    snprintf(ev->page, sizeof(ev->page), "%s", page);
    ev->duration_seconds = duration_s;
    ev->present |= SL_EV_PAGE | SL_EV_DURATION;
}

/* Time on a page: 2 s at least, mostly under a minute, at most 10 min,
 * to a tenth of a second. */
static double dwell_seconds(sl_rng_t *rng)
{
    double s = 2 - 25 * log(1 - sl_rng_uniform(rng));

    return round(clamp(s, 2, 600) * 10) / 10;
}

static void event_page_view(sl_rng_t *rng, shopper_t *u, sl_event_t *ev)
{
    char page[SL_TEXT_MAX + 1];
    int index = (int)sl_rng_below(rng, CATALOG_SIZE);

    ev->event_type = SL_EVENT_PAGE_VIEW;
    if (sl_rng_uniform(rng) < 0.2) {
        set_page(ev, "/", dwell_seconds(rng));
        return;
    }
    set_product(ev, index);
    snprintf(page, sizeof(page), "/products/%" PRId64, catalog[index].id);
    set_page(ev, page, dwell_seconds(rng));
    u->viewed = index;
}

static void event_search(sl_rng_t *rng, sl_event_t *ev)
{
    size_t n = sizeof(search_queries) / sizeof(search_queries[0]);

    ev->event_type = SL_EVENT_SEARCH;
    snprintf(ev->query, sizeof(ev->query), "%s",
             search_queries[sl_rng_below(rng, n)]);
    ev->results_count = (int32_t)sl_rng_below(rng, 121);
    ev->present |= SL_EV_QUERY | SL_EV_RESULTS_COUNT;
    set_page(ev, "/search", dwell_seconds(rng));
}

/* Adds the product last viewed: one unit mostly, sometimes two or three. */
static void event_add_to_cart(sl_rng_t *rng, shopper_t *u, sl_event_t *ev)
{
    double d = sl_rng_uniform(rng);
    cart_line_t line = {u->viewed, 1};
    int i;

    if (d >= 0.93)
        line.quantity = 3;
    else if (d >= 0.75)
        line.quantity = 2;

    for (i = 0; i < u->cart_len && u->cart[i].product != line.product; i++)
        ;
    if (i == u->cart_len)
        u->cart[u->cart_len++] = (cart_line_t){line.product, 0};
    u->cart[i].quantity += line.quantity;
    ev->event_type = SL_EVENT_ADD_TO_CART;
    set_line(ev, &line);
}

static void event_remove_from_cart(sl_rng_t *rng, shopper_t *u, sl_event_t *ev)
{
    int i = (int)sl_rng_below(rng, (uint64_t)u->cart_len);

    ev->event_type = SL_EVENT_REMOVE_FROM_CART;
    set_line(ev, &u->cart[i]);
    u->cart[i] = u->cart[--u->cart_len];
}

/* Buys the last cart line. Buying the last one ends the session. */
static void event_purchase(sl_rng_t *rng, shopper_t *u, sl_event_t *ev)
{
    size_t n = sizeof(payment_methods) / sizeof(payment_methods[0]);
    const cart_line_t *line = &u->cart[u->cart_len - 1];

    ev->event_type = SL_EVENT_PURCHASE;
    set_line(ev, line);
    ev->total = ev->price * ev->quantity;
    snprintf(ev->payment_method, sizeof(ev->payment_method), "%s",
             payment_methods[sl_rng_below(rng, n)]);
    ev->present |= SL_EV_TOTAL | SL_EV_PAYMENT_METHOD;
    u->cart_len--;
    if (u->cart_len == 0)
        u->in_session = false;
}

/* Picks the next funnel step. An empty cart leads to views, searches and
 * adds. A filled cart may also lose a line or go to checkout. */
static void next_step(sl_rng_t *rng, shopper_t *u, sl_event_t *ev)
{
    double d = sl_rng_uniform(rng);
    bool can_add = u->viewed >= 0 && u->cart_len < GEN_CART_MAX;

    if (u->checkout) {
        event_purchase(rng, u, ev);
    } else if (u->cart_len == 0) {
        if (d < 0.25)
            event_search(rng, ev);
        else if (d < 0.45 && can_add)
            event_add_to_cart(rng, u, ev);
        else
            event_page_view(rng, u, ev);
    } else if (d < 0.30) {
        u->checkout = true;
        event_purchase(rng, u, ev);
    } else if (d < 0.40) {
        event_remove_from_cart(rng, u, ev);
    } else if (d < 0.55 && can_add) {
        event_add_to_cart(rng, u, ev);
    } else if (d < 0.65) {
        event_search(rng, ev);
    } else {
        event_page_view(rng, u, ev);
    }
}

void sl_sensor_sim_event(sl_sensor_sim_t *sim, int64_t now_ms, sl_event_t *out)
{
    sl_rng_t *rng;
    shopper_t *u;

    memset(out, 0, sizeof(*out));
    if (sim == NULL)
        return;
    rng = &sim->shop_rng;
    u = &sim->shoppers[sl_rng_below(rng, (uint64_t)sim->user_count)];

    /* A shopper who ran out of steps leaves, but an unfinished checkout
     * still completes. */
    if (!u->in_session || now_ms - u->last_ms > GEN_SESSION_IDLE_MS ||
        (u->events_left <= 0 && !u->checkout))
        session_start(rng, u);

    snprintf(out->event_id, sizeof(out->event_id),
             "evt-%012" PRIx64 "-%016" PRIx64, (uint64_t)now_ms,
             sl_rng_next(rng));
    memcpy(out->user_id, u->user_id, sizeof(out->user_id));
    memcpy(out->session_id, u->session_id, sizeof(out->session_id));
    memcpy(out->ip_address, u->ip_address, sizeof(out->ip_address));
    out->device = u->device;
    out->timestamp_ms = now_ms;
    next_step(rng, u, out);
    u->events_left--;
    u->last_ms = now_ms;
}

/* ---- Run loop ---------------------------------------------------------- */

typedef struct run_counts {
    uint64_t readings;
    uint64_t events;
    uint64_t failed;
    uint64_t skipped; /* scheduled readings or events dropped as backlog */
} run_counts_t;

static void count_publish(run_counts_t *rc, int err, const char *what,
                          const char *key)
{
    if (err == SL_OK)
        return;
    rc->failed++;
    if (rc->failed <= GEN_LOG_LIMIT || rc->failed % GEN_LOG_EVERY == 0)
        sl_log_warn("generator",
                    "publish failed kind=%s key=%s failed_total=%" PRIu64
                    ": %s",
                    what, key, rc->failed, sl_strerror(err));
}

/* Moves a schedule that fell more than GEN_MAX_LAG_MS behind to now. */
static void drop_backlog(double *due_ms, double gap_ms, int64_t now_ms,
                         run_counts_t *rc, const char *what)
{
    double behind = (double)now_ms - *due_ms;
    uint64_t n;

    if (behind <= GEN_MAX_LAG_MS)
        return;
    n = (uint64_t)(behind / gap_ms);
    rc->skipped += n;
    sl_log_warn("generator",
                "publishing is %.0f ms behind schedule; skipped %" PRIu64
                " %s (lower the rate)",
                behind, n, what);
    *due_ms = (double)now_ms;
}

int sl_generator_run(const sl_generator_config_t *cfg, struct sl_publisher *pub,
                     volatile int *stop)
{
    sl_sensor_sim_t *sim;
    run_counts_t rc = {0};
    sl_reading_t rec;
    sl_event_t ev;
    double reading_gap_ms, event_gap_ms, next_reading, next_event;
    int count, index = 0, err = SL_OK;

    if (!config_valid(cfg) || pub == NULL)
        return SL_EINVAL;
    sim = sl_sensor_sim_create(cfg);
    if (sim == NULL)
        return SL_ENOMEM;
    count = sim->sensor_count;
    /* --rate spreads the fleet over the rate. Otherwise each sensor reads
     * once per interval_s, so consecutive readings are interval/count
     * apart. */
    reading_gap_ms =
        cfg->rate > 0 ? 1000.0 / cfg->rate : cfg->interval_s * 1000.0 / count;
    event_gap_ms = cfg->event_interval_s * 1000.0;
    next_reading = (double)sl_time_mono_ms();
    next_event = next_reading + event_gap_ms;
    sl_log_info("generator",
                "generator started sensors=%d readings_per_s=%.1f users=%d "
                "event_interval_s=%g seed=%" PRIu64,
                count, 1000.0 / reading_gap_ms, cfg->users,
                cfg->event_interval_s, cfg->seed);

    while (!(stop != NULL && *stop) && err != SL_ECLOSED) {
        int64_t now = sl_time_mono_ms();
        double due;

        drop_backlog(&next_reading, reading_gap_ms, now, &rc, "readings");
        while (next_reading <= (double)now && err != SL_ECLOSED &&
               !(stop != NULL && *stop)) {
            sl_sensor_sim_reading(sim, index, sl_time_now_ms(), &rec);
            err = sl_publish_reading(pub, &rec);
            count_publish(&rc, err, "reading", rec.sensor_id);
            rc.readings += err == SL_OK;
            index = (index + 1) % count;
            next_reading += reading_gap_ms;
        }
        if (event_gap_ms > 0) {
            drop_backlog(&next_event, event_gap_ms, now, &rc, "events");
            while (next_event <= (double)now && err != SL_ECLOSED) {
                sl_sensor_sim_event(sim, sl_time_now_ms(), &ev);
                err = sl_publish_event(pub, &ev);
                count_publish(&rc, err, "event", ev.user_id);
                rc.events += err == SL_OK;
                next_event += event_gap_ms;
            }
        }

        due = next_reading;
        if (event_gap_ms > 0 && next_event < due)
            due = next_event;
        now = sl_time_mono_ms();
        sl_publisher_flush(pub); /* a batching publisher holds no records */
        if (due > (double)now)
            sl_time_sleep_ms(
                (int64_t)fmin(ceil(due - (double)now), GEN_STOP_CHECK_MS));
    }

    sl_log_info("generator",
                "generator stopped readings=%" PRIu64 " events=%" PRIu64
                " failed=%" PRIu64 " skipped=%" PRIu64 "%s",
                rc.readings, rc.events, rc.failed, rc.skipped,
                err == SL_ECLOSED ? " (bus closed)" : "");
    sl_sensor_sim_destroy(sim);
    return SL_OK;
}
