/* The size of the TLS library's session for the Rust transport (esp8266_board::transport::tls),
 * which takes it from the SDK heap. Compiled with the library's own flags (build.sh). */
#include "espconn_tls.h"

size_t esp_tls_session_size(void)
{
    return sizeof(struct espconn_tls);
}

/* esp8266_board::transport::tls::TLS_STACK_LEN mirrors this. */
_Static_assert(ESPTLS_STACK_LEN == 6656, "ESPTLS_STACK_LEN changed: update transport.rs");
