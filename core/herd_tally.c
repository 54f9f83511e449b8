//  core/herd_tally.c: how many of something each key holds.

#include "core/herd_core_layer.h"

struct _herd_tally_t {
    zhashx_t *counts;           //  key -> count, as a pointer-sized number
};

herd_tally_t *
herd_tally_new (void)
{
    herd_tally_t *self = (herd_tally_t *) zmalloc (sizeof (herd_tally_t));
    self->counts = zhashx_new ();
    return self;
}

void
herd_tally_destroy (herd_tally_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_tally_t *self = *self_p;
        zhashx_destroy (&self->counts);
        freen (self);
        *self_p = NULL;
    }
}

size_t
herd_tally_count (herd_tally_t *self, const char *key)
{
    assert (self && key);
    return (size_t) zhashx_lookup (self->counts, key);
}

void
herd_tally_add (herd_tally_t *self, const char *key)
{
    assert (self && key);
    zhashx_update (self->counts, key, (void *) (herd_tally_count (self, key) + 1));
}

void
herd_tally_remove (herd_tally_t *self, const char *key)
{
    assert (self && key);
    size_t count = herd_tally_count (self, key);
    if (count > 1)
        zhashx_update (self->counts, key, (void *) (count - 1));
    else
        zhashx_delete (self->counts, key);
}

size_t
herd_tally_keys (herd_tally_t *self)
{
    assert (self);
    return zhashx_size (self->counts);
}

//  --------------------------------------------------------------------------
//  Selftest

void
herd_tally_test (bool verbose)
{
    printf (" * herd_tally: ");
    if (verbose)
        printf ("\n");
    herd_tally_t *tally = herd_tally_new ();
    assert (herd_tally_count (tally, "10.0.0.1") == 0);
    herd_tally_add (tally, "10.0.0.1");
    herd_tally_add (tally, "10.0.0.1");
    herd_tally_add (tally, "10.0.0.2");
    assert (herd_tally_count (tally, "10.0.0.1") == 2 && herd_tally_keys (tally) == 2);
    herd_tally_remove (tally, "10.0.0.1");
    herd_tally_remove (tally, "10.0.0.2");
    herd_tally_remove (tally, "10.0.0.2");          //  None stays none
    assert (herd_tally_count (tally, "10.0.0.1") == 1 && herd_tally_count (tally, "10.0.0.2") == 0);
    assert (herd_tally_keys (tally) == 1);          //  Forgotten at none
    herd_tally_destroy (&tally);
    assert (tally == NULL);
    printf ("OK\n");
}
