// Backend-independent parts of the communication layer live here as the layer grows.
#include "metasemi/dist/Communicator.h"
