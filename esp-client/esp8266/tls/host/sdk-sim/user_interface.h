/* Host stand-in for the NONOS SDK's user_interface.h: what espconn_tls.c uses. */
#ifndef SIM_USER_INTERFACE_H
#define SIM_USER_INTERFACE_H
void system_soft_wdt_feed(void);
#endif
