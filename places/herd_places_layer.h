//  places/herd_places_layer.h: the one include of places/'s classes: what
//  is near a point: providers, their cache, the broker and its workers. It
//  includes only its own classes and the layers below it (core), so a call
//  up the ladder does not compile (the Makefile checks the link too).

#ifndef HERD_PLACES_LAYER_H_INCLUDED
#define HERD_PLACES_LAYER_H_INCLUDED

#include <curl/curl.h>
#include "core/herd_core_layer.h"

#include "places/herd_nearby.h"
#include "places/herd_places_msg.h"
#include "places/herd_google.h"
#include "places/herd_offline.h"
#include "places/herd_placecache.h"
#include "places/herd_worker.h"
#include "places/herd_places.h"
#include "places/herd_places_asker.h"

#endif
