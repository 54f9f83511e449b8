//  core/herd_traffic.c: the traffic log, batched.

#include "core/herd_core_layer.h"

#define S_FLUSH_AT      (64 * 1024)     //  Held bytes that make a write
#define S_SAMPLE_MAX    600             //  Longest rendering of a line's bytes

struct _herd_traffic_t {
    char *ident;                //  Server name, as zsys's log ident
    char *buffer;               //  Lines not yet written (owned)
    size_t used;
    size_t capacity;
    char prefix [96];           //  "I: (ident) 2026-12-05 06:15:23.123 +0000 "
    size_t prefix_size;
};

herd_traffic_t *
herd_traffic_new (const char *ident)
{
    assert (ident);
    herd_traffic_t *self = (herd_traffic_t *) zmalloc (sizeof (herd_traffic_t));
    self->ident = strdup (ident);
    self->capacity = S_FLUSH_AT + 4 * S_SAMPLE_MAX;
    self->buffer = (char *) malloc (self->capacity);
    assert (self->buffer);
    return self;
}

void
herd_traffic_destroy (herd_traffic_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        herd_traffic_t *self = *self_p;
        herd_traffic_flush (self);
        freen (self->buffer);
        freen (self->ident);
        freen (self);
        *self_p = NULL;
    }
}

//  The prefix the log writes now (core/herd_log's time), made once a
//  pass: every line of a pass carries the time of its first
static void
s_refresh_prefix (herd_traffic_t *self)
{
    if (self->used)
        return;
    char date [HERD_LOG_TIME_SIZE];
    herd_log_time (date, sizeof date);
    self->prefix_size = snprintf (self->prefix, sizeof self->prefix, "I: (%.40s) %s ", self->ident, date);
}

static void
s_add (herd_traffic_t *self, const char *text, size_t size)
{
    memcpy (self->buffer + self->used, text, size);
    self->used += size;
}

static void
s_add_sample (herd_traffic_t *self, const char *data, size_t size)
{
    herd_log_sample (data, size, self->buffer + self->used, S_SAMPLE_MAX);
    self->used += strlen (self->buffer + self->used);
}

//  Starts a line: the prefix, then head (at most 64 bytes)
static void
s_start_line (herd_traffic_t *self, const char *head, size_t head_size)
{
    s_refresh_prefix (self);
    //  Room for the worst case: prefix, head, two samples, words, note
    if (self->used + 4 * S_SAMPLE_MAX > self->capacity)
        herd_traffic_flush (self);
    s_add (self, self->prefix, self->prefix_size);
    s_add (self, head, head_size < 64? head_size: 64);
}

static void
s_end_line (herd_traffic_t *self, const char *note)
{
    if (note)
        s_add (self, note, strnlen (note, S_SAMPLE_MAX));
    self->buffer [self->used++] = '\n';
    if (self->used >= S_FLUSH_AT)
        herd_traffic_flush (self);
}

void
herd_traffic_line (herd_traffic_t *self, const char *head, const char *data, size_t size,
                   const char *note)
{
    assert (self && head && data);
    s_start_line (self, head, strlen (head));
    s_add_sample (self, data, size);
    s_end_line (self, note);
}

void
herd_traffic_client (herd_traffic_t *self, uint64_t client_id, const char *what,
                     const char *first, size_t first_size,
                     const char *then, const char *second, size_t second_size,
                     const char *note)
{
    assert (self && what && first);
    char head [64] = "client ";
    size_t used = 7 + herd_protocol_format_u64 (head + 7, client_id);
    head [used++] = ' ';
    size_t what_size = strnlen (what, 16);
    memcpy (head + used, what, what_size);
    used += what_size;
    head [used++] = ' ';
    s_start_line (self, head, used);
    s_add_sample (self, first, first_size);
    if (then && second) {
        self->buffer [self->used++] = ' ';
        s_add (self, then, strnlen (then, 16));
        self->buffer [self->used++] = ' ';
        s_add_sample (self, second, second_size);
    }
    s_end_line (self, note);
}

void
herd_traffic_flush (herd_traffic_t *self)
{
    assert (self);
    if (self->used == 0)
        return;
    herd_log_write (self->buffer, self->used);
    self->used = 0;
}

//  --------------------------------------------------------------------------
//  Selftest

void
herd_traffic_test (bool verbose)
{
    printf (" * herd_traffic: ");
    if (verbose)
        printf ("\n");
    char *path = zsys_sprintf ("/tmp/herd-traffic-test-%d/server.log", getpid ());
    assert (herd_log_open (path, false) == 0);
    herd_traffic_t *traffic = herd_traffic_new ("Test");
    herd_traffic_client (traffic, 7, "IAMAT", "kiwi +1+1 5", 11, ">", "AT Test +0.1 kiwi +1+1 5", 24, NULL);
    herd_traffic_client (traffic, 8, ">", "? bad\x01", 6, NULL, NULL, 0, "   (unknown command)");
    herd_traffic_line (traffic, "bus: published: ", "AT Test +0.1 kiwi +1+1 5", 24, NULL);
    //  Nothing reaches the file before the flush
    struct stat status;
    assert (stat (path, &status) == 0 && status.st_size == 0);
    herd_traffic_flush (traffic);
    zsys_info ("a zsys line");
    //  Past 64 KiB the buffer writes by itself
    char long_line [2000];
    memset (long_line, 'x', sizeof long_line);
    for (int line = 0; line < 200; line++)
        herd_traffic_client (traffic, 9, "<", long_line, sizeof long_line, NULL, NULL, 0, NULL);
    assert (stat (path, &status) == 0 && status.st_size > 64 * 1024);
    herd_traffic_destroy (&traffic);
    herd_log_close ();
    zchunk_t *chunk = zchunk_slurp (path, 0);
    char *text = zchunk_strdup (chunk);
    char *first = strtok (text, "\n");
    char *second = strtok (NULL, "\n");
    char *bus = strtok (NULL, "\n");
    char *third = strtok (NULL, "\n");
    assert (!strcmp (bus + 40, "bus: published: AT Test +0.1 kiwi +1+1 5"));
    //  The same prefix as zsys's own lines, as the log writes them: a
    //  four-digit year, milliseconds, the zone ("I: (Test) 2026-12-05
    //  06:15:23.123 +0000 ", 40 bytes)
    assert (!strncmp (first, "I: (Test) ", 10) && !strncmp (third, "I: ", 3));
    assert (first [14] == '-' && first [29] == '.' && first [33] == ' ' && first [39] == ' ');
    char *zsys_time = strchr (third, ' ') + 1;
    if (*zsys_time == '(')
        zsys_time = strchr (zsys_time, ' ') + 1;
    assert (zsys_time [4] == '-' && zsys_time [19] == '.' && zsys_time [23] == ' ');
    assert (!strcmp (first + 40, "client 7 IAMAT kiwi +1+1 5 > AT Test +0.1 kiwi +1+1 5"));
    assert (!strcmp (second + 40, "client 8 > ? bad\\x01   (unknown command)"));
    assert (strstr (third, "a zsys line"));
    size_t lines = 4;
    while (strtok (NULL, "\n"))
        lines++;
    assert (lines == 204);
    freen (text);
    zchunk_destroy (&chunk);
    unlink (path);
    *strrchr (path, '/') = 0;
    rmdir (path);
    freen (path);
    printf ("OK\n");
}
