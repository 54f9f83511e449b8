//  bus/herd_bus_layer.h: the one include of bus/'s classes: the links
//  between servers and the feed. It includes only its own classes and the
//  layers below it (cache), so a call up the ladder does not compile (the
//  Makefile checks the link too).

#ifndef HERD_BUS_LAYER_H_INCLUDED
#define HERD_BUS_LAYER_H_INCLUDED

#include "cache/herd_cache_layer.h"

#include "bus/herd_sync_msg.h"
#include "bus/herd_bus_msg.h"
#include "bus/herd_subscribers.h"
#include "bus/herd_xpub.h"
#include "bus/herd_catchup.h"
#include "bus/herd_peer.h"
#include "bus/herd_bus.h"
#include "bus/herd_feed.h"
#include "bus/herd_snapshot.h"

#endif
