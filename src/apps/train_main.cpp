// metasemi-train: the MetaSemi trainer (see `metasemi-train --help`).
#include "metasemi/app/TrainMain.h"

int main(int argc, char** argv) { return metasemi::app::trainMain(argc, argv); }
