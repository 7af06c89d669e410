/* The SDK headers include the application's user_config.h; ours configures nothing. */
