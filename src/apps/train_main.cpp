// metasemi-train: the MetaSemi trainer (see `metasemi-train --help`).
#include "metasemi/train/TrainMain.h"

int main(int argc, char** argv) { return metasemi::train::trainMain(argc, argv); }
