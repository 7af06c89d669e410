// Host stand-in for the ESP8266 Arduino core's BearSSL classes, with the signatures of the
// core's WiFiClientSecureBearSSL.h / BearSSLHelpers.h and BearSSL's key-type constants. It
// records what the exported header hands over, so the test can check it byte for byte.
#pragma once
#include <string>

#include "Arduino.h"

#define BR_KEYTYPE_RSA 1
#define BR_KEYTYPE_EC 2
#define BR_KEYTYPE_KEYX 0x10
#define BR_KEYTYPE_SIGN 0x20

namespace BearSSL {

class X509List {
 public:
  explicit X509List(const char *pem) : pem(pem) {}
  X509List(const X509List &) = delete;
  std::string pem;
};

class PrivateKey {
 public:
  explicit PrivateKey(const char *pem) : pem(pem) {}
  PrivateKey(const PrivateKey &) = delete;
  std::string pem;
};

class WiFiClientSecure : public Client {
 public:
  void setTrustAnchors(const X509List *ta) { trust = ta; }
  void setClientECCert(const X509List *cert, const PrivateKey *sk, unsigned allowed_usages,
                       unsigned cert_issuer_key_type) {
    client_cert = cert;
    client_key = sk;
    usages = allowed_usages;
    issuer_key_type = cert_issuer_key_type;
  }
  const X509List *trust = nullptr;
  const X509List *client_cert = nullptr;
  const PrivateKey *client_key = nullptr;
  unsigned usages = 0;
  unsigned issuer_key_type = 0;
};

}  // namespace BearSSL
