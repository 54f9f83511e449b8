//  tests/herd_loop.c: a zloop run for a bounded time (test scaffolding).

#include "../herd_classes.h"
#include <netinet/in.h>
#include <arpa/inet.h>

static int
s_stop (zloop_t *loop, int timer_id, void *arg)
{
    (void) loop;
    (void) timer_id;
    (void) arg;
    return -1;                  //  Ends this round of zloop_start
}

void
herd_loop_run_for (zloop_t *loop, int msecs)
{
    assert (loop && msecs >= 0);
    zloop_timer (loop, msecs, 1, s_stop, NULL);
    zloop_start (loop);
}

int
herd_loop_connect (int port)
{
    assert (port > 0);
    struct sockaddr_in address = { 0 };
    address.sin_family = AF_INET;
    address.sin_port = htons (port);
    address.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    int fd = socket (AF_INET, SOCK_STREAM, 0);
    assert (fd != -1);
    int rc = connect (fd, (struct sockaddr *) &address, sizeof address);
    assert (rc == 0);
    return fd;
}
