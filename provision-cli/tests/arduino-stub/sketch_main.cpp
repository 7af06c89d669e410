// Runs the sketch from docs/other-firmwares.md once against the stand-ins: setup(), then loop()
// twice (the first connects, the second finds the client connected).
void setup();
void loop();

int main() {
  setup();
  loop();
  loop();
  return 0;
}
