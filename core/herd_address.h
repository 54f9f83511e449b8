//  core/herd_address.h: HOST:PORT as the config and the command line write
//  it, resolved in one place for every listener and connecter: "*" or no
//  host means every address, an IPv6 literal goes in brackets ([::1]:80).

#ifndef HERD_ADDRESS_H_INCLUDED
#define HERD_ADDRESS_H_INCLUDED

#include <netdb.h>

//  Resolves text, to listen on (passive) or to connect to, into
//  *address_p (the first address found; caller frees it with
//  freeaddrinfo). 0, or -1 and *error_p: "expected HOST:PORT", or the
//  resolver's reason.
int
    herd_address_resolve (const char *text, bool passive, struct addrinfo **address_p, char **error_p);

//  The numeric host of a socket address into host, and its port into
//  port unless port is NULL ("?" where it has none). size 0: the size its
//  family gives. An IPv4 address seen through a socket that takes IPv6 as
//  well (::ffff:a.b.c.d) is named as IPv4, so a host has one name for the
//  per-address bounds and the log.
void
    herd_address_name (const struct sockaddr *address, socklen_t size, char *host, size_t host_size,
                       char *port, size_t port_size);

void
    herd_address_test (bool verbose);

#endif
