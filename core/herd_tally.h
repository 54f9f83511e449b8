//  core/herd_tally.h: how many of something each key holds, such as the
//  connections open from each address, for a per-address limit. Keys with
//  none are forgotten, so it holds only what is open. Not thread-safe.

#ifndef HERD_TALLY_H_INCLUDED
#define HERD_TALLY_H_INCLUDED

typedef struct _herd_tally_t herd_tally_t;

herd_tally_t *
    herd_tally_new (void);

void
    herd_tally_destroy (herd_tally_t **self_p);

//  How many key holds now
size_t
    herd_tally_count (herd_tally_t *self, const char *key);

//  One more for key
void
    herd_tally_add (herd_tally_t *self, const char *key);

//  One fewer for key (none stays none)
void
    herd_tally_remove (herd_tally_t *self, const char *key);

//  Keys that hold any
size_t
    herd_tally_keys (herd_tally_t *self);

void
    herd_tally_test (bool verbose);

#endif
