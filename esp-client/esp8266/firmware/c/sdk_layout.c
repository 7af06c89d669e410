/* Compiled by build.sh against the vendored SDK headers: every struct the Rust bindings
 * (esp-client/esp8266/src/sdk.rs) mirror, and every register address the HSPI driver
 * (src/hspi.rs) uses, must match the SDK's, or the build stops here. */
#include <stddef.h>
#include "c_types.h"
#include "ets_sys.h"
#include "osapi.h"
#include "os_type.h"
#include "user_interface.h"
#include "eagle_soc.h"
#include "spi_flash.h"

#define SIZE(t, n) _Static_assert(sizeof(t) == (n), "size of " #t)
#define AT(t, f, n) _Static_assert(offsetof(t, f) == (n), "offset of " #t "." #f)

/* sdk::station_config */
SIZE(struct station_config, 116);
AT(struct station_config, ssid, 0);
AT(struct station_config, password, 32);
AT(struct station_config, channel, 96);
AT(struct station_config, bssid_set, 97);
AT(struct station_config, bssid, 98);
AT(struct station_config, threshold, 104);
AT(struct station_config, threshold.rssi, 104);
AT(struct station_config, threshold.authmode, 108);
AT(struct station_config, open_and_wep_mode_disable, 112);
AT(struct station_config, all_channel_scan, 113);
SIZE(AUTH_MODE, 4);

/* sdk::EtsTimer */
SIZE(ETSTimer, 20);
AT(ETSTimer, timer_next, 0);
AT(ETSTimer, timer_expire, 4);
AT(ETSTimer, timer_period, 8);
AT(ETSTimer, timer_func, 12);
AT(ETSTimer, timer_arg, 16);

/* sdk::partition_item_t and the constants next to it */
SIZE(partition_item_t, 12);
AT(partition_item_t, type, 0);
AT(partition_item_t, addr, 4);
AT(partition_item_t, size, 8);
_Static_assert(SYSTEM_PARTITION_RF_CAL == 4, "SYSTEM_PARTITION_RF_CAL");
_Static_assert(SYSTEM_PARTITION_PHY_DATA == 5, "SYSTEM_PARTITION_PHY_DATA");
_Static_assert(SYSTEM_PARTITION_SYSTEM_PARAMETER == 6, "SYSTEM_PARTITION_SYSTEM_PARAMETER");
_Static_assert(FLASH_SIZE_32M_MAP_1024_1024 == 6, "FLASH_SIZE_32M_MAP_1024_1024");
_Static_assert(STATION_MODE == 1, "STATION_MODE");
_Static_assert(STATION_IDLE == 0 && STATION_CONNECTING == 1 && STATION_WRONG_PASSWORD == 2 &&
                   STATION_NO_AP_FOUND == 3 && STATION_CONNECT_FAIL == 4 && STATION_GOT_IP == 5,
               "station_status_t");
_Static_assert(SPI_FLASH_RESULT_OK == 0, "SPI_FLASH_RESULT_OK");
SIZE(SpiFlashOpResult, 4);
SIZE(bool, 1);

/* src/hspi.rs register addresses and pin functions */
_Static_assert(PERIPHS_IO_MUX == 0x60000800, "IO_MUX");
_Static_assert(PERIPHS_IO_MUX_MTDI_U == 0x60000804, "GPIO12 mux");
_Static_assert(PERIPHS_IO_MUX_MTCK_U == 0x60000808, "GPIO13 mux");
_Static_assert(PERIPHS_IO_MUX_MTMS_U == 0x6000080C, "GPIO14 mux");
_Static_assert(PERIPHS_IO_MUX_MTDO_U == 0x60000810, "GPIO15 mux");
_Static_assert(PERIPHS_IO_MUX_GPIO4_U == 0x6000083C, "GPIO4 mux");
_Static_assert(FUNC_GPIO15 == 3 && FUNC_GPIO4 == 0, "GPIO functions");
_Static_assert(PERIPHS_IO_MUX_FUNC == 0x13 && PERIPHS_IO_MUX_FUNC_S == 4, "IO_MUX function bits");
_Static_assert(PERIPHS_GPIO_BASEADDR + GPIO_OUT_W1TS_ADDRESS == 0x60000304, "GPIO_OUT_W1TS");
_Static_assert(PERIPHS_GPIO_BASEADDR + GPIO_OUT_W1TC_ADDRESS == 0x60000308, "GPIO_OUT_W1TC");
_Static_assert(PERIPHS_GPIO_BASEADDR + GPIO_ENABLE_W1TS_ADDRESS == 0x60000310, "GPIO_ENABLE_W1TS");

/* Every function src/sdk.rs declares has the prototype the Rust declaration assumes. */
#include "sntp.h"
#include "mem.h"
#define PROTO(f, t) _Static_assert(__builtin_types_compatible_p(__typeof__(&f), t), "prototype of " #f)
PROTO(system_get_time, uint32 (*)(void));
PROTO(system_restart, void (*)(void));
PROTO(system_soft_wdt_feed, void (*)(void));
PROTO(system_get_free_heap_size, uint32 (*)(void));
PROTO(system_update_cpu_freq, bool (*)(uint8));
_Static_assert(SYS_CPU_160MHZ == 160, "SYS_CPU_160MHZ");
PROTO(system_partition_table_regist, bool (*)(const partition_item_t *, uint32_t, uint32_t));
PROTO(system_rtc_mem_read, bool (*)(uint8, void *, uint16));
PROTO(wifi_set_opmode, bool (*)(uint8));
PROTO(wifi_station_set_config_current, bool (*)(struct station_config *));
PROTO(wifi_station_set_auto_connect, bool (*)(uint8));
PROTO(wifi_station_set_reconnect_policy, bool (*)(bool));
PROTO(wifi_station_connect, bool (*)(void));
PROTO(wifi_station_get_connect_status, uint8 (*)(void));
PROTO(sntp_setservername, void (*)(unsigned char, char *));
PROTO(sntp_set_timezone, bool (*)(sint8));
PROTO(sntp_init, void (*)(void));
PROTO(sntp_get_current_timestamp, uint32 (*)());
PROTO(spi_flash_read, SpiFlashOpResult (*)(uint32, uint32 *, uint32));
PROTO(spi_flash_write, SpiFlashOpResult (*)(uint32, uint32 *, uint32));
PROTO(spi_flash_erase_sector, SpiFlashOpResult (*)(uint16));
PROTO(ets_timer_setfn, void (*)(ETSTimer *, ETSTimerFunc *, void *));
PROTO(ets_timer_arm_new, void (*)(ETSTimer *, uint32_t, bool, bool));
PROTO(ets_timer_disarm, void (*)(ETSTimer *));
PROTO(os_random, unsigned long (*)(void));
PROTO(os_printf_plus, int (*)(const char *, ...));
