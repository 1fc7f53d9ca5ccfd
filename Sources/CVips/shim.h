#ifndef ASSETD_CVIPS_SHIM_H
#define ASSETD_CVIPS_SHIM_H
#include <vips/vips.h>

/* What Swift cannot call: the VIPS_INIT macro and the variadic operations, wrapped with
 * exactly the options assetd uses. Each returns 0 on success, as libvips does. */

static inline int assetd_vips_init(const char *argv0) {
    return VIPS_INIT(argv0);
}

/* The header only: a lazy, sequential open that decodes no pixels. */
static inline VipsImage *assetd_vips_open_header(const char *filename) {
    return vips_image_new_from_file(filename, "access", VIPS_ACCESS_SEQUENTIAL, NULL);
}

/* The loader libvips would pick for a file ("jpegload"), honouring blocked operations;
 * NULL when none would (unknown or blocked format). */
static inline const char *assetd_vips_loader_nickname(const char *filename) {
    const char *name = vips_foreign_find_load(filename);
    if (!name) return NULL;
    return vips_nickname_find(g_type_from_name(name));
}

/* vips_thumbnail: the longest edge `size`, never upscaled, EXIF auto-rotation (the
 * default), shrink-on-load, converted to sRGB (a CMYK image without a profile gets
 * libvips' fallback CMYK profile), failing on decode errors rather than guessing. */
static inline int assetd_vips_thumbnail(const char *filename, VipsImage **out, int size) {
    return vips_thumbnail(filename, out, size,
                          "height", size,
                          "size", VIPS_SIZE_DOWN,
                          "export_profile", "srgb",
                          "fail_on", VIPS_FAIL_ON_ERROR,
                          NULL);
}

/* Alpha flattened onto white, for JPEG. */
static inline int assetd_vips_flatten_white(VipsImage *in, VipsImage **out) {
    VipsArrayDouble *white = vips_array_double_newv(3, 255.0, 255.0, 255.0);
    int result = vips_flatten(in, out, "background", white, NULL);
    vips_area_unref(VIPS_AREA(white));
    return result;
}

/* To 8-bit sRGB (a 16-bit PNG, a greyscale image) so that JPEG takes it. */
static inline int assetd_vips_to_srgb8(VipsImage *in, VipsImage **out) {
    VipsImage *srgb = NULL;
    if (vips_colourspace(in, &srgb, VIPS_INTERPRETATION_sRGB, NULL)) return -1;
    int result = vips_cast(srgb, out, VIPS_FORMAT_UCHAR, NULL);
    g_object_unref(srgb);
    return result;
}

/* JPEG into memory at `quality`, every metadata block stripped, progressive off. */
static inline int assetd_vips_jpegsave(VipsImage *in, void **buffer, size_t *length, int quality) {
    return vips_jpegsave_buffer(in, buffer, length, "Q", quality, "strip", TRUE, "optimize_coding", TRUE, NULL);
}

static inline void assetd_vips_unref(VipsImage *image) {
    if (image) g_object_unref(image);
}

#endif
