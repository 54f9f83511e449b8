//  core/herd_address.c: HOST:PORT resolved in one place.

#include "core/herd_core_layer.h"

int
herd_address_resolve (const char *text, bool passive, struct addrinfo **address_p, char **error_p)
{
    assert (text && address_p && error_p);
    *address_p = NULL;
    char *host = strdup (text);
    char *colon = strrchr (host, ':');
    if (!colon || !colon [1]) {
        *error_p = zsys_sprintf ("%s: expected HOST:PORT", text);
        freen (host);
        return -1;
    }
    *colon = 0;
    const char *port = colon + 1;
    const char *node = streq (host, "*") || !*host? NULL: host;
    //  An IPv6 literal, without its brackets
    if (node && *node == '[' && node [strlen (node) - 1] == ']') {
        host [strlen (host) - 1] = 0;
        node = host + 1;
    }
    struct addrinfo hints = { 0 };
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive? AI_PASSIVE: 0;
    int rc = getaddrinfo (node, port, &hints, address_p);
    freen (host);
    if (rc || !*address_p) {
        *error_p = zsys_sprintf ("%s: %s", text, rc? gai_strerror (rc): "no address");
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Selftest

void
herd_address_test (bool verbose)
{
    printf (" * herd_address: ");
    if (verbose)
        printf ("\n");
    struct addrinfo *address = NULL;
    char *error = NULL;
    assert (herd_address_resolve ("127.0.0.1:8080", true, &address, &error) == 0);
    struct sockaddr_in *in = (struct sockaddr_in *) address->ai_addr;
    assert (address->ai_family == AF_INET && ntohs (in->sin_port) == 8080
         && ntohl (in->sin_addr.s_addr) == INADDR_LOOPBACK);
    freeaddrinfo (address);
    //  Every address, to listen on
    assert (herd_address_resolve ("*:0", true, &address, &error) == 0);
    freeaddrinfo (address);
    assert (herd_address_resolve (":9", true, &address, &error) == 0);
    freeaddrinfo (address);
    //  An IPv6 literal in brackets
    assert (herd_address_resolve ("[::1]:9", false, &address, &error) == 0);
    assert (address->ai_family == AF_INET6);
    freeaddrinfo (address);
    //  What is not HOST:PORT says so, with the text
    assert (herd_address_resolve ("8080", true, &address, &error) == -1);
    assert (streq (error, "8080: expected HOST:PORT") && !address);
    freen (error);
    assert (herd_address_resolve ("127.0.0.1:", true, &address, &error) == -1);
    freen (error);
    assert (herd_address_resolve ("127.0.0.1:notaport", true, &address, &error) == -1);
    assert (!strncmp (error, "127.0.0.1:notaport: ", 20));
    freen (error);
    printf ("OK\n");
}
