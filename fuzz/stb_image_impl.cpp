// The stb_image decoder, compiled into image_fuzz with the fuzzer's
// instrumentation. Its definitions take precedence over Debian's libstb.so
// (an executable's own symbols win), which stays in use for stb_image_write
// and stb_image_resize. Same header, same version: the code the product
// runs, only instrumented.
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
