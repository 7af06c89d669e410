// Host stand-in for the ESP8266 core's ESP8266WiFi.h: a station that is connected at once.
#pragma once
#include "Arduino.h"
#include "WiFiClientSecureBearSSL.h"

#define WL_CONNECTED 3

struct WiFiStation {
  void begin(const char *, const char *) {}
  int status() { return WL_CONNECTED; }
};
static WiFiStation WiFi;
