//  core/herd_core_layer.h: the one include of core/'s classes: what every
//  other folder uses, and nothing else. It includes only its own classes
//  and the layers below it (none: the libraries herd builds on), so a call
//  up the ladder does not compile (the Makefile checks the link too).

#ifndef HERD_CORE_LAYER_H_INCLUDED
#define HERD_CORE_LAYER_H_INCLUDED

#include <czmq.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/err.h>

//  The release herd --version prints
#define HERD_VERSION "0.1.0"

#include "core/herd_limits.h"
#include "core/herd_fnv.h"
#include "core/herd_counters.h"
#include "core/herd_tally.h"
#include "core/herd_http_guard.h"
#include "core/herd_address.h"
#include "core/herd_file.h"
//  Test scaffolding for the classes' selftests (tests/herd_loop.c, linked
//  into herd_selftest alone)
#include "tests/herd_loop.h"
#include "core/herd_reader.h"
#include "core/herd_actor.h"
#include "core/herd_bio.h"
#include "core/herd_log.h"
#include "core/herd_ratelimit.h"
#include "core/herd_traffic.h"
#include "core/herd_config.h"
#include "core/herd_keys.h"
#include "core/herd_ca.h"
#include "core/herd_admin.h"
#include "core/herd_protocol.h"

#endif
