//  herd_classes.h: the one include of every herd source file: the libraries
//  herd builds on, then herd's own classes.

#ifndef HERD_CLASSES_H_INCLUDED
#define HERD_CLASSES_H_INCLUDED

#include <czmq.h>
#include <curl/curl.h>
#include <jansson.h>

//  core/: what every other folder uses, and nothing else
#include "core/herd_limits.h"
#include "core/herd_fnv.h"
#include "core/herd_counters.h"
#include "core/herd_tally.h"
#include "core/herd_http_guard.h"
#include "core/herd_address.h"
#include "core/herd_file.h"
#include "core/herd_loop.h"
#include "core/herd_reader.h"
#include "core/herd_actor.h"
#include "core/herd_bio.h"
#include "core/herd_log.h"
#include "core/herd_ratelimit.h"
#include "core/herd_traffic.h"
#include "core/herd_config.h"
#include "core/herd_keys.h"
#include "core/herd_admin.h"
#include "core/herd_protocol.h"
#include "cache/herd_store.h"
#include "cache/herd_record.h"
#include "cache/herd_rewrite.h"
#include "cache/herd_journal.h"
#include "bus/herd_sync_msg.h"
#include "bus/herd_bus_msg.h"
#include "bus/herd_subscribers.h"
#include "bus/herd_xpub.h"
#include "bus/herd_peer.h"
#include "bus/herd_bus.h"
#include "bus/herd_feed.h"
#include "bus/herd_snapshot.h"
#include "places/herd_nearby.h"
#include "places/herd_places_msg.h"
#include "places/herd_google.h"
#include "places/herd_offline.h"
#include "places/herd_placecache.h"
#include "places/herd_worker.h"
#include "places/herd_places.h"
#include "places/herd_places_client.h"
#include "frontend/herd_connection.h"
#include "frontend/herd_listener.h"
#include "frontend/herd_clients.h"
#include "frontend/herd_frontend.h"
#include "node/herd_http.h"
#include "node/herd_node.h"

#define HERD_VERSION "0.1.0"

#endif
