/* Error codes shared by every fdn core function.
 *
 * Every fallible function returns 0 or one of these negative codes. The
 * table is the only place codes are defined, so names and messages cannot
 * drift apart.
 */
#ifndef FDN_ERROR_H
#define FDN_ERROR_H

#define FDN_ERRNO_MAP(XX)                                                      \
  XX(EINVAL, -1, "invalid argument")                                           \
  XX(ENOMEM, -2, "out of memory")                                              \
  XX(ECANCELED, -3, "operation cancelled")                                     \
  XX(ETIMEDOUT, -4, "timed out")                                               \
  XX(ECLOSED, -5, "closed")                                                    \
  XX(EBUSY, -6, "resource busy")                                               \
  XX(ESTATE, -7, "operation not valid in the current state")                   \
  XX(EAGAIN, -8, "operation would block")                                      \
  XX(EFULL, -9, "queue full")                                                  \
  XX(EUV, -10, "libuv call failed")

typedef enum {
  FDN_OK = 0,
#define FDN__ERR_ENUM(name, value, msg) FDN_##name = (value),
  FDN_ERRNO_MAP(FDN__ERR_ENUM)
#undef FDN__ERR_ENUM
} fdn_errno_t;

/* Returns a static, human-readable message for an error code. Unknown codes
 * get "unknown error" rather than NULL, so callers can print unconditionally.
 */
const char *fdn_strerror(int err);

/* Returns the symbolic name ("ECANCELED") of an error code. */
const char *fdn_err_name(int err);

#endif
