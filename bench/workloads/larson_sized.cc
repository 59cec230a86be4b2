// larson-sized: the larson-style server of larson.h through ::operator new(n)
// and the sized ::operator delete(p, n), as C++ containers free.
#include "larson.h"

int main(int argc, char** argv) {
  return larson::Main<larson::Api::kSizedDelete>(argc, argv, "larson-sized");
}
