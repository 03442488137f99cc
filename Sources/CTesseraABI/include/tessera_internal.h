// Not part of the contract: helpers the Swift implementation of tessera.h uses.
#ifndef TESSERA_INTERNAL_H
#define TESSERA_INTERNAL_H
void tessera_internal_set_error(const char *message);
const char *tessera_internal_set_text(const char *text);
#endif
