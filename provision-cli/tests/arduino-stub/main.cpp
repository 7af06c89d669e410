// Compiles an exported header against the stand-in BearSSL types and writes back what it
// installs: argv[1] gets the CA, argv[2] the client certificate, argv[3] the key (PEM);
// stdout gets the id, host, port, key-type flags and every endpoint.
#include <cstdio>
#include <fstream>

#include "identity.h"

static void save(const char *path, const std::string &text) {
  std::ofstream(path, std::ios::binary) << text;
}

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  BearSSL::WiFiClientSecure client;
  provision::configure(client);
  if (!client.trust || !client.client_cert || !client.client_key) return 3;
  save(argv[1], client.trust->pem);
  save(argv[2], client.client_cert->pem);
  save(argv[3], client.client_key->pem);
  std::printf("id=%s prefix=%s host=%s port=%u usages=%u issuer=%u endpoints=", provision::DEVICE_ID,
              provision::TOPIC_PREFIX, provision::MQTT_HOST, (unsigned)provision::MQTT_PORT,
              client.usages, client.issuer_key_type);
  for (unsigned i = 0; i < provision::MQTT_ENDPOINTS; i++) {
    std::printf("%s%s:%u", i ? "," : "", provision::MQTT_HOSTS[i], (unsigned)provision::MQTT_PORTS[i]);
  }
  std::printf("\n");
  return 0;
}
