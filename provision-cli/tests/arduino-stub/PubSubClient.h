// Host stand-in for PubSubClient (knolleary/pubsubclient) with its signatures: it records what
// the sketch asks for, so the test can hold the topics against the broker's ACL.
#pragma once
#include <cstdio>

#include "Arduino.h"

class PubSubClient {
 public:
  explicit PubSubClient(Client &client) : client_(client) {}
  PubSubClient &setServer(const char *host, uint16_t port) {
    std::printf("server %s %u\n", host, (unsigned)port);
    return *this;
  }
  bool connected() { return connected_; }
  bool connect(const char *id, const char *willTopic, uint8_t willQos, bool willRetain,
               const char *willMessage) {
    std::printf("connect %s will %s %u %d %s\n", id, willTopic, (unsigned)willQos,
                (int)willRetain, willMessage);
    connected_ = true;
    return true;
  }
  bool publish(const char *topic, const char *payload, bool retained) {
    std::printf("publish %s %s %d\n", topic, payload, (int)retained);
    return true;
  }
  bool subscribe(const char *topic, uint8_t qos) {
    std::printf("subscribe %s %u\n", topic, (unsigned)qos);
    return true;
  }
  bool loop() { return true; }

 private:
  Client &client_;
  bool connected_ = false;
};
