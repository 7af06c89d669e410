/* The SDK's user_interface.h includes the application's user_config.h; the TLS transport needs
 * nothing from it. */
