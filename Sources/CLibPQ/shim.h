#ifndef ASSETD_CLIBPQ_SHIM_H
#define ASSETD_CLIBPQ_SHIM_H
/* libpq (Debian's libpq-dev): PostgreSQL's own client library, synchronous, one
 * connection per PGconn. Swift calls it directly; nothing here needs a wrapper yet. */
#include <libpq-fe.h>
#endif
