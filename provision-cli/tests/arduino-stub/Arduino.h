// Host stand-in for the ESP8266 Arduino core's Arduino.h: just what a header written by
// `provision device export --format arduino` uses. On the ESP8266, PROGMEM places data in flash.
#pragma once
#include <stdint.h>
#define PROGMEM
