/* Build-time checks of the TLS library's header against the Rust transport
 * (esp8266_board::transport::tls). Compiled with the library's own flags (build.sh). */
#include "espconn_tls.h"

/* esp8266_board::transport::tls::TLS_STACK_LEN mirrors this. */
_Static_assert(ESPTLS_STACK_LEN == 6656, "ESPTLS_STACK_LEN changed: update transport.rs");
