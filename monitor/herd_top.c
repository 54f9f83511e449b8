//  monitor/herd_top.c: herd-monitor --top.

#include "bus/herd_bus_layer.h"
#include "places/herd_places_layer.h"
#include "herd_top.h"

#include <sys/ioctl.h>

#define S_FRAME_DEADLINE 800        //  msecs all servers have to answer, each frame
#define S_WIDE_COLUMNS  113         //  A terminal this wide gets the wide rows
                                    //  (112 characters, the digest 16 hex digits)

//  One server's row: its admin socket, and last second's counters
typedef struct {
    const char *name;           //  From the config (borrowed)
    herd_admin_t *admin;        //  Its admin endpoint
    json_t *state, *stats;      //  This frame's answers, or NULL
    bool known;                 //  Counters below are from a previous second
    double iamats, whatsats, updates_in, updates_out;
    int64_t when;               //  zclock_mono of those counters
} s_row_t;

//  One row of the screen, into line, from this frame's answers; counters
//  become rates. wide: the full row, else one that fits 80 columns.
static void
s_row (s_row_t *row, bool wide, char *line, size_t size)
{
    json_t *state = row->state, *stats = row->stats;
    if (!state || !stats) {
        snprintf (line, size, "%-10s %s", row->name, "-- silent: no answer within the frame --");
        row->known = false;
        return;
    }
    int64_t now = zclock_mono ();
    double iamats = herd_counters_value (stats, HERD_COUNTER_COMMANDS, "IAMAT");
    double whatsats = herd_counters_value (stats, HERD_COUNTER_COMMANDS, "WHATSAT");
    double updates_in = herd_counters_value (stats, HERD_COUNTER_UPDATES_IN, NULL)
                      + herd_counters_value (stats, HERD_COUNTER_UPDATES_FROM_CATCH_UP, NULL);
    double updates_out = herd_counters_value (stats, HERD_COUNTER_UPDATES_OUT, NULL);
    double connections = herd_counters_value (stats, HERD_COUNTER_CONNECTIONS_OPEN, NULL);
    json_t *held = json_object_get (state, "clients");
    double clients = json_is_number (held)? json_number_value (held): 0;
    double seconds = row->known? (now - row->when) / 1000.0: 0;
    //  Links: up (heard) of all, and whether a catch-up runs
    int up = 0, all = 0, syncing = 0, incompatible = 0;
    const char *neighbour;
    json_t *link;
    json_object_foreach (json_object_get (state, "links"), neighbour, link) {
        all++;
        up += json_is_true (json_object_get (link, "up"));
        syncing += json_is_true (json_object_get (link, "syncing"));
        incompatible += json_is_true (json_object_get (link, "incompatible"));
    }
    const char *journal = json_string_value (json_object_get (json_object_get (stats, "journal"), "state"));
    //  A neighbour of another release (bus format) cannot be read at all
    const char *catch_up = incompatible? "INCOMPATIBLE"
                         : syncing? "syncing"
                         : json_is_true (json_object_get (state, "caught_up"))? "caught up": "waiting";
    //  A full store is marked: it keeps the newest clients and drops the oldest
    char full = json_is_true (json_object_get (state, "store_full"))? '*': ' ';
    const char *digest = json_string_value (json_object_get (state, "digest"));
    char rates [4][16];
    double counts [4] = { iamats - row->iamats, whatsats - row->whatsats,
                          updates_in - row->updates_in, updates_out - row->updates_out };
    for (int index = 0; index < 4; index++)
        if (seconds > 0)
            snprintf (rates [index], sizeof rates [index], "%.0f", counts [index] / seconds);
        else
            snprintf (rates [index], sizeof rates [index], "-");
    char links [24];
    snprintf (links, sizeof links, "%d/%d", up, all);
    if (wide)
        snprintf (line, size, "%-10s %8.0f%c %6.0f %9s %9s %9s %9s %9s %-9s %-7s %s",
                  row->name, clients, full, connections,
                  rates [0], rates [1], rates [2], rates [3], links, catch_up, journal? journal: "-",
                  digest? digest: "-");
    else
        snprintf (line, size, "%-8.8s %7.0f%c %5.0f %6s %6s %6s %6s %5s %-7.7s %-4.4s %-8.8s",
                  row->name, clients, full, connections,
                  rates [0], rates [1], rates [2], rates [3], links,
                  syncing? "syncing": json_is_true (json_object_get (state, "caught_up"))? "ok": "waiting",
                  journal? journal: "-", digest? digest: "-");
    row->iamats = iamats;
    row->whatsats = whatsats;
    row->updates_in = updates_in;
    row->updates_out = updates_out;
    row->when = now;
    row->known = true;
}

//  Connects a row to its server's admin endpoint with the monitor's key
static int
s_connect (herd_config_t *config, herd_keys_t *keys, s_row_t *row)
{
    char *error = NULL;
    row->admin = herd_admin_new (config, keys, row->name, &error);
    if (!row->admin) {
        fprintf (stderr, "herd-monitor: %s\n", error);
        freen (error);
        return -1;
    }
    return 0;
}

int
herd_top_run (herd_config_t *config, herd_keys_t *keys, zlistx_t *servers, long seconds)
{
    assert (config && keys && servers);
    size_t count = zlistx_size (servers);
    s_row_t *rows = (s_row_t *) calloc (count, sizeof (s_row_t));
    assert (rows);
    int rc = 0;
    size_t index = 0;
    for (const char *name = (const char *) zlistx_first (servers); name && rc == 0;
         name = (const char *) zlistx_next (servers), index++) {
        rows [index].name = name;
        rc = s_connect (config, keys, &rows [index]);
    }
    //  A terminal gets the screen redrawn in place; a pipe gets frames
    bool terminal = isatty (STDOUT_FILENO);
    int64_t started = zclock_mono ();
    while (rc == 0 && !zsys_interrupted && (!seconds || zclock_mono () - started < seconds * 1000)) {
        int64_t frame_start = zclock_mono ();
        //  Every server is asked at once, and has until the deadline: one
        //  that is down or slow costs the frame nothing but its own row
        zpoller_t *poller = zpoller_new (NULL);
        size_t waiting = 0;
        for (index = 0; index < count; index++) {
            s_row_t *row = &rows [index];
            if (herd_admin_send (row->admin, "STATE") == 0 && herd_admin_send (row->admin, "STATS") == 0) {
                zpoller_add (poller, herd_admin_sock (row->admin));
                waiting++;
            }
        }
        while (rc == 0 && waiting && !zsys_interrupted) {
            int64_t left = S_FRAME_DEADLINE - (zclock_mono () - frame_start);
            if (left <= 0)
                break;
            zsock_t *which = (zsock_t *) zpoller_wait (poller, (int) left);
            if (!which)
                continue;
            for (index = 0; index < count && herd_admin_sock (rows [index].admin) != which; index++)
                ;
            s_row_t *row = &rows [index];
            json_t *json = herd_admin_recv (row->admin, 0);
            if (!row->state)
                row->state = json;
            else
            if (!row->stats) {
                row->stats = json;
                zpoller_remove (poller, which);
                waiting--;
            }
            else
                json_decref (json);
        }
        zpoller_destroy (&poller);
        //  A terminal gets the screen redrawn in place, in its width; a
        //  pipe gets frames, 80 columns wide
        struct winsize window = { 0 };
        bool wide = terminal && ioctl (STDOUT_FILENO, TIOCGWINSZ, &window) == 0
                 && window.ws_col >= S_WIDE_COLUMNS;
        char clock [32];
        time_t now = time (NULL);
        strftime (clock, sizeof clock, "%H:%M:%S", localtime (&now));
        if (terminal)
            printf ("\033[H\033[2J");
        //  The config's name only if the line still fits
        int columns = terminal && window.ws_col? window.ws_col: 80;
        char title [512];
        snprintf (title, sizeof title, "herd top  %s  %zu servers (%s)   Ctrl-C to quit", clock, count,
                  herd_config_filename (config));
        if ((int) strlen (title) >= columns)
            snprintf (title, sizeof title, "herd top  %s  %zu servers   Ctrl-C to quit", clock, count);
        printf ("%s\n\n", title);
        if (wide)
            printf ("%-10s %9s %6s %9s %9s %9s %9s %9s %-9s %-7s %s\n", "SERVER", "CLIENTS", "CONNS",
                    "IAMAT/s", "WHATSAT/s", "UPD IN/s", "UPD OUT/s", "LINKS", "CATCH-UP", "JOURNAL", "DIGEST");
        else
            printf ("%-8s %8s %5s %6s %6s %6s %6s %5s %-7s %-4s %-8s\n", "SERVER", "CLIENTS", "CONNS",
                    "IAMAT", "WHAT", "IN", "OUT", "LINKS", "SYNC", "JRNL", "DIGEST");
        for (index = 0; index < count; index++) {
            s_row_t *row = &rows [index];
            char line [256];
            s_row (row, wide, line, sizeof line);
            printf ("%s\n", line);
            //  A row left without its answers drops its socket, and with it
            //  any answer that comes late
            if (!row->state || !row->stats)
                herd_admin_reset (row->admin);
            json_decref (row->state);
            json_decref (row->stats);
            row->state = row->stats = NULL;
        }
        if (!wide)
            printf ("(IAMAT, WHAT: commands/s; IN, OUT: updates/s)\n");
        printf ("(CLIENTS*: store full, herd/max_stored: it keeps the newest clients)\n\n");
        fflush (stdout);
        int64_t left = 1000 - (zclock_mono () - frame_start);
        if (left > 0)
            zclock_sleep ((int) left);
    }
    for (index = 0; index < count; index++)
        herd_admin_destroy (&rows [index].admin);
    freen (rows);
    return rc;
}
