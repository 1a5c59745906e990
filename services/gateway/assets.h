/* assets.h - the board's files, embedded in the binary at build time
 * (embed_www.cmake writes gen/gateway/www.c from www/), so the page always
 * matches the API of the binary that serves it and needs no install path. */
#ifndef GATEWAY_ASSETS_H
#define GATEWAY_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *name;           /* "index.html" */
    const char *type;           /* Content-Type */
    const unsigned char *data;
    size_t len;
} gw_asset_t;

/* Terminated by an entry with name NULL. */
extern const gw_asset_t gw_assets[];

#endif
