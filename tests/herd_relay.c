//  tests/herd_relay.c: a bare ZeroMQ hop, for make bench's latency floor.
//
//  herd_relay UPSTREAM BIND [CERT UPSTREAM_CERT]
//  Subscribes to everything UPSTREAM publishes and publishes it again on
//  BIND, through zmq_proxy: what a bus hop costs on this machine with no
//  store, journal or flood behind it. Two relays after one server are the
//  floor under the herd's two-hop propagation. With CERT (a secret
//  certificate, as herd --keygen writes) and UPSTREAM_CERT (the upstream
//  publisher's public one) both links are CURVE, as the herd's are.

#include "../herd_classes.h"

static zcert_t *
s_load (const char *path)
{
    zcert_t *cert = herd_keys_load (path);
    if (!cert)
        fprintf (stderr, "herd_relay: cannot load %s\n", path);
    return cert;
}

int
main (int argc, char *argv [])
{
    if (argc != 3 && argc != 5) {
        fprintf (stderr, "usage: herd_relay UPSTREAM BIND [CERT UPSTREAM_CERT]\n");
        return 2;
    }
    zsys_init ();
    zsys_handler_set (NULL);        //  SIGTERM ends zmq_proxy through the default action
    zsock_t *sub = zsock_new (ZMQ_SUB);
    zsock_t *pub = zsock_new (ZMQ_PUB);
    zsock_set_subscribe (sub, "");
    zsock_set_rcvhwm (sub, 100000);
    zsock_set_sndhwm (pub, 100000);
    if (argc == 5) {
        zcert_t *cert = s_load (argv [3]);
        zcert_t *upstream = s_load (argv [4]);
        if (!cert || !upstream)
            return 1;
        zcert_apply (cert, sub);
        zsock_set_curve_serverkey (sub, zcert_public_txt (upstream));
        zcert_apply (cert, pub);
        zsock_set_curve_server (pub, 1);
        zcert_destroy (&cert);
        zcert_destroy (&upstream);
    }
    if (zsock_bind (pub, "%s", argv [2]) == -1) {
        fprintf (stderr, "herd_relay: cannot bind %s: %s\n", argv [2], zmq_strerror (zmq_errno ()));
        return 1;
    }
    zsock_connect (sub, "%s", argv [1]);
    zmq_proxy (zsock_resolve (sub), zsock_resolve (pub), NULL);
    zsock_destroy (&pub);
    zsock_destroy (&sub);
    return 0;
}
