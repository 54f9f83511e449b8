//  herd.c: the herd server daemon. Reads flags and the config, points the
//  log at the server's file, starts the places broker and the node
//  actors, waits for SIGINT or SIGTERM, and stops them in reverse.

#include "herd_classes.h"
#include <getopt.h>
#include <dirent.h>
#include <sys/resource.h>

static void
s_usage (FILE *stream)
{
    fprintf (stream,
        "Usage: herd [OPTIONS] NAME\n"
        "       herd [--config FILE] --list\n"
        "       herd [--config FILE] --keygen [NAME ...]\n"
        "Runs the herd server NAME, one of the servers listed in the config file.\n"
        "It answers IAMAT and WHATSAT on its client port and floods location\n"
        "updates to its neighbours over ZeroMQ; docs/PROTOCOL.md documents every\n"
        "byte on its wires, README.md how to run it.\n"
        "\n"
        "  -c, --config FILE   herd config (default: $HERD_CONFIG, else ./herd.cfg)\n"
        "  -l, --log FILE      log file (default: <herd/log_dir>/NAME.log);\n"
        "                      - logs to stderr only (containers)\n"
        "  -v, --verbose       log to stderr as well\n"
        "  -F, --log-format F  text (default: herd/log_format) or json: one\n"
        "                      object a line (time, level, server, message)\n"
        "  -s, --state         ask the running server NAME for its state (store\n"
        "                      size and digest, links, catch-up) and print it\n"
        "  -S, --stats         ask the running server NAME for its counters\n"
        "  -R, --ready         ask the running server NAME's HTTP endpoint whether it\n"
        "                      is ready (/readyz): exit 0 if it is (healthchecks)\n"
        "  -A, --alive         the same with /healthz: exit 0 while it answers\n"
        "  -L, --list          print the config's server names, one a line, and exit\n"
        "  -k, --keygen [NAME ...]\n"
        "                      write CURVE certificates under herd/keys for the\n"
        "                      names given, or for every server and a monitor\n"
        "                      named \"monitor\"; existing keys are kept\n"
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
        "Stop with SIGINT (Ctrl-C) or SIGTERM; SIGHUP reopens the log file\n"
        "(after logrotate has renamed it).\n");
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

//  Asks a running server's admin endpoint; prints the JSON answer
static int
s_ask_admin (herd_config_t *config, const char *server, const char *request, const char *cert)
{
    //  We ask as a monitor: its key must be one the server admits
    char *error = NULL;
    herd_keys_t *keys = herd_keys_new (config, cert, &error);
    herd_admin_t *admin = keys? herd_admin_new (config, keys, server, &error): NULL;
    if (!admin) {
        fprintf (stderr, "herd: %s\n", error);
        freen (error);
        herd_keys_destroy (&keys);
        return 1;
    }
    json_t *answer = herd_admin_ask (admin, request, 3000);
    int rc = 0;
    if (answer) {
        char *text = json_dumps (answer, JSON_COMPACT);
        printf ("%s\n", text);
        freen (text);
    }
    else {
        fprintf (stderr, "herd: no answer from %s at %s within 3 s\n", server, herd_admin_endpoint (admin));
        rc = 1;
    }
    json_decref (answer);
    herd_admin_destroy (&admin);
    herd_keys_destroy (&keys);
    return rc;
}

//  The config, or NULL after one line on stderr saying what is wrong
static herd_config_t *
s_load_config (const char *config_file)
{
    char *error = NULL;
    herd_config_t *config = herd_config_load (config_file, &error);
    if (!config)
        fprintf (stderr, "herd: %s\n", error);
    freen (error);
    return config;
}

//  herd --keygen [NAME ...]: certificates for the names given, or for
//  every server of the config and one monitor ("monitor"); keys that
//  exist are kept
static int
s_keygen (const char *config_file, int count, char *names [])
{
    herd_config_t *config = s_load_config (config_file);
    if (!config)
        return 1;
    zlistx_t *wanted = zlistx_new ();       //  Borrowed names
    for (int index = 0; index < count; index++)
        zlistx_add_end (wanted, names [index]);
    if (!count) {
        zlistx_t *servers = herd_config_servers (config);
        for (char *name = (char *) zlistx_first (servers); name; name = (char *) zlistx_next (servers))
            zlistx_add_end (wanted, name);
        zlistx_add_end (wanted, "monitor");
    }
    int rc = 0;
    const char *folder = herd_config_string (config, "herd/keys");
    for (const char *name = (const char *) zlistx_first (wanted); name && !rc;
         name = (const char *) zlistx_next (wanted)) {
        char *error = NULL;
        int made = herd_keys_generate (config, name, &error);
        if (made == -1) {
            fprintf (stderr, "herd: %s\n", error);
            freen (error);
            rc = 1;
        }
        else
            printf ("%s: %s/public/%s.key, %s/secret/%s.key_secret (%s)\n", name, folder, name,
                    folder, name, made? "made": "kept");
    }
    zlistx_destroy (&wanted);
    herd_config_destroy (&config);
    return rc;
}

//  Copies a file; 0 or -1
static int
s_copy (const char *from, const char *to, mode_t mode)
{
    zchunk_t *chunk = zchunk_slurp (from, 64 * 1024);
    if (!chunk)
        return -1;
    int fd = open (to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    int rc = fd == -1 || herd_file_write_all (fd, zchunk_data (chunk), zchunk_size (chunk));
    if (fd != -1)
        close (fd);
    zchunk_destroy (&chunk);
    return rc? -1: 0;
}

//  herd --keys-for NAME FROM TO: from a folder holding every key of the
//  herd side by side (a Kubernetes Secret mounted as files), lays out
//  TO/public/ with every public key and TO/secret/ with NAME's secret key
//  alone: a server never sees another's secret
static int
s_keys_for (const char *name, const char *from, const char *to)
{
    DIR *folder = opendir (from);
    if (!folder) {
        fprintf (stderr, "herd: --keys-for: cannot read %s: %s\n", from, strerror (errno));
        return 1;
    }
    char *secret_name = zsys_sprintf ("%s.key_secret", name);
    zsys_dir_create ("%s/public", to);
    zsys_dir_create ("%s/secret", to);
    //  As --keygen makes it: only the server's user may list its secret
    char *secret_folder = zsys_sprintf ("%s/secret", to);
    if (chmod (secret_folder, 0700))
        fprintf (stderr, "herd: --keys-for: cannot restrict %s: %s\n", secret_folder, strerror (errno));
    freen (secret_folder);
    int rc = 0, publics = 0;
    bool found = false;
    struct dirent *entry;
    while ((entry = readdir (folder)) && rc == 0) {
        if (entry->d_name [0] == '.')
            continue;               //  ., .., and a Secret volume's ..data
        size_t size = strlen (entry->d_name);
        char *source = zsys_sprintf ("%s/%s", from, entry->d_name);
        if (size > 4 && streq (entry->d_name + size - 4, ".key")) {
            char *target = zsys_sprintf ("%s/public/%s", to, entry->d_name);
            rc = s_copy (source, target, 0644);
            publics++;
            freen (target);
        }
        else
        if (streq (entry->d_name, secret_name)) {
            char *target = zsys_sprintf ("%s/secret/%s", to, entry->d_name);
            rc = s_copy (source, target, 0600);
            found = true;
            freen (target);
        }
        if (rc)
            fprintf (stderr, "herd: --keys-for: cannot copy %s: %s\n", source, strerror (errno));
        freen (source);
    }
    closedir (folder);
    if (rc == 0 && !found) {
        fprintf (stderr, "herd: --keys-for: no %s in %s\n", secret_name, from);
        rc = 1;
    }
    if (rc == 0)
        printf ("herd: keys for %s: %d public, its own secret\n", name, publics);
    freen (secret_name);
    return rc? 1: 0;
}

//  Collects an HTTP body, at most 4 KiB
static size_t
s_collect (char *data, size_t size, size_t count, void *arg)
{
    zchunk_t *body = (zchunk_t *) arg;
    if (zchunk_size (body) + size * count <= 4096)
        zchunk_extend (body, data, size * count);
    return size * count;
}

//  herd --ready NAME / --alive NAME: GET /readyz or /healthz on the
//  server's http endpoint
static int
s_ask_http (herd_config_t *config, const char *server, const char *path)
{
    const char *http = herd_config_server_endpoint (config, server, "http");
    if (!http) {
        fprintf (stderr, "herd: server %s has no http endpoint in the config\n", server);
        return 1;
    }
    //  A wildcard bind is asked on the loopback
    const char *port = strrchr (http, ':') + 1;
    bool wildcard = !strncmp (http, "*:", 2) || !strncmp (http, "0.0.0.0:", 8) || !strncmp (http, "[::]:", 5);
    char *url = wildcard? zsys_sprintf ("http://127.0.0.1:%s%s", port, path)
                        : zsys_sprintf ("http://%s%s", http, path);
    zchunk_t *body = zchunk_new (NULL, 256);
    CURL *curl = curl_easy_init ();
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, body);
    CURLcode code = curl_easy_perform (curl);
    long status = 0;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup (curl);
    char *text = zchunk_strdup (body);
    int rc = code == CURLE_OK && status == 200? 0: 1;
    if (code != CURLE_OK)
        fprintf (stderr, "herd: %s: %s\n", url, curl_easy_strerror (code));
    else
        fprintf (rc? stderr: stdout, "%s: %ld %s", server, status, text);
    freen (text);
    zchunk_destroy (&body);
    freen (url);
    return rc;
}

//  herd --list: the server names, for scripts (tools/herd-run)
static int
s_list (const char *config_file)
{
    herd_config_t *config = s_load_config (config_file);
    if (!config)
        return 1;
    zlistx_t *names = herd_config_servers (config);
    for (const char *name = (const char *) zlistx_first (names); name;
         name = (const char *) zlistx_next (names))
        printf ("%s\n", name);
    herd_config_destroy (&config);
    return 0;
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

int
main (int argc, char *argv [])
{
    const char *config_file = getenv ("HERD_CONFIG")? getenv ("HERD_CONFIG"): "herd.cfg";
    const char *log_file = NULL;
    bool verbose = false;
    const char *log_format = NULL;
    const char *request = NULL;
    bool list = false;
    bool keygen = false;
    bool keys_for = false;
    const char *cert = "monitor";
    static struct option options [] = {
        { "state",   no_argument,       NULL, 's' },
        { "stats",   no_argument,       NULL, 'S' },
        { "ready",   no_argument,       NULL, 'R' },
        { "alive",   no_argument,       NULL, 'A' },
        { "keys-for", no_argument,      NULL, 'K' },
        { "list",    no_argument,       NULL, 'L' },
        { "keygen",  no_argument,       NULL, 'k' },
        { "cert",    required_argument, NULL, 'C' },
        { "config",  required_argument, NULL, 'c' },
        { "log",     required_argument, NULL, 'l' },
        { "verbose", no_argument,       NULL, 'v' },
        { "log-format", required_argument, NULL, 'F' },
        { "help",    no_argument,       NULL, 'h' },
        { "version", no_argument,       NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    int option;
    while ((option = getopt_long (argc, argv, "c:l:vF:sSRALkKC:hV", options, NULL)) != -1) {
        switch (option) {
            case 'c': config_file = optarg; break;
            case 'l': log_file = optarg; break;
            case 'v': verbose = true; break;
            case 'F': log_format = optarg; break;
            case 's': request = "STATE"; break;
            case 'S': request = "STATS"; break;
            case 'R': request = "READY"; break;
            case 'A': request = "ALIVE"; break;
            case 'L': list = true; break;
            case 'k': keygen = true; break;
            case 'K': keys_for = true; break;
            case 'C': cert = optarg; break;
            case 'h': s_usage (stdout); return 0;
            case 'V': printf ("herd %s\n", HERD_VERSION); return 0;
            default:  s_usage (stderr); return 2;
        }
    }
    if (log_format && !streq (log_format, "text") && !streq (log_format, "json")) {
        fprintf (stderr, "herd: --log-format %s: expected text or json\n", log_format);
        return 2;
    }
    if (keys_for) {
        if (argc - optind != 3) {
            fprintf (stderr, "herd: --keys-for NAME FROM TO (try herd --help)\n");
            return 2;
        }
        return s_keys_for (argv [optind], argv [optind + 1], argv [optind + 2]);
    }
    if (keygen)
        return s_keygen (config_file, argc - optind, argv + optind);
    if (list && optind == argc)
        return s_list (config_file);
    if (list || optind != argc - 1) {
        fprintf (stderr, "herd: expected one server NAME (try herd --help)\n");
        return 2;
    }
    const char *server = argv [optind];
    //  From here on, SIGINT, SIGTERM and SIGHUP are taken by the main loop
    //  alone, with sigwaitinfo, whenever they come: blocked in every
    //  thread (actors inherit the mask), pending until main asks. A signal
    //  during start-up waits until the actors are whole, then stops them
    //  cleanly: CZMQ's own handler would set zsys_interrupted, which ends
    //  every CZMQ actor's loop (zauth, zmonitor) by itself, mid-start.
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGINT);
    sigaddset (&signals, SIGTERM);
    sigaddset (&signals, SIGHUP);
    pthread_sigmask (SIG_BLOCK, &signals, NULL);

    herd_config_t *config = s_load_config (config_file);
    if (!config)
        return 1;
    if (!herd_config_has_server (config, server)) {
        fprintf (stderr, "herd: no server named '%s' in %s (it lists:", server, config_file);
        zlistx_t *names = herd_config_servers (config);
        for (const char *name = (const char *) zlistx_first (names); name;
             name = (const char *) zlistx_next (names))
            fprintf (stderr, " %s", name);
        fprintf (stderr, ")\n");
        herd_config_destroy (&config);
        return 1;
    }
    if (request) {
        int rc = streq (request, "READY")? s_ask_http (config, server, "/readyz")
               : streq (request, "ALIVE")? s_ask_http (config, server, "/healthz")
               : s_ask_admin (config, server, request, cert);
        herd_config_destroy (&config);
        zsys_shutdown ();
        return rc;
    }
    //  One process per server's state, before its log or journal is
    //  touched: a second "herd NAME" would replay a live journal, write
    //  into it and into the log, then fail on a port (or, with others,
    //  run beside the first)
    int lock = -1;
    if (herd_config_number (config, "herd/journal")) {
        char *lock_path = zsys_sprintf ("%s/%s.lock", herd_config_string (config, "herd/data_dir"), server);
        pid_t holder = 0;
        lock = herd_file_lock (lock_path, &holder);
        if (lock == -1) {
            if (holder)
                fprintf (stderr, "herd: %s: %s is held by process %d, a herd %s on the same herd/data_dir; "
                         "stop it first (or give this one another data_dir in %s)\n",
                         server, lock_path, (int) holder, server, config_file);
            else
                fprintf (stderr, "herd: %s: cannot lock %s (herd/data_dir in %s): %s\n",
                         server, lock_path, config_file, strerror (errno));
            freen (lock_path);
            herd_config_destroy (&config);
            return 1;
        }
        freen (lock_path);
    }
    char *default_log = zsys_sprintf ("%s/%s.log", herd_config_string (config, "herd/log_dir"), server);
    if (!log_file)
        log_file = default_log;
    bool to_stderr_only = streq (log_file, "-");
    if (herd_log_open (to_stderr_only? NULL: log_file, verbose || to_stderr_only)) {
        fprintf (stderr, "herd: cannot open log file %s: %s\n", log_file, strerror (errno));
        freen (default_log);
        herd_config_destroy (&config);
        return 1;
    }
    herd_log_set_format (log_format? log_format: herd_config_string (config, "herd/log_format"),
                         herd_config_string (config, "herd/log_level"));
    zsys_init ();
    zsys_handler_set (NULL);
    zsys_set_logident (server);
    zsys_info ("herd %s: starting server %s from %s, logging to %s", HERD_VERSION, server,
               config_file, log_file);
    s_raise_fd_limit ();
    curl_global_init (CURL_GLOBAL_DEFAULT);

    herd_places_args_t places_args = { config, server };
    zactor_t *places = zactor_new (herd_places_actor, &places_args);
    herd_node_args_t node_args = { config, server };
    zactor_t *node = zactor_new (herd_node_actor, &node_args);
    int rc = 1;
    if (s_start_actor (places, server, "places") == 0
    &&  s_start_actor (node, server, "node") == 0) {
        zsys_info ("server %s is up", server);
        int signal_number = 0;
        while (signal_number != SIGINT && signal_number != SIGTERM) {
            signal_number = sigwaitinfo (&signals, NULL);
            //  SIGHUP asks for the log file to be reopened (log rotation)
            if (signal_number == SIGHUP) {
                if (herd_log_reopen () == 0)
                    zsys_info ("SIGHUP: log file reopened");
                else
                    zsys_error ("SIGHUP: cannot reopen %s: %s; still logging to the old file",
                                log_file, strerror (errno));
            }
        }
        zsys_info ("server %s: signal received, shutting down (%s)", server, strsignal (signal_number));
        rc = 0;
    }
    zactor_destroy (&node);
    zactor_destroy (&places);
    zsys_info ("server %s stopped", server);
    curl_global_cleanup ();
    herd_config_destroy (&config);
    zsys_shutdown ();
    herd_log_close ();
    freen (default_log);
    if (lock != -1)
        close (lock);
    return rc;
}
