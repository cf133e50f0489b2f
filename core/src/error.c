#include "fdn/error.h"

const char *fdn_strerror(int err) {
  switch (err) {
  case FDN_OK:
    return "success";
#define FDN__ERR_MSG(name, value, msg)                                         \
  case FDN_##name:                                                             \
    return msg;
    FDN_ERRNO_MAP(FDN__ERR_MSG)
#undef FDN__ERR_MSG
  }
  return "unknown error";
}

const char *fdn_err_name(int err) {
  switch (err) {
  case FDN_OK:
    return "OK";
#define FDN__ERR_NAME(name, value, msg)                                        \
  case FDN_##name:                                                             \
    return #name;
    FDN_ERRNO_MAP(FDN__ERR_NAME)
#undef FDN__ERR_NAME
  }
  return "UNKNOWN";
}
