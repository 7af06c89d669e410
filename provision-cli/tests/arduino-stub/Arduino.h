// Host stand-in for the ESP8266 Arduino core's Arduino.h: just what a header written by
// `provision device export --format arduino` and the sketch in docs/other-firmwares.md use.
// On the ESP8266, PROGMEM places data in flash.
#pragma once
#include <stdint.h>
#include <string>
#include <vector>
#define PROGMEM

inline void delay(unsigned long) {}
// The sketch waits for SNTP; the host clock is already set.
inline void configTime(int, int, const char *) {}

// Arduino's String, as far as the sketch uses it.
class String {
 public:
  String(const char *s) : s_(s) {}
  String operator+(const char *t) const { return String((s_ + t).c_str()); }
  const char *c_str() const { return s_.c_str(); }

 private:
  std::string s_;
};

// The base of every network client (WiFiClient, WiFiClientSecure).
class Client {
 public:
  virtual ~Client() {}
};
