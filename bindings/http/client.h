/*
** client.h — the response side of the HTTP client (client.c on the
** parser of resp_parse.c): lasync.core._http_client_parser.
*/
#ifndef LASYNC_HTTP_CLIENT_H
#define LASYNC_HTTP_CLIENT_H

#include "core/core.h"

LX_HIDDEN void lx_open_http_client(lua_State *L);

#endif
