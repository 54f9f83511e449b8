//  tests/herd_selftest.c: runs each class's selftest, CZMQ style.
//  herd_selftest [-v] [class ...]; prints "N passed, N failed".
//  Each selftest runs in a child process of its own: a failed assert (or
//  a sanitizer report) fails that one test, and the others still run.

#include "../herd_classes.h"
#include <sys/wait.h>

typedef struct {
    const char *name;
    void (*test) (bool verbose);
} s_test_t;

//  Every class, bottom layer first: made by make from the folders
static const s_test_t s_tests [] = {
#include "herd_selftests.inc"
};
#define S_TESTS (sizeof s_tests / sizeof s_tests [0])

//  Runs one selftest in a child; true if it exited 0
static bool
s_run (const s_test_t *test, bool verbose)
{
    fflush (stdout);
    pid_t child = fork ();
    assert (child != -1);
    if (child == 0) {
        zsys_init ();
        //  Logs only with -v; a failing selftest asserts with its line anyway
        FILE *quiet = fopen ("/dev/null", "w");
        zsys_set_logstream (verbose? stderr: quiet);
        curl_global_init (CURL_GLOBAL_DEFAULT);
        test->test (verbose);
        curl_global_cleanup ();
        zsys_shutdown ();
        fclose (quiet);
        fflush (stdout);
        exit (0);
    }
    int status = 0;
    waitpid (child, &status, 0);
    bool passed = WIFEXITED (status) && WEXITSTATUS (status) == 0;
    if (!passed)
        printf (" * %s: FAILED (%s %d)\n", test->name,
                WIFSIGNALED (status)? "signal": "exit status",
                WIFSIGNALED (status)? WTERMSIG (status): WEXITSTATUS (status));
    return passed;
}

int
main (int argc, char *argv [])
{
    bool verbose = false;
    int first = 1;
    //  As herd does: a peer gone mid-write fails the write (TLS sessions)
    signal (SIGPIPE, SIG_IGN);
    if (argc > 1 && streq (argv [1], "-v")) {
        verbose = true;
        first = 2;
    }
    //  Every name asked for must be a selftest: a typo runs nothing
    for (int arg = first; arg < argc; arg++) {
        size_t index = 0;
        while (index < S_TESTS && !streq (argv [arg], s_tests [index].name))
            index++;
        if (index == S_TESTS) {
            fprintf (stderr, "herd_selftest: no selftest named '%s'\n", argv [arg]);
            return 2;
        }
    }
    int passed = 0, failed = 0;
    for (size_t index = 0; index < S_TESTS; index++) {
        bool wanted = first >= argc;
        for (int arg = first; arg < argc; arg++)
            wanted |= streq (argv [arg], s_tests [index].name);
        if (wanted) {
            if (s_run (&s_tests [index], verbose))
                passed++;
            else
                failed++;
        }
    }
    printf ("selftest: %d passed, %d failed\n", passed, failed);
    return failed? 1: 0;
}
