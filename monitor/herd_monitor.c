//  monitor/herd_monitor.c: watch a herd's update feeds.
//
//  herd-monitor [OPTIONS] SOURCE...
//  A SOURCE is a feed endpoint (tcp://host:port) or a server name looked
//  up in the herd config. Subscribes to each and prints every update it
//  accepts as it arrives, with the server it came from.

#include "bus/herd_bus_layer.h"
#include "places/herd_places_layer.h"
#include "herd_top.h"
#include "herd_web.h"
#include <getopt.h>

static void
s_usage (FILE *stream)
{
    fprintf (stream,
        "Usage: herd-monitor [OPTIONS] SOURCE...\n"
        "       herd-monitor [--config FILE] [--cert NAME] --top [NAME...]\n"
        "       herd-monitor [--config FILE] [--cert NAME] --web [HOST:]PORT\n"
        "                    [--token-file FILE]\n"
        "Prints every update the herd's servers accept, from their update feeds.\n"
        "A SOURCE is a server name from the config, or a feed endpoint such as\n"
        "tcp://127.0.0.1:11501.\n"
        "\n"
        "  -c, --config FILE    herd config for server names (default: $HERD_CONFIG,\n"
        "                       else ./herd.cfg)\n"
        "  -p, --client PREFIX  only updates for client ids starting with PREFIX\n"
        "  -j, --json           one JSON object a line instead of plain text\n"
        "  -s, --stats          print update rates per server every second instead\n"
        "  -T, --top            a live view of the servers named (default: all in\n"
        "                       the config), redrawn every second from their admin\n"
        "                       endpoints: clients, connections, IAMAT/s, WHATSAT/s,\n"
        "                       updates in and out per second, links up, catch-up,\n"
        "                       journal, store digest (equal digests: equal stores)\n"
        "  -w, --web [HOST:]PORT  serve the live map of every server in the config on\n"
        "                       HOST (default 127.0.0.1) and PORT: clients as they\n"
        "                       move, the servers and their links, WHATSAT around a\n"
        "                       client. It prints its address with a token to open\n"
        "                       in a browser; every request without it gets 401\n"
        "  -k, --token-file FILE  the web token: the first line of FILE (16 or more\n"
        "                       characters) instead of a new one each start\n"
        "  -C, --cert NAME      connect with the certificate of NAME under the\n"
        "                       config's herd/keys (default: monitor); the server\n"
        "                       must list its public key. A SOURCE given as an\n"
        "                       endpoint must be one of the config's feed endpoints\n"
        "                       (so its server key is known), unless security is off\n"
        "  -n, --count N        exit after N updates\n"
        "  -t, --timeout SECS   exit after SECS seconds\n"
        "  -V, --version        print the version\n"
        "  -h, --help           show this help\n"
        "\n"
        "A server's feed (servers/NAME/feed in the config, a ZeroMQ XPUB socket)\n"
        "sends every update the server accepts, from a client or a neighbour,\n"
        "as one message of two frames: [client id][AT line]. The AT line is\n"
        "exactly what clients see:\n"
        "  AT <server> <skew> <client> <coordinates> <client time>\n"
        "A client forgotten (FORGET, or herd/client_ttl) is a GONE line instead:\n"
        "  GONE <server> <skew> <client> <client time>\n"
        "Subscribe with a client id prefix to get only those clients. The\n"
        "server does no work for its feed while nobody subscribes.\n"
        "\n"
        "Plain output:  <from> <AT or GONE line>\n"
        "JSON output:   {\"from\", \"client\", \"at\", \"received\"}\n"
        "(-C and --cert mean the same in herd and herd-monitor; -K is kept as an\n"
        " old spelling of --cert.)\n");
}

typedef struct {
    char *name;                 //  Server name, or the endpoint
    zsock_t *sub;
    uint64_t updates;           //  Since the last stats line
    uint64_t total;
} s_source_t;

//  --top [NAME ...]: the live view of the servers named, or of all
static int
s_top (const char *config_file, const char *cert, int count, char *names [], long timeout)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    char *error = NULL;
    herd_config_t *config = herd_config_load (config_file, &error);
    herd_keys_t *keys = config? herd_keys_new (config, cert, &error): NULL;
    if (!keys) {
        fprintf (stderr, "herd-monitor: %s\n", error);
        freen (error);
        herd_config_destroy (&config);
        return 1;
    }
    zlistx_t *servers = count? zlistx_new (): herd_config_servers (config);
    int rc = 0;
    for (int index = 0; index < count; index++) {
        if (!herd_config_has_server (config, names [index])) {
            fprintf (stderr, "herd-monitor: no server named '%s' in %s\n", names [index], config_file);
            rc = 1;
        }
        zlistx_add_end (servers, names [index]);
    }
    if (rc == 0)
        rc = herd_top_run (config, keys, servers, timeout);
    if (count)
        zlistx_destroy (&servers);
    herd_keys_destroy (&keys);
    herd_config_destroy (&config);
    return rc;
}

//  --web [HOST:]PORT: the live map of every server in the config
static int
s_web (const char *config_file, const char *cert, const char *address, const char *token_file, long timeout)
{
    zsys_init ();
    zsys_set_logstream (stderr);
    char *error = NULL;
    herd_config_t *config = herd_config_load (config_file, &error);
    herd_keys_t *keys = config? herd_keys_new (config, cert, &error): NULL;
    char token [256] = "";
    if (keys && token_file) {
        FILE *file = fopen (token_file, "r");
        if (!file || !fgets (token, sizeof token, file))
            error = zsys_sprintf ("--token-file %s: %s", token_file, file? "empty": strerror (errno));
        else
            token [strcspn (token, "\r\n")] = 0;
        if (file)
            fclose (file);
    }
    int rc = 1;
    if (error)
        fprintf (stderr, "herd-monitor: %s\n", error);
    else
        rc = herd_web_run (config, keys, address, token_file? token: NULL, timeout);
    freen (error);
    herd_keys_destroy (&keys);
    herd_config_destroy (&config);
    return rc;
}

//  What the command line asks for
typedef struct {
    const char *config_file;
    const char *prefix;         //  Client ids to watch: those that start so
    bool json, stats, top;
    long count, timeout;        //  0: no bound
    const char *cert;
    const char *web, *token_file;
} s_args_t;

//  The feed endpoint that a SOURCE names, and the server whose key it
//  expects (NULL if none is known); NULL (said why) if it names none
static const char *
s_source_endpoint (const char *source, herd_config_t *config, herd_keys_t *keys,
                   const char *config_file, const char **server_p)
{
    *server_p = NULL;
    if (strstr (source, "://")) {
        zlistx_t *names = config? herd_config_servers (config): NULL;
        for (const char *name = names? (const char *) zlistx_first (names): NULL; name && !*server_p;
             name = (const char *) zlistx_next (names)) {
            const char *feed = herd_config_server_endpoint (config, name, "feed");
            if (feed && streq (feed, source))
                *server_p = name;
        }
        if (!*server_p && keys && herd_keys_secure (keys)) {
            fprintf (stderr, "herd-monitor: %s is no server's feed in %s, so its key is unknown; "
                     "name the server instead\n", source, config_file);
            return NULL;
        }
        return source;
    }
    if (!herd_config_has_server (config, source)) {
        fprintf (stderr, "herd-monitor: no server named '%s' in %s\n", source, config_file);
        return NULL;
    }
    const char *endpoint = herd_config_server_endpoint (config, source, "feed");
    if (!endpoint)
        fprintf (stderr, "herd-monitor: server %s has no feed endpoint in %s "
                 "(add servers/%s/feed, e.g. tcp://127.0.0.1:11501)\n", source, config_file, source);
    *server_p = source;
    return endpoint;
}

//  Each source's updates in the last second, on one line
static void
s_print_rates (zlistx_t *sources, bool json)
{
    //  Source names come from the command line: jansson escapes them
    json_t *rates = json_object ();
    if (!json)
        printf ("rates/s:");
    for (s_source_t *source = (s_source_t *) zlistx_first (sources); source;
         source = (s_source_t *) zlistx_next (sources)) {
        if (json)
            json_object_set_new (rates, source->name, json_integer ((json_int_t) source->updates));
        else
            printf (" %s %" PRIu64, source->name, source->updates);
        source->updates = 0;
    }
    if (json) {
        char *text = json_dumps (rates, JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf ("%s", text);
        freen (text);
    }
    json_decref (rates);
    printf ("\n");
    fflush (stdout);
}

static void
s_print_update (s_source_t *source, const herd_at_t *at, bool json)
{
    if (json) {
        json_t *object = json_pack ("{s:s, s:s#, s:s#, s:f}", "from", source->name,
                                    "client", at->client.start, (int) at->client.size,
                                    "at", at->line.start, (int) at->line.size,
                                    "received", zclock_time () / 1000.0);
        char *text = object? json_dumps (object, JSON_COMPACT): NULL;
        if (text)
            printf ("%s\n", text);
        freen (text);
        json_decref (object);
    }
    else
        printf ("%s %.*s\n", source->name, (int) at->line.size, at->line.start);
}

//  Reads all that waits on a source, up to a bound (a poll per message
//  cost more than the message). The updates seen so far in *seen; true
//  once count is reached.
static bool
s_drain (s_source_t *source, const s_args_t *args, long *seen)
{
    for (int round = 0; round < 1000; round++) {
        herd_bus_feed_msg_t message;
        int got = herd_bus_msg_receive_feed (zsock_resolve (source->sub), &message);
        if (got == 0)
            break;
        if (got == -1)
            continue;               //  Not an update: dropped
        source->updates++;
        source->total++;
        if (!args->stats)
            s_print_update (source, &message.decoded.at, args->json);
        herd_bus_msg_feed_close (&message);
        if (args->count && ++*seen >= args->count)
            return true;
    }
    return false;
}

//  Watches the SOURCEs' feeds until interrupted, the timeout, or count
static int
s_watch (const s_args_t *args, int count, char *names [])
{
    zsys_init ();
    zsys_set_logstream (stderr);
    //  The config names the servers and says where our keys are; without
    //  one, endpoints alone can only be watched over plain links
    bool names_given = false;
    for (int index = 0; index < count; index++)
        names_given |= !strstr (names [index], "://");
    char *error = NULL;
    herd_config_t *config = herd_config_load (args->config_file, &error);
    herd_keys_t *keys = config? herd_keys_new (config, args->cert, &error): NULL;
    int rc = 0;
    if (!keys && (names_given || config)) {
        fprintf (stderr, "herd-monitor: %s\n", error);
        rc = 1;
    }
    freen (error);
    zlistx_t *sources = zlistx_new ();
    zpoller_t *poller = zpoller_new (NULL);
    for (int index = 0; index < count && rc == 0; index++) {
        const char *server;
        const char *endpoint = s_source_endpoint (names [index], config, keys, args->config_file, &server);
        char *feed_error = NULL;
        zsock_t *sub = endpoint? herd_feed_subscriber_new (endpoint, args->prefix, keys, server, &feed_error)
                               : NULL;
        if (!sub) {
            if (feed_error)
                fprintf (stderr, "herd-monitor: %s\n", feed_error);
            freen (feed_error);
            rc = 1;
            break;
        }
        s_source_t *source = (s_source_t *) zmalloc (sizeof (s_source_t));
        source->name = strdup (names [index]);
        source->sub = sub;
        zpoller_add (poller, source->sub);
        zlistx_add_end (sources, source);
    }
    int64_t started = zclock_mono ();
    int64_t next_stats = started + 1000;
    long seen = 0;
    bool done = false;
    while (rc == 0 && !done && !zsys_interrupted) {
        if (args->timeout && zclock_mono () - started >= args->timeout * 1000)
            break;
        zsock_t *which = (zsock_t *) zpoller_wait (poller, 100);
        if (args->stats && zclock_mono () >= next_stats) {
            s_print_rates (sources, args->json);
            next_stats += 1000;
        }
        s_source_t *source = (s_source_t *) zlistx_first (sources);
        while (source && source->sub != which)
            source = (s_source_t *) zlistx_next (sources);
        if (source) {
            done = s_drain (source, args, &seen);
            fflush (stdout);
        }
    }
    zpoller_destroy (&poller);
    for (s_source_t *source = (s_source_t *) zlistx_first (sources); source;
         source = (s_source_t *) zlistx_next (sources)) {
        zsock_destroy (&source->sub);
        freen (source->name);
        freen (source);
    }
    zlistx_destroy (&sources);
    herd_keys_destroy (&keys);
    herd_config_destroy (&config);
    return rc;
}

int
main (int argc, char *argv [])
{
    s_args_t args = { 0 };
    //  Every ZeroMQ socket takes IPv6 endpoints too (tcp://[::1]:PORT):
    //  CZMQ reads this when it starts; ZSYS_IPV6=0 in the environment wins
    setenv ("ZSYS_IPV6", "1", 0);
    args.config_file = getenv ("HERD_CONFIG")? getenv ("HERD_CONFIG"): "herd.cfg";
    args.prefix = "";
    args.cert = "monitor";
    static struct option options [] = {
        { "config",  required_argument, NULL, 'c' },
        { "client",  required_argument, NULL, 'p' },
        { "json",    no_argument,       NULL, 'j' },
        { "stats",   no_argument,       NULL, 's' },
        { "top",     no_argument,       NULL, 'T' },
        { "count",   required_argument, NULL, 'n' },
        { "cert",    required_argument, NULL, 'C' },
        { "timeout", required_argument, NULL, 't' },
        { "help",    no_argument,       NULL, 'h' },
        { "version", no_argument,       NULL, 'V' },
        { "web",     required_argument, NULL, 'w' },
        { "token-file", required_argument, NULL, 'k' },
        { NULL, 0, NULL, 0 }
    };
    int option;
    while ((option = getopt_long (argc, argv, "c:C:p:jsTn:t:K:hVw:k:", options, NULL)) != -1) {
        switch (option) {
            case 'c': args.config_file = optarg; break;
            case 'p': args.prefix = optarg; break;
            case 'V': printf ("herd-monitor %s (bus format %d)\n", HERD_VERSION, HERD_BUS_FORMAT); return 0;
            case 'j': args.json = true; break;
            case 's': args.stats = true; break;
            case 'T': args.top = true; break;
            case 'n': args.count = atol (optarg); break;
            case 'C':
            case 'K': args.cert = optarg; break;
            case 't': args.timeout = atol (optarg); break;
            case 'w': args.web = optarg; break;
            case 'k': args.token_file = optarg; break;
            case 'h': s_usage (stdout); return 0;
            default:  s_usage (stderr); return 2;
        }
    }
    if (args.top)
        return s_top (args.config_file, args.cert, argc - optind, argv + optind, args.timeout);
    if (args.web)
        return s_web (args.config_file, args.cert, args.web, args.token_file, args.timeout);
    if (optind >= argc) {
        fprintf (stderr, "herd-monitor: name at least one SOURCE (try --help)\n");
        return 2;
    }
    return s_watch (&args, argc - optind, argv + optind);
}
