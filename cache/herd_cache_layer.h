//  cache/herd_cache_layer.h: the one include of cache/'s classes: the store
//  and its journal. It includes only its own classes and the layers below
//  it (core), so a call up the ladder does not compile (the Makefile checks
//  the link too).

#ifndef HERD_CACHE_LAYER_H_INCLUDED
#define HERD_CACHE_LAYER_H_INCLUDED

#include "core/herd_core_layer.h"

#include "cache/herd_store.h"
#include "cache/herd_record.h"
#include "cache/herd_rewrite.h"
#include "cache/herd_journal.h"

#endif
