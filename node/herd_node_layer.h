//  node/herd_node_layer.h: the one include of node/'s classes: the actor
//  that owns the update path, and its HTTP endpoint. It includes only its
//  own classes and the layers below it (bus, frontend), so a call up the
//  ladder does not compile (the Makefile checks the link too).

#ifndef HERD_NODE_LAYER_H_INCLUDED
#define HERD_NODE_LAYER_H_INCLUDED

#include "bus/herd_bus_layer.h"
#include "frontend/herd_frontend_layer.h"

#include "node/herd_http.h"
#include "node/herd_node.h"

#endif
