//  monitor/herd_top.c: herd-monitor --top.

#include "../herd_classes.h"
#include "herd_top.h"

#define S_ASK_TIMEOUT   800         //  msecs a server has to answer, each second

//  One server's row: its admin socket, and last second's counters
typedef struct {
    const char *name;           //  From the config (borrowed)
    zsock_t *admin;             //  DEALER to its admin endpoint
    bool known;                 //  Counters below are from a previous second
    double iamats, whatsats, updates_in, updates_out;
    int64_t when;               //  zclock_mono of those counters
} s_row_t;

static double
s_number (json_t *root, const char *first, const char *second)
{
    json_t *node = json_object_get (root, first);
    if (second)
        node = json_object_get (node, second);
    return json_is_number (node)? json_number_value (node): 0;
}

//  Asks one question, and takes its answer or none within the timeout
static json_t *
s_ask (s_row_t *row, const char *request)
{
    char *reply = herd_node_ask (&row->admin, request);
    json_t *json = reply? json_loads (reply, 0, NULL): NULL;
    freen (reply);
    return json;
}

//  One row of the screen, into line; counters become rates
static void
s_row (s_row_t *row, char *line, size_t size)
{
    json_t *state = s_ask (row, "STATE");
    json_t *stats = state? s_ask (row, "STATS"): NULL;
    if (!state || !stats) {
        snprintf (line, size, "%-10s  %s", row->name, "-- no answer --");
        json_decref (state);
        json_decref (stats);
        //  A question left unanswered took the socket with it
        //  (herd_node_ask); one answered with no JSON drops it here
        zsock_destroy (&row->admin);
        row->known = false;
        return;
    }
    int64_t now = zclock_mono ();
    double iamats = s_number (stats, "commands", "IAMAT");
    double whatsats = s_number (stats, "commands", "WHATSAT");
    double updates_in = s_number (stats, "updates", "in") + s_number (stats, "updates", "from_catch_up");
    double updates_out = s_number (stats, "updates", "out");
    double seconds = row->known? (now - row->when) / 1000.0: 0;
    //  Links: up (heard) of all, and whether a catch-up runs
    int up = 0, all = 0, syncing = 0;
    const char *neighbour;
    json_t *link;
    json_object_foreach (json_object_get (state, "links"), neighbour, link) {
        all++;
        up += json_is_true (json_object_get (link, "connected")) && !json_is_true (json_object_get (link, "lost"));
        const char *peer_state = json_string_value (json_object_get (link, "state"));
        syncing += peer_state && (streq (peer_state, "syncing") || streq (peer_state, "again"));
    }
    const char *journal = json_string_value (json_object_get (json_object_get (stats, "journal"), "state"));
    const char *catch_up = syncing? "syncing": json_is_true (json_object_get (state, "caught_up"))? "caught up": "waiting";
    if (seconds > 0)
        snprintf (line, size, "%-10s %9.0f %6.0f %9.0f %9.0f %9.0f %9.0f %5d/%-3d %-9s %-7s %s",
                  row->name, s_number (state, "clients", NULL), s_number (state, "connections", NULL),
                  (iamats - row->iamats) / seconds, (whatsats - row->whatsats) / seconds,
                  (updates_in - row->updates_in) / seconds, (updates_out - row->updates_out) / seconds,
                  up, all, catch_up, journal? journal: "-",
                  json_string_value (json_object_get (state, "digest")));
    else
        snprintf (line, size, "%-10s %9.0f %6.0f %9s %9s %9s %9s %5d/%-3d %-9s %-7s %s",
                  row->name, s_number (state, "clients", NULL), s_number (state, "connections", NULL),
                  "-", "-", "-", "-", up, all, catch_up, journal? journal: "-",
                  json_string_value (json_object_get (state, "digest")));
    row->iamats = iamats;
    row->whatsats = whatsats;
    row->updates_in = updates_in;
    row->updates_out = updates_out;
    row->when = now;
    row->known = true;
    json_decref (state);
    json_decref (stats);
}

//  (Re)connects a row's admin socket with the monitor's key
static int
s_connect (herd_config_t *config, herd_keys_t *keys, s_row_t *row)
{
    const char *endpoint = herd_config_server_endpoint (config, row->name, "admin");
    if (!endpoint) {
        fprintf (stderr, "herd-monitor: server %s has no admin endpoint in %s\n", row->name,
                 herd_config_filename (config));
        return -1;
    }
    char *error = NULL;
    row->admin = zsock_new (ZMQ_DEALER);
    if (herd_keys_apply_client (keys, row->admin, row->name, &error)) {
        fprintf (stderr, "herd-monitor: %s\n", error);
        freen (error);
        return -1;
    }
    zsock_set_rcvtimeo (row->admin, S_ASK_TIMEOUT);
    zsock_set_sndtimeo (row->admin, 0);
    zsock_set_linger (row->admin, 0);
    zsock_connect (row->admin, "%s", endpoint);
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
        char clock [32];
        time_t now = time (NULL);
        strftime (clock, sizeof clock, "%H:%M:%S", localtime (&now));
        if (terminal)
            printf ("\033[H\033[2J");
        printf ("herd top  %s  %zu servers (%s)   Ctrl-C to quit\n\n", clock, count,
                herd_config_filename (config));
        printf ("%-10s %9s %6s %9s %9s %9s %9s %9s %-9s %-7s %s\n", "SERVER", "CLIENTS", "CONNS",
                "IAMAT/s", "WHATSAT/s", "UPD IN/s", "UPD OUT/s", "LINKS", "CATCH-UP", "JOURNAL", "DIGEST");
        for (index = 0; index < count; index++) {
            if (!rows [index].admin && s_connect (config, keys, &rows [index])) {
                rc = 1;
                break;
            }
            char line [256];
            s_row (&rows [index], line, sizeof line);
            printf ("%s\n", line);
        }
        printf ("\n");
        fflush (stdout);
        int64_t left = 1000 - (zclock_mono () - frame_start);
        if (left > 0)
            zclock_sleep ((int) left);
    }
    for (index = 0; index < count; index++)
        zsock_destroy (&rows [index].admin);
    freen (rows);
    return rc;
}
