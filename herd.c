//  herd.c: the herd server daemon. Reads flags and the config, points the
//  log at the server's file, starts the places broker and the node
//  actors, waits for SIGINT or SIGTERM, and stops them in reverse.

#include "herd_classes.h"
#include "herd_tools.h"
#include <systemd/sd-daemon.h>
#include <getopt.h>
#include <sys/resource.h>
#include <sys/stat.h>

static void
s_usage (FILE *stream)
{
    fprintf (stream,
        "Usage: herd [OPTIONS] NAME\n"
        "       herd [--config FILE] --list\n"
        "       herd [--config FILE] --keygen [NAME ...]\n"
        "       herd [--config FILE] --client-cert ID --out DIR [--days N]\n"
        "       herd [--config FILE] --revoke CERT\n"
        "       herd [--config FILE] --forget NAME CLIENT\n"
        "Runs the herd server NAME, one of the servers listed in the config file.\n"
        "It answers IAMAT and WHATSAT on its client port and floods location\n"
        "updates to its neighbours over ZeroMQ; docs/PROTOCOL.md documents every\n"
        "byte on its wires, README.md how to run it.\n"
        "\n"
        "  -c, --config FILE   herd config (default: $HERD_CONFIG, else ./herd.cfg)\n"
        "  -l, --log FILE      log file (default: <herd/log_dir>/NAME.log, or\n"
        "                      systemd's journal when stderr is it); - logs to\n"
        "                      stderr only (containers)\n"
        "  -v, --verbose       log to stderr as well\n"
        "  -F, --log-format F  text (default: herd/log_format) or json: one\n"
        "                      object a line (time, level, server, message)\n"
        "  -s, --state         ask the running server NAME for its state (store\n"
        "                      size and digest, links, catch-up) and print it:\n"
        "                      JSON, indented on a terminal, one line otherwise\n"
        "  -S, --stats         ask the running server NAME for its counters\n"
        "  -T, --clients       print every line the running server NAME holds, a\n"
        "                      client a line (GONE: forgotten), then the counts\n"
        "  -U, --client ID     the line NAME holds for the client ID, if any\n"
        "  -D, --dump FILE     the same as --clients, into FILE (0600)\n"
        "  -N, --connections   the clients connected to NAME now: address, TLS,\n"
        "                      age, idle time, queued bytes (as CLIENT LIST)\n"
        "  -R, --ready         ask the running server NAME's HTTP endpoint whether it\n"
        "                      is ready (/readyz): exit 0 if it is (healthchecks)\n"
        "  -A, --alive         the same with /healthz: exit 0 while it answers\n"
        "  -L, --list          print the config's server names, one a line, and exit\n"
        "  -k, --keygen [NAME ...]\n"
        "                      write CURVE certificates under herd/keys for the\n"
        "                      names given, or for every server and a monitor\n"
        "                      named \"monitor\"; existing keys are kept. Each\n"
        "                      server also gets a TLS certificate from the herd's\n"
        "                      CA (made at first: <keys>/ca.crt)\n"
        "  -i, --client-cert ID\n"
        "                      write a client certificate granting the client id\n"
        "                      ID (DIR/ID.crt, its key DIR/ID.key, 0600), signed\n"
        "                      by the herd's CA, for the TLS client port; and the\n"
        "                      CA's certificate a client trusts, DIR/ca.crt\n"
        "  -P, --client-cert-prefix PREFIX\n"
        "                      the same, granting every id that starts with\n"
        "                      PREFIX (a gateway for many devices)\n"
        "  -o, --out DIR       where --client-cert writes\n"
        "  -d, --days N        how long a client certificate is valid (825)\n"
        "  -G, --forget NAME CLIENT\n"
        "                      ask the running server NAME to forget CLIENT at now\n"
        "                      (or its newest time, if later), on every server;\n"
        "                      asked with NAME's own key (--cert to choose another\n"
        "                      server's): a monitor's key is refused\n"
        "  -r, --revoke CERT   add CERT to the herd's revocation list\n"
        "                      (<keys>/ca.crl); SIGHUP makes servers read it\n"
        "  -K, --keys-for NAME FROM TO\n"
        "                      from FROM, a folder of every key side by side (a\n"
        "                      Kubernetes Secret), lay out TO/public with every\n"
        "                      public key and TO/secret with NAME's secret alone\n"
        "  -C, --cert NAME     with --state/--stats: ask with the certificate of\n"
        "                      NAME (default: monitor)\n"
        "  -h, --help          show this help and exit\n"
        "  -V, --version       show the version and exit\n"
        "\n"
        "Environment: the Google Places API key is read from the variable named\n"
        "by places/google/key_env in the config (HERD_GOOGLE_API_KEY by default).\n"
        "Stop with SIGINT (Ctrl-C) or SIGTERM. SIGHUP reopens the log file (after\n"
        "logrotate has renamed it), reloads the TLS port's certificates and\n"
        "revocation list, and reads the config again: the log level and format,\n"
        "the traffic log, the client limits and forgetting's settings take effect\n"
        "at once; the log names every other change, which waits for a restart.\n");
}

//  Sends START to an actor; 0, or -1 with the actor's reason printed
static int
s_start_actor (zactor_t *actor, const char *server, const char *what)
{
    char *reason = NULL;
    int rc = herd_actor_start (actor, &reason);
    if (rc) {
        zsys_error ("%s failed to start: %s", what, reason);
        fprintf (stderr, "herd: %s: %s\n", server, reason);
    }
    freen (reason);
    return rc;
}

//  Thousands of clients need thousands of fds: take the hard limit
static void
s_raise_fd_limit (void)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit (RLIMIT_NOFILE, &limit);
    }
}

//  What the command line asks for
typedef struct {
    const char *config_file;
    const char *log_file;       //  NULL: <herd/log_dir>/NAME.log
    const char *log_format;     //  NULL: herd/log_format
    bool verbose;
    const char *request;        //  STATE, STATS, READY, ALIVE, FORGET <client>, or NULL to serve
    char *request_owned;        //  The request, when made here
    const char *dump;           //  --dump: the file
    const char *cert;           //  Whose certificate asks the admin endpoint
    const char *server;         //  NAME
} s_args_t;

//  Reads the flags; runs the tools that need no server name. -1 if the
//  server is to run (or be asked), else the exit code.
static int
s_parse_args (int argc, char *argv [], s_args_t *args)
{
    args->config_file = getenv ("HERD_CONFIG")? getenv ("HERD_CONFIG"): "herd.cfg";
    args->cert = NULL;          //  monitor, or NAME for --forget
    bool list = false, keygen = false, keys_for = false, prefix = false, forget = false;
    const char *client_id = NULL, *out = NULL, *revoke = NULL;
    int days = HERD_CA_DAYS_DEFAULT;
    static struct option options [] = {
        { "state",   no_argument,       NULL, 's' },
        { "stats",   no_argument,       NULL, 'S' },
        { "ready",   no_argument,       NULL, 'R' },
        { "alive",   no_argument,       NULL, 'A' },
        { "keys-for", no_argument,      NULL, 'K' },
        { "list",    no_argument,       NULL, 'L' },
        { "keygen",  no_argument,       NULL, 'k' },
        { "cert",    required_argument, NULL, 'C' },
        { "client-cert", required_argument, NULL, 'i' },
        { "client-cert-prefix", required_argument, NULL, 'P' },
        { "out",     required_argument, NULL, 'o' },
        { "days",    required_argument, NULL, 'd' },
        { "revoke",  required_argument, NULL, 'r' },
        { "forget",  no_argument,       NULL, 'G' },
        { "clients", no_argument,       NULL, 'T' },
        { "client",  required_argument, NULL, 'U' },
        { "dump",    required_argument, NULL, 'D' },
        { "connections", no_argument,   NULL, 'N' },
        { "config",  required_argument, NULL, 'c' },
        { "log",     required_argument, NULL, 'l' },
        { "verbose", no_argument,       NULL, 'v' },
        { "log-format", required_argument, NULL, 'F' },
        { "help",    no_argument,       NULL, 'h' },
        { "version", no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int option;
    while ((option = getopt_long (argc, argv, "c:l:vF:sSRALkKC:i:P:o:d:r:GTU:D:NhV", options, NULL)) != -1) {
        switch (option) {
            case 'c': args->config_file = optarg; break;
            case 'l': args->log_file = optarg; break;
            case 'v': args->verbose = true; break;
            case 'F': args->log_format = optarg; break;
            case 's': args->request = "STATE"; break;
            case 'S': args->request = "STATS"; break;
            case 'R': args->request = "READY"; break;
            case 'A': args->request = "ALIVE"; break;
            case 'L': list = true; break;
            case 'k': keygen = true; break;
            case 'K': keys_for = true; break;
            case 'C': args->cert = optarg; break;
            case 'i': client_id = optarg; prefix = false; break;
            case 'P': client_id = optarg; prefix = true; break;
            case 'o': out = optarg; break;
            case 'r': revoke = optarg; break;
            case 'G': forget = true; break;
            case 'T': args->request = "CLIENTS"; break;
            case 'D': args->request = "CLIENTS"; args->dump = optarg; break;
            case 'N': args->request = "CONNECTIONS"; break;
            case 'U':
                args->request = args->request_owned = zsys_sprintf ("CLIENT %s", optarg);
                break;
            case 'd': {
                char *end;
                days = (int) strtol (optarg, &end, 10);
                if (*end || days < 1 || days > 36500) {
                    fprintf (stderr, "herd: --days %s: expected a whole number of days from 1 to 36500\n", optarg);
                    return 2;
                }
                break;
            }
            case 'h': s_usage (stdout); return 0;
            case 'V': printf ("herd %s (bus format %d)\n", HERD_VERSION, HERD_BUS_FORMAT); return 0;
            default:  s_usage (stderr); return 2;
        }
    }
    if (args->log_format && !streq (args->log_format, "text") && !streq (args->log_format, "json")) {
        fprintf (stderr, "herd: --log-format %s: expected text or json\n", args->log_format);
        return 2;
    }
    if (client_id) {
        if (!out || optind != argc) {
            fprintf (stderr, "herd: --client-cert ID --out DIR (try herd --help)\n");
            return 2;
        }
        return herd_tools_client_cert (args->config_file, client_id, prefix, out, days);
    }
    if (revoke)
        return herd_tools_revoke (args->config_file, revoke);
    if (keys_for) {
        if (argc - optind != 3) {
            fprintf (stderr, "herd: --keys-for NAME FROM TO (try herd --help)\n");
            return 2;
        }
        return herd_tools_keys_for (argv [optind], argv [optind + 1], argv [optind + 2]);
    }
    if (keygen)
        return herd_tools_keygen (args->config_file, argc - optind, argv + optind);
    if (list && optind == argc)
        return herd_tools_list (args->config_file);
    if (forget) {
        //  herd --forget NAME CLIENT: asked with NAME's own key
        if (optind != argc - 2) {
            fprintf (stderr, "herd: --forget NAME CLIENT (try herd --help)\n");
            return 2;
        }
        args->server = argv [optind];
        args->request = zsys_sprintf ("FORGET %s", argv [optind + 1]);
        args->request_owned = (char *) args->request;
        if (!args->cert)
            args->cert = args->server;
        return -1;
    }
    if (list || optind != argc - 1) {
        fprintf (stderr, "herd: expected one server NAME (try herd --help)\n");
        return 2;
    }
    args->server = argv [optind];
    return -1;
}

//  The config, if it names the server; NULL (said why) if not
static herd_config_t *
s_load_config (const s_args_t *args)
{
    herd_config_t *config = herd_tools_load_config (args->config_file);
    if (config && !herd_config_has_server (config, args->server)) {
        fprintf (stderr, "herd: no server named '%s' in %s (it lists:", args->server, args->config_file);
        zlistx_t *names = herd_config_servers (config);
        for (const char *name = (const char *) zlistx_first (names); name;
             name = (const char *) zlistx_next (names))
            fprintf (stderr, " %s", name);
        fprintf (stderr, ")\n");
        herd_config_destroy (&config);
    }
    return config;
}

//  One process per server's state, before its log or journal is touched:
//  a second "herd NAME" would replay a live journal, write into it and
//  into the log, then fail on a port (or, with others, run beside the
//  first). 0 and the lock's descriptor in *lock_p (-1 with no journal),
//  or -1 (said why) if it cannot be had.
static int
s_lock_state (herd_config_t *config, const s_args_t *args, int *lock_p)
{
    *lock_p = -1;
    if (!herd_config_number (config, "herd/journal"))
        return 0;
    char *lock_path = zsys_sprintf ("%s/%s.lock", herd_config_string (config, "herd/data_dir"), args->server);
    pid_t holder = 0;
    int lock = herd_file_lock (lock_path, &holder);
    if (lock == -1 && holder)
        fprintf (stderr, "herd: %s: %s is held by process %d, a herd %s on the same herd/data_dir; "
                 "stop it first (or give this one another data_dir in %s)\n",
                 args->server, lock_path, (int) holder, args->server, args->config_file);
    else
    if (lock == -1)
        fprintf (stderr, "herd: %s: cannot lock %s (herd/data_dir in %s): %s\n",
                 args->server, lock_path, args->config_file, strerror (errno));
    freen (lock_path);
    *lock_p = lock;
    return lock == -1? -1: 0;
}

//  True if stderr is systemd's journal: $JOURNAL_STREAM names its device
//  and inode (systemd.exec(5))
static bool
s_stderr_is_journal (void)
{
    const char *stream = getenv ("JOURNAL_STREAM");
    unsigned long long device, inode;
    struct stat status;
    return stream && sscanf (stream, "%llu:%llu", &device, &inode) == 2
        && fstat (STDERR_FILENO, &status) == 0
        && status.st_dev == (dev_t) device && status.st_ino == (ino_t) inode;
}

//  Points the log at the server's file, or stderr ("-", and by default
//  when stderr is systemd's journal). 0, or -1 (said why).
static int
s_open_log (herd_config_t *config, const s_args_t *args, char **log_file_p)
{
    *log_file_p = args->log_file? strdup (args->log_file)
                : s_stderr_is_journal ()? strdup ("-")
                : zsys_sprintf ("%s/%s.log", herd_config_string (config, "herd/log_dir"), args->server);
    bool to_stderr_only = streq (*log_file_p, "-");
    if (herd_log_open (to_stderr_only? NULL: *log_file_p, args->verbose || to_stderr_only)) {
        fprintf (stderr, "herd: cannot open log file %s: %s\n", *log_file_p, strerror (errno));
        return -1;
    }
    herd_log_set_format (args->log_format? args->log_format: herd_config_string (config, "herd/log_format"),
                         herd_config_string (config, "herd/log_level"));
    return 0;
}

//  SIGHUP: the config file read again; the log's level and format from
//  it (unless --log-format said otherwise), the rest for the node to
//  apply, or to say it waits for a restart
static void
s_reload (zactor_t *node, herd_config_t *config, const char *log_format)
{
    char *error = NULL;
    herd_config_t *fresh = herd_config_load (herd_config_filename (config), &error);
    if (!fresh) {
        zsys_error ("SIGHUP: %s; no setting reloaded", error);
        freen (error);
    }
    else
        herd_log_set_format (log_format? NULL: herd_config_string (fresh, "herd/log_format"),
                             herd_config_string (fresh, "herd/log_level"));
    zsock_send (node, "sp", "RELOAD", fresh);
    zsock_wait (node);
    herd_config_destroy (&fresh);
}

//  Starts the places broker and the node, then waits for SIGINT or
//  SIGTERM (SIGHUP reopens the log), and stops them in reverse. The exit
//  code: 0, or 1 if an actor could not start.
static int
s_serve (herd_config_t *config, const char *server, const char *log_file, const char *log_format,
         sigset_t *signals)
{
    herd_places_args_t places_args = { config, server, NULL };
    zactor_t *places = zactor_new (herd_places_actor, &places_args);
    zactor_t *node = NULL;
    int rc = 1;
    //  The node after the broker has started: it answers from the
    //  broker's offline data, if that is the provider
    if (s_start_actor (places, server, "places") == 0) {
        herd_node_args_t node_args = { config, server, places_args.offline };
        node = zactor_new (herd_node_actor, &node_args);
    }
    if (node && s_start_actor (node, server, "node") == 0) {
        zsys_info ("server %s is up", server);
        //  Under systemd (Type=notify) the unit is started now: the
        //  journal is replayed and clients are served; the catch-up with
        //  the neighbours goes on (/readyz says when it is done). A no-op
        //  elsewhere.
        sd_notify (0, "READY=1\nSTATUS=serving clients");
        int signal_number = 0;
        while (signal_number != SIGINT && signal_number != SIGTERM) {
            signal_number = sigwaitinfo (signals, NULL);
            //  SIGHUP asks for the log file to be reopened (log rotation)
            //  and the TLS port's certificates and CRL to be read again
            if (signal_number == SIGHUP) {
                if (herd_log_reopen () == 0)
                    zsys_info ("SIGHUP: log file reopened");
                else
                    zsys_error ("SIGHUP: cannot reopen %s: %s; still logging to the old file",
                                log_file, strerror (errno));
                s_reload (node, config, log_format);
            }
        }
        zsys_info ("server %s: signal received, shutting down (%s)", server, strsignal (signal_number));
        sd_notify (0, "STOPPING=1\nSTATUS=shutting down");
        rc = 0;
    }
    zactor_destroy (&node);
    zactor_destroy (&places);
    zsys_info ("server %s stopped", server);
    return rc;
}

int
main (int argc, char *argv [])
{
    s_args_t args = { 0 };
    //  Every ZeroMQ socket takes IPv6 endpoints too (tcp://[::1]:PORT):
    //  CZMQ reads this when it starts; ZSYS_IPV6=0 in the environment wins
    setenv ("ZSYS_IPV6", "1", 0);
    int rc = s_parse_args (argc, argv, &args);
    if (rc != -1)
        return rc;
    //  From here on, SIGINT, SIGTERM and SIGHUP are taken by the main loop
    //  alone, with sigwaitinfo, whenever they come: blocked in every
    //  thread (actors inherit the mask), pending until main asks. A signal
    //  during start-up waits until the actors are whole, then stops them
    //  cleanly: CZMQ's own handler would set zsys_interrupted, which ends
    //  every CZMQ actor's loop (zauth, zmonitor) by itself, mid-start.
    //  A client gone mid-write must fail the write, not end the process:
    //  OpenSSL writes to TLS clients with write(2), not send's MSG_NOSIGNAL
    signal (SIGPIPE, SIG_IGN);
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    sigaddset (&signals, SIGHUP);
    pthread_sigmask (SIG_BLOCK, &signals, NULL);

    herd_config_t *config = s_load_config (&args);
    if (!config)
        return 1;
    if (args.request) {
        rc = streq (args.request, "READY")? herd_tools_ask_http (config, args.server, "/readyz")
           : streq (args.request, "ALIVE")? herd_tools_ask_http (config, args.server, "/healthz")
           : streq (args.request, "CLIENTS")
             ? herd_tools_clients (config, args.server, args.cert? args.cert: "monitor", args.dump)
           : herd_tools_ask_admin (config, args.server, args.request, args.cert? args.cert: "monitor");
        freen (args.request_owned);
        herd_config_destroy (&config);
        zsys_shutdown ();
        return rc;
    }
    char *log_file = NULL;
    int lock;
    if (s_lock_state (config, &args, &lock) || s_open_log (config, &args, &log_file)) {
        if (lock != -1)
            close (lock);
        freen (log_file);
        herd_config_destroy (&config);
        return 1;
    }
    zsys_init ();
    zsys_handler_set (NULL);
    zsys_set_logident (args.server);
    zsys_info ("herd %s: starting server %s from %s, logging to %s", HERD_VERSION, args.server,
               args.config_file, log_file);
    s_raise_fd_limit ();
    curl_global_init (CURL_GLOBAL_DEFAULT);
    rc = s_serve (config, args.server, log_file, args.log_format, &signals);
    curl_global_cleanup ();
    herd_config_destroy (&config);
    zsys_shutdown ();
    herd_log_close ();
    freen (log_file);
    if (lock != -1)
        close (lock);
    return rc;
}
