//  tests/fuzz_config.c: libFuzzer target for the config loader. Any text
//  must load or fail with a one-line message, never crash or hang.

#include "../herd_classes.h"

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  The loader takes text: cut at the first NUL, as the file reader
    //  refuses NULs before this point
    char *text = (char *) malloc (size + 1);
    memcpy (text, data, size);
    text [size] = 0;
    char *error = NULL;
    herd_config_t *config = herd_config_load_text (text, "fuzz.cfg", &error);
    assert (config || (error && !strchr (error, '\n')));
    herd_config_destroy (&config);
    freen (error);
    freen (text);
    return 0;
}
