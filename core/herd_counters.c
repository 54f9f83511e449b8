//  core/herd_counters.c: the one table of a server's numbers.

#include "core/herd_core_layer.h"

static const herd_counter_def_t s_defs [HERD_COUNTER_COUNT] = {
#define HERD_COUNTER_DEF(id, path, name, kind, help, label, scale) \
    { path, name, HERD_COUNTER_KIND_##kind, help, label, scale },
    HERD_COUNTERS (HERD_COUNTER_DEF)
#undef HERD_COUNTER_DEF
};

const herd_counter_def_t *
herd_counters_def (herd_counter_t id)
{
    assert (id < HERD_COUNTER_COUNT);
    return &s_defs [id];
}

//  The object that holds a path's last key, made on the way if make;
//  *last_p points at that key inside copy
static json_t *
s_parent (json_t *stats, const char *path, char *copy, size_t size, const char **last_p, bool make)
{
    snprintf (copy, size, "%s", path);
    json_t *node = stats;
    char *key = copy;
    for (char *slash = strchr (key, '/'); slash && node; slash = strchr (key, '/')) {
        *slash = 0;
        json_t *child = json_object_get (node, key);
        if (!child && make) {
            child = json_object ();
            json_object_set_new (node, key, child);
        }
        node = json_is_object (child)? child: NULL;
        key = slash + 1;
    }
    *last_p = key;
    return node;
}

void
herd_counters_put_json (json_t *stats, herd_counter_t id, json_t *value)
{
    assert (stats && id < HERD_COUNTER_COUNT && value);
    char copy [64];
    const char *last;
    json_t *parent = s_parent (stats, s_defs [id].path, copy, sizeof copy, &last, true);
    assert (parent);
    json_object_set_new (parent, last, value);
}

void
herd_counters_put (json_t *stats, herd_counter_t id, uint64_t value)
{
    assert (id < HERD_COUNTER_COUNT && !s_defs [id].label);
    herd_counters_put_json (stats, id, json_integer ((json_int_t) value));
}

void
herd_counters_put_keyed (json_t *stats, herd_counter_t id, const char *key, uint64_t value)
{
    assert (stats && id < HERD_COUNTER_COUNT && s_defs [id].label && key);
    json_t *object = herd_counters_get (stats, id);
    if (!json_is_object (object)) {
        object = json_object ();
        herd_counters_put_json (stats, id, object);
    }
    json_object_set_new (object, key, json_integer ((json_int_t) value));
}

json_t *
herd_counters_get (json_t *stats, herd_counter_t id)
{
    assert (id < HERD_COUNTER_COUNT);
    if (!stats)
        return NULL;
    char copy [64];
    const char *last;
    json_t *parent = s_parent (stats, s_defs [id].path, copy, sizeof copy, &last, false);
    return parent? json_object_get (parent, last): NULL;
}

double
herd_counters_value (json_t *stats, herd_counter_t id, const char *key)
{
    json_t *value = herd_counters_get (stats, id);
    if (key)
        value = json_object_get (value, key);
    if (json_is_boolean (value))
        return json_is_true (value);
    return json_is_number (value)? json_number_value (value): 0;
}

//  --------------------------------------------------------------------------
//  Selftest

void
herd_counters_test (bool verbose)
{
    printf (" * herd_counters: ");
    if (verbose)
        printf ("\n");
    //  Every definition is whole, its path and its name used once
    for (int id = 0; id < HERD_COUNTER_COUNT; id++) {
        const herd_counter_def_t *def = herd_counters_def ((herd_counter_t) id);
        assert (def->path && *def->path && strlen (def->path) < 64);
        assert (!strncmp (def->name, "herd_", 5) && def->help && *def->help && def->scale > 0);
        //  Prometheus: a counter's name ends in _total
        assert ((def->kind == HERD_COUNTER_KIND_COUNTER) == (strstr (def->name, "_total") != NULL));
        for (int other = 0; other < id; other++) {
            assert (!streq (def->path, herd_counters_def ((herd_counter_t) other)->path));
            assert (!streq (def->name, herd_counters_def ((herd_counter_t) other)->name));
        }
    }
    //  What is put at a path is read back there, and nowhere else
    json_t *stats = json_object ();
    herd_counters_put (stats, HERD_COUNTER_JOURNAL_SYNCS, 7);
    herd_counters_put (stats, HERD_COUNTER_JOURNAL_BYTES, 4096);
    herd_counters_put (stats, HERD_COUNTER_CONNECTIONS_OPEN, 3);
    herd_counters_put_keyed (stats, HERD_COUNTER_COMMANDS, "IAMAT", 5);
    herd_counters_put_keyed (stats, HERD_COUNTER_COMMANDS, "WHATSAT", 2);
    herd_counters_put_json (stats, HERD_COUNTER_STORE_FULL, json_true ());
    assert (json_integer_value (json_object_get (json_object_get (stats, "journal"), "syncs")) == 7);
    assert (json_integer_value (json_object_get (json_object_get (stats, "journal"), "bytes")) == 4096);
    assert (herd_counters_value (stats, HERD_COUNTER_JOURNAL_SYNCS, NULL) == 7);
    assert (herd_counters_value (stats, HERD_COUNTER_CONNECTIONS_OPEN, NULL) == 3);
    assert (herd_counters_value (stats, HERD_COUNTER_COMMANDS, "WHATSAT") == 2);
    assert (herd_counters_value (stats, HERD_COUNTER_STORE_FULL, NULL) == 1);
    assert (herd_counters_value (stats, HERD_COUNTER_JOURNAL_FAILURES, NULL) == 0);
    assert (!herd_counters_get (stats, HERD_COUNTER_PLACES_REQUESTS));
    assert (!herd_counters_get (NULL, HERD_COUNTER_UPTIME));
    json_decref (stats);
    printf ("OK\n");
}
