#ifndef ASSETD_CMAGIC_SHIM_H
#define ASSETD_CMAGIC_SHIM_H
#include <magic.h>
#endif
