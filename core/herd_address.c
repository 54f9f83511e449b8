//  core/herd_address.c: HOST:PORT resolved in one place.

#include "core/herd_core_layer.h"
#include <arpa/inet.h>

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

void
herd_address_name (const struct sockaddr *address, socklen_t size, char *host, size_t host_size,
                   char *port, size_t port_size)
{
    assert (host && host_size && (!port || port_size));
    snprintf (host, host_size, "?");
    if (port)
        snprintf (port, port_size, "?");
    if (!address)
        return;
    if (!size)
        size = address->sa_family == AF_INET6? sizeof (struct sockaddr_in6): sizeof (struct sockaddr_in);
    getnameinfo (address, size, host, (socklen_t) host_size, port, port? (socklen_t) port_size: 0,
                 NI_NUMERICHOST | NI_NUMERICSERV);
    if (strncmp (host, "::ffff:", 7) == 0 && strchr (host, '.'))
        memmove (host, host + 7, strlen (host + 7) + 1);
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
    //  Names: numeric, and an IPv4 peer of a dual-stack socket as IPv4
    char host [INET6_ADDRSTRLEN], port [8];
    struct sockaddr_in6 mapped = { .sin6_family = AF_INET6, .sin6_port = htons (5555) };
    inet_pton (AF_INET6, "::ffff:10.1.2.3", &mapped.sin6_addr);
    herd_address_name ((struct sockaddr *) &mapped, sizeof mapped, host, sizeof host, port, sizeof port);
    assert (streq (host, "10.1.2.3") && streq (port, "5555"));
    inet_pton (AF_INET6, "::1", &mapped.sin6_addr);
    herd_address_name ((struct sockaddr *) &mapped, 0, host, sizeof host, NULL, 0);
    assert (streq (host, "::1"));
    herd_address_name (NULL, 0, host, sizeof host, port, sizeof port);
    assert (streq (host, "?") && streq (port, "?"));
    printf ("OK\n");
}
