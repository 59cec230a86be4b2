// larson: the larson-style server of larson.h through malloc/free.
#include "larson.h"

int main(int argc, char** argv) { return larson::Main<larson::Api::kMalloc>(argc, argv, "larson"); }
