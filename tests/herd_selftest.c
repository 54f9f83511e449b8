//  tests/herd_selftest.c: runs each class's selftest, CZMQ style.
//  herd_selftest [-v] [class ...]; prints "N passed, N failed".

#include "../herd_classes.h"

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} s_test_t;

static const s_test_t s_tests [] = {
    { "herd_fnv",      herd_fnv_test },
    { "herd_file",     herd_file_test },
    { "herd_log",      herd_log_test },
    { "herd_config",   herd_config_test },
    { "herd_protocol", herd_protocol_test },
    { "herd_store",    herd_store_test },
    { "herd_journal",  herd_journal_test },
    { "herd_placecache", herd_placecache_test },
    { "herd_sync_msg", herd_sync_msg_test },
    { "herd_snapshot", herd_snapshot_test },
    { "herd_peer",     herd_peer_test },
    { "herd_bus",      herd_bus_test },
    { "herd_nearby",   herd_nearby_test },
    { "herd_google",   herd_google_test },
    { "herd_offline",  herd_offline_test },
    { "herd_worker",   herd_worker_test },
    { "herd_places",   herd_places_test },
    { "herd_connection", herd_connection_test },
    { "herd_frontend", herd_frontend_test },
    { "herd_node",     herd_node_test },
};

int
main (int argc, char *argv [])
{
    bool verbose = false;
    int first = 1;
    if (argc > 1 && streq (argv [1], "-v")) {
        verbose = true;
        first = 2;
    }
    zsys_init ();
    //  Logs only with -v; a failing selftest asserts with its line anyway
    FILE *quiet = fopen ("/dev/null", "w");
    zsys_set_logstream (verbose? stderr: quiet);
    curl_global_init (CURL_GLOBAL_DEFAULT);
    int passed = 0;
    for (size_t index = 0; index < sizeof s_tests / sizeof s_tests [0]; index++) {
        bool wanted = first >= argc;
        for (int arg = first; arg < argc; arg++)
            wanted |= streq (argv [arg], s_tests [index].name);
        if (wanted) {
            zsys_set_logstream (verbose? stderr: quiet);    //  herd_log resets it
            //  A failed selftest asserts, so reaching the next one is a pass
            s_tests [index].test (verbose);
            passed++;
        }
    }
    curl_global_cleanup ();
    zsys_shutdown ();
    fclose (quiet);
    printf ("selftest: %d passed, 0 failed\n", passed);
    return 0;
}
