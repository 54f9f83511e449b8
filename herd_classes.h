//  herd_classes.h: the top of the ladder, every layer: for the server's
//  main (herd.c, herd_tools.c), the selftests, fuzz targets and tools.
//  A class includes its own folder's layer header, never this.

#ifndef HERD_CLASSES_H_INCLUDED
#define HERD_CLASSES_H_INCLUDED

#include "node/herd_node_layer.h"

#endif
