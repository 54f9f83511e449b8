//  monitor/herd_monitor.c: watch a herd's update feeds.
//
//  herd-monitor [OPTIONS] SOURCE...
//  A SOURCE is a feed endpoint (tcp://host:port) or a server name looked
//  up in the herd config. Subscribes to each and prints every update it
//  accepts as it arrives, with the server it came from.

#include "../herd_classes.h"
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
        "A server's feed (servers/NAME/feed in the config, a ZeroMQ PUB socket)\n"
        "sends every update the server accepts, from a client or a neighbour,\n"
        "as one message of two frames: [client id][AT line]. The AT line is\n"
        "exactly what clients see:\n"
        "  AT <server> <skew> <client> <coordinates> <client time>\n"
        "Subscribe with a client id prefix to get only those clients. The\n"
        "server does no work for its feed while nobody subscribes.\n"
        "\n"
        "Plain output:  <from> <AT line>\n"
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

int
main (int argc, char *argv [])
{
    const char *config_file = getenv ("HERD_CONFIG")? getenv ("HERD_CONFIG"): "herd.cfg";
    const char *prefix = "";
    bool json = false, stats = false, top = false;
    long count = 0, timeout = 0;
    const char *cert = "monitor";
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
    const char *web = NULL, *token_file = NULL;
    while ((option = getopt_long (argc, argv, "c:C:p:jsTn:t:K:hVw:k:", options, NULL)) != -1) {
        switch (option) {
            case 'c': config_file = optarg; break;
            case 'p': prefix = optarg; break;
            case 'V': printf ("herd-monitor %s\n", HERD_VERSION); return 0;
            case 'j': json = true; break;
            case 's': stats = true; break;
            case 'T': top = true; break;
            case 'n': count = atol (optarg); break;
            case 'C':
            case 'K': cert = optarg; break;
            case 't': timeout = atol (optarg); break;
            case 'w': web = optarg; break;
            case 'k': token_file = optarg; break;
            case 'h': s_usage (stdout); return 0;
            default:  s_usage (stderr); return 2;
        }
    }
    if (top)
        return s_top (config_file, cert, argc - optind, argv + optind, timeout);
    if (web)
        return s_web (config_file, cert, web, token_file, timeout);
    if (optind >= argc) {
        fprintf (stderr, "herd-monitor: name at least one SOURCE (try --help)\n");
        return 2;
    }
    zsys_init ();
    zsys_set_logstream (stderr);
    zlistx_t *sources = zlistx_new ();
    zpoller_t *poller = zpoller_new (NULL);
    int rc = 0;
    //  The config names the servers and says where our keys are; without
    //  one, endpoints alone can only be watched over plain links
    bool names_given = false;
    for (int arg = optind; arg < argc; arg++)
        names_given |= !strstr (argv [arg], "://");
    char *error = NULL;
    herd_config_t *config = herd_config_load (config_file, &error);
    herd_keys_t *keys = config? herd_keys_new (config, cert, &error): NULL;
    if (!keys && (names_given || config)) {
        fprintf (stderr, "herd-monitor: %s\n", error);
        rc = 1;
    }
    freen (error);
    for (int arg = optind; arg < argc && rc == 0; arg++) {
        const char *endpoint = argv [arg];
        const char *server = NULL;          //  Whose key to expect
        if (strstr (endpoint, "://") && config) {
            zlistx_t *names = herd_config_servers (config);
            for (const char *name = (const char *) zlistx_first (names); name && !server;
                 name = (const char *) zlistx_next (names))
            {
                const char *feed = herd_config_server_endpoint (config, name, "feed");
                if (feed && streq (feed, endpoint))
                    server = name;
            }
            if (!server && herd_keys_secure (keys)) {
                fprintf (stderr, "herd-monitor: %s is no server's feed in %s, so its key is unknown; "
                         "name the server instead\n", endpoint, config_file);
                rc = 1;
                break;
            }
        }
        if (!strstr (endpoint, "://")) {
            server = argv [arg];
            if (!herd_config_has_server (config, argv [arg])) {
                fprintf (stderr, "herd-monitor: no server named '%s' in %s\n", argv [arg], config_file);
                rc = 1;
                break;
            }
            endpoint = herd_config_server_endpoint (config, argv [arg], "feed");
            if (!endpoint) {
                fprintf (stderr, "herd-monitor: server %s has no feed endpoint in %s "
                         "(add servers/%s/feed, e.g. tcp://127.0.0.1:11501)\n", argv [arg], config_file, argv [arg]);
                rc = 1;
                break;
            }
        }
        char *feed_error = NULL;
        zsock_t *sub = herd_feed_subscriber_new (endpoint, prefix, keys, server, &feed_error);
        if (!sub) {
            fprintf (stderr, "herd-monitor: %s\n", feed_error);
            freen (feed_error);
            rc = 1;
            break;
        }
        s_source_t *source = (s_source_t *) zmalloc (sizeof (s_source_t));
        source->name = strdup (argv [arg]);
        source->sub = sub;
        zpoller_add (poller, source->sub);
        zlistx_add_end (sources, source);
    }
    int64_t started = zclock_mono ();
    int64_t next_stats = started + 1000;
    long seen = 0;
    while (rc == 0 && !zsys_interrupted) {
        if (timeout && zclock_mono () - started >= timeout * 1000)
            break;
        zsock_t *which = (zsock_t *) zpoller_wait (poller, 100);
        if (stats && zclock_mono () >= next_stats) {
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
            next_stats += 1000;
        }
        if (!which)
            continue;
        s_source_t *source = (s_source_t *) zlistx_first (sources);
        while (source && source->sub != which)
            source = (s_source_t *) zlistx_next (sources);
        //  All that waits, up to a bound: a poll per message cost more
        //  than the message
        bool done = false;
        for (int round = 0; round < 1000 && !done; round++) {
            herd_bus_feed_msg_t message;
            int got = herd_bus_msg_receive_feed (zsock_resolve (which), &message);
            if (got == 0)
                break;
            if (got == -1)
                continue;               //  Not an update: dropped
            source->updates++;
            source->total++;
            if (!stats) {
                const herd_at_t *at = &message.decoded.at;
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
            herd_bus_msg_feed_close (&message);
            done = count && ++seen >= count;
        }
        fflush (stdout);
        if (done)
            break;
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
