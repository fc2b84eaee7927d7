#include "prep/PrepMain.h"

int main(int argc, char** argv) { return metasemi::prep::prepMain(argc, argv); }
