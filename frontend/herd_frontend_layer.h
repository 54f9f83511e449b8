//  frontend/herd_frontend_layer.h: the one include of frontend/'s classes:
//  the client port. It includes only its own classes and the layers below
//  it (cache, places), so a call up the ladder does not compile (the
//  Makefile checks the link too).

#ifndef HERD_FRONTEND_LAYER_H_INCLUDED
#define HERD_FRONTEND_LAYER_H_INCLUDED

#include "cache/herd_cache_layer.h"
#include "places/herd_places_layer.h"

#include "frontend/herd_grants.h"
#include "frontend/herd_tls.h"
#include "frontend/herd_stream.h"
#include "frontend/herd_listener.h"
#include "frontend/herd_connections.h"
#include "frontend/herd_frontend.h"

#endif
