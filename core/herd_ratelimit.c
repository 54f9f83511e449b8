//  core/herd_ratelimit.c: log lines limited per source.

#include "core/herd_core_layer.h"
#include <syslog.h>

typedef struct {
    int64_t window;             //  zclock_mono when its interval began
    size_t written;             //  Lines written in that interval
    uint64_t suppressed;        //  Lines suppressed since its last written one
} s_source_t;

struct _herd_ratelimit_t {
    int64_t interval;           //  msecs
    size_t burst;               //  Lines per interval and source
    size_t max_sources;
    zhashx_t *sources;          //  Source string -> s_source_t (owned)
    s_source_t shared;          //  For sources past max_sources
    int64_t purged;             //  When quiet sources were last forgotten
};

//  Every limiter's suppressed lines, for STATS (limiters live in several
//  threads)
static uint64_t s_suppressed_total = 0;

static void
s_source_destroy (void **item_p)
{
    freen (*item_p);
}

herd_ratelimit_t *
herd_ratelimit_new (int64_t interval_msecs, size_t burst, size_t max_sources)
{
    assert (interval_msecs > 0 && burst > 0 && max_sources > 0);
    herd_ratelimit_t *self = (herd_ratelimit_t *) zmalloc (sizeof (herd_ratelimit_t));
    self->interval = interval_msecs;
    self->burst = burst;
    self->max_sources = max_sources;
    self->sources = zhashx_new ();
    zhashx_set_destructor (self->sources, s_source_destroy);
    return self;
}

void
herd_ratelimit_destroy (herd_ratelimit_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_ratelimit_t *self = *self_p;
        zhashx_destroy (&self->sources);
        freen (self);
        *self_p = NULL;
    }
}

//  The budget of source: its own, or the shared one when max_sources are
//  told apart already and none of them has been heard for an interval
static s_source_t *
s_source (herd_ratelimit_t *self, const char *source, int64_t now)
{
    s_source_t *entry = (s_source_t *) zhashx_lookup (self->sources, source);
    if (entry)
        return entry;
    if (zhashx_size (self->sources) >= self->max_sources && now - self->purged >= self->interval) {
        //  Forget sources quiet for an interval with nothing owed, at
        //  most once an interval (a flood of new sources costs no scan each)
        self->purged = now;
        zlistx_t *keys = zhashx_keys (self->sources);
        for (const char *key = (const char *) zlistx_first (keys); key; key = (const char *) zlistx_next (keys)) {
            s_source_t *old = (s_source_t *) zhashx_lookup (self->sources, key);
            if (now - old->window >= self->interval && old->suppressed == 0)
                zhashx_delete (self->sources, key);
        }
        zlistx_destroy (&keys);
    }
    if (zhashx_size (self->sources) >= self->max_sources)
        return &self->shared;
    entry = (s_source_t *) zmalloc (sizeof (s_source_t));
    entry->window = now;
    zhashx_insert (self->sources, source, entry);
    return entry;
}

void
herd_ratelimit_log (herd_ratelimit_t *self, const char *source, int level, const char *format, ...)
{
    assert (self && source && format);
    int64_t now = zclock_mono ();
    s_source_t *entry = s_source (self, source, now);
    if (now - entry->window >= self->interval) {
        entry->window = now;
        entry->written = 0;
    }
    if (entry->written >= self->burst) {
        entry->suppressed++;
        __atomic_add_fetch (&s_suppressed_total, 1, __ATOMIC_RELAXED);
        return;
    }
    entry->written++;
    va_list arguments;
    va_start (arguments, format);
    char *line = zsys_vprintf (format, arguments);
    va_end (arguments);
    if (!line)
        return;
    char tail [96] = "";
    if (entry->suppressed)
        snprintf (tail, sizeof tail, " (%" PRIu64 " more like it from %s suppressed)",
                  entry->suppressed, source);
    entry->suppressed = 0;
    if (level == LOG_ERR)
        zsys_error ("%s%s", line, tail);
    else
    if (level == LOG_WARNING)
        zsys_warning ("%s%s", line, tail);
    else
        zsys_info ("%s%s", line, tail);
    freen (line);
}

uint64_t
herd_ratelimit_suppressed_total (void)
{
    return __atomic_load_n (&s_suppressed_total, __ATOMIC_RELAXED);
}

//  --------------------------------------------------------------------------
//  Selftest: lines counted through a log stream of our own

static size_t
s_test_lines (FILE *stream, const char *needle)
{
    fflush (stream);
    rewind (stream);
    char line [512];
    size_t count = 0;
    while (fgets (line, sizeof line, stream))
        if (strstr (line, needle))
            count++;
    return count;
}

void
herd_ratelimit_test (bool verbose)
{
    printf (" * herd_ratelimit: ");
    if (verbose)
        printf ("\n");
    FILE *stream = tmpfile ();
    assert (stream);
    zsys_set_logstream (stream);
    herd_ratelimit_t *limit = herd_ratelimit_new (200, 3, 2);
    uint64_t before = herd_ratelimit_suppressed_total ();
    //  Three lines an interval from one source; the others counted
    for (int line = 0; line < 10; line++)
        herd_ratelimit_log (limit, "Bona", LOG_WARNING, "gap %d from Bona", line);
    assert (s_test_lines (stream, "from Bona") == 3);
    assert (herd_ratelimit_suppressed_total () - before == 7);
    //  Another source has a budget of its own
    herd_ratelimit_log (limit, "10.0.0.1", LOG_INFO, "opened from 10.0.0.1");
    assert (s_test_lines (stream, "opened from 10.0.0.1") == 1);
    //  Past max_sources, new sources share one budget
    for (int line = 0; line < 5; line++)
        herd_ratelimit_log (limit, line % 2? "x": "y", LOG_ERR, "shared %d", line);
    assert (s_test_lines (stream, "shared") == 3);
    //  The next interval: written again, saying what was suppressed
    zclock_sleep (250);
    herd_ratelimit_log (limit, "Bona", LOG_WARNING, "gap again from Bona");
    assert (s_test_lines (stream, "gap again from Bona (7 more like it from Bona suppressed)") == 1);
    herd_ratelimit_log (limit, "Bona", LOG_WARNING, "gap last from Bona");
    assert (s_test_lines (stream, "gap last from Bona\n") == 1);
    herd_ratelimit_destroy (&limit);
    assert (limit == NULL);
    zsys_set_logstream (stderr);
    fclose (stream);
    printf ("OK\n");
}
